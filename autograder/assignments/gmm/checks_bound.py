"""Checks of compute_vlb and log_likelihood."""

from __future__ import annotations

import numpy as np

from ...engine import Failed, expect
from . import ASSIGNMENT, theory
from .checks_steps import HIDDEN_SIZES, _far_apart_problem, _scaled_problem
from .fixtures import sample, visible

# The bound and the log-likelihood are sums of N*C terms of order 1-100: rounding differences
# between correct implementations stay below 1e-12 relative; every real bug is far above 1e-8.
BOUND_RTOL, BOUND_ATOL = 1e-8, 1e-8


def _diagnose_bound(got: float, X, pi, mu, sigma, gamma) -> str:
    """Name the usual mistakes by recomputing the bound without each of its parts."""
    N, d = X.shape
    q_value = theory.expected_complete(X, pi, mu, sigma, gamma)
    h_value = theory.entropy(gamma)
    constant = 0.5 * N * d * np.log(2 * np.pi)
    candidates = {
        "the entropy term -sum gamma log gamma is missing": q_value,
        "the entropy term is counted twice": q_value + 2 * h_value,
        "the entropy term has the wrong sign (it is MINUS sum gamma log gamma)": q_value - h_value,
        "the constant -d/2 log(2 pi) of the Gaussian log-density is missing": q_value + h_value + constant,
        "the log(pi_c) term is missing": q_value + h_value - float(np.sum(gamma * np.log(np.where(pi > 0, pi, 1)))),
        "the log-determinant should be multiplied by 1/2": q_value + h_value - 0.5 * float(
            np.sum(gamma * np.linalg.slogdet(sigma)[1][None, :])),
    }
    for reason, value in candidates.items():
        if np.isclose(got, value, rtol=1e-9, atol=1e-9):
            return reason
    return ("L = sum_ic gamma_ic (log pi_c + log N(x_i | mu_c, sigma_c)) - sum_ic gamma_ic log gamma_ic; "
            "compare each part with a direct computation on a tiny input")


def _bound(ctx, X, pi, mu, sigma, gamma, what: str) -> float:
    return expect.scalar(ctx.run(X, pi, mu, sigma, gamma), what,
                         why_nonfinite="0 * log(0) gives NaN: use scipy.special.xlogy(gamma, gamma) "
                                       "(it defines 0 log 0 = 0) or mask the zero entries")


def _compare_bound(got, expected, what, X, pi, mu, sigma, gamma, case=""):
    try:
        expect.close(got, expected, what, rtol=BOUND_RTOL, atol=BOUND_ATOL, case=case)
    except Failed as failure:
        failure.why = _diagnose_bound(got, X, pi, mu, sigma, gamma)
        raise


# =============================================================================== compute_vlb
@ASSIGNMENT.check("compute_vlb", "visible fixture", 2,
                  hints=("The bound has two parts: the expected complete-data log-likelihood and the entropy of q.",
                         "With log_density[i, c] = log N(x_i | mu_c, sigma_c): "
                         "L = sum(gamma * (log(pi) + log_density)) - sum(gamma * log(gamma))."))
def vlb_visible(ctx):
    s, v = sample(), visible()
    X, args = s["data"], (v["pi1"], v["mu1"], v["sigma1"], v["gamma0"])
    got = _bound(ctx, X, *args, "the bound for the notebook's data")
    _compare_bound(got, float(v["vlb1"]), "the bound for the notebook's data after one E- and M-step", X, *args)


@ASSIGNMENT.check("compute_vlb", "equals the log-likelihood right after an E-step", 2)
def vlb_tight(ctx):
    for N, d, C in HIDDEN_SIZES[:4]:
        X, (pi, mu, sigma) = theory.random_problem(ctx.rng, N, d, C)
        gamma = theory.posterior(X, pi, mu, sigma)
        got = _bound(ctx, X, pi, mu, sigma, gamma, "the bound")
        ll = theory.log_likelihood(X, pi, mu, sigma)
        if not np.isclose(got, ll, rtol=BOUND_RTOL, atol=BOUND_ATOL):
            raise Failed(f"with q = the exact posterior the bound must equal the log-likelihood {ll:.10g}, "
                         f"but your compute_vlb gives {got:.10g}",
                         why=_diagnose_bound(got, X, pi, mu, sigma, gamma),
                         case=expect.format_case(X=X, pi=pi, mu=mu, sigma=sigma, gamma=gamma))


@ASSIGNMENT.check("compute_vlb", "never exceeds the log-likelihood", 1)
def vlb_below(ctx):
    for N, d, C in HIDDEN_SIZES[1:4]:
        X, (pi, mu, sigma) = theory.random_problem(ctx.rng, N, d, C, spread=1.0)
        ll = theory.log_likelihood(X, pi, mu, sigma)
        posterior = theory.posterior(X, pi, mu, sigma)
        # From nearly the posterior (tiny KL gap, so an inflated entropy shows) to far from it.
        for blend in (0.02, 0.3, 1.0):
            noise = theory.random_responsibilities(ctx.rng, N, C, concentration=1.0)
            gamma = (1 - blend) * posterior + blend * noise
            got = _bound(ctx, X, pi, mu, sigma, gamma, "the bound")
            if got > ll + 1e-9 * abs(ll):
                raise Failed(f"for a q that is not the posterior the bound {got:.10g} exceeds the "
                             f"log-likelihood {ll:.10g}; a lower bound can never do that",
                             why=_diagnose_bound(got, X, pi, mu, sigma, gamma),
                             case=expect.format_case(X=X, pi=pi, mu=mu, sigma=sigma, gamma=gamma))


@ASSIGNMENT.check("compute_vlb", "zero responsibilities (0 log 0 = 0)", 1)
def vlb_zeros(ctx):
    X, (pi, mu, sigma) = theory.random_problem(ctx.rng, 30, 2, 3)
    gamma = np.eye(3)[np.arange(30) % 3]
    got = _bound(ctx, X, pi, mu, sigma, gamma, "the bound for one-hot gamma")
    _compare_bound(got, theory.bound(X, pi, mu, sigma, gamma),
                   "the bound for one-hot gamma (the complete-data log-likelihood)", X, pi, mu, sigma, gamma,
                   case=expect.format_case(X=X, pi=pi, mu=mu, sigma=sigma, gamma=gamma))


@ASSIGNMENT.check("compute_vlb", "hidden random inputs match the reference", 2, needs_reference=True)
def vlb_hidden(ctx):
    for N, d, C in HIDDEN_SIZES:
        X, (pi, mu, sigma) = theory.random_problem(ctx.rng, N, d, C)
        gamma = theory.random_responsibilities(ctx.rng, N, C, concentration=0.5)
        gamma[gamma < 0.05] = 0.0  # exact zeros: 0 log 0 must count as 0
        gamma /= gamma.sum(axis=1, keepdims=True)
        expected = ctx.reference("compute_vlb")(X, pi, mu, sigma, gamma)
        got = _bound(ctx, X, pi, mu, sigma, gamma, f"the bound (N={N}, d={d}, C={C})")
        _compare_bound(got, expected, f"the bound (N={N}, d={d}, C={C})", X, pi, mu, sigma, gamma,
                       case=expect.format_case(X=X, pi=pi, mu=mu, sigma=sigma, gamma=gamma))


# =============================================================================== numerically hard inputs
# Rescaling data, means and spreads together (x -> s x, mu -> s mu, sigma -> s^2 sigma) is exact:
# every log-density drops by d log s, so the bound and the log-likelihood drop by N d log s. In d = 10,
# det(sigma) ~ s**20 under- or overflows for s = 1e-30 or 1e30, while the log-determinant does not.
HARD_SCALES = (1e-30, 1e30)
DET_NONFINITE = ("it is finite for the unscaled data but not here, where det(sigma) ~ scale**20 under- or overflows "
                 "in d=10 (log(0) = -inf, log(inf) = inf): use np.linalg.slogdet, or twice the sum of the log "
                 "of a Cholesky factor's diagonal")


LL_UNDERFLOW = ("log(sum(exp(...))) underflows to log(0) = -inf for points far from every mean; use "
                "scipy.special.logsumexp (it applies the max trick)")


def _hard_inputs(ctx, what: str, compute, exponentiates: bool = False) -> None:
    """Check that ``compute`` (the student's function on one input) follows the exact rescaling law.

    ``exponentiates``: the function sums exponentials (the log-likelihood), so a non-finite result
    may also be exp underflowing; told apart by trying points far from every mean at scale 1."""
    X, pi, mu, sigma = _scaled_problem(ctx.rng, 1.0)
    N, d = X.shape
    base = expect.scalar(compute(X, pi, mu, sigma), f"{what} for N={N}, d={d}")
    for scale in HARD_SCALES:
        where = f"{what} for N={N}, d={d} with the data scaled by {scale:g}"
        try:
            got = expect.scalar(compute(X * scale, pi, mu * scale, sigma * scale**2), where,
                                why_nonfinite=DET_NONFINITE)
        except Failed as failure:
            if exponentiates and failure.why == DET_NONFINITE:
                far = compute(*_far_apart_problem(np.random.default_rng(0)))
                if not np.isfinite(expect.scalar(far, "the log-likelihood", finite=False)):
                    failure.why = LL_UNDERFLOW
            raise
        expect.close(got, base - N * d * np.log(scale), f"{where} (it must equal the unscaled value minus "
                     "N d log(scale))", rtol=1e-10, atol=1e-6,
                     why="rescaling data, means and spreads together changes every log-density by -d log(scale) "
                         "exactly; a result that does not follow usually comes from det(sigma) under- or "
                         "overflowing: use np.linalg.slogdet")


@ASSIGNMENT.check("compute_vlb", "numerically hard inputs", 1,
                  hints=("log N needs log det(sigma_c): np.linalg.slogdet never over- or underflows, "
                         "np.log(np.linalg.det(...)) does in 10 dimensions.",))
def vlb_hard(ctx):
    gamma = theory.random_responsibilities(np.random.default_rng(ctx.check.seed + 1), 2000, 4, concentration=0.5)
    _hard_inputs(ctx, "the bound", lambda X, pi, mu, sigma: ctx.run(X, pi, mu, sigma, gamma))


# =============================================================================== log_likelihood
def diagnose_ll(got: float, X, pi, mu, sigma) -> str:
    """Name the usual log-likelihood mistakes by recomputing it with each of them."""
    from scipy.special import logsumexp
    with np.errstate(all="ignore"):
        log_joint = theory.log_joint(X, pi, mu, sigma)
        density = theory.log_densities(X, mu, sigma)
        candidates = {
            "logsumexp runs over the wrong axis: sum over components (axis=1) inside the log, then over points":
                float(logsumexp(log_joint, axis=0).sum()),
            "the weights pi are missing: log sum_c pi_c N(x_i | c)": float(logsumexp(density, axis=1).sum()),
            "it averages over the points instead of summing": float(logsumexp(log_joint, axis=1).mean()),
            "it sums the logs over components (sum_c log(pi_c N_c)) instead of taking the log of the sum over "
            "components": float(log_joint.sum()),
            "it takes the log of the largest term only (max instead of logsumexp)": float(log_joint.max(axis=1).sum()),
        }
    for reason, value in candidates.items():
        if np.isfinite(value) and np.isclose(got, value, rtol=1e-9, atol=1e-9):
            return reason
    return "log p(X) = sum_i log sum_c pi_c N(x_i | mu_c, sigma_c): the sum over components is inside the log"


@ASSIGNMENT.check("log_likelihood", "visible fixture", 1,
                  hints=("log p(X) = sum_i log sum_c pi_c N(x_i | mu_c, sigma_c).",
                         "Build the (N, C) array of log pi_c + log N(x_i | c) and apply "
                         "scipy.special.logsumexp over components, then sum over points."))
def ll_visible(ctx):
    s = sample()
    args = s["data"], s["pi0"], s["mu0"], s["sigma0"]
    got = expect.scalar(ctx.run(*args), "the log-likelihood")
    expect.close(got, float(visible()["ll0"]), "the log-likelihood of the notebook's data at (pi0, mu0, sigma0)",
                 rtol=BOUND_RTOL, atol=BOUND_ATOL, why=diagnose_ll(got, *args))


@ASSIGNMENT.check("log_likelihood", "matches its definition on random inputs", 1)
def ll_definition(ctx):
    for N, d, C in HIDDEN_SIZES[:4]:
        X, params = theory.random_problem(ctx.rng, N, d, C)
        got = expect.scalar(ctx.run(X, *params), "the log-likelihood")
        expect.close(got, theory.log_likelihood(X, *params), f"the log-likelihood (N={N}, d={d}, C={C})",
                     rtol=BOUND_RTOL, atol=BOUND_ATOL, why=diagnose_ll(got, X, *params),
                     case=expect.format_case(X=X, pi=params[0], mu=params[1], sigma=params[2]))


@ASSIGNMENT.check("log_likelihood", "points far from every mean", 1)
def ll_far(ctx):
    X, pi, mu, sigma = _far_apart_problem(ctx.rng)
    got = expect.scalar(ctx.run(X, pi, mu, sigma), "the log-likelihood with points far from every mean",
                        why_nonfinite=LL_UNDERFLOW)
    expect.close(got, theory.log_likelihood(X, pi, mu, sigma), "the log-likelihood with points far from every mean",
                 rtol=BOUND_RTOL, atol=BOUND_ATOL, why=diagnose_ll(got, X, pi, mu, sigma))


@ASSIGNMENT.check("log_likelihood", "numerically hard inputs", 1,
                  hints=("log N needs log det(sigma_c): np.linalg.slogdet never over- or underflows, "
                         "np.log(np.linalg.det(...)) does in 10 dimensions.",))
def ll_hard(ctx):
    _hard_inputs(ctx, "the log-likelihood", lambda *args: ctx.run(*args), exponentiates=True)


@ASSIGNMENT.check("log_likelihood", "hidden random inputs match the reference", 1, needs_reference=True)
def ll_hidden(ctx):
    for N, d, C in HIDDEN_SIZES:
        X, params = theory.random_problem(ctx.rng, N, d, C, spread=6.0)
        expected = ctx.reference("log_likelihood")(X, *params)
        got = expect.scalar(ctx.run(X, *params), "the log-likelihood")
        expect.close(got, expected, f"the log-likelihood (N={N}, d={d}, C={C})", rtol=BOUND_RTOL, atol=BOUND_ATOL,
                     why=diagnose_ll(got, X, *params),
                     case=expect.format_case(X=X, pi=params[0], mu=params[1], sigma=params[2]))
