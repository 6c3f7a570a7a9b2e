# breaks: E_step
# bug: divides by the column sums (over points) instead of the row sums
# explained: rows vs columns
# (mutant of correct/l_m_first_onehot.py)
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
    gamma /= gamma.sum(axis=0, keepdims=True)
    return gamma


def M_step(X, gamma):
    weights = gamma.sum(axis=0)
    pi = weights / len(X)
    mu = np.stack([np.average(X, axis=0, weights=gamma[:, c]) for c in range(gamma.shape[1])])
    sigma = np.stack([np.atleast_2d(np.cov(X, rowvar=False, aweights=gamma[:, c], bias=True))
                      for c in range(gamma.shape[1])])
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
    log_n = norm.logpdf(X[:, None, :], loc=mu[None, :, :], scale=np.sqrt(var)[None, :, :]).sum(axis=2)
    log_joint = np.log(pi)[None, :] + log_n
    return log_joint - logsumexp(log_joint, axis=1, keepdims=True)


def M_step_diag(X, gamma):
    Nc = gamma.sum(axis=0)
    pi = Nc / X.shape[0]
    mu = gamma.T @ X / Nc[:, None]
    var = np.einsum("nc,cnd->cd", gamma, (X[None, :, :] - mu[:, None, :]) ** 2) / Nc[:, None]
    return pi, mu, var
