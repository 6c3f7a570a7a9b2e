"""Following ``run_EM`` through its calls of the steps (shared with the ``hard_em`` assignment).

``run_EM`` is judged by watching it work: its calls of ``run_e_step``, ``run_m_step`` and
``calculate_lower_bound`` go to stand-ins (the reference when grading, the student's own
functions on their machine) followed by the engine's loop follower (``autograder.engine.watch``:
one ``Spy`` per step, bound by the tasks' signatures), so a call is understood however its
arguments are passed (by position or keyword, in any order).

Nothing here assumes one calling pattern. An *iteration* is an M-step; the bound may be computed
any number of times (before the loop, twice per iteration, before or after the stop test); an
E-step may be repeated on unchanged parameters. A scripted bound (its value after ``m`` M-steps)
makes the stopping rule testable exactly, whatever the order of the calls.

A watched run ends at once (``Watch.stop``: an ``AbortCall`` carrying the verdict, which ``ctx.run``
raises) when the check has its verdict: an M-step past ``max_iter``, or past the iteration at which
the stopping rule should have ended the loop, or far more calls of the steps than the iterations
allow. So a loop that never stops costs the
student a clear message within a fraction of a second, not a time-out.

Stand-ins behave like a plain numpy implementation: Python floats they return become numpy
float64 scalars (the reference's bound and ``s`` are Python floats), so code that divides by a
bound of 0.0 sees ``inf`` as with its own numpy functions, not ``ZeroDivisionError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ...engine import Failed, expect
from . import theory

USE_THE_STEPS = ("run_EM must call run_e_step, run_m_step and calculate_lower_bound (by those names) in every "
                 "iteration; the checks follow EM through these calls")
LL_STRUCTURE = ("LL[0] is the bound at the initial guess (with q from the first E-step), LL[t] the bound after "
                "iteration t's M-step (new F, B, s, a with the q that M-step used), and the last entry the bound after "
                "the final E-step: number of iterations + 2 values")
STOPPING_RULE = "stop as soon as LL[-1] - LL[-2] < tolerance * abs(LL[-2]), checked after every iteration"
MAX_ITER_RULE = "do at most max_iter iterations (M-steps), e.g. `for _ in range(max_iter):`"


def numpy_like(value):
    """``value`` as a numpy implementation would return it: Python floats become np.float64."""
    if isinstance(value, float) and not isinstance(value, np.floating):
        return np.float64(value)
    if isinstance(value, tuple):
        return tuple(numpy_like(v) for v in value)
    if isinstance(value, list):
        return [numpy_like(v) for v in value]
    return value


@dataclass
class EMWatcher:
    """Spies on the three steps of one ``run_EM`` call, and ends the call when it goes wrong.

    Built on the engine's loop follower (``ctx.watch()``): each step is a ``Spy`` whose ``before``
    hook counts the calls and stops the run (``Watch.stop``) with the check's verdict.

    Parameters
    ----------
    ctx : Context
        The check's context (stand-ins come from it).
    max_iter : int or None
        The ``max_iter`` run_EM was given: an M-step beyond it ends the call.
    script : callable or None
        ``script(m)``: the bound reported after ``m`` M-steps, replacing the real bound.
    stop_after : int or None
        With a script: the iteration after which the stopping rule must end the loop; another
        M-step ends the call.
    flag : dict
        ``{"hard_EM": value}`` when the steps take the flag (used to recompute bounds).
    """

    ctx: object
    max_iter: int | None = None
    script: Callable | None = None
    stop_after: int | None = None
    flag: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.watch = self.ctx.watch()
        self._targets = {"run_e_step": self.ctx.stand_in("run_e_step"),
                         "run_m_step": self.ctx.stand_in("run_m_step"),
                         "calculate_lower_bound": self.ctx.stand_in("calculate_lower_bound")}
        self.e_step = self.watch.spy("run_e_step", self._target("run_e_step"),
                                     before=self._budget("run_e_step", 3))
        self.m_step = self.watch.spy("run_m_step", self._target("run_m_step"), before=self._before_m_step)
        self.bound = self.watch.spy("calculate_lower_bound", self._target("calculate_lower_bound"),
                                    before=self._budget("calculate_lower_bound", 4))

    # ----------------------------------------------------------------------------- calls
    def _target(self, name: str) -> Callable:
        """The stand-in (or, for the bound with a script, the scripted value) as numpy returns it."""
        def target(*args, **kwargs):
            if name == "calculate_lower_bound" and self.script is not None:
                return np.float64(self.script(len(self.m_step.calls)))
            return numpy_like(self._targets[name](*args, **kwargs))
        return target

    def _budget(self, name: str, per_iteration: int) -> Callable:
        def before(call) -> None:
            if call.arguments is None:
                return          # (the spy raises TypeError, as the function would)
            spy = self.e_step if name == "run_e_step" else self.bound
            n = len(spy.calls) + 1          # this call included
            allowed = per_iteration * ((self.max_iter if self.max_iter is not None else 50) + 2)
            if n > allowed:
                self._stop(f"run_EM called {name} {n} times with only {len(self.m_step.calls)} "
                           f"M-step(s)", "every iteration is one M-step followed by one E-step; a loop that calls "
                           "the steps again and again without moving on never ends")
        return before

    def _before_m_step(self, call) -> None:
        if call.arguments is None:
            return
        n = len(self.m_step.calls) + 1      # this call included
        if self.max_iter is not None and n > self.max_iter:
            self._stop(f"with max_iter={self.max_iter}, run_EM started iteration {n} (an M-step beyond max_iter)",
                       MAX_ITER_RULE + ", and stop earlier when the bound stops improving")
        if self.stop_after is not None and n > self.stop_after:
            m = self.stop_after
            self._stop(f"iteration {m} improved the bound from {self.script(m - 1):.6f} to {self.script(m):.6f}, "
                       f"less than tolerance * |previous bound|, yet run_EM went on with iteration {n}",
                       STOPPING_RULE)

    def _stop(self, message: str, why: str) -> None:
        self.watch.stop(message, verdict=Failed(f"run_EM was stopped: {message}", why=why))

    @property
    def stopped(self) -> Failed | None:
        """The verdict that ended the run (None when it ran to its end)."""
        return self.watch.stopped

    def standins(self) -> dict:
        found = self.watch.standins()
        if self.ctx.has_reference:
            found["calculate_log_probability"] = self.ctx.stand_in("calculate_log_probability")
        return found

    # ----------------------------------------------------------------------------- what happened
    @property
    def iterations(self) -> int:
        return len(self.m_step.calls)

    def require_calls(self) -> None:
        missing = [spy.name for spy in (self.e_step, self.m_step) if not spy.calls]
        if missing:
            raise Failed(f"run_EM did not call {' or '.join(missing)}", why=USE_THE_STEPS)

    def parameters(self, call) -> tuple:
        """(F, B, s, a) an E-step or bound call received."""
        return tuple(call.arguments[name] for name in "FBsa")

    def m_step_q(self, call):
        return call.arguments["q"]

    def recompute_bound(self, X, parameters, q) -> float:
        """The bound of ``parameters`` and ``q`` by the stand-in (never the script)."""
        return float(self._targets["calculate_lower_bound"](X, *parameters, q, **self.flag))

    def expected_LL(self, X) -> np.ndarray:
        """The LL that run_EM's own calls imply: the bound at the first E-step, after every M-step (with
        the q it was given), and after the last E-step."""
        self.require_calls()
        first, last = self.e_step.calls[0], self.e_step.calls[-1]
        values = [self.recompute_bound(X, self.parameters(first), first.result)]
        values += [self.recompute_bound(X, m.result, self.m_step_q(m)) for m in self.m_step.calls]
        values.append(self.recompute_bound(X, self.parameters(last), last.result))
        return np.array(values)

    def bound_values(self) -> np.ndarray:
        return np.array([float(c.result) for c in self.bound.calls if c.error is None and c.result is not None])


def run_em(ctx, X, w, watcher: EMWatcher | None = None, **kwargs):
    """Run the student's run_EM, watched (a watcher is made when none is given), and validate what it
    returns. Returns ``(F, B, s, a, LL)``; raises Failed with the watcher's verdict when it ended the call."""
    if watcher is None:
        watcher = EMWatcher(ctx, max_iter=kwargs.get("max_iter", 50), flag=flag_of(kwargs))
    value = ctx.run(X, w, standins=watcher.standins(), **kwargs)   # (raises the watcher's verdict)
    return unpack(value, *np.shape(X)[:2], w)


def flag_of(kwargs: dict) -> dict:
    return {"hard_EM": kwargs["hard_EM"]} if "hard_EM" in kwargs else {}


def unpack(value, H: int, W: int, w: int):
    if not isinstance(value, (tuple, list)) or len(value) != 5:
        raise Failed(f"run_EM should return (F, B, s, a, LL) but returned {expect.describe_value(value)}")
    F = expect.array(value[0], "F returned by run_EM", shape=(H, w))
    B = expect.array(value[1], "B returned by run_EM", shape=(H, W))
    s = expect.scalar(value[2], "s returned by run_EM")
    a = expect.array(value[3], "a returned by run_EM", shape=(W - w + 1,))
    LL = expect.array(value[4], "LL returned by run_EM", shape=(None,),
                      why_nonfinite="a bound of -inf or NaN in LL: the bound is finite for any valid parameters "
                                    "and q (check calculate_lower_bound on the parameters run_EM passed it)")
    if len(LL) < 2:
        raise Failed(f"LL returned by run_EM has {len(LL)} value(s)", why=LL_STRUCTURE)
    return F, B, s, a, LL


# =============================================================================== scripted bounds
def geometric_script(final: float = -1000.0, gap: float = 200.0, ratio: float = 0.5):
    """A bound rising geometrically to ``final``: the value after ``m`` M-steps."""
    return lambda m: final - gap * ratio ** m


def stopping_iteration(script, tolerance: float) -> int:
    """The first m whose improvement L(m) - L(m-1) is below tolerance * |L(m-1)|."""
    m = 1
    while script(m) - script(m - 1) >= tolerance * abs(script(m - 1)):
        m += 1
    return m


# =============================================================================== problems
def small_problem(rng, K: int = 12):
    """A small problem drawn from the model (H=3, W=10, w=4)."""
    X, _ = theory.random_problem(rng, 3, 10, 4, K, noise=40.0)
    return X, 4


def random_start(rng, X, w):
    H, W, _ = X.shape
    return (rng.uniform(0, 255, (H, w)), rng.uniform(0, 255, (H, W)), float(rng.uniform(60, 120)),
            rng.dirichlet(np.full(W - w + 1, 3.0)))


def require_computed_LL(LL, watcher: EMWatcher, where: str) -> None:
    """LL must hold bounds the run computed (values some call of calculate_lower_bound returned): a
    function that makes LL up earns nothing from the checks that read it."""
    watcher.require_calls()
    computed = watcher.bound_values()
    made_up = [float(v) for v in LL if not np.any(np.isclose(computed, v, rtol=1e-12, atol=0))]
    if made_up:
        raise Failed(f"{where}, LL holds {made_up[0]:.10g}, which no call of calculate_lower_bound returned "
                     "during the run", why="append the values calculate_lower_bound returns; " + LL_STRUCTURE)


def check_monotone(ctx, **flag):
    """LL never decreases: on small camera shots (nearly one-hot posteriors), and on small random
    problems with soft posteriors, where every step must be exactly an E- or M-step to keep it.

    Only bounds the run computed count: LL must consist of values calculate_lower_bound returned
    during the run (so a function that makes LL up cannot pass)."""
    from .fixtures import realistic
    shots = realistic(K=30, small=True)
    scenarios = [("30 small camera shots from run_EM's default start", shots["X"], shots["w"], {}, 4),
                 ("30 small camera shots from a random start", shots["X"], shots["w"],
                  dict(zip("FBsa", random_start(ctx.rng, shots["X"], shots["w"]))), 4)]
    for n in range(3):
        X, start = theory.random_problem(ctx.rng, 3, 10, 4, 30, noise=120.0)
        scenarios.append((f"a random problem with uncertain positions (H=3, W=10, w=4, K=30) #{n + 1}", X, 4,
                          dict(zip("FBsa", start)), 10))
    for label, X, w, start, n_iter in scenarios:
        watcher = EMWatcher(ctx, max_iter=n_iter, flag=flag)
        *_, LL = run_em(ctx, X, w, watcher, tolerance=0.0, max_iter=n_iter, **start, **flag)
        require_computed_LL(LL, watcher, f"on {label}")
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
