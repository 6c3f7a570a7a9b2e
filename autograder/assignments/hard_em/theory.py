"""Facts for the hard_em checks, computed plainly and independently of any submission.

The prankster model's facts live in ``autograder.assignments.prankster.theory``; this module adds
hard EM's (a point mass at the most probable position) and the Gaussian mixture whose components
share one spherical covariance ``s2 * I``, whose limit ``s2 -> 0`` is k-means.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax, xlogy

from ..prankster import theory as prankster  # noqa: F401  (re-exported for the checks)


# =============================================================================== hard EM, prankster
def hard_bound(X, F, B, s, a, positions) -> float:
    """The bound of a point-mass q: sum_k log p(X_k | d_k, F, B, s) + log a[d_k] (entropy 0)."""
    log_joint = prankster.log_joint(X, F, B, s, a)
    return float(np.sum(log_joint[np.asarray(positions), np.arange(len(positions))]))


def most_probable(log_joint_values) -> np.ndarray:
    """The position of each column's maximum (the first one if several tie)."""
    return np.argmax(np.asarray(log_joint_values), axis=0)


# =============================================================================== spherical mixture
def log_weights(X, pi, mu, s2) -> np.ndarray:
    """``log pi_c + log N(x_i | mu_c, s2 I)``, shape (N, C), computed directly (no expansion)."""
    X = np.asarray(X, dtype=float)
    d = X.shape[1]
    squared = np.sum((X[:, None, :] - np.asarray(mu, dtype=float)[None, :, :]) ** 2, axis=2)
    with np.errstate(divide="ignore"):
        log_pi = np.log(np.asarray(pi, dtype=float))
    return log_pi[None, :] - 0.5 * d * np.log(2 * np.pi * s2) - squared / (2 * s2)


def posterior(X, pi, mu, s2) -> np.ndarray:
    return softmax(log_weights(X, pi, mu, s2), axis=1)


def one_hot_rows(labels, C: int) -> np.ndarray:
    return np.eye(C)[np.asarray(labels, dtype=int)]


def nearest(X, mu) -> np.ndarray:
    """The index of each point's nearest centre (the first one if several tie)."""
    squared = np.sum((np.asarray(X, dtype=float)[:, None, :] - np.asarray(mu, dtype=float)[None]) ** 2, axis=2)
    return np.argmin(squared, axis=1)


def expected_complete(X, pi, mu, s2, gamma) -> float:
    """``sum_ic gamma_ic (log pi_c + log N(x_i | mu_c, s2 I))`` with 0 * log 0 = 0."""
    X = np.asarray(X, dtype=float)
    d = X.shape[1]
    squared = np.sum((X[:, None, :] - np.asarray(mu, dtype=float)[None]) ** 2, axis=2)
    log_density = -0.5 * d * np.log(2 * np.pi * s2) - squared / (2 * s2)
    return float(np.sum(gamma * log_density) + np.sum(xlogy(gamma, np.asarray(pi)[None, :])))


def log_likelihood(X, pi, mu, s2) -> float:
    return float(logsumexp(log_weights(X, pi, mu, s2), axis=1).sum())


def m_step(X, gamma):
    """Weighted sizes, means and the pooled variance around the new means."""
    X = np.asarray(X, dtype=float)
    N, d = X.shape
    weights = gamma.sum(axis=0)
    mu = np.stack([gamma[:, c] @ X / weights[c] for c in range(gamma.shape[1])])
    s2 = sum(gamma[:, c] @ np.sum((X - mu[c]) ** 2, axis=1) for c in range(gamma.shape[1])) / (N * d)
    return weights / N, mu, float(s2)


def lloyd(X, mu, max_iter: int = 100):
    """k-means as the assignment asks: assign, stop if nothing changed, update (empty clusters stay)."""
    X = np.asarray(X, dtype=float)
    mu = np.array(mu, dtype=float)
    labels = None
    for _ in range(max_iter):
        new = nearest(X, mu)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        for c in range(len(mu)):
            if np.any(labels == c):
                mu[c] = X[labels == c].mean(axis=0)
    return mu, labels


# =============================================================================== random inputs
def random_mixture(rng: np.random.Generator, N: int, d: int, C: int, spread: float = 4.0, s2: float = 1.0):
    """Points from a spherical mixture, and (pi, mu, s2) of ANOTHER random mixture to evaluate them with."""
    pi = rng.dirichlet(np.full(C, 3.0))
    centres = spread * rng.standard_normal((C, d))
    labels = rng.choice(C, size=N, p=pi)
    X = centres[labels] + np.sqrt(s2) * rng.standard_normal((N, d))
    other = (rng.dirichlet(np.full(C, 3.0)), spread * rng.standard_normal((C, d)), float(s2 * rng.uniform(0.5, 3.0)))
    return X, other


def random_responsibilities(rng: np.random.Generator, N: int, C: int, concentration: float = 1.0):
    return rng.dirichlet(np.full(C, concentration), size=N)
