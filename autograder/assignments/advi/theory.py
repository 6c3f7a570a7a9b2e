"""Facts about the ADVI assignment's model, computed independently of any submission.

The model: ``y_n ~ N(b0 + b1 x_n, sigma^2)``, ``b0, b1 ~ N(0, 10^2)``, ``sigma ~ Gamma(2, rate 0.5)``,
and ADVI's unconstrained variables ``zeta = (b0, b1, log sigma)``.

Everything here is written from the model's definition, not from the reference solution, so
that the student-side checks (no reference on a student's machine) can judge a submission by
properties: the log joint against scipy's densities, a gradient against an analytic one, a Monte
Carlo ELBO against the ELBO's closed form, a fit against the exact posterior.

Closed form of the ELBO. For a Gaussian ``q(zeta) = N(m, C)`` every term of
``E_q[log p(y, T^{-1}(zeta)) + log|det J|]`` is a Gaussian moment: with ``u = log sigma``,
``E[e^u] = exp(m_u + C_uu / 2)``, and the likelihood's ``E[e^{-2u} (y_n - b0 - b1 x_n)^2]`` is an
exponentially tilted expectation: tilting ``q`` by ``e^{-2u}`` multiplies its mass by
``exp(-2 m_u + 2 C_uu)`` and shifts the mean of ``b`` to ``m_b - 2 C_bu``. Written with
autograd.numpy, its exact gradient follows, and so do the Gaussians that maximise it (what ADVI
converges to).
"""

from __future__ import annotations

from functools import lru_cache

import autograd
import autograd.numpy as anp
import numpy as np
import scipy.optimize
import scipy.special
import scipy.stats  # noqa: F401  (the densities log_joint writes out)
from autograd.scipy.special import gammaln as anp_gammaln

from ...datasets import advi as data
from ...datasets.advi import PRIOR_B_SCALE, PRIOR_SIGMA_RATE, PRIOR_SIGMA_SHAPE, exact_posterior  # noqa: F401

D = 3                                   # dimension of zeta
PRIORS = {"prior_b_scale": PRIOR_B_SCALE, "prior_sigma_shape": PRIOR_SIGMA_SHAPE,
          "prior_sigma_rate": PRIOR_SIGMA_RATE}
ENTROPY_CONSTANT = 0.5 * D * (1.0 + np.log(2 * np.pi))   # entropy of N(0, I_3)
LOWER = np.tril_indices(D)              # the free entries of a lower-triangular factor, row by row


# =============================================================================== the model
def inverse_transform(zeta):
    """``theta = T^{-1}(zeta) = (zeta0, zeta1, exp(zeta2))``, row-wise."""
    zeta = np.asarray(zeta, dtype=float)
    theta = zeta.copy()
    theta[..., 2] = np.exp(zeta[..., 2])
    return theta


def transform(theta):
    """``zeta = T(theta) = (b0, b1, log sigma)``, row-wise."""
    theta = np.asarray(theta, dtype=float)
    zeta = theta.copy()
    zeta[..., 2] = np.log(theta[..., 2])
    return zeta


def log_joint(theta, x, y, prior_b_scale=PRIOR_B_SCALE, prior_sigma_shape=PRIOR_SIGMA_SHAPE,
              prior_sigma_rate=PRIOR_SIGMA_RATE):
    """``log p(y, theta)``, one value per row of ``theta``: the log densities of scipy.stats' normal and
    gamma written out (tests/test_advi_reference.py checks them against scipy.stats; scipy's own
    logpdf costs ten times as much per call, which the loop checks pay 1600 times)."""
    theta = np.asarray(theta, dtype=float)
    rows = np.atleast_2d(theta)
    b0, b1, sigma = rows[:, 0:1], rows[:, 1:2], rows[:, 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        residual = (y[None, :] - b0 - b1 * x[None, :]) / sigma
        likelihood = -0.5 * len(x) * np.log(2 * np.pi) - len(x) * np.log(sigma[:, 0]) - 0.5 * np.sum(residual**2, axis=1)
        prior_b = (-np.log(2 * np.pi * prior_b_scale**2)
                   - 0.5 * (rows[:, 0]**2 + rows[:, 1]**2) / prior_b_scale**2)
        a, r = prior_sigma_shape, prior_sigma_rate
        prior_sigma = a * np.log(r) - scipy.special.gammaln(a) + (a - 1) * np.log(sigma[:, 0]) - r * sigma[:, 0]
    out = likelihood + prior_b + prior_sigma
    return out.reshape(theta.shape[:-1])


def log_det_jacobian(zeta):
    """``log|det J_{T^{-1}}(zeta)| = zeta2``, one value per row."""
    return np.asarray(zeta, dtype=float)[..., 2].copy()


def log_joint_zeta(zeta, x, y, **priors):
    """``log p(y, T^{-1}(zeta)) + log|det J_{T^{-1}}(zeta)|``; the log-determinant is ``zeta2``."""
    zeta = np.asarray(zeta, dtype=float)
    return log_joint(inverse_transform(zeta), x, y, **priors) + zeta[..., 2]


def grad_log_joint_zeta(zeta, x, y, prior_b_scale=PRIOR_B_SCALE, prior_sigma_shape=PRIOR_SIGMA_SHAPE,
                        prior_sigma_rate=PRIOR_SIGMA_RATE):
    """The gradient of :func:`log_joint_zeta`, derived by hand, one row per row of ``zeta``.

    With residuals ``r_n = y_n - b0 - b1 x_n`` and ``sigma = e^u``:
    ``d/db0 = sum r / sigma^2 - b0 / s^2``, ``d/db1 = sum r x / sigma^2 - b1 / s^2`` and
    ``d/du = -N + sum r^2 / sigma^2 + (a - 1) - rate sigma + 1`` (the last 1 is the Jacobian's).
    """
    zeta = np.asarray(zeta, dtype=float)
    rows = np.atleast_2d(zeta)
    b0, b1, u = rows[:, 0], rows[:, 1], rows[:, 2]
    sigma = np.exp(u)
    r = y[None, :] - b0[:, None] - b1[:, None] * x[None, :]
    inv_var = np.exp(-2.0 * u)
    grad = np.column_stack([
        inv_var * r.sum(axis=1) - b0 / prior_b_scale**2,
        inv_var * (r * x).sum(axis=1) - b1 / prior_b_scale**2,
        -len(x) + inv_var * (r**2).sum(axis=1) + prior_sigma_shape - prior_sigma_rate * sigma,
    ])
    return grad.reshape(zeta.shape)


def step_size(grad, s_prev, k, learning_rate, alpha=0.1, tau=1.0, eps=1e-16):
    """ADVI's adaptive step size (Kucukelbir et al. 2017, section 3.3), element-wise: (rho_k, s_k)."""
    grad = np.asarray(grad, dtype=float)
    s = grad**2 if k == 1 else alpha * grad**2 + (1.0 - alpha) * np.asarray(s_prev, dtype=float)
    rho = learning_rate * k ** (-0.5 + eps) / (tau + np.sqrt(s))
    return rho, s


# =============================================================================== Gaussians q
def mean_field_draws(mu, omega, eta):
    """``zeta_s = mu + exp(omega) * eta_s`` for every row of ``eta``."""
    return np.asarray(mu) + np.exp(np.asarray(omega)) * np.asarray(eta)


def full_rank_draws(mu, L, eta):
    """``zeta_s = mu + L eta_s`` for every row of ``eta``."""
    return np.asarray(mu) + np.asarray(eta) @ np.tril(np.asarray(L)).T


def entropy_mean_field(omega) -> float:
    return float(np.sum(omega) + ENTROPY_CONSTANT)


def entropy_full_rank(L) -> float:
    return float(np.sum(np.log(np.abs(np.diag(L)))) + ENTROPY_CONSTANT)


def elbo_terms_mean_field(mu, omega, eta, x, y):
    """Per-draw terms whose average is the Monte Carlo ELBO of a mean-field q, shape (S,)."""
    return log_joint_zeta(mean_field_draws(mu, omega, eta), x, y) + entropy_mean_field(omega)


def elbo_terms_full_rank(mu, L, eta, x, y):
    """Per-draw terms whose average is the Monte Carlo ELBO of a full-rank q, shape (S,)."""
    return log_joint_zeta(full_rank_draws(mu, L, eta), x, y) + entropy_full_rank(L)


def gradient_terms_mean_field(mu, omega, eta, x, y):
    """Per-draw reparameterisation gradients of the mean-field ELBO: (S, 3) for mu, (S, 3) for omega."""
    g = grad_log_joint_zeta(mean_field_draws(mu, omega, eta), x, y)
    return g, g * eta * np.exp(omega) + 1.0


def gradient_terms_full_rank(mu, L, eta, x, y):
    """Per-draw reparameterisation gradients of the full-rank ELBO: (S, 3) for mu, (S, 3, 3) for L."""
    g = grad_log_joint_zeta(full_rank_draws(mu, L, eta), x, y)
    outer = np.tril(g[:, :, None] * np.asarray(eta)[:, None, :])
    return g, outer + np.diag(1.0 / np.diag(L))[None]


# The four functions of the ELBO as a student writes them (what stands in for the student's own
# while another of their functions is checked on their machine, where the reference is absent).
def elbo_mean_field(mu, omega, eta, x, y):
    return np.mean(elbo_terms_mean_field(mu, omega, eta, x, y))


def elbo_full_rank(mu, L, eta, x, y):
    return np.mean(elbo_terms_full_rank(mu, L, eta, x, y))


def grad_elbo_mean_field(mu, omega, eta, x, y):
    g_mu, g_omega = gradient_terms_mean_field(mu, omega, eta, x, y)
    return g_mu.mean(axis=0), g_omega.mean(axis=0)


def grad_elbo_full_rank(mu, L, eta, x, y):
    g_mu, g_L = gradient_terms_full_rank(mu, L, eta, x, y)
    return g_mu.mean(axis=0), g_L.mean(axis=0)


# =============================================================================== exact ELBO
def expected_log_joint_zeta(mean, cov, x, y, prior_b_scale=PRIOR_B_SCALE, prior_sigma_shape=PRIOR_SIGMA_SHAPE,
                            prior_sigma_rate=PRIOR_SIGMA_RATE):
    """``E_q[log p(y, T^{-1}(zeta)) + zeta2]`` for ``q = N(mean, cov)``, in closed form (autograd-able)."""
    n = len(x)
    X = np.column_stack([np.ones_like(x), x])
    m_b, m_u = mean[:2], mean[2]
    c_bb, c_bu, c_uu = cov[:2, :2], cov[:2, 2], cov[2, 2]
    # E[e^{-2u} (y - X b)^2] = E[e^{-2u}] * E_tilted[(y - X b)^2]; tilted mean m_b - 2 c_bu, same spread.
    shifted = m_b - 2.0 * c_bu
    tilted_squares = anp.sum((y - anp.dot(X, shifted)) ** 2) + anp.sum(anp.dot(X, c_bb) * X)
    mass = anp.exp(-2.0 * m_u + 2.0 * c_uu)
    likelihood = -0.5 * n * np.log(2 * np.pi) - n * m_u - 0.5 * mass * tilted_squares
    prior_b = -np.log(2 * np.pi * prior_b_scale**2) - 0.5 * (anp.sum(m_b**2) + anp.trace(c_bb)) / prior_b_scale**2
    # log Gamma density of sigma = e^u, plus the Jacobian's u: (a - 1) u + u = a u.
    prior_u = (prior_sigma_shape * np.log(prior_sigma_rate) - anp_gammaln(prior_sigma_shape)
               + prior_sigma_shape * m_u - prior_sigma_rate * anp.exp(m_u + 0.5 * c_uu))
    return likelihood + prior_b + prior_u


def exact_elbo_mean_field(mu, omega, x, y, **priors):
    """The ELBO of ``q = N(mu, diag(exp(omega))^2)`` (no Monte Carlo)."""
    cov = anp.diag(anp.exp(2.0 * omega))
    return expected_log_joint_zeta(mu, cov, x, y, **priors) + anp.sum(omega) + ENTROPY_CONSTANT


def exact_elbo_full_rank(mu, L, x, y, **priors):
    """The ELBO of ``q = N(mu, L L^T)`` (no Monte Carlo); only the lower triangle of ``L`` counts."""
    L = anp.tril(L)
    entropy = anp.sum(anp.log(anp.abs(anp.diag(L)))) + ENTROPY_CONSTANT
    return expected_log_joint_zeta(mu, anp.dot(L, L.T), x, y, **priors) + entropy


def exact_grad_mean_field(mu, omega, x, y, **priors):
    """The exact ELBO gradient of a mean-field q: (grad_mu, grad_omega)."""
    mu, omega = np.asarray(mu, dtype=float), np.asarray(omega, dtype=float)
    return autograd.grad(exact_elbo_mean_field, (0, 1))(mu, omega, x, y, **priors)


def exact_grad_full_rank(mu, L, x, y, **priors):
    """The exact ELBO gradient of a full-rank q: (grad_mu, grad_L) with grad_L lower triangular."""
    mu, L = np.asarray(mu, dtype=float), np.asarray(L, dtype=float)
    grad_mu, grad_L = autograd.grad(exact_elbo_full_rank, (0, 1))(mu, L, x, y, **priors)
    return grad_mu, np.tril(grad_L)


# =============================================================================== optima
# A lower-triangular factor from its 6 free entries, as a weighted sum of basis matrices
# (autograd cannot differentiate index assignment).
_BASIS = np.zeros((len(LOWER[0]), D, D))
_BASIS[np.arange(len(LOWER[0])), LOWER[0], LOWER[1]] = 1.0


def lower_from_entries(entries):
    return anp.tensordot(entries, _BASIS, axes=1)


def _maximise(objective, start):
    negative = lambda params: -objective(params)  # noqa: E731
    result = scipy.optimize.minimize(negative, start, jac=autograd.grad(negative), method="BFGS",
                                     options={"gtol": 1e-10})
    return result.x, -float(result.fun)


def optimal_mean_field(x, y, **priors) -> dict:
    """The mean-field Gaussian with the highest ELBO: ``mu``, ``omega``, ``elbo``."""
    post = exact_posterior(x, y, **priors)
    start = np.concatenate([post["mean_zeta"], 0.5 * np.log(np.diag(post["cov_zeta"]))])
    params, elbo = _maximise(lambda p: exact_elbo_mean_field(p[:3], p[3:], x, y, **priors), start)
    return {"mu": params[:3], "omega": params[3:], "elbo": elbo}


def optimal_full_rank(x, y, **priors) -> dict:
    """The full-rank Gaussian with the highest ELBO: ``mu``, ``L`` (positive diagonal), ``cov``, ``elbo``."""
    post = exact_posterior(x, y, **priors)
    start = np.concatenate([post["mean_zeta"], np.linalg.cholesky(post["cov_zeta"])[LOWER]])
    params, elbo = _maximise(lambda p: exact_elbo_full_rank(p[:3], lower_from_entries(p[3:]), x, y, **priors),
                             start)
    L = np.tril(np.asarray(lower_from_entries(params[3:])))
    L = L * np.sign(np.diag(L))          # flip columns to a positive diagonal: same L L^T
    return {"mu": params[:3], "L": L, "cov": L @ L.T, "elbo": elbo}


@lru_cache(maxsize=1)
def assignment_answers() -> dict:
    """The exact posterior and the best Gaussians for the assignment's data (computed once)."""
    d = data.load()
    return {"posterior": exact_posterior(d["x"], d["y"]), "mean_field": optimal_mean_field(d["x"], d["y"]),
            "full_rank": optimal_full_rank(d["x"], d["y"])}
