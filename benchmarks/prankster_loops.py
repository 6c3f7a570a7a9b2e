"""Loop baseline for the prankster assignment: what a good student writes first.

Same functions and signatures as the vectorised reference with the hard-EM flag
(``solutions/hard_em/__init__.py``, generated from ``solutions/hard_em/hard_em.ipynb``),
but every position-dependent quantity is computed with one Python loop over the ``W - w + 1``
positions, each pass building a whole model image and comparing it with all the images. It is
correct and readable, and it is the yardstick of ``bench_prankster.py``: the reference must be
much faster while giving the same numbers. The E-step and the bound have no loop of their own
(they only transform the log-probabilities), as the original practical asks.
"""

import numpy as np


def _log_of(values):
    """Elementwise log with log 0 = -inf and no warning, shape as ``values``."""
    values = np.asarray(values, dtype=float)
    return np.log(values, out=np.full(values.shape, -np.inf), where=values > 0)


def _model_image(F, B, d):
    """The background with the face pasted from column ``d`` on, shape (H, W)."""
    model = np.array(B, dtype=float)
    model[:, d:d + F.shape[1]] = F
    return model


def calculate_log_probability(X, F, B, s):
    """
    Log-likelihood of every image for every position of the face (one loop over positions).

    Parameters
    ----------
    X : array, shape (H, W, K)
    F : array, shape (H, w)
    B : array, shape (H, W)
    s : float

    Returns
    -------
    ll : array, shape (W-w+1, K)
        ll[d, k] = log p(X_k | d_k = d, F, B, s).
    """
    H, W, K = X.shape
    w = F.shape[1]
    ll = np.empty((W - w + 1, K))
    for d in range(W - w + 1):
        errors = X - _model_image(F, B, d)[:, :, None]
        ll[d] = -np.sum(errors ** 2, axis=(0, 1)) / (2.0 * s ** 2)
    return ll - H * W * np.log(np.sqrt(2.0 * np.pi) * s)


def calculate_lower_bound(X, F, B, s, a, q, hard_EM=False):
    """
    Lower bound L(q, F, B, s, a); shapes as in the reference.

    Returns
    -------
    L : float
    """
    q = np.asarray(q, dtype=float)
    possible = q > 0  # terms with q = 0 are 0, even where log a = -inf
    log_joint = calculate_log_probability(X, F, B, s) + _log_of(a)[:, None]
    log_joint = np.where(possible, log_joint, 0.0)
    log_q = np.zeros(q.shape) if hard_EM else np.where(possible, _log_of(q), 0.0)
    return float(np.sum(q * (log_joint - log_q)))


def run_e_step(X, F, B, s, a, hard_EM=False):
    """
    Posterior over positions, q (W-w+1, K); a point mass at the argmax if ``hard_EM``.
    """
    log_joint = calculate_log_probability(X, F, B, s) + _log_of(a)[:, None]
    if hard_EM:
        q = np.zeros(log_joint.shape)
        q[np.argmax(log_joint, axis=0), np.arange(log_joint.shape[1])] = 1.0
        return q
    q = np.exp(log_joint - log_joint.max(axis=0))
    q /= q.sum(axis=0)
    q[q < np.finfo(float).tiny] = 0.0  # subnormals: a = q.sum(1) / K could round to 0
    return q


def run_m_step(X, q, w, hard_EM=False):
    """
    Update a, F, B, s in this order from q (W-w+1, K), with one loop over positions for F and
    B and another for s.

    Returns
    -------
    F : array, shape (H, w)
    B : array, shape (H, W)
        A pixel hidden by the face in every image (where q > 0) gets the plain average of the
        images, as in the reference.
    s : float
    a : array, shape (W-w+1,)
    """
    X = np.asarray(X, dtype=float)
    q = np.asarray(q, dtype=float)
    H, W, K = X.shape
    a = q.sum(axis=1) / q.sum()

    F = np.zeros((H, w))
    background_sum = np.zeros((H, W))
    background_weight = np.zeros(W)
    for d in range(W - w + 1):
        weighted = X @ q[d]  # (H, W): sum_k q[d, k] X[:, :, k]
        F += weighted[:, d:d + w]
        outside = np.ones(W, dtype=bool)
        outside[d:d + w] = False
        background_sum[:, outside] += weighted[:, outside]
        background_weight[outside] += q[d].sum()
    F /= q.sum()
    B = X.mean(axis=2)
    np.divide(background_sum, background_weight, out=B, where=background_weight > 0)

    expected_error = 0.0
    for d in range(W - w + 1):
        errors = X - _model_image(F, B, d)[:, :, None]
        expected_error += np.sum(q[d] * np.sum(errors ** 2, axis=(0, 1)))
    s = float(np.sqrt(expected_error / (H * W * q.sum())))
    return F, B, s, a


def run_EM(X, w, F=None, B=None, s=None, a=None, tolerance=0.001, max_iter=50, hard_EM=False):
    """
    EM with the same initialisation, iterations and stopping rule as the reference.

    Returns
    -------
    F, B, s, a : the trained parameters.
    LL : array, shape (number_of_iters + 2,)
    """
    H, W, K = X.shape
    mean_image = np.mean(X, axis=2)
    if F is None:
        # Average of the mean image's windows over all positions.
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
        if LL[-1] - LL[-2] < tolerance * abs(LL[-2]):
            break
    LL.append(calculate_lower_bound(X, F, B, s, a, q, hard_EM))
    return F, B, s, a, np.array(LL)
