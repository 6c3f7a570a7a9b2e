import numpy as np
from scipy.linalg import solve_triangular
from scipy.special import logsumexp, xlogy


def E_step(X, pi, mu, sigma):
    """
    E-step: the posterior probability of every component for every point.

    Parameters
    ----------
    X : array, shape (N, d)
        Data points.
    pi : array, shape (C,)
        Mixture weights, non-negative, summing to 1.
    mu : array, shape (C, d)
        Component means.
    sigma : array, shape (C, d, d)
        Component covariance matrices (symmetric positive definite).

    Returns
    -------
    gamma : array, shape (N, C)
        gamma[i, c] = q(t_i = c) = p(t_i = c | x_i, pi, mu, sigma); every row sums to 1.
    """
    N = X.shape[0]  # number of objects
    C = pi.shape[0]  # number of clusters
    d = mu.shape[1]  # dimension of each object
    gamma = np.zeros((N, C))  # distribution q(T)
    ### BEGIN SOLUTION
    # log(pi_c) + log N(x_i | mu_c, sigma_c) for every point and component. The Cholesky factor
    # sigma_c = L L^T gives both the solve (no inverse) and the log-determinant.
    log_joint = np.empty((N, C))
    with np.errstate(divide="ignore"):  # log(0) = -inf is right for an empty component
        log_pi = np.log(pi)
    for c in range(C):
        L = np.linalg.cholesky(sigma[c])
        z = solve_triangular(L, (X - mu[c]).T, lower=True)   # (d, N) = L^{-1} (x_i - mu_c)
        log_det = 2.0 * np.log(np.diag(L)).sum()
        log_joint[:, c] = log_pi[c] - 0.5 * (d * np.log(2 * np.pi) + log_det + np.einsum("dn,dn->n", z, z))
    # Softmax over components with the max trick: exp never overflows and the largest term is 1.
    gamma = np.exp(log_joint - log_joint.max(axis=1, keepdims=True))
    gamma /= gamma.sum(axis=1, keepdims=True)
    ### END SOLUTION
    return gamma


def M_step(X, gamma):
    """
    M-step: the parameters that maximise the expected complete-data log-likelihood.

    Parameters
    ----------
    X : array, shape (N, d)
        Data points.
    gamma : array, shape (N, C)
        Responsibilities q(t_i = c) from the E-step.

    Returns
    -------
    pi : array, shape (C,)
    mu : array, shape (C, d)
    sigma : array, shape (C, d, d)
    """
    N = X.shape[0]  # number of objects
    C = gamma.shape[1]  # number of clusters
    d = X.shape[1]  # dimension of each object
    ### BEGIN SOLUTION
    weights = gamma.sum(axis=0)                  # (C,) effective number of points per component
    pi = weights / N
    mu = (gamma.T @ X) / weights[:, None]
    sigma = np.empty((C, d, d))
    for c in range(C):
        # sqrt-weighted centred points: W^T W is the weighted scatter matrix, symmetric by construction
        W = np.sqrt(gamma[:, c])[:, None] * (X - mu[c])
        sigma[c] = (W.T @ W) / weights[c]
    ### END SOLUTION
    return pi, mu, sigma


def compute_vlb(X, pi, mu, sigma, gamma):
    """
    The variational lower bound L(theta, q) = E_q[log p(X, T | theta)] - E_q[log q(T)].

    Parameters
    ----------
    X : array, shape (N, d)
        Data points.
    pi : array, shape (C,)
    mu : array, shape (C, d)
    sigma : array, shape (C, d, d)
    gamma : array, shape (N, C)
        The distribution q(T): gamma[i, c] = q(t_i = c).

    Returns
    -------
    loss : float
        The value of the lower bound.
    """
    N = X.shape[0]  # number of objects
    C = gamma.shape[1]  # number of clusters
    d = X.shape[1]  # dimension of each object
    ### BEGIN SOLUTION
    log_density = np.empty((N, C))  # log N(x_i | mu_c, sigma_c)
    for c in range(C):
        L = np.linalg.cholesky(sigma[c])
        z = solve_triangular(L, (X - mu[c]).T, lower=True)
        log_det = 2.0 * np.log(np.diag(L)).sum()
        log_density[:, c] = -0.5 * (d * np.log(2 * np.pi) + log_det + np.einsum("dn,dn->n", z, z))
    # xlogy(a, b) = a log b with 0 log 0 = 0: empty components and zero responsibilities are fine.
    expected_complete = np.sum(gamma * log_density) + np.sum(xlogy(gamma, pi[None, :]))
    entropy = -np.sum(xlogy(gamma, gamma))
    loss = float(expected_complete + entropy)
    ### END SOLUTION
    return loss


def log_likelihood(X, pi, mu, sigma):
    """
    The observed-data log-likelihood log p(X | theta) = sum_i log sum_c pi_c N(x_i | mu_c, sigma_c).

    Parameters
    ----------
    X : array, shape (N, d)
    pi : array, shape (C,)
    mu : array, shape (C, d)
    sigma : array, shape (C, d, d)

    Returns
    -------
    ll : float
    """
    N, d = X.shape
    C = pi.shape[0]
    ### BEGIN SOLUTION
    log_joint = np.empty((N, C))
    with np.errstate(divide="ignore"):
        log_pi = np.log(pi)
    for c in range(C):
        L = np.linalg.cholesky(sigma[c])
        z = solve_triangular(L, (X - mu[c]).T, lower=True)
        log_det = 2.0 * np.log(np.diag(L)).sum()
        log_joint[:, c] = log_pi[c] - 0.5 * (d * np.log(2 * np.pi) + log_det + np.einsum("dn,dn->n", z, z))
    ll = float(logsumexp(log_joint, axis=1).sum())
    ### END SOLUTION
    return ll


def train_EM(X, C, rtol=1e-3, max_iter=100, restarts=10):
    """
    EM from several random starting points; keeps the restart with the highest lower bound.

    Each restart stops when the relative improvement of the bound,
    |(L_t - L_{t-1}) / L_{t-1}|, is at most ``rtol``, or after ``max_iter`` iterations.
    A restart whose covariances collapse (``np.linalg.LinAlgError``) is skipped.

    Parameters
    ----------
    X : array, shape (N, d)
    C : int
        Number of components.
    rtol : float
    max_iter : int
    restarts : int

    Returns
    -------
    best_loss : float
        The lower bound reached by the best restart.
    best_pi : array, shape (C,)
    best_mu : array, shape (C, d)
    best_sigma : array, shape (C, d, d)
    """
    N = X.shape[0]  # number of objects
    d = X.shape[1]  # dimension of each object
    best_loss = None
    best_pi = None
    best_mu = None
    best_sigma = None

    for _ in range(restarts):
        try:
            ### BEGIN SOLUTION
            # Start: uniform weights, means at distinct random data points, every covariance
            # equal to the covariance of the whole data set (wide enough to see all points).
            pi = np.full(C, 1.0 / C)
            mu = X[np.random.choice(N, size=C, replace=False)]
            sigma = np.repeat(np.atleast_2d(np.cov(X, rowvar=False))[None], C, axis=0)
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
            ### END SOLUTION
        except np.linalg.LinAlgError:
            pass  # a component collapsed onto too few points: try the next restart

    return best_loss, best_pi, best_mu, best_sigma


def assert_bound_never_decreases(X, pi, mu, sigma, E_step, M_step, compute_vlb, n_iter=20):
    """
    Run ``n_iter`` EM iterations from (pi, mu, sigma) with the given step functions and raise
    AssertionError as soon as the lower bound decreases.

    The bound is evaluated after every half-step: an E-step must not decrease it (it makes it
    tight) and neither may an M-step (it maximises it over the parameters).

    Parameters
    ----------
    X : array, shape (N, d)
    pi, mu, sigma : arrays, shapes (C,), (C, d), (C, d, d)
        Starting parameters.
    E_step, M_step, compute_vlb : callables
        The implementations under test, with the signatures of this notebook.
    n_iter : int
    """
    ### BEGIN SOLUTION
    gamma = E_step(X, pi, mu, sigma)
    previous = compute_vlb(X, pi, mu, sigma, gamma)
    for it in range(n_iter):
        pi, mu, sigma = M_step(X, gamma)
        after_m = compute_vlb(X, pi, mu, sigma, gamma)
        gamma = E_step(X, pi, mu, sigma)
        after_e = compute_vlb(X, pi, mu, sigma, gamma)
        # Rounding can make a converged bound wobble by a few ulps: allow that, nothing more.
        slack = 1e-9 * abs(previous)
        assert after_m >= previous - slack, f"the M-step of iteration {it} decreased the bound: {previous} -> {after_m}"
        assert after_e >= after_m - slack, f"the E-step of iteration {it + 1} decreased the bound: {after_m} -> {after_e}"
        previous = after_e
    ### END SOLUTION


def assert_m_step_maximises(X, gamma, M_step, compute_vlb, n_trials=20, scale=0.05, seed=0):
    """
    Raise AssertionError unless the parameters returned by ``M_step(X, gamma)`` give a bound at
    least as high as every random perturbation of them (gamma fixed).

    For fixed q, the bound equals the expected complete-data log-likelihood plus a constant
    (the entropy of q), so the M-step's output must beat any nearby parameters.

    Parameters
    ----------
    X : array, shape (N, d)
    gamma : array, shape (N, C)
    M_step, compute_vlb : callables
    n_trials : int
        Number of perturbations.
    scale : float
        Relative size of the perturbations.
    seed : int
    """
    ### BEGIN SOLUTION
    rng = np.random.default_rng(seed)
    pi, mu, sigma = M_step(X, gamma)
    best = compute_vlb(X, pi, mu, sigma, gamma)
    C, d = mu.shape
    for trial in range(n_trials):
        # Perturb within the model's constraints: pi on the simplex, sigma symmetric positive definite.
        new_pi = pi * np.exp(scale * rng.standard_normal(C))
        new_pi /= new_pi.sum()
        new_mu = mu + scale * rng.standard_normal((C, d)) * np.sqrt(np.diagonal(sigma, axis1=1, axis2=2))
        A = np.eye(d) + scale * rng.standard_normal((C, d, d))
        new_sigma = A @ sigma @ np.swapaxes(A, 1, 2)
        value = compute_vlb(X, new_pi, new_mu, new_sigma, gamma)
        assert value <= best + 1e-9 * abs(best), f"perturbation {trial} beats the M-step: {value} > {best}"
    ### END SOLUTION


def assert_bound_is_tight(X, pi, mu, sigma, E_step, compute_vlb, log_likelihood, n_trials=10, seed=0):
    """
    Raise AssertionError unless the bound equals the log-likelihood right after an E-step and
    stays below it for any other distribution q.

    Parameters
    ----------
    X : array, shape (N, d)
    pi, mu, sigma : arrays, shapes (C,), (C, d), (C, d, d)
    E_step, compute_vlb, log_likelihood : callables
    n_trials : int
        Number of random distributions q tried.
    seed : int
    """
    ### BEGIN SOLUTION
    rng = np.random.default_rng(seed)
    ll = log_likelihood(X, pi, mu, sigma)
    tight = compute_vlb(X, pi, mu, sigma, E_step(X, pi, mu, sigma))
    assert abs(tight - ll) <= 1e-8 * abs(ll), f"after the E-step the bound is {tight}, the log-likelihood {ll}"
    N, C = X.shape[0], pi.shape[0]
    for trial in range(n_trials):
        q = rng.dirichlet(np.ones(C), size=N)
        value = compute_vlb(X, pi, mu, sigma, q)
        assert value <= ll + 1e-8 * abs(ll), f"for a random q the bound {value} exceeds the log-likelihood {ll}"
    ### END SOLUTION


def assert_recovers_parameters(train_EM, pi, mu, sigma, n_points=1000, n_datasets=5, tol=0.15):
    """
    Simulate ``n_datasets`` data sets from known parameters, fit each with ``train_EM`` and raise
    AssertionError unless the estimates, averaged over the data sets, are close to the truth.

    Averaging over several simulated data sets separates the estimator's error from one
    sample's noise. Components are matched to the true ones by their means (label switching).

    Parameters
    ----------
    train_EM : callable
        ``train_EM(X, C) -> (loss, pi, mu, sigma)``.
    pi, mu, sigma : arrays, shapes (C,), (C, d), (C, d, d)
        The true parameters.
    n_points : int
    n_datasets : int
    tol : float
        Largest allowed error of every averaged parameter, relative to the spread of the data.
    """
    ### BEGIN SOLUTION
    rng = np.random.default_rng(0)
    C, d = mu.shape
    estimates = []
    for _ in range(n_datasets):
        labels = rng.choice(C, size=n_points, p=pi)
        X = mu[labels] + np.einsum("nij,nj->ni", np.linalg.cholesky(sigma)[labels],
                                   rng.standard_normal((n_points, d)))
        _, est_pi, est_mu, est_sigma = train_EM(X, C)
        # Match each true component to its nearest estimated mean (label switching).
        distances = ((mu[:, None, :] - est_mu[None, :, :]) ** 2).sum(axis=2)
        order = np.argmin(distances, axis=1)
        assert len(set(order.tolist())) == C, "two true components matched the same estimated one"
        estimates.append((est_pi[order], est_mu[order], est_sigma[order]))
    scale = np.sqrt(np.trace(sigma, axis1=1, axis2=2).mean())
    mean_pi, mean_mu, mean_sigma = (np.mean(parts, axis=0) for parts in zip(*estimates))
    assert np.max(np.abs(mean_pi - pi)) <= tol, f"weights: {mean_pi} vs {pi}"
    assert np.max(np.abs(mean_mu - mu)) <= tol * scale, f"means: {mean_mu} vs {mu}"
    assert np.max(np.abs(mean_sigma - sigma)) <= tol * scale**2, f"covariances: {mean_sigma} vs {sigma}"
    ### END SOLUTION


def E_step_diag(X, pi, mu, var):
    """
    E-step of a Gaussian mixture with diagonal covariances, in the log domain, without loops.

    Parameters
    ----------
    X : array, shape (N, d)
    pi : array, shape (C,)
    mu : array, shape (C, d)
    var : array, shape (C, d)
        var[c] is the diagonal of component c's covariance matrix.

    Returns
    -------
    log_gamma : array, shape (N, C)
        log q(t_i = c); logsumexp over every row is 0.
    """
    ### BEGIN SOLUTION
    d = X.shape[1]
    precision = 1.0 / var                                       # (C, d)
    # sum_j (x_j - mu_j)^2 / var_j expanded into matrix products: no (N, C, d) temporary.
    maha = (X**2) @ precision.T - 2.0 * X @ (mu * precision).T + np.sum(mu**2 * precision, axis=1)
    with np.errstate(divide="ignore"):
        log_pi = np.log(pi)
    log_joint = log_pi - 0.5 * (d * np.log(2 * np.pi) + np.log(var).sum(axis=1) + maha)
    log_gamma = log_joint - logsumexp(log_joint, axis=1, keepdims=True)
    ### END SOLUTION
    return log_gamma


def M_step_diag(X, gamma):
    """
    M-step of a Gaussian mixture with diagonal covariances, without loops.

    Parameters
    ----------
    X : array, shape (N, d)
    gamma : array, shape (N, C)

    Returns
    -------
    pi : array, shape (C,)
    mu : array, shape (C, d)
    var : array, shape (C, d)
    """
    ### BEGIN SOLUTION
    weights = gamma.sum(axis=0)
    pi = weights / X.shape[0]
    mu = (gamma.T @ X) / weights[:, None]
    # E[x^2] - mu^2 loses digits when the mean is large next to the spread: centre first.
    var = np.einsum("nc,ncd->cd", gamma, (X[:, None, :] - mu[None]) ** 2) / weights[:, None]
    ### END SOLUTION
    return pi, mu, var
