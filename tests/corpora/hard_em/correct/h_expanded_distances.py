# Expanded squared distances (||x||^2 - 2 x.mu + ||mu||^2) in the mixture's E-step, np.linalg.norm
# in k-means (the argmin of the distance is the argmin of its square), the hard bound as a sum over
# the chosen positions, and the hard M-step through the general formulas.
import numpy as np


def calculate_log_probability(X, F, B, s):
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    w = F.shape[1]
    base = ((X - np.asarray(B, dtype=float)[:, :, None]) ** 2).sum(axis=(0, 1))
    out = np.empty((W - w + 1, K))
    for d in range(W - w + 1):
        win = X[:, d:d + w, :]
        hidden = ((win - np.asarray(B, dtype=float)[:, d:d + w, None]) ** 2).sum(axis=(0, 1))
        face = ((win - np.asarray(F, dtype=float)[:, :, None]) ** 2).sum(axis=(0, 1))
        out[d] = base - hidden + face
    return -out / (2 * s ** 2) - H * W * np.log(np.sqrt(2 * np.pi) * s)


def calculate_lower_bound(X, F, B, s, a, q, hard_EM=False):
    ll = calculate_log_probability(X, F, B, s)
    if hard_EM:
        d, k = np.nonzero(q)
        return float(np.sum(ll[d, k] + np.log(a[d])))
    pos = q > 0
    with np.errstate(divide="ignore"):
        joint = ll + np.log(a)[:, None]
    return float(np.sum(q[pos] * (joint[pos] - np.log(q[pos]))))


def run_e_step(X, F, B, s, a, hard_EM=False):
    with np.errstate(divide="ignore"):
        joint = calculate_log_probability(X, F, B, s) + np.log(a)[:, None]
    if hard_EM:
        q = np.zeros_like(joint)
        np.put_along_axis(q, np.argmax(joint, axis=0)[None, :], 1.0, axis=0)
        return q
    q = np.exp(joint - np.max(joint, axis=0, keepdims=True))
    return q / np.sum(q, axis=0, keepdims=True)


def run_m_step(X, q, w, hard_EM=False):
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    P = W - w + 1
    a = q.sum(axis=1) / K
    F = np.zeros((H, w))
    for d in range(P):
        F += X[:, d:d + w, :] @ q[d]
    F /= K
    inside = np.zeros((P, W), dtype=bool)
    for d in range(P):
        inside[d, d:d + w] = True
    show = (~inside).T.astype(float) @ q                   # (W, K)
    weight = show.sum(axis=1)
    B = X.mean(axis=2)
    good = weight > 0
    B[:, good] = (X[:, good, :] * show[None, good, :]).sum(axis=2) / weight[good]
    err = 0.0
    for d in range(P):
        m = B.copy()
        m[:, d:d + w] = F
        err += np.dot(q[d], ((X - m[:, :, None]) ** 2).sum(axis=(0, 1)))
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
    bounds = [calculate_lower_bound(X, F, B, s, a, q, hard_EM)]
    n = 0
    while n < max_iter:
        n += 1
        F, B, s, a = run_m_step(X, q, w, hard_EM)
        bounds.append(calculate_lower_bound(X, F, B, s, a, q, hard_EM))
        q = run_e_step(X, F, B, s, a, hard_EM)
        if bounds[-1] - bounds[-2] < tolerance * abs(bounds[-2]):
            break
    bounds.append(calculate_lower_bound(X, F, B, s, a, q, hard_EM))
    return F, B, s, a, np.array(bounds)


def e_step_spherical(X, pi, mu, s2, hard_EM=False):
    D = X.shape[1]
    sq = np.sum(X ** 2, axis=1)[:, None] - 2 * X @ mu.T + np.sum(mu ** 2, axis=1)[None, :]
    with np.errstate(divide="ignore"):
        logw = np.log(pi)[None, :] - sq / (2 * s2) - D / 2 * np.log(2 * np.pi * s2)
    if hard_EM:
        g = np.zeros_like(logw)
        g[np.arange(len(X)), np.argmax(logw, axis=1)] = 1.0
        return g
    g = np.exp(logw - np.max(logw, axis=1, keepdims=True))
    g /= np.sum(g, axis=1, keepdims=True)
    return g


def m_step_spherical(X, gamma):
    N, D = X.shape
    Nc = gamma.sum(axis=0)
    mu = np.zeros((gamma.shape[1], D))
    s2 = 0.0
    for c in range(gamma.shape[1]):
        mu[c] = np.average(X, axis=0, weights=gamma[:, c])
        s2 += np.sum(gamma[:, c] * np.sum((X - mu[c]) ** 2, axis=1))
    return Nc / N, mu, s2 / (N * D)


def kmeans(X, mu, max_iter=100):
    centres = np.array(mu, dtype=float, copy=True)
    labels = None
    for _ in range(max_iter):
        dist = np.linalg.norm(X[:, None, :] - centres[None, :, :], axis=2)
        new = np.argmin(dist, axis=1)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        for c in np.unique(labels):
            centres[c] = X[labels == c].mean(axis=0)
    return centres, labels
