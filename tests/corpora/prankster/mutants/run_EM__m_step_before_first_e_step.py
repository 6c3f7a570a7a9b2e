# breaks: run_EM
# bug: starts with an M-step from a uniform q instead of an E-step from the start
# says: -
# (a copy of correct/k_scipy_stats.py with this one bug)
import itertools

import numpy as np
from scipy import stats
from scipy.special import softmax


def calculate_log_probability(X, F, B, s):
    X = X * 1.0
    H, W, K = X.shape
    w = F.shape[1]
    ll = np.empty((W - w + 1, K))
    for d in range(W - w + 1):
        mean = np.array(B, dtype=float)
        mean[:, d:d + w] = F
        ll[d] = stats.norm.logpdf(X, loc=mean[:, :, None], scale=s).sum(axis=(0, 1))
    return ll


def calculate_lower_bound(X, F, B, s, a, q):
    ll = calculate_log_probability(X, F, B, s)
    inside = q > 0
    log_a = np.log(np.broadcast_to(a[:, None], q.shape)[inside])
    return np.sum(q[inside] * (ll[inside] + log_a - np.log(q[inside])))


def run_e_step(X, F, B, s, a):
    ll = calculate_log_probability(X, F, B, s)
    logits = np.full(ll.shape, -np.inf)
    possible = a > 0
    logits[possible] = ll[possible] + np.log(a[possible])[:, None]
    return softmax(logits, axis=0)


def run_m_step(X, q, w):
    X = X * 1.0
    H, W, K = X.shape
    P = W - w + 1
    a = q.sum(axis=1) / K
    per_position = np.einsum("ijk,dk->dij", X, q)                # (P, H, W)
    F = np.zeros((H, w))
    B_total = per_position.sum(axis=0)
    B_weight = np.full(W, q.sum())
    for d in range(P):
        F += per_position[d, :, d:d + w]
        B_total[:, d:d + w] -= per_position[d, :, d:d + w]
        np.add.at(B_weight, np.arange(d, d + w), -q[d].sum())
    F /= K
    seen = B_weight > 1e-12 * q.sum()
    B = X.mean(axis=2)
    B[:, seen] = B_total[:, seen] / B_weight[seen]
    sq = np.zeros(P)
    for d in range(P):
        model = B.copy()
        model[:, d:d + w] = F
        sq[d] = q[d] @ np.sum((X - model[..., None]) ** 2, axis=(0, 1))
    s = np.sqrt(sq.sum() / (H * W * K))
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
    q = np.full((W - w + 1, K), 1 / (W - w + 1))
    LL = [calculate_lower_bound(X, F, B, s, a=a, q=q)]
    for iteration in itertools.count(1):
        if iteration > max_iter:
            break
        F, B, s, a = run_m_step(X, w=w, q=q)
        LL.append(calculate_lower_bound(X, F, B, s, q=q, a=a))
        q = run_e_step(X, F, B, s=s, a=a)
        gain = LL[-1] - LL[-2]
        if gain < tolerance * abs(LL[-2]):
            break
    LL.append(calculate_lower_bound(X, F, B, s, a, q))
    return F, B, s, a, np.array(LL)
