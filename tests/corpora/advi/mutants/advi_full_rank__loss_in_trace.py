# breaks: advi_full_rank
# bug: records minus the ELBO (a loss) in the trace
# why: loop_trace
# (mutant of correct/e_keyword_calls.py)
import autograd.numpy as np
from autograd import elementwise_grad
from autograd.scipy.special import gammaln


def inverse_transform(zeta):
    return np.concatenate([zeta[..., :2], np.exp(zeta[..., 2:])], axis=-1)


def log_det_jacobian(zeta):
    return zeta[..., 2]


def log_joint(theta, x, y, prior_b_scale=10.0, prior_sigma_shape=2.0, prior_sigma_rate=0.5):
    b0, b1, sigma = theta[..., 0], theta[..., 1], theta[..., 2]
    n = x.shape[0]
    z = (y - np.expand_dims(b0, -1) - np.expand_dims(b1, -1) * x) / np.expand_dims(sigma, -1)
    log_likelihood = -0.5 * n * np.log(2 * np.pi) - n * np.log(sigma) - 0.5 * np.sum(z**2, axis=-1)
    log_prior_b = -np.log(2 * np.pi * prior_b_scale**2) - 0.5 * (b0**2 + b1**2) / prior_b_scale**2
    log_prior_sigma = (prior_sigma_shape * np.log(prior_sigma_rate) - gammaln(prior_sigma_shape)
                       + (prior_sigma_shape - 1.0) * np.log(sigma) - prior_sigma_rate * sigma)
    return log_likelihood + log_prior_b + log_prior_sigma


def log_joint_zeta(zeta, x, y):
    return log_joint(x=x, y=y, theta=inverse_transform(zeta=zeta)) + log_det_jacobian(zeta=zeta)


def grad_log_joint_zeta(zeta, x, y):
    return elementwise_grad(log_joint_zeta)(zeta, y=y, x=x)


def elbo_mean_field(mu, omega, eta, x, y):
    zeta = mu + np.exp(omega) * eta
    return np.mean(log_joint_zeta(zeta, y=y, x=x)) + np.sum(omega) + 1.5 * (1.0 + np.log(2 * np.pi))


def grad_elbo_mean_field(mu, omega, eta, x, y):
    sd = np.exp(omega)
    g = grad_log_joint_zeta(zeta=mu + sd * eta, x=x, y=y)
    return np.mean(g, axis=0), np.mean(g * eta, axis=0) * sd + 1.0


def step_size(grad, s_prev, k, learning_rate, alpha=0.1, tau=1.0, eps=1e-16):
    s = grad**2 if k == 1 else alpha * grad**2 + (1.0 - alpha) * s_prev
    return learning_rate * k ** (-0.5 + eps) / (tau + np.sqrt(s)), s


def advi_mean_field(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, omega_init=None):
    rng = np.random.default_rng(rng)
    mu = np.zeros(3) if mu_init is None else np.array(mu_init, dtype=float)
    omega = np.zeros(3) if omega_init is None else np.array(omega_init, dtype=float)
    elbo_trace = np.zeros(n_iter)
    s_mu = s_omega = None
    for k in range(1, n_iter + 1):
        eta = rng.standard_normal((n_draws, 3))
        elbo_trace[k - 1] = elbo_mean_field(eta=eta, omega=omega, mu=mu, y=y, x=x)
        grad_mu, grad_omega = grad_elbo_mean_field(mu, omega=omega, eta=eta, x=x, y=y)
        rho_mu, s_mu = step_size(grad=grad_mu, s_prev=s_mu, k=k, learning_rate=learning_rate)
        rho_omega, s_omega = step_size(grad_omega, k=k, learning_rate=learning_rate, s_prev=s_omega)
        mu = mu + rho_mu * grad_mu
        omega = omega + rho_omega * grad_omega
    return mu, omega, elbo_trace


def elbo_full_rank(mu, L, eta, x, y):
    zeta = mu + eta @ L.T
    entropy = np.sum(np.log(np.abs(np.diag(L)))) + 1.5 * (1.0 + np.log(2 * np.pi))
    return np.mean(log_joint_zeta(x=x, y=y, zeta=zeta)) + entropy


def grad_elbo_full_rank(mu, L, eta, x, y):
    g = grad_log_joint_zeta(mu + eta @ L.T, y=y, x=x)
    return np.mean(g, axis=0), np.tril(g.T @ eta / eta.shape[0]) + np.diag(1.0 / np.diag(L))


def advi_full_rank(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, L_init=None):
    rng = np.random.default_rng(rng)
    mu = np.zeros(3) if mu_init is None else np.array(mu_init, dtype=float)
    L = np.eye(3) if L_init is None else np.array(L_init, dtype=float)
    elbo_trace = np.zeros(n_iter)
    s_mu = s_L = None
    for k in range(1, n_iter + 1):
        eta = rng.standard_normal((n_draws, 3))
        elbo_trace[k - 1] = -elbo_full_rank(mu=mu, L=L, eta=eta, x=x, y=y)
        grad_mu, grad_L = grad_elbo_full_rank(mu, L=L, y=y, x=x, eta=eta)
        rho_mu, s_mu = step_size(grad_mu, s_mu, k=k, learning_rate=learning_rate)
        rho_L, s_L = step_size(learning_rate=learning_rate, k=k, s_prev=s_L, grad=grad_L)
        mu = mu + rho_mu * grad_mu
        L = L + rho_L * grad_L
    return mu, L, elbo_trace
