# Correct submission (k): the full-rank loop optimises only the six free entries of L, packed with
# np.tril_indices together with mu in one vector, and calls step_size once per iteration on the
# packed gradient (step_size is element-wise, so one running average over the packed vector is the
# same as one per parameter). The mean-field loop packs (mu, omega) the same way. Gradients are
# hand-derived through the reparameterisation; the log joint uses autograd.numpy anyway.
import autograd.numpy as np
from autograd.scipy.special import gammaln

ROWS, COLS = np.tril_indices(3)


def inverse_transform(zeta):
    return np.concatenate([zeta[..., :-1], np.exp(zeta[..., -1:])], axis=-1)


def log_det_jacobian(zeta):
    return zeta[..., -1]


def log_joint(theta, x, y, prior_b_scale=10.0, prior_sigma_shape=2.0, prior_sigma_rate=0.5):
    b0, b1, sigma = theta[..., 0], theta[..., 1], theta[..., 2]
    residual = y - (np.expand_dims(b0, -1) + np.expand_dims(b1, -1) * x)
    n = len(x)
    out = -n * np.log(np.sqrt(2 * np.pi) * sigma) - np.sum(residual**2, axis=-1) / (2 * sigma**2)
    out = out - np.log(2 * np.pi) - 2 * np.log(prior_b_scale) - (b0**2 + b1**2) / (2 * prior_b_scale**2)
    a, r = prior_sigma_shape, prior_sigma_rate
    return out + a * np.log(r) - gammaln(a) + (a - 1) * np.log(sigma) - r * sigma


def log_joint_zeta(zeta, x, y):
    return log_joint(inverse_transform(zeta), x, y) + log_det_jacobian(zeta)


def grad_log_joint_zeta(zeta, x, y):
    b0, b1, u = zeta[:, 0], zeta[:, 1], zeta[:, 2]
    residual = y - b0[:, None] - b1[:, None] * x
    w = np.exp(-2 * u)
    return np.stack([w * np.sum(residual, axis=1) - b0 / 10.0**2,
                     w * np.sum(residual * x, axis=1) - b1 / 10.0**2,
                     w * np.sum(residual**2, axis=1) - len(x) + 1.0 - 0.5 * np.exp(u) + 1.0], axis=1)


def elbo_mean_field(mu, omega, eta, x, y):
    return (np.mean(log_joint_zeta(mu + np.exp(omega) * eta, x, y)) + np.sum(omega)
            + 1.5 * (1.0 + np.log(2.0 * np.pi)))


def grad_elbo_mean_field(mu, omega, eta, x, y):
    g = grad_log_joint_zeta(mu + np.exp(omega) * eta, x, y)
    return np.mean(g, axis=0), np.exp(omega) * np.mean(g * eta, axis=0) + 1.0


def step_size(grad, s_prev, k, learning_rate, alpha=0.1, tau=1.0, eps=1e-16):
    s = grad**2 if k == 1 else alpha * grad**2 + (1.0 - alpha) * s_prev
    return learning_rate * np.power(k, eps - 0.5) / (tau + np.sqrt(s)), s


def advi_mean_field(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, omega_init=None):
    rng = np.random.default_rng(rng)
    packed = np.concatenate([np.zeros(3) if mu_init is None else np.asarray(mu_init, dtype=float),
                             np.zeros(3) if omega_init is None else np.asarray(omega_init, dtype=float)])
    trace, state = np.zeros(n_iter), None
    for k in range(1, n_iter + 1):
        eta = rng.standard_normal((n_draws, 3))
        mu, omega = packed[:3], packed[3:]
        trace[k - 1] = elbo_mean_field(mu, omega, eta, x, y)
        gradient = np.concatenate(grad_elbo_mean_field(mu, omega, eta, x, y))
        rho, state = step_size(gradient, state, k, learning_rate)
        packed = packed + rho * gradient
    return packed[:3], packed[3:], trace


def elbo_full_rank(mu, L, eta, x, y):
    return (np.mean(log_joint_zeta(mu + eta @ L.T, x, y)) + np.sum(np.log(np.abs(np.diag(L))))
            + 1.5 * (1.0 + np.log(2.0 * np.pi)))


def grad_elbo_full_rank(mu, L, eta, x, y):
    g = grad_log_joint_zeta(mu + eta @ L.T, x, y)
    grad_L = np.tril(g.T @ eta) / eta.shape[0] + np.diag(1.0 / np.diag(L))
    return np.mean(g, axis=0), grad_L


def _unpack(packed):
    L = np.zeros((3, 3))
    L[ROWS, COLS] = packed[3:]
    return packed[:3], L


def advi_full_rank(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, L_init=None):
    rng = np.random.default_rng(rng)
    mu0 = np.zeros(3) if mu_init is None else np.asarray(mu_init, dtype=float)
    L0 = np.eye(3) if L_init is None else np.asarray(L_init, dtype=float)
    packed = np.concatenate([mu0, L0[ROWS, COLS]])
    trace, state = np.zeros(n_iter), None
    for k in range(1, n_iter + 1):
        eta = rng.standard_normal((n_draws, 3))
        mu, L = _unpack(packed)
        trace[k - 1] = elbo_full_rank(mu, L, eta, x, y)
        g_mu, g_L = grad_elbo_full_rank(mu, L, eta, x, y)
        gradient = np.concatenate([g_mu, g_L[ROWS, COLS]])
        rho, state = step_size(gradient, state, k, learning_rate)
        packed = packed + rho * gradient
    return _unpack(packed) + (trace,)
