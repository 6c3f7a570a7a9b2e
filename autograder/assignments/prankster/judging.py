"""What the prankster checks share: validating returned values, tolerances, comparisons, stand-ins.

Also used by the ``hard_em`` assignment, whose functions are the same with a ``hard_EM`` flag.
Every explanation of a wrong value comes from ``diagnosis`` (shown only when its symptom is in the
returned value); where nothing is diagnosed the feedback restates the definition.
"""

from __future__ import annotations

import numpy as np

from ...engine import Failed, Spy, StudentCodeFailed, expect
from . import diagnosis, theory

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

Q_DEFINITION = ("q[d, k] = a[d] exp(ll[d, k]) / sum_d' a[d'] exp(ll[d', k]): for every image k a distribution "
                "over the positions d")


def case(**values) -> str:
    return expect.format_case(**values)


def run_visible(ctx, *args, **kwargs):
    """``ctx.run`` on the notebook's integer fixtures: an in-place update of an integer input fails
    there with numpy's casting error, which is explained as such."""
    try:
        return ctx.run(*args, **kwargs)
    except StudentCodeFailed as failure:
        last = failure.outcome
        if last is not None and last.error_type == "UFuncTypeError" and "same_kind" in last.message:
            failure.why = diagnosis.explain("in_place_integer")
        raise


# ----------------------------------------------------------------------------- validation
def validate_ll(value, n_positions: int, K: int, what: str = "ll returned by calculate_log_probability",
                right=None):
    """``value`` as a (P, K) float array; ``right`` (the true table) lets a non-finite one be explained."""
    ll = expect.array(value, what, shape=(n_positions, K), finite=False)
    if not np.all(np.isfinite(ll)):
        bad = np.argwhere(~np.isfinite(ll))
        first = tuple(int(i) for i in bad[0])
        why = diagnosis.why_nonfinite_ll(ll, right) if right is not None else diagnosis.why_nonfinite_ll(ll, ll)
        raise Failed(f"{what} contains {len(bad)} non-finite value(s) (first: {ll[first]!r} at index {first})",
                     why=why)
    return ll


def validate_q(value, n_positions: int, K: int, what: str = "q returned by run_e_step", ll=None,
               a=None) -> np.ndarray:
    """``value`` as a posterior: finite, in [0, 1], columns summing to 1.

    ``ll`` (the log-probabilities the function worked with) and ``a`` let a failure be diagnosed."""
    q = expect.array(value, what, shape=(n_positions, K), finite=False)
    name = what.split(" returned")[0].split(" for ")[0]
    why = (diagnosis.diagnose_q(q, ll, a) if ll is not None else None) or Q_DEFINITION
    if not np.all(np.isfinite(q)):
        bad = np.argwhere(~np.isfinite(q))
        first = tuple(int(i) for i in bad[0])
        raise Failed(f"{what} contains {len(bad)} non-finite value(s) (first: {q[first]!r} at index {first})",
                     why=why if why != Q_DEFINITION else "NaN comes from 0/0, inf - inf or 0 * inf: print the "
                                                          "intermediate arrays of your E-step on this input")
    if q.min() < -1e-12 or q.max() > 1 + 1e-12:
        raise Failed(f"{what} has entries outside [0, 1] (min {q.min():.3g}, max {q.max():.3g})", why=why)
    sums = q.sum(axis=0)
    bad = np.flatnonzero(np.abs(sums - 1) > 1e-8)
    if bad.size:
        k = int(bad[0])
        if why == Q_DEFINITION and np.allclose(q.sum(axis=1), 1, rtol=0, atol=1e-8) \
                and 1 < q.shape[0] != q.shape[1]:
            why = diagnosis.explain("q_wrong_axis")
        raise Failed(f"{len(bad)} column(s) of {name} do not sum to 1 (column {k} sums to {sums[k]:.6g})", why=why)
    return q


def compare_q(got, expected, what: str, ll, a, case_text: str = "") -> None:
    """``got`` equals the posterior ``expected`` (of log-probabilities ``ll`` and prior ``a``)."""
    why = diagnosis.diagnose_q(got, ll, a) or Q_DEFINITION
    expect.close(got, expected, what, rtol=Q_RTOL, atol=Q_ATOL, why=why, case=case_text)


def bound_value(value, what: str = "the bound returned by calculate_lower_bound", q=None) -> float:
    return expect.scalar(value, what, why_nonfinite=diagnosis.why_nonfinite_bound(q if q is not None else [0.0]))


def validate_m_step(value, H: int, W: int, w: int, what: str = "run_m_step", exact_fit: bool = False, q=None,
                    X=None):
    """(F, B, s, a) after checking types, shapes, finiteness, s > 0 (s >= 0 for an exact fit) and sum(a) = 1.

    ``q`` (and ``X``) let a failure be explained by its symptom."""
    if not isinstance(value, (tuple, list)) or len(value) != 4:
        raise Failed(f"{what} should return a tuple (F, B, s, a) but returned {expect.describe_value(value)}")
    F = expect.array(value[0], f"F returned by {what}", shape=(H, w))
    B = expect.array(value[1], f"B returned by {what}", shape=(H, W), finite=False)
    if not np.all(np.isfinite(B)):
        bad_columns = np.flatnonzero(~np.all(np.isfinite(B), axis=0))
        why = "B is a weighted average of grey levels: finite wherever it is computed"
        if q is not None and np.all(theory.background_weight(q, W, w)[bad_columns] == 0):
            why = diagnosis.explain("B_hidden_nan")
        raise Failed(f"B returned by {what} is not finite in column(s) {bad_columns.tolist()}", why=why)
    s = expect.scalar(value[2], f"s returned by {what}")
    a = expect.array(value[3], f"a returned by {what}", shape=(W - w + 1,))
    if not (s >= 0 if exact_fit else s > 0):
        raise Failed(f"s returned by {what} is {s:.6g}; a standard deviation must be positive",
                     why="s^2 is the q-weighted mean of the squared residuals over all H*W*K pixels: take the "
                         "square root of that mean")
    if abs(a.sum() - 1) > 1e-9 or a.min() < 0:
        why = "a[d] is the share of the images expected at position d: q.sum(axis=1) / K"
        if q is not None and np.allclose(a, np.asarray(q).sum(axis=1), rtol=1e-9, atol=1e-12):
            why = diagnosis.explain("a_counts")
        elif q is not None and np.allclose(a, np.asarray(q).sum(axis=1) / (W - w + 1), rtol=1e-9, atol=1e-12):
            why = diagnosis.explain("a_over_positions")
        raise Failed(f"a returned by {what} is not a probability distribution (it sums to {a.sum():.10g}, "
                     f"min {a.min():.3g})", why=why)
    return F, B, s, a


DEFINITIONS_M = {
    "a": "a[d] = sum_k q[d, k] / K: the expected share of the images with the face at position d",
    "F": "F[i, m] = sum_k sum_d q[d, k] X[i, m + d, k] / K: the q-weighted average of the windows the face may occupy",
    "B": "B[i, j] averages X[i, j, k] over the images and positions where column j is NOT under the face, weighted by "
         "q[d, k]",
    "s": "s^2 = sum_k sum_d q[d, k] ||X_k - model_d||^2 / (H W K), with the NEW F and B in model_d",
}


def compare_m_step(got, expected, q, W: int, w: int, case_text: str = "", what: str = "run_m_step", X=None) -> None:
    """Compare (F, B, s, a) with ``expected``; B only where some image shows the background.

    With ``X`` a mismatch is explained by the mistake it matches (see ``diagnosis.diagnose_m_step``)."""
    F, B, s, a = got
    eF, eB, es, ea = (np.asarray(v, dtype=float) for v in expected)
    diagnosed = diagnosis.diagnose_m_step(got, X, q, w) if X is not None else None

    def why(name):
        return diagnosed or DEFINITIONS_M[name]

    expect.close(a, ea, f"a returned by {what}", rtol=A_RTOL, atol=A_ATOL, case=case_text, why=why("a"))
    expect.close(F, eF, f"F returned by {what}", rtol=FB_RTOL, atol=FB_ATOL, case=case_text, why=why("F"))
    # B is compared where the images show the background with a weight of at least 1e-6 image: below
    # that its value hardly affects anything, and different (correct) ways of summing the weights
    # may round it differently.
    seen = theory.background_weight(q, W, w) > 1e-6
    expect.close(B[:, seen], eB[:, seen], f"B returned by {what} (columns some image shows as background)",
                 rtol=FB_RTOL, atol=FB_ATOL, case=case_text, why=why("B"))
    expect.close(s, es, f"s returned by {what}", rtol=S_RTOL, atol=1e-9 * max(1.0, float(es)), case=case_text,
                 why=why("s"))


def check_maximises(ctx, hard: bool = False, **flag):
    """No small move of F, B, s or a (in both directions along random directions) raises the bound."""
    rng = ctx.rng
    for H, W, w, K in ((2, 6, 2, 8), (3, 10, 4, 15)):
        X, _ = theory.random_problem(rng, H, W, w, K)
        if hard:
            q = theory.one_hot(rng.integers(0, W - w + 1, K), W - w + 1)
        else:
            q = theory.random_posterior(rng, W - w + 1, K, concentration=0.5)
        F, B, s, a = validate_m_step(ctx.run(X, q, w, **flag), H, W, w, q=q, X=X)
        B = np.where(np.isfinite(B), B, 0.0)
        best = theory.bound(X, F, B, s, a, q)
        text = case(X=X, q=q, w=w)
        moves = {"F": lambda e, v: (F + e * v[0], B, s, a),
                 "B": lambda e, v: (F, B + e * v[1], s, a),
                 "s": lambda e, v: (F, B, s * np.exp(e / 100), a),
                 "a": lambda e, v: (F, B, s, a * np.exp(e / 100 * v[2]) / np.sum(a * np.exp(e / 100 * v[2])))}
        for name, move in moves.items():
            for _ in range(2):
                v = (rng.standard_normal(F.shape), rng.standard_normal(B.shape), rng.standard_normal(a.shape))
                for size in (0.01, 0.1, 1.0, 10.0):
                    for sign in (1.0, -1.0):
                        value = theory.bound(X, *move(sign * size, v), q)
                        if value > best + 1e-10 * abs(best):
                            diagnosed = diagnosis.diagnose_m_step((F, B, s, a), X, q, w)
                            raise Failed(
                                f"changing {name} slightly raises the bound ({value:.10g} > {best:.10g}) with q "
                                f"fixed: your run_m_step does not maximise it", case=text,
                                why=diagnosed or (
                                    f"re-derive the update of {name}: set the derivative of the bound with "
                                    f"respect to {name} to zero" + (" (with the NEW F and B)" if name == "s" else "")
                                    + (" (under the constraint sum(a) = 1)" if name == "a" else "")))


# ----------------------------------------------------------------------------- scripted log-probabilities
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
    those. Returns (value, table_used); ``table_used is table`` tells whether the scripted table was used.
    """
    n_positions, K = np.shape(table)
    X, F, B, s = shapes_for_table(ctx.rng, n_positions, K)
    spy = scripted_log_probability(table)
    table = np.asarray(table, dtype=float)
    args, kwargs = make_args(table)
    value = ctx.run(X, F, B, s, *args, standins={"calculate_log_probability": spy}, **kwargs)
    if spy.calls:
        return value, table
    used = theory.log_probability(X, F, B, s)
    args, kwargs = make_args(used)
    return ctx.run(X, F, B, s, *args, **kwargs), used


def shapes_for_table(rng, n_positions: int, K: int, H: int = 2, w: int = 2):
    """Inputs (X, F, B, s) whose shapes agree with an (n_positions, K) log-probability table."""
    W = n_positions + w - 1
    X = rng.integers(0, 256, (H, W, K)).astype(float)
    return X, rng.uniform(0, 255, (H, w)), rng.uniform(0, 255, (H, W)), 50.0
