# breaks: run_e_step
# bug: the hard branch picks the least probable position
# says: hard_q_argmin, hard_q_impossible
# (a copy of correct/c_scipy_keywords.py with this one bug)
import numpy as np
from scipy.spatial.distance import cdist
from scipy.special import logsumexp, softmax, xlogy


def calculate_log_probability(X, F, B, s):
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    w = np.shape(F)[1]
    ll = np.empty((W - w + 1, K))
    for d in range(W - w + 1):
        model = np.array(B, dtype=float)
        model[:, d:d + w] = F
        ll[d] = -np.sum((X - model[:, :, None]) ** 2, axis=(0, 1)) / (2 * s ** 2)
    return ll - H * W * np.log(s * np.sqrt(2 * np.pi))


def calculate_lower_bound(X, F, B, s, a, q, hard_EM=False):
    ll = calculate_log_probability(X=X, s=s, F=F, B=B)
    return np.sum(q * ll) + np.sum(xlogy(q, a[:, None])) - np.sum(xlogy(q, q))


def run_e_step(X, F, B, s, a, hard_EM=False):
    ll = calculate_log_probability(X, F, B, s)
    with np.errstate(divide="ignore"):
        joint = ll + np.log(a)[:, None]
    if hard_EM:
        return np.eye(joint.shape[0])[np.argmin(joint, axis=0)].T
    return softmax(joint, axis=0)


def run_m_step(X, q, w, hard_EM=False):
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    P = W - w + 1
    a = q.sum(axis=1) / K
    S = np.tensordot(X, q, axes=([2], [1]))               # (H, W, P)
    F = sum(S[:, d:d + w, d] for d in range(P)) / K
    outside = np.ones((W, P))
    for d in range(P):
        outside[d:d + w, d] = 0.0
    weight = outside @ q.sum(axis=1)
    total = np.einsum("ijd,jd->ij", S, outside)
    B = X.mean(axis=2)
    B[:, weight > 0] = total[:, weight > 0] / weight[weight > 0]
    err = 0.0
    for d in range(P):
        model = B.copy()
        model[:, d:d + w] = F
        err += np.sum(q[d] * ((X - model[:, :, None]) ** 2).sum(axis=(0, 1)))
    return F, B, np.sqrt(err / (H * W * K)), a


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
    q = run_e_step(X, F, B, s, a, hard_EM=hard_EM)
    LL = [calculate_lower_bound(X, F, B, s, a, q, hard_EM=hard_EM)]
    for _ in range(max_iter):
        F, B, s, a = run_m_step(hard_EM=hard_EM, X=X, q=q, w=w)
        LL.append(calculate_lower_bound(q=q, X=X, F=F, B=B, s=s, a=a, hard_EM=hard_EM))
        q = run_e_step(X, F, B, s, a, hard_EM=hard_EM)
        if LL[-1] - LL[-2] < tolerance * abs(LL[-2]):
            break
    LL.append(calculate_lower_bound(X, F, B, s, a, q, hard_EM))
    return F, B, s, a, np.array(LL)


def e_step_spherical(X, pi, mu, s2, hard_EM=False):
    with np.errstate(divide="ignore"):
        logits = np.log(pi)[None, :] - cdist(X, mu, "sqeuclidean") / (2 * s2)
    if hard_EM:
        return np.eye(len(pi))[np.argmax(logits, axis=1)]
    return np.exp(logits - logsumexp(logits, axis=1, keepdims=True))


def m_step_spherical(X, gamma):
    N, D = X.shape
    Nk = gamma.sum(axis=0)
    mu = (gamma.T @ X) / Nk[:, None]
    s2 = np.sum(gamma * cdist(X, mu, "sqeuclidean")) / (N * D)
    return Nk / N, mu, s2


def kmeans(X, mu, max_iter=100):
    centres = np.array(mu, dtype=float)
    labels = None
    for _ in range(max_iter):
        new = cdist(X, centres, "sqeuclidean").argmin(axis=1)
        if labels is not None and np.array_equal(labels, new):
            break
        labels = new
        for c in range(len(centres)):
            members = X[labels == c]
            if len(members):
                centres[c] = members.mean(axis=0)
    return centres, labels
