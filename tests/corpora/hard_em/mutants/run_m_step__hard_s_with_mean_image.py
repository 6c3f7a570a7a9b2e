# breaks: run_m_step
# bug: the hard branch computes s with the average image as background
# says: s_old_background
# (a copy of correct/a_loops.py with this one bug)
import numpy as np
from scipy.special import logsumexp


def calculate_log_probability(X, F, B, s):
    H, W, K = X.shape
    w = F.shape[1]
    out = np.zeros((W - w + 1, K))
    for d in range(W - w + 1):
        model = np.array(B, dtype=float)
        model[:, d:d + w] = F
        out[d] = -((X - model[:, :, None]) ** 2).sum(axis=(0, 1)) / (2 * s * s)
    return out - H * W * np.log(np.sqrt(2 * np.pi) * s)


def _log_prior(a):
    with np.errstate(divide="ignore"):
        return np.log(a)


def calculate_lower_bound(X, F, B, s, a, q, hard_EM=False):
    if hard_EM:
        H, W, K = X.shape
        w = F.shape[1]
        total = 0.0
        for k in range(K):
            d = int(np.argmax(q[:, k]))
            model = np.array(B, dtype=float)
            model[:, d:d + w] = F
            total += -np.sum((X[:, :, k] - model) ** 2) / (2 * s * s) - H * W * np.log(np.sqrt(2 * np.pi) * s)
            total += np.log(a[d])
        return total
    ll = calculate_log_probability(X, F, B, s) + _log_prior(a)[:, None]
    keep = q > 0
    return np.sum(q[keep] * (ll[keep] - np.log(q[keep])))


def run_e_step(X, F, B, s, a, hard_EM=False):
    joint = calculate_log_probability(X, F, B, s) + _log_prior(a)[:, None]
    if hard_EM:
        q = np.zeros_like(joint)
        for k in range(joint.shape[1]):
            q[np.argmax(joint[:, k]), k] = 1.0
        return q
    return np.exp(joint - logsumexp(joint, axis=0))


def run_m_step(X, q, w, hard_EM=False):
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    n = W - w + 1
    if hard_EM:
        chosen = np.argmax(q, axis=0)
        a = np.bincount(chosen, minlength=n) / K
        F = np.zeros((H, w))
        total = np.zeros((H, W))
        count = np.zeros(W)
        for k in range(K):
            d = chosen[k]
            F += X[:, d:d + w, k]
            outside = np.ones(W, dtype=bool)
            outside[d:d + w] = False
            total[:, outside] += X[:, outside, k]
            count[outside] += 1
        F /= K
        B = X.mean(axis=2)
        B[:, count > 0] = total[:, count > 0] / count[count > 0]
        err = 0.0
        for k in range(K):
            model = X.mean(axis=2)
            model[:, chosen[k]:chosen[k] + w] = F
            err += np.sum((X[:, :, k] - model) ** 2)
        return F, B, np.sqrt(err / (H * W * K)), a
    a = q.sum(axis=1) / K
    F = np.zeros((H, w))
    total = np.zeros((H, W))
    count = np.zeros(W)
    for d in range(n):
        weighted = X @ q[d]
        F += weighted[:, d:d + w]
        outside = np.ones(W, dtype=bool)
        outside[d:d + w] = False
        total[:, outside] += weighted[:, outside]
        count[outside] += q[d].sum()
    F /= K
    B = X.mean(axis=2)
    B[:, count > 0] = total[:, count > 0] / count[count > 0]
    err = 0.0
    for d in range(n):
        model = B.copy()
        model[:, d:d + w] = F
        err += q[d] @ ((X - model[:, :, None]) ** 2).sum(axis=(0, 1))
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
    q = run_e_step(X, F, B, s, a, hard_EM=hard_EM)
    LL = [calculate_lower_bound(X, F, B, s, a, q, hard_EM=hard_EM)]
    for _ in range(max_iter):
        F, B, s, a = run_m_step(X, q, w, hard_EM=hard_EM)
        LL.append(calculate_lower_bound(X, F, B, s, a, q, hard_EM=hard_EM))
        q = run_e_step(X, F, B, s, a, hard_EM=hard_EM)
        if LL[-1] - LL[-2] < tolerance * abs(LL[-2]):
            break
    LL.append(calculate_lower_bound(X, F, B, s, a, q, hard_EM=hard_EM))
    return F, B, s, a, np.array(LL)


def e_step_spherical(X, pi, mu, s2, hard_EM=False):
    N, D = X.shape
    C = len(pi)
    logw = np.zeros((N, C))
    for c in range(C):
        with np.errstate(divide="ignore"):
            logw[:, c] = np.log(pi[c]) - 0.5 * D * np.log(2 * np.pi * s2) - np.sum((X - mu[c]) ** 2, axis=1) / (2 * s2)
    if hard_EM:
        return np.eye(C)[np.argmax(logw, axis=1)]
    return np.exp(logw - logsumexp(logw, axis=1, keepdims=True))


def m_step_spherical(X, gamma):
    N, D = X.shape
    C = gamma.shape[1]
    pi = np.zeros(C)
    mu = np.zeros((C, D))
    s2 = 0.0
    for c in range(C):
        n_c = gamma[:, c].sum()
        pi[c] = n_c / N
        mu[c] = gamma[:, c] @ X / n_c
        s2 += gamma[:, c] @ np.sum((X - mu[c]) ** 2, axis=1)
    return pi, mu, s2 / (N * D)


def kmeans(X, mu, max_iter=100):
    mu = np.array(mu, dtype=float)
    labels = None
    for _ in range(max_iter):
        distances = np.stack([np.sum((X - centre) ** 2, axis=1) for centre in mu], axis=1)
        new = np.argmin(distances, axis=1)
        if labels is not None and np.all(new == labels):
            break
        labels = new
        for c in range(len(mu)):
            members = X[labels == c]
            if len(members):
                mu[c] = members.mean(axis=0)
    return mu, labels
