# Correct submission (u): bound before the M-step with Cholesky factors; relative Frobenius recovery test.
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
    Nc = gamma.sum(axis=0)
    pi = Nc / X.shape[0]
    mu = (gamma.T @ X) / Nc[:, None]
    centred = X[None, :, :] - mu[:, None, :]
    sigma = np.einsum("nc,cni,cnj->cij", gamma, centred, centred) / Nc[:, None, None]
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
    L = np.linalg.cholesky(sigma)
    diff = X[None, :, :] - mu[:, None, :]
    z = np.linalg.solve(L, np.swapaxes(diff, 1, 2))
    y = (np.log(pi)[:, None] - 0.5 * np.sum(z ** 2, axis=1)
         - np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)[:, None] - 0.5 * X.shape[1] * LOG_2PI)  # (C, N)
    top = y.max(axis=0)
    return np.sum(top + np.log(np.sum(np.exp(y - top), axis=0)))


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
    rng = np.random.default_rng(seed)
    ll = log_likelihood(X, pi, mu, sigma)
    tight = compute_vlb(X, pi, mu, sigma, E_step(X, pi, mu, sigma))
    assert abs(tight - ll) <= 1e-8 * abs(ll), f"after the E-step the bound is {tight}, the log-likelihood {ll}"
    N, C = X.shape[0], len(pi)
    for _ in range(n_trials):
        q = rng.dirichlet(np.ones(C), size=N)
        assert compute_vlb(X, pi, mu, sigma, q) <= ll + 1e-8 * abs(ll)


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
