# hostile (advi): the gradient functions compute central differences in the open (no autograd anywhere near
# them), so the stand-ins never receive autograd's boxes. "autograd can differentiate it" was probed only where
# the gradient functions differentiated a function with autograd, so inverse_transform's assignment into a copy
# (which autograd cannot differentiate) kept that point (4/4, 69/70). The model's functions are now probed
# whatever the gradients do: inverse_transform 3/4, as the mutant
# tests/corpora/advi/mutants/inverse_transform__assigns_into_a_copy.py (68/70). grad_log_joint_zeta's central
# differences of the whole batch also fail "one gradient per draw" (5/6), as they did before; the other
# numerical gradients are within the gradient checks' tolerance. Not tampering: nothing to detect.
# loses: inverse_transform, grad_log_joint_zeta
def _partial(f, args, kwargs, argnum):
    import numpy
    args = list(args)
    x = numpy.array(args[argnum], dtype=float)
    out = numpy.zeros_like(x)
    for i in numpy.ndindex(x.shape):
        h = 1e-6 * max(1.0, abs(x[i]))
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        args[argnum] = up
        f_up = numpy.sum(f(*args, **kwargs))
        args[argnum] = down
        f_down = numpy.sum(f(*args, **kwargs))
        out[i] = (f_up - f_down) / (2 * h)
    return out


def _numerical_grad(f, argnum=0):
    def gradient(*args, **kwargs):
        if isinstance(argnum, (tuple, list)):
            return tuple(_partial(f, args, kwargs, a) for a in argnum)
        return _partial(f, args, kwargs, argnum)
    return gradient


import autograd.numpy as anp
import numpy as onp
elementwise_grad = grad = _numerical_grad
from autograd.scipy.special import gammaln

HALF_LOG_2PI = 0.5 * onp.log(2 * onp.pi)


def inverse_transform(zeta):
    theta = zeta.copy()
    theta[..., 2] = anp.exp(zeta[..., 2])
    return theta


def log_det_jacobian(zeta):
    return zeta[..., 2] + 0.0


def log_joint(theta, x, y, prior_b_scale=10.0, prior_sigma_shape=2.0, prior_sigma_rate=0.5):
    intercept = anp.expand_dims(theta[..., 0], -1)
    slope = anp.expand_dims(theta[..., 1], -1)
    noise = anp.expand_dims(theta[..., 2], -1)
    residual = y - (intercept + slope * x)
    loglik = anp.sum(-HALF_LOG_2PI - anp.log(noise) - 0.5 * (residual / noise) ** 2, axis=-1)
    coefficients = theta[..., :2]
    logprior_b = anp.sum(-HALF_LOG_2PI - anp.log(prior_b_scale) - 0.5 * (coefficients / prior_b_scale) ** 2,
                         axis=-1)
    sigma = theta[..., 2]
    a, r = prior_sigma_shape, prior_sigma_rate
    logprior_sigma = a * anp.log(r) - gammaln(a) + (a - 1) * anp.log(sigma) - r * sigma
    return loglik + logprior_b + logprior_sigma


def log_joint_zeta(zeta, x, y):
    return log_joint(inverse_transform(zeta), x, y) + log_det_jacobian(zeta)


def grad_log_joint_zeta(zeta, x, y):
    return elementwise_grad(log_joint_zeta)(zeta, x, y)


def elbo_mean_field(mu, omega, eta, x, y):
    samples = mu + anp.exp(omega) * eta
    return anp.mean(log_joint_zeta(samples, x, y)) + anp.sum(omega) + 3 * (0.5 + HALF_LOG_2PI)


def grad_elbo_mean_field(mu, omega, eta, x, y):
    d_mu, d_omega = grad(elbo_mean_field, (0, 1))(mu, omega, eta, x, y)
    return d_mu, d_omega


def step_size(grad, s_prev, k, learning_rate, alpha=0.1, tau=1.0, eps=1e-16):
    squared = onp.square(grad)
    s = squared if k == 1 else alpha * squared + (1 - alpha) * s_prev
    return learning_rate * onp.power(k, -0.5 + eps) / (tau + onp.sqrt(s)), s


def advi_mean_field(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, omega_init=None):
    generator = onp.random.default_rng(rng)
    mu = onp.zeros(3) if mu_init is None else onp.array(mu_init, dtype=float)
    omega = onp.zeros(3) if omega_init is None else onp.array(omega_init, dtype=float)
    trace = onp.empty(n_iter)
    s_mu, s_omega = None, None
    for it in range(n_iter):
        eta = generator.normal(size=(n_draws, 3))
        trace[it] = elbo_mean_field(mu, omega, eta, x, y)
        g_mu, g_omega = grad_elbo_mean_field(mu, omega, eta, x, y)
        step_mu, s_mu = step_size(g_mu, s_mu, it + 1, learning_rate)
        step_omega, s_omega = step_size(g_omega, s_omega, it + 1, learning_rate)
        mu += step_mu * g_mu
        omega += step_omega * g_omega
    return mu, omega, trace


def elbo_full_rank(mu, L, eta, x, y):
    samples = mu + anp.dot(eta, anp.transpose(L))
    log_diagonal = anp.log(anp.abs(anp.diag(L)))
    return anp.mean(log_joint_zeta(samples, x, y)) + anp.sum(log_diagonal) + 3 * (0.5 + HALF_LOG_2PI)


def grad_elbo_full_rank(mu, L, eta, x, y):
    d_mu, d_L = grad(elbo_full_rank, (0, 1))(mu, L, eta, x, y)
    return d_mu, onp.tril(d_L)


def advi_full_rank(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, L_init=None):
    generator = onp.random.default_rng(rng)
    mu = onp.zeros(3) if mu_init is None else onp.array(mu_init, dtype=float)
    L = onp.eye(3) if L_init is None else onp.array(L_init, dtype=float)
    trace = onp.empty(n_iter)
    s_mu, s_L = None, None
    for it in range(n_iter):
        eta = generator.normal(size=(n_draws, 3))
        trace[it] = elbo_full_rank(mu, L, eta, x, y)
        g_mu, g_L = grad_elbo_full_rank(mu, L, eta, x, y)
        step_mu, s_mu = step_size(g_mu, s_mu, it + 1, learning_rate)
        step_L, s_L = step_size(g_L, s_L, it + 1, learning_rate)
        mu += step_mu * g_mu
        L += step_L * g_L
    return mu, L, trace
