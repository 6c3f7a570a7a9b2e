# breaks: compute_vlb
# bug: entropy as gamma * log(gamma): 0 log 0 = NaN
# explained: 0log0
# (mutant of correct/p_class_helpers.py)
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
    weights = gamma.sum(axis=0)
    pi = weights / len(X)
    mu = np.stack([np.average(X, axis=0, weights=gamma[:, c]) for c in range(gamma.shape[1])])
    sigma = np.stack([np.atleast_2d(np.cov(X, rowvar=False, aweights=gamma[:, c], bias=True))
                      for c in range(gamma.shape[1])])
    return pi, mu, sigma


def compute_vlb(X, pi, mu, sigma, gamma):
    log_n = np.column_stack([multivariate_normal(mu[c], sigma[c]).logpdf(X) for c in range(len(pi))])
    q_term = np.sum(np.where(gamma > 0, gamma * (np.log(pi)[None, :] + log_n), 0.0))
    return q_term - np.sum(gamma * np.log(gamma))


def log_likelihood(X, pi, mu, sigma):
    L = np.linalg.cholesky(sigma)
    diff = X[None, :, :] - mu[:, None, :]
    z = np.linalg.solve(L, np.swapaxes(diff, 1, 2))
    y = (np.log(pi)[:, None] - 0.5 * np.sum(z ** 2, axis=1)
         - np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)[:, None] - 0.5 * X.shape[1] * LOG_2PI)  # (C, N)
    top = y.max(axis=0)
    return np.sum(top + np.log(np.sum(np.exp(y - top), axis=0)))


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


class _DiagonalGMM:
    """Diagonal-covariance mixture helpers (vectorised), and a training loop for experiments."""

    @staticmethod
    def log_joint(X, pi, mu, var):
        sq = (X[:, None, :] - mu[None, :, :]) ** 2 / var[None, :, :]
        return np.log(pi) - 0.5 * np.log(2 * np.pi * var).sum(axis=1) - 0.5 * sq.sum(axis=2)

    @staticmethod
    def e_step(X, pi, mu, var):
        log_joint = _DiagonalGMM.log_joint(X, pi, mu, var)
        return log_joint - logsumexp(log_joint, axis=1, keepdims=True)

    @staticmethod
    def m_step(X, gamma):
        n_c = gamma.sum(axis=0)
        mu = gamma.T @ X / n_c[:, None]
        var = np.einsum("nc,ncd->cd", gamma, (X[:, None, :] - mu[None]) ** 2) / n_c[:, None]
        return n_c / len(X), mu, var

    def fit(self, X, C, n_iter=50):
        pi, mu, var = np.full(C, 1 / C), X[:C].copy(), np.ones((C, X.shape[1]))
        for _ in range(n_iter):                       # a loop, but not one the graded functions run
            pi, mu, var = self.m_step(X, np.exp(self.e_step(X, pi, mu, var)))
        return pi, mu, var


E_step_diag = _DiagonalGMM.e_step


def M_step_diag(X, gamma):
    return _DiagonalGMM.m_step(X, gamma)
