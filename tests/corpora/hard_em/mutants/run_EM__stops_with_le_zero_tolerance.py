# breaks: run_EM
# bug: compares the improvement with tolerance * LL[-2] (negative), so it never stops
# says: stop_never, "yet the run went on"
# (a copy of correct/j_nansum_and_while.py with this one bug)
import numpy as np


def calculate_log_probability(X, F, B, s):
    X = np.asarray(X, dtype=np.float64)
    H, W, K = X.shape
    w = F.shape[1]
    lls = []
    for d in range(W - w + 1):
        model = np.hstack([B[:, :d], F, B[:, d + w:]]).astype(np.float64)
        lls.append(-np.sum((X - model[:, :, np.newaxis]) ** 2, axis=(0, 1)) / (2 * s ** 2))
    return np.array(lls) - H * W * (np.log(s) + np.log(2 * np.pi) / 2)


def calculate_lower_bound(X, F, B, s, a, q, hard_EM=False):
    ll = calculate_log_probability(X, F, B, s)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = q * (ll + np.log(a)[:, np.newaxis] - np.log(q))
    return np.nansum(terms)


def run_e_step(X, F, B, s, a, hard_EM=False):
    ll = calculate_log_probability(X, F, B, s)
    with np.errstate(divide="ignore"):
        lj = ll + np.log(a)[:, np.newaxis]
    if hard_EM:
        return (lj == lj.max(axis=0)).astype(float) * (np.cumsum(lj == lj.max(axis=0), axis=0) == 1)
    p = np.exp(lj - lj.max(axis=0))
    return p / p.sum(axis=0)


def run_m_step(X, q, w, hard_EM=False):
    X = np.asarray(X, dtype=np.float64)
    H, W, K = X.shape
    P = W - w + 1
    a = q.sum(axis=1) / K
    F = np.zeros((H, w))
    num = np.zeros((H, W))
    den = np.zeros(W)
    for d in range(P):
        xq = X @ q[d]
        F = F + xq[:, d:d + w]
        num = num + np.hstack([xq[:, :d], np.zeros((H, w)), xq[:, d + w:]])
        den = den + q[d].sum() * np.r_[np.ones(d), np.zeros(w), np.ones(W - d - w)]
    F = F / K
    with np.errstate(invalid="ignore", divide="ignore"):
        B = np.where(den > 0, num / den, X.mean(axis=2))
    err = 0.0
    for d in range(P):
        model = np.hstack([B[:, :d], F, B[:, d + w:]])
        err += np.sum(q[d] * np.sum((X - model[:, :, np.newaxis]) ** 2, axis=(0, 1)))
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
        if LL[-1] - LL[-2] < tolerance * LL[-2]:
            break
    LL.append(calculate_lower_bound(X, F, B, s, a, q, hard_EM))
    return F, B, s, a, np.array(LL)


def e_step_spherical(X, pi, mu, s2, hard_EM=False):
    N, D = X.shape
    sq = ((X[:, np.newaxis, :] - mu[np.newaxis, :, :]) ** 2).sum(axis=2)
    with np.errstate(divide="ignore"):
        lw = np.log(pi)[np.newaxis, :] - sq / (2 * s2) - D / 2 * np.log(2 * np.pi * s2)
    if hard_EM:
        out = np.zeros((N, len(pi)))
        out[np.arange(N), lw.argmax(axis=1)] = 1
        return out
    p = np.exp(lw - lw.max(axis=1)[:, np.newaxis])
    return p / p.sum(axis=1)[:, np.newaxis]


def m_step_spherical(X, gamma):
    N, D = X.shape
    Nc = gamma.sum(axis=0)
    mu = (gamma.T @ X) / Nc[:, np.newaxis]
    per_component = np.array([gamma[:, c] @ ((X - mu[c]) ** 2).sum(axis=1) / (Nc[c] * D) for c in range(len(Nc))])
    return Nc / N, mu, float(np.sum(Nc / N * per_component))


def kmeans(X, mu, max_iter=100):
    mu = np.array(mu, dtype=float)
    labels = None
    iteration = 0
    while True:
        if iteration >= max_iter:
            break
        iteration += 1
        new_labels = np.argmin(np.sum((X[:, np.newaxis, :] - mu[np.newaxis]) ** 2, axis=2), axis=1)
        if labels is not None and np.all(new_labels == labels):
            break
        labels = new_labels
        for c in range(mu.shape[0]):
            mine = labels == c
            if mine.any():
                mu[c] = X[mine].mean(axis=0)
    return mu, labels
