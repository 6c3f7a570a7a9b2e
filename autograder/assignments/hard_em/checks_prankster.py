"""Checks of the prankster functions with their hard_EM flag.

The soft behaviour is checked by a few of the prankster assignment's own checks (registered here
again through the engine, ``Assignment.reuse``, worth fewer points); the checks written here are
about hard EM. The helpers the two assignments share (the model's facts, validation, diagnoses,
the run_EM watcher and its judging, all taking the ``hard_EM`` flag) are the prankster package's
public modules (``theory``, ``judging``, ``judging_em``, ``diagnosis``, ``watching``, ``fixtures``),
imported by name: they are about the prankster model, so they belong to it, not to the engine.
"""

from __future__ import annotations

import numpy as np

from ...engine import Failed, expect
from ..prankster import ASSIGNMENT as PRANKSTER
from ..prankster import theory as pt
from ..prankster.fixtures import HIDDEN_SIZES, realistic, visible_inputs
from ..prankster.judging_em import check_flags, check_small_shots, check_visible_run
from ..prankster.judging import (BOUND_RTOL, bound_value, case, check_maximises, compare_m_step,
                                 compare_q, run_visible, run_with_table, validate_m_step, validate_q)
from ..prankster.watching import LL_STRUCTURE, EMWatcher, check_monotone, run_em, small_problem
from . import ASSIGNMENT, diagnosis, theory
from .fixtures import visible

HARD = {"hard_EM": True}
NOT_ONE_HOT = ("with hard_EM=True, q[:, k] is a point mass: 1 at the most probable position of image k (the argmax over "
               "positions of ll[d, k] + log a[d]) and 0 elsewhere")


def reuse(task: str, name: str, points: float, as_name: str | None = None) -> None:
    """Register one of the prankster assignment's checks for the same function here (the engine's
    ``Assignment.reuse``)."""
    ASSIGNMENT.reuse(PRANKSTER, task, name, points, as_name=as_name)


def _positions(rng, n_positions: int, K: int) -> np.ndarray:
    return rng.integers(0, n_positions, K)


def validate_hard_q(value, n_positions, K, ll, a, what="q returned by run_e_step(..., hard_EM=True)"):
    """A one-hot q (finite, columns summing to 1, entries 0 or 1); returns the chosen positions."""
    q = validate_q(value, n_positions, K, what)
    if not np.all((q == 0) | (q == 1)):
        raise Failed(f"{what} is not one-hot: every column must hold a single 1 and zeros elsewhere",
                     why=diagnosis.diagnose_hard_q(q, ll, a) or NOT_ONE_HOT)
    return np.argmax(q, axis=0)


# =============================================================================== calculate_log_probability
reuse("calculate_log_probability", "visible fixture", 2)
reuse("calculate_log_probability", "matches the Gaussian log-density pixel by pixel", 2)
reuse("calculate_log_probability", "hidden random inputs match the reference", 2)


# =============================================================================== calculate_lower_bound
reuse("calculate_lower_bound", "visible fixture", 1, "soft: visible fixture")
reuse("calculate_lower_bound", "equals the log-likelihood when q is the exact posterior", 1,
      "soft: equals the log-likelihood when q is the exact posterior")


@ASSIGNMENT.check("calculate_lower_bound", "hard: visible fixture", 1,
                  hints=("With a point mass q the entropy is 0 and the bound is sum_k ll[d_k, k] + log a[d_k], "
                         "d_k the chosen position of image k.",))
def hard_bound_visible(ctx):
    v, e = visible_inputs(), visible()
    args = (v["tX"], e["hard_F"], e["hard_B"], float(e["hard_s"]), e["hard_a"], e["hard_q"])
    got = bound_value(run_visible(ctx, *args, hard_EM=True), "the bound with hard_EM=True", q=e["hard_q"])
    if not np.isclose(got, float(e["hard_bound"]), rtol=BOUND_RTOL, atol=0):
        log_joint = pt.log_joint(v["tX"], e["hard_F"], e["hard_B"], float(e["hard_s"]), e["hard_a"])
        raise Failed(f"calculate_lower_bound(tX, F, B, s, a, q, hard_EM=True) after a hard E- and M-step on the "
                     f"fixtures is {got:.10g}, expected {float(e['hard_bound']):.10g}",
                     why=diagnosis.prankster.diagnose_bound(got, log_joint, e["hard_q"], e["hard_a"]),
                     case=case(tX=v["tX"], F=e["hard_F"], B=e["hard_B"], s=float(e["hard_s"]), a=e["hard_a"],
                               q=e["hard_q"]))


@ASSIGNMENT.check("calculate_lower_bound", "hard: the log joint probability at the chosen positions (a = 0 elsewhere)",
                  2, hints=("After a hard M-step the prior a is 0 at every position nobody chose: those terms have "
                            "q = 0 and count as 0.",))
def hard_bound_chosen(ctx):
    rng = ctx.rng
    for H, W, w, K in ((1, 4, 2, 3), (2, 7, 3, 6), (3, 10, 4, 9)):
        X, (F, B, s, _) = pt.random_problem(rng, H, W, w, K)
        positions = _positions(rng, W - w + 1, K)
        a = np.bincount(positions, minlength=W - w + 1) / K          # what a hard M-step returns: zeros
        q = pt.one_hot(positions, W - w + 1)
        got = bound_value(ctx.run(X, F, B, s, a, q, hard_EM=True), "the bound with hard_EM=True", q=q)
        expected = theory.hard_bound(X, F, B, s, a, positions)
        if not np.isclose(got, expected, rtol=BOUND_RTOL, atol=0):
            raise Failed(f"with hard_EM=True and a point-mass q the bound is {got:.10g}, expected the log joint "
                         f"probability at the chosen positions, {expected:.10g}",
                         why=diagnosis.prankster.diagnose_bound(got, pt.log_joint(X, F, B, s, a), q, a),
                         case=case(X=X, F=F, B=B, s=s, a=a, q=q))


@ASSIGNMENT.check("calculate_lower_bound", "hidden random inputs match the reference (soft and hard)", 2,
                  needs_reference=True)
def bound_hidden(ctx):
    for n, (H, W, w, K) in enumerate(HIDDEN_SIZES):
        X, (F, B, s, a) = pt.random_problem(ctx.rng, H, W, w, K, integer=n % 2 == 1)
        positions = _positions(ctx.rng, W - w + 1, K)
        cases = [("soft", pt.random_posterior(ctx.rng, W - w + 1, K, concentration=0.5), a, False),
                 ("hard", pt.one_hot(positions, W - w + 1), np.bincount(positions, minlength=W - w + 1) / K, True)]
        for label, q, prior, hard in cases:
            expected = ctx.reference("calculate_lower_bound")(X, F, B, s, prior, q, hard_EM=hard)
            got = bound_value(ctx.run(X, F, B, s, prior, q, hard_EM=hard), f"the bound with hard_EM={hard}", q=q)
            if not np.isclose(got, expected, rtol=BOUND_RTOL, atol=0):
                raise Failed(f"the {label} bound (H={H}, W={W}, w={w}, K={K}) is {got:.10g}, expected {expected:.10g}",
                             why=diagnosis.prankster.diagnose_bound(got, pt.log_joint(X, F, B, s, prior), q, prior),
                             case=case(X=X, F=F, B=B, s=s, a=prior, q=q) if X.size <= 60 else "")


# =============================================================================== run_e_step
reuse("run_e_step", "visible fixture", 1, "soft: visible fixture")
reuse("run_e_step", "unchanged when an image's log-probabilities all shift by a constant", 1,
      "soft: unchanged when an image's log-probabilities all shift by a constant")


@ASSIGNMENT.check("run_e_step", "hard: visible fixture", 1,
                  hints=("q = np.zeros(...); q[np.argmax(log_joint, axis=0), np.arange(K)] = 1.",))
def hard_e_step_visible(ctx):
    v = visible_inputs()
    ll = pt.log_probability(v["tX"], v["tF"], v["tB"], v["ts"])
    value = run_visible(ctx, v["tX"], v["tF"], v["tB"], v["ts"], v["ta"], hard_EM=True)
    validate_hard_q(value, 3, 2, ll, v["ta"])
    q = np.asarray(value, dtype=float)
    expect.close(q, visible()["hard_q"], "q for the notebook's fixture with hard_EM=True", rtol=0, atol=0,
                 why=diagnosis.diagnose_hard_q(q, ll, v["ta"]) or NOT_ONE_HOT,
                 case=case(tX=v["tX"], tF=v["tF"], tB=v["tB"], ts=v["ts"], ta=v["ta"]))


@ASSIGNMENT.check("run_e_step", "hard: one-hot at the most probable position", 2,
                  hints=("Maximise ll[d, k] + log a[d] over the positions d of every image (axis 0).",))
def hard_e_step_argmax(ctx):
    rng = ctx.rng
    # Log-probabilities of realistic size (around -1e5, one offset per image), and a prior that rules
    # out the position with the largest log-probability of the first image.
    n_positions, K = 6, 5
    table = -1e5 * rng.uniform(0.8, 1.2, K)[None, :] - 40 * rng.random((n_positions, K))
    a = rng.dirichlet(np.full(n_positions, 2.0))
    a[np.argmax(table[:, 0])] = 0.0
    a /= a.sum()
    uncertain = rng.normal(0.0, 0.3, (n_positions, K))             # no position has posterior above 1/2
    for table, prior in ((table, a), (uncertain, np.full(n_positions, 1 / n_positions))):
        value, table = run_with_table(ctx, table, lambda t: ((prior,), {"hard_EM": True}))
        chosen = validate_hard_q(value, n_positions, K, table, prior)
        expected = theory.most_probable(table + pt.log_of(prior)[:, None])
        if not np.array_equal(chosen, expected):
            k = int(np.flatnonzero(chosen != expected)[0])
            raise Failed(f"with hard_EM=True image {k} gets position {chosen[k]}, but the most probable one is "
                         f"{expected[k]}", case=case(ll=table, a=prior),
                         why=diagnosis.diagnose_hard_q(value, table, prior) or NOT_ONE_HOT)
    for H, W, w, K in ((2, 6, 2, 4), (3, 9, 4, 7)):
        X, (F, B, s, a) = pt.random_problem(rng, H, W, w, K)
        ll = pt.log_probability(X, F, B, s)
        value = ctx.run(X, F, B, s, a, hard_EM=True)
        chosen = validate_hard_q(value, W - w + 1, K, ll, a)
        expected = theory.most_probable(pt.log_joint(X, F, B, s, a))
        if not np.array_equal(chosen, expected):
            raise Failed(f"with hard_EM=True the chosen positions are {chosen.tolist()}, the most probable ones "
                         f"{expected.tolist()}", why=diagnosis.diagnose_hard_q(value, ll, a) or NOT_ONE_HOT,
                         case=case(X=X, F=F, B=B, s=s, a=a))


@ASSIGNMENT.check("run_e_step", "hidden random inputs match the reference (soft and hard)", 2, needs_reference=True)
def e_step_hidden(ctx):
    for n, (H, W, w, K) in enumerate(HIDDEN_SIZES):
        X, (F, B, s, a) = pt.random_problem(ctx.rng, H, W, w, K, integer=n % 2 == 0)
        ll = pt.log_probability(X, F, B, s)
        for hard in (False, True):
            expected = ctx.reference("run_e_step")(X, F, B, s, a, hard_EM=hard)
            text = case(X=X, F=F, B=B, s=s, a=a) if X.size <= 60 else ""
            value = ctx.run(X, F, B, s, a, hard_EM=hard)
            if hard:
                validate_hard_q(value, W - w + 1, K, ll, a)
                expect.close(value, expected, f"q with hard_EM=True (H={H}, W={W}, w={w}, K={K})", rtol=0, atol=0,
                             case=text, why=diagnosis.diagnose_hard_q(value, ll, a) or NOT_ONE_HOT)
            else:
                q = validate_q(value, W - w + 1, K, ll=ll, a=a)
                compare_q(q, expected, f"q with hard_EM=False (H={H}, W={W}, w={w}, K={K})", ll, a, text)


# =============================================================================== run_m_step
reuse("run_m_step", "visible fixture", 1, "soft: visible fixture")


def compare_hard_m_step(got, expected, q, X, w, text, what="run_m_step(..., hard_EM=True)"):
    diagnosed = diagnosis.diagnose_hard_m_step(got, X, q, w)
    try:
        compare_m_step(got, expected, q, np.shape(X)[1], w, text, what=what, X=X)
    except Failed as failure:
        failure.why = diagnosed or failure.why
        raise


@ASSIGNMENT.check("run_m_step", "hard: visible fixture", 1,
                  hints=("With one position d_k per image: F is the mean of the windows X[:, d_k:d_k + w, k], a the "
                         "share of the images at each position (0 where none is).",))
def hard_m_step_visible(ctx):
    v, e = visible_inputs(), visible()
    tX, tw = v["tX"], v["tw"]
    got = validate_m_step(run_visible(ctx, tX, e["hard_q"], tw, hard_EM=True), *tX.shape[:2], tw, q=e["hard_q"], X=tX)
    compare_hard_m_step(got, (e["hard_F"], e["hard_B"], e["hard_s"], e["hard_a"]), e["hard_q"], tX, tw,
                        case(tX=tX, q=e["hard_q"], tw=tw))


@ASSIGNMENT.check("run_m_step", "hard: averages over the chosen windows", 2,
                  hints=("With one position d_k per image: F is the mean of the windows X[:, d_k:d_k + w, k], a the "
                         "share of the images at each position (0 where none is).",))
def hard_m_step_averages(ctx):
    rng = ctx.rng
    for H, W, w, K in ((1, 4, 2, 3), (2, 7, 3, 8), (3, 10, 4, 12)):
        X, _ = pt.random_problem(rng, H, W, w, K, integer=True)
        positions = _positions(rng, W - w + 1, K)
        q = pt.one_hot(positions, W - w + 1)
        got = validate_m_step(ctx.run(X, q, w, hard_EM=True), H, W, w, q=q, X=X)
        F, B, s, a = pt.m_step_one_hot(X, positions, w)
        compare_hard_m_step(got, (F, np.where(np.isnan(B), 0.0, B), s, a), q, X, w, case(X=X, q=q, w=w))


@ASSIGNMENT.check("run_m_step", "hard: maximises the bound for the chosen positions", 1,
                  hints=("The general M-step formulas are exact for a one-hot q: each sets a derivative of the bound "
                         "to zero.",))
def hard_m_step_maximises(ctx):
    check_maximises(ctx, hard=True, **HARD)


@ASSIGNMENT.check("run_m_step", "hard: a background column that no shot shows stays finite", 1,
                  hints=("If every chosen window covers column j, no image shows the background there: its weight "
                         "is 0 and 0/0 is NaN. Keep the plain average of the images there.",))
def hard_m_step_hidden_column(ctx):
    rng = ctx.rng
    H, W, w, K = 2, 9, 5, 6
    X, _ = pt.random_problem(rng, H, W, w, K)
    positions = np.array([2, 3, 3, 2, 2, 3])                         # columns 3..6 always under the face
    q = pt.one_hot(positions, W - w + 1)
    got = validate_m_step(ctx.run(X, q, w, hard_EM=True), H, W, w, q=q, X=X)
    F, B, s, a = pt.m_step_one_hot(X, positions, w)
    compare_hard_m_step(got, (F, np.where(np.isnan(B), 0.0, B), s, a), q, X, w, case(X=X, q=q, w=w))


@ASSIGNMENT.check("run_m_step", "hidden random inputs match the reference (soft and hard)", 2, needs_reference=True)
def m_step_hidden(ctx):
    for n, (H, W, w, K) in enumerate(HIDDEN_SIZES):
        X, _ = pt.random_problem(ctx.rng, H, W, w, K, integer=n % 2 == 0)
        cases = [(pt.random_posterior(ctx.rng, W - w + 1, K, concentration=0.5), False),
                 (pt.one_hot(_positions(ctx.rng, W - w + 1, K), W - w + 1), True)]
        for q, hard in cases:
            expected = ctx.reference("run_m_step")(X, q, w, hard_EM=hard)
            what = f"run_m_step(..., hard_EM={hard})"
            got = validate_m_step(ctx.run(X, q, w, hard_EM=hard), H, W, w, what=what, q=q, X=X)
            compare_hard_m_step(got, expected, q, X, w, case(X=X, q=q, w=w) if X.size <= 60 else "", what=what)


# =============================================================================== run_EM
reuse("run_EM", "visible fixture", 1, "soft: visible fixture")


reuse("run_EM", "stops when the relative improvement is below tolerance", 1)
reuse("run_EM", "runs at most max_iter iterations", 1)


@ASSIGNMENT.check("run_EM", "hard: visible fixture", 1,
                  hints=("Pass hard_EM on to every call of run_e_step, run_m_step and calculate_lower_bound.",))
def hard_em_visible(ctx):
    check_visible_run(ctx, visible(), prefix="hard_em_", **HARD)


@ASSIGNMENT.check("run_EM", "passes hard_EM on to every step", 2,
                  hints=("run_e_step(X, F, B, s, a, hard_EM), run_m_step(X, q, w, hard_EM), "
                         "calculate_lower_bound(X, F, B, s, a, q, hard_EM).",))
def em_passes_flag(ctx):
    X, w = small_problem(ctx.rng, K=6)
    for flag in (True, False):
        watcher = EMWatcher(ctx, max_iter=2, flag={"hard_EM": flag})
        run_em(ctx, X, w, watcher, max_iter=2, tolerance=0.0, hard_EM=flag)
        watcher.require_calls()
        for spy in (watcher.e_step, watcher.m_step, watcher.bound):
            if not spy.calls:
                raise Failed(f"run_EM did not call {spy.name}",
                             why="run_EM must call run_e_step, run_m_step and calculate_lower_bound by those names")
        check_flags(watcher, {"hard_EM": flag})


@ASSIGNMENT.check("run_EM", "hard: the bound never decreases", 2,
                  hints=("Hard EM alternates a hard E-step and an M-step for that q: neither can lower the bound.",))
def hard_em_monotone(ctx):
    check_monotone(ctx, **HARD)


@ASSIGNMENT.check("run_EM", "hard: stops at a fixed point", 1,
                  hints=("Once no chosen position changes, the bound stops changing exactly: an improvement of 0 is "
                         "below tolerance * |bound| for any tolerance > 0.",))
def hard_em_fixed_point(ctx):
    shots = realistic(K=60, small=True)
    X, w = shots["X"], shots["w"]
    watcher = EMWatcher(ctx, max_iter=40, flag=HARD)
    *_, LL = run_em(ctx, X, w, watcher, tolerance=1e-12, max_iter=40, **HARD)
    if len(LL) - 2 >= 40 or len(LL) < 3 or LL[-2] - LL[-3] >= 1e-12 * abs(LL[-3]):
        raise Failed(f"hard EM on 60 small camera shots with tolerance=1e-12 ran {len(LL) - 2} iterations "
                     f"(last bounds {np.round(LL[-3:], 4).tolist()}); once the chosen positions stop changing, hard "
                     "EM is at a fixed point and the bound stops changing exactly",
                     why="stop as soon as LL[-1] - LL[-2] < tolerance * abs(LL[-2]) (an improvement of exactly 0 "
                         "stops it); " + LL_STRUCTURE)


@ASSIGNMENT.check("run_EM", "hard: small camera shots: the same result as the reference's run", 2,
                  needs_reference=True, timeout=60)
def hard_em_small_shots(ctx):
    check_small_shots(ctx, "hard EM", **HARD)
