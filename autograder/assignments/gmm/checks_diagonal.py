"""Checks of the extension: diagonal-covariance EM in the log domain."""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ...engine import Failed, expect
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
    got = _validate_log_gamma(ctx.run(s["data"], s["pi0"], s["mu0"], diagonal(s["sigma0"])), *expected.shape)
    expect.close(got, expected, "log_gamma for the notebook's data", rtol=LOG_GAMMA_RTOL, atol=LOG_GAMMA_ATOL)


@ASSIGNMENT.check("E_step_diag", "stays finite where probabilities underflow", 1)
def diag_e_log_domain(ctx):
    rng = ctx.rng
    X, pi, mu, var = _diag_problem(rng, 40, 3, 3)
    X = np.vstack([X, mu[0] + 60.0, mu[1] - 45.0])   # responsibilities of order exp(-1000) and below
    expected = _theory_log_gamma(X, pi, mu, var)
    got = _validate_log_gamma(ctx.run(X, pi, mu, var), len(X), 3)
    expect.close(got, expected, "log_gamma with points far from every mean", rtol=LOG_GAMMA_RTOL,
                 atol=LOG_GAMMA_ATOL, why="stay in the log domain: log_gamma = log_joint - logsumexp(log_joint)",
                 case=expect.format_case(X=X, pi=pi, mu=mu, var=var))


@ASSIGNMENT.check("E_step_diag", "has no Python loop", 1)
def diag_e_vectorised(ctx):
    expect.no_python_loops(ctx.sources_with_helpers(), "E_step_diag")


@ASSIGNMENT.check("E_step_diag", "hidden random inputs match the reference", 1, needs_reference=True)
def diag_e_hidden(ctx):
    for N, d, C in HIDDEN_SIZES:
        X, pi, mu, var = _diag_problem(ctx.rng, N, d, C)
        expected = ctx.reference("E_step_diag")(X, pi, mu, var)
        got = _validate_log_gamma(ctx.run(X, pi, mu, var), N, C)
        expect.close(got, expected, f"log_gamma (N={N}, d={d}, C={C})", rtol=LOG_GAMMA_RTOL, atol=LOG_GAMMA_ATOL,
                     case=expect.format_case(X=X, pi=pi, mu=mu, var=var))


def _validate_diag_params(value, C, d):
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise Failed("M_step_diag should return (pi, mu, var) but returned " + expect.describe_value(value))
    return (expect.array(value[0], "pi returned by M_step_diag", shape=(C,)),
            expect.array(value[1], "mu returned by M_step_diag", shape=(C, d)),
            expect.array(value[2], "var returned by M_step_diag", shape=(C, d)))


def _compare_diag(got, expected, case=""):
    for name, g, e, rtol in zip(("pi", "mu", "var"), got, expected, (PI_RTOL, 1e-8, 1e-7)):
        expect.close(g, e, f"{name} returned by M_step_diag", rtol=rtol, atol=max(PI_ATOL, 1e-10 * np.abs(e).max()),
                     case=case, why="the diagonal M-step is the full M-step with only the variances kept: "
                                    "var_cj = sum_i gamma_ic (x_ij - mu_cj)^2 / N_c")


@ASSIGNMENT.check("M_step_diag", "visible fixture", 1)
def diag_m_visible(ctx):
    s, v = sample(), visible()
    C, d = v["mu_diag1"].shape
    got = _validate_diag_params(ctx.run(s["data"], np.exp(v["log_gamma_diag0"])), C, d)
    _compare_diag(got, (v["pi_diag1"], v["mu_diag1"], v["var_diag1"]))


@ASSIGNMENT.check("M_step_diag", "equals the diagonal of the full M-step", 1)
def diag_m_full(ctx):
    for N, d, C in HIDDEN_SIZES[1:4]:
        X, _ = theory.random_problem(ctx.rng, N, d, C)
        gamma = theory.random_responsibilities(ctx.rng, N, C)
        pi, mu, sigma = theory.m_step(X, gamma)
        got = _validate_diag_params(ctx.run(X, gamma), C, d)
        _compare_diag(got, (pi, mu, diagonal(sigma)), case=expect.format_case(X=X, gamma=gamma))


@ASSIGNMENT.check("M_step_diag", "has no Python loop", 1)
def diag_m_vectorised(ctx):
    expect.no_python_loops(ctx.sources_with_helpers(), "M_step_diag")


@ASSIGNMENT.check("M_step_diag", "hidden inputs far from the origin match the reference", 1, needs_reference=True)
def diag_m_hidden(ctx):
    for N, d, C in HIDDEN_SIZES:
        X, _ = theory.random_problem(ctx.rng, N, d, C)
        X = X + 1e6  # E[x^2] - E[x]^2 loses 12 digits here; centring first loses none
        gamma = theory.random_responsibilities(ctx.rng, N, C)
        expected = ctx.reference("M_step_diag")(X, gamma)
        got = _validate_diag_params(ctx.run(X, gamma), C, d)
        _compare_diag(got, expected, case=expect.format_case(X=X, gamma=gamma))
