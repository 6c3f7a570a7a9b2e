"""What the prankster checks share: validating returned values, tolerances, diagnoses, stand-ins.

Also used by the ``hard_em`` assignment, whose functions are the same with a ``hard_EM`` flag.
"""

from __future__ import annotations

import numpy as np

from ...engine import Failed, expect
from ...engine.context import Spy
from . import theory

# Tolerances, per quantity.
# Log-probabilities are sums of H*W squared residuals over 2 s^2; computing them by expanding the
# square (||x||^2 - 2<x, m> + ||m||^2) or directly differs by ~1e-13 relative. Every real bug (a
# missing constant, s for s^2, a window off by one column) is off by far more than 1e-9.
LL_RTOL = 1e-9
BOUND_RTOL = 1e-9
# Posteriors are probabilities: 1e-12 absolute is below anything that matters; 1e-7 relative
# accepts any order of summation while a wrong normalisation is off by O(1).
Q_RTOL, Q_ATOL = 1e-7, 1e-12
# M-step: weighted averages of grey levels (0..255).
FB_RTOL, FB_ATOL = 1e-8, 1e-8
S_RTOL = 1e-8
A_RTOL, A_ATOL = 1e-9, 1e-13
# The expanded-square formulation leaves about 1e-6 of noise level on an exact fit: s below 1e-4
# grey levels is "zero".
EXACT_FIT_S = 1e-4

NONFINITE_Q = ("exp of a log-probability of order -1e5 underflows to 0 in every position, so the column sum is 0 "
               "and q = 0/0 = NaN; subtract each column's maximum (over positions, for every image) before "
               "exponentiating")


def case(**values) -> str:
    return expect.format_case(**values)


# ----------------------------------------------------------------------------- validation
def validate_ll(value, n_positions: int, K: int, what: str = "ll returned by calculate_log_probability"):
    return expect.array(value, what, shape=(n_positions, K),
                        why_nonfinite="log-probabilities are finite for s > 0: take the log of the density "
                                      "formula (a sum of squares over 2 s^2), never the log of a density that "
                                      "exp() has already underflowed to 0")


def validate_q(value, n_positions: int, K: int, what: str = "q returned by run_e_step") -> np.ndarray:
    q = expect.array(value, what, shape=(n_positions, K), why_nonfinite=NONFINITE_Q)
    if q.min() < -1e-12 or q.max() > 1 + 1e-12:
        raise Failed(f"{what} has entries outside [0, 1] (min {q.min():.3g}, max {q.max():.3g})",
                     why="q[:, k] is a probability distribution over the positions of the face in image k")
    sums = q.sum(axis=0)
    bad = np.flatnonzero(np.abs(sums - 1) > 1e-8)
    if bad.size:
        k = int(bad[0])
        why = "normalise every column: q[:, k] = joint[:, k] / joint[:, k].sum() (a sum over positions, axis=0)"
        if q.shape[0] == q.shape[1] or np.allclose(q.sum(axis=1), 1, atol=1e-8):
            why = "the rows sum to 1 instead of the columns: normalise over positions (axis=0), not over images"
        elif sums[k] == 0:
            why = NONFINITE_Q
        raise Failed(f"{len(bad)} column(s) of {what.split(' returned')[0]} do not sum to 1 "
                     f"(column {k} sums to {sums[k]:.6g})", why=why)
    return q


def bound_value(value, what: str = "the bound returned by calculate_lower_bound") -> float:
    return expect.scalar(value, what,
                         why_nonfinite="0 * log(0) is NaN in numpy: terms with q = 0 must count as 0 (mask them, "
                                       "or use scipy.special.xlogy); where the prior a is 0, q is 0 too, so "
                                       "q * log(a) must not be evaluated as 0 * (-inf)")


def validate_m_step(value, H: int, W: int, w: int, what: str = "run_m_step", exact_fit: bool = False):
    """(F, B, s, a) after checking types, shapes, finiteness, s > 0 (s >= 0 for an exact fit) and sum(a) = 1."""
    if not isinstance(value, (tuple, list)) or len(value) != 4:
        raise Failed(f"{what} should return a tuple (F, B, s, a) but returned {expect.describe_value(value)}")
    F = expect.array(value[0], f"F returned by {what}", shape=(H, w))
    B = expect.array(value[1], f"B returned by {what}", shape=(H, W),
                     why_nonfinite="a background pixel that the face covers in every image has weight 0, and "
                                   "0/0 = NaN: keep a finite value there (any value is optimal; the plain average "
                                   "of the images at that pixel is a good one)")
    s = expect.scalar(value[2], f"s returned by {what}")
    a = expect.array(value[3], f"a returned by {what}", shape=(W - w + 1,))
    if not (s >= 0 if exact_fit else s > 0):
        raise Failed(f"s returned by {what} is {s:.6g}; a standard deviation must be positive",
                     why="s^2 is the q-weighted mean of the squared residuals over all H*W*K pixels: take the "
                         "square root of that mean")
    if abs(a.sum() - 1) > 1e-9 or a.min() < 0:
        raise Failed(f"a returned by {what} is not a probability distribution (it sums to {a.sum():.10g}, "
                     f"min {a.min():.3g})",
                     why="a[d] is the share of the images expected at position d: q.sum(axis=1) / K")
    return F, B, s, a


def compare_m_step(got, expected, q, W: int, w: int, case_text: str = "", what: str = "run_m_step") -> None:
    """Compare (F, B, s, a) with ``expected``; B only where some image shows the background."""
    F, B, s, a = got
    eF, eB, es, ea = (np.asarray(v, dtype=float) for v in expected)
    expect.close(a, ea, f"a returned by {what}", rtol=A_RTOL, atol=A_ATOL, case=case_text,
                 why="a[d] = sum_k q[d, k] / K: the expected share of the images with the face at position d")
    why_F = "F[i, m] = sum_k sum_d q[d, k] X[i, m + d, k] / K: the q-weighted average of the windows the face may occupy"
    if np.allclose(F, np.flip(eF, axis=1), rtol=1e-6, atol=1e-6) and not np.allclose(eF, np.flip(eF, axis=1)):
        why_F = "F looks mirrored: face column m sits at image column m + d"
    expect.close(F, eF, f"F returned by {what}", rtol=FB_RTOL, atol=FB_ATOL, case=case_text, why=why_F)
    # B is compared where the images show the background with a weight of at least 1e-6 image: below
    # that its value hardly affects anything, and different (correct) ways of summing the weights
    # may round it differently.
    seen = theory.background_weight(q, W, w) > 1e-6
    expect.close(B[:, seen], eB[:, seen], f"B returned by {what} (columns some image shows as background)",
                 rtol=FB_RTOL, atol=FB_ATOL, case=case_text,
                 why="B[i, j] averages X[i, j, k] over the images and positions where column j is NOT under the face, "
                     "weighted by q[d, k]; divide by the total weight of those (d, k), not by K")
    expect.close(s, es, f"s returned by {what}", rtol=S_RTOL, atol=1e-9 * max(1.0, float(es)), case=case_text,
                 why="s^2 = sum_k sum_d q[d, k] ||X_k - model_d||^2 / (H W K), with the NEW F and B in model_d "
                     "(update a, F, B first, then s)")


def scripted_log_probability(table) -> Spy:
    """A stand-in for calculate_log_probability that returns ``table`` (a copy) whatever it is given."""
    table = np.asarray(table, dtype=float)
    return Spy("calculate_log_probability", lambda *args, **kwargs: table.copy())


def run_with_table(ctx, table, make_args, what_kind: str = ""):
    """Run the function under check with calculate_log_probability scripted to return ``table``.

    ``make_args(table_used) -> (args, kwargs)`` builds the call's remaining arguments (after X, F,
    B, s) from the table the function will work with. A function that computes the
    log-probabilities itself instead of calling calculate_log_probability is correct too: then it
    is run again with arguments built from the true log-probabilities of its inputs, and judged on
    those. Returns (value, table_used).
    """
    n_positions, K = np.shape(table)
    X, F, B, s = shapes_for_table(ctx.rng, n_positions, K)
    spy = scripted_log_probability(table)
    args, kwargs = make_args(np.asarray(table, dtype=float))
    value = ctx.run(X, F, B, s, *args, standins={"calculate_log_probability": spy}, **kwargs)
    if spy.calls:
        return value, np.asarray(table, dtype=float)
    used = theory.log_probability(X, F, B, s)
    args, kwargs = make_args(used)
    return ctx.run(X, F, B, s, *args, **kwargs), used


def shapes_for_table(rng, n_positions: int, K: int, H: int = 2, w: int = 2):
    """Inputs (X, F, B, s) whose shapes agree with an (n_positions, K) log-probability table."""
    W = n_positions + w - 1
    X = rng.integers(0, 256, (H, W, K)).astype(float)
    return X, rng.uniform(0, 255, (H, w)), rng.uniform(0, 255, (H, W)), 50.0


def diagnose_ll(got, X, F, B, s) -> str:
    """Name the usual mistakes in a log-probability table by recomputing it with each of them."""
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    w = np.shape(F)[1]
    right = theory.log_probability(X, F, B, s)
    squared = (right + H * W * (np.log(s) + 0.5 * np.log(2 * np.pi))) * (-2 * s * s)   # residual sums
    n_pixels = H * W
    candidates = {
        "the normalising constant -H W (log s + log(2 pi) / 2) is missing": -squared / (2 * s * s),
        "the log(2 pi) / 2 per pixel is missing": right + n_pixels * 0.5 * np.log(2 * np.pi),
        "the -log s per pixel is missing": right + n_pixels * np.log(s),
        "the constant is counted once per image, not once per pixel (H * W of them)":
            right + (n_pixels - 1) * (np.log(s) + 0.5 * np.log(2 * np.pi)),
        "the squared residuals are divided by s^2 instead of 2 s^2": right - squared / (2 * s * s),
        "s is used as a variance: the residuals are divided by 2 s and the constant has log(s) / 2":
            -n_pixels * (0.5 * np.log(s) + 0.5 * np.log(2 * np.pi)) - squared / (2 * s),
        "the squared residuals are divided by 2 s instead of 2 s^2 (s is the standard deviation)":
            right + squared / (2 * s * s) - squared / (2 * s),
    }
    got = np.asarray(got, dtype=float)
    for reason, value in candidates.items():
        value = np.asarray(value)
        if value.shape == got.shape and np.allclose(got, value, rtol=1e-8, atol=1e-8):
            return reason
    if got.shape == right.shape and W - w >= 1 and (np.allclose(got[:-1], right[1:], rtol=1e-8, atol=1e-8)
                                                   or np.allclose(got[1:], right[:-1], rtol=1e-8, atol=1e-8)):
        return "the face is pasted one column off: face column m belongs at image column m + d"
    return ("log p(X_k | d) = sum over the H*W pixels of log N(X[i, j, k] | model_d[i, j], s^2), where model_d is "
            "B with F pasted over columns d .. d + w - 1; compare one entry with a direct computation")
