"""Exact answers for the ADVI assignment's model (instructor side: notebook figures and grader).

Model: ``y_n ~ N(b0 + b1 x_n, sigma^2)``, ``b0, b1 ~ N(0, prior_b_scale^2)``,
``sigma ~ Gamma(shape=prior_sigma_shape, rate=prior_sigma_rate)``; unconstrained
``zeta = (b0, b1, log sigma)``. The defaults of the keyword arguments below are the assignment's
priors and must equal those of ``log_joint`` in the reference implementation (a test checks it).

Two kinds of exact results:

* the posterior ``p(zeta | y)``. Given sigma the model is conjugate, so ``b | sigma, y`` is
  Gaussian (:func:`posterior_b_given_sigma`) and ``p(sigma | y)`` is known up to a constant in
  closed form; the posterior moments are then one-dimensional integrals over ``log sigma``,
  done on a dense grid (:func:`exact_posterior`); refining the grid tenfold changes them
  by about 1e-14.
* the ELBO of a Gaussian ``q(zeta) = N(m, C)``: for this model ``E_q[log p(y, T^{-1}(zeta)) +
  log|det J|]`` has a closed form (log-normal moments and an exponential tilt), so the ELBO and,
  by autograd, its exact gradient are available (:func:`exact_elbo_mean_field`,
  :func:`exact_elbo_full_rank`), and so are the exact optima that ADVI converges to
  (:func:`optimal_mean_field`, :func:`optimal_full_rank`).
"""

import autograd
import autograd.numpy as anp
import numpy as np
import scipy.optimize
from autograd.scipy.special import gammaln

PRIOR_B_SCALE = 10.0
PRIOR_SIGMA_SHAPE = 2.0
PRIOR_SIGMA_RATE = 0.5


def design_matrix(x):
    """Columns ``(1, x)``.

    Parameters
    ----------
    x : ndarray, shape (N,)

    Returns
    -------
    ndarray, shape (N, 2)
    """
    x = np.asarray(x, dtype=float)
    return np.column_stack([np.ones_like(x), x])


def posterior_b_given_sigma(x, y, sigma, prior_b_scale=PRIOR_B_SCALE):
    """Conjugate posterior of ``b = (b0, b1)`` when sigma is known.

    ``b | sigma, y ~ N(m, V)`` with ``V = (X^T X / sigma^2 + I / prior_b_scale^2)^{-1}`` and
    ``m = V X^T y / sigma^2``.

    Parameters
    ----------
    x, y : ndarray, shape (N,)
        Data.
    sigma : float or ndarray, shape (G,)
        Noise standard deviation(s).
    prior_b_scale : float
        Prior standard deviation of each coefficient.

    Returns
    -------
    mean : ndarray, shape (2,) or (G, 2)
    cov : ndarray, shape (2, 2) or (G, 2, 2)
    """
    X = design_matrix(x)
    y = np.asarray(y, dtype=float)
    inv_var = 1.0 / np.asarray(sigma, dtype=float) ** 2
    precision = inv_var[..., None, None] * (X.T @ X) + np.eye(2) / prior_b_scale**2
    cov = np.linalg.inv(precision)
    mean = np.einsum("...ij,j->...i", cov, X.T @ y) * inv_var[..., None]
    return mean, cov


def log_posterior_log_sigma(
    log_sigma,
    x,
    y,
    prior_b_scale=PRIOR_B_SCALE,
    prior_sigma_shape=PRIOR_SIGMA_SHAPE,
    prior_sigma_rate=PRIOR_SIGMA_RATE,
):
    """Unnormalised log marginal posterior density of ``log sigma``.

    ``log p(y | sigma) + log p(sigma) + log sigma`` (the last term is the Jacobian of
    ``sigma = exp(log sigma)``). The evidence given sigma comes from Bayes' rule evaluated at the
    conditional posterior mean ``m``: ``log p(y|sigma) = log p(y|m, sigma) + log p(m) -
    log N(m; m, V)``.

    Parameters
    ----------
    log_sigma : ndarray, shape (G,)
    x, y : ndarray, shape (N,)
    prior_b_scale, prior_sigma_shape, prior_sigma_rate : float

    Returns
    -------
    ndarray, shape (G,)
    """
    log_sigma = np.asarray(log_sigma, dtype=float)
    sigma = np.exp(log_sigma)
    X = design_matrix(x)
    n = X.shape[0]
    mean, cov = posterior_b_given_sigma(x, y, sigma, prior_b_scale)
    residual = np.asarray(y, dtype=float) - mean @ X.T  # (G, N)
    log_lik = -0.5 * n * np.log(2 * np.pi) - n * log_sigma - 0.5 * np.sum(residual**2, axis=-1) / sigma**2
    log_prior_b = np.sum(
        -0.5 * np.log(2 * np.pi) - np.log(prior_b_scale) - 0.5 * (mean / prior_b_scale) ** 2, axis=-1
    )
    log_cond_at_mean = -np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(cov)[1]
    log_prior_sigma = (
        prior_sigma_shape * np.log(prior_sigma_rate)
        - gammaln(prior_sigma_shape)
        + (prior_sigma_shape - 1.0) * log_sigma
        - prior_sigma_rate * sigma
    )
    return log_lik + log_prior_b - log_cond_at_mean + log_prior_sigma + log_sigma


def exact_posterior(
    x,
    y,
    prior_b_scale=PRIOR_B_SCALE,
    prior_sigma_shape=PRIOR_SIGMA_SHAPE,
    prior_sigma_rate=PRIOR_SIGMA_RATE,
    n_grid=4001,
):
    """Posterior moments of ``zeta = (b0, b1, log sigma)``, by 1-D quadrature over ``log sigma``.

    Mixture identities over ``u = log sigma``: ``E[b] = E_u[m(u)]``,
    ``Cov[b] = E_u[V(u)] + Cov_u[m(u)]``, ``Cov[b, u] = Cov_u[m(u), u]``. The grid first locates
    the bulk of ``p(u | y)`` on a wide coarse grid, then covers where the log density is within
    60 of its maximum with ``n_grid`` equally spaced points (a Riemann sum of a smooth, rapidly
    decaying function: spectrally accurate). The coarse grid spans ``sigma`` from
    ``(std(y) + 1) * exp(-12)`` to ``(std(y) + 1) * exp(3)``, ample for this assignment's data.

    Parameters
    ----------
    x, y : ndarray, shape (N,)
        Data.
    prior_b_scale, prior_sigma_shape, prior_sigma_rate : float
        The priors (defaults: the assignment's).
    n_grid : int
        Number of grid points of the fine grid.

    Returns
    -------
    dict
        ``mean_zeta`` (3,), ``cov_zeta`` (3, 3): posterior mean and covariance of zeta;
        ``mean_b`` (2,), ``cov_b`` (2, 2): marginal posterior of ``(b0, b1)``;
        ``corr_b`` float: posterior correlation of b0 and b1;
        ``mean_sigma`` float: posterior mean of sigma;
        ``log_sigma_grid`` (n_grid,), ``log_sigma_density`` (n_grid,): the normalised marginal
        density of ``log sigma`` on the grid (for plots).
    """
    priors = (prior_b_scale, prior_sigma_shape, prior_sigma_rate)
    spread = np.std(np.asarray(y, dtype=float)) + 1.0
    coarse = np.linspace(np.log(spread) - 12.0, np.log(spread) + 3.0, 3001)
    log_density = log_posterior_log_sigma(coarse, x, y, *priors)
    inside = coarse[log_density > log_density.max() - 60.0]
    step = coarse[1] - coarse[0]
    grid = np.linspace(inside.min() - step, inside.max() + step, n_grid)

    log_density = log_posterior_log_sigma(grid, x, y, *priors)
    weights = np.exp(log_density - log_density.max())
    weights /= weights.sum()
    means, covs = posterior_b_given_sigma(x, y, np.exp(grid), prior_b_scale)

    # Moments of the mixture over the grid; centre first so nothing cancels.
    points = np.column_stack([means, grid])  # (G, 3): conditional mean of zeta given u
    mean_zeta = weights @ points
    centred = points - mean_zeta
    cov_zeta = (weights[:, None] * centred).T @ centred
    cov_zeta[:2, :2] += np.einsum("g,gij->ij", weights, covs)
    sd_b = np.sqrt(np.diag(cov_zeta)[:2])
    return {
        "mean_zeta": mean_zeta,
        "cov_zeta": cov_zeta,
        "mean_b": mean_zeta[:2].copy(),
        "cov_b": cov_zeta[:2, :2].copy(),
        "corr_b": float(cov_zeta[0, 1] / (sd_b[0] * sd_b[1])),
        "mean_sigma": float(weights @ np.exp(grid)),
        "log_sigma_grid": grid,
        "log_sigma_density": weights / (grid[1] - grid[0]),
    }


def expected_log_joint_zeta(
    mean,
    cov,
    x,
    y,
    prior_b_scale=PRIOR_B_SCALE,
    prior_sigma_shape=PRIOR_SIGMA_SHAPE,
    prior_sigma_rate=PRIOR_SIGMA_RATE,
):
    """Closed form of ``E_q[log p(y, T^{-1}(zeta)) + log|det J_{T^{-1}}(zeta)|]``, ``q = N(mean, cov)``.

    With ``u = log sigma``: ``E[u] = m_u``; ``E[exp(u)] = exp(m_u + C_uu / 2)``;
    ``E[b_j^2] = m_j^2 + C_jj``; and, tilting ``q`` by ``exp(-2u)``,
    ``E[exp(-2u) (y_n - x_n^T b)^2] = exp(-2 m_u + 2 C_uu) [(y_n - x_n^T m')^2 + x_n^T C_bb x_n]``
    with ``m' = m_b - 2 C_bu``. Written with autograd.numpy (differentiable in mean and cov).

    Parameters
    ----------
    mean : ndarray, shape (3,)
    cov : ndarray, shape (3, 3)
    x, y : ndarray, shape (N,)
    prior_b_scale, prior_sigma_shape, prior_sigma_rate : float

    Returns
    -------
    float
    """
    X = design_matrix(x)
    n = X.shape[0]
    m_b, m_u = mean[:2], mean[2]
    c_bb, c_bu, c_uu = cov[:2, :2], cov[:2, 2], cov[2, 2]
    tilted_mean = m_b - 2.0 * c_bu
    expected_sq_residuals = anp.sum((y - X @ tilted_mean) ** 2) + anp.sum((X @ c_bb) * X)
    expected_inv_var = anp.exp(-2.0 * m_u + 2.0 * c_uu)  # E[exp(-2u)], the tilt's normaliser
    expected_log_lik = -0.5 * n * np.log(2 * np.pi) - n * m_u - 0.5 * expected_inv_var * expected_sq_residuals
    expected_sum_b_sq = anp.sum(m_b**2) + anp.trace(c_bb)
    expected_log_prior_b = (
        -np.log(2 * np.pi) - 2.0 * np.log(prior_b_scale) - 0.5 * expected_sum_b_sq / prior_b_scale**2
    )
    # (a - 1) log sigma from the Gamma density plus log sigma from the Jacobian.
    expected_log_prior_u = (
        prior_sigma_shape * np.log(prior_sigma_rate)
        - gammaln(prior_sigma_shape)
        + prior_sigma_shape * m_u
        - prior_sigma_rate * anp.exp(m_u + 0.5 * c_uu)
    )
    return expected_log_lik + expected_log_prior_b + expected_log_prior_u


def gaussian_entropy_constant(d):
    """Entropy of ``N(0, I_d)``: ``d / 2 * (1 + log(2 pi))``.

    Parameters
    ----------
    d : int

    Returns
    -------
    float
    """
    return 0.5 * d * (1.0 + np.log(2 * np.pi))


def exact_elbo_mean_field(mu, omega, x, y, **priors):
    """Exact ELBO of ``q = N(mu, diag(exp(omega))^2)`` (differentiable by autograd).

    Parameters
    ----------
    mu, omega : ndarray, shape (3,)
    x, y : ndarray, shape (N,)
    **priors
        Keyword arguments of :func:`expected_log_joint_zeta`.

    Returns
    -------
    float
    """
    cov = anp.diag(anp.exp(2.0 * omega))
    return expected_log_joint_zeta(mu, cov, x, y, **priors) + anp.sum(omega) + gaussian_entropy_constant(3)


def exact_elbo_full_rank(mu, L, x, y, **priors):
    """Exact ELBO of ``q = N(mu, L L^T)``, ``L`` lower triangular (differentiable by autograd).

    Only the lower triangle of ``L`` is used.

    Parameters
    ----------
    mu : ndarray, shape (3,)
    L : ndarray, shape (3, 3)
    x, y : ndarray, shape (N,)
    **priors
        Keyword arguments of :func:`expected_log_joint_zeta`.

    Returns
    -------
    float
    """
    L = anp.tril(L)
    entropy = anp.sum(anp.log(anp.abs(anp.diag(L)))) + gaussian_entropy_constant(3)
    return expected_log_joint_zeta(mu, L @ L.T, x, y, **priors) + entropy


def exact_grad_mean_field(mu, omega, x, y, **priors):
    """Exact gradient of the mean-field ELBO (autograd of :func:`exact_elbo_mean_field`).

    Parameters
    ----------
    mu, omega : ndarray, shape (3,)
    x, y : ndarray, shape (N,)
    **priors
        Keyword arguments of :func:`expected_log_joint_zeta`.

    Returns
    -------
    grad_mu, grad_omega : ndarray, shape (3,)
    """
    mu, omega = np.asarray(mu, dtype=float), np.asarray(omega, dtype=float)
    return autograd.grad(exact_elbo_mean_field, (0, 1))(mu, omega, x, y, **priors)


def exact_grad_full_rank(mu, L, x, y, **priors):
    """Exact gradient of the full-rank ELBO with respect to ``mu`` and the lower triangle of ``L``.

    Parameters
    ----------
    mu : ndarray, shape (3,)
    L : ndarray, shape (3, 3), lower triangular
    x, y : ndarray, shape (N,)
    **priors
        Keyword arguments of :func:`expected_log_joint_zeta`.

    Returns
    -------
    grad_mu : ndarray, shape (3,)
    grad_L : ndarray, shape (3, 3), lower triangular
    """
    mu, L = np.asarray(mu, dtype=float), np.asarray(L, dtype=float)
    grad_mu, grad_L = autograd.grad(exact_elbo_full_rank, (0, 1))(mu, L, x, y, **priors)
    return grad_mu, np.tril(grad_L)


_TRIL = np.tril_indices(3)
# (9, 6) matrix that scatters the 6 free entries of a lower-triangular 3x3 matrix into its
# row-major flattening: differentiable by autograd, unlike index assignment.
_SCATTER_TRIL = np.eye(9)[:, np.ravel_multi_index(_TRIL, (3, 3))]


def _unpack_full_rank(params):
    """``params`` (9,) = mean (3,) then the lower triangle of L row by row (6,)."""
    return params[:3], anp.reshape(_SCATTER_TRIL @ params[3:], (3, 3))


def _maximise(negative, params0):
    """Minimise ``negative`` (the negated closed-form ELBO) by BFGS with autograd's gradient."""
    return scipy.optimize.minimize(
        negative, params0, jac=autograd.grad(negative), method="BFGS", options={"gtol": 1e-10}
    )


def optimal_mean_field(x, y, **priors):
    """The mean-field Gaussian that maximises the exact ELBO (what ADVI converges to).

    BFGS on the closed-form ELBO, started from the posterior's mean and marginal log standard
    deviations.

    Parameters
    ----------
    x, y : ndarray, shape (N,)
    **priors
        Keyword arguments of :func:`expected_log_joint_zeta`.

    Returns
    -------
    dict
        ``mu`` (3,), ``omega`` (3,), ``elbo`` float.
    """
    start = exact_posterior(x, y, **priors)

    def negative(params):
        return -exact_elbo_mean_field(params[:3], params[3:], x, y, **priors)

    params0 = np.concatenate([start["mean_zeta"], 0.5 * np.log(np.diag(start["cov_zeta"]))])
    result = _maximise(negative, params0)
    return {"mu": result.x[:3], "omega": result.x[3:], "elbo": -float(result.fun)}


def optimal_full_rank(x, y, **priors):
    """The full-rank Gaussian that maximises the exact ELBO (what ADVI converges to).

    BFGS on the closed-form ELBO, started from the posterior's mean and Cholesky factor.

    Parameters
    ----------
    x, y : ndarray, shape (N,)
    **priors
        Keyword arguments of :func:`expected_log_joint_zeta`.

    Returns
    -------
    dict
        ``mu`` (3,), ``L`` (3, 3) lower triangular with positive diagonal, ``cov`` (3, 3),
        ``elbo`` float.
    """
    start = exact_posterior(x, y, **priors)

    def negative(params):
        return -exact_elbo_full_rank(*_unpack_full_rank(params), x, y, **priors)

    L0 = np.linalg.cholesky(start["cov_zeta"])
    params0 = np.concatenate([start["mean_zeta"], L0[_TRIL]])
    result = _maximise(negative, params0)
    mu, L = _unpack_full_rank(result.x)
    L = L * np.sign(np.diag(L))  # flip column signs: same L L^T, positive diagonal
    return {"mu": mu, "L": L, "cov": L @ L.T, "elbo": -float(result.fun)}
