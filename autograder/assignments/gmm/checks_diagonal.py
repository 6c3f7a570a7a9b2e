"""Checks of the extension: diagonal-covariance EM in the log domain."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ...engine import Failed, expect
from ...engine.failures import CannotCheckHere
from ...engine.loops import find_loops
from . import ASSIGNMENT, theory
from .checks_steps import HIDDEN_SIZES, PI_ATOL, PI_RTOL
from .fixtures import diagonal, sample, visible

# Log-responsibilities are compared in absolute terms near 0 and relatively when very negative.
LOG_GAMMA_RTOL, LOG_GAMMA_ATOL = 1e-8, 1e-9


def _diag_problem(rng, N, d, C, spread=3.0):
    X, (pi, mu, sigma) = theory.random_problem(rng, N, d, C, spread=spread)
    var = rng.uniform(0.3, 2.0, size=(C, d))
    return X, pi, mu, var


def _theory_log_gamma(X, pi, mu, var):
    sigma = np.stack([np.diag(v) for v in var])
    log_joint = theory.log_joint(X, pi, mu, sigma)
    return log_joint - logsumexp(log_joint, axis=1, keepdims=True)


def _log_gamma_variants(X, pi, mu, var) -> dict:
    """log_gamma as the usual diagonal E-step bugs compute it, with what went wrong."""
    with np.errstate(all="ignore"):
        sq = (X[:, None, :] - mu[None, :, :]) ** 2
        log_pi = np.log(pi)[None, :]
        def normalised(log_joint):
            return log_joint - logsumexp(log_joint, axis=1, keepdims=True)
        base = -0.5 * np.log(2 * np.pi * var).sum(axis=1)[None, :]
        return {
            "sum_j log(2 pi var_cj) lacks its factor 1/2": normalised(log_pi - np.log(2 * np.pi * var).sum(axis=1)
                                                                      - 0.5 * (sq / var[None]).sum(axis=2)),
            "the squared distance is divided by var**2 instead of var":
                normalised(log_pi + base - 0.5 * (sq / var[None] ** 2).sum(axis=2)),
            "the squared distance lacks its factor 1/2": normalised(log_pi + base - (sq / var[None]).sum(axis=2)),
            "the weights pi are missing": normalised(base - 0.5 * (sq / var[None]).sum(axis=2)),
            "var is used as a standard deviation (the square of var appears where var should)":
                normalised(log_pi - np.log(2 * np.pi * var ** 2).sum(axis=1)[None, :] * 0.5
                           - 0.5 * (sq / var[None] ** 2).sum(axis=2)),
        }


def _diagnose_log_gamma(got, X, pi, mu, var) -> str:
    for reason, candidate in _log_gamma_variants(X, pi, mu, var).items():
        if candidate.shape == got.shape and np.all(np.isfinite(candidate)) and \
                np.allclose(got, candidate, rtol=1e-8, atol=1e-9):
            return reason
    return ""


def _validate_log_gamma(value, N, C, what="log_gamma returned by E_step_diag"):
    log_gamma = expect.array(value, what, shape=(N, C),
                             why_nonfinite="log responsibilities must stay finite even when the "
                                           "responsibility underflows: subtract logsumexp instead of "
                                           "taking the log of a normalised exp")
    row = logsumexp(log_gamma, axis=1)
    if np.abs(row).max() > 1e-9:
        raise Failed(f"logsumexp over each row of log_gamma should be 0 but reaches {row[np.argmax(np.abs(row))]:.3g}",
                     why="normalise in the log domain: log_gamma = log_joint - logsumexp(log_joint, axis=1, keepdims=True)")
    return log_gamma


@ASSIGNMENT.check("E_step_diag", "visible fixture", 1,
                  hints=("For a diagonal covariance, log N(x | mu, diag(var)) = "
                         "-1/2 sum_j [log(2 pi var_j) + (x_j - mu_j)^2 / var_j].",
                         "Broadcast X[:, None, :] against mu[None, :, :], or expand the square into matrix products."))
def diag_e_visible(ctx):
    s = sample()
    expected = visible()["log_gamma_diag0"]
    args = s["data"], s["pi0"], s["mu0"], diagonal(s["sigma0"])
    got = _validate_log_gamma(ctx.run(*args), *expected.shape)
    expect.close(got, expected, "log_gamma for the notebook's data", rtol=LOG_GAMMA_RTOL, atol=LOG_GAMMA_ATOL,
                 why=_diagnose_log_gamma(got, *args))


@ASSIGNMENT.check("E_step_diag", "stays finite where probabilities underflow", 1)
def diag_e_log_domain(ctx):
    rng = ctx.rng
    X, pi, mu, var = _diag_problem(rng, 40, 3, 3)
    X = np.vstack([X, mu[0] + 60.0, mu[1] - 45.0])   # responsibilities of order exp(-1000) and below
    expected = _theory_log_gamma(X, pi, mu, var)
    got = _validate_log_gamma(ctx.run(X, pi, mu, var), len(X), 3)
    expect.close(got, expected, "log_gamma with points far from every mean", rtol=LOG_GAMMA_RTOL,
                 atol=LOG_GAMMA_ATOL, why=_diagnose_log_gamma(got, X, pi, mu, var),
                 case=expect.format_case(X=X, pi=pi, mu=mu, var=var))


def _judge_loops(ctx, values_right) -> None:
    """"No loop" counts only for a function that works: an unimplemented or wrong function earns nothing."""
    try:
        values_right()
    except Failed as failure:
        raise Failed(f"{ctx.task.name} is judged for loops only once its values are right, and they are not yet: "
                     f"{failure.message}", why=failure.why or "fix the values first (see the other checks)") from None
    statements = ctx.definitions()
    if find_loops(statements, ctx.task.name) is None and ctx.executor.in_process and not ctx.has_reference:
        raise CannotCheckHere(f"the definition of {ctx.task.name} is not in the code this kernel ran; "
                              "checked when graded")
    expect.no_python_loops(statements, ctx.task.name)


@ASSIGNMENT.check("E_step_diag", "has no Python loop", 1,
                  hints=("Build the (N, C, d) array (X[:, None, :] - mu[None, :, :]) ** 2 / var[None, :, :] and sum "
                         "over its last axis: no loop over points or components is needed.",
                         "Helpers count too: the grader follows every function, class, lambda and alias your "
                         "E_step_diag reaches, so a loop hidden in one of them is still a loop."))
def diag_e_vectorised(ctx):
    def values_right():
        X, pi, mu, var = _diag_problem(ctx.rng, 12, 3, 4)
        got = _validate_log_gamma(ctx.run(X, pi, mu, var), 12, 4)
        expect.close(got, _theory_log_gamma(X, pi, mu, var), "log_gamma (N=12, d=3, C=4)",
                     rtol=LOG_GAMMA_RTOL, atol=LOG_GAMMA_ATOL)
    _judge_loops(ctx, values_right)


@ASSIGNMENT.check("E_step_diag", "hidden random inputs match the reference", 1, needs_reference=True)
def diag_e_hidden(ctx):
    for N, d, C in HIDDEN_SIZES:
        X, pi, mu, var = _diag_problem(ctx.rng, N, d, C)
        expected = ctx.reference("E_step_diag")(X, pi, mu, var)
        got = _validate_log_gamma(ctx.run(X, pi, mu, var), N, C)
        expect.close(got, expected, f"log_gamma (N={N}, d={d}, C={C})", rtol=LOG_GAMMA_RTOL, atol=LOG_GAMMA_ATOL,
                     why=_diagnose_log_gamma(got, X, pi, mu, var), case=expect.format_case(X=X, pi=pi, mu=mu, var=var))


def _validate_diag_params(value, C, d):
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise Failed("M_step_diag should return (pi, mu, var) but returned " + expect.describe_value(value))
    return (expect.array(value[0], "pi returned by M_step_diag", shape=(C,)),
            expect.array(value[1], "mu returned by M_step_diag", shape=(C, d)),
            expect.array(value[2], "var returned by M_step_diag", shape=(C, d)))


_DIAG_UPDATES = {
    "pi": "pi_c = N_c / N with N_c = gamma[:, c].sum()",
    "mu": "mu_c = sum_i gamma_ic x_i / N_c, the gamma-weighted mean",
    "var": "the diagonal M-step is the full M-step with only the variances kept: "
           "var_cj = sum_i gamma_ic (x_ij - mu_cj)^2 / N_c",
}


def _compare_diag(got, expected, case=""):
    for name, g, e, rtol in zip(("pi", "mu", "var"), got, expected, (PI_RTOL, 1e-8, 1e-7)):
        why = _DIAG_UPDATES[name]
        if name == "var" and np.allclose(g, np.sqrt(e), rtol=1e-6):
            why = "these are standard deviations: return the variances (no square root)"
        elif name == "var" and np.allclose(g, e * got[0][:, None], rtol=1e-6):
            why = "the variances look divided by N instead of N_c = gamma[:, c].sum()"
        expect.close(g, e, f"{name} returned by M_step_diag", rtol=rtol, atol=max(PI_ATOL, 1e-10 * np.abs(e).max()),
                     case=case, why=why)


@ASSIGNMENT.check("M_step_diag", "visible fixture", 1)
def diag_m_visible(ctx):
    s, v = sample(), visible()
    C, d = v["mu_diag1"].shape
    got = _validate_diag_params(ctx.run(s["data"], np.exp(v["log_gamma_diag0"])), C, d)
    _compare_diag(got, (v["pi_diag1"], v["mu_diag1"], v["var_diag1"]))


@ASSIGNMENT.check("M_step_diag", "equals the diagonal of the full M-step", 1,
                  hints=("var_cj = sum_i gamma_ic (x_ij - mu_cj)^2 / N_c: centre the points on the NEW mean "
                         "before squaring.",
                         "Far from the origin E[x^2] - mu^2 subtracts two huge, nearly equal numbers and "
                         "loses every digit; (x - mu)^2 does not."))
def diag_m_full(ctx):
    for N, d, C in HIDDEN_SIZES[1:4]:
        X, _ = theory.random_problem(ctx.rng, N, d, C)
        gamma = theory.random_responsibilities(ctx.rng, N, C)
        pi, mu, sigma = theory.m_step(X, gamma)
        got = _validate_diag_params(ctx.run(X, gamma), C, d)
        _compare_diag(got, (pi, mu, diagonal(sigma)), case=expect.format_case(X=X, gamma=gamma))
    # Far from the origin: a cheap fixture that exposes the moment formula E[x^2] - mu^2 at once.
    X, _ = theory.random_problem(ctx.rng, 40, 2, 3)
    X = X + 1e6
    gamma = theory.random_responsibilities(ctx.rng, 40, 3)
    pi, mu, sigma = theory.m_step(X, gamma)
    got = _validate_diag_params(ctx.run(X, gamma), 3, 2)
    try:
        _compare_diag(got, (pi, mu, diagonal(sigma)), case="N=40, d=2, C=3, data centred near 1e6")
    except Failed as failure:
        # The same formula was right near the origin: what differs is the offset, so digits were lost.
        failure.message = failure.message.replace("returned by M_step_diag",
                                                  "returned by M_step_diag for data centred near 1e6", 1)
        failure.why = ("your results are right near the origin but not here: the formula loses digits when the "
                       "mean is large next to the spread (E[x^2] - mu^2 subtracts two numbers near 1e12); "
                       "compute sum_i gamma_ic (x_ij - mu_cj)^2 / N_c, centred on the new mean")
        raise


@ASSIGNMENT.check("M_step_diag", "has no Python loop", 1,
                  hints=("N_c = gamma.sum(axis=0), mu = gamma.T @ X / N_c[:, None], and the variances from "
                         "np.einsum('nc,ncd->cd', gamma, (X[:, None, :] - mu[None]) ** 2): no loop is needed.",
                         "Helpers count too: the grader follows every function, class, lambda and alias your "
                         "M_step_diag reaches."))
def diag_m_vectorised(ctx):
    def values_right():
        X, _ = theory.random_problem(ctx.rng, 12, 3, 4)
        gamma = theory.random_responsibilities(ctx.rng, 12, 4)
        pi, mu, sigma = theory.m_step(X, gamma)
        got = _validate_diag_params(ctx.run(X, gamma), 4, 3)
        _compare_diag(got, (pi, mu, diagonal(sigma)), case=expect.format_case(X=X, gamma=gamma))
    _judge_loops(ctx, values_right)


@ASSIGNMENT.check("M_step_diag", "hidden inputs far from the origin match the reference", 1, needs_reference=True)
def diag_m_hidden(ctx):
    for N, d, C in HIDDEN_SIZES:
        X, _ = theory.random_problem(ctx.rng, N, d, C)
        X = X + 1e6  # E[x^2] - E[x]^2 loses 12 digits here; centring first loses none
        gamma = theory.random_responsibilities(ctx.rng, N, C)
        expected = ctx.reference("M_step_diag")(X, gamma)
        got = _validate_diag_params(ctx.run(X, gamma), C, d)
        _compare_diag(got, expected, case=expect.format_case(X=X, gamma=gamma))
