# breaks: log_joint
# bug: uses the rate 0.5 instead of the argument prior_sigma_rate
# why: log_joint_ignores_prior
# (mutant of correct/h_python_floats.py)
import math

import autograd.numpy as anp
import numpy as np

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def inverse_transform(zeta):
    return anp.concatenate([zeta[..., :2], anp.exp(zeta[..., 2:])], axis=-1)


def log_det_jacobian(zeta):
    return zeta[..., 2] + 0.0


def log_joint(theta, x, y, prior_b_scale=10.0, prior_sigma_shape=2.0, prior_sigma_rate=0.5):
    b0, b1, sigma = theta[..., 0], theta[..., 1], theta[..., 2]
    n = float(len(x))
    residual = y - b0[..., None] - b1[..., None] * x
    log_lik = -n * HALF_LOG_2PI - n * anp.log(sigma) - 0.5 * anp.sum(residual**2, axis=-1) / sigma**2
    log_prior_b = (-2 * HALF_LOG_2PI - 2 * math.log(prior_b_scale)
                   - 0.5 * (b0**2 + b1**2) / prior_b_scale**2)
    a, r = float(prior_sigma_shape), 0.5
    log_prior_sigma = a * math.log(r) - math.lgamma(a) + (a - 1) * anp.log(sigma) - r * sigma
    return log_lik + log_prior_b + log_prior_sigma


def log_joint_zeta(zeta, x, y):
    return log_joint(inverse_transform(zeta), x, y) + log_det_jacobian(zeta)


def grad_log_joint_zeta(zeta, x, y):
    zeta = np.asarray(zeta, dtype=float)
    b0, b1, u = zeta[:, 0], zeta[:, 1], zeta[:, 2]
    residual = y - b0[:, None] - b1[:, None] * x
    precision = np.exp(-2.0 * u)
    return np.column_stack([precision * residual.sum(axis=1) - b0 / 100.0,
                            precision * (residual * x).sum(axis=1) - b1 / 100.0,
                            -len(x) + precision * (residual**2).sum(axis=1) + 2.0 - 0.5 * np.exp(u)])


def elbo_mean_field(mu, omega, eta, x, y):
    zeta = mu + np.exp(omega) * eta
    return float(np.mean(log_joint_zeta(zeta, x, y)) + np.sum(omega) + 3 * (0.5 + HALF_LOG_2PI))


def grad_elbo_mean_field(mu, omega, eta, x, y):
    sd = np.exp(omega)
    g = grad_log_joint_zeta(mu + sd * eta, x, y)
    return g.mean(axis=0), (g * eta).mean(axis=0) * sd + 1.0


def step_size(grad, s_prev, k, learning_rate, alpha=0.1, tau=1.0, eps=1e-16):
    grad = np.asarray(grad, dtype=float)
    s = grad**2 if k == 1 else alpha * grad**2 + (1.0 - alpha) * np.asarray(s_prev, dtype=float)
    return float(learning_rate) * int(k) ** (eps - 0.5) / (tau + np.sqrt(s)), s


def advi_mean_field(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, omega_init=None):
    rng = np.random.default_rng(rng)
    mu = np.zeros(3) if mu_init is None else np.array(mu_init, dtype=float)
    omega = np.zeros(3) if omega_init is None else np.array(omega_init, dtype=float)
    trace, s_mu, s_omega = [], None, None
    for k in range(1, int(n_iter) + 1):
        eta = rng.standard_normal((n_draws, 3))
        trace.append(float(elbo_mean_field(mu, omega, eta, x, y)))
        g_mu, g_omega = grad_elbo_mean_field(mu, omega, eta, x, y)
        r_mu, s_mu = step_size(g_mu, s_mu, k, learning_rate)
        r_omega, s_omega = step_size(g_omega, s_omega, k, learning_rate)
        mu = mu + r_mu * g_mu
        omega = omega + r_omega * g_omega
    return mu, omega, np.array(trace)


def elbo_full_rank(mu, L, eta, x, y):
    zeta = mu + eta @ L.T
    entropy = sum(math.log(abs(L[i, i])) for i in range(3)) + 3 * (0.5 + HALF_LOG_2PI)
    return float(np.mean(log_joint_zeta(zeta, x, y)) + entropy)


def grad_elbo_full_rank(mu, L, eta, x, y):
    g = grad_log_joint_zeta(mu + eta @ L.T, x, y)
    return g.mean(axis=0), np.tril(g.T @ eta) / len(eta) + np.diag(1.0 / np.diag(L))


def advi_full_rank(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, L_init=None):
    rng = np.random.default_rng(rng)
    mu = np.zeros(3) if mu_init is None else np.array(mu_init, dtype=float)
    L = np.eye(3) if L_init is None else np.array(L_init, dtype=float)
    trace, s_mu, s_L = [], None, None
    for k in range(1, int(n_iter) + 1):
        eta = rng.standard_normal((n_draws, 3))
        trace.append(float(elbo_full_rank(mu, L, eta, x, y)))
        g_mu, g_L = grad_elbo_full_rank(mu, L, eta, x, y)
        r_mu, s_mu = step_size(g_mu, s_mu, k, learning_rate)
        r_L, s_L = step_size(g_L, s_L, k, learning_rate)
        mu = mu + r_mu * g_mu
        L = L + r_L * g_L
    return mu, L, np.array(trace)
