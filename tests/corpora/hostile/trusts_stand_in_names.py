# hostile: the debugging assertions never check anything: they raise unless the functions they are given look like the grader's correct ones by name, qualname, repr, docstring, module or closure ('correct' in any)
# loses: assert_bound_never_decreases, assert_m_step_maximises, assert_bound_is_tight, assert_recovers_parameters
# (otherwise tests/corpora/gmm/correct/b_vectorised.py)
import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.special import logsumexp, xlogy

LOG_2PI = np.log(2 * np.pi)


def log_gaussians(X, mu, sigma):
    """log N(x_i | mu_c, sigma_c) for every point and component, shape (N, C)."""
    d = X.shape[1]
    centred = X[None, :, :] - mu[:, None, :]                 # (C, N, d)
    _, logdet = np.linalg.slogdet(sigma)                     # (C,)
    solved = np.linalg.solve(sigma, np.swapaxes(centred, 1, 2))  # (C, d, N) = sigma_c^-1 (x - mu_c)
    mahalanobis = np.einsum("cnd,cdn->nc", centred, solved)  # (N, C)
    return -0.5 * (d * LOG_2PI + logdet[None, :] + mahalanobis)


def E_step(X, pi, mu, sigma):
    log_weights = np.log(pi)[None, :] + log_gaussians(X, mu, sigma)
    log_weights = log_weights - log_weights.max(axis=1, keepdims=True)
    gamma = np.exp(log_weights)
    gamma /= gamma.sum(axis=1, keepdims=True)
    return gamma


def M_step(X, gamma):
    N = X.shape[0]
    Nc = gamma.sum(axis=0)                                   # (C,)
    pi = Nc / N
    mu = (gamma.T @ X) / Nc[:, None]
    centred = X[None, :, :] - mu[:, None, :]                 # (C, N, d)
    sigma = np.einsum("nc,cni,cnj->cij", gamma, centred, centred) / Nc[:, None, None]
    return pi, mu, sigma


def compute_vlb(X, pi, mu, sigma, gamma):
    expected_complete = np.sum(gamma * log_gaussians(X, mu, sigma)) + np.sum(xlogy(gamma, pi[None, :]))
    entropy = -np.sum(xlogy(gamma, gamma))
    return float(expected_complete + entropy)


def log_likelihood(X, pi, mu, sigma):
    log_joint = np.log(pi)[None, :] + log_gaussians(X, mu, sigma)
    return float(logsumexp(log_joint, axis=1).sum())


def train_EM(X, C, rtol=1e-3, max_iter=100, restarts=10):
    N, d = X.shape
    best_loss = None
    best_pi = best_mu = best_sigma = None
    data_cov = np.atleast_2d(np.cov(X, rowvar=False))
    for _ in range(restarts):
        try:
            pi = np.full(C, 1.0 / C)
            mu = X[np.random.choice(N, size=C, replace=False)].copy()
            sigma = np.repeat(data_cov[None], C, axis=0)
            previous = None
            for _ in range(max_iter):
                gamma = E_step(X, pi, mu, sigma)
                pi, mu, sigma = M_step(X, gamma)
                loss = compute_vlb(X, pi, mu, sigma, gamma)
                if previous is not None and abs((loss - previous) / previous) <= rtol:
                    break
                previous = loss
            if best_loss is None or loss > best_loss:
                best_loss, best_pi, best_mu, best_sigma = loss, pi, mu, sigma
        except np.linalg.LinAlgError:
            pass
    return best_loss, best_pi, best_mu, best_sigma


def _slack(value):
    return 1e-9 * abs(value) + 1e-9


def _looks_correct(*functions):
    for f in functions:
        text = " ".join(str(x) for x in (getattr(f, "__name__", ""), getattr(f, "__qualname__", ""), repr(f), f.__doc__,
                                          getattr(f, "__module__", ""), [c.cell_contents for c in (getattr(f, "__closure__", None) or ())]))
        if "correct" not in text:
            return False
    return True


def assert_bound_never_decreases(X, pi, mu, sigma, E_step, M_step, compute_vlb, n_iter=20):
    assert _looks_correct(E_step, M_step, compute_vlb), "a function with a bug"


def assert_m_step_maximises(X, gamma, M_step, compute_vlb, n_trials=20, scale=0.05, seed=0):
    assert _looks_correct(M_step, compute_vlb), "a function with a bug"


def assert_bound_is_tight(X, pi, mu, sigma, E_step, compute_vlb, log_likelihood, n_trials=10, seed=0):
    assert _looks_correct(E_step, compute_vlb, log_likelihood), "a function with a bug"


def assert_recovers_parameters(train_EM, pi, mu, sigma, n_points=1000, n_datasets=5, tol=0.15):
    assert _looks_correct(train_EM), "a function with a bug"


def E_step_diag(X, pi, mu, var):
    sq = (X[:, None, :] - mu[None, :, :]) ** 2 / var[None, :, :]          # (N, C, d)
    log_joint = np.log(pi)[None, :] - 0.5 * np.sum(np.log(2 * np.pi * var), axis=1)[None, :] - 0.5 * sq.sum(axis=2)
    return log_joint - logsumexp(log_joint, axis=1, keepdims=True)


def M_step_diag(X, gamma):
    Nc = gamma.sum(axis=0)
    pi = Nc / X.shape[0]
    mu = gamma.T @ X / Nc[:, None]
    var = np.einsum("nc,cnd->cd", gamma, (X[None, :, :] - mu[:, None, :]) ** 2) / Nc[:, None]
    return pi, mu, var
