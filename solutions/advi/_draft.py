"""ADVI assignment, phase 1 draft: reference implementation of the skeleton functions.

Model (Bayesian linear regression, data from ``data/advi.py``)::

    y_n | b, sigma ~ N(b0 + b1 * x_n, sigma^2)       n = 1..N, independent
    b0, b1         ~ N(0, 10^2)                      independent
    sigma          ~ Gamma(shape=2, rate=0.5)        density 0.25 * sigma * exp(-sigma / 2)

The Gamma prior is written with shape ``a`` and *rate* ``r``:
``p(sigma) = r^a / Gamma(a) * sigma^(a - 1) * exp(-r * sigma)`` (mean ``a / r = 4``). In
``scipy.stats.gamma`` this is ``gamma(a=2, scale=1 / r)``.

Latent variables ``theta = (b0, b1, sigma)``; ADVI works with the unconstrained
``zeta = T(theta) = (b0, b1, log sigma)``, so ``theta = T^{-1}(zeta) = (zeta0, zeta1, exp(zeta2))``.

Variational families on ``zeta`` (dimension ``D = 3``):

* mean-field: ``q(zeta) = N(mu, diag(exp(omega))^2)``, i.e. independent coordinates with
  standard deviations ``exp(omega)``; parameters ``mu`` (D,), ``omega`` (D,);
* full-rank: ``q(zeta) = N(mu, L L^T)`` with ``L`` (D, D) lower triangular; its D(D+1)/2
  lower-triangle entries are the free parameters, updated additively. As in the paper, ``L`` is a
  non-unique Cholesky factor: it starts at the identity (positive diagonal) but the diagonal is
  not constrained afterwards; ``q`` depends on ``L`` only through ``L L^T`` (flipping the sign of
  a column changes nothing) and the entropy uses ``log |L_ii|``. Compare covariances, not ``L``.

Both are sampled by reparameterisation: ``zeta = mu + exp(omega) * eta`` or
``zeta = mu + L eta`` with ``eta ~ N(0, I_D)``; a batch of ``S`` draws is an array ``eta`` of
shape (S, D), one draw per row.

Each function below is pasted verbatim into a notebook cell: it only uses the names imported at
the top of this file and the other functions of this file. Students write the part between the
``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers.
"""

import autograd.numpy as np
from autograd import elementwise_grad
from autograd.scipy.special import gammaln


def inverse_transform(zeta):
    """Map unconstrained variables back to the model's parameters: ``theta = T^{-1}(zeta)``.

    Parameters
    ----------
    zeta : ndarray, shape (3,) or (S, 3)
        ``(b0, b1, log sigma)``, one draw per row when 2-D.

    Returns
    -------
    theta : ndarray, same shape as ``zeta``
        ``(b0, b1, sigma)`` with ``sigma = exp(log sigma) > 0``.
    """
    ### BEGIN SOLUTION
    # Only sigma is constrained (to be positive); the coefficients already live on the real line.
    return np.concatenate([zeta[..., :2], np.exp(zeta[..., 2:])], axis=-1)
    ### END SOLUTION


def log_det_jacobian(zeta):
    """Log absolute determinant of the Jacobian of ``T^{-1}`` at ``zeta``.

    ``T^{-1}`` acts coordinate-wise, so its Jacobian is ``diag(1, 1, exp(zeta2))``.

    Parameters
    ----------
    zeta : ndarray, shape (3,) or (S, 3)
        Unconstrained variables, one draw per row when 2-D.

    Returns
    -------
    log_det : ndarray, shape () or (S,)
        ``log |det J_{T^{-1}}(zeta)|``, one value per draw.
    """
    ### BEGIN SOLUTION
    # log(1 * 1 * exp(zeta2)) = zeta2.
    return zeta[..., 2]
    ### END SOLUTION


def log_joint(theta, x, y, prior_b_scale=10.0, prior_sigma_shape=2.0, prior_sigma_rate=0.5):
    """Log joint density ``log p(y, theta) = log p(y | theta) + log p(theta)`` of the model.

    Written with ``autograd.numpy`` so that autograd can differentiate it with respect to
    ``theta``. Row ``s`` of the result depends on row ``s`` of ``theta`` only, so
    ``autograd.elementwise_grad`` gives one gradient per draw.

    Parameters
    ----------
    theta : ndarray, shape (3,) or (S, 3)
        ``(b0, b1, sigma)`` with ``sigma > 0``, one draw per row when 2-D.
    x : ndarray, shape (N,)
        Inputs.
    y : ndarray, shape (N,)
        Outputs.
    prior_b_scale : float, default 10.0
        Standard deviation of the N(0, prior_b_scale^2) prior on each coefficient.
    prior_sigma_shape, prior_sigma_rate : float, default 2.0 and 0.5
        Shape ``a`` and rate ``r`` of the Gamma prior on sigma (density
        ``r^a / Gamma(a) * sigma^(a - 1) * exp(-r * sigma)``).

    Returns
    -------
    log_p : ndarray, shape () or (S,)
        ``log p(y, theta)``, one value per draw.
    """
    ### BEGIN SOLUTION
    b0, b1, sigma = theta[..., 0], theta[..., 1], theta[..., 2]
    log_sigma = np.log(sigma)
    n = x.shape[0]
    # A trailing axis lets each draw broadcast against the N observations: (..., 1) -> (..., N).
    z = (y - b0[..., None] - b1[..., None] * x) / sigma[..., None]
    # Sum log densities (never multiply densities): no underflow however poor the fit.
    log_likelihood = -0.5 * n * np.log(2 * np.pi) - n * log_sigma - 0.5 * np.sum(z**2, axis=-1)
    log_prior_b = -np.log(2 * np.pi) - 2 * np.log(prior_b_scale) - 0.5 * (b0**2 + b1**2) / prior_b_scale**2
    log_prior_sigma = (
        prior_sigma_shape * np.log(prior_sigma_rate)
        - gammaln(prior_sigma_shape)
        + (prior_sigma_shape - 1.0) * log_sigma
        - prior_sigma_rate * sigma
    )
    return log_likelihood + log_prior_b + log_prior_sigma
    ### END SOLUTION


def log_joint_zeta(zeta, x, y):
    """Log joint density in the unconstrained space.

    ``log p(y, T^{-1}(zeta)) + log |det J_{T^{-1}}(zeta)|``: the density of ``zeta`` implied by
    the model (up to the evidence ``p(y)``), which is what ADVI fits a Gaussian to.

    Parameters
    ----------
    zeta : ndarray, shape (3,) or (S, 3)
        ``(b0, b1, log sigma)``, one draw per row when 2-D.
    x : ndarray, shape (N,)
        Inputs.
    y : ndarray, shape (N,)
        Outputs.

    Returns
    -------
    log_p : ndarray, shape () or (S,)
        One value per draw.
    """
    ### BEGIN SOLUTION
    return log_joint(inverse_transform(zeta), x, y) + log_det_jacobian(zeta)
    ### END SOLUTION


def grad_log_joint_zeta(zeta, x, y):
    """Gradient of :func:`log_joint_zeta` with respect to ``zeta``, one row per draw.

    By the chain rule (the paper's integrand of the gradient with respect to ``mu``)::

        grad_theta log p(y, theta) * grad_zeta T^{-1}(zeta) + grad_zeta log|det J_{T^{-1}}(zeta)|

    with ``theta = T^{-1}(zeta)``; the product is element-wise because ``T^{-1}`` acts on each
    coordinate separately.

    Parameters
    ----------
    zeta : ndarray, shape (3,) or (S, 3)
        Points at which to differentiate, one draw per row when 2-D.
    x : ndarray, shape (N,)
        Inputs.
    y : ndarray, shape (N,)
        Outputs.

    Returns
    -------
    grad : ndarray, same shape as ``zeta``
        Row ``s`` is the gradient at ``zeta[s]``.
    """
    ### BEGIN SOLUTION
    theta = inverse_transform(zeta)
    # Draws are independent rows, so the gradient of the sum over draws is the per-draw gradient.
    grad_theta = elementwise_grad(log_joint)(theta, x, y)
    # T^{-1} is coordinate-wise: the element-wise gradient is the diagonal of its Jacobian.
    grad_inverse_transform = elementwise_grad(inverse_transform)(zeta)
    grad_log_det = elementwise_grad(log_det_jacobian)(zeta)
    return grad_theta * grad_inverse_transform + grad_log_det
    ### END SOLUTION


def elbo_mean_field(mu, omega, eta, x, y):
    """Monte Carlo estimate of the ELBO of the mean-field Gaussian ``q = N(mu, diag(exp(omega))^2)``.

    ``ELBO = E_q[log_joint_zeta(zeta)] + H[q]``: the expectation is averaged over the draws
    ``zeta = mu + exp(omega) * eta``; the entropy is exact,
    ``H[q] = sum(omega) + D / 2 * (1 + log(2 pi))``.

    Parameters
    ----------
    mu : ndarray, shape (3,)
        Mean of ``q``.
    omega : ndarray, shape (3,)
        Log standard deviations of ``q``.
    eta : ndarray, shape (S, 3)
        Standard-normal draws, one per row.
    x : ndarray, shape (N,)
        Inputs.
    y : ndarray, shape (N,)
        Outputs.

    Returns
    -------
    elbo : float
        The estimate (a 0-d array or numpy float; differentiable by autograd in ``mu``, ``omega``).
    """
    ### BEGIN SOLUTION
    d = mu.shape[0]
    zeta = mu + np.exp(omega) * eta  # (S, D) by reparameterisation
    entropy = np.sum(omega) + 0.5 * d * (1.0 + np.log(2 * np.pi))
    return np.mean(log_joint_zeta(zeta, x, y)) + entropy
    ### END SOLUTION


def grad_elbo_mean_field(mu, omega, eta, x, y):
    """Reparameterisation estimate of the gradient of the mean-field ELBO.

    With ``zeta_s = mu + exp(omega) * eta_s`` and ``g_s = grad_log_joint_zeta(zeta_s)``::

        grad_mu    = mean_s g_s
        grad_omega = mean_s (g_s * eta_s) * exp(omega) + 1        (the 1 is the entropy's gradient)

    For fixed ``eta`` this is exactly the gradient of :func:`elbo_mean_field` with respect to
    ``(mu, omega)``; over random ``eta`` it is an unbiased estimate of the ELBO's gradient.

    Parameters
    ----------
    mu : ndarray, shape (3,)
        Mean of ``q``.
    omega : ndarray, shape (3,)
        Log standard deviations of ``q``.
    eta : ndarray, shape (S, 3)
        Standard-normal draws, one per row.
    x : ndarray, shape (N,)
        Inputs.
    y : ndarray, shape (N,)
        Outputs.

    Returns
    -------
    grad_mu : ndarray, shape (3,)
    grad_omega : ndarray, shape (3,)
    """
    ### BEGIN SOLUTION
    sd = np.exp(omega)
    g = grad_log_joint_zeta(mu + sd * eta, x, y)  # (S, D)
    grad_mu = np.mean(g, axis=0)
    grad_omega = np.mean(g * eta, axis=0) * sd + 1.0
    return grad_mu, grad_omega
    ### END SOLUTION


def step_size(grad, s_prev, k, learning_rate, alpha=0.1, tau=1.0, eps=1e-16):
    """One step of ADVI's adaptive step-size sequence (element-wise).

    ::

        s_k   = grad^2                                  if k == 1
        s_k   = alpha * grad^2 + (1 - alpha) * s_prev   otherwise
        rho_k = learning_rate * k^(-1/2 + eps) / (tau + sqrt(s_k))

    Parameters
    ----------
    grad : ndarray, any shape
        Gradient estimate ``g_k`` of the parameter at iteration ``k``.
    s_prev : ndarray, same shape as ``grad``, or None
        ``s_{k-1}``; ignored (and may be None) when ``k == 1``.
    k : int
        Iteration number, starting at 1.
    learning_rate : float
        The scale ``eta`` of the step-size sequence in the paper.
    alpha : float, default 0.1
        Weight of the newest squared gradient in the running average.
    tau : float, default 1.0
        Keeps the step finite when the gradients are tiny.
    eps : float, default 1e-16
        The step sizes decay like ``k^(-1/2 + eps)``.

    Returns
    -------
    rho : ndarray, same shape as ``grad``
        Step sizes ``rho_k``; the update is ``parameter + rho * grad`` (ascent).
    s : ndarray, same shape as ``grad``
        ``s_k``, to pass as ``s_prev`` at iteration ``k + 1``.
    """
    ### BEGIN SOLUTION
    grad_sq = grad**2
    s = grad_sq if k == 1 else alpha * grad_sq + (1.0 - alpha) * s_prev
    rho = learning_rate * k ** (-0.5 + eps) / (tau + np.sqrt(s))
    return rho, s
    ### END SOLUTION


def advi_mean_field(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, omega_init=None):
    """Fit the mean-field Gaussian ``q(zeta) = N(mu, diag(exp(omega))^2)`` by ADVI.

    Iteration ``k = 1..n_iter``:

    1. draw ``eta = rng.standard_normal((n_draws, 3))`` (fresh draws every iteration);
    2. ``elbo_trace[k - 1] = elbo_mean_field(mu, omega, eta, x, y)`` (before the update);
    3. ``grad_mu, grad_omega = grad_elbo_mean_field(mu, omega, eta, x, y)``;
    4. step sizes from :func:`step_size` with separate running averages for ``mu`` and ``omega``;
    5. ascent: ``mu += rho_mu * grad_mu``, ``omega += rho_omega * grad_omega``.

    Parameters
    ----------
    x : ndarray, shape (N,)
        Inputs.
    y : ndarray, shape (N,)
        Outputs.
    n_iter : int, default 1000
        Number of iterations.
    n_draws : int, default 10
        Number ``S`` of Monte Carlo draws per iteration.
    learning_rate : float, default 0.4
        Scale ``eta`` of the step-size sequence.
    rng : int or numpy.random.Generator, default 0
        Seed or generator for the draws (``np.random.default_rng(rng)``).
    mu_init : ndarray, shape (3,), optional
        Initial mean; zeros by default.
    omega_init : ndarray, shape (3,), optional
        Initial log standard deviations; zeros (unit variances) by default.

    Returns
    -------
    mu : ndarray, shape (3,)
        Fitted mean of ``q``.
    omega : ndarray, shape (3,)
        Fitted log standard deviations of ``q``.
    elbo_trace : ndarray, shape (n_iter,)
        ELBO estimate at each iteration, before its update.
    """
    ### BEGIN SOLUTION
    rng = np.random.default_rng(rng)
    d = 3
    mu = np.zeros(d) if mu_init is None else np.array(mu_init, dtype=float)
    omega = np.zeros(d) if omega_init is None else np.array(omega_init, dtype=float)
    s_mu = s_omega = None
    elbo_trace = np.zeros(n_iter)
    for k in range(1, n_iter + 1):
        eta = rng.standard_normal((n_draws, d))
        elbo_trace[k - 1] = elbo_mean_field(mu, omega, eta, x, y)
        grad_mu, grad_omega = grad_elbo_mean_field(mu, omega, eta, x, y)
        rho_mu, s_mu = step_size(grad_mu, s_mu, k, learning_rate)
        rho_omega, s_omega = step_size(grad_omega, s_omega, k, learning_rate)
        mu = mu + rho_mu * grad_mu
        omega = omega + rho_omega * grad_omega
    return mu, omega, elbo_trace
    ### END SOLUTION


def elbo_full_rank(mu, L, eta, x, y):
    """Monte Carlo estimate of the ELBO of the full-rank Gaussian ``q = N(mu, L L^T)``.

    The expectation is averaged over the draws ``zeta = mu + L eta``; the entropy is exact,
    ``H[q] = sum(log |L_ii|) + D / 2 * (1 + log(2 pi))``.

    Parameters
    ----------
    mu : ndarray, shape (3,)
        Mean of ``q``.
    L : ndarray, shape (3, 3)
        Lower-triangular factor of the covariance, non-zero diagonal.
    eta : ndarray, shape (S, 3)
        Standard-normal draws, one per row.
    x : ndarray, shape (N,)
        Inputs.
    y : ndarray, shape (N,)
        Outputs.

    Returns
    -------
    elbo : float
        The estimate (a 0-d array or numpy float; differentiable by autograd in ``mu``, ``L``).
    """
    ### BEGIN SOLUTION
    d = mu.shape[0]
    zeta = mu + eta @ L.T  # row s is mu + L eta_s
    entropy = np.sum(np.log(np.abs(np.diag(L)))) + 0.5 * d * (1.0 + np.log(2 * np.pi))
    return np.mean(log_joint_zeta(zeta, x, y)) + entropy
    ### END SOLUTION


def grad_elbo_full_rank(mu, L, eta, x, y):
    """Reparameterisation estimate of the gradient of the full-rank ELBO.

    With ``zeta_s = mu + L eta_s`` and ``g_s = grad_log_joint_zeta(zeta_s)``::

        grad_mu = mean_s g_s
        grad_L  = lower triangle of [ mean_s g_s eta_s^T + (L^{-1})^T ]

    The lower triangle of ``(L^{-1})^T`` (upper triangular) is ``diag(1 / L_ii)``, the gradient
    of the entropy. For fixed ``eta`` this is exactly the gradient of :func:`elbo_full_rank`
    with respect to ``mu`` and the lower triangle of ``L``.

    Parameters
    ----------
    mu : ndarray, shape (3,)
        Mean of ``q``.
    L : ndarray, shape (3, 3)
        Lower-triangular factor of the covariance, non-zero diagonal.
    eta : ndarray, shape (S, 3)
        Standard-normal draws, one per row.
    x : ndarray, shape (N,)
        Inputs.
    y : ndarray, shape (N,)
        Outputs.

    Returns
    -------
    grad_mu : ndarray, shape (3,)
    grad_L : ndarray, shape (3, 3)
        Lower triangular (zeros above the diagonal: those entries are not parameters).
    """
    ### BEGIN SOLUTION
    g = grad_log_joint_zeta(mu + eta @ L.T, x, y)  # (S, D)
    grad_mu = np.mean(g, axis=0)
    # Average of the outer products g_s eta_s^T over the draws.
    grad_L = np.tril(g.T @ eta / eta.shape[0]) + np.diag(1.0 / np.diag(L))
    return grad_mu, grad_L
    ### END SOLUTION


def advi_full_rank(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, L_init=None):
    """Fit the full-rank Gaussian ``q(zeta) = N(mu, L L^T)`` by ADVI.

    Same loop as :func:`advi_mean_field`, with :func:`elbo_full_rank`,
    :func:`grad_elbo_full_rank` and separate step-size running averages for ``mu`` and ``L``
    (``L`` stays lower triangular: its upper gradient entries are zero).

    Parameters
    ----------
    x : ndarray, shape (N,)
        Inputs.
    y : ndarray, shape (N,)
        Outputs.
    n_iter : int, default 1000
        Number of iterations.
    n_draws : int, default 10
        Number ``S`` of Monte Carlo draws per iteration.
    learning_rate : float, default 0.4
        Scale ``eta`` of the step-size sequence.
    rng : int or numpy.random.Generator, default 0
        Seed or generator for the draws (``np.random.default_rng(rng)``); each iteration draws
        ``rng.standard_normal((n_draws, 3))``.
    mu_init : ndarray, shape (3,), optional
        Initial mean; zeros by default.
    L_init : ndarray, shape (3, 3), optional
        Initial lower-triangular factor; the identity by default.

    Returns
    -------
    mu : ndarray, shape (3,)
        Fitted mean of ``q``.
    L : ndarray, shape (3, 3)
        Fitted lower-triangular factor; the covariance of ``q`` is ``L @ L.T``. A diagonal entry
        may have become negative during the run (harmless: only ``L @ L.T`` matters).
    elbo_trace : ndarray, shape (n_iter,)
        ELBO estimate at each iteration, before its update.
    """
    ### BEGIN SOLUTION
    rng = np.random.default_rng(rng)
    d = 3
    mu = np.zeros(d) if mu_init is None else np.array(mu_init, dtype=float)
    L = np.eye(d) if L_init is None else np.array(L_init, dtype=float)
    s_mu = s_L = None
    elbo_trace = np.zeros(n_iter)
    for k in range(1, n_iter + 1):
        eta = rng.standard_normal((n_draws, d))
        elbo_trace[k - 1] = elbo_full_rank(mu, L, eta, x, y)
        grad_mu, grad_L = grad_elbo_full_rank(mu, L, eta, x, y)
        rho_mu, s_mu = step_size(grad_mu, s_mu, k, learning_rate)
        rho_L, s_L = step_size(grad_L, s_L, k, learning_rate)
        mu = mu + rho_mu * grad_mu
        L = L + rho_L * grad_L
    return mu, L, elbo_trace
    ### END SOLUTION
