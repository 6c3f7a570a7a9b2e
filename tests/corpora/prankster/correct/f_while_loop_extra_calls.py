# run_EM in another valid order: a while loop that starts every iteration with an E-step (repeated on
# the same parameters the first time), extra bounds (after the E-step, and after the stop
# test), the stop test before the E-step, and a final E-step after the loop. The steps themselves: one loop over
# positions, integer-safe float conversion, logsumexp for the normalisation.
import numpy as np
from scipy.special import logsumexp


def calculate_log_probability(X, F, B, s):
    X = X.astype(np.float64)
    H, W, K = X.shape
    w = F.shape[1]
    out = np.empty((W - w + 1, K))
    for d in range(W - w + 1):
        model = np.array(B, dtype=np.float64)
        model[:, d:d + w] = F
        out[d] = -((X - model[..., None]) ** 2).sum(axis=(0, 1)) / (2 * s * s)
    return out - H * W * np.log(s) - H * W / 2 * np.log(2 * np.pi)


def calculate_lower_bound(X, F, B, s, a, q):
    ll = calculate_log_probability(X, F, B, s)
    L = 0.0
    for d in range(q.shape[0]):
        used = q[d] > 0
        if not used.any():
            continue
        L += np.sum(q[d, used] * (ll[d, used] + np.log(a[d]) - np.log(q[d, used])))
    return L


def run_e_step(X, F, B, s, a):
    ll = calculate_log_probability(X, F, B, s)
    with np.errstate(divide="ignore"):
        joint = ll + np.log(a).reshape(-1, 1)
    return np.exp(joint - logsumexp(joint, axis=0))


def run_m_step(X, q, w):
    X = X.astype(np.float64)
    H, W, K = X.shape
    P = W - w + 1
    a = q.sum(axis=1) / K
    F = sum(np.tensordot(X[:, d:d + w, :], q[d], axes=([2], [0])) for d in range(P)) / K
    numerator = np.zeros((H, W))
    weight = np.zeros(W)
    for d in range(P):
        shows = np.r_[0:d, d + w:W]
        numerator[:, shows] += np.tensordot(X[:, shows, :], q[d], axes=([2], [0]))
        weight[shows] += q[d].sum()
    B = np.where(weight > 0, numerator / np.where(weight > 0, weight, 1.0), X.mean(axis=2))
    sq = 0.0
    for d in range(P):
        model = B.copy()
        model[:, d:d + w] = F
        sq += q[d] @ ((X - model[..., None]) ** 2).sum(axis=(0, 1))
    return F, B, np.sqrt(sq / (H * W * K)), a


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
    iterations = 0
    while iterations < max_iter:
        q = run_e_step(X, F, B, s, a)                  # the same parameters as before, the first time
        after_e_step = calculate_lower_bound(X, F, B, s, a, q)      # only to watch it climb
        assert after_e_step >= LL[-1] - 1e-6 * abs(LL[-1])
        F, B, s, a = run_m_step(X, q, w)
        LL.append(calculate_lower_bound(X, F, B, s, a, q))
        iterations += 1
        if LL[-1] - LL[-2] < tolerance * abs(LL[-2]):
            break
        calculate_lower_bound(X, F, B, s, a, q)                    # again, after the stop test
    q = run_e_step(X, F, B, s, a)
    LL.append(calculate_lower_bound(X, F, B, s, a, q))
    return F, B, s, a, np.asarray(LL)
