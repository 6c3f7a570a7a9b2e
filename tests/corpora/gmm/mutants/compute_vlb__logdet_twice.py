# breaks: compute_vlb
# bug: the whole log-determinant instead of half of it
# explained: logdet half
# (mutant of correct/k_extra_bounds.py)
import functools
import math

import numpy as np
from scipy.linalg import cho_factor, cho_solve, solve_triangular
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp, softmax, xlogy
from scipy.stats import multivariate_normal, norm

LOG_2PI = np.log(2 * np.pi)


def E_step(X, pi, mu, sigma):
    L = np.linalg.cholesky(sigma)                          # (C, d, d)
    diff = X[None, :, :] - mu[:, None, :]                  # (C, N, d)
    z = np.linalg.solve(L, np.swapaxes(diff, 1, 2))        # (C, d, N): whitened points
    maha = np.sum(z ** 2, axis=1).T                        # (N, C)
    logdet = 2 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
    y = np.log(pi) - 0.5 * (X.shape[1] * LOG_2PI + logdet) - 0.5 * maha
    y -= y.max(axis=1, keepdims=True)
    g = np.exp(y)
    return g / g.sum(axis=1, keepdims=True)


def M_step(X, gamma):
    Nc = gamma.sum(axis=0)
    pi = Nc / X.shape[0]
    mu = (gamma.T @ X) / Nc[:, None]
    centred = X[None, :, :] - mu[:, None, :]
    sigma = np.einsum("nc,cni,cnj->cij", gamma, centred, centred) / Nc[:, None, None]
    return pi, mu, sigma


def compute_vlb(X, pi, mu, sigma, gamma):
    L = np.linalg.cholesky(sigma)
    diff = X[None, :, :] - mu[:, None, :]
    z = np.linalg.solve(L, np.swapaxes(diff, 1, 2))
    log_n = (-0.5 * np.sum(z ** 2, axis=1) - 2 * np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)[:, None]
             - 0.5 * X.shape[1] * LOG_2PI).T                                  # (N, C)
    positive = gamma > 0
    expected = np.sum(gamma[positive] * (np.log(np.broadcast_to(pi, gamma.shape)[positive]) + log_n[positive]))
    entropy = -np.sum(gamma[positive] * np.log(gamma[positive]))
    return float(expected + entropy)


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
    best = (None, None, None, None)
    for restart in range(restarts):
        try:
            pi = np.random.dirichlet(5 * np.ones(C))
            mu = X[np.random.permutation(N)[:C]]
            sigma = np.stack([np.diag(X.var(axis=0))] * C)
            history = []
            for it in range(max_iter):
                gamma = E_step(X, pi, mu, sigma)
                after_e = compute_vlb(X, pi, mu, sigma, gamma)      # an extra bound, for the record
                pi, mu, sigma = M_step(X, gamma)
                after_m = compute_vlb(X, pi, mu, sigma, gamma)
                history.append(after_m)
                assert after_m >= after_e - 1e-6 * abs(after_e)
                if len(history) >= 2 and abs(history[-1] - history[-2]) <= rtol * abs(history[-2]):
                    break
            gamma = E_step(X, pi, mu, sigma)                        # a final E-step: the tight bound
            loss = compute_vlb(X, pi, mu, sigma, gamma)
            if best[0] is None or loss > best[0]:
                best = (loss, pi, mu, sigma)
        except np.linalg.LinAlgError:
            pass
    return best


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
