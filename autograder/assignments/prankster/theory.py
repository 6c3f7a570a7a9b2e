"""Facts about the prankster model, computed plainly and independently of any submission.

The model: ``K`` images ``X[:, :, k]`` of size ``H x W`` show a background ``B`` (H, W) with a
face ``F`` (H, w) pasted from column ``d_k`` on, plus Gaussian noise of standard deviation ``s``;
the positions are drawn from a prior ``a`` over the ``P = W - w + 1`` possible columns.

Everything here follows the definitions with one Python loop over the positions (slow but
obviously right), never the reference solution, so that the student-side checks (no reference on
a student's machine) can judge a submission: the log-likelihood pixel by pixel, the exact
posterior with scipy's softmax, the bound from its definition, the M-step's closed forms for a
one-hot posterior.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax


# =============================================================================== the model
def model_image(F, B, d: int) -> np.ndarray:
    """The background with the face pasted over columns ``d .. d + w - 1``, shape (H, W)."""
    model = np.array(B, dtype=float)
    model[:, d:d + np.shape(F)[1]] = F
    return model


def log_probability(X, F, B, s) -> np.ndarray:
    """``ll[d, k] = log p(X_k | d_k = d, F, B, s)``, shape (P, K), one loop over positions."""
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    w = np.shape(F)[1]
    ll = np.empty((W - w + 1, K))
    for d in range(W - w + 1):
        residual = X - model_image(F, B, d)[:, :, None]
        ll[d] = -np.sum(residual * residual, axis=(0, 1)) / (2.0 * s * s)
    return ll - H * W * (np.log(s) + 0.5 * np.log(2.0 * np.pi))


def log_of(values) -> np.ndarray:
    """Elementwise log with log 0 = -inf, without a warning."""
    values = np.asarray(values, dtype=float)
    return np.log(values, out=np.full(values.shape, -np.inf), where=values > 0)


def log_joint(X, F, B, s, a) -> np.ndarray:
    """``log p(X_k | d, F, B, s) + log a[d]``, shape (P, K); -inf where ``a[d] = 0``."""
    return log_probability(X, F, B, s) + log_of(a)[:, None]


def posterior_from_log_joint(log_joint_values) -> np.ndarray:
    """Normalise every column of a log-joint table (scipy's softmax subtracts the maximum)."""
    return softmax(np.asarray(log_joint_values, dtype=float), axis=0)


def posterior(X, F, B, s, a) -> np.ndarray:
    """The exact E-step ``q[d, k] = p(d_k = d | X_k, F, B, s, a)``."""
    return posterior_from_log_joint(log_joint(X, F, B, s, a))


def log_likelihood(X, F, B, s, a) -> float:
    """``log p(X | F, B, s, a) = sum_k log sum_d a[d] p(X_k | d, F, B, s)``."""
    return float(logsumexp(log_joint(X, F, B, s, a), axis=0).sum())


def bound_from_log_joint(log_joint_values, q) -> float:
    """``sum_{d,k} q (log_joint - log q)``, with 0 log 0 = 0 and 0 * (-inf) = 0."""
    q = np.asarray(q, dtype=float)
    possible = q > 0
    terms = np.zeros(q.shape)
    terms[possible] = q[possible] * (np.asarray(log_joint_values)[possible] - np.log(q[possible]))
    return float(terms.sum())


def bound(X, F, B, s, a, q) -> float:
    """The lower bound L(q, F, B, s, a) from its definition."""
    return bound_from_log_joint(log_joint(X, F, B, s, a), q)


def entropy(q) -> float:
    q = np.asarray(q, dtype=float)
    return float(-np.sum(q[q > 0] * np.log(q[q > 0])))


def one_hot(positions, n_positions: int) -> np.ndarray:
    """A hard posterior: ``q[positions[k], k] = 1``, shape (n_positions, K)."""
    positions = np.asarray(positions, dtype=int)
    q = np.zeros((n_positions, len(positions)))
    q[positions, np.arange(len(positions))] = 1.0
    return q


def m_step_one_hot(X, positions, w: int):
    """The M-step's closed forms when image ``k`` surely shows the face at ``positions[k]``.

    F is the average of the chosen windows; B, at each pixel, the average of the images that show
    the background there (NaN where none does: any value is optimal there); s the root mean
    squared residual; a the share of the images at each position.
    """
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    positions = np.asarray(positions, dtype=int)
    F = np.mean([X[:, d:d + w, k] for k, d in enumerate(positions)], axis=0)
    total, count = np.zeros((H, W)), np.zeros(W)
    for k, d in enumerate(positions):
        shows = np.ones(W, dtype=bool)
        shows[d:d + w] = False
        total[:, shows] += X[:, shows, k]
        count[shows] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        B = total / count
    B_filled = np.where(count > 0, B, 0.0)
    squared = sum(np.sum((X[:, :, k] - model_image(F, B_filled, d)) ** 2) for k, d in enumerate(positions))
    s = float(np.sqrt(squared / (H * W * K)))
    a = np.bincount(positions, minlength=W - w + 1) / K
    return F, B, s, a


def background_average(X, q, w: int) -> np.ndarray:
    """The M-step's B: the q-weighted average of the pixels shown as background (NaN where none is)."""
    X = np.asarray(X, dtype=float)
    q = np.asarray(q, dtype=float)
    H, W, K = X.shape
    total = np.zeros((H, W))
    for d in range(W - w + 1):
        shows = np.ones(W, dtype=bool)
        shows[d:d + w] = False
        total[:, shows] += X[:, shows, :] @ q[d]
    weight = background_weight(q, W, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / weight


def background_weight(q, W: int, w: int) -> np.ndarray:
    """``sum_{d,k} q[d, k] [column j shows the background at d]``, shape (W,)."""
    q = np.asarray(q, dtype=float)
    weight = np.zeros(W)
    for d in range(W - w + 1):
        shows = np.ones(W, dtype=bool)
        shows[d:d + w] = False
        weight[shows] += q[d].sum()
    return weight


# =============================================================================== random inputs
def random_problem(rng: np.random.Generator, H: int, W: int, w: int, K: int, noise: float = 40.0,
                   integer: bool = False):
    """Images drawn from the model (clipped to 0..255) and *other* random parameters to evaluate.

    Returns ``X, (F, B, s, a)``: the parameters are not the ones that made the images, so the
    log-probabilities are of realistic size and the posterior is not trivially one-hot.
    """
    n_positions = W - w + 1
    face = rng.uniform(0, 255, (H, w))
    background = rng.uniform(0, 255, (H, W))
    offsets = rng.integers(0, n_positions, K)
    X = np.stack([model_image(face, background, d) for d in offsets], axis=2)
    X = np.clip(np.round(X + noise * rng.standard_normal(X.shape)), 0, 255)
    if integer:
        X = X.astype(np.int64)
    F = 0.5 * face + 0.5 * rng.uniform(0, 255, (H, w))
    B = 0.5 * background + 0.5 * rng.uniform(0, 255, (H, W))
    s = float(rng.uniform(0.8, 1.5) * noise + 20.0)
    a = rng.dirichlet(np.full(n_positions, 2.0))
    return X, (F, B, s, a)


def random_posterior(rng: np.random.Generator, n_positions: int, K: int, concentration: float = 1.0,
                     zero_rows: int = 0) -> np.ndarray:
    """Random columns on the simplex, shape (n_positions, K); ``zero_rows`` positions get q = 0."""
    q = rng.dirichlet(np.full(n_positions, concentration), size=K).T
    if zero_rows:
        q[rng.choice(n_positions, size=min(zero_rows, n_positions - 1), replace=False)] = 0.0
        q /= q.sum(axis=0, keepdims=True)
    return q


def perturb_prior(rng: np.random.Generator, a, scale: float) -> np.ndarray:
    """A nearby prior on the simplex (zeros stay zero)."""
    new = np.asarray(a, dtype=float) * np.exp(scale * rng.standard_normal(len(a)))
    return new / new.sum()
