# breaks: log_likelihood
# bug: averages over points instead of summing
# explained: mean
# (mutant of correct/c_cholesky.py)
import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.special import logsumexp, xlogy


def E_step(X, pi, mu, sigma):
    N = X.shape[0]  # number of objects
    C = pi.shape[0]  # number of clusters
    d = mu.shape[1]  # dimension of each object
    gamma = np.zeros((N, C))  # distribution q(T)
    log_w = np.empty((N, C))
    for c in range(C):
        factor = cho_factor(sigma[c], lower=True)
        diff = X - mu[c]
        maha = np.sum(diff * cho_solve(factor, diff.T).T, axis=1)
        log_det = 2.0 * np.sum(np.log(np.diag(factor[0])))
        log_w[:, c] = np.log(pi[c]) - 0.5 * (d * np.log(2 * np.pi) + log_det + maha)
    log_w -= np.max(log_w, axis=1, keepdims=True)
    gamma = np.exp(log_w)
    gamma /= np.sum(gamma, axis=1, keepdims=True)
    return gamma


def M_step(X, gamma):
    N = X.shape[0]  # number of objects
    C = gamma.shape[1]  # number of clusters
    d = X.shape[1]  # dimension of each object
    pi = np.empty(C)
    mu = np.empty((C, d))
    sigma = np.empty((C, d, d))
    for c in range(C):
        w = gamma[:, c]
        n_c = w.sum()
        pi[c] = n_c / N
        mu[c] = w @ X / n_c
        diff = X - mu[c]
        sigma[c] = (w[:, None] * diff).T @ diff / n_c
    return pi, mu, sigma


def compute_vlb(X, pi, mu, sigma, gamma):
    N = X.shape[0]  # number of objects
    C = gamma.shape[1]  # number of clusters
    d = X.shape[1]  # dimension of each object
    loss = 0.0
    for c in range(C):
        factor = cho_factor(sigma[c], lower=True)
        diff = X - mu[c]
        maha = np.sum(diff * cho_solve(factor, diff.T).T, axis=1)
        log_det = 2.0 * np.sum(np.log(np.diag(factor[0])))
        log_n = -0.5 * (d * np.log(2 * np.pi) + log_det + maha)
        loss += np.sum(gamma[:, c] * log_n) + np.sum(xlogy(gamma[:, c], pi[c]))
        loss -= np.sum(xlogy(gamma[:, c], gamma[:, c]))
    return loss


def log_likelihood(X, pi, mu, sigma):
    N, d = X.shape
    C = pi.shape[0]
    table = np.empty((N, C))
    for c in range(C):
        factor = cho_factor(sigma[c], lower=True)
        diff = X - mu[c]
        maha = np.sum(diff * cho_solve(factor, diff.T).T, axis=1)
        log_det = 2.0 * np.sum(np.log(np.diag(factor[0])))
        table[:, c] = np.log(pi[c]) - 0.5 * (d * np.log(2 * np.pi) + log_det + maha)
    ll = np.mean(logsumexp(table, axis=1))
    return ll


def train_EM(X, C, rtol=1e-3, max_iter=100, restarts=10):
    N = X.shape[0]  # number of objects
    d = X.shape[1]  # dimension of each object
    best_loss = None
    best_pi = None
    best_mu = None
    best_sigma = None

    centre = X.mean(axis=0)
    spread = X.std(axis=0)
    for _ in range(restarts):
        try:
            pi = np.random.dirichlet(np.ones(C))
            mu = centre + np.random.randn(C, d) * spread
            sigma = np.array([np.diag(spread ** 2) for _ in range(C)])
            prev_loss = None
            for iteration in range(max_iter):
                gamma = E_step(X, pi, mu, sigma)
                loss = compute_vlb(X, pi, mu, sigma, gamma)   # tight: the log-likelihood of (pi, mu, sigma)
                if prev_loss is not None and abs((loss - prev_loss) / prev_loss) <= rtol:
                    break
                prev_loss = loss
                pi, mu, sigma = M_step(X, gamma)
            if best_loss is None or loss > best_loss:
                best_loss = loss
                best_pi, best_mu, best_sigma = pi, mu, sigma
        except np.linalg.LinAlgError:
            pass  # a component collapsed onto too few points: try the next restart

    return best_loss, best_pi, best_mu, best_sigma


def assert_bound_never_decreases(X, pi, mu, sigma, E_step, M_step, compute_vlb, n_iter=20):
    history = []
    for _ in range(n_iter):
        gamma = E_step(X, pi, mu, sigma)
        history.append(("E-step", compute_vlb(X, pi, mu, sigma, gamma)))
        pi, mu, sigma = M_step(X, gamma)
        history.append(("M-step", compute_vlb(X, pi, mu, sigma, gamma)))
    for (_, before), (step, after) in zip(history, history[1:]):
        if after < before - 1e-10 * abs(before):
            raise AssertionError(f"the bound went down after an {step}: {before:.10f} -> {after:.10f}")


def assert_m_step_maximises(X, gamma, M_step, compute_vlb, n_trials=20, scale=0.05, seed=0):
    rng = np.random.RandomState(seed)
    pi, mu, sigma = M_step(X, gamma)
    C, d = mu.shape
    reference = compute_vlb(X, pi, mu, sigma, gamma)
    for trial in range(n_trials):
        p, m, s = pi.copy(), mu.copy(), sigma.copy()
        which = trial % 3
        if which == 0:      # weights: move in log space, renormalise
            p = p * np.exp(scale * rng.randn(C))
            p = p / p.sum()
        elif which == 1:    # means: shift by a fraction of each component's scale
            m = m + scale * rng.randn(C, d) * np.sqrt(np.trace(sigma, axis1=1, axis2=2) / d)[:, None]
        else:               # covariances: congruence with a matrix near the identity keeps them SPD
            for c in range(C):
                A = np.eye(d) + scale * rng.randn(d, d)
                s[c] = A @ s[c] @ A.T
        value = compute_vlb(X, p, m, s, gamma)
        if value > reference + 1e-9 * abs(reference):
            raise AssertionError(f"perturbing {['pi', 'mu', 'sigma'][which]} increased the bound: "
                                 f"{reference} -> {value}")


def assert_bound_is_tight(X, pi, mu, sigma, E_step, compute_vlb, log_likelihood, n_trials=10, seed=0):
    rng = np.random.RandomState(seed)
    N, C = X.shape[0], pi.shape[0]
    ll = log_likelihood(X, pi, mu, sigma)
    tol = 1e-8 * abs(ll)
    gamma = E_step(X, pi, mu, sigma)
    gap = ll - compute_vlb(X, pi, mu, sigma, gamma)
    if abs(gap) > tol:
        raise AssertionError(f"the bound is not tight after the E-step: log p(X) - L = {gap}")
    for _ in range(n_trials):
        alpha = rng.uniform(0.2, 5.0)
        q = rng.dirichlet(alpha * np.ones(C), size=N)
        gap = ll - compute_vlb(X, pi, mu, sigma, q)
        if gap < -tol:
            raise AssertionError(f"the bound exceeds the log-likelihood by {-gap}")


def assert_recovers_parameters(train_EM, pi, mu, sigma, n_points=1000, n_datasets=5, tol=0.15):
    C, d = mu.shape
    estimates = []
    for _ in range(n_datasets):
        counts = np.random.multinomial(n_points, pi)
        X = np.vstack([np.random.multivariate_normal(mu[c], sigma[c], size=counts[c]) for c in range(C)])
        np.random.shuffle(X)
        _, p_hat, m_hat, s_hat = train_EM(X, C)
        # greedy matching: repeatedly pair the closest (true, estimated) means
        dist = ((mu[:, None, :] - m_hat[None, :, :]) ** 2).sum(axis=2)
        order = np.empty(C, dtype=int)
        for _ in range(C):
            k, j = np.unravel_index(np.argmin(dist), dist.shape)
            order[k] = j
            dist[k, :] = np.inf
            dist[:, j] = np.inf
        estimates.append((p_hat[order], m_hat[order], s_hat[order]))
    pi_bar = np.mean([e[0] for e in estimates], axis=0)
    mu_bar = np.mean([e[1] for e in estimates], axis=0)
    sigma_bar = np.mean([e[2] for e in estimates], axis=0)
    # errors relative to the spread of the data: the scale of each true component
    scale = np.sqrt(np.linalg.eigvalsh(sigma).max(axis=1))      # (C,)
    if np.abs(pi_bar - pi).max() > tol:
        raise AssertionError(f"pi: {pi_bar} vs {pi}")
    if (np.linalg.norm(mu_bar - mu, axis=1) / scale).max() > tol:
        raise AssertionError(f"mu: {mu_bar} vs {mu}")
    if (np.linalg.norm(sigma_bar - sigma, axis=(1, 2), ord=2) / scale ** 2).max() > tol:
        raise AssertionError(f"sigma: {sigma_bar} vs {sigma}")


def E_step_diag(X, pi, mu, var):
    prec = 1.0 / var                                           # (C, d)
    # expand the square: sum_j x_j^2/v_cj - 2 x_j mu_cj/v_cj + mu_cj^2/v_cj, all as matrix products
    quad = (X ** 2) @ prec.T - 2.0 * X @ (mu * prec).T + np.sum(mu ** 2 * prec, axis=1)
    log_joint = np.log(pi) - 0.5 * np.sum(np.log(2 * np.pi * var), axis=1) - 0.5 * quad
    log_gamma = log_joint - logsumexp(log_joint, axis=1)[:, None]
    return log_gamma


def M_step_diag(X, gamma):
    n_c = gamma.sum(axis=0)
    pi = n_c / len(X)
    mu = (gamma.T @ X) / n_c[:, None]
    # centred second moments without a loop: broadcast the (C, N, d) deviations
    dev = X[None, :, :] - mu[:, None, :]
    var = np.sum(gamma.T[:, :, None] * dev ** 2, axis=1) / n_c[:, None]
    return pi, mu, var
