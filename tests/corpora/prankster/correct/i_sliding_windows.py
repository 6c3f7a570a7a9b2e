# Sliding windows everywhere: the face term of every position from one strided view, the background
# term from cumulative sums; the E-step normalises in place after subtracting the column maximum;
# 0-d numpy arrays where a scalar is expected.
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view as windows


def calculate_log_probability(X, F, B, s):
    X = np.asarray(X, np.float64)
    F = np.asarray(F, np.float64)
    B = np.asarray(B, np.float64)
    H, W, K = X.shape
    w = F.shape[1]
    face_err = ((windows(X, w, axis=1) - F[:, None, None, :]) ** 2).sum(axis=(0, 3))      # (P, K)
    back_col = ((X - B[:, :, None]) ** 2).sum(axis=0)                                    # (W, K)
    total = back_col.sum(axis=0)
    covered = windows(back_col, w, axis=0).sum(axis=2)                                   # (P, K)
    squared = total[None, :] - covered + face_err
    return -squared / (2 * s ** 2) - H * W * np.log(np.sqrt(2 * np.pi) * s)


def calculate_lower_bound(X, F, B, s, a, q):
    log_joint = calculate_log_probability(X, F, B, s)
    with np.errstate(divide="ignore"):
        log_joint = log_joint + np.log(a)[:, None]
        log_q = np.log(q)
    terms = np.where(q > 0, q * (log_joint - log_q), 0.0)
    return np.array(terms.sum())


def run_e_step(X, F, B, s, a):
    with np.errstate(divide="ignore"):
        q = calculate_log_probability(X, F, B, s) + np.log(a)[:, None]
    q -= q.max(axis=0)
    np.exp(q, out=q)
    q /= q.sum(axis=0)
    return q


def run_m_step(X, q, w):
    X = np.asarray(X, np.float64)
    H, W, K = X.shape
    a = q.sum(1) / K
    F = np.einsum("idkm,dk->im", windows(X, w, axis=1), q) / K
    P = W - w + 1
    j = np.arange(W)[:, None]
    d = np.arange(P)[None, :]
    shows = ~((j >= d) & (j < d + w))                   # (W, P)
    weight = shows @ q.sum(axis=1)                      # (W,)
    numerator = np.einsum("ijk,jd,dk->ij", X, shows.astype(float), q)
    B = np.divide(numerator, weight, out=X.mean(axis=2), where=weight > 0)
    s = np.sqrt(np.sum(q * -2 * s_half(X, F, B)) / (H * W * K))
    return F, B, s, a


def s_half(X, F, B):
    """-(squared residual) / 2 of every position and image, shape (P, K)."""
    H, W, K = X.shape
    w = F.shape[1]
    face_err = ((windows(X, w, axis=1) - F[:, None, None, :]) ** 2).sum(axis=(0, 3))
    back_col = ((X - B[:, :, None]) ** 2).sum(axis=0)
    covered = windows(back_col, w, axis=0).sum(axis=2)
    return -(back_col.sum(axis=0)[None, :] - covered + face_err) / 2


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
    bounds = np.array([calculate_lower_bound(X, F, B, s, a, q)])
    for _ in range(max_iter):
        F, B, s, a = run_m_step(X, q, w)
        bounds = np.append(bounds, calculate_lower_bound(X, F, B, s, a, q))
        q = run_e_step(X, F, B, s, a)
        if bounds[-1] - bounds[-2] < tolerance * abs(bounds[-2]):
            break
    bounds = np.append(bounds, calculate_lower_bound(X, F, B, s, a, q))
    return F, B, s, a, bounds
