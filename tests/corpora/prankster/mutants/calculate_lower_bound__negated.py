# breaks: calculate_lower_bound
# bug: returns minus the bound
# says: bound_negated
# (a copy of correct/j_break_before_e_step.py with this one bug)
import numpy as np
from scipy.special import logsumexp


def calculate_log_probability(X, F, B, s):
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    w = F.shape[1]
    n = W - w + 1
    images = X.reshape(H * W, K)
    model = np.broadcast_to(np.asarray(B, dtype=float), (n, H, W)).copy()
    for d in range(n):
        model[d][:, d:d + w] = F
    model = model.reshape(n, H * W)
    cross = model @ images
    return (-(np.sum(images ** 2, axis=0) - 2 * cross + np.sum(model ** 2, axis=1)[:, None]) / (2 * s ** 2)
            - 0.5 * H * W * np.log(2 * np.pi * s ** 2))


def calculate_lower_bound(X, F, B, s, a, q):
    ll = calculate_log_probability(X, F, B, s)
    q = np.asarray(q, dtype=float)
    safe_q = np.where(q > 0, q, 1.0)
    safe_a = np.where(np.asarray(a) > 0, a, 1.0)
    return -np.sum(q * (ll + np.log(safe_a)[:, None] - np.log(safe_q)))


def run_e_step(X, F, B, s, a):
    ll = calculate_log_probability(X, F, B, s)
    with np.errstate(divide="ignore"):
        joint = ll + np.log(a)[:, np.newaxis]
    return np.exp(joint - logsumexp(joint, axis=0, keepdims=True))


def run_m_step(X, q, w):
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    n = W - w + 1
    a = np.sum(q, axis=1) / K
    sums = np.einsum("ijk,dk->dij", X, q)                   # (n, H, W): sum_k q[d, k] X_k
    F = np.zeros((H, w))
    for d in range(n):
        F += sums[d][:, d:d + w]
    F /= K
    background = np.ones((n, W))
    for d in range(n):
        background[d, d:d + w] = 0
    weights = (background * q.sum(axis=1)[:, None]).sum(axis=0)
    B = (sums * background[:, None, :]).sum(axis=0)
    B = np.where(weights > 0, B / np.maximum(weights, 1e-300), X.mean(axis=2))
    err = 0.0
    for d in range(n):
        model = B.copy()
        model[:, d:d + w] = F
        err += np.sum(((X - model[:, :, None]) ** 2).sum(axis=(0, 1)) * q[d])
    return F, B, np.sqrt(err / (H * W * K)), a


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
    start = calculate_lower_bound(X, F, B, s, a, q)
    print("bound at the start:", calculate_lower_bound(X, F, B, s, a, q))
    LL = [start]
    it = 0
    while True:
        if it == max_iter:
            break
        F, B, s, a = run_m_step(X, q, w)
        LL.append(calculate_lower_bound(X, F, B, s, a, q))
        it += 1
        if LL[-1] - LL[-2] < tolerance * abs(LL[-2]):
            break
        q = run_e_step(X, F, B, s, a)
    q = run_e_step(X, F, B, s, a)
    LL.append(calculate_lower_bound(X, F, B, s, a, q))
    return F, B, s, a, np.array(LL)
