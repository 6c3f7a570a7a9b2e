# Correct submission (r): scipy.stats for every density, a generator created once for all restarts.
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
    log_n = np.column_stack([multivariate_normal(mu[c], sigma[c]).logpdf(X) for c in range(len(pi))])
    q_term = np.sum(np.where(gamma > 0, gamma * (np.log(pi)[None, :] + log_n), 0.0))
    return q_term - np.sum(xlogy(gamma, gamma))


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
    rng = np.random.default_rng()          # one generator for all restarts
    N, d = X.shape
    best_loss = None
    best_pi = best_mu = best_sigma = None
    for _ in range(restarts):
        try:
            centres = [X[rng.integers(N)]]
            for _ in range(C - 1):                           # k-means++ seeding
                dist = np.min([((X - c) ** 2).sum(axis=1) for c in centres], axis=0)
                centres.append(X[rng.choice(N, p=dist / dist.sum())])
            pi, mu = np.full(C, 1.0 / C), np.array(centres)
            sigma = np.repeat(np.atleast_2d(np.cov(X, rowvar=False))[None], C, axis=0)
            losses = []
            for _ in range(max_iter):
                gamma = E_step(X, pi, mu, sigma)
                pi, mu, sigma = M_step(X, gamma)
                losses.append(compute_vlb(X, pi, mu, sigma, gamma))
                if len(losses) > 1 and abs((losses[-1] - losses[-2]) / losses[-2]) <= rtol:
                    break
            if best_loss is None or losses[-1] > best_loss:
                best_loss, best_pi, best_mu, best_sigma = losses[-1], pi, mu, sigma
        except np.linalg.LinAlgError:
            pass
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
    params = M_step(X, gamma)
    reference = compute_vlb(X, *params, gamma)
    C, d = params[1].shape
    for trial in range(n_trials):
        pi, mu, sigma = (p.copy() for p in params)
        which = trial % 3
        if which == 0:
            pi = pi * np.exp(scale * rng.standard_normal(C))
            pi = pi / pi.sum()
        elif which == 1:
            mu = mu + scale * rng.standard_normal((C, d)) * np.sqrt(np.trace(sigma, axis1=1, axis2=2) / d)[:, None]
        else:
            for c in range(C):
                A = np.eye(d) + scale * rng.standard_normal((d, d))
                sigma[c] = A @ sigma[c] @ A.T
        value = compute_vlb(X, pi, mu, sigma, gamma)
        if value > reference + 1e-9 * abs(reference):
            raise AssertionError(f"perturbing {'pi mu sigma'.split()[which]} increased the bound")


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
    chol = np.linalg.cholesky(sigma)
    sum_pi, sum_mu, sum_sigma = np.zeros(C), np.zeros((C, d)), np.zeros((C, d, d))
    spreads = []
    for _ in range(n_datasets):
        labels = np.random.choice(C, size=n_points, p=pi)
        X = mu[labels] + np.einsum("nij,nj->ni", chol[labels], np.random.randn(n_points, d))
        spreads.append(X.std(axis=0))
        _, est_pi, est_mu, est_sigma = train_EM(X, C)
        _, match = linear_sum_assignment(np.linalg.norm(mu[:, None, :] - est_mu[None, :, :], axis=2))
        sum_pi += est_pi[match]
        sum_mu += est_mu[match]
        sum_sigma += est_sigma[match]
    spread = np.mean(spreads, axis=0)                              # (d,): the data's spread per dimension
    assert np.abs(sum_pi / n_datasets - pi).max() <= tol
    assert (np.abs(sum_mu / n_datasets - mu) / spread).max() <= tol
    assert (np.abs(sum_sigma / n_datasets - sigma) / np.outer(spread, spread)).max() <= tol


def E_step_diag(X, pi, mu, var):
    log_n = norm.logpdf(X[:, None, :], loc=mu[None, :, :], scale=np.sqrt(var)[None, :, :]).sum(axis=2)
    log_joint = np.log(pi)[None, :] + log_n
    return log_joint - logsumexp(log_joint, axis=1, keepdims=True)


def M_step_diag(X, gamma):
    n_c = gamma.sum(axis=0)
    mu = (gamma.T @ X) / n_c[:, None]
    centred_sq = (X[:, None, :] - mu[None, :, :]) ** 2                 # (N, C, d)
    var = np.swapaxes(centred_sq, 0, 1).transpose(0, 2, 1) @ gamma     # (C, d, C)
    var = np.diagonal(var, axis1=0, axis2=2).T / n_c[:, None]           # (C, d)
    return n_c / X.shape[0], mu, var
