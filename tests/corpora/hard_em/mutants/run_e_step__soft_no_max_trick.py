# breaks: run_e_step
# bug: the soft branch exponentiates without subtracting the maximum
# says: q_underflow, q_overflow
# (a copy of correct/d_hard_branches_loops.py with this one bug)
import numpy as np


def calculate_log_probability(X, F, B, s):
    H, W, K = X.shape
    w = F.shape[1]
    out = np.zeros((W - w + 1, K))
    for d in range(W - w + 1):
        model = np.asarray(B, dtype=float).copy()
        model[:, d:d + w] = F
        out[d] = -0.5 * np.sum((X - model[:, :, None]) ** 2, axis=(0, 1)) / s ** 2
    return out - H * W * (np.log(s) + 0.5 * np.log(2 * np.pi))


def _one_log_probability(image, F, B, s, d):
    H, W = image.shape
    model = np.asarray(B, dtype=float).copy()
    model[:, d:d + F.shape[1]] = F
    return -0.5 * np.sum((image - model) ** 2) / s ** 2 - H * W * (np.log(s) + 0.5 * np.log(2 * np.pi))


def calculate_lower_bound(X, F, B, s, a, q, hard_EM=False):
    if hard_EM:
        chosen = np.argmax(q, axis=0)
        return sum(_one_log_probability(X[:, :, k], F, B, s, d) + np.log(a[d]) for k, d in enumerate(chosen))
    ll = calculate_log_probability(X, F, B, s)
    out = 0.0
    for d in range(q.shape[0]):
        for k in range(q.shape[1]):
            if q[d, k] > 0:
                out += q[d, k] * (ll[d, k] + np.log(a[d]) - np.log(q[d, k]))
    return out


def run_e_step(X, F, B, s, a, hard_EM=False):
    ll = calculate_log_probability(X, F, B, s)
    with np.errstate(divide="ignore"):
        joint = ll + np.log(a)[:, None]
    if hard_EM:
        q = np.zeros_like(joint)
        for k in range(joint.shape[1]):
            q[np.argmax(joint[:, k]), k] = 1.0
        return q
    e = np.exp(joint)
    return e / e.sum(axis=0)


def run_m_step(X, q, w, hard_EM=False):
    X = X.astype(float)
    H, W, K = X.shape
    P = W - w + 1
    if hard_EM:
        chosen = np.argmax(q, axis=0)
        a = np.bincount(chosen, minlength=P) / K
        F = np.mean([X[:, d:d + w, k] for k, d in enumerate(chosen)], axis=0)
        total = np.zeros((H, W))
        count = np.zeros(W)
        for k, d in enumerate(chosen):
            shows = np.ones(W, dtype=bool)
            shows[d:d + w] = False
            total[:, shows] += X[:, shows, k]
            count[shows] += 1
        B = X.mean(axis=2)
        B[:, count > 0] = total[:, count > 0] / count[count > 0]
        err = 0.0
        for k, d in enumerate(chosen):
            model = B.copy()
            model[:, d:d + w] = F
            err += np.sum((X[:, :, k] - model) ** 2)
        return F, B, np.sqrt(err / (H * W * K)), a
    a = q.sum(axis=1) / K
    F = np.zeros((H, w))
    total = np.zeros((H, W))
    weight = np.zeros(W)
    for d in range(P):
        weighted = X @ q[d]                                   # (H, W)
        F += weighted[:, d:d + w]
        shows = np.ones(W, dtype=bool)
        shows[d:d + w] = False
        total[:, shows] += weighted[:, shows]
        weight[shows] += q[d].sum()
    F /= K
    B = X.mean(axis=2)
    B[:, weight > 0] = total[:, weight > 0] / weight[weight > 0]
    err = 0.0
    for d in range(P):
        model = B.copy()
        model[:, d:d + w] = F
        err += q[d] @ np.sum((X - model[:, :, None]) ** 2, axis=(0, 1))
    return F, B, np.sqrt(err / (H * W * K)), a


def run_EM(X, w, F=None, B=None, s=None, a=None, tolerance=0.001, max_iter=50, hard_EM=False):
    H, W, K = X.shape
    mean_image = np.mean(X, axis=2)
    if F is None:
        # The average of the mean image's (H, w) windows over all positions.
        F = np.lib.stride_tricks.sliding_window_view(mean_image, w, axis=1).mean(axis=1)
    if B is None:
        B = mean_image
    if a is None:
        a = np.full(W - w + 1, 1.0 / (W - w + 1))
    if s is None:
        s = float(np.sqrt(np.mean((X - mean_image[:, :, None]) ** 2)))
    q = run_e_step(X, F, B, s, a, hard_EM)
    LL = [calculate_lower_bound(X, F, B, s, a, q, hard_EM)]
    for _ in range(max_iter):
        F, B, s, a = run_m_step(X, q, w, hard_EM)
        LL.append(calculate_lower_bound(X, F, B, s, a, q, hard_EM))
        q = run_e_step(X, F, B, s, a, hard_EM)
        if LL[-1] - LL[-2] < tolerance * abs(LL[-2]):
            break
    LL.append(calculate_lower_bound(X, F, B, s, a, q, hard_EM))
    return F, B, s, a, np.array(LL)


def e_step_spherical(X, pi, mu, s2, hard_EM=False):
    N, D = X.shape
    C = len(pi)
    log_w = np.empty((N, C))
    for c in range(C):
        with np.errstate(divide="ignore"):
            log_w[:, c] = np.log(pi[c]) - 0.5 * D * np.log(2 * np.pi * s2) - ((X - mu[c]) ** 2).sum(axis=1) / (2 * s2)
    if hard_EM:
        gamma = np.zeros((N, C))
        gamma[np.arange(N), log_w.argmax(axis=1)] = 1
        return gamma
    log_w -= log_w.max(axis=1, keepdims=True)
    gamma = np.exp(log_w)
    return gamma / gamma.sum(axis=1, keepdims=True)


def m_step_spherical(X, gamma):
    N, D = X.shape
    C = gamma.shape[1]
    pi = np.zeros(C)
    mu = np.zeros((C, D))
    total = 0.0
    for c in range(C):
        Nc = gamma[:, c].sum()
        pi[c] = Nc / N
        mu[c] = gamma[:, c] @ X / Nc
        total += gamma[:, c] @ ((X - mu[c]) ** 2).sum(axis=1)
    return pi, mu, total / (N * D)


def kmeans(X, mu, max_iter=100):
    mu = mu.astype(float)                       # astype copies: the caller's centres stay
    labels = np.zeros(len(X), dtype=int)
    for it in range(max_iter):
        labels = ((X[:, None, :] - mu[None]) ** 2).sum(-1).argmin(-1)
        for c in range(len(mu)):
            if (labels == c).any():
                mu[c] = X[labels == c].mean(0)
    return mu, labels
