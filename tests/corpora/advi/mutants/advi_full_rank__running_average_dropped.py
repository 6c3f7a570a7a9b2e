# breaks: advi_full_rank
# bug: never keeps L's running average (s_L stays None)
# why: loop_s_prev_lost
# (mutant of correct/g_chain_rule_scipy_autograd.py)
import autograd.numpy as np
from autograd import elementwise_grad, grad
from autograd.scipy.special import gammaln
from autograd.scipy.stats import norm


def inverse_transform(zeta):
    return np.stack([zeta[..., 0], zeta[..., 1], np.exp(zeta[..., 2])], axis=-1)


def log_det_jacobian(zeta):
    return 1.0 * zeta[..., 2]


def log_joint(theta, x, y, prior_b_scale=10.0, prior_sigma_shape=2.0, prior_sigma_rate=0.5):
    mean = np.expand_dims(theta[..., 0], -1) + np.expand_dims(theta[..., 1], -1) * x
    log_lik = np.sum(norm.logpdf(y, mean, np.expand_dims(theta[..., 2], -1)), axis=-1)
    log_prior_b = np.sum(norm.logpdf(theta[..., :2], 0.0, prior_b_scale), axis=-1)
    sigma, a, r = theta[..., 2], prior_sigma_shape, prior_sigma_rate
    log_prior_sigma = a * np.log(r) - gammaln(a) + (a - 1) * np.log(sigma) - r * sigma
    return log_lik + log_prior_b + log_prior_sigma


def log_joint_zeta(zeta, x, y):
    return log_joint(inverse_transform(zeta), x, y) + log_det_jacobian(zeta)


def grad_log_joint_zeta(zeta, x, y):
    theta = inverse_transform(zeta)
    d_theta = elementwise_grad(log_joint)(theta, x, y)
    d_inverse = elementwise_grad(inverse_transform)(zeta)
    return d_theta * d_inverse + elementwise_grad(log_det_jacobian)(zeta)


def elbo_mean_field(mu, omega, eta, x, y):
    zeta = mu + np.exp(omega) * eta
    return np.mean(log_joint_zeta(zeta, x, y)) + np.sum(omega) + 0.5 * len(mu) * (1 + np.log(2 * np.pi))


def grad_elbo_mean_field(mu, omega, eta, x, y):
    objective = lambda m, o: elbo_mean_field(m, o, eta, x, y)  # noqa: E731
    return tuple(grad(objective, (0, 1))(mu, omega))


def step_size(grad, s_prev, k, learning_rate, alpha=0.1, tau=1.0, eps=1e-16):
    s = grad**2 if k == 1 else s_prev + alpha * (grad**2 - s_prev)
    rho = learning_rate / np.sqrt(k) * k**eps / (tau + np.sqrt(s))
    return rho, s


def advi_mean_field(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, omega_init=None):
    rng = np.random.default_rng(rng)
    mu = np.zeros(3) if mu_init is None else np.array(mu_init, dtype=float)
    omega = np.zeros(3) if omega_init is None else np.array(omega_init, dtype=float)
    trace, s_mu, s_omega = [], None, None
    for k in range(1, n_iter + 1):
        eta = rng.standard_normal((n_draws, 3))
        g_mu, g_omega = grad_elbo_mean_field(mu, omega, eta, x, y)
        trace.append(elbo_mean_field(mu, omega, eta, x, y))
        r_mu, s_mu = step_size(g_mu, s_mu, k, learning_rate)
        r_omega, s_omega = step_size(g_omega, s_omega, k, learning_rate)
        mu += r_mu * g_mu
        omega += r_omega * g_omega
    return mu, omega, np.array(trace)


def elbo_full_rank(mu, L, eta, x, y):
    zeta = mu + eta @ L.T
    return (np.mean(log_joint_zeta(zeta, x, y)) + np.sum(np.log(np.abs(np.diag(L))))
            + 0.5 * len(mu) * (1 + np.log(2 * np.pi)))


def grad_elbo_full_rank(mu, L, eta, x, y):
    objective = lambda m, factor: elbo_full_rank(m, factor, eta, x, y)  # noqa: E731
    g_mu, g_L = grad(objective, (0, 1))(mu, L)
    return g_mu, np.tril(g_L)


def advi_full_rank(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, L_init=None):
    rng = np.random.default_rng(rng)
    mu = np.zeros(3) if mu_init is None else np.array(mu_init, dtype=float)
    L = np.eye(3) if L_init is None else np.array(L_init, dtype=float)
    trace, s_mu, s_L = [], None, None
    for k in range(1, n_iter + 1):
        eta = rng.standard_normal((n_draws, 3))
        g_mu, g_L = grad_elbo_full_rank(mu, L, eta, x, y)
        trace.append(elbo_full_rank(mu, L, eta, x, y))
        r_mu, s_mu = step_size(g_mu, s_mu, k, learning_rate)
        r_L, _ = step_size(g_L, s_L, k, learning_rate)
        mu += r_mu * g_mu
        L += r_L * g_L
    return mu, L, np.array(trace)
