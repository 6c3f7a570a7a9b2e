# Correct submission (t): M-step first, inverse-based E-step, np.cov M-step.
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
    weights = gamma.sum(axis=0)
    pi = weights / len(X)
    mu = np.stack([np.average(X, axis=0, weights=gamma[:, c]) for c in range(gamma.shape[1])])
    sigma = np.stack([np.atleast_2d(np.cov(X, rowvar=False, aweights=gamma[:, c], bias=True))
                      for c in range(gamma.shape[1])])
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
    return np.sum(logsumexp(table, axis=1))


def train_EM(X, C, rtol=1e-3, max_iter=100, restarts=10):
    N = X.shape[0]
    results = []
    r = 0
    while r < restarts:
        r += 1
        try:
            gamma = np.eye(C)[np.random.randint(C, size=N)] * 0.9 + 0.1 / C
            old = None
            it = 0
            while it < max_iter:
                pi, mu, sigma = M_step(X, gamma)
                it += 1
                new = compute_vlb(X, pi, mu, sigma, gamma)
                if old is not None and abs(new - old) <= rtol * abs(old):
                    break
                old = new
                gamma = E_step(X, pi, mu, sigma)
            results.append((new, pi, mu, sigma))
        except np.linalg.LinAlgError:
            pass
    if not results:
        return None, None, None, None
    return max(results, key=lambda result: result[0])


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
    prec = 1.0 / var
    quad = (X ** 2) @ prec.T - 2.0 * X @ (mu * prec).T + np.sum(mu ** 2 * prec, axis=1)
    log_joint = np.log(pi) - 0.5 * np.sum(np.log(2 * np.pi * var), axis=1) - 0.5 * quad
    return log_joint - logsumexp(log_joint, axis=1)[:, None]


def M_step_diag(X, gamma):
    n_c = gamma.sum(axis=0)
    mu = (gamma.T @ X) / n_c[:, None]
    centred_sq = (X[:, None, :] - mu[None, :, :]) ** 2                 # (N, C, d)
    var = np.swapaxes(centred_sq, 0, 1).transpose(0, 2, 1) @ gamma     # (C, d, C)
    var = np.diagonal(var, axis1=0, axis2=2).T / n_c[:, None]           # (C, d)
    return n_c / X.shape[0], mu, var
