# breaks: calculate_lower_bound
# bug: adds log q instead of subtracting it
# says: bound_entropy_sign
# (a copy of correct/e_python_floats.py with this one bug)
import math

import numpy as np


def calculate_log_probability(X, F, B, s):
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    w = F.shape[1]
    ll = np.empty((W - w + 1, K))
    for d in range(W - w + 1):
        model = np.array(B, dtype=float)
        model[:, d:d + w] = F
        ll[d] = -((X - model[..., None]) ** 2).sum(axis=(0, 1)) / (2.0 * s * s)
    return ll - H * W * (math.log(s) + 0.5 * math.log(2.0 * math.pi))


def calculate_lower_bound(X, F, B, s, a, q, hard_EM=False):
    ll = calculate_log_probability(X, F, B, s)
    total = 0.0
    for d, k in zip(*np.nonzero(q)):
        total += float(q[d, k]) * (float(ll[d, k]) + math.log(a[d]) + math.log(q[d, k]))
    return total


def run_e_step(X, F, B, s, a, hard_EM=False):
    ll = calculate_log_probability(X, F, B, s)
    P, K = ll.shape
    q = np.zeros((P, K))
    for k in range(K):
        scores = [ll[d, k] + math.log(a[d]) if a[d] > 0 else -math.inf for d in range(P)]
        if hard_EM:
            q[int(np.argmax(scores)), k] = 1.0
            continue
        top = max(scores)
        weights = [math.exp(v - top) for v in scores]
        q[:, k] = np.array(weights) / sum(weights)
    return q


def run_m_step(X, q, w, hard_EM=False):
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    P = W - w + 1
    a = q.sum(axis=1) / K
    F = np.zeros((H, w))
    num = np.zeros((H, W))
    den = np.zeros(W)
    for d in range(P):
        if hard_EM and not q[d].any():
            continue                                   # nobody chose this position
        weighted = np.tensordot(X, q[d], axes=(2, 0))
        F += weighted[:, d:d + w]
        mask = np.ones(W, dtype=bool)
        mask[d:d + w] = False
        num[:, mask] += weighted[:, mask]
        den[mask] += q[d].sum()
    F /= K
    B = X.mean(axis=2)
    B[:, den > 0] = num[:, den > 0] / den[den > 0]
    err = 0.0
    for d in range(P):
        if not q[d].any():
            continue
        model = B.copy()
        model[:, d:d + w] = F
        err += float(q[d] @ ((X - model[..., None]) ** 2).sum(axis=(0, 1)))
    return F, B, math.sqrt(err / (H * W * K)), a


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
        if (LL[-1] - LL[-2]) / abs(LL[-2]) < tolerance:
            break
    LL.append(calculate_lower_bound(X, F, B, s, a, q, hard_EM))
    return F, B, s, a, np.array(LL)


def e_step_spherical(X, pi, mu, s2, hard_EM=False):
    N, D = X.shape
    C = len(pi)
    gamma = np.zeros((N, C))
    for i in range(N):
        logs = []
        for c in range(C):
            squared = float(np.sum((X[i] - mu[c]) ** 2))
            logs.append((math.log(pi[c]) if pi[c] > 0 else -math.inf) - squared / (2 * s2))
        if hard_EM:
            gamma[i, logs.index(max(logs))] = 1.0
            continue
        top = max(logs)
        weights = [math.exp(v - top) for v in logs]
        total = sum(weights)
        gamma[i] = [v / total for v in weights]
    return gamma


def m_step_spherical(X, gamma):
    N, D = X.shape
    C = gamma.shape[1]
    Nc = [float(gamma[:, c].sum()) for c in range(C)]
    mu = np.array([sum(gamma[i, c] * X[i] for i in range(N)) / Nc[c] for c in range(C)])
    s2 = 0.0
    for i in range(N):
        for c in range(C):
            s2 += gamma[i, c] * float(np.sum((X[i] - mu[c]) ** 2))
    return np.array(Nc) / N, mu, s2 / (N * D)


def kmeans(X, mu, max_iter=100):
    mu = np.copy(mu).astype(float)
    labels = None
    for _ in range(max_iter):
        distances = np.stack([((X - m) ** 2).sum(axis=1) for m in mu], axis=1)
        new_labels = distances.argmin(axis=1)
        if labels is not None and (new_labels == labels).all():
            break
        labels = new_labels
        for c in range(len(mu)):
            if np.sum(labels == c) > 0:
                mu[c] = np.mean(X[labels == c], axis=0)
    return mu, labels
