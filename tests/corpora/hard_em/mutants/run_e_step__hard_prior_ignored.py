# breaks: run_e_step
# bug: the hard branch takes the argmax of the likelihood alone
# says: hard_q_no_prior
# (a copy of correct/i_helpers_and_classes.py with this one bug)
import numpy as np


class Mixture:
    @staticmethod
    def log_weights(X, pi, mu, s2):
        D = X.shape[1]
        squared = ((X[:, None, :] - mu[None, :, :]) ** 2).sum(axis=-1)
        with np.errstate(divide="ignore"):
            return np.log(pi) - D * np.log(2 * np.pi * s2) / 2 - squared / (2 * s2)

    @staticmethod
    def normalise_rows(log_w):
        w = np.exp(log_w - log_w.max(axis=1, keepdims=True))
        return w / w.sum(axis=1, keepdims=True)


def _model(F, B, d):
    m = np.array(B, dtype=float)
    m[:, d:d + F.shape[1]] = F
    return m


def calculate_log_probability(X, F, B, s):
    H, W, K = X.shape
    P = W - F.shape[1] + 1
    sq = np.array([np.sum((X - _model(F, B, d)[:, :, None]) ** 2, axis=(0, 1)) for d in range(P)])
    return -sq / (2 * s * s) - H * W * np.log(s) - H * W * np.log(2 * np.pi) / 2


def calculate_lower_bound(X, F, B, s, a, q, hard_EM=False):
    ll = calculate_log_probability(X, F, B, s)
    nz = np.nonzero(q)
    return np.sum(q[nz] * (ll[nz] + np.log(a[nz[0]]) - np.log(q[nz])))


def _posterior(X, F, B, s, a):
    with np.errstate(divide="ignore"):
        joint = calculate_log_probability(X, F, B, s) + np.log(a)[:, None]
    e = np.exp(joint - joint.max(axis=0))
    return e / e.sum(axis=0)


def run_e_step(X, F, B, s, a, hard_EM=False):
    q = _posterior(X, F, B, s, a)
    if hard_EM:
        q = _posterior(X, F, B, s, np.ones(len(a)) / len(a))
        hard = np.zeros_like(q)
        hard[q.argmax(axis=0), np.arange(q.shape[1])] = 1
        return hard
    return q


def run_m_step(X, q, w, hard_EM=False):
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    P = W - w + 1
    a = q.sum(axis=1) / K
    weighted = [X @ q[d] for d in range(P)]              # sum_k q[d, k] X_k, each (H, W)
    F = sum(weighted[d][:, d:d + w] for d in range(P)) / K
    num, den = np.zeros((H, W)), np.zeros(W)
    for d in range(P):
        cols = [j for j in range(W) if not d <= j < d + w]
        num[:, cols] += weighted[d][:, cols]
        den[cols] += q[d].sum()
    B = np.where(den > 0, num / np.where(den > 0, den, 1), X.mean(axis=2))
    err = sum(q[d] @ np.sum((X - _model(F, B, d)[:, :, None]) ** 2, axis=(0, 1)) for d in range(P))
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
    opts = {"hard_EM": hard_EM}
    q = run_e_step(X, F, B, s, a, **opts)
    LL = [calculate_lower_bound(X, F, B, s, a, q, **opts)]
    for _ in range(max_iter):
        F, B, s, a = run_m_step(X, q, w, **opts)
        LL.append(calculate_lower_bound(X, F, B, s, a, q, **opts))
        q = run_e_step(X, F, B, s, a, **opts)
        if LL[-1] - LL[-2] < tolerance * abs(LL[-2]):
            break
    LL.append(calculate_lower_bound(X, F, B, s, a, q, **opts))
    return F, B, s, a, np.array(LL)


def e_step_spherical(X, pi, mu, s2, hard_EM=False):
    log_w = Mixture.log_weights(np.asarray(X, float), np.asarray(pi, float), np.asarray(mu, float), s2)
    if hard_EM:
        return np.eye(log_w.shape[1])[log_w.argmax(axis=1)]
    return Mixture.normalise_rows(log_w)


def m_step_spherical(X, gamma):
    N, D = X.shape
    Nc = gamma.sum(0)
    mu = gamma.T @ X / Nc[:, None]
    s2 = sum(gamma[:, c] @ ((X - mu[c]) ** 2).sum(1) for c in range(len(Nc))) / (N * D)
    return Nc / N, mu, s2


def kmeans(X, mu, max_iter=100):
    mu = np.array(mu, dtype=float)
    C = len(mu)
    labels = None
    for _ in range(max_iter):
        new = ((X[:, None] - mu[None]) ** 2).sum(2).argmin(1)
        if labels is not None and (new == labels).all():
            break
        labels = new
        onehot = np.eye(C)[labels]
        counts = onehot.sum(0)
        mu = np.where(counts[:, None] > 0, onehot.T @ X / np.maximum(counts, 1)[:, None], mu)
    return mu, labels
