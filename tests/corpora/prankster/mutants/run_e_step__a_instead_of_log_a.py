# breaks: run_e_step
# bug: adds a[d] instead of log a[d]
# says: q_a_not_log
# (a copy of correct/e_model_stack_scipy.py with this one bug)
import numpy as np
from scipy.special import softmax, xlogy


def model_stack(F, B, n_positions):
    """models[d] = B with F pasted over columns d .. d + w - 1, shape (n_positions, H, W)."""
    F = np.asarray(F, dtype=float)
    w = F.shape[1]
    models = np.repeat(np.asarray(B, dtype=float)[None, :, :], n_positions, axis=0)
    for d in range(n_positions):
        models[d, :, d:d + w] = F
    return models


def calculate_log_probability(X, F, B, s):
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    models = model_stack(F, B, W - np.shape(F)[1] + 1)
    residual = X[None, :, :, :] - models[:, :, :, None]            # (P, H, W, K)
    squared = np.einsum("dijk,dijk->dk", residual, residual)
    return -squared / (2 * s ** 2) - H * W * (np.log(s) + 0.5 * np.log(2 * np.pi))


def calculate_lower_bound(X, F, B, s, a, q):
    ll = calculate_log_probability(X=X, F=F, B=B, s=s)
    prior = xlogy(q, np.asarray(a, dtype=float)[:, None])           # 0 where q = 0, even if a = 0
    return np.sum(q * ll) + np.sum(prior) - np.sum(xlogy(q, q))


def run_e_step(X, F, B, s, a):
    ll = calculate_log_probability(X, F, B, s)
    with np.errstate(divide="ignore"):
        log_prior = np.log(np.asarray(a, dtype=float))
    return softmax(ll + np.asarray(a)[:, None], axis=0)


def run_m_step(X, q, w):
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    P = W - w + 1
    a = q.mean(axis=1)
    F = np.zeros((H, w))
    for d in range(P):
        F += np.einsum("ijk,k->ij", X[:, d:d + w, :], q[d])
    F /= K
    mask = np.ones((P, W))
    for d in range(P):
        mask[d, d:d + w] = 0.0                                      # 1 where column j shows the background
    weight = np.einsum("dk,dj->j", q, mask)
    total = np.einsum("ijk,dk,dj->ij", X, q, mask)
    B = X.mean(axis=2)
    B[:, weight > 0] = total[:, weight > 0] / weight[weight > 0]
    models = model_stack(F, B, P)
    squared = np.stack([((X - models[d][:, :, None]) ** 2).sum(axis=(0, 1)) for d in range(P)])   # (P, K)
    s = np.sqrt(np.sum(q * squared) / (H * W * K))
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
    q = run_e_step(a=a, s=s, B=B, F=F, X=X)
    LL = [calculate_lower_bound(q=q, a=a, s=s, B=B, F=F, X=X)]
    for iteration in range(max_iter):
        F, B, s, a = run_m_step(w=w, q=q, X=X)
        LL.append(calculate_lower_bound(X=X, F=F, B=B, s=s, a=a, q=q))
        q = run_e_step(X=X, F=F, B=B, s=s, a=a)
        if LL[-1] - LL[-2] < tolerance * abs(LL[-2]):
            break
    LL.append(calculate_lower_bound(X, F, B, s, a, q=q))
    return F, B, s, a, np.array(LL)
