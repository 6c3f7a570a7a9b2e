# breaks: assert_recovers_parameters
# bug: averages the raw estimates over data sets first and matches labels only once, on the average
# explained: before averaging
# (mutant of correct/e_skeleton_triangular.py)
# %%
import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import logsumexp, xlogy

# %%
def _log_pdf_columns(X, mu, sigma):
    N, d = X.shape
    C = mu.shape[0]
    out = np.zeros((N, C))
    for c in range(C):
        L = np.linalg.cholesky(sigma[c])
        z = solve_triangular(L, (X - mu[c]).T, lower=True)   # (d, N): L^-1 (x - mu)
        out[:, c] = -0.5 * d * np.log(2 * np.pi) - np.log(np.diag(L)).sum() - 0.5 * (z ** 2).sum(axis=0)
    return out


def E_step(X, pi, mu, sigma):
    N = X.shape[0]  # number of objects
    C = pi.shape[0]  # number of clusters
    d = mu.shape[1]  # dimension of each object
    gamma = np.zeros((N, C))  # distribution q(T)
    log_joint = _log_pdf_columns(X, mu, sigma) + np.log(pi)
    gamma = np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))
    return gamma


# %%
def M_step(X, gamma):
    N = X.shape[0]  # number of objects
    C = gamma.shape[1]  # number of clusters
    d = X.shape[1]  # dimension of each object
    N_c = np.sum(gamma, axis=0)
    pi = N_c / N
    mu = np.zeros((C, d))
    sigma = np.zeros((C, d, d))
    for c in range(C):
        mu[c] = np.sum(gamma[:, c][:, None] * X, axis=0) / N_c[c]
        centred = X - mu[c]
        sigma[c] = np.dot(centred.T * gamma[:, c], centred) / N_c[c]
    return pi, mu, sigma


# %%
def compute_vlb(X, pi, mu, sigma, gamma):
    N = X.shape[0]  # number of objects
    C = gamma.shape[1]  # number of clusters
    d = X.shape[1]  # dimension of each object
    log_pdf = _log_pdf_columns(X, mu, sigma)
    energy = np.sum(gamma * log_pdf) + np.sum(xlogy(gamma, np.broadcast_to(pi, gamma.shape)))
    entropy = -np.sum(xlogy(gamma, gamma))
    loss = energy + entropy
    return loss


# %%
def log_likelihood(X, pi, mu, sigma):
    N, d = X.shape
    C = pi.shape[0]
    ll = logsumexp(_log_pdf_columns(X, mu, sigma), b=pi[None, :], axis=1).sum()
    return ll


# %%
def train_EM(X, C, rtol=1e-3, max_iter=100, restarts=10):
    N = X.shape[0]  # number of objects
    d = X.shape[1]  # dimension of each object
    best_loss = None
    best_pi = None
    best_mu = None
    best_sigma = None

    for _ in range(restarts):
        try:
            gamma = np.random.dirichlet(np.full(C, 0.7), size=N)
            loss_history = []
            for _ in range(max_iter):
                pi, mu, sigma = M_step(X, gamma)
                loss_history.append(compute_vlb(X, pi, mu, sigma, gamma))
                if len(loss_history) > 1:
                    change = (loss_history[-1] - loss_history[-2]) / loss_history[-2]
                    if abs(change) <= rtol:
                        break
                gamma = E_step(X, pi, mu, sigma)
            loss = loss_history[-1]
            if best_loss is None or best_loss < loss:
                best_loss, best_pi, best_mu, best_sigma = loss, pi, mu, sigma
        except np.linalg.LinAlgError:
            pass  # a component collapsed onto too few points: try the next restart

    return best_loss, best_pi, best_mu, best_sigma


# %%
def assert_bound_never_decreases(X, pi, mu, sigma, E_step, M_step, compute_vlb, n_iter=20):
    # The bound after every half-step: bound(E_t) <= bound(M_t) <= bound(E_{t+1}) <= ...
    gamma = E_step(X, pi, mu, sigma)
    previous = compute_vlb(X, pi, mu, sigma, gamma)
    for it in range(1, n_iter + 1):
        pi, mu, sigma = M_step(X, gamma)
        for step, current in (("M", compute_vlb(X, pi, mu, sigma, gamma)),
                              ("E", compute_vlb(X, pi, mu, sigma, gamma := E_step(X, pi, mu, sigma)))):
            if current < previous - 1e-9 * abs(previous):
                raise AssertionError(f"bound decreased at the {step}-step of iteration {it}: {previous} -> {current}")
            previous = current


# %%
def assert_m_step_maximises(X, gamma, M_step, compute_vlb, n_trials=20, scale=0.05, seed=0):
    rng = np.random.default_rng(seed)
    pi, mu, sigma = M_step(X, gamma)
    C, d = mu.shape
    at_optimum = compute_vlb(X, pi, mu, sigma, gamma)
    log_pi = np.log(pi)
    for trial in range(n_trials):
        logits = log_pi + scale * rng.normal(size=C)
        pi_new = np.exp(logits - logsumexp(logits))
        mu_new = mu + scale * rng.normal(size=(C, d)) * np.sqrt(np.linalg.eigvalsh(sigma).max(axis=1))[:, None]
        L = np.linalg.cholesky(sigma)
        L_new = L + scale * np.tril(rng.normal(size=(C, d, d))) * np.abs(L).max(axis=(1, 2))[:, None, None]
        sigma_new = L_new @ np.transpose(L_new, (0, 2, 1))   # symmetric, PSD (and PD for small moves)
        value = compute_vlb(X, pi_new, mu_new, sigma_new, gamma)
        if value > at_optimum + 1e-9 * abs(at_optimum):
            raise AssertionError(f"trial {trial}: {value} > {at_optimum}")


# %%
def assert_bound_is_tight(X, pi, mu, sigma, E_step, compute_vlb, log_likelihood, n_trials=10, seed=0):
    rng = np.random.default_rng(seed)
    N, C = X.shape[0], pi.shape[0]
    ll = log_likelihood(X, pi, mu, sigma)
    gamma = E_step(X, pi, mu, sigma)
    if not np.isclose(compute_vlb(X, pi, mu, sigma, gamma), ll, rtol=1e-10, atol=0):
        raise AssertionError("the bound is not equal to the log-likelihood after the E-step")
    for _ in range(n_trials):
        logits = 3.0 * rng.normal(size=(N, C))
        q = np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
        if compute_vlb(X, pi, mu, sigma, q) > ll + 1e-10 * abs(ll):
            raise AssertionError("the bound exceeds the log-likelihood")


# %%
def assert_recovers_parameters(train_EM, pi, mu, sigma, n_points=1000, n_datasets=5, tol=0.15):
    C, d = mu.shape
    rng = np.random.default_rng(np.random.randint(2 ** 31))
    fits = []
    for _ in range(n_datasets):
        z = rng.choice(C, size=n_points, p=pi)
        X = np.empty((n_points, d))
        for c in range(C):
            X[z == c] = rng.multivariate_normal(mu[c], sigma[c], size=(z == c).sum())
        _, p_hat, m_hat, s_hat = train_EM(X, C)
        fits.append((p_hat, m_hat, s_hat))
    spread = np.sqrt(np.trace(np.cov(X, rowvar=False)) / d)
    mean_pi = sum(f[0] for f in fits) / n_datasets
    mean_mu = sum(f[1] for f in fits) / n_datasets
    mean_sigma = sum(f[2] for f in fits) / n_datasets
    nearest = [int(np.argmin(np.linalg.norm(mean_mu - mu[k], axis=1))) for k in range(C)]
    mean_pi, mean_mu, mean_sigma = mean_pi[nearest], mean_mu[nearest], mean_sigma[nearest]
    errors = {"pi": np.max(np.abs(mean_pi - pi)),
              "mu": np.max(np.abs(mean_mu - mu)) / spread,
              "sigma": np.max(np.abs(mean_sigma - sigma)) / spread ** 2}
    for name, err in errors.items():
        if err > tol:
            raise AssertionError(f"{name} not recovered: relative error {err:.3f} > {tol}")


# %%
def E_step_diag(X, pi, mu, var):
    log_joint = (np.log(pi)[None, :]
                 - 0.5 * np.sum(np.log(2 * np.pi * var), axis=1)[None, :]
                 - 0.5 * np.sum((X[:, None, :] - mu[None, :, :]) ** 2 / var[None, :, :], axis=2))
    log_gamma = log_joint - logsumexp(log_joint, axis=1, keepdims=True)
    return log_gamma


# %%
def M_step_diag(X, gamma):
    N_c = gamma.sum(axis=0)
    pi = N_c / X.shape[0]
    mu = (gamma.T @ X) / N_c[:, None]
    var = (gamma.T @ X ** 2 - 2 * mu * (gamma.T @ X) + N_c[:, None] * mu ** 2) / N_c[:, None]
    # the expansion above cancels badly far from the origin: recompute around the means instead
    var = np.einsum("nc,cnd->cd", gamma, (X - mu[:, None, :]) ** 2) / N_c[:, None]
    return pi, mu, var
