"""How a run of run_EM is judged (shared with the ``hard_em`` assignment): the notebook's visible run,
the stopping rule and max_iter against a scripted bound, the run on small camera shots, and the
explanations of a wrong LL, each drawn from what the watched run did (``watching.EMWatcher``).
"""

from __future__ import annotations

import numpy as np

from ...engine import Failed, expect
from .diagnosis import explain
from .fixtures import EM_MAX_ITER, visible_inputs
from .watching import (LL_STRUCTURE, MAX_ITER_RULE, STOPPING_RULE, EMWatcher, geometric_script, run_em,
                       small_problem, stopping_iteration)


def diagnose_LL(LL, watcher: EMWatcher, X) -> str:
    """Why LL differs from the bounds run_EM's own calls imply (or the definition when nothing matches)."""
    implied = watcher.expected_LL(X)
    after_e = [watcher.recompute_bound(X, watcher.parameters(e), e.result) for e in watcher.e_step.calls]
    candidates = {"LL_no_final": implied[:-1], "LL_no_initial": implied[1:],
                  "LL_after_e_step": np.array(after_e[:1] + after_e[1:] + after_e[-1:])}
    for key, value in candidates.items():
        if len(value) == len(implied) and np.allclose(value, implied, rtol=1e-10, atol=0):
            continue                      # the same as the right structure here: no symptom
        if len(value) == len(LL) and np.allclose(LL, value, rtol=1e-10, atol=0):
            return explain(key)
    return LL_STRUCTURE


def check_flags(watcher: EMWatcher, flag: dict) -> None:
    """When the steps take hard_EM: every call got the run's flag (default False)."""
    wanted = bool(flag.get("hard_EM", False))
    for spy in (watcher.e_step, watcher.m_step, watcher.bound):
        for call in spy.calls:
            if call.arguments is not None and "hard_EM" in call.arguments and bool(call.arguments["hard_EM"]) != wanted:
                raise Failed(f"run_EM(..., hard_EM={wanted}) called {spy.name} with hard_EM={not wanted}",
                             why="pass run_EM's hard_EM on to every call of the steps, by keyword or position")


def stopping_symptom(LL, watcher: EMWatcher, X, tolerance: float) -> str | None:
    """When LL is what the run's own calls imply, where its own bounds say the loop should have stopped."""
    implied = watcher.expected_LL(X)
    if len(implied) != len(LL) or not np.allclose(LL, implied, rtol=1e-10, atol=0):
        return None
    after_m = LL[:-1]                               # LL[0] and the bound after every M-step
    for m in range(1, len(after_m)):
        if after_m[m] - after_m[m - 1] < tolerance * abs(after_m[m - 1]):
            if m < len(after_m) - 1:
                return (f"your own LL shows that iteration {m} improved the bound by less than tolerance * |previous "
                        f"bound| ({after_m[m] - after_m[m - 1]:.3g} < {tolerance:g} * {abs(after_m[m - 1]):.6g}), yet "
                        f"the run went on: " + STOPPING_RULE)
            return None
    return None


def compare_parameters(got, expected, label, text="", watcher=None):
    for name, value, want in zip("FBsa", got, expected):
        if not np.allclose(value, want, rtol=1e-6, atol=1e-9):
            why = "return the parameters of the last M-step"
            if watcher is not None and watcher.e_step.calls:
                first = watcher.parameters(watcher.e_step.calls[0])
                if all(np.allclose(v, f, rtol=1e-12, atol=0) for v, f in zip(got, first)):
                    why = explain("params_initial")
                elif any(all(np.allclose(v, r, rtol=1e-12, atol=0) for v, r in zip(got, m.result))
                         for m in watcher.m_step.calls[:-1]):
                    why = explain("params_not_last")
            expect.close(value, want, f"{name} returned by {label}", rtol=1e-6, atol=1e-9, case=text, why=why)


def check_visible_run(ctx, expected: dict, prefix: str = "em_", **flag):
    """run_EM(tX, tw, max_iter=3) against the stored run (``expected[prefix + 'LL']`` ...)."""
    v = visible_inputs()
    tX, tw = v["tX"], v["tw"]
    label = f"run_EM(tX, tw, max_iter={EM_MAX_ITER}" + "".join(f", {k}={val}" for k, val in flag.items()) + ")"
    watcher = EMWatcher(ctx, max_iter=EM_MAX_ITER, flag=flag)
    F, B, s, a, LL = run_em(ctx, tX, tw, watcher, max_iter=EM_MAX_ITER, **flag)
    check_flags(watcher, flag)
    text = expect.format_case(tX=tX, tw=tw)
    want = expected[prefix + "LL"]
    if LL.shape != want.shape or not np.allclose(LL, want, rtol=1e-9, atol=1e-9):
        why = diagnose_LL(LL, watcher, tX) if watcher.e_step.calls and watcher.m_step.calls else LL_STRUCTURE
        if why == LL_STRUCTURE and watcher.m_step.calls:
            why = stopping_symptom(LL, watcher, tX, 0.001) or why
        if LL.shape != want.shape:
            raise Failed(f"{label} returned {len(LL)} bounds, expected {len(want)}: "
                         f"{np.round(want, 6).tolist()}", why=why, case=text)
        expect.close(LL, want, f"LL of {label}", rtol=1e-9, atol=1e-9, case=text, why=why)
    compare_parameters((F, B, s, a), [expected[prefix + n] for n in "FBsa"], label, text, watcher)


def stop_rule_candidates(script, tolerance: float, max_iter: int) -> dict:
    """Where common wrong stopping rules stop the scripted run (iterations)."""
    def first(rule):
        for m in range(1, max_iter + 1):
            if rule(m):
                return m
        return max_iter

    L = script
    return {"stop_absolute": first(lambda m: L(m) - L(m - 1) < tolerance),
            "stop_late": first(lambda m: m >= 2 and L(m - 1) - L(m - 2) < tolerance * abs(L(m - 2))),
            "stop_never": max_iter}


def check_tolerance(ctx, **flag):
    """With a scripted bound, the run stops exactly at the first iteration whose relative improvement is
    below the tolerance (two tolerances, each halfway between two consecutive improvements)."""
    X, w = small_problem(ctx.rng, K=5)
    script = geometric_script()
    max_iter = 40
    for target in (3, 6):
        # A tolerance halfway (geometrically) between two consecutive improvements: no rounding ambiguity.
        gains = [(script(m) - script(m - 1)) / abs(script(m - 1)) for m in (target - 1, target)]
        tolerance = float(np.sqrt(gains[0] * gains[1]))
        expected = stopping_iteration(script, tolerance)
        watcher = EMWatcher(ctx, max_iter=max_iter, script=script, flag=flag)
        run_em(ctx, X, w, watcher, tolerance=tolerance, max_iter=max_iter, **flag)
        watcher.require_calls()
        done = watcher.iterations
        if done != expected:
            values = ", ".join(f"{script(m):.4f}" for m in range(min(done, expected) + 2))
            why = STOPPING_RULE
            explaining = [key for key, where in stop_rule_candidates(script, tolerance, max_iter).items()
                          if where == done]
            if len(explaining) == 1:
                why = explain(explaining[0])
            raise Failed(f"with tolerance={tolerance:.3g} and bounds {values}, ... run_EM should stop after "
                         f"{expected} iterations, but it did {done}", why=why)


def check_max_iter(ctx, **flag):
    X, w = small_problem(ctx.rng, K=5)
    for max_iter in (1, 5):
        watcher = EMWatcher(ctx, max_iter=max_iter, script=geometric_script(ratio=0.9), flag=flag)
        run_em(ctx, X, w, watcher, tolerance=1e-12, max_iter=max_iter, **flag)
        watcher.require_calls()
        if watcher.iterations != max_iter:
            raise Failed(f"with max_iter={max_iter} and a bound that keeps improving, run_EM did "
                         f"{watcher.iterations} iterations (M-steps)", why=MAX_ITER_RULE)


def check_small_shots(ctx, label: str, **flag):
    from .fixtures import realistic
    shots = realistic(K=200, small=True)
    X, w = shots["X"], shots["w"]
    F_ref, B_ref, s_ref, a_ref, LL_ref = ctx.reference("run_EM")(X, w, tolerance=1e-6, max_iter=12, **flag)
    watcher = EMWatcher(ctx, max_iter=12, flag=flag)
    F, B, s, a, LL = run_em(ctx, X, w, watcher, tolerance=1e-6, max_iter=12, **flag)
    if len(LL) != len(LL_ref):
        raise Failed(f"{label} on 200 small camera shots (tolerance=1e-6, max_iter=12) returned {len(LL)} bounds; "
                     f"the reference's run stopped after {len(LL_ref) - 2} iterations ({len(LL_ref)} bounds)",
                     why=STOPPING_RULE + "; " + diagnose_LL(LL, watcher, X))
    expect.close(LL, LL_ref, f"LL of {label} on 200 small camera shots", rtol=1e-9, atol=0,
                 why=diagnose_LL(LL, watcher, X))
    expect.close(F, F_ref, f"the face F found by {label} on 200 small camera shots", rtol=1e-6, atol=1e-6,
                 why="return the parameters of the last M-step")
