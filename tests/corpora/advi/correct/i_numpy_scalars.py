# Correct submission (i): numpy scalars and 0-d arrays everywhere a number is returned. The ELBO
# returns a 0-d array (np.asarray of the estimate), the loops count with numpy integers from
# np.arange, the learning rate is turned into np.float64, and the trace is filled from 0-d arrays.
# Hand-derived gradients through an explicit design matrix; autograd only as autograd.numpy in the
# model's functions, which the notebook asks to be differentiable by autograd (the constant log Gamma(a)
# still comes from scipy.special).
import autograd.numpy as anp
import numpy as np


def inverse_transform(zeta):
    return anp.stack((zeta[..., 0], zeta[..., 1], anp.exp(zeta[..., 2])), axis=-1)


def log_det_jacobian(zeta):
    return zeta[..., 2] + anp.float64(0)


def _gammaln(a):
    from scipy.special import gammaln
    return gammaln(a)


def log_joint(theta, x, y, prior_b_scale=10.0, prior_sigma_shape=2.0, prior_sigma_rate=0.5):
    design = anp.column_stack([anp.ones_like(x), x])                     # (N, 2)
    fitted = theta[..., :2] @ design.T                                  # (..., N)
    sigma = theta[..., 2]
    n = anp.float64(len(x))
    log_lik = (-0.5 * n * anp.log(2 * anp.pi) - n * anp.log(sigma)
               - 0.5 * anp.sum((y - fitted) ** 2, axis=-1) / sigma**2)
    s2 = anp.float64(prior_b_scale) ** 2
    log_prior_b = -anp.log(2 * anp.pi * s2) - 0.5 * anp.sum(theta[..., :2] ** 2, axis=-1) / s2
    a, r = anp.float64(prior_sigma_shape), anp.float64(prior_sigma_rate)
    log_prior_sigma = a * anp.log(r) - _gammaln(a) + (a - 1) * anp.log(sigma) - r * sigma
    return log_lik + log_prior_b + log_prior_sigma


def log_joint_zeta(zeta, x, y):
    return log_joint(inverse_transform(zeta), x, y) + log_det_jacobian(zeta)


def grad_log_joint_zeta(zeta, x, y):
    zeta = np.asarray(zeta)
    design = np.column_stack([np.ones_like(x), x])
    residual = y - zeta[:, :2] @ design.T                               # (S, N)
    inv_var = np.exp(-2 * zeta[:, 2])[:, None]
    grad_b = inv_var * (residual @ design) - zeta[:, :2] / 100.0
    grad_u = -len(x) + inv_var[:, 0] * np.sum(residual**2, axis=1) + 2.0 - 0.5 * np.exp(zeta[:, 2])
    return np.column_stack([grad_b, grad_u])


def elbo_mean_field(mu, omega, eta, x, y):
    zeta = mu + np.exp(omega) * eta
    return np.asarray(np.mean(log_joint_zeta(zeta, x, y)) + np.sum(omega) + 1.5 * np.log(2 * np.pi * np.e))


def grad_elbo_mean_field(mu, omega, eta, x, y):
    sd = np.exp(omega)
    g = grad_log_joint_zeta(mu + sd * eta, x, y)
    return np.mean(g, axis=0), np.mean(g * eta, axis=0) * sd + np.float64(1)


def step_size(grad, s_prev, k, learning_rate, alpha=0.1, tau=1.0, eps=1e-16):
    s = np.square(grad) if k == 1 else alpha * np.square(grad) + (1 - alpha) * s_prev
    return learning_rate * np.power(np.float64(k), eps - 0.5) / (tau + np.sqrt(s)), s


def advi_mean_field(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, omega_init=None):
    rng = np.random.default_rng(rng)
    mu = np.zeros(3) if mu_init is None else np.array(mu_init, dtype=float)
    omega = np.zeros(3) if omega_init is None else np.array(omega_init, dtype=float)
    learning_rate = np.float64(learning_rate)
    trace = np.empty(n_iter)
    s_mu = s_omega = None
    for k in np.arange(1, n_iter + 1):
        eta = rng.standard_normal((n_draws, 3))
        trace[k - 1] = elbo_mean_field(mu, omega, eta, x, y)
        g_mu, g_omega = grad_elbo_mean_field(mu, omega, eta, x, y)
        r_mu, s_mu = step_size(g_mu, s_mu, k, learning_rate)
        r_omega, s_omega = step_size(g_omega, s_omega, k, learning_rate)
        mu = mu + r_mu * g_mu
        omega = omega + r_omega * g_omega
    return mu, omega, trace


def elbo_full_rank(mu, L, eta, x, y):
    zeta = mu + eta @ L.T
    entropy = np.sum(np.log(np.abs(np.diagonal(L)))) + 1.5 * np.log(2 * np.pi * np.e)
    return np.asarray(np.mean(log_joint_zeta(zeta, x, y)) + entropy)


def grad_elbo_full_rank(mu, L, eta, x, y):
    g = grad_log_joint_zeta(mu + eta @ L.T, x, y)
    return np.mean(g, axis=0), np.tril(np.einsum("si,sj->ij", g, eta) / np.float64(len(eta))) + np.diag(1 / np.diag(L))


def advi_full_rank(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, L_init=None):
    rng = np.random.default_rng(rng)
    mu = np.zeros(3) if mu_init is None else np.array(mu_init, dtype=float)
    L = np.eye(3) if L_init is None else np.array(L_init, dtype=float)
    learning_rate = np.float64(learning_rate)
    trace = np.empty(n_iter)
    s_mu = s_L = None
    for k in np.arange(1, n_iter + 1):
        eta = rng.standard_normal((n_draws, 3))
        trace[k - 1] = elbo_full_rank(mu, L, eta, x, y)
        g_mu, g_L = grad_elbo_full_rank(mu, L, eta, x, y)
        r_mu, s_mu = step_size(g_mu, s_mu, k, learning_rate)
        r_L, s_L = step_size(g_L, s_L, k, learning_rate)
        mu = mu + r_mu * g_mu
        L = L + r_L * g_L
    return mu, L, trace
