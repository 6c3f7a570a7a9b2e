# breaks: train_EM
# bug: every restart starts from the first C data points, so the restarts are identical
# explained: same start
# (mutant of correct/a_loops_scipy.py)
import itertools
import math

import numpy as np
from scipy.special import logsumexp
from scipy.stats import multivariate_normal


def E_step(X, pi, mu, sigma):
    N = X.shape[0]
    C = pi.shape[0]
    gamma = np.zeros((N, C))
    log_terms = np.zeros((N, C))
    for c in range(C):
        log_terms[:, c] = math.log(pi[c]) + multivariate_normal(mean=mu[c], cov=sigma[c]).logpdf(X)
    for i in range(N):
        biggest = max(log_terms[i, c] for c in range(C))
        total = 0.0
        for c in range(C):
            gamma[i, c] = math.exp(log_terms[i, c] - biggest)
            total += gamma[i, c]
        for c in range(C):
            gamma[i, c] /= total
    return gamma


def M_step(X, gamma):
    N, d = X.shape
    C = gamma.shape[1]
    pi = np.zeros(C)
    mu = np.zeros((C, d))
    sigma = np.zeros((C, d, d))
    for c in range(C):
        weight = 0.0
        total = np.zeros(d)
        for i in range(N):
            weight += gamma[i, c]
            total += gamma[i, c] * X[i]
        pi[c] = weight / N
        mu[c] = total / weight
        scatter = np.zeros((d, d))
        for i in range(N):
            diff = X[i] - mu[c]
            scatter += gamma[i, c] * np.outer(diff, diff)
        sigma[c] = scatter / weight
    return pi, mu, sigma


def compute_vlb(X, pi, mu, sigma, gamma):
    N = X.shape[0]
    C = gamma.shape[1]
    loss = 0.0
    for c in range(C):
        log_density = multivariate_normal(mean=mu[c], cov=sigma[c]).logpdf(X).reshape(N)
        for i in range(N):
            g = gamma[i, c]
            if g > 0:   # 0 * log 0 = 0: those terms contribute nothing
                loss += g * (math.log(pi[c]) + log_density[i] - math.log(g))
    return loss


def log_likelihood(X, pi, mu, sigma):
    N = X.shape[0]
    C = pi.shape[0]
    ll = 0.0
    columns = [math.log(pi[c]) + multivariate_normal(mean=mu[c], cov=sigma[c]).logpdf(X).reshape(N)
               for c in range(C)]
    for i in range(N):
        ll += logsumexp([columns[c][i] for c in range(C)])
    return ll


def train_EM(X, C, rtol=1e-3, max_iter=100, restarts=10):
    N = X.shape[0]
    d = X.shape[1]
    best_loss = None
    best_pi = None
    best_mu = None
    best_sigma = None

    average_variance = X.var(axis=0).mean()
    for _ in range(restarts):
        try:
            pick = np.arange(C)
            mu = X[pick].copy()
            pi = np.ones(C) / C
            sigma = np.array([average_variance * np.eye(d) for _ in range(C)])
            old = None
            iteration = 0
            while iteration < max_iter:
                gamma = E_step(X, pi, mu, sigma)
                pi, mu, sigma = M_step(X, gamma)
                new = compute_vlb(X, pi, mu, sigma, gamma)
                iteration += 1
                if old is not None and abs(new - old) <= rtol * abs(old):
                    break
                old = new
            if best_loss is None or new > best_loss:
                best_loss, best_pi, best_mu, best_sigma = new, pi, mu, sigma
        except np.linalg.LinAlgError:
            pass

    return best_loss, best_pi, best_mu, best_sigma


def assert_bound_never_decreases(X, pi, mu, sigma, E_step, M_step, compute_vlb, n_iter=20):
    last = -np.inf
    for step in range(n_iter):
        gamma = E_step(X, pi, mu, sigma)
        value = compute_vlb(X, pi, mu, sigma, gamma)
        assert value - last >= -1e-9 * abs(value), f"E-step {step} lowered the bound: {last} -> {value}"
        last = value
        pi, mu, sigma = M_step(X, gamma)
        value = compute_vlb(X, pi, mu, sigma, gamma)
        assert value - last >= -1e-9 * abs(value), f"M-step {step} lowered the bound: {last} -> {value}"
        last = value


def assert_m_step_maximises(X, gamma, M_step, compute_vlb, n_trials=20, scale=0.05, seed=0):
    rng = np.random.default_rng(seed)
    pi, mu, sigma = M_step(X, gamma)
    C, d = mu.shape
    top = compute_vlb(X, pi, mu, sigma, gamma)
    for _ in range(n_trials):
        # weights: a Dirichlet draw centred on pi (stays on the simplex)
        new_pi = rng.dirichlet(pi / scale ** 2 + 1.0)
        new_mu = mu.copy()
        new_sigma = sigma.copy()
        for c in range(C):
            new_mu[c] = mu[c] + scale * np.sqrt(np.diag(sigma[c])) * rng.standard_normal(d)
            # rescale along a random symmetric direction through the matrix exponential (SPD)
            B = rng.standard_normal((d, d))
            B = scale * (B + B.T) / 2
            values, vectors = np.linalg.eigh(B)
            E = vectors @ np.diag(np.exp(values / 2)) @ vectors.T
            new_sigma[c] = E @ sigma[c] @ E
        value = compute_vlb(X, new_pi, new_mu, new_sigma, gamma)
        assert value <= top + 1e-9 * abs(top), f"a perturbation beats the M-step: {value} > {top}"


def assert_bound_is_tight(X, pi, mu, sigma, E_step, compute_vlb, log_likelihood, n_trials=10, seed=0):
    rng = np.random.default_rng(seed)
    N, C = X.shape[0], len(pi)
    ll = log_likelihood(X, pi, mu, sigma)
    tight = compute_vlb(X, pi, mu, sigma, E_step(X, pi, mu, sigma))
    assert math.isclose(tight, ll, rel_tol=1e-9, abs_tol=1e-9), f"bound {tight} != log-likelihood {ll}"
    for _ in range(n_trials):
        q = np.array([rng.dirichlet(np.ones(C)) for _ in range(N)])
        loose = compute_vlb(X, pi, mu, sigma, q)
        assert loose <= ll + 1e-9 * abs(ll), f"bound {loose} above the log-likelihood {ll}"


def assert_recovers_parameters(train_EM, pi, mu, sigma, n_points=1000, n_datasets=5, tol=0.15):
    C, d = mu.shape
    total_pi = np.zeros(C)
    total_mu = np.zeros((C, d))
    total_sigma = np.zeros((C, d, d))
    for _ in range(n_datasets):
        X = np.zeros((n_points, d))
        for i in range(n_points):
            c = np.random.choice(C, p=pi)
            X[i] = np.random.multivariate_normal(mu[c], sigma[c])
        _, p_hat, m_hat, s_hat = train_EM(X, C)
        best_perm = min(itertools.permutations(range(C)),
                        key=lambda perm: sum(np.sum((mu[k] - m_hat[perm[k]]) ** 2) for k in range(C)))
        best_perm = list(best_perm)
        total_pi += p_hat[best_perm]
        total_mu += m_hat[best_perm]
        total_sigma += s_hat[best_perm]
    avg_pi, avg_mu, avg_sigma = total_pi / n_datasets, total_mu / n_datasets, total_sigma / n_datasets
    # the spread of the data: the standard deviation of the mixture along each axis
    overall_mean = pi @ mu
    overall_cov = sum(pi[c] * (sigma[c] + np.outer(mu[c] - overall_mean, mu[c] - overall_mean)) for c in range(C))
    spread = np.sqrt(np.diag(overall_cov))
    assert np.all(np.abs(avg_pi - pi) <= tol), "mixture weights not recovered"
    assert np.all(np.abs(avg_mu - mu) <= tol * spread), "means not recovered"
    assert np.all(np.abs(avg_sigma - sigma) <= tol * np.outer(spread, spread)), "covariances not recovered"


def E_step_diag(X, pi, mu, var):
    diff = X[:, np.newaxis, :] - mu[np.newaxis, :, :]
    log_joint = (np.log(pi)
                 - 0.5 * np.log(2 * np.pi * var).sum(axis=1)
                 - 0.5 * (diff ** 2 / var).sum(axis=2))
    top = log_joint.max(axis=1, keepdims=True)
    log_norm = top + np.log(np.exp(log_joint - top).sum(axis=1, keepdims=True))
    return log_joint - log_norm


def M_step_diag(X, gamma):
    weights = gamma.sum(axis=0)
    pi = weights / gamma.shape[0]
    mu = np.dot(gamma.T, X) / weights[:, np.newaxis]
    deviations = X[np.newaxis, :, :] - mu[:, np.newaxis, :]
    var = np.einsum("nc,cnd->cd", gamma, deviations ** 2) / weights[:, np.newaxis]
    return pi, mu, var
