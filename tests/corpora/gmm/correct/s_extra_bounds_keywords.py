# Correct submission (s): extra bounds and a final E-step, keyword calls in the assertions, einsum.
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
    return float(logsumexp(log_n, axis=1, b=pi[None, :]).sum())


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
    rng = np.random.default_rng(0)
    C, d = mu.shape
    estimates = []
    for _ in range(n_datasets):
        labels = rng.choice(C, size=n_points, p=pi)
        X = mu[labels] + np.einsum("nij,nj->ni", np.linalg.cholesky(sigma)[labels], rng.standard_normal((n_points, d)))
        _, p_hat, m_hat, s_hat = train_EM(X, C)
        order = np.argmin(((mu[:, None, :] - m_hat[None]) ** 2).sum(axis=2), axis=1)
        assert len(set(order)) == C, "two true components matched the same estimate"
        estimates.append((p_hat[order], m_hat[order], s_hat[order]))
    s = np.sqrt(np.diagonal(sigma, axis1=1, axis2=2))
    p_bar, m_bar, s_bar = (np.mean(e, axis=0) for e in zip(*estimates))
    assert np.abs(p_bar - pi).max() <= tol, "weights"
    assert (np.abs(m_bar - mu) / s).max() <= tol, "means"
    assert (np.abs(s_bar - sigma) / (s[:, :, None] * s[:, None, :])).max() <= tol, "covariances"


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
