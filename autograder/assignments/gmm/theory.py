"""Gaussian-mixture facts the checks rely on, computed independently of any submission.

These are deliberately plain (scipy's log-densities, explicit formulas), not the reference
solution: they exist so that property checks (the bound is tight after an E-step, the M-step
maximises Q, ...) can be judged on a student's machine, where the reference is absent.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax, xlogy
from scipy.stats import multivariate_normal


def log_densities(X, mu, sigma):
    """log N(x_i | mu_c, sigma_c), shape (N, C)."""
    # (multivariate_normal.logpdf, not a frozen multivariate_normal(...): freezing formats a docstring
    # on every call, which was a third of the time of the student-side checks)
    return np.stack([multivariate_normal.logpdf(X, mean=m, cov=s, allow_singular=False).reshape(len(X))
                     for m, s in zip(mu, sigma)], axis=1)


def log_joint(X, pi, mu, sigma):
    """log pi_c + log N(x_i | mu_c, sigma_c), shape (N, C) (-inf where pi_c = 0)."""
    with np.errstate(divide="ignore"):
        return np.log(pi)[None, :] + log_densities(X, mu, sigma)


def posterior(X, pi, mu, sigma):
    """The exact E-step: p(t_i = c | x_i), shape (N, C)."""
    return softmax(log_joint(X, pi, mu, sigma), axis=1)


def log_likelihood(X, pi, mu, sigma) -> float:
    return float(logsumexp(log_joint(X, pi, mu, sigma), axis=1).sum())


def expected_complete(X, pi, mu, sigma, gamma) -> float:
    """Q = E_q[log p(X, T | theta)] with 0 * log 0 = 0."""
    return float(np.sum(gamma * log_densities(X, mu, sigma)) + np.sum(xlogy(gamma, pi[None, :])))


def entropy(gamma) -> float:
    return float(-np.sum(xlogy(gamma, gamma)))


def bound(X, pi, mu, sigma, gamma) -> float:
    return expected_complete(X, pi, mu, sigma, gamma) + entropy(gamma)


def m_step(X, gamma):
    """Weighted moments: the maximiser of Q for fixed gamma."""
    weights = gamma.sum(axis=0)
    pi = weights / len(X)
    mu = gamma.T @ X / weights[:, None]
    centred = X[None, :, :] - mu[:, None, :]                                   # (C, N, d)
    sigma = np.einsum("nc,cnd,cne->cde", gamma, centred, centred) / weights[:, None, None]
    return pi, mu, sigma


def is_spd(matrix, rtol: float = 1e-10) -> bool:
    if not np.allclose(matrix, matrix.T, rtol=1e-8, atol=1e-12 * np.abs(matrix).max()):
        return False
    eig = np.linalg.eigvalsh(matrix)
    return bool(eig.min() > rtol * max(eig.max(), 0))


# ----------------------------------------------------------------------------- random inputs
def random_spd(rng: np.random.Generator, d: int, scale: float = 1.0, condition: float = 10.0):
    """A random covariance with eigenvalues between scale/condition and scale."""
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    eig = scale * np.exp(rng.uniform(-np.log(condition), 0, size=d))
    return (q * eig) @ q.T


def random_parameters(rng: np.random.Generator, C: int, d: int, spread: float = 3.0, scale: float = 1.0,
                      condition: float = 10.0):
    pi = rng.dirichlet(np.full(C, 3.0))
    mu = spread * rng.standard_normal((C, d))
    sigma = np.stack([random_spd(rng, d, scale, condition) for _ in range(C)])
    return pi, mu, sigma


def sample(rng: np.random.Generator, N: int, pi, mu, sigma):
    labels = rng.choice(len(pi), size=N, p=pi)
    chol = np.linalg.cholesky(sigma)
    return mu[labels] + np.einsum("nij,nj->ni", chol[labels], rng.standard_normal((N, mu.shape[1])))


def random_problem(rng: np.random.Generator, N: int, d: int, C: int, **kwargs):
    """Data drawn from a random mixture, and a different random mixture to evaluate it with."""
    truth = random_parameters(rng, C, d, **kwargs)
    X = sample(rng, N, *truth)
    return X, random_parameters(rng, C, d, **kwargs)


def random_responsibilities(rng: np.random.Generator, N: int, C: int, concentration: float = 1.0):
    return rng.dirichlet(np.full(C, concentration), size=N)
