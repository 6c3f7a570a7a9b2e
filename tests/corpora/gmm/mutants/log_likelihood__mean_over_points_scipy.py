# breaks: log_likelihood
# bug: averages over the points instead of summing
# explained: mean
# (mutant of correct/m_bound_before_m_step.py)
import functools
import math

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp, softmax, xlogy
from scipy.stats import multivariate_normal, norm

LOG_2PI = np.log(2 * np.pi)


def E_step(X, pi, mu, sigma):
    columns = [np.log(pi[c]) + multivariate_normal(mu[c], sigma[c]).logpdf(X) for c in range(len(pi))]
    return softmax(np.column_stack(columns), axis=1)


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
    L = np.linalg.cholesky(sigma)
    diff = X[None, :, :] - mu[:, None, :]
    z = np.linalg.solve(L, np.swapaxes(diff, 1, 2))
    log_n = (-0.5 * np.sum(z ** 2, axis=1) - np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)[:, None]
             - 0.5 * X.shape[1] * LOG_2PI).T                                  # (N, C)
    positive = gamma > 0
    expected = np.sum(gamma[positive] * (np.log(np.broadcast_to(pi, gamma.shape)[positive]) + log_n[positive]))
    entropy = -np.sum(gamma[positive] * np.log(gamma[positive]))
    return float(expected + entropy)


def log_likelihood(X, pi, mu, sigma):
    N, d = X.shape
    table = np.empty((N, len(pi)))
    for c in range(len(pi)):
        diff = X - mu[c]
        _, logdet = np.linalg.slogdet(sigma[c])
        maha = np.sum(diff * np.linalg.solve(sigma[c], diff.T).T, axis=1)
        table[:, c] = np.log(pi[c]) - 0.5 * (d * LOG_2PI + logdet + maha)
    return np.mean(logsumexp(table, axis=1))


def train_EM(X, C, rtol=1e-3, max_iter=100, restarts=10):
    N, d = X.shape
    best_loss, best_params = -np.inf, (None, None, None)
    for _ in range(restarts):
        try:
            pi = np.full(C, 1 / C)
            mu = X[np.random.choice(N, C, replace=False)]
            sigma = np.tile(np.cov(X, rowvar=False), (C, 1, 1))
            previous = None
            for it in range(max_iter):
                gamma = E_step(X, pi, mu, sigma)
                loss = compute_vlb(X, pi, mu, sigma, gamma)      # the tight bound at (pi, mu, sigma)
                params = (pi, mu, sigma)
                pi, mu, sigma = M_step(X, gamma)
                if previous is not None and abs((loss - previous) / previous) <= rtol:
                    break
                previous = loss
            if loss > best_loss:
                best_loss, best_params = loss, params
        except np.linalg.LinAlgError:
            pass
    return (best_loss, *best_params)


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
    rng = np.random.default_rng(seed)
    N, C = X.shape[0], pi.shape[0]
    ll = log_likelihood(X, pi, mu, sigma)
    tol = 1e-8 * abs(ll)
    gap = ll - compute_vlb(X, pi, mu, sigma, E_step(X, pi, mu, sigma))
    if abs(gap) > tol:
        raise AssertionError(f"the bound is not tight after the E-step: log p(X) - L = {gap}")
    for trial in range(n_trials):
        q = rng.dirichlet(rng.uniform(0.2, 5.0) * np.ones(C), size=N)
        gap = ll - compute_vlb(X, pi, mu, sigma, q)
        if gap < -tol:
            raise AssertionError(f"trial {trial}: the bound exceeds the log-likelihood by {-gap}")


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
    sq = (X[:, None, :] - mu[None, :, :]) ** 2 / var[None, :, :]
    log_joint = np.log(pi)[None, :] - 0.5 * np.sum(np.log(2 * np.pi * var), axis=1)[None, :] - 0.5 * sq.sum(axis=2)
    return log_joint - logsumexp(log_joint, axis=1, keepdims=True)


def M_step_diag(X, gamma):
    weights = np.sum(gamma, axis=0)
    pi = weights / len(X)
    mu = np.dot(gamma.T, X) / weights[:, None]
    var = np.sum(gamma[:, :, None] * (X[:, None, :] - mu[None, :, :]) ** 2, axis=0) / weights[:, None]
    return pi, mu, var
