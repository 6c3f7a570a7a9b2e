# breaks: train_EM
# bug: catches ZeroDivisionError instead of LinAlgError: a collapsed restart escapes
# explained: escape
# (mutant of correct/q_partial_decorator.py)
import functools
import math

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp, softmax, xlogy
from scipy.stats import multivariate_normal, norm

LOG_2PI = np.log(2 * np.pi)


def E_step(X, pi, mu, sigma):
    N = X.shape[0]
    C = pi.shape[0]
    d = mu.shape[1]
    gamma = np.zeros((N, C))
    for c in range(C):
        factor = cho_factor(sigma[c], lower=True)
        diff = X - mu[c]
        maha = np.einsum("nd,dn->n", diff, cho_solve(factor, diff.T))
        half_logdet = np.sum(np.log(np.diag(factor[0])))
        gamma[:, c] = np.log(pi[c]) - half_logdet - 0.5 * maha - 0.5 * d * LOG_2PI
    gamma = np.exp(gamma - gamma.max(axis=1, keepdims=True))
    gamma /= gamma.sum(axis=1, keepdims=True)
    return gamma


def M_step(X, gamma):
    N, d = X.shape
    C = gamma.shape[1]
    N_k = np.sum(gamma, axis=0)
    pi = N_k / N
    mu = np.dot(gamma.T, X) / N_k.reshape(-1, 1)
    sigma = np.zeros((C, d, d))
    for k in range(C):
        diff = X - mu[k]
        sigma[k] = np.dot(diff.T, gamma[:, k:k + 1] * diff) / N_k[k]
    return pi, mu, sigma


def compute_vlb(X, pi, mu, sigma, gamma):
    N, d = X.shape
    loss = 0.0
    for c in range(gamma.shape[1]):
        diff = X - mu[c]
        _, logdet = np.linalg.slogdet(sigma[c])
        maha = np.sum(diff * np.linalg.solve(sigma[c], diff.T).T, axis=1)
        log_n = -0.5 * (d * LOG_2PI + logdet + maha)
        loss += np.sum(gamma[:, c] * log_n) + np.sum(xlogy(gamma[:, c], pi[c])) - np.sum(xlogy(gamma[:, c], gamma[:, c]))
    return loss


def log_likelihood(X, pi, mu, sigma):
    log_n = np.column_stack([multivariate_normal(mu[c], sigma[c]).logpdf(X) for c in range(len(pi))])
    return float(logsumexp(log_n, axis=1, b=pi[None, :]).sum())


def train_EM(X, C, rtol=1e-3, max_iter=100, restarts=10):
    N, d = X.shape
    best_loss, best_pi, best_mu, best_sigma = None, None, None, None
    for _ in range(restarts):
        try:
            pi = np.full(C, 1.0 / C)
            mu = X[np.random.choice(N, C, replace=False)]
            sigma = np.repeat(np.cov(X.T)[None], C, axis=0).reshape(C, d, d)
            # the bound at the starting point first, then the usual loop
            prev_loss = compute_vlb(X, pi, mu, sigma, E_step(X, pi, mu, sigma))
            loss = prev_loss
            for _ in range(max_iter):
                gamma = E_step(X, pi, mu, sigma)
                pi, mu, sigma = M_step(X, gamma)
                loss = compute_vlb(X, pi, mu, sigma, gamma)
                if abs((loss - prev_loss) / prev_loss) <= rtol:
                    break
                prev_loss = loss
            if best_loss is None or loss > best_loss:
                best_loss, best_pi, best_mu, best_sigma = loss, pi, mu, sigma
        except ZeroDivisionError:
            continue
    return best_loss, best_pi, best_mu, best_sigma


def assert_bound_never_decreases(X, pi, mu, sigma, E_step, M_step, compute_vlb, n_iter=20):
    gamma = E_step(X, pi, mu, sigma)
    old = compute_vlb(X, pi, mu, sigma, gamma)
    for it in range(2 * n_iter):
        if it % 2 == 0:
            pi, mu, sigma = M_step(X, gamma)
        else:
            gamma = E_step(X, pi, mu, sigma)
        new = compute_vlb(X, pi, mu, sigma, gamma)
        if not (new >= old or np.isclose(new, old, rtol=1e-10, atol=0.0)):
            raise AssertionError(f"half-step {it}: the bound went from {old} down to {new}")
        old = new


def assert_m_step_maximises(X, gamma, M_step, compute_vlb, n_trials=20, scale=0.05, seed=0):
    rng = np.random.default_rng(seed)
    pi, mu, sigma = M_step(X, gamma)
    best = compute_vlb(X, pi, mu, sigma, gamma)
    C, d = mu.shape
    std = np.sqrt(np.diagonal(sigma, axis1=1, axis2=2))
    for trial in range(n_trials):
        new_pi = pi * np.exp(scale * rng.standard_normal(C))
        new_pi /= new_pi.sum()
        new_mu = mu + scale * std * rng.standard_normal((C, d))
        A = np.eye(d) + scale * rng.standard_normal((C, d, d))
        new_sigma = A @ sigma @ np.transpose(A, (0, 2, 1))
        value = compute_vlb(X, new_pi, new_mu, new_sigma, gamma)
        assert value <= best + 1e-9 * abs(best), f"trial {trial}: {value} > {best}"


def assert_bound_is_tight(X, pi, mu, sigma, E_step, compute_vlb, log_likelihood, n_trials=10, seed=0):
    rng = np.random.RandomState(seed)
    ll = log_likelihood(X=X, pi=pi, mu=mu, sigma=sigma)
    gamma = E_step(X=X, pi=pi, mu=mu, sigma=sigma)
    bound = compute_vlb(X=X, pi=pi, mu=mu, sigma=sigma, gamma=gamma)
    if not np.isclose(bound, ll, rtol=1e-9, atol=0.0):
        raise AssertionError(f"not tight: {bound} vs {ll}")
    values = []
    for _ in range(n_trials):
        q = rng.rand(X.shape[0], len(pi))
        q /= q.sum(axis=1, keepdims=True)
        values.append(compute_vlb(X=X, pi=pi, mu=mu, sigma=sigma, gamma=q))
    if max(values) > ll + 1e-9 * abs(ll):
        raise AssertionError(f"a bound above the log-likelihood: {max(values)} > {ll}")


def assert_recovers_parameters(train_EM, pi, mu, sigma, n_points=1000, n_datasets=5, tol=0.15):
    C, d = mu.shape
    fits = []
    for _ in range(n_datasets):
        counts = np.random.multinomial(n_points, pi)
        X = np.vstack([np.random.multivariate_normal(mu[c], sigma[c], size=counts[c]) for c in range(C)])
        _, p_hat, m_hat, s_hat = train_EM(X, C)
        cost = np.array([[np.sum((mu[i] - m_hat[j]) ** 2) for j in range(C)] for i in range(C)])
        rows, cols = linear_sum_assignment(cost)
        fits.append((p_hat[cols], m_hat[cols], s_hat[cols]))
    p_bar = np.mean([f[0] for f in fits], axis=0)
    m_bar = np.mean([f[1] for f in fits], axis=0)
    s_bar = np.mean([f[2] for f in fits], axis=0)
    for c in range(C):
        size = np.sqrt(np.trace(sigma[c]) / d)
        assert abs(p_bar[c] - pi[c]) <= tol, f"pi[{c}]"
        assert np.linalg.norm(m_bar[c] - mu[c]) / size <= tol * np.sqrt(d), f"mu[{c}]"
        assert np.linalg.norm(s_bar[c] - sigma[c]) / np.linalg.norm(sigma[c]) <= tol, f"sigma[{c}]"


def _normalised_in_logs(func):
    """Decorator: turn a function returning log joint probabilities into log responsibilities."""
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        log_joint = func(*args, **kwargs)
        return log_joint - logsumexp(log_joint, axis=1, keepdims=True)
    return wrapper


@functools.lru_cache(maxsize=None)
def _log_norm_constant(d):
    return 0.5 * d * np.log(2 * np.pi)


@_normalised_in_logs
def _diag_log_resp(X, pi, mu, var, floor=0.0):
    var = var + floor
    diff = X[:, None, :] - mu[None, :, :]
    quad = np.sum(diff ** 2 / var[None], axis=2)
    return np.log(pi) - _log_norm_constant(X.shape[1]) - 0.5 * np.log(var).sum(axis=1) - 0.5 * quad


E_step_diag = functools.partial(_diag_log_resp, floor=0.0)


def M_step_diag(X, gamma):
    def weighted_mean(values):                     # a closure over gamma, vectorised
        return gamma.T @ values / gamma.sum(axis=0)[:, None]
    mu = weighted_mean(X)
    centred = X[:, None, :] - mu[None, :, :]
    var = np.einsum("nc,ncd->cd", gamma, centred ** 2) / gamma.sum(axis=0)[:, None]
    return gamma.mean(axis=0), mu, var


def plot_variances(var):
    """For the notebook's pictures only: np.vectorize here is fine, no graded function reaches it."""
    pretty = np.vectorize(lambda v: f"{v:.2f}")
    return pretty(var)
