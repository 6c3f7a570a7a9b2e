# breaks: run_EM
# bug: stores the new posterior under another name, so every M-step uses the first q
# says: -
# (a copy of correct/h_double_loop.py with this one bug)
import numpy as np


def calculate_log_probability(X, F, B, s):
    H, W, K = X.shape
    w = F.shape[1]
    ll = np.zeros((W - w + 1, K))
    for k in range(K):
        image = X[:, :, k].astype(float)
        for d in range(W - w + 1):
            model = np.copy(B).astype(float)
            model[:, d:d + w] = F
            ll[d, k] = (-0.5 * np.sum((image - model) ** 2) / s ** 2
                        - H * W * np.log(s) - 0.5 * H * W * np.log(2 * np.pi))
    return ll


def calculate_lower_bound(X, F, B, s, a, q):
    ll = calculate_log_probability(X, F, B, s)
    L = 0
    for k in range(q.shape[1]):
        for d in range(q.shape[0]):
            if q[d, k] != 0:
                L += q[d, k] * (ll[d, k] + np.log(a[d]) - np.log(q[d, k]))
    return L


def run_e_step(X, F, B, s, a):
    ll = calculate_log_probability(X, F, B, s)
    q = np.zeros_like(ll)
    for k in range(ll.shape[1]):
        with np.errstate(divide="ignore"):
            column = ll[:, k] + np.log(a)
        q[:, k] = np.exp(column - np.logaddexp.reduce(column))
    return q


def run_m_step(X, q, w):
    H, W, K = X.shape
    P = W - w + 1
    X = X.astype(float)
    a = np.sum(q, axis=1) / K
    F = np.zeros((H, w))
    B_sum = np.zeros((H, W))
    B_weight = np.zeros((1, W))
    for k in range(K):
        for d in range(P):
            F += q[d, k] * X[:, d:d + w, k]
            shown = np.ones(W, dtype=bool)
            shown[d:d + w] = False
            B_sum[:, shown] += q[d, k] * X[:, shown, k]
            B_weight[0, shown] += q[d, k]
    F = F / K
    hidden = B_weight[0] == 0
    B = B_sum / np.where(hidden, 1.0, B_weight)
    B[:, hidden] = X[:, hidden, :].mean(axis=2)
    total = 0.0
    for k in range(K):
        for d in range(P):
            if q[d, k] == 0:
                continue
            model = B.copy()
            model[:, d:d + w] = F
            total += q[d, k] * np.sum((X[:, :, k] - model) ** 2)
    s = np.sqrt(total / (H * W * K))
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
    for i in range(1, max_iter + 1):
        F, B, s, a = run_m_step(X, q, w)
        LL.append(calculate_lower_bound(X, F, B, s, a, q))
        q_new = run_e_step(X, F, B, s, a)
        if LL[i] - LL[i - 1] < tolerance * np.abs(LL[i - 1]):
            break
    LL.append(calculate_lower_bound(X, F, B, s, a, q))
    return F, B, s, a, np.array(LL)
