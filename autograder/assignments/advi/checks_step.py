"""Checks of step_size: ADVI's adaptive step-size sequence, value by value."""

from __future__ import annotations

import numpy as np

from ...engine import Failed, expect
from . import theory
from .fixtures import STEP_LEARNING_RATE, visible, visible_inputs
from .judging import check, explanation, validate_array

# Rearranging the formulas (lr / sqrt(k) for lr * k^(-1/2 + eps), s + alpha (g^2 - s), ...) changes the
# results by at most ~1.4e-15 relative (measured on 2000 random cases): 1e-14 leaves room, and any
# real mistake (swapped alpha, no square root, a missing factor) is off by far more.
STEP_RTOL = 1e-14


WHY_ALPHA_SWAPPED = explanation(
    "step_alpha_swapped",
    "alpha and 1 - alpha are swapped: the NEW squared gradient gets the small weight alpha = 0.1, the running "
    "average keeps 1 - alpha = 0.9 (s_k = alpha g_k^2 + (1 - alpha) s_(k-1))")
WHY_FIRST_STEP = explanation(
    "step_first", "the running average starts at the first squared gradient: s_1 = g_1^2, whatever s_prev is")
WHY_FIRST_BY_K = explanation(
    "step_first_by_k", "at k = 1 there is no previous average: s_1 = g_1^2 (test k == 1, not s_prev)")
WHY_ABS = explanation("step_abs", "s is a running average of SQUARED gradients: s_k = alpha g_k^2 + (1 - alpha) s_(k-1)")
WHY_NO_DECAY = explanation("step_no_decay", "the step sizes decay with the iteration: multiply by k^(-1/2 + eps)")
WHY_NO_SQRT = explanation("step_no_sqrt", "the denominator is tau + sqrt(s_k), not tau + s_k")
WHY_OLD_S = explanation("step_old_s", "rho_k uses the new s_k, not s_(k-1)")
WHY_GROWING = explanation("step_growing", "the factor is k^(-1/2 + eps), a decreasing power of k")
WHY_ARGUMENTS = explanation(
    "step_arguments", "use the arguments alpha, tau and eps, not the numbers 0.1, 1 and 1e-16")


def _step_why(g, s_prev, k, lr, rho, s, alpha=0.1, tau=1.0, eps=1e-16) -> str:
    g2 = np.asarray(g, dtype=float) ** 2
    s_expected, rho_expected = theory.step_size(g, s_prev, k, lr, alpha, tau, eps)[::-1]
    close = lambda a, b: np.shape(a) == np.shape(b) and np.allclose(a, b, rtol=1e-9, atol=0)  # noqa: E731
    if not close(s, s_expected):
        if k > 1 and close(s, (1 - alpha) * g2 + alpha * np.asarray(s_prev, dtype=float)):
            return WHY_ALPHA_SWAPPED
        if k == 1:
            return WHY_FIRST_STEP
        if close(s, alpha * np.abs(g) + (1 - alpha) * np.asarray(s_prev, dtype=float)):
            return WHY_ABS
        if (alpha, tau, eps) != (0.1, 1.0, 1e-16) and close(s, theory.step_size(g, s_prev, k, lr)[1]):
            return WHY_ARGUMENTS
        return "s_k = alpha g_k^2 + (1 - alpha) s_(k-1) for k > 1, and s_1 = g_1^2"
    alternatives = {
        WHY_NO_DECAY: lr / (tau + np.sqrt(s_expected)),
        WHY_NO_SQRT: lr * k ** (-0.5 + eps) / (tau + s_expected),
        WHY_OLD_S: (lr * k ** (-0.5 + eps) / (tau + np.sqrt(np.asarray(s_prev, dtype=float)))
                    if s_prev is not None else None),
        WHY_GROWING: lr * k ** (0.5 + eps) / (tau + np.sqrt(s_expected)),
    }
    if (alpha, tau, eps) != (0.1, 1.0, 1e-16):
        alternatives[WHY_ARGUMENTS] = theory.step_size(g, s_prev, k, lr)[0]
    for why, value in alternatives.items():
        if value is not None and (k > 1 or why not in (WHY_NO_DECAY, WHY_GROWING)) and close(rho, value):
            return why
    return "rho_k = learning_rate * k^(-1/2 + eps) / (tau + sqrt(s_k)), element-wise"


def _validate(value, shape, what="step_size"):
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise Failed(f"{what} should return a tuple (rho, s) but returned {expect.describe_value(value)}")
    rho = validate_array(value[0], f"rho returned by {what}", shape)
    s = validate_array(value[1], f"s returned by {what}", shape)
    return rho, s


def _compare(rho, s, expected_rho, expected_s, label, case, why):
    expect.close(s, expected_s, f"s_k {label}", rtol=STEP_RTOL, atol=0.0, case=case, why=why)
    expect.close(rho, expected_rho, f"rho_k {label}", rtol=STEP_RTOL, atol=0.0, case=case, why=why)


STEP_HINTS = ("Two cases: k == 1 starts the running average at g_1^2; later steps mix the new squared gradient "
              "(weight alpha) with the previous average (weight 1 - alpha).",
              "rho = learning_rate * k ** (-0.5 + eps) / (tau + np.sqrt(s)), element-wise.")


@check("step_size", "visible sequence, value by value", 2, hints=STEP_HINTS)
def step_visible(ctx, iso):
    grads, v = visible_inputs()["grads"], visible()
    s_prev = None
    for k, g in enumerate(grads, start=1):
        case = expect.format_case(grad=g, s_prev=s_prev, k=k, learning_rate=STEP_LEARNING_RATE)
        rho, s = _validate(iso.run(g, s_prev, k, STEP_LEARNING_RATE), (3,))
        _compare(rho, s, v["step_rho"][k - 1], v["step_s"][k - 1], f"at iteration k = {k}", case,
                 _step_why(g, s_prev, k, STEP_LEARNING_RATE, rho, s))
        s_prev = v["step_s"][k - 1].copy()      # every step judged on its own: no error carried over


@check("step_size", "the first step starts the average at g_1^2, whatever s_prev", 1,
       hints=("Decide the first step by k == 1, not by s_prev: a caller may pass any s_prev at k = 1.",))
def step_first(ctx, iso):
    g = np.array([[2.0, -0.5, 0.0], [30.0, 1e-3, -7.0], [0.25, 4.0, -1.0]])
    expected_rho, expected_s = theory.step_size(g, None, 1, 0.7)
    for s_prev in (None, np.full((3, 3), 100.0)):
        case = expect.format_case(grad=g, s_prev=s_prev, k=1, learning_rate=0.7)
        rho, s = _validate(iso.run(g, s_prev, 1, 0.7), (3, 3))
        used_s_prev = s_prev is not None and np.allclose(s, 0.1 * g**2 + 0.9 * s_prev, rtol=1e-9, atol=0)
        _compare(rho, s, expected_rho, expected_s, f"at k = 1 with s_prev = {'None' if s_prev is None else 'all 100'}",
                 case, WHY_FIRST_BY_K if used_s_prev else _step_why(g, s_prev, 1, 0.7, rho, s))


@check("step_size", "element-wise, for any alpha, tau, eps and shape", 1,
       hints=("Use the arguments alpha, tau and eps, not the numbers 0.1, 1 and 1e-16.",
              "Every operation is element-wise: the same code serves a (3,) and a (3, 3) gradient."))
def step_parameters(ctx, iso):
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
                 _step_why(g, s_prev, k, lr, rho, s, **options))


@check("step_size", "hidden sequences match the reference", 1, needs_reference=True)
def step_hidden(ctx, iso):
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
