# breaks: step_size
# bug: divides by tau + s instead of tau + sqrt(s)
# why: step_no_sqrt
# (mutant of correct/f_per_point_autograd.py)
import autograd.numpy as np
from autograd import grad
from autograd.scipy.special import gammaln

LOG_2PI = np.log(2 * np.pi)


def inverse_transform(zeta):
    return np.concatenate([zeta[..., 0:2], np.exp(zeta[..., 2:3])], axis=-1)


def log_det_jacobian(zeta):
    return np.sum(zeta[..., 2:3], axis=-1)


def log_joint(theta, x, y, prior_b_scale=10.0, prior_sigma_shape=2.0, prior_sigma_rate=0.5):
    b0, b1, sigma = theta[..., 0:1], theta[..., 1:2], theta[..., 2:3]        # (..., 1): broadcast over x
    log_lik = np.sum(-0.5 * LOG_2PI - np.log(sigma) - 0.5 * ((y - b0 - b1 * x) / sigma) ** 2, axis=-1)
    b = theta[..., 0:2]
    log_prior_b = np.sum(-0.5 * LOG_2PI - np.log(prior_b_scale) - 0.5 * (b / prior_b_scale) ** 2, axis=-1)
    a, r = prior_sigma_shape, prior_sigma_rate
    log_prior_sigma = np.sum(a * np.log(r) - gammaln(a) + (a - 1) * np.log(sigma) - r * sigma, axis=-1)
    return log_lik + log_prior_b + log_prior_sigma


def log_joint_zeta(zeta, x, y):
    return log_joint(inverse_transform(zeta), x, y) + log_det_jacobian(zeta)


def grad_log_joint_zeta(zeta, x, y):
    point_gradient = grad(log_joint_zeta)
    return np.stack([point_gradient(point, x, y) for point in zeta])


def elbo_mean_field(mu, omega, eta, x, y):
    draws = mu + np.exp(omega) * eta
    return np.mean(log_joint_zeta(draws, x, y)) + np.sum(omega) + 1.5 * (1 + LOG_2PI)


def grad_elbo_mean_field(mu, omega, eta, x, y):
    g = grad_log_joint_zeta(mu + np.exp(omega) * eta, x, y)
    return g.mean(axis=0), (g * eta).mean(axis=0) * np.exp(omega) + 1


def step_size(grad, s_prev, k, learning_rate, alpha=0.1, tau=1.0, eps=1e-16):
    if k == 1:
        s = grad * grad
    else:
        s = alpha * grad * grad + (1 - alpha) * s_prev
    return learning_rate * k ** (-0.5 + eps) / (tau + s), s


def advi_mean_field(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, omega_init=None):
    rng = np.random.default_rng(rng)
    mu = np.zeros(3) if mu_init is None else np.array(mu_init, dtype=float)
    omega = np.zeros(3) if omega_init is None else np.array(omega_init, dtype=float)
    trace = np.zeros(n_iter)
    s_mu, s_omega = None, None
    k = 1
    while k <= n_iter:
        eta = rng.standard_normal((n_draws, 3))
        trace[k - 1] = elbo_mean_field(mu, omega, eta, x, y)
        g_mu, g_omega = grad_elbo_mean_field(mu, omega, eta, x, y)
        r_mu, s_mu = step_size(g_mu, s_mu, k, learning_rate)
        r_omega, s_omega = step_size(g_omega, s_omega, k, learning_rate)
        mu, omega = mu + r_mu * g_mu, omega + r_omega * g_omega
        k += 1
    return mu, omega, trace


def elbo_full_rank(mu, L, eta, x, y):
    draws = mu + np.dot(eta, L.T)
    return np.mean(log_joint_zeta(draws, x, y)) + np.sum(np.log(np.abs(np.diag(L)))) + 1.5 * (1 + LOG_2PI)


def grad_elbo_full_rank(mu, L, eta, x, y):
    g = grad_log_joint_zeta(mu + np.dot(eta, L.T), x, y)
    outer = np.mean(g[:, :, None] * eta[:, None, :], axis=0)
    return g.mean(axis=0), np.tril(outer) + np.diag(1 / np.diag(L))


def advi_full_rank(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, L_init=None):
    rng = np.random.default_rng(rng)
    mu = np.zeros(3) if mu_init is None else np.array(mu_init, dtype=float)
    L = np.eye(3) if L_init is None else np.array(L_init, dtype=float)
    trace = np.zeros(n_iter)
    s_mu, s_L = None, None
    k = 1
    while k <= n_iter:
        eta = rng.standard_normal((n_draws, 3))
        trace[k - 1] = elbo_full_rank(mu, L, eta, x, y)
        g_mu, g_L = grad_elbo_full_rank(mu, L, eta, x, y)
        r_mu, s_mu = step_size(g_mu, s_mu, k, learning_rate)
        r_L, s_L = step_size(g_L, s_L, k, learning_rate)
        mu, L = mu + r_mu * g_mu, L + r_L * g_L
        k += 1
    return mu, L, trace
