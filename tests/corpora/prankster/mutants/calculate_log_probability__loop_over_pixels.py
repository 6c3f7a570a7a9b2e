# breaks: calculate_log_probability
# bug: none in the value: Python loops over positions, images and every pixel (far too slow for the shots)
# says: ll_pixel_loop
# (mutant of correct/b_window_sums.py)
import math
# Fully vectorised without a model stack: window sums (cumulative sums along the columns) and
# sliding windows, so only (W, K), (W-w+1, K) and (H, w) arrays are ever built.
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def _window_sums(per_column, w):
    """Sums over every run of w consecutive rows: (W, ...) -> (W - w + 1, ...)."""
    c = np.cumsum(per_column, axis=0)
    c = np.concatenate([np.zeros((1,) + per_column.shape[1:]), c], axis=0)
    return c[w:] - c[:-w]


def _cross_and_norms(X, F, B):
    """<model_d, X_k> (W-w+1, K) and ||model_d||^2 (W-w+1,)."""
    w = F.shape[1]
    bx = np.einsum("ij,ijk->jk", B, X)                        # background . image, per column
    windows = sliding_window_view(X, w, axis=1)                # (H, W-w+1, K, w)
    fx = np.einsum("im,idkm->dk", F, windows)                  # face . window
    cross = bx.sum(axis=0)[None, :] - _window_sums(bx, w) + fx
    bb = np.sum(B * B, axis=0)
    norms = np.sum(B * B) - _window_sums(bb, w) + np.sum(F * F)
    return cross, norms


def calculate_log_probability(X, F, B, s):
    # Every pixel of every image at every position, one at a time.
    H, W, K = X.shape
    w = F.shape[1]
    out = np.zeros((W - w + 1, K))
    for d in range(W - w + 1):
        for k in range(K):
            total = 0.0
            for i in range(H):
                for j in range(W):
                    model = F[i, j - d] if d <= j < d + w else B[i, j]
                    total += (X[i, j, k] - model) ** 2
            out[d, k] = -0.5 * H * W * math.log(2 * math.pi * s * s) - total / (2 * s * s)
    return out


def calculate_lower_bound(X, F, B, s, a, q):
    ll = calculate_log_probability(X, F, B, s)
    mask = q != 0
    la = np.zeros_like(q)
    la[mask] = (ll + np.log(np.where(a > 0, a, 1.0))[:, None])[mask]
    lq = np.zeros_like(q)
    lq[mask] = np.log(q[mask])
    return float(np.sum(q * (la - lq)))


def run_e_step(X, F, B, s, a):
    log_post = calculate_log_probability(X, F, B, s)
    log_post = log_post + np.log(np.where(a > 0, a, 1.0))[:, None]
    log_post[a == 0, :] = -np.inf
    log_post -= np.max(log_post, axis=0)
    post = np.exp(log_post)
    return post / np.sum(post, axis=0)


def run_m_step(X, q, w):
    X = np.array(X, dtype=np.float64)
    H, W, K = X.shape
    n = W - w + 1
    counts = q.sum(axis=1)
    a = counts / counts.sum()
    F = np.einsum("dk,idkm->im", q, sliding_window_view(X, w, axis=1)) / counts.sum()
    # Column j is under the face for the positions max(0, j-w+1) .. min(j, n-1).
    cq = np.concatenate([np.zeros((1, K)), np.cumsum(q, axis=0)], axis=0)
    j = np.arange(W)
    covered = cq[np.minimum(j + 1, n)] - cq[np.maximum(j - w + 1, 0)]     # (W, K)
    shows = q.sum(axis=0)[None, :] - covered
    weight = shows.sum(axis=1)
    B = X.mean(axis=2)
    ok = weight > 0
    B[:, ok] = np.einsum("ijk,jk->ij", X[:, ok, :], shows[ok]) / weight[ok]
    cross, norms = _cross_and_norms(X, F, B)
    err = np.sum(X * X, axis=(0, 1)) @ q.sum(axis=0) - 2 * np.sum(q * cross) + norms @ counts
    s = np.sqrt(max(err, 0.0) / (H * W * counts.sum()))
    return F, B, s, a


def run_EM(X, w, F=None, B=None, s=None, a=None, tolerance=0.001, max_iter=50):
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
    q = run_e_step(X, F, B, s, a)
    LL = np.array([calculate_lower_bound(X, F, B, s, a, q)])
    for iteration in range(max_iter):
        F, B, s, a = run_m_step(X, q, w)
        LL = np.append(LL, calculate_lower_bound(X, F, B, s, a, q))
        q = run_e_step(X, F, B, s, a)
        if LL[-1] - LL[-2] < tolerance * abs(LL[-2]):
            break
    LL = np.append(LL, calculate_lower_bound(X, F, B, s, a, q))
    return F, B, s, a, LL
