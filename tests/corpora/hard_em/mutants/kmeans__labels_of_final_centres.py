# breaks: kmeans
# bug: returns the labels recomputed from the final centres
# says: kmeans_labels_of_new_centres
# (a copy of correct/f_other_call_orders.py with this one bug)
import numpy as np
from scipy.special import logsumexp


def calculate_log_probability(X, F, B, s):
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    w = F.shape[1]
    P = W - w + 1
    models = np.empty((P, H * W))
    for d in range(P):
        m = np.array(B, dtype=float)
        m[:, d:d + w] = F
        models[d] = m.ravel()
    flat = X.reshape(H * W, K)
    sq = (flat ** 2).sum(0)[None] - 2 * models @ flat + (models ** 2).sum(1)[:, None]
    return -sq / (2 * s ** 2) - 0.5 * H * W * np.log(2 * np.pi * s ** 2)


def calculate_lower_bound(X, F, B, s, a, q, hard_EM=False):
    ll = calculate_log_probability(X, F, B, s)
    keep = q > 0
    log_a = np.log(np.where(a > 0, a, 1.0))[:, None] + np.zeros_like(q)
    return float(np.sum(q[keep] * (ll[keep] + log_a[keep] - np.log(q[keep]))))


def run_e_step(X, F, B, s, a, hard_EM=False):
    with np.errstate(divide="ignore"):
        joint = calculate_log_probability(X, F, B, s) + np.log(a)[:, None]
    if hard_EM:
        q = np.zeros(joint.shape)
        q[joint.argmax(axis=0), np.arange(joint.shape[1])] = 1
        return q
    return np.exp(joint - logsumexp(joint, axis=0))


def run_m_step(X, q, w, hard_EM=False):
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    P = W - w + 1
    a = q.sum(1) / K
    S = np.einsum("ijk,dk->dij", X, q)
    F = np.sum([S[d][:, d:d + w] for d in range(P)], axis=0) / K
    out = np.ones((P, W))
    for d in range(P):
        out[d, d:d + w] = 0
    weight = q.sum(1) @ out
    B = X.mean(axis=2)
    B[:, weight > 0] = np.einsum("dij,dj->ij", S, out)[:, weight > 0] / weight[weight > 0]
    err = 0.0
    for d in range(P):
        m = B.copy()
        m[:, d:d + w] = F
        err += q[d] @ ((X - m[:, :, None]) ** 2).sum((0, 1))
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
    flag = dict(hard_EM=hard_EM)
    q = run_e_step(X=X, F=F, B=B, s=s, a=a, **flag)
    LL = [calculate_lower_bound(X, F, B, s, a, q, **flag)]
    done = 0
    while done < max_iter:
        q = run_e_step(X, F, B, s, a, **flag)
        F, B, s, a = run_m_step(X, q=q, w=w, **flag)
        LL.append(calculate_lower_bound(X, F, B, s, a, q, **flag))
        done += 1
        if LL[-1] - LL[-2] < tolerance * abs(LL[-2]):
            break
    q = run_e_step(X, F, B, s, a, **flag)
    LL.append(calculate_lower_bound(a=a, q=q, X=X, F=F, B=B, s=s, **flag))
    return F, B, s, a, np.array(LL)


def e_step_spherical(X, pi, mu, s2, hard_EM=False):
    diff = X[:, None, :] - mu[None, :, :]
    with np.errstate(divide="ignore"):
        log_w = np.log(pi) - np.einsum("ncd,ncd->nc", diff, diff) / (2 * s2) - X.shape[1] / 2 * np.log(2 * np.pi * s2)
    if hard_EM:
        return (np.arange(len(pi))[None, :] == log_w.argmax(axis=1)[:, None]).astype(float)
    return np.exp(log_w - logsumexp(log_w, axis=1, keepdims=True))


def m_step_spherical(X, gamma):
    N, D = X.shape
    Nc = np.einsum("nc->c", gamma)
    mu = np.einsum("nc,nd->cd", gamma, X) / Nc[:, None]
    diff = X[:, None, :] - mu[None]
    return Nc / N, mu, float(np.einsum("nc,ncd,ncd->", gamma, diff, diff) / (N * D))


def kmeans(X, mu, max_iter=100):
    C, D = mu.shape
    centres = mu + 0.0
    previous = None
    for _ in range(max_iter):
        labels = np.argmin(((X[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
        if previous is not None and np.all(labels == previous):
            break
        previous = labels
        counts = np.bincount(labels, minlength=C)
        for d in range(D):
            sums = np.bincount(labels, weights=X[:, d], minlength=C)
            centres[counts > 0, d] = sums[counts > 0] / counts[counts > 0]
    labels = np.argmin(((X[:, None, :] - centres[None]) ** 2).sum(axis=2), axis=1)
    return centres, labels
