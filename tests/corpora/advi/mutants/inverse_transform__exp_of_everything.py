# breaks: inverse_transform
# bug: exp is applied to b0 and b1 too
# why: inverse_exp_everything
# (mutant of correct/b_hand_derived.py)
import autograd.numpy as anp
import numpy as np
from autograd.scipy import stats


def inverse_transform(zeta):
    theta = anp.exp(zeta)
    return theta


def log_det_jacobian(zeta):
    return zeta[..., 2] + 0.0


def log_joint(theta, x, y, prior_b_scale=10.0, prior_sigma_shape=2.0, prior_sigma_rate=0.5):
    rows = theta.reshape(-1, 3)
    means = rows[:, :1] + rows[:, 1:2] * x[None, :]
    out = stats.norm.logpdf(y[None, :], means, rows[:, 2:3]).sum(axis=1)
    out += stats.norm.logpdf(rows[:, 0], 0.0, prior_b_scale) + stats.norm.logpdf(rows[:, 1], 0.0, prior_b_scale)
    out += stats.gamma.logpdf(prior_sigma_rate * rows[:, 2], prior_sigma_shape) + anp.log(prior_sigma_rate)
    return out.reshape(theta.shape[:-1])


def log_joint_zeta(zeta, x, y):
    return log_joint(inverse_transform(zeta), x, y) + log_det_jacobian(zeta)


def grad_log_joint_zeta(zeta, x, y, prior_b_scale=10.0, prior_sigma_shape=2.0, prior_sigma_rate=0.5):
    # d/db0   = sum(r) / sigma^2 - b0 / s^2
    # d/db1   = sum(r x) / sigma^2 - b1 / s^2
    # d/dzeta2 = sigma * d/dsigma [ -N log sigma - sum r^2 / (2 sigma^2) + (a-1) log sigma - rate sigma ] + 1
    #          = -N + sum r^2 / sigma^2 + (a - 1) - rate sigma + 1
    zeta = np.asarray(zeta, dtype=float)
    b0, b1, log_sigma = zeta[:, 0], zeta[:, 1], zeta[:, 2]
    sigma = np.exp(log_sigma)
    residuals = y[None, :] - b0[:, None] - b1[:, None] * x[None, :]
    precision = np.exp(-2 * log_sigma)
    out = np.empty_like(zeta)
    out[:, 0] = precision * residuals.sum(axis=1) - b0 / prior_b_scale**2
    out[:, 1] = precision * (residuals * x).sum(axis=1) - b1 / prior_b_scale**2
    out[:, 2] = (-len(x) + precision * (residuals**2).sum(axis=1) + (prior_sigma_shape - 1)
                 - prior_sigma_rate * sigma + 1.0)
    return out


ENTROPY_CONSTANT = 1.5 * (1 + np.log(2 * np.pi))


def elbo_mean_field(mu, omega, eta, x, y):
    zeta = mu[None, :] + np.exp(omega)[None, :] * eta
    return float(log_joint_zeta(zeta, x, y).mean() + omega.sum() + ENTROPY_CONSTANT)


def grad_elbo_mean_field(mu, omega, eta, x, y):
    scale = np.exp(omega)
    g = grad_log_joint_zeta(mu + scale * eta, x, y)
    return g.mean(axis=0), (g * eta).mean(axis=0) * scale + 1


def step_size(grad, s_prev, k, learning_rate, alpha=0.1, tau=1.0, eps=1e-16):
    grad = np.asarray(grad, dtype=float)
    if k == 1:
        s = grad * grad
    else:
        s = s_prev + alpha * (grad * grad - s_prev)
    rho = learning_rate / np.sqrt(k) * k**eps / (tau + np.sqrt(s))
    return rho, s


def _advi(elbo, gradient, params, x, y, n_iter, n_draws, learning_rate, rng):
    rng = np.random.default_rng(rng)
    names = list(params)
    averages = dict.fromkeys(names)
    trace = []
    for k in range(1, n_iter + 1):
        eta = rng.standard_normal(size=(n_draws, 3))
        trace.append(elbo(*params.values(), eta, x, y))
        grads = dict(zip(names, gradient(*params.values(), eta, x, y)))
        for name in names:
            rho, averages[name] = step_size(grads[name], averages[name], k, learning_rate)
            params[name] = params[name] + rho * grads[name]
    return (*params.values(), np.array(trace))


def advi_mean_field(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, omega_init=None):
    params = {"mu": np.zeros(3) if mu_init is None else np.asarray(mu_init, dtype=float),
              "omega": np.zeros(3) if omega_init is None else np.asarray(omega_init, dtype=float)}
    return _advi(lambda *a: elbo_mean_field(*a), lambda *a: grad_elbo_mean_field(*a), params, x, y,
                 n_iter, n_draws, learning_rate, rng)


def elbo_full_rank(mu, L, eta, x, y):
    zeta = mu + (L @ eta.T).T
    return float(log_joint_zeta(zeta, x, y).mean() + np.log(np.abs(np.diag(L))).sum() + ENTROPY_CONSTANT)


def grad_elbo_full_rank(mu, L, eta, x, y):
    g = grad_log_joint_zeta(mu + eta @ L.T, x, y)
    outer = np.einsum("si,sj->ij", g, eta) / len(eta)
    entropy = np.linalg.inv(L).T
    return g.mean(axis=0), np.tril(outer + entropy)


def advi_full_rank(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, L_init=None):
    params = {"mu": np.zeros(3) if mu_init is None else np.asarray(mu_init, dtype=float),
              "L": np.eye(3) if L_init is None else np.asarray(L_init, dtype=float)}
    return _advi(lambda *a: elbo_full_rank(*a), lambda *a: grad_elbo_full_rank(*a), params, x, y,
                 n_iter, n_draws, learning_rate, rng)
