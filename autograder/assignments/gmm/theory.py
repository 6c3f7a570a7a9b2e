"""Gaussian-mixture facts the checks rely on, computed independently of any submission.

These are deliberately plain (scipy's log-densities, explicit formulas), not the reference
solution: they exist so that property checks (the bound is tight after an E-step, the M-step
maximises Q, ...) can be judged on a student's machine, where the reference is absent.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp, softmax, xlogy


def log_densities(X, mu, sigma):
    """log N(x_i | mu_c, sigma_c), shape (N, C).

    Through Cholesky factors, like a plain numpy implementation: ``np.linalg.LinAlgError`` when a
    covariance is not symmetric positive definite (an asymmetric one included).
    """
    X, mu, sigma = (np.asarray(a, dtype=float) for a in (X, mu, sigma))
    d = X.shape[1]
    asymmetry = np.abs(sigma - np.swapaxes(sigma, 1, 2)).max(axis=(1, 2))
    if np.any(asymmetry > 1e-10 * np.abs(sigma).max(axis=(1, 2))):
        raise np.linalg.LinAlgError(f"sigma[{int(np.argmax(asymmetry))}] is not symmetric")
    L = np.linalg.cholesky(sigma)                                      # (C, d, d)
    z = np.linalg.solve(L, np.swapaxes(X[None, :, :] - mu[:, None, :], 1, 2))   # (C, d, N)
    log_det = 2.0 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)       # (C,)
    return (-0.5 * (d * np.log(2 * np.pi) + log_det[:, None] + np.einsum("cdn,cdn->cn", z, z))).T


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
    density = log_densities(X, mu, sigma)
    weighted = np.multiply(gamma, density, out=np.zeros_like(density), where=gamma > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(weighted.sum() + np.sum(xlogy(gamma, np.asarray(pi)[None, :])))


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


def tempered_posterior(X, pi, mu, sigma, temperature: float):
    """softmax(temperature * log_joint): not the posterior unless temperature = 1, shape (N, C)."""
    return softmax(temperature * log_joint(X, pi, mu, sigma), axis=1)


def run_em(X, pi, mu, sigma, n_iter: int = 1000, rtol: float = 0.0):
    """Plain EM from (pi, mu, sigma): ``n_iter`` iterations, or until the parameters stop changing."""
    for _ in range(n_iter):
        new = m_step(X, posterior(X, pi, mu, sigma))
        change = max(float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)) for a, b in zip(new, (pi, mu, sigma)))
        pi, mu, sigma = new
        if change <= rtol:
            break
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
