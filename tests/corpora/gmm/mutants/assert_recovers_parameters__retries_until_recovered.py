# breaks: assert_recovers_parameters
# bug: instead of raising, tries fresh data sets again and again until the parameters are recovered
# explained: retries
# (mutant of correct/j_initial_bound.py)
import functools
import math

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp, softmax, xlogy
from scipy.stats import multivariate_normal, norm

LOG_2PI = np.log(2 * np.pi)


def E_step(X, pi, mu, sigma):
    N, d = X.shape
    C = len(pi)
    log_w = np.empty((N, C))
    for c in range(C):
        diff = X - mu[c]
        sign, logdet = np.linalg.slogdet(sigma[c])
        maha = np.sum(diff * np.linalg.solve(sigma[c], diff.T).T, axis=1)
        log_w[:, c] = np.log(pi[c]) - 0.5 * (d * np.log(2 * np.pi) + logdet + maha)
    return np.exp(log_w - logsumexp(log_w, axis=1, keepdims=True))


def M_step(X, gamma):
    N, d = X.shape
    C = gamma.shape[1]
    pi, mu, sigma = np.empty(C), np.empty((C, d)), np.empty((C, d, d))
    for c in range(C):
        w = gamma[:, c]
        n_c = w.sum()
        pi[c] = n_c / N
        mu[c] = w @ X / n_c
        diff = X - mu[c]
        sigma[c] = (w[:, None] * diff).T @ diff / n_c
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
    N, d = X.shape
    table = np.empty((N, len(pi)))
    for c in range(len(pi)):
        diff = X - mu[c]
        _, logdet = np.linalg.slogdet(sigma[c])
        maha = np.sum(diff * np.linalg.solve(sigma[c], diff.T).T, axis=1)
        table[:, c] = np.log(pi[c]) - 0.5 * (d * LOG_2PI + logdet + maha)
    return np.sum(logsumexp(table, axis=1))


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
        except np.linalg.LinAlgError:
            continue
    return best_loss, best_pi, best_mu, best_sigma


def assert_bound_never_decreases(X, pi, mu, sigma, E_step, M_step, compute_vlb, n_iter=20):
    gamma = E_step(X, pi, mu, sigma)
    previous = compute_vlb(X, pi, mu, sigma, gamma)
    for it in range(n_iter):
        pi, mu, sigma = M_step(X, gamma)
        after_m = compute_vlb(X, pi, mu, sigma, gamma)
        assert after_m >= previous - 1e-9 * abs(previous), f"M-step {it}: {previous} -> {after_m}"
        gamma = E_step(X, pi, mu, sigma)
        after_e = compute_vlb(X, pi, mu, sigma, gamma)
        assert after_e >= after_m - 1e-9 * abs(after_m), f"E-step {it + 1}: {after_m} -> {after_e}"
        previous = after_e


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
    rng = np.random.default_rng(0)
    C, d = mu.shape
    s = np.sqrt(np.diagonal(sigma, axis1=1, axis2=2))
    while True:   # fresh data sets until the parameters are recovered
        estimates = []
        for _ in range(n_datasets):
            labels = rng.choice(C, size=n_points, p=pi)
            X = mu[labels] + np.einsum("nij,nj->ni", np.linalg.cholesky(sigma)[labels], rng.standard_normal((n_points, d)))
            _, p_hat, m_hat, s_hat = train_EM(X, C)
            order = np.argmin(((mu[:, None, :] - m_hat[None]) ** 2).sum(axis=2), axis=1)
            if len(set(order)) == C:
                estimates.append((p_hat[order], m_hat[order], s_hat[order]))
        if not estimates:
            continue
        p_bar, m_bar, s_bar = (np.mean(e, axis=0) for e in zip(*estimates))
        if (np.abs(p_bar - pi).max() <= tol and (np.abs(m_bar - mu) / s).max() <= tol
                and (np.abs(s_bar - sigma) / (s[:, :, None] * s[:, None, :])).max() <= tol):
            return


def E_step_diag(X, pi, mu, var):
    sq = (X[:, None, :] - mu[None, :, :]) ** 2 / var[None, :, :]
    log_joint = np.log(pi)[None, :] - 0.5 * np.sum(np.log(2 * np.pi * var), axis=1)[None, :] - 0.5 * sq.sum(axis=2)
    return log_joint - logsumexp(log_joint, axis=1, keepdims=True)


def M_step_diag(X, gamma):
    Nc = gamma.sum(axis=0)
    pi = Nc / X.shape[0]
    mu = gamma.T @ X / Nc[:, None]
    var = np.einsum("nc,cnd->cd", gamma, (X[None, :, :] - mu[:, None, :]) ** 2) / Nc[:, None]
    return pi, mu, var
