# breaks: step_size
# bug: multiplies by k^(1/2 + eps): the steps grow
# why: step_growing
# (mutant of correct/l_other_layouts.py)
import autograd.numpy as anp
import numpy as np
from autograd import elementwise_grad, grad
from autograd.scipy.special import gammaln

LOWER = np.tril(np.ones((3, 3), dtype=bool))


def inverse_transform(zeta):
    return anp.concatenate([zeta[..., :2], anp.exp(zeta[..., 2:])], axis=-1)


def log_det_jacobian(zeta):
    return anp.sum(zeta * anp.array([0.0, 0.0, 1.0]), axis=-1)


def log_joint(theta, x, y, prior_b_scale=10.0, prior_sigma_shape=2.0, prior_sigma_rate=0.5):
    b = theta[..., :2]
    sigma = theta[..., 2:]                                            # (..., 1)
    mean = b[..., :1] + b[..., 1:] * x                                # (..., N)
    log_lik = anp.sum(-0.5 * anp.log(2 * anp.pi * sigma**2) - (y - mean) ** 2 / (2 * sigma**2), axis=-1)
    log_prior_b = anp.sum(-0.5 * anp.log(2 * anp.pi * prior_b_scale**2) - b**2 / (2 * prior_b_scale**2), axis=-1)
    a, r = prior_sigma_shape, prior_sigma_rate
    log_prior_sigma = a * anp.log(r) - gammaln(a) + (a - 1) * anp.log(sigma[..., 0]) - r * sigma[..., 0]
    return log_lik + log_prior_b + log_prior_sigma


def log_joint_zeta(zeta, x, y):
    return log_joint(inverse_transform(zeta), x, y) + log_det_jacobian(zeta)


def grad_log_joint_zeta(zeta, x, y):
    return elementwise_grad(log_joint_zeta, 0)(zeta, x, y)


def elbo_mean_field(mu, omega, eta, x, y):
    return anp.mean(log_joint_zeta(mu + anp.exp(omega) * eta, x, y)) + anp.sum(omega) + 1.5 * anp.log(2 * anp.pi * anp.e)


def grad_elbo_mean_field(mu, omega, eta, x, y):
    return grad(elbo_mean_field, argnum=(0, 1))(mu, omega, eta, x, y)


def step_size(grad, s_prev, k, learning_rate, alpha=0.1, tau=1.0, eps=1e-16):
    if k > 1:
        s = alpha * grad**2 + (1 - alpha) * s_prev
    else:
        s = grad**2
    return learning_rate * k ** (0.5 + eps) / (tau + np.sqrt(s)), s


def advi_mean_field(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, omega_init=None):
    gen = np.random.default_rng(rng)
    mu = np.zeros(3) if mu_init is None else np.array(mu_init, dtype=float)
    omega = np.zeros(3) if omega_init is None else np.array(omega_init, dtype=float)
    trace = np.zeros(n_iter)
    averages = [None, None]
    for k, _ in enumerate(range(n_iter), start=1):
        eta = gen.normal(size=(3, n_draws)).T
        trace[k - 1] = elbo_mean_field(mu, omega, eta, x, y)
        grads = grad_elbo_mean_field(mu, omega, eta, x, y)
        for i, (param, g) in enumerate(zip((mu, omega), grads)):
            rho, averages[i] = step_size(g, averages[i], k, learning_rate)
            param += rho * g
    return mu, omega, trace


def elbo_full_rank(mu, L, eta, x, y):
    zeta = mu + anp.einsum("ij,sj->si", L, eta)
    return anp.mean(log_joint_zeta(zeta, x, y)) + anp.sum(anp.log(anp.abs(anp.diag(L)))) + 1.5 * anp.log(2 * anp.pi * anp.e)


def grad_elbo_full_rank(mu, L, eta, x, y):
    g_mu, g_L = grad(elbo_full_rank, argnum=(0, 1))(mu, L, eta, x, y)
    return g_mu, g_L * LOWER


def advi_full_rank(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, L_init=None):
    gen = np.random.default_rng(rng)
    mu = np.zeros(3) if mu_init is None else np.array(mu_init, dtype=float)
    L = np.eye(3) if L_init is None else np.array(L_init, dtype=float)
    trace = np.zeros(n_iter)
    s_mu = s_L = None
    for k, _ in enumerate(range(n_iter), start=1):
        eta = gen.normal(size=(3, n_draws)).T
        trace[k - 1] = elbo_full_rank(mu, L, eta, x, y)
        g_mu, g_L = grad_elbo_full_rank(mu, L, eta, x, y)
        r_mu, s_mu = step_size(g_mu, s_mu, k, learning_rate)
        r_L, s_L = step_size(g_L, s_L, k, learning_rate)
        mu += r_mu * g_mu
        L[LOWER] += (r_L * g_L)[LOWER]
    return mu, L, trace
