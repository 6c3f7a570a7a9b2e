# breaks: log_likelihood
# bug: forgets the weights (logsumexp without b=pi)
# explained: weights missing
# (mutant of correct/i_keyword_calls.py)
import functools
import math

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp, softmax, xlogy
from scipy.stats import multivariate_normal, norm

LOG_2PI = np.log(2 * np.pi)


def E_step(X, pi, mu, sigma):
    prec = np.linalg.inv(sigma)
    diff = X[:, None, :] - mu[None, :, :]                  # (N, C, d)
    maha = np.einsum("ncd,cde,nce->nc", diff, prec, diff)
    _, logdet = np.linalg.slogdet(sigma)
    log_w = np.log(pi)[None, :] - 0.5 * logdet[None, :] - 0.5 * maha - 0.5 * X.shape[1] * np.log(2 * np.pi)
    log_w = log_w - log_w.max(axis=1)[:, None]
    w = np.exp(log_w)
    return w / w.sum(axis=1)[:, None]


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
    log_n = np.column_stack([multivariate_normal(mu[c], sigma[c]).logpdf(X) for c in range(len(pi))])
    q_term = np.sum(np.where(gamma > 0, gamma * (np.log(pi)[None, :] + log_n), 0.0))
    return q_term - np.sum(xlogy(gamma, gamma))


def log_likelihood(X, pi, mu, sigma):
    log_n = np.column_stack([multivariate_normal(mu[c], sigma[c]).logpdf(X) for c in range(len(pi))])
    return float(logsumexp(log_n, axis=1).sum())


def train_EM(X, C, rtol=1e-3, max_iter=100, restarts=10):
    N, d = X.shape
    best_loss = -np.inf
    best_pi = best_mu = best_sigma = None
    for _ in range(restarts):
        try:
            pi = np.ones(C) / C
            mu = X[np.random.choice(N, size=C, replace=False), :]
            sigma = np.array([np.cov(X, rowvar=False)] * C)
            prev_loss = 0.0
            for _ in range(max_iter):
                gamma = E_step(X=X, pi=pi, mu=mu, sigma=sigma)
                labels = E_step(X=X, pi=pi, mu=mu, sigma=sigma).argmax(axis=1)   # the same E-step again
                pi, mu, sigma = M_step(gamma=gamma, X=X)
                loss = compute_vlb(X=X, pi=pi, mu=mu, sigma=sigma, gamma=gamma)
                if abs((loss - prev_loss) / prev_loss) <= rtol:
                    break
                prev_loss = loss
            if loss > best_loss:
                best_loss, best_pi, best_mu, best_sigma = loss, pi, mu, sigma
        except np.linalg.LinAlgError:
            pass
    return best_loss, best_pi, best_mu, best_sigma


def assert_bound_never_decreases(X, pi, mu, sigma, E_step, M_step, compute_vlb, n_iter=20):
    values = []
    for _ in range(n_iter):
        gamma = E_step(X=X, pi=pi, mu=mu, sigma=sigma)
        values.append(compute_vlb(X=X, pi=pi, mu=mu, sigma=sigma, gamma=gamma))
        pi, mu, sigma = M_step(X=X, gamma=gamma)
        values.append(compute_vlb(X=X, pi=pi, mu=mu, sigma=sigma, gamma=gamma))
    values = np.array(values)
    drops = values[:-1] - values[1:]
    worst = int(np.argmax(drops))
    assert drops[worst] <= 1e-10 * np.abs(values).max(), f"the bound dropped at half-step {worst}: {drops[worst]}"


def assert_m_step_maximises(X, gamma, M_step, compute_vlb, n_trials=20, scale=0.05, seed=0):
    rng = np.random.RandomState(seed)
    pi, mu, sigma = M_step(X=X, gamma=gamma)
    optimum = compute_vlb(X=X, pi=pi, mu=mu, sigma=sigma, gamma=gamma)
    L = np.linalg.cholesky(sigma)
    C, d = mu.shape
    for trial in range(n_trials):
        p = softmax(np.log(pi) + scale * rng.randn(C))
        m = mu + scale * rng.randn(C, d) @ np.diag(np.sqrt(np.diag(sigma[0])))
        L_new = L @ (np.eye(d) + scale * np.tril(rng.randn(C, d, d)))
        s = L_new @ np.swapaxes(L_new, 1, 2)
        value = compute_vlb(X=X, pi=p, mu=m, sigma=s, gamma=gamma)
        if value - optimum > 1e-9 * abs(optimum):
            raise AssertionError(f"perturbation {trial} beats the M-step by {value - optimum}")


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


def E_step_diag(X, pi, mu, var):
    diff = X[:, None, :] - mu[None, :, :]
    maha = np.einsum("ncd,ncd,cd->nc", diff, diff, 1.0 / var)
    log_joint = np.log(pi) - 0.5 * (X.shape[1] * LOG_2PI + np.log(var).sum(axis=1)) - 0.5 * maha
    return log_joint - logsumexp(log_joint, axis=1, keepdims=True)


def M_step_diag(X, gamma):
    weights = np.sum(gamma, axis=0)
    pi = weights / len(X)
    mu = np.dot(gamma.T, X) / weights[:, None]
    var = np.sum(gamma[:, :, None] * (X[:, None, :] - mu[None, :, :]) ** 2, axis=0) / weights[:, None]
    return pi, mu, var
