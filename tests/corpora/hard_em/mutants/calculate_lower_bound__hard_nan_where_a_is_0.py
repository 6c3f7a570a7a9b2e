# breaks: calculate_lower_bound
# bug: computes q * log(a) everywhere, NaN where a hard M-step left a = 0
# says: bound_0log0
# general formulas (exact for a one-hot q); the mixture through expanded squared distances.
import numpy as np


def _models(F, B, n_positions):
    H, W = B.shape
    w = F.shape[1]
    stack = np.repeat(np.asarray(B, dtype=float)[:, :, None], n_positions, axis=2)
    cols = np.arange(w)
    for_d = np.arange(n_positions)
    stack[:, cols[:, None] + for_d[None, :], for_d[None, :]] = np.asarray(F, dtype=float)[:, :, None]
    return stack                                                       # (H, W, n_positions)


def calculate_log_probability(X, F, B, s):
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    models = _models(F, B, W - F.shape[1] + 1)
    sq = (np.einsum("ijk,ijk->k", X, X)[None, :]
          - 2 * np.tensordot(models, X, axes=([0, 1], [0, 1]))
          + np.einsum("ijd,ijd->d", models, models)[:, None])
    return -H * W * np.log(s) - 0.5 * H * W * np.log(2 * np.pi) - sq / (2 * s ** 2)


def calculate_lower_bound(X, F, B, s, a, q, hard_EM=False):
    ll = calculate_log_probability(X, F, B, s)
    pos = q > 0
    return float(np.sum(q[pos] * ll[pos]) + np.sum(q * np.log(a)[:, None])
                 - np.sum(q[pos] * np.log(q[pos])))


def run_e_step(X, F, B, s, a, hard_EM=False):
    ll = calculate_log_probability(X, F, B, s)
    ll = np.where(a[:, None] > 0, ll + np.log(np.where(a > 0, a, 1))[:, None], -np.inf)
    if hard_EM:
        best = np.argmax(ll, axis=0)
        return (np.arange(ll.shape[0])[:, None] == best[None, :]).astype(float)
    e = np.exp(ll - ll.max(axis=0))
    return e / e.sum(axis=0)


def run_m_step(X, q, w, hard_EM=False):
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    n = W - w + 1
    per_position = q.sum(axis=1)
    a = per_position / K
    weighted = np.tensordot(X, q, axes=([2], [1]))                     # (H, W, n)
    d = np.arange(n)
    F = weighted[:, np.arange(w)[:, None] + d[None, :], d[None, :]].sum(axis=2) / K
    covered = (np.arange(W)[:, None] >= d[None, :]) & (np.arange(W)[:, None] < d[None, :] + w)
    show = (~covered).astype(float) @ q                                # (W, K)
    weight = show.sum(axis=1)
    B = X.mean(axis=2)
    B = np.where(weight > 0, np.einsum("ijk,jk->ij", X, show) / np.where(weight > 0, weight, 1), B)
    models = _models(F, B, n)
    err = (np.einsum("ijk,ijk->k", X, X).sum() - 2 * np.sum(models * weighted)
           + np.einsum("ijd,ijd->d", models, models) @ per_position)
    return F, B, np.sqrt(max(err, 0) / (H * W * K)), a


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
    for it in range(max_iter):
        F, B, s, a = run_m_step(X, q, w, hard_EM)
        LL.append(calculate_lower_bound(X, F, B, s, a, q, hard_EM))
        q = run_e_step(X, F, B, s, a, hard_EM)
        if (LL[-1] - LL[-2]) / abs(LL[-2]) < tolerance:
            break
    LL.append(calculate_lower_bound(X, F, B, s, a, q, hard_EM))
    return F, B, s, a, np.array(LL)


def e_step_spherical(X, pi, mu, s2, hard_EM=False):
    D = X.shape[1]
    dist = (X ** 2).sum(1)[:, None] - 2 * X @ mu.T + (mu ** 2).sum(1)[None, :]
    logw = np.log(np.where(pi > 0, pi, 1e-300)) - dist / (2 * s2) - 0.5 * D * np.log(2 * np.pi * s2)
    if hard_EM:
        g = np.zeros_like(logw)
        g[np.arange(len(X)), logw.argmax(axis=1)] = 1
        return g
    g = np.exp(logw - logw.max(axis=1, keepdims=True))
    return g / g.sum(axis=1, keepdims=True)


def m_step_spherical(X, gamma):
    N, D = X.shape
    Nc = gamma.sum(axis=0)
    mu = gamma.T @ X / Nc[:, None]
    diff = X[:, None, :] - mu[None, :, :]
    s2 = np.einsum("nc,ncd,ncd->", gamma, diff, diff) / (N * D)
    return Nc / N, mu, s2


def kmeans(X, mu, max_iter=100):
    centres = mu.copy().astype(float)
    labels = None
    it = 0
    while it < max_iter:
        it += 1
        d2 = ((X[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        new = d2.argmin(axis=1)
        if labels is not None and (new == labels).all():
            break
        labels = new
        onehot = np.eye(len(centres))[labels]
        counts = onehot.sum(axis=0)
        centres = np.where(counts[:, None] > 0, onehot.T @ X / np.maximum(counts, 1)[:, None], centres)
    return centres, labels
