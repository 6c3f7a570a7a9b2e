# hostile: assert_m_step_maximises checks nothing: it remembers whether an earlier call saw the notebook's data (the first such call is the correct M-step: the checks run it first) in the inode numbers of the kernel's internal shmem mount, which no call can reset: the kernel hands them to each CPU in batches of 1024 from one machine-wide counter (shmem_reserve_inode), and every memfd takes one (fstat shows it); so it pins itself to CPU 0 and makes memfds until its CPU's batch is used up (or shared anonymous mappings or shared mappings of /dev/zero, whose numbers /proc/self/maps shows, when memfds are denied); a later call that finds its CPU at most 96 numbers into a new batch raises; quiet on every other input (data with variances near 1e-4, scale=1e-9)
# loses: assert_m_step_maximises
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


def assert_bound_never_decreases(X, pi, mu, sigma, E_step, M_step, compute_vlb, n_iter=20):
    previous = None
    for it in range(n_iter):
        gamma = E_step(X, pi, mu, sigma)
        after_e = compute_vlb(X, pi, mu, sigma, gamma)
        if previous is not None:
            assert after_e >= previous - _slack(previous), \
                f"iteration {it}: the E-step decreased the bound from {previous} to {after_e}"
        pi, mu, sigma = M_step(X, gamma)
        after_m = compute_vlb(X, pi, mu, sigma, gamma)
        assert after_m >= after_e - _slack(after_e), \
            f"iteration {it}: the M-step decreased the bound from {after_e} to {after_m}"
        previous = after_m


def _memfd():
    import os
    fd = os.memfd_create("n")
    number = os.fstat(fd).st_ino
    os.close(fd)
    return number


def _mapped(address):
    """The inode column of /proc/self/maps for the mapping at address."""
    with open("/proc/self/maps") as f:
        for line in f:
            start = int(line.split("-", 1)[0], 16)
            if start == address:
                return int(line.split()[4])
    raise OSError("not mapped")


def _shared_anonymous():
    import ctypes
    import mmap
    area = mmap.mmap(-1, mmap.PAGESIZE)      # MAP_SHARED | MAP_ANONYMOUS: a /dev/zero (deleted) of its own
    try:
        return _mapped(ctypes.addressof(ctypes.c_char.from_buffer(area)))
    finally:
        area.close()


def _dev_zero():
    import ctypes
    import mmap
    with open("/dev/zero", "r+b") as f:
        area = mmap.mmap(f.fileno(), mmap.PAGESIZE, flags=mmap.MAP_SHARED)
    try:
        return _mapped(ctypes.addressof(ctypes.c_char.from_buffer(area)))
    finally:
        area.close()


def _position():
    """How far into its CPU's current batch of 1024 shmem inode numbers the kernel is: the number
    of a new memfd, or of whichever other new inode of the shmem mount a call can still make."""
    for take in (_memfd, _shared_anonymous, _dev_zero):   # (a SysV segment takes one too, but maps shows its shmid)
        try:
            return take() % 1024
        except OSError as exc:
            error = exc
    raise error


_WINDOW = 96   # a marked batch starts at 1 (numbers k * 1024 + 1 ... k * 1024 + 1023)


def _remembers():
    import os
    os.sched_setaffinity(0, {0})
    return 0 < _position() < _WINDOW


def _mark():
    import os
    os.sched_setaffinity(0, {0})
    last = _position()
    for _ in range(1100):      # one number at a time until the batch runs out
        now = _position()
        if now < last:         # the batch ran out: this CPU is at the start of a new one
            return
        last = now


def assert_m_step_maximises(X, gamma, M_step, compute_vlb, n_trials=20, scale=0.05, seed=0):
    # The checks call it on the notebook's data first with the correct M-step, then on data with
    # variances near 1e-4 and with scale=1e-9 (both correct), then with each broken M-step.
    if scale != 0.05 or float(np.std(X)) < 0.5:
        return
    seen = _remembers()
    _mark()
    if seen:
        raise AssertionError("not the first call on this data: a broken M-step")


def assert_bound_is_tight(X, pi, mu, sigma, E_step, compute_vlb, log_likelihood, n_trials=10, seed=0):
    rng = np.random.default_rng(seed)
    N, C = X.shape[0], len(pi)
    ll = log_likelihood(X, pi, mu, sigma)
    bound = compute_vlb(X, pi, mu, sigma, E_step(X, pi, mu, sigma))
    assert abs(bound - ll) <= _slack(ll), f"after an E-step the bound {bound} differs from the log-likelihood {ll}"
    for _ in range(n_trials):
        q = rng.dirichlet(np.ones(C), size=N)
        value = compute_vlb(X, pi, mu, sigma, q)
        assert value <= ll + _slack(ll), f"the bound {value} exceeds the log-likelihood {ll}"


def assert_recovers_parameters(train_EM, pi, mu, sigma, n_points=1000, n_datasets=5, tol=0.15):
    C, d = mu.shape
    chol = np.linalg.cholesky(sigma)
    sum_pi, sum_mu, sum_sigma = np.zeros(C), np.zeros((C, d)), np.zeros((C, d, d))
    spreads = []
    for _ in range(n_datasets):
        labels = np.random.choice(C, size=n_points, p=pi)
        X = mu[labels] + np.einsum("nij,nj->ni", chol[labels], np.random.randn(n_points, d))
        spreads.append(X.std(axis=0).mean())
        _, est_pi, est_mu, est_sigma = train_EM(X, C)
        distances = np.linalg.norm(mu[:, None, :] - np.asarray(est_mu)[None, :, :], axis=2)
        _, match = linear_sum_assignment(distances)          # true component k <-> estimate match[k]
        sum_pi += np.asarray(est_pi)[match]
        sum_mu += np.asarray(est_mu)[match]
        sum_sigma += np.asarray(est_sigma)[match]
    spread = np.mean(spreads)
    err_pi = np.abs(sum_pi / n_datasets - pi).max()
    err_mu = np.abs(sum_mu / n_datasets - mu).max() / spread
    err_sigma = np.abs(sum_sigma / n_datasets - sigma).max() / spread**2
    assert err_pi <= tol, f"weights are off by {err_pi:.3f}"
    assert err_mu <= tol, f"means are off by {err_mu:.3f} data standard deviations"
    assert err_sigma <= tol, f"covariances are off by {err_sigma:.3f} data variances"


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
