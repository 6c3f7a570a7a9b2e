# breaks: advi_mean_field
# bug: draws one batch of noise and reuses it every iteration
# why: loop_same_draws
# (mutant of correct/c_vectorised.py)
import autograd.numpy as np
from autograd import elementwise_grad
from autograd.scipy.special import gammaln


def inverse_transform(zeta):
    positive = np.exp(zeta[..., -1:])
    return np.concatenate((zeta[..., :-1], positive), axis=-1)


def log_det_jacobian(zeta):
    return np.sum(zeta[..., 2:], axis=-1)


def log_joint(theta, x, y, prior_b_scale=10.0, prior_sigma_shape=2.0, prior_sigma_rate=0.5):
    design = np.stack([np.ones_like(x), x], axis=1)                  # (N, 2)
    b = theta[..., :2]
    sigma = theta[..., 2]
    fitted = np.einsum("...j,nj->...n", b, design)                 # (..., N)
    squares = np.sum((y - fitted) ** 2, axis=-1)
    n = len(y)
    log_lik = -n / 2 * np.log(2 * np.pi) - n * np.log(sigma) - squares / (2 * sigma**2)
    log_prior = (-np.log(2 * np.pi) - 2 * np.log(prior_b_scale) - np.sum(b**2, axis=-1) / (2 * prior_b_scale**2)
                 + prior_sigma_shape * np.log(prior_sigma_rate) - gammaln(prior_sigma_shape)
                 + (prior_sigma_shape - 1) * np.log(sigma) - prior_sigma_rate * sigma)
    return log_lik + log_prior


def log_joint_zeta(zeta, x, y):
    return log_joint(inverse_transform(zeta), x, y) + log_det_jacobian(zeta)


def grad_log_joint_zeta(zeta, x, y):
    theta = inverse_transform(zeta)
    d_theta = elementwise_grad(log_joint)(theta, x, y)
    # T^{-1}' = (1, 1, exp(zeta2)) and d log|det J| / d zeta = (0, 0, 1).
    scale = np.concatenate([np.ones_like(zeta[:, :2]), theta[:, 2:]], axis=1)
    return d_theta * scale + np.array([0.0, 0.0, 1.0])


def elbo_mean_field(mu, omega, eta, x, y):
    samples = mu + eta * np.exp(omega)
    return np.mean(log_joint_zeta(samples, x, y)) + np.sum(omega) + 1.5 * np.log(2 * np.pi * np.e)


def grad_elbo_mean_field(mu, omega, eta, x, y):
    spread = np.exp(omega)
    per_draw = grad_log_joint_zeta(mu + eta * spread, x, y)
    return np.mean(per_draw, axis=0), np.einsum("si,si->i", per_draw, eta) / len(eta) * spread + 1.0


def step_size(grad, s_prev, k, learning_rate, alpha=0.1, tau=1.0, eps=1e-16):
    s = grad**2 if k == 1 else (1 - alpha) * s_prev + alpha * grad**2
    return learning_rate * k ** (eps - 0.5) / (tau + s**0.5), s


def advi_mean_field(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, omega_init=None):
    noise = np.random.default_rng(rng).standard_normal((1, n_draws, 3)).repeat(n_iter, axis=0)
    params = np.concatenate([np.zeros(3) if mu_init is None else np.asarray(mu_init, dtype=float),
                             np.zeros(3) if omega_init is None else np.asarray(omega_init, dtype=float)])
    state, trace = None, np.zeros(n_iter)
    for k in range(1, n_iter + 1):
        trace[k - 1] = elbo_mean_field(params[:3], params[3:], noise[k - 1], x, y)
        gradient = np.concatenate(grad_elbo_mean_field(params[:3], params[3:], noise[k - 1], x, y))
        rho, state = step_size(gradient, state, k, learning_rate)
        params = params + rho * gradient
    return params[:3], params[3:], trace


def elbo_full_rank(mu, L, eta, x, y):
    samples = mu + np.einsum("ij,sj->si", L, eta)
    return (np.mean(log_joint_zeta(samples, x, y)) + np.sum(np.log(np.abs(np.diag(L))))
            + 1.5 * np.log(2 * np.pi * np.e))


def grad_elbo_full_rank(mu, L, eta, x, y):
    per_draw = grad_log_joint_zeta(mu + np.einsum("ij,sj->si", L, eta), x, y)
    outer = np.einsum("si,sj->ij", per_draw, eta) / len(eta)
    return np.mean(per_draw, axis=0), np.tril(outer) + np.diag(1.0 / np.diag(L))


def advi_full_rank(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, L_init=None):
    noise = np.random.default_rng(rng).standard_normal((n_iter, n_draws, 3))
    mu = np.zeros(3) if mu_init is None else np.asarray(mu_init, dtype=float)
    L = np.eye(3) if L_init is None else np.asarray(L_init, dtype=float)
    params = np.concatenate([mu, L.ravel()])
    state, trace = None, np.zeros(n_iter)
    for k in range(1, n_iter + 1):
        mu, L = params[:3], params[3:].reshape(3, 3)
        trace[k - 1] = elbo_full_rank(mu, L, noise[k - 1], x, y)
        g_mu, g_L = grad_elbo_full_rank(mu, L, noise[k - 1], x, y)
        gradient = np.concatenate([g_mu, np.ravel(g_L)])
        rho, state = step_size(gradient, state, k, learning_rate)
        params = params + rho * gradient
    return params[:3], params[3:].reshape(3, 3), trace
