"""Checks of run_EM.

run_EM is judged by watching it work: its calls to run_e_step, run_m_step and
calculate_lower_bound go to stand-ins (the reference when grading, the student's own functions on
their machine) wrapped by an ``EMWatcher`` that records every call. A scripted bound makes the
stopping rule testable exactly, whatever the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...engine import Failed, expect
from . import ASSIGNMENT, theory
from .fixtures import EM_MAX_ITER, realistic, visible, visible_inputs

USE_THE_STEPS = ("run_EM must call run_e_step, run_m_step and calculate_lower_bound (by those names) in every "
                 "iteration; the checks follow EM through these calls")
LL_STRUCTURE = ("LL[0] is the bound at the initial guess (with q from the first E-step), LL[t] the bound after "
                "iteration t's M-step (new F, B, s, a with the q that M-step used), and the last entry the bound after "
                "the final E-step: number of iterations + 2 values")


E_STEP_PARAMETERS = ("X", "F", "B", "s", "a", "hard_EM")
M_STEP_PARAMETERS = ("X", "q", "w", "hard_EM")
BOUND_PARAMETERS = ("X", "F", "B", "s", "a", "q", "hard_EM")


@dataclass
class Call:
    args: tuple
    kwargs: dict
    result: object = None

    def bound(self, names: tuple) -> dict:
        """The arguments by parameter name (positional or keyword, as the student passed them)."""
        out = dict(zip(names, self.args))
        out.update(self.kwargs)
        return out

    def parameters(self) -> tuple:
        """(F, B, s, a) an E-step or bound call received."""
        given = self.bound(E_STEP_PARAMETERS)
        return tuple(given.get(name) for name in "FBsa")


@dataclass
class EMWatcher:
    """Stand-ins for the three steps that record every call.

    ``script(m)``, when given, replaces the bound's value: the bound reported after ``m`` M-steps.
    """

    e_step: object
    m_step: object
    bound: object
    script: object = None
    e_calls: list = field(default_factory=list)
    m_calls: list = field(default_factory=list)
    bound_calls: list = field(default_factory=list)

    def standins(self, extra: dict | None = None) -> dict:
        found = {"run_e_step": self.run_e_step, "run_m_step": self.run_m_step,
                 "calculate_lower_bound": self.calculate_lower_bound}
        found.update(extra or {})
        return found

    def run_e_step(self, *args, **kwargs):
        call = Call(args, kwargs)
        self.e_calls.append(call)
        call.result = self.e_step(*args, **kwargs)
        return call.result

    def run_m_step(self, *args, **kwargs):
        call = Call(args, kwargs)
        self.m_calls.append(call)
        call.result = self.m_step(*args, **kwargs)
        return call.result

    def calculate_lower_bound(self, *args, **kwargs):
        call = Call(args, kwargs)
        self.bound_calls.append(call)
        if self.script is not None:
            call.result = float(self.script(len(self.m_calls)))
        else:
            call.result = self.bound(*args, **kwargs)
        return call.result

    def require_calls(self) -> None:
        if not self.e_calls or not self.m_calls:
            missing = [n for n, calls in (("run_e_step", self.e_calls), ("run_m_step", self.m_calls)) if not calls]
            raise Failed(f"run_EM did not call {' or '.join(missing)}", why=USE_THE_STEPS)


def watch(ctx, script=None) -> EMWatcher:
    return EMWatcher(ctx.stand_in("run_e_step"), ctx.stand_in("run_m_step"), ctx.stand_in("calculate_lower_bound"),
                     script=script)


def run_em(ctx, X, w, watcher=None, **kwargs):
    """Run the student's run_EM (watched) and validate what it returns."""
    standins = None
    if watcher is not None:
        standins = watcher.standins({"calculate_log_probability": ctx.stand_in("calculate_log_probability")}
                                    if ctx.has_reference else None)
    value = ctx.run(X, w, standins=standins, **kwargs)
    return unpack(value, *np.shape(X)[:2], w)


def unpack(value, H: int, W: int, w: int):
    if not isinstance(value, (tuple, list)) or len(value) != 5:
        raise Failed(f"run_EM should return (F, B, s, a, LL) but returned {expect.describe_value(value)}")
    F = expect.array(value[0], "F returned by run_EM", shape=(H, w))
    B = expect.array(value[1], "B returned by run_EM", shape=(H, W))
    s = expect.scalar(value[2], "s returned by run_EM")
    a = expect.array(value[3], "a returned by run_EM", shape=(W - w + 1,))
    LL = expect.array(value[4], "LL returned by run_EM", shape=(None,),
                      why_nonfinite="a bound of -inf or NaN usually comes from 0 * log(0) in calculate_lower_bound")
    if len(LL) < 2:
        raise Failed(f"LL returned by run_EM has {len(LL)} value(s)", why=LL_STRUCTURE)
    return F, B, s, a, LL


def geometric_script(final: float = -1000.0, gap: float = 200.0, ratio: float = 0.5):
    """A bound rising geometrically to ``final``: the value after ``m`` M-steps."""
    return lambda m: final - gap * ratio ** m


def stopping_iteration(script, tolerance: float) -> int:
    """The first m whose improvement L(m) - L(m-1) is below tolerance * |L(m-1)|."""
    m = 1
    while script(m) - script(m - 1) >= tolerance * abs(script(m - 1)):
        m += 1
    return m


def small_problem(rng, K: int = 12):
    """A small problem drawn from the model (H=3, W=10, w=4)."""
    X, _ = theory.random_problem(rng, 3, 10, 4, K, noise=40.0)
    return X, 4


def _random_start(rng, X, w):
    H, W, _ = X.shape
    return (rng.uniform(0, 255, (H, w)), rng.uniform(0, 255, (H, W)), float(rng.uniform(60, 120)),
            rng.dirichlet(np.full(W - w + 1, 3.0)))


# =============================================================================== run_EM
@ASSIGNMENT.check("run_EM", "visible fixture", 2,
                  hints=("Start with q = run_e_step(...) and LL = [bound]; then repeat: M-step, append the bound, "
                         "E-step, stop if the improvement is below tolerance * |previous bound|; finally append the "
                         "bound once more.",))
def em_visible(ctx):
    v, e = visible_inputs(), visible()
    tX, tw = v["tX"], v["tw"]
    F, B, s, a, LL = run_em(ctx, tX, tw, max_iter=EM_MAX_ITER)
    text = expect.format_case(tX=tX, tw=tw)
    if LL.shape != e["em_LL"].shape:
        raise Failed(f"run_EM(tX, tw, max_iter={EM_MAX_ITER}) returned {len(LL)} bounds, expected "
                     f"{len(e['em_LL'])}: {np.round(e['em_LL'], 6).tolist()}", why=LL_STRUCTURE, case=text)
    expect.close(LL, e["em_LL"], f"LL of run_EM(tX, tw, max_iter={EM_MAX_ITER})", rtol=1e-9, atol=1e-9, case=text,
                 why=LL_STRUCTURE)
    for name, got, expected in (("F", F, e["em_F"]), ("B", B, e["em_B"]), ("a", a, e["em_a"]), ("s", s, e["em_s"])):
        expect.close(got, expected, f"{name} returned by run_EM(tX, tw, max_iter={EM_MAX_ITER})", rtol=1e-6,
                     atol=1e-9, case=text, why="return the parameters of the last M-step")


@ASSIGNMENT.check("run_EM", "LL: the bound at the start, after every iteration and after the last E-step", 2)
def em_records_the_bound(ctx):
    X, w = small_problem(ctx.rng)
    watcher = watch(ctx)
    F, B, s, a, LL = run_em(ctx, X, w, watcher, tolerance=0.0, max_iter=4)
    watcher.require_calls()
    bound = ctx.stand_in("calculate_lower_bound")
    first, last = watcher.e_calls[0], watcher.e_calls[-1]
    expected = [bound(X, *first.parameters(), first.result)]
    expected += [bound(X, *m.result, m.bound(M_STEP_PARAMETERS).get("q")) for m in watcher.m_calls]
    expected.append(bound(X, *last.parameters(), last.result))
    n = len(watcher.m_calls)
    if len(LL) != n + 2:
        raise Failed(f"run_EM did {n} iterations (M-steps) but returned {len(LL)} bounds in LL, expected {n + 2}",
                     why=LL_STRUCTURE)
    expect.close(LL, np.array(expected), "LL returned by run_EM", rtol=1e-10, atol=0, why=LL_STRUCTURE)
    final = watcher.m_calls[-1].result
    for name, got, want in zip("FBsa", (F, B, s, a), final):
        if not np.allclose(got, want, rtol=1e-12, atol=0):
            raise Failed(f"{name} returned by run_EM is not the {name} of the last M-step",
                         why="return the parameters after the last iteration")


@ASSIGNMENT.check("run_EM", "the bound never decreases", 2)
def em_monotone(ctx):
    check_monotone(ctx)


def check_monotone(ctx, **flag):
    """LL never decreases: on small camera shots (nearly one-hot posteriors), and on small random
    problems with soft posteriors, where every step must be exactly an E- or M-step to keep it."""
    shots = realistic(K=60, small=True)
    scenarios = [("60 small camera shots from run_EM's default start", shots["X"], shots["w"], {}, 6),
                 ("60 small camera shots from a random start", shots["X"], shots["w"],
                  dict(zip("FBsa", _random_start(ctx.rng, shots["X"], shots["w"]))), 6)]
    for n in range(3):
        X, start = theory.random_problem(ctx.rng, 3, 10, 4, 30, noise=120.0)
        scenarios.append((f"a random problem with uncertain positions (H=3, W=10, w=4, K=30) #{n + 1}", X, 4,
                          dict(zip("FBsa", start)), 10))
    for label, X, w, start, n_iter in scenarios:
        *_, LL = run_em(ctx, X, w, tolerance=0.0, max_iter=n_iter, **start, **flag)
        drops = np.flatnonzero(np.diff(LL) < -1e-10 * np.abs(LL[:-1]))
        if drops.size:
            t = int(drops[0])
            raise Failed(f"on {label}, the bound decreased from LL[{t}] = {LL[t]:.10g} to "
                         f"LL[{t + 1}] = {LL[t + 1]:.10g} (LL = {np.round(LL, 3).tolist()})",
                         why="an M-step with the q it was computed from, and an E-step with the new parameters "
                             "(all of them: F, B, s and a), can only raise the bound: check which q and which "
                             "parameters each call receives")
        if not LL[1] > LL[0]:
            raise Failed(f"on {label} the first iteration did not raise the bound ({LL[0]:.10g} -> {LL[1]:.10g})",
                         why="pass the E-step's q to the M-step")


@ASSIGNMENT.check("run_EM", "stops when the relative improvement is below tolerance", 2)
def em_tolerance(ctx):
    X, w = small_problem(ctx.rng, K=5)
    script = geometric_script()
    for target in (3, 6):
        # A tolerance halfway (geometrically) between two consecutive improvements: no rounding ambiguity.
        gains = [(script(m) - script(m - 1)) / abs(script(m - 1)) for m in (target - 1, target)]
        tolerance = float(np.sqrt(gains[0] * gains[1]))
        expected = stopping_iteration(script, tolerance)
        watcher = watch(ctx, script=script)
        run_em(ctx, X, w, watcher, tolerance=tolerance, max_iter=40)
        watcher.require_calls()
        done = len(watcher.m_calls)
        if done != expected:
            values = ", ".join(f"{script(m):.4f}" for m in range(min(done, expected) + 2))
            raise Failed(f"with tolerance={tolerance:.3g} and bounds {values}, ... run_EM should stop after "
                         f"{expected} iterations, but it did {done}",
                         why="stop as soon as LL[-1] - LL[-2] < tolerance * abs(LL[-2]), checked after every "
                             "iteration" + (" (it never stopped early: is tolerance used at all?)" if done >= 40 else ""))


@ASSIGNMENT.check("run_EM", "runs at most max_iter iterations", 1)
def em_max_iter(ctx):
    X, w = small_problem(ctx.rng, K=5)
    for max_iter in (1, 5):
        watcher = watch(ctx, script=geometric_script(ratio=0.9))
        run_em(ctx, X, w, watcher, tolerance=1e-12, max_iter=max_iter)
        watcher.require_calls()
        if len(watcher.m_calls) != max_iter:
            raise Failed(f"with max_iter={max_iter} and a bound that keeps improving, run_EM did "
                         f"{len(watcher.m_calls)} iterations (M-steps)", why="do exactly max_iter iterations unless "
                                                                             "the bound stops improving first")


@ASSIGNMENT.check("run_EM", "starts from the given F, B, s, a", 1)
def em_given_start(ctx):
    X, w = small_problem(ctx.rng, K=5)
    F0, B0, s0, a0 = _random_start(ctx.rng, X, w)
    watcher = watch(ctx)
    run_em(ctx, X, w, watcher, F=F0, B=B0, s=s0, a=a0, max_iter=2)
    watcher.require_calls()
    given = {"F": F0, "B": B0, "s": s0, "a": a0}
    for name, got in zip("FBsa", watcher.e_calls[0].parameters()):
        if np.shape(got) != np.shape(given[name]) or not np.array_equal(np.asarray(got, dtype=float), given[name]):
            raise Failed(f"the first E-step of run_EM(X, w, F=F0, B=B0, s=s0, a=a0) did not receive the given {name}",
                         why="initialise only the parameters that are None; start with an E-step from the given ones")


@ASSIGNMENT.check("run_EM", "small camera shots: the same result as the reference's run", 2, needs_reference=True,
                  timeout=60)
def em_small_shots(ctx):
    shots = realistic(K=200, small=True)
    X, w = shots["X"], shots["w"]
    F_ref, B_ref, s_ref, a_ref, LL_ref = ctx.reference("run_EM")(X, w, tolerance=1e-6, max_iter=12)
    F, B, s, a, LL = run_em(ctx, X, w, tolerance=1e-6, max_iter=12)
    if len(LL) != len(LL_ref):
        raise Failed(f"on 200 small camera shots from run_EM's default start (tolerance=1e-6, max_iter=12), run_EM "
                     f"returned {len(LL)} bounds; "
                     f"the reference's run stopped after {len(LL_ref) - 2} iterations ({len(LL_ref)} bounds)",
                     why="stop as soon as LL[-1] - LL[-2] < tolerance * abs(LL[-2]); " + LL_STRUCTURE)
    expect.close(LL, LL_ref, "LL on 200 small camera shots from run_EM's default start", rtol=1e-9, atol=0,
                 why=LL_STRUCTURE)
    expect.close(F, F_ref, "the face F found on 200 small camera shots", rtol=1e-6, atol=1e-6,
                 why="return the parameters of the last M-step")
