"""Data for the ADVI assignment: a simple linear regression with Gaussian noise.

The observations follow

    y_n = b0 + b1 * x_n + sigma * e_n,    e_n ~ N(0, 1) independent,

with ``x_n`` drawn uniformly on ``[X_LOW, X_HIGH)``. The inputs are deliberately not centred
(their mean is far from zero compared with their spread), so the posterior of the intercept
``b0`` and the slope ``b1`` is strongly negatively correlated: a mean-field approximation
visibly misses it, a full-rank one does not.

Everything is drawn from ``numpy.random.default_rng(seed)`` (PCG64) with the ``uniform`` and
``standard_normal`` methods only, whose streams numpy keeps stable, so a given seed gives the
same numbers on any machine.

The module also knows the assignment's priors and computes the exact posterior they imply
(:func:`exact_posterior`, :func:`posterior_density_b`): the notebook draws it under the ADVI fits,
and the grader (``autograder.assignments.advi.theory``) measures the fits against it.
"""

import numpy as np
from scipy.special import gammaln

TRUE_B = (5.0, -3.5)
"""True regression coefficients ``(b0, b1)``: intercept and slope."""

TRUE_SIGMA = 2.5
"""True standard deviation of the noise."""

X_LOW, X_HIGH = 1.0, 6.0
"""The inputs are drawn uniformly on ``[X_LOW, X_HIGH)``."""

DEFAULT_SEED = 2017
"""Seed of the data set used in the assignment (:func:`load`)."""

DEFAULT_N = 80
"""Number of observations of the data set used in the assignment (:func:`load`)."""


def generate(seed=DEFAULT_SEED, n=DEFAULT_N):
    """Draw a synthetic linear-regression data set.

    Parameters
    ----------
    seed : int, default DEFAULT_SEED
        Seed of ``numpy.random.default_rng``; the same seed always gives the same data.
    n : int, default DEFAULT_N
        Number of observations ``N`` (at least 1).

    Returns
    -------
    dict
        ``x`` : ndarray, shape (N,)
            Inputs, uniform on ``[X_LOW, X_HIGH)``.
        ``y`` : ndarray, shape (N,)
            Outputs ``b0 + b1 * x + sigma * noise``.
        ``true_b`` : ndarray, shape (2,)
            The coefficients ``(b0, b1)`` used to generate ``y``.
        ``true_sigma`` : float
            The noise standard deviation used to generate ``y``.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    # Draw the inputs first and the noise second, each as one block, so the inputs of a data set
    # do not depend on how the noise is drawn.
    x = rng.uniform(X_LOW, X_HIGH, size=n)
    noise = rng.standard_normal(n)
    true_b = np.array(TRUE_B, dtype=float)
    y = true_b[0] + true_b[1] * x + TRUE_SIGMA * noise
    return {"x": x, "y": y, "true_b": true_b, "true_sigma": float(TRUE_SIGMA)}


def load():
    """Return the data set of the assignment: ``generate(DEFAULT_SEED, DEFAULT_N)``.

    Returns
    -------
    dict
        ``x`` (N,), ``y`` (N,), ``true_b`` (2,), ``true_sigma`` (float) with ``N = DEFAULT_N``;
        see :func:`generate`.
    """
    return generate(seed=DEFAULT_SEED, n=DEFAULT_N)


# ----------------------------------------------------------------------------- the priors
PRIOR_B_SCALE = 10.0
"""Each coefficient has the prior N(0, PRIOR_B_SCALE^2)."""

PRIOR_SIGMA_SHAPE, PRIOR_SIGMA_RATE = 2.0, 0.5
"""sigma has the prior Gamma(shape, rate): density rate^shape / Gamma(shape) sigma^(shape-1) e^(-rate sigma)."""


# ----------------------------------------------------------------------------- the exact posterior
def _design(x):
    x = np.asarray(x, dtype=float)
    return np.column_stack([np.ones_like(x), x])


def posterior_b_given_sigma(x, y, sigma, prior_b_scale=PRIOR_B_SCALE):
    """The posterior of ``b = (b0, b1)`` when sigma is known: Gaussian (the prior is conjugate).

    ``b | sigma, y ~ N(m, V)`` with ``V^{-1} = X^T X / sigma^2 + I / prior_b_scale^2`` and
    ``m = V X^T y / sigma^2``, where the rows of ``X`` are ``(1, x_n)``.

    Parameters
    ----------
    x, y : ndarray, shape (N,)
        The data.
    sigma : float or ndarray, shape (G,)
        One or several noise standard deviations.
    prior_b_scale : float
        Prior standard deviation of each coefficient.

    Returns
    -------
    mean : ndarray, shape (2,) or (G, 2)
    cov : ndarray, shape (2, 2) or (G, 2, 2)
    """
    X = _design(x)
    precision_noise = 1.0 / np.asarray(sigma, dtype=float) ** 2
    precision = precision_noise[..., None, None] * (X.T @ X) + np.eye(2) / prior_b_scale**2
    cov = np.linalg.inv(precision)
    mean = np.einsum("...ij,j->...i", cov, X.T @ np.asarray(y, dtype=float)) * precision_noise[..., None]
    return mean, cov


def log_density_log_sigma(u, x, y, prior_b_scale=PRIOR_B_SCALE, prior_sigma_shape=PRIOR_SIGMA_SHAPE,
                          prior_sigma_rate=PRIOR_SIGMA_RATE):
    """The marginal posterior density of ``u = log sigma``, up to an additive constant.

    ``log p(y | sigma) + log p(sigma) + u`` (``+ u``: the Jacobian of ``sigma = e^u``). The evidence
    for a fixed sigma follows from Bayes' rule read at the conditional posterior mean ``m``:
    ``p(y | sigma) = p(y | m, sigma) p(m) / N(m; m, V)``.

    Parameters
    ----------
    u : ndarray, shape (G,)
        Values of log sigma.
    x, y : ndarray, shape (N,)
    prior_b_scale, prior_sigma_shape, prior_sigma_rate : float

    Returns
    -------
    ndarray, shape (G,)
    """
    u = np.asarray(u, dtype=float)
    sigma = np.exp(u)
    X = _design(x)
    n = X.shape[0]
    m, V = posterior_b_given_sigma(x, y, sigma, prior_b_scale)
    residuals = np.asarray(y, dtype=float) - m @ X.T                         # (G, N)
    log_lik = -0.5 * n * np.log(2 * np.pi) - n * u - 0.5 * np.sum(residuals**2, axis=-1) / sigma**2
    log_prior_b = -np.log(2 * np.pi * prior_b_scale**2) - 0.5 * np.sum(m**2, axis=-1) / prior_b_scale**2
    log_conditional_at_m = -np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(V)[1]
    log_prior_sigma = (prior_sigma_shape * np.log(prior_sigma_rate) - gammaln(prior_sigma_shape)
                       + (prior_sigma_shape - 1.0) * u - prior_sigma_rate * sigma)
    return log_lik + log_prior_b - log_conditional_at_m + log_prior_sigma + u


def exact_posterior(x, y, prior_b_scale=PRIOR_B_SCALE, prior_sigma_shape=PRIOR_SIGMA_SHAPE,
                    prior_sigma_rate=PRIOR_SIGMA_RATE, n_grid=4001):
    """Posterior mean and covariance of ``zeta = (b0, b1, log sigma)``, by quadrature over log sigma.

    Given ``u = log sigma`` the coefficients are Gaussian (:func:`posterior_b_given_sigma`), so
    every moment is a one-dimensional integral over ``u``: ``E[b] = E_u[m(u)]``,
    ``Cov[b] = E_u[V(u)] + Cov_u[m(u)]``, ``Cov[b, u] = Cov_u[m(u), u]``. A coarse, wide grid
    finds where ``log p(u | y)`` is within 60 of its maximum; ``n_grid`` equally spaced nodes
    across that range then give the integrals (a Riemann sum of a smooth function that vanishes
    at both ends: accurate to rounding).

    Parameters
    ----------
    x, y : ndarray, shape (N,)
    prior_b_scale, prior_sigma_shape, prior_sigma_rate : float
        The priors (default: the assignment's).
    n_grid : int
        Number of quadrature nodes.

    Returns
    -------
    dict
        ``mean_zeta`` (3,) and ``cov_zeta`` (3, 3): moments of zeta; ``mean_b`` (2,), ``cov_b``
        (2, 2) and ``corr_b`` (float): the coefficients' block; ``mean_sigma`` (float);
        ``log_sigma_grid`` (n_grid,) and ``log_sigma_density`` (n_grid,): the nodes and the
        normalised density of log sigma there; ``b_means`` (n_grid, 2), ``b_covs``
        (n_grid, 2, 2), ``weights`` (n_grid,): the Gaussian mixture over the nodes that is the
        posterior of the coefficients.
    """
    priors = (prior_b_scale, prior_sigma_shape, prior_sigma_rate)
    centre = np.log(np.std(np.asarray(y, dtype=float)) + 1.0)
    coarse = np.linspace(centre - 12.0, centre + 3.0, 3001)
    log_p = log_density_log_sigma(coarse, x, y, *priors)
    inside = coarse[log_p > log_p.max() - 60.0]
    spacing = coarse[1] - coarse[0]
    nodes = np.linspace(inside.min() - spacing, inside.max() + spacing, n_grid)

    log_p = log_density_log_sigma(nodes, x, y, *priors)
    weights = np.exp(log_p - log_p.max())
    weights /= weights.sum()
    means, covs = posterior_b_given_sigma(x, y, np.exp(nodes), prior_b_scale)

    conditional_means = np.column_stack([means, nodes])        # E[zeta | u] at every node
    mean_zeta = weights @ conditional_means
    centred = conditional_means - mean_zeta                     # centre first: nothing cancels
    cov_zeta = (weights[:, None] * centred).T @ centred
    cov_zeta[:2, :2] += np.einsum("g,gij->ij", weights, covs)
    sd_b = np.sqrt(np.diag(cov_zeta)[:2])
    return {
        "mean_zeta": mean_zeta, "cov_zeta": cov_zeta,
        "mean_b": mean_zeta[:2].copy(), "cov_b": cov_zeta[:2, :2].copy(),
        "corr_b": float(cov_zeta[0, 1] / (sd_b[0] * sd_b[1])),
        "mean_sigma": float(weights @ np.exp(nodes)),
        "log_sigma_grid": nodes, "log_sigma_density": weights / (nodes[1] - nodes[0]),
        "b_means": means, "b_covs": covs, "weights": weights,
    }


def posterior_density_b(x, y, b0, b1, n_grid=401, **priors):
    """The exact marginal posterior density of ``(b0, b1)`` at the points ``(b0, b1)`` (for contours).

    The posterior of the coefficients is a mixture over sigma of the conditional Gaussians; the
    mixture is taken over the quadrature nodes of :func:`exact_posterior`.

    Parameters
    ----------
    x, y : ndarray, shape (N,)
    b0, b1 : ndarray, same shape (e.g. from ``np.meshgrid``)
    n_grid : int
        Number of quadrature nodes over log sigma.
    **priors
        ``prior_b_scale``, ``prior_sigma_shape``, ``prior_sigma_rate`` (default: the assignment's).

    Returns
    -------
    ndarray, the shape of ``b0``
    """
    post = exact_posterior(x, y, n_grid=n_grid, **priors)
    points = np.stack([np.ravel(b0), np.ravel(b1)], axis=-1)          # (P, 2)
    density = np.zeros(len(points))
    for w, m, V in zip(post["weights"], post["b_means"], post["b_covs"]):
        if w < 1e-12:
            continue
        d = points - m
        precision = np.linalg.inv(V)
        maha = np.einsum("pi,ij,pj->p", d, precision, d)
        density += w * np.exp(-0.5 * maha) / (2 * np.pi * np.sqrt(np.linalg.det(V)))
    return density.reshape(np.shape(b0))
