"""Checks of step_size: ADVI's adaptive step-size sequence, value by value."""

from __future__ import annotations

import numpy as np

from ...engine import Failed, expect
from . import ASSIGNMENT, theory
from .fixtures import STEP_LEARNING_RATE, visible, visible_inputs
from .judging import Isolation

# Rearranging the formulas (lr / sqrt(k) for lr * k^(-1/2 + eps), s + alpha (g^2 - s), ...) changes the
# results by at most ~1.4e-15 relative (measured on 2000 random cases): 1e-14 leaves room, and any
# real mistake (swapped alpha, no square root, a missing factor) is off by far more.
STEP_RTOL = 1e-14


def _step_why(g, s_prev, k, lr, rho, s, alpha=0.1, tau=1.0, eps=1e-16) -> str:
    g2 = np.asarray(g, dtype=float) ** 2
    s_expected, rho_expected = theory.step_size(g, s_prev, k, lr, alpha, tau, eps)[::-1]
    close = lambda a, b: np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=1e-9, atol=0)  # noqa: E731
    if not close(s, s_expected):
        if k > 1 and close(s, (1 - alpha) * g2 + alpha * np.asarray(s_prev, dtype=float)):
            return ("alpha and 1 - alpha are swapped: the NEW squared gradient gets the small weight alpha = 0.1, "
                    "the running average keeps 1 - alpha = 0.9 (s_k = alpha g_k^2 + (1 - alpha) s_(k-1))")
        if k == 1:
            return "the running average starts at the first squared gradient: s_1 = g_1^2, whatever s_prev is"
        if close(s, alpha * np.abs(g) + (1 - alpha) * np.asarray(s_prev, dtype=float)):
            return "s is a running average of SQUARED gradients: s_k = alpha g_k^2 + (1 - alpha) s_(k-1)"
        return "s_k = alpha g_k^2 + (1 - alpha) s_(k-1) for k > 1, and s_1 = g_1^2"
    alternatives = {
        "the step sizes decay with the iteration: multiply by k^(-1/2 + eps)": lr / (tau + np.sqrt(s_expected)),
        "the denominator is tau + sqrt(s_k), not tau + s_k": lr * k ** (-0.5 + eps) / (tau + s_expected),
        "rho_k uses the new s_k, not s_(k-1)": (lr * k ** (-0.5 + eps) / (tau + np.sqrt(np.asarray(s_prev, dtype=float)))
                                                if s_prev is not None else None),
        "the factor is k^(-1/2 + eps), a decreasing power of k": lr * k ** (0.5 + eps) / (tau + np.sqrt(s_expected)),
    }
    for why, value in alternatives.items():
        if value is not None and close(rho, value):
            return why
    return "rho_k = learning_rate * k^(-1/2 + eps) / (tau + sqrt(s_k)), element-wise"


def _validate(value, shape, what="step_size"):
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise Failed(f"{what} should return a tuple (rho, s) but returned {expect.describe_value(value)}")
    rho = expect.array(value[0], f"rho returned by {what}", shape=shape)
    s = expect.array(value[1], f"s returned by {what}", shape=shape)
    return rho, s


def _compare(rho, s, expected_rho, expected_s, label, case, why):
    expect.close(s, expected_s, f"s_k {label}", rtol=STEP_RTOL, atol=0.0, case=case, why=why)
    expect.close(rho, expected_rho, f"rho_k {label}", rtol=STEP_RTOL, atol=0.0, case=case, why=why)


@ASSIGNMENT.check("step_size", "visible sequence, value by value", 2,
                  hints=("Two cases: k == 1 starts the running average at g_1^2; later steps mix the new "
                         "squared gradient (weight alpha) with the previous average (weight 1 - alpha).",
                         "rho = learning_rate * k ** (-0.5 + eps) / (tau + np.sqrt(s)), element-wise."))
def step_visible(ctx):
    iso = Isolation(ctx)
    grads, v = visible_inputs()["grads"], visible()
    s_prev = None
    for k, g in enumerate(grads, start=1):
        case = expect.format_case(grad=g, s_prev=s_prev, k=k, learning_rate=STEP_LEARNING_RATE)
        rho, s = _validate(iso.run(g, s_prev, k, STEP_LEARNING_RATE), (3,))
        _compare(rho, s, v["step_rho"][k - 1], v["step_s"][k - 1], f"at iteration k = {k}", case,
                 _step_why(g, s_prev, k, STEP_LEARNING_RATE, rho, s))
        s_prev = v["step_s"][k - 1].copy()      # every step judged on its own: no error carried over


@ASSIGNMENT.check("step_size", "the first step starts the average at g_1^2, whatever s_prev", 1)
def step_first(ctx):
    iso = Isolation(ctx)
    g = np.array([[2.0, -0.5, 0.0], [30.0, 1e-3, -7.0], [0.25, 4.0, -1.0]])
    expected_rho, expected_s = theory.step_size(g, None, 1, 0.7)
    for s_prev in (None, np.full((3, 3), 100.0)):
        case = expect.format_case(grad=g, s_prev=s_prev, k=1, learning_rate=0.7)
        rho, s = _validate(iso.run(g, s_prev, 1, 0.7), (3, 3))
        _compare(rho, s, expected_rho, expected_s, f"at k = 1 with s_prev = {'None' if s_prev is None else 'all 100'}",
                 case, _step_why(g, s_prev, 1, 0.7, rho, s) if s_prev is None else
                 "at k = 1 there is no previous average: s_1 = g_1^2 (test k == 1, not s_prev)")


@ASSIGNMENT.check("step_size", "element-wise, for any alpha, tau, eps and shape", 1)
def step_parameters(ctx):
    iso = Isolation(ctx)
    rng = ctx.rng
    for k in (2, 7, 1000):
        g = rng.standard_normal((3, 3)) * np.exp(rng.uniform(-3, 3, (3, 3)))
        s_prev = np.exp(rng.uniform(-3, 3, (3, 3)))
        options = {"alpha": float(rng.uniform(0.05, 0.95)), "tau": float(rng.uniform(0.1, 5.0)),
                   "eps": float(rng.choice([1e-16, 0.1, 0.25]))}
        lr = float(rng.uniform(0.05, 2.0))
        expected_rho, expected_s = theory.step_size(g, s_prev, k, lr, **options)
        case = expect.format_case(grad=g, s_prev=s_prev, k=k, learning_rate=lr, **options)
        rho, s = _validate(iso.run(g, s_prev, k, lr, **options), (3, 3))
        _compare(rho, s, expected_rho, expected_s, f"at k = {k} with {options}", case,
                 _step_why(g, s_prev, k, lr, rho, s, **options) + " (use the arguments alpha, tau and eps, not "
                 "the numbers 0.1, 1 and 1e-16)")


@ASSIGNMENT.check("step_size", "hidden sequences match the reference", 1, needs_reference=True)
def step_hidden(ctx):
    iso = Isolation(ctx)
    rng = ctx.rng
    reference = ctx.reference("step_size")
    for shape, lr in (((3,), 0.1), ((6,), 1.5)):
        s_prev = None
        for k in range(1, 41):
            g = rng.standard_normal(shape) * np.exp(rng.uniform(-4, 6, shape))
            expected_rho, expected_s = reference(g, s_prev, k, lr)
            rho, s = _validate(iso.run(g, s_prev, k, lr), shape)
            _compare(rho, s, expected_rho, expected_s, f"at iteration k = {k} of a random sequence",
                     expect.format_case(grad=g, s_prev=s_prev, k=k, learning_rate=lr),
                     _step_why(g, s_prev, k, lr, rho, s))
            s_prev = np.asarray(expected_s, dtype=float)
