"""Checks of E_step and M_step."""

from __future__ import annotations

import numpy as np

from ...engine import Failed, expect
from . import ASSIGNMENT, theory
from .fixtures import sample, visible

# Tolerances, per quantity. Responsibilities are probabilities: 1e-12 absolute is far below any
# value that matters, and 1e-6 relative catches every real bug (wrong normalisation, a missing
# factor, a transposed covariance) while accepting inv/solve/Cholesky/scipy alike.
GAMMA_RTOL, GAMMA_ATOL = 1e-6, 1e-12
PI_RTOL, PI_ATOL = 1e-8, 1e-12
MU_RTOL = 1e-8
SIGMA_RTOL = 1e-7

# Hidden random problems (N, d, C), smallest first: the first failure is the smallest failing input.
HIDDEN_SIZES = [(4, 1, 2), (10, 2, 3), (30, 3, 2), (80, 4, 5), (300, 6, 4)]

NONFINITE_GAMMA = ("points far from every mean make every exp(log-density) underflow to 0, so the row "
                   "sum is 0 and gamma = 0/0 = NaN; subtract the row maximum of the log-weights "
                   "before exponentiating (the max trick), or work with logsumexp")


def _case(X, pi, mu, sigma, **extra):
    return expect.format_case(X=X, pi=pi, mu=mu, sigma=sigma, **extra)


def _softmax_rows(y):
    y = y - y.max(axis=1, keepdims=True)
    e = np.exp(y)
    return e / e.sum(axis=1, keepdims=True)


def _e_step_variants(X, pi, mu, sigma) -> dict:
    """gamma as the usual E-step bugs compute it, each with what went wrong."""
    N, d = X.shape
    with np.errstate(all="ignore"):
        diff = X[None, :, :] - mu[:, None, :]                                   # (C, N, d)
        logdet = np.linalg.slogdet(sigma)[1]                                    # (C,)
        maha = np.einsum("cnd,cnd->nc", diff, np.linalg.solve(sigma, np.swapaxes(diff, 1, 2)).swapaxes(1, 2))
        maha_times = np.einsum("cnd,cde,cne->nc", diff, sigma, diff)
        log_pi = np.log(pi)[None, :]
        base = -0.5 * d * np.log(2 * np.pi)
        return {
            "the Mahalanobis term uses sigma instead of its inverse: (x - mu)^T sigma^-1 (x - mu) needs "
            "np.linalg.solve(sigma_c, x - mu_c)": _softmax_rows(log_pi + base - 0.5 * (logdet + maha_times)),
            "the log-determinant lacks its factor 1/2: log N = -1/2 (d log 2 pi + log det sigma + Mahalanobis)":
                _softmax_rows(log_pi + base - logdet - 0.5 * maha),
            "the Mahalanobis term lacks its factor 1/2": _softmax_rows(log_pi + base - 0.5 * logdet - maha),
            "the log-determinant has the wrong sign": _softmax_rows(log_pi + base + 0.5 * logdet - 0.5 * maha),
            "the log-determinant is missing": _softmax_rows(log_pi + base - 0.5 * maha),
            "the weights pi are missing: gamma_ic is proportional to pi_c N(x_i | c)":
                _softmax_rows(base - 0.5 * (logdet + maha)),
            "the weights enter as pi_c instead of log pi_c in the log domain":
                _softmax_rows(np.asarray(pi)[None, :] + base - 0.5 * (logdet + maha)),
        }


def diagnose_gamma(gamma, X, pi, mu, sigma) -> str:
    """The known bug whose output ``gamma`` matches, or ''."""
    for reason, candidate in _e_step_variants(X, pi, mu, sigma).items():
        if candidate.shape == gamma.shape and np.all(np.isfinite(candidate)) and \
                np.allclose(gamma, candidate, rtol=1e-6, atol=1e-9):
            return reason
    return ""


def validate_gamma(value, N: int, C: int, what: str = "gamma returned by E_step") -> np.ndarray:
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.dtype.itemsize < 8:
        raise Failed(f"{what} has dtype {value.dtype}: rows sum to 1 only to about 1e-7, and values below "
                     f"{np.finfo(value.dtype).tiny:.0e} vanish", why="compute and return float64 (the default of numpy)")
    gamma = expect.array(value, what, shape=(N, C), why_nonfinite=NONFINITE_GAMMA)
    sums = gamma.sum(axis=1)
    bad_rows = np.flatnonzero(np.abs(sums - 1) > 1e-8)
    if bad_rows.size:
        i = int(bad_rows[0])
        why = ("gamma[i, c] = pi_c N(x_i|c) / sum_k pi_k N(x_i|k): divide every row by its sum "
               "(sum over components, axis=1)")
        if np.allclose(gamma.sum(axis=0), 1, atol=1e-8):
            why = "columns sum to 1 instead of rows: normalise over components (axis=1), not over points"
        elif sums[i] == 0:
            why = NONFINITE_GAMMA
        raise Failed(f"{len(bad_rows)} row(s) of gamma do not sum to 1 (row {i} sums to {sums[i]:.6g})", why=why)
    if gamma.min() < -1e-12 or gamma.max() > 1 + 1e-12:
        raise Failed(f"gamma has entries outside [0, 1] (min {gamma.min():.3g}, max {gamma.max():.3g})",
                     why="responsibilities are probabilities")
    return gamma


def validate_parameters(value, C: int, d: int, what: str = "M_step") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise Failed(f"{what} should return a tuple (pi, mu, sigma) but returned {expect.describe_value(value)}")
    for name, part in zip(("pi", "mu", "sigma"), value):
        if isinstance(part, np.ndarray) and part.dtype.kind == "f" and part.dtype.itemsize < 8:
            raise Failed(f"{name} returned by {what} has dtype {part.dtype}, which keeps only about 7 digits",
                         why="compute in float64 (numpy's default): do not cast the data or the results to float32")
    pi = expect.array(value[0], f"pi returned by {what}", shape=(C,))
    mu = expect.array(value[1], f"mu returned by {what}", shape=(C, d))
    sigma = expect.array(value[2], f"sigma returned by {what}", shape=(C, d, d))
    return pi, mu, sigma


def _sigma_variants(X, gamma, mu) -> dict:
    """sigma as the usual M-step bugs compute it (around the student's own mu), with what went wrong."""
    weights = gamma.sum(axis=0)
    def scatter(centre, w):
        centred = X[None, :, :] - centre[:, None, :]
        return np.einsum("nc,cnd,cne->cde", w, centred, centred)
    around_mu = scatter(mu, gamma)
    unbiased = weights - (gamma ** 2).sum(axis=0) / weights
    return {
        "sigma is divided by N instead of N_c = gamma[:, c].sum()": around_mu / len(X),
        "the scatter is weighted by gamma squared; each term needs gamma_ic once": scatter(mu, gamma ** 2)
        / weights[:, None, None],
        "the scatter ignores the weights gamma_ic": scatter(mu, np.ones_like(gamma)) / weights[:, None, None],
        "the scatter is taken around the mean of all the data instead of mu_c":
            scatter(np.repeat(X.mean(axis=0)[None], len(mu), axis=0), gamma) / weights[:, None, None],
        "the scatter is taken around 0 instead of mu_c (sigma computed before mu, or x x^T without centring)":
            scatter(np.zeros_like(mu), gamma) / weights[:, None, None],
        "this is the 'unbiased' weighted covariance (np.cov without bias=True): the maximiser of Q divides by N_c":
            around_mu / unbiased[:, None, None],
    }


def compare_parameters(got, expected, case: str = "", what: str = "M_step", X=None, gamma=None) -> None:
    pi, mu, sigma = got
    e_pi, e_mu, e_sigma = expected
    expect.close(pi, e_pi, f"pi returned by {what}", rtol=PI_RTOL, atol=PI_ATOL, case=case,
                 why="pi_c is the average responsibility of component c: gamma[:, c].sum() / N")
    divided_by_n = "it looks divided by N instead of N_c = gamma[:, c].sum()"
    mu_scale = max(np.abs(e_mu).max(), np.sqrt(np.abs(e_sigma).max()), 1e-300)
    why = "mu_c is the gamma-weighted mean of the points: sum_i gamma_ic x_i / N_c"
    if np.allclose(mu, e_mu * e_pi[:, None], rtol=1e-6):
        why = divided_by_n
    elif X is not None and gamma is not None:
        rounded = gamma.T @ X.astype(np.float32).astype(np.float64) / gamma.sum(axis=0)[:, None]
        if not np.allclose(rounded, e_mu, rtol=MU_RTOL, atol=0) and np.allclose(mu, rounded, rtol=1e-6, atol=0):
            why = ("these are the means of the data rounded to float32 (about 7 digits): keep every computation in "
                   "float64, numpy's default")
    expect.close(mu, e_mu, f"mu returned by {what}", rtol=MU_RTOL, atol=1e-10 * mu_scale, case=case, why=why)
    why = "sigma_c is the gamma-weighted scatter around the NEW mean mu_c, divided by N_c = gamma[:, c].sum()"
    if np.allclose(sigma, e_sigma * e_pi[:, None, None], rtol=1e-6):
        why = divided_by_n
    elif X is not None and gamma is not None:
        with np.errstate(all="ignore"):
            for reason, candidate in _sigma_variants(X, gamma, mu).items():
                if np.allclose(sigma, candidate, rtol=1e-6, atol=1e-12):
                    why = reason
                    break
    expect.close(sigma, e_sigma, f"sigma returned by {what}", rtol=SIGMA_RTOL,
                 atol=1e-10 * np.abs(e_sigma).max(), case=case, why=why)


# =============================================================================== E_step
@ASSIGNMENT.check("E_step", "visible fixture", 2,
                  hints=("gamma[i, c] is proportional to pi_c times the Gaussian density of x_i under component c.",
                         "Compute the log of pi_c N(x_i | mu_c, sigma_c) for all i and c first (an (N, C) array), "
                         "then exponentiate after subtracting each row's maximum, then normalise each row."))
def e_step_visible(ctx):
    s = sample()
    X, pi, mu, sigma = s["data"], s["pi0"], s["mu0"], s["sigma0"]
    gamma = validate_gamma(ctx.run(X, pi, mu, sigma), *visible()["gamma0"].shape)
    expect.close(gamma, visible()["gamma0"], "gamma for the notebook's data and (pi0, mu0, sigma0)",
                 rtol=GAMMA_RTOL, atol=GAMMA_ATOL,
                 why=diagnose_gamma(gamma, X, pi, mu, sigma) or
                 "compare your log-density with scipy.stats.multivariate_normal(mu[c], sigma[c]).logpdf(X) "
                 "for one component, then check the normalisation over components")


@ASSIGNMENT.check("E_step", "rows are probability distributions", 2)
def e_step_rows(ctx):
    rng = ctx.rng
    for N, d, C in HIDDEN_SIZES[:3]:
        X, (pi, mu, sigma) = theory.random_problem(rng, N, d, C)
        try:
            validate_gamma(ctx.run(X, pi, mu, sigma), N, C)
        except Failed as failure:
            failure.case = failure.case or _case(X, pi, mu, sigma)
            raise


@ASSIGNMENT.check("E_step", "hidden random inputs match the reference", 3, needs_reference=True)
def e_step_hidden(ctx):
    for N, d, C in HIDDEN_SIZES:
        X, (pi, mu, sigma) = theory.random_problem(ctx.rng, N, d, C)
        expected = ctx.reference("E_step")(X, pi, mu, sigma)
        case = _case(X, pi, mu, sigma)
        try:
            gamma = validate_gamma(ctx.run(X, pi, mu, sigma), N, C)
            expect.close(gamma, expected, f"gamma (N={N}, d={d}, C={C})", rtol=GAMMA_RTOL, atol=GAMMA_ATOL,
                         why=diagnose_gamma(gamma, X, pi, mu, sigma))
        except Failed as failure:
            failure.case = failure.case or case
            raise


def _far_apart_problem(rng):
    """Three tight clusters 1000 units apart, plus points far from every mean."""
    mu = np.array([[0.0, 0.0], [1000.0, 0.0], [0.0, 1000.0]])
    sigma = np.stack([theory.random_spd(rng, 2, scale=1.0, condition=3.0) for _ in range(3)])
    pi = np.array([0.5, 0.3, 0.2])
    X = theory.sample(rng, 60, pi, mu, sigma)
    outliers = np.array([[500.0, 500.0], [-300.0, 40.0], [1200.0, 900.0], [60.0, 60.0]])
    return np.vstack([X, outliers]), pi, mu, sigma


def _scaled_problem(rng, scale: float):
    """d = 10, N = 2000: determinants of order scale**20 over- or underflow in float64."""
    X, (pi, mu, sigma) = theory.random_problem(rng, 2000, 10, 4, spread=2.0, condition=30.0)
    return X * scale, pi, mu * scale, sigma * scale**2


@ASSIGNMENT.check("E_step", "numerically hard inputs give finite, normalised gamma", 1,
                  hints=("Work with logarithms until the very end: log pi_c + log N(x_i | c).",
                         "log N needs log det(sigma_c): np.linalg.slogdet (or twice the sum of the log of "
                         "the Cholesky diagonal) never overflows, np.linalg.det does.",))
def e_step_hard_finite(ctx):
    X, pi, mu, sigma = _far_apart_problem(ctx.rng)
    validate_gamma(ctx.run(X, pi, mu, sigma), len(X), 3, "gamma for clusters 1000 apart with points far from every mean")
    # An exact property needing no reference: rescaling data, means and spreads together leaves the
    # posterior unchanged, while det(sigma) ~ scale**20 over- or underflows for d = 10.
    X, pi, mu, sigma = _scaled_problem(ctx.rng, 1.0)
    base = validate_gamma(ctx.run(X, pi, mu, sigma), len(X), 4, "gamma for N=2000, d=10")
    for scale in (1e-30, 1e30):
        what = f"gamma for N=2000, d=10 with the data scaled by {scale:g}"
        try:
            scaled = validate_gamma(ctx.run(X * scale, pi, mu * scale, sigma * scale**2), len(X), 4, what)
        except Failed as failure:
            if "non-finite" in failure.message or "sum to" in failure.message:
                # finite and normalised unscaled and for points far from every mean: what breaks is the scale
                failure.why = SCALE_NONFINITE
            raise
        expect.close(scaled, base, f"{what} (it must equal gamma for the unscaled data)", rtol=1e-5, atol=1e-9,
                     why=_why_not_scale_invariant(ctx, X, pi, mu, sigma, base))


SCALE_NONFINITE = ("gamma is finite for the unscaled data and for points far from every mean, but not at this "
                   "scale: in d=10, det(sigma) ~ scale**20 over- or underflows, and log(0) or log(inf) follows; "
                   "use np.linalg.slogdet, or twice the sum of the log of a Cholesky factor's diagonal")


def _why_not_scale_invariant(ctx, X, pi, mu, sigma, base) -> str:
    """Rescaling data, means and spreads together must not change gamma: say which term does not follow."""
    try:
        moderate = validate_gamma(ctx.run(X * 0.1, pi, mu * 0.1, sigma * 0.01), len(X), len(pi))
    except Failed:
        moderate = None
    if moderate is not None and not np.allclose(moderate, base, rtol=1e-5, atol=1e-9):
        return ("gamma changes even when everything is scaled by 0.1, a scale where every determinant is still "
                "representable: the Mahalanobis term (x - mu)^T sigma^-1 (x - mu) does not stay the same when data and "
                "spreads are rescaled together; it must use the INVERSE of sigma (np.linalg.solve(sigma_c, x - mu_c))")
    return ("gamma is right at moderate scales but not here, where det(sigma) ~ scale**20 under- or overflows: "
            "compute the log-determinant with np.linalg.slogdet (or from a Cholesky factor), and solve "
            "instead of inverting")


@ASSIGNMENT.check("E_step", "numerically hard inputs match the reference", 2, needs_reference=True)
def e_step_hard_reference(ctx):
    rng = ctx.rng
    problems = [("clusters 1000 apart with points far from every mean", _far_apart_problem(rng))]
    problems += [(f"N=2000, d=10, data scaled by {s:g}", _scaled_problem(rng, s)) for s in (1e-30, 1e30)]
    for label, (X, pi, mu, sigma) in problems:
        expected = ctx.reference("E_step")(X, pi, mu, sigma)
        try:
            gamma = validate_gamma(ctx.run(X, pi, mu, sigma), *expected.shape, f"gamma for {label}")
        except Failed as failure:
            if "far" not in label and ("non-finite" in failure.message or "sum to" in failure.message):
                failure.why = SCALE_NONFINITE
            raise
        expect.close(gamma, expected, f"gamma for {label}", rtol=1e-5, atol=1e-10,
                     why=diagnose_gamma(gamma, X, pi, mu, sigma) or (
                         "points far from every mean: compute log pi_c + log N(x_i | c) exactly (no clipping, no "
                         "added epsilon) and normalise with the max trick" if "far" in label else
                         "use slogdet / Cholesky for the log-determinant and solve instead of inv"))


# =============================================================================== M_step
@ASSIGNMENT.check("M_step", "visible fixture", 2,
                  hints=("Differentiate Q with respect to mu_c, set it to zero: a weighted mean.",
                         "Q is maximised by: pi_c = N_c / N, mu_c = sum_i gamma_ic x_i / N_c, "
                         "sigma_c = sum_i gamma_ic (x_i - mu_c)(x_i - mu_c)^T / N_c with N_c = sum_i gamma_ic."))
def m_step_visible(ctx):
    s, v = sample(), visible()
    C, d = v["mu1"].shape
    got = validate_parameters(ctx.run(s["data"], v["gamma0"]), C, d)
    compare_parameters(got, (v["pi1"], v["mu1"], v["sigma1"]), X=s["data"], gamma=v["gamma0"])


@ASSIGNMENT.check("M_step", "maximises the expected complete-data log-likelihood", 2)
def m_step_maximises(ctx):
    rng = ctx.rng
    for N, d, C in HIDDEN_SIZES[1:4]:
        X, _ = theory.random_problem(rng, N, d, C)
        gamma = theory.random_responsibilities(rng, N, C, concentration=0.5)
        pi, mu, sigma = validate_parameters(ctx.run(X, gamma), C, d)
        case = expect.format_case(X=X, gamma=gamma)
        if not np.isclose(pi.sum(), 1.0, rtol=0, atol=1e-10):
            raise Failed(f"pi sums to {pi.sum():.10g}, not 1", case=case)
        for c in range(C):
            if not theory.is_spd(sigma[c]):
                raise Failed(f"sigma[{c}] is not symmetric positive definite", case=case,
                             why="a weighted scatter matrix sum_i gamma_ic (x_i - mu_c)(x_i - mu_c)^T is")
        best = theory.expected_complete(X, pi, mu, sigma, gamma)
        slack = 1e-9 * abs(best)
        for trial in range(12):
            perturbed = _perturb(rng, pi, mu, sigma, scale=0.02 if trial % 2 else 0.2)
            value = theory.expected_complete(X, *perturbed, gamma)
            if value > best + slack:
                raise Failed(f"nearby parameters give a higher expected complete-data log-likelihood Q "
                             f"({value:.10g} > {best:.10g}): your M-step does not maximise Q",
                             why=_which_parameter(X, gamma, pi, mu, sigma, best), case=case)


_UPDATES = {
    "pi": "pi_c = N_c / N, the average responsibility of component c",
    "mu": "mu_c = sum_i gamma_ic x_i / N_c, the gamma-weighted mean",
    "sigma": "sigma_c = sum_i gamma_ic (x_i - mu_c)(x_i - mu_c)^T / N_c, around the NEW mean, divided by N_c",
}


def _which_parameter(X, gamma, pi, mu, sigma, best: float) -> str:
    """Name the parameter whose own optimum (the others fixed) raises Q the most, with the gains."""
    weights = gamma.sum(axis=0)
    opt_pi = weights / len(X)
    opt_mu = gamma.T @ X / weights[:, None]
    centred = X[None, :, :] - mu[:, None, :]
    opt_sigma = np.einsum("nc,cnd,cne->cde", gamma, centred, centred) / weights[:, None, None]
    gains = {}
    for name, params in (("pi", (opt_pi, mu, sigma)), ("mu", (pi, opt_mu, sigma)), ("sigma", (pi, mu, opt_sigma))):
        try:
            gains[name] = theory.expected_complete(X, *params, gamma) - best
        except np.linalg.LinAlgError:
            gains[name] = 0.0
    top = max(gains, key=gains.get)
    others = ", ".join(f"{name} {gain:.2g}" for name, gain in gains.items() if name != top)
    return (f"changing only {top} to its maximiser (the others fixed) raises Q by {gains[top]:.3g} "
            f"(changing {others}): check your {top} update, {_UPDATES[top]}")


def _perturb(rng, pi, mu, sigma, scale):
    C, d = mu.shape
    kind = rng.integers(3)
    pi, mu, sigma = pi.copy(), mu.copy(), sigma.copy()
    if kind == 0:
        pi = pi * np.exp(scale * rng.standard_normal(C))
        pi /= pi.sum()
    elif kind == 1:
        mu = mu + scale * rng.standard_normal((C, d)) * np.sqrt(np.diagonal(sigma, axis1=1, axis2=2))
    else:
        A = np.eye(d) + scale * rng.standard_normal((C, d, d))
        sigma = A @ sigma @ np.swapaxes(A, 1, 2)
    return pi, mu, sigma


@ASSIGNMENT.check("M_step", "hard assignments give per-cluster sample moments", 1)
def m_step_one_hot(ctx):
    rng = ctx.rng
    X, _ = theory.random_problem(rng, 40, 3, 3)
    labels = np.arange(40) % 3
    gamma = np.eye(3)[labels]
    pi, mu, sigma = validate_parameters(ctx.run(X, gamma), 3, 3)
    expected = (np.bincount(labels) / 40,
                np.stack([X[labels == c].mean(axis=0) for c in range(3)]),
                np.stack([np.cov(X[labels == c], rowvar=False, bias=True) for c in range(3)]))
    compare_parameters((pi, mu, sigma), expected, case=expect.format_case(X=X, gamma=gamma), X=X, gamma=gamma)


@ASSIGNMENT.check("M_step", "hidden random inputs match the reference", 3, needs_reference=True)
def m_step_hidden(ctx):
    for N, d, C in HIDDEN_SIZES:
        X, _ = theory.random_problem(ctx.rng, N, d, C)
        gamma = theory.random_responsibilities(ctx.rng, N, C)
        expected = ctx.reference("M_step")(X, gamma)
        got = validate_parameters(ctx.run(X, gamma), C, d)
        compare_parameters(got, expected, case=expect.format_case(X=X, gamma=gamma), X=X, gamma=gamma)


@ASSIGNMENT.check("M_step", "large and lopsided inputs match the reference", 2, needs_reference=True)
def m_step_hard(ctx):
    rng = ctx.rng
    # N = 3000, d = 10, one component with almost no responsibility, data far from the origin.
    X, _ = theory.random_problem(rng, 3000, 10, 4)
    X = X + 1e3
    gamma = theory.random_responsibilities(rng, 3000, 4, concentration=0.3)
    gamma[:, 3] *= 1e-5
    gamma /= gamma.sum(axis=1, keepdims=True)
    expected = ctx.reference("M_step")(X, gamma)
    got = validate_parameters(ctx.run(X, gamma), 4, 10)
    compare_parameters(got, expected, case="N=3000, d=10, C=4, data centred near 1000, "
                                           "component 3 with a total responsibility below 1")
