"""Checks of run_EM.

run_EM is judged by watching it work (``watching.EMWatcher``): its calls to run_e_step, run_m_step
and calculate_lower_bound go to stand-ins (the reference when grading, the student's own functions
on their machine), recorded by the engine's spies and bound by the tasks' signatures. A scripted
bound makes the stopping rule testable exactly, whatever the data. A run that goes on after the
check has its verdict (past max_iter) is stopped at once.
"""

from __future__ import annotations

import numpy as np

from ...engine import Failed, expect
from . import ASSIGNMENT
from .fixtures import visible
from .judging_em import (check_max_iter, check_small_shots, check_tolerance, check_visible_run, diagnose_LL)
from .watching import EMWatcher, check_monotone, random_start, require_computed_LL, run_em, small_problem


# =============================================================================== run_EM
@ASSIGNMENT.check("run_EM", "visible fixture", 2,
                  hints=("Start with q = run_e_step(...) and LL = [bound]; then repeat: M-step, append the bound, "
                         "E-step, stop if the improvement is below tolerance * |previous bound|; finally append the "
                         "bound once more.",))
def em_visible(ctx):
    check_visible_run(ctx, visible())


@ASSIGNMENT.check("run_EM", "LL: the bound at the start, after every iteration and after the last E-step", 2,
                  hints=("LL has number of iterations + 2 entries: the bound at the start, one after every M-step "
                         "(with the q that M-step used), one after the final E-step.",))
def em_records_the_bound(ctx):
    X, w = small_problem(ctx.rng)
    watcher = EMWatcher(ctx, max_iter=4)
    F, B, s, a, LL = run_em(ctx, X, w, watcher, tolerance=0.0, max_iter=4)
    watcher.require_calls()
    expected = watcher.expected_LL(X)
    n = watcher.iterations
    if len(LL) != n + 2:
        raise Failed(f"run_EM did {n} iterations (M-steps) but returned {len(LL)} bounds in LL, expected {n + 2}",
                     why=diagnose_LL(LL, watcher, X))
    expect.close(LL, expected, "LL returned by run_EM", rtol=1e-10, atol=0, why=diagnose_LL(LL, watcher, X))
    final = watcher.m_step.calls[-1].result
    for name, got, want in zip("FBsa", (F, B, s, a), final):
        if not np.allclose(got, want, rtol=1e-12, atol=0):
            raise Failed(f"{name} returned by run_EM is not the {name} of the last M-step",
                         why="return the parameters after the last iteration")


@ASSIGNMENT.check("run_EM", "the bound never decreases", 2,
                  hints=("Pass the E-step's q to the M-step, and all the new parameters (F, B, s, a) to the next "
                         "E-step.",))
def em_monotone(ctx):
    check_monotone(ctx)


@ASSIGNMENT.check("run_EM", "stops when the relative improvement is below tolerance", 2,
                  hints=("After every iteration: if LL[-1] - LL[-2] < tolerance * abs(LL[-2]), stop.",))
def em_tolerance(ctx):
    check_tolerance(ctx)


@ASSIGNMENT.check("run_EM", "runs at most max_iter iterations", 1,
                  hints=("Count iterations as M-steps: `for _ in range(max_iter):` does exactly max_iter of them "
                         "unless the bound stops improving first.",))
def em_max_iter(ctx):
    check_max_iter(ctx)


@ASSIGNMENT.check("run_EM", "starts from the given F, B, s, a", 1,
                  hints=("Initialise only the parameters that are None; the first E-step uses the others as "
                         "given.",))
def em_given_start(ctx):
    X, w = small_problem(ctx.rng, K=5)
    F0, B0, s0, a0 = random_start(ctx.rng, X, w)
    watcher = EMWatcher(ctx, max_iter=2)
    *_, LL = run_em(ctx, X, w, watcher, F=F0, B=B0, s=s0, a=a0, max_iter=2)
    require_computed_LL(LL, watcher, "from a given start")
    given = {"F": F0, "B": B0, "s": s0, "a": a0}
    for name, got in zip("FBsa", watcher.parameters(watcher.e_step.calls[0])):
        if np.shape(got) != np.shape(given[name]) or not np.array_equal(np.asarray(got, dtype=float), given[name]):
            raise Failed(f"the first E-step of run_EM(X, w, F=F0, B=B0, s=s0, a=a0) did not receive the given {name}",
                         why="initialise only the parameters that are None; start with an E-step from the given ones")


@ASSIGNMENT.check("run_EM", "small camera shots: the same result as the reference's run", 2, needs_reference=True,
                  timeout=60)
def em_small_shots(ctx):
    check_small_shots(ctx, "run_EM")
