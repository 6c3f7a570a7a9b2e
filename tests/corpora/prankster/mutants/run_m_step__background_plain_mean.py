# breaks: run_m_step
# bug: keeps B as the plain average of the images
# says: B_plain_mean
# (a copy of correct/a_loop_per_position.py with this one bug)
import numpy as np
from scipy.special import logsumexp


def calculate_log_probability(X, F, B, s):
    H, W, K = X.shape
    w = F.shape[1]
    result = np.zeros((W - w + 1, K))
    const = H * W * np.log(np.sqrt(2 * np.pi) * s)
    for d in range(W - w + 1):
        model = B.astype(float).copy()
        model[:, d:d + w] = F
        diff = X - model[:, :, np.newaxis]
        result[d, :] = -np.sum(diff ** 2, axis=(0, 1)) / (2 * s ** 2) - const
    return result


def calculate_lower_bound(X, F, B, s, a, q):
    ll = calculate_log_probability(X, F, B, s)
    total = 0.0
    nonzero = q > 0
    with np.errstate(divide="ignore"):
        log_a = np.log(a)
    joint = ll + log_a[:, np.newaxis]
    total += np.sum(q[nonzero] * joint[nonzero])
    total -= np.sum(q[nonzero] * np.log(q[nonzero]))
    return total


def run_e_step(X, F, B, s, a):
    ll = calculate_log_probability(X, F, B, s)
    with np.errstate(divide="ignore"):
        joint = ll + np.log(a)[:, np.newaxis]
    return np.exp(joint - logsumexp(joint, axis=0, keepdims=True))


def run_m_step(X, q, w):
    H, W, K = X.shape
    n_pos = W - w + 1
    a = q.sum(axis=1) / q.sum()
    F = np.zeros((H, w))
    back_num = np.zeros((H, W))
    back_den = np.zeros(W)
    for d in range(n_pos):
        weighted = np.sum(X * q[d][np.newaxis, np.newaxis, :], axis=2)
        F = F + weighted[:, d:d + w]
        mask = np.ones(W, dtype=bool)
        mask[d:d + w] = False
        back_num[:, mask] += weighted[:, mask]
        back_den[mask] += q[d].sum()
    F = F / K
    B = np.mean(X, axis=2)
    seen = back_den > 0
    err = 0.0
    for d in range(n_pos):
        model = B.copy()
        model[:, d:d + w] = F
        err += np.sum(q[d] * np.sum((X - model[:, :, np.newaxis]) ** 2, axis=(0, 1)))
    s = np.sqrt(err / (H * W * K))
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
    LL = [calculate_lower_bound(X, F, B, s, a, q)]
    it = 0
    while it < max_iter:
        F, B, s, a = run_m_step(X, q, w)
        LL.append(calculate_lower_bound(X, F, B, s, a, q))
        q = run_e_step(X, F, B, s, a)
        it += 1
        if LL[-1] - LL[-2] < tolerance * np.abs(LL[-2]):
            break
    LL.append(calculate_lower_bound(X, F, B, s, a, q))
    return F, B, s, a, np.array(LL)
