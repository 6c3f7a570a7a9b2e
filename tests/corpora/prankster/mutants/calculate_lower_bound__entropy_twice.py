# breaks: calculate_lower_bound
# bug: subtracts log q twice
# says: bound_entropy_twice
# (a copy of correct/g_python_floats.py with this one bug)
import math

import numpy as np


def calculate_log_probability(X, F, B, s):
    X = np.asarray(X, dtype=float)
    F = np.asarray(F, dtype=float)
    B = np.asarray(B, dtype=float)
    H, W, K = X.shape
    w = F.shape[1]
    P = W - w + 1
    constant = H * W * (math.log(s) + 0.5 * math.log(2 * math.pi))
    flat = X.reshape(H * W, K)
    models = np.empty((P, H, W))
    models[:] = B
    for d in range(P):
        models[d, :, d:d + w] = F
    models = models.reshape(P, H * W)
    # ||x - m||^2 = ||x||^2 - 2 m.x + ||m||^2, all positions and images at once
    squared = (flat * flat).sum(axis=0)[None, :] - 2.0 * models @ flat + (models * models).sum(axis=1)[:, None]
    return -squared / (2.0 * s * s) - constant


def calculate_lower_bound(X, F, B, s, a, q):
    ll = calculate_log_probability(X, F, B, s)
    total = 0.0
    P, K = q.shape
    for d in range(P):
        if a[d] == 0:
            continue                      # q is 0 there too
        for k in range(K):
            if q[d, k] > 0:
                total += float(q[d, k]) * (float(ll[d, k]) + math.log(a[d]) - 2 * math.log(q[d, k]))
    return total


def run_e_step(X, F, B, s, a):
    ll = calculate_log_probability(X, F, B, s)
    P, K = ll.shape
    q = np.zeros((P, K))
    for k in range(K):
        logs = [ll[d, k] + math.log(a[d]) if a[d] > 0 else -math.inf for d in range(P)]
        top = max(logs)
        weights = [math.exp(v - top) for v in logs]
        total = sum(weights)
        q[:, k] = [v / total for v in weights]
    return q


def run_m_step(X, q, w):
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    P = W - w + 1
    a = q.sum(axis=1) / q.sum()
    weighted = X.reshape(H * W, K) @ q.T                       # (H*W, P): sum_k q[d, k] X_k
    weighted = weighted.reshape(H, W, P)
    F = sum(weighted[:, d:d + w, d] for d in range(P)) / K
    B_num = np.zeros((H, W))
    B_den = np.zeros(W)
    for d in range(P):
        keep = np.ones(W, dtype=bool)
        keep[d:d + w] = False
        B_num[:, keep] += weighted[:, keep, d]
        B_den[keep] += q[d].sum()
    B = X.mean(axis=2)
    B[:, B_den > 0] = B_num[:, B_den > 0] / B_den[B_den > 0]
    error = 0.0
    for d in range(P):
        model = B.copy()
        model[:, d:d + w] = F
        error += float(np.sum(q[d] * np.sum((X - model[:, :, None]) ** 2, axis=(0, 1))))
    s = math.sqrt(error / (H * W * K))
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
    previous = None
    LL = [calculate_lower_bound(X, F, B, s, a, q)]
    previous = LL[0]
    for _ in range(max_iter):
        F, B, s, a = run_m_step(X, q, w)
        current = calculate_lower_bound(X, F, B, s, a, q)
        LL.append(current)
        q = run_e_step(X, F, B, s, a)
        change = (current - previous) / abs(previous)
        previous = current
        if change < tolerance:
            break
    LL.append(calculate_lower_bound(X, F, B, s, a, q))
    return F, B, s, a, np.array(LL)
