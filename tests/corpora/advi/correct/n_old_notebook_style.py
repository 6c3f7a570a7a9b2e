# Correct submission (n): the notebook's reference as first released, whose log joint broadcasts with
# b0[..., None] (indexing with None). autograd differentiates it on batches, which is all this
# submission does (elementwise_grad of the whole batch), so it is correct and must keep every point.
import autograd.numpy as np
from autograd import elementwise_grad
from autograd.scipy.special import gammaln

def inverse_transform(zeta):
    theta = np.concatenate([zeta[..., :2], np.exp(zeta[..., 2:])], axis=-1)
    return theta

def log_det_jacobian(zeta):
    log_det = zeta[..., 2]
    return log_det

def log_joint(theta, x, y, prior_b_scale=10.0, prior_sigma_shape=2.0, prior_sigma_rate=0.5):
    b0, b1, sigma = (theta[..., 0], theta[..., 1], theta[..., 2])
    n = x.shape[0]
    z = (y - b0[..., None] - b1[..., None] * x) / sigma[..., None]
    log_likelihood = -0.5 * n * np.log(2 * np.pi) - n * np.log(sigma) - 0.5 * np.sum(z ** 2, axis=-1)
    log_prior_b = -np.log(2 * np.pi * prior_b_scale ** 2) - 0.5 * (b0 ** 2 + b1 ** 2) / prior_b_scale ** 2
    log_prior_sigma = prior_sigma_shape * np.log(prior_sigma_rate) - gammaln(prior_sigma_shape) + (prior_sigma_shape - 1.0) * np.log(sigma) - prior_sigma_rate * sigma
    log_p = log_likelihood + log_prior_b + log_prior_sigma
    return log_p

def log_joint_zeta(zeta, x, y):
    log_p = log_joint(inverse_transform(zeta), x, y) + log_det_jacobian(zeta)
    return log_p

def grad_log_joint_zeta(zeta, x, y):
    theta = inverse_transform(zeta)
    grad_theta = elementwise_grad(log_joint)(theta, x, y)
    grad_inverse = elementwise_grad(inverse_transform)(zeta)
    grad = grad_theta * grad_inverse + elementwise_grad(log_det_jacobian)(zeta)
    return grad

def elbo_mean_field(mu, omega, eta, x, y):
    d = mu.shape[0]
    zeta = mu + np.exp(omega) * eta
    entropy = np.sum(omega) + 0.5 * d * (1.0 + np.log(2 * np.pi))
    elbo = np.mean(log_joint_zeta(zeta, x, y)) + entropy
    return elbo

def grad_elbo_mean_field(mu, omega, eta, x, y):
    sd = np.exp(omega)
    g = grad_log_joint_zeta(mu + sd * eta, x, y)
    grad_mu = np.mean(g, axis=0)
    grad_omega = np.mean(g * eta, axis=0) * sd + 1.0
    return (grad_mu, grad_omega)

def step_size(grad, s_prev, k, learning_rate, alpha=0.1, tau=1.0, eps=1e-16):
    if k == 1:
        s = grad ** 2
    else:
        s = alpha * grad ** 2 + (1.0 - alpha) * s_prev
    rho = learning_rate * k ** (-0.5 + eps) / (tau + np.sqrt(s))
    return (rho, s)

def advi_mean_field(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, omega_init=None):
    rng = np.random.default_rng(rng)
    mu = np.zeros(3) if mu_init is None else np.array(mu_init, dtype=float)
    omega = np.zeros(3) if omega_init is None else np.array(omega_init, dtype=float)
    elbo_trace = np.zeros(n_iter)
    s_mu = s_omega = None
    for k in range(1, n_iter + 1):
        eta = rng.standard_normal((n_draws, 3))
        elbo_trace[k - 1] = elbo_mean_field(mu, omega, eta, x, y)
        grad_mu, grad_omega = grad_elbo_mean_field(mu, omega, eta, x, y)
        rho_mu, s_mu = step_size(grad_mu, s_mu, k, learning_rate)
        rho_omega, s_omega = step_size(grad_omega, s_omega, k, learning_rate)
        mu = mu + rho_mu * grad_mu
        omega = omega + rho_omega * grad_omega
    return (mu, omega, elbo_trace)

def elbo_full_rank(mu, L, eta, x, y):
    d = mu.shape[0]
    zeta = mu + eta @ L.T
    entropy = np.sum(np.log(np.abs(np.diag(L)))) + 0.5 * d * (1.0 + np.log(2 * np.pi))
    elbo = np.mean(log_joint_zeta(zeta, x, y)) + entropy
    return elbo

def grad_elbo_full_rank(mu, L, eta, x, y):
    g = grad_log_joint_zeta(mu + eta @ L.T, x, y)
    grad_mu = np.mean(g, axis=0)
    grad_L = np.tril(g.T @ eta / eta.shape[0]) + np.diag(1.0 / np.diag(L))
    return (grad_mu, grad_L)

def advi_full_rank(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, L_init=None):
    rng = np.random.default_rng(rng)
    mu = np.zeros(3) if mu_init is None else np.array(mu_init, dtype=float)
    L = np.eye(3) if L_init is None else np.array(L_init, dtype=float)
    elbo_trace = np.zeros(n_iter)
    s_mu = s_L = None
    for k in range(1, n_iter + 1):
        eta = rng.standard_normal((n_draws, 3))
        elbo_trace[k - 1] = elbo_full_rank(mu, L, eta, x, y)
        grad_mu, grad_L = grad_elbo_full_rank(mu, L, eta, x, y)
        rho_mu, s_mu = step_size(grad_mu, s_mu, k, learning_rate)
        rho_L, s_L = step_size(grad_L, s_L, k, learning_rate)
        mu = mu + rho_mu * grad_mu
        L = L + rho_L * grad_L
    return (mu, L, elbo_trace)
