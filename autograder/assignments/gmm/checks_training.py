"""Checks of train_EM.

train_EM is judged by watching it work: its calls to E_step, M_step and compute_vlb go to
stand-ins (the reference when grading, the student's own functions on their machine) wrapped by
an ``EMWatcher`` (built on the engine's ``Watch``) that follows the restarts, whatever order the
student calls the steps in. A scripted bound makes the stopping rule and the choice of the best
restart testable exactly, whatever random initialisation the student uses. A watcher stops the
student's call (``Watch.stop``) as soon as the verdict is known: a restart that runs past
``max_iter`` or past the point where ``rtol`` should have stopped it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...engine import Failed, Watch, expect
from . import ASSIGNMENT, theory
from .checks_steps import validate_parameters
from .fixtures import sample

USE_THE_STEPS = ("train_EM must call E_step, M_step and compute_vlb (by those names) for every iteration; "
                 "the checks follow the restarts through these calls")


@dataclass
class RestartLog:
    """What one restart did, as the watcher saw it."""

    index: int
    e_steps: int = 0                               # E_step calls (repeats on the same parameters included)
    e_distinct: int = 0                            # E_step calls on parameters other than the previous call's
    m_steps: int = 0                               # M_step calls on new responsibilities: the iterations
    start: tuple | None = None                     # ("means", mu) of the first E-step, or ("gamma", gamma)
    start_params: tuple | None = None              # (pi, mu, sigma) of the first E-step
    outputs: list = field(default_factory=list)    # (pi, mu, sigma) returned by each M-step
    bounds: list = field(default_factory=list)     # (value, (pi, mu, sigma), m) for each compute_vlb call
    bound_inputs: list = field(default_factory=list)   # (value, (pi, mu, sigma), m, gamma) likewise
    failed: str = ""                               # why the restart ended with an exception ("" if it did not)
    scripted_failure: bool = False                 # the failure was the check's own (a simulated collapse)
    last_e_input: tuple | None = None
    last_e_output: np.ndarray | None = None
    last_m_input: np.ndarray | None = None
    last_m_output: tuple | None = None

    @property
    def final(self) -> float | None:
        return self.bounds[-1][0] if self.bounds else None

    @property
    def bound_iterations(self) -> int:
        """The largest number of M-steps done when a bound was computed (-1 without bounds)."""
        return max((m for _, _, m in self.bounds), default=-1)


class EMWatcher:
    """Stand-ins for E_step, M_step and compute_vlb that follow the restarts of a train_EM.

    Built on the engine's loop follower (``autograder.engine.watch``): each step is a ``Spy``
    (arguments bound by the steps' signatures, positional or keyword, in any order) whose
    ``before`` hook follows the restarts and ends the call (``Watch.stop``) once the verdict is
    known; its target does the step's work and records what came back. A call continues the
    current restart when its input is what the restart last produced or last received (an E-step
    on the last M-step's parameters or repeated on the same parameters, an M-step on the last
    E-step's responsibilities); anything else starts a new restart. So an initial bound at the
    start, extra bounds, repeated E-steps, a final E-step, bounds before or after the stopping test
    and M-step-first restarts are all followed.

    Parameters
    ----------
    e_step, m_step : callables
        The functions that do the work.
    bound : callable, optional
        The real compute_vlb. Exactly one of ``bound`` and ``script`` is given.
    script : callable, optional
        ``script(restart, m) -> float``: the bound reported after ``m`` M-steps of a restart
        (returned as a numpy float64, like a plain numpy implementation's).
    fail_at : set of (restart, m), optional
        The first E-step of restart ``restart`` after at least ``m`` M-steps raises
        ``np.linalg.LinAlgError`` (a simulated collapse).
    max_iterations : int, optional
        Stop the call when a restart starts more M-steps than this, or runs E-steps on more than
        ``max_iterations + 1`` different parameters.
    stop_after : int, optional
        The iteration after which the stopping rule must end every restart. Once a restart has
        computed a bound after ``stop_after`` M-steps, the only M-step it may still start is one on
        the responsibilities that bound was computed with (a loop that computes the bound before
        its M-step and tests after it); anything more stops the call.
    rtol, patience : float, int, optional
        With a real bound: stop the call when a restart goes on ``patience`` M-steps after its
        bound improved by at most ``rtol`` (relative).
    max_restarts, max_calls : int
        Caps on what a call may run.

    Attributes
    ----------
    abort_kind : str
        Why the call was stopped: "max_iter", "rtol", "restarts", "calls" ("" when it was not);
        ``abort_reason`` says it in words.
    """

    def __init__(self, e_step, m_step, bound=None, script=None, fail_at=(), *, max_iterations=None,
                 stop_after=None, rtol=None, patience=4, max_restarts=60, max_calls=20000):
        self._e, self._m, self._bound, self._script = e_step, m_step, bound, script
        self.fail_at = set(fail_at)
        self.max_iterations, self.stop_after = max_iterations, stop_after
        self.rtol, self.patience = rtol, patience
        self.max_restarts, self.max_calls = max_restarts, max_calls
        self.restarts: list[RestartLog] = []
        self.calls = 0
        self.abort_kind = ""
        self.watch = Watch(ASSIGNMENT)
        self.watch.spy("E_step", self._e_step, before=self._before_e_step)
        self.watch.spy("M_step", self._m_step, before=self._before_m_step)
        self.watch.spy("compute_vlb", self._compute_vlb, before=self._before_compute_vlb)

    def standins(self) -> dict:
        return self.watch.standins()

    @property
    def abort_reason(self) -> str:
        """What stopped the call, in words ("" when nothing did)."""
        return self.watch.stopped.message if self.watch.stopped is not None else ""

    # ------------------------------------------------------------------ bookkeeping
    def _abort(self, kind: str, reason: str):
        if self.watch.stopped is None:          # the first verdict is kept (Watch.stop)
            self.abort_kind = kind
        self.watch.stop(reason)

    def _count_call(self) -> None:
        self.calls += 1
        if self.calls > self.max_calls:
            self._abort("calls", f"train_EM made more than {self.max_calls} calls of E_step, M_step and "
                                 "compute_vlb here; the check stopped it")

    def _new_restart(self) -> RestartLog:
        if len(self.restarts) >= self.max_restarts:
            self._abort("restarts", f"train_EM began more than {self.max_restarts} restarts here; "
                                    "the check stopped it")
        log = RestartLog(index=len(self.restarts))
        self.restarts.append(log)
        return log

    @property
    def current(self) -> RestartLog | None:
        return self.restarts[-1] if self.restarts else None

    def _arguments(self, name: str) -> dict:
        """The bound arguments of the call of ``name`` that is running (the spy records a call,
        ``before`` passed, just before its target runs)."""
        return self.watch.spies[name].calls[-1].arguments

    # ------------------------------------------------------------------ the spies' hooks and targets
    # A call that does not fit the signature (arguments None) is counted, then the spy raises
    # TypeError in the student's code, as the real function would.
    def _before_e_step(self, call) -> None:
        self._count_call()
        a = call.arguments
        if a is None:
            return
        params = (a["pi"], a["mu"], a["sigma"])
        log = self.current
        if log is None or log.failed or not (_close(log.last_m_output, params) or _close(log.last_e_input, params)):
            log = self._new_restart()
            log.start = ("means", np.array(a["mu"], dtype=float, copy=True))
            log.start_params = tuple(np.array(p, dtype=float, copy=True) for p in params)
        log.e_steps += 1
        if log.last_e_input is None or not all(_identical(x, y) for x, y in zip(log.last_e_input, params)):
            log.e_distinct += 1
            if self.max_iterations is not None and log.e_distinct > self.max_iterations + 1:
                self._abort("max_iter", f"restart {log.index + 1} ran E-steps on {log.e_distinct} different "
                                        f"parameters, past max_iter")
        log.last_e_input = params

    def _e_step(self, *args, **kwargs):
        a, log = self._arguments("E_step"), self.current
        params = (a["pi"], a["mu"], a["sigma"])
        fail = next(((r, m) for r, m in self.fail_at if r == log.index and log.m_steps >= m), None)
        if fail is not None:
            self.fail_at.discard(fail)
            log.failed, log.scripted_failure = "LinAlgError (a collapsed covariance)", True
            raise np.linalg.LinAlgError("Matrix is not positive definite (a component collapsed)")
        try:
            gamma = self._e(a["X"], *params)
        except Exception as exc:
            log.failed = _describe_failure("E_step", exc, log, params)
            raise
        log.last_e_output = gamma
        return gamma

    def _before_m_step(self, call) -> None:
        self._count_call()
        a = call.arguments
        if a is None:
            return
        gamma = a["gamma"]
        log = self.current
        if log is None or log.failed or not (_close(log.last_e_output, gamma) or _close(log.last_m_input, gamma)):
            log = self._new_restart()
            log.start = ("gamma", np.array(gamma, dtype=float, copy=True))
        repeated = log.last_m_input is not None and _identical(log.last_m_input, gamma)
        if not repeated:
            if self.max_iterations is not None and log.m_steps >= self.max_iterations:
                self._abort("max_iter", f"restart {log.index + 1} started iteration {log.m_steps + 1}, "
                                        f"past max_iter={self.max_iterations}")
            if self.stop_after is not None and log.m_steps >= self.stop_after:
                decisive = [g for _, _, m, g in log.bound_inputs if m == self.stop_after]
                if log.m_steps > self.stop_after or (decisive and not any(_identical(g, gamma) for g in decisive)):
                    self._abort("rtol", f"restart {log.index + 1} went on to iteration {log.m_steps + 1} although "
                                        f"the stopping rule should have ended it after {self.stop_after}")
            if self.rtol is not None:
                settled = _settled_at(log, self.rtol)
                if settled is not None and log.m_steps >= settled + self.patience:
                    self._abort("rtol", f"restart {log.index + 1} went on to iteration {log.m_steps + 1} although "
                                        f"its bound had improved by at most rtol={self.rtol:g} at iteration "
                                        f"{settled}")
            log.m_steps += 1
        log.last_m_input = gamma

    def _m_step(self, *args, **kwargs):
        a, log = self._arguments("M_step"), self.current
        try:
            out = self._m(a["X"], a["gamma"])
        except Exception as exc:
            log.failed = _describe_failure("M_step", exc, log, None)
            raise
        log.outputs.append(out)
        log.last_m_output = tuple(out) if isinstance(out, (tuple, list)) else out
        return out

    def _before_compute_vlb(self, call) -> None:
        self._count_call()
        log = self.current
        if call.arguments is not None and (log is None or log.failed):
            self._new_restart()

    def _compute_vlb(self, *args, **kwargs):
        a, log = self._arguments("compute_vlb"), self.current
        params = (a["pi"], a["mu"], a["sigma"])
        if self._script is not None:
            value = np.float64(self._script(log.index, log.m_steps))
        else:
            try:
                value = self._bound(a["X"], *params, a["gamma"])
            except Exception as exc:
                log.failed = _describe_failure("compute_vlb", exc, log, params)
                raise
        log.bounds.append((_as_number(value), params, log.m_steps))
        log.bound_inputs.append((_as_number(value), params, log.m_steps, a["gamma"]))
        return value

    # ------------------------------------------------------------------ summaries
    def finished(self) -> list[RestartLog]:
        return [log for log in self.restarts if not log.failed and log.bounds]

    def finals(self) -> list[float]:
        return [round(log.final, 3) for log in self.finished()]


def _as_number(value) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _settled_at(log: RestartLog, rtol: float) -> int | None:
    """The first number of M-steps m >= 2 at which the restart's bound had improved by at most rtol."""
    per_m = {}
    for value, _, m in log.bounds:
        per_m[m] = value
    for m in sorted(per_m):
        if m >= 2 and m - 1 in per_m and per_m[m - 1] != 0 and \
                abs((per_m[m] - per_m[m - 1]) / per_m[m - 1]) <= rtol:
            return m
    return None


def _describe_failure(step: str, exc: Exception, log: RestartLog, params) -> str:
    where = "its first E-step" if step == "E_step" and log.e_steps <= 1 and log.m_steps == 0 else \
        f"iteration {log.m_steps + (step == 'E_step')}"
    text = f"{step} raised {type(exc).__name__} at {where}"
    if params is not None and log.m_steps == 0:
        try:
            eig = np.linalg.eigvalsh(np.asarray(params[2], dtype=float))
            ratio = float(np.min(eig[:, 0] / np.maximum(eig[:, -1], 1e-300)))
            text += (f", on the starting covariances (smallest/largest eigenvalue {ratio:.1e})"
                     if ratio < 1e-6 else ", on the starting parameters")
        except Exception:
            pass
    return text


def _close(a, b) -> bool:
    """Nearly equal parameters or responsibilities (a copy, or a small regularisation, is the same)."""
    if a is None or b is None:
        return False
    a = tuple(a) if isinstance(a, (tuple, list)) else (a,)
    b = tuple(b) if isinstance(b, (tuple, list)) else (b,)
    try:
        if len(a) != len(b):
            return False
        for x, y in zip(a, b):
            x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
            if x.shape != y.shape:
                return False
            scale = float(np.abs(y).max()) if y.size else 0.0
            if not np.allclose(x, y, rtol=1e-4, atol=1e-6 * scale + 1e-12):
                return False
        return True
    except (TypeError, ValueError):
        return False


def _identical(a, b) -> bool:
    try:
        return np.array_equal(np.asarray(a), np.asarray(b))
    except (TypeError, ValueError):
        return False


def geometric_script(finals, gap: float = 200.0, ratio: float = 0.5):
    """Bounds rising geometrically to ``finals[r]`` in restart r (restarts beyond the list: -5000)."""
    def script(restart: int, m: int) -> float:
        final = finals[restart] if restart < len(finals) else -5000.0
        return final - gap * ratio**m
    return script


def stopping_iteration(script, restart: int, rtol: float) -> int:
    """The first m >= 1 whose relative improvement |(L_m - L_{m-1}) / L_{m-1}| is at most rtol."""
    m = 1
    while abs((script(restart, m) - script(restart, m - 1)) / script(restart, m - 1)) > rtol:
        m += 1
    return m


def _theory_bound(X, pi, mu, sigma, gamma):
    return np.float64(theory.bound(X, pi, mu, sigma, gamma))


def _steps(ctx) -> tuple:
    """E_step, M_step and compute_vlb for train_EM to run on: the reference when grading, the
    independent implementations of ``theory`` on the student's machine, so that train_EM is judged
    on its own there too (a bug in the student's compute_vlb costs points on compute_vlb only)."""
    if ctx.has_reference:
        return ctx.stand_in("E_step"), ctx.stand_in("M_step"), ctx.stand_in("compute_vlb")
    return theory.posterior, theory.m_step, _theory_bound


def _watch(ctx, *, script=None, fail_at=(), **limits) -> EMWatcher:
    e_step, m_step, bound = _steps(ctx)
    return EMWatcher(e_step, m_step, bound=None if script else bound, script=script, fail_at=fail_at, **limits)


def _run(ctx, watcher: EMWatcher, *args, **kwargs):
    """Call train_EM with the watcher's stand-ins; return its value, or None when the watcher stopped it."""
    outcome = ctx.attempt(*args, standins=watcher.standins(), **kwargs)
    if outcome.status == "aborted":
        return None
    if not outcome.ok:
        failure = ctx.failure(outcome)
        collapse = _all_collapsed(watcher)
        if collapse and outcome.error_type == "LinAlgError":
            failure.why = collapse
        raise failure
    return outcome.value


def _all_collapsed(watcher: EMWatcher) -> str:
    """An explanation when every restart ended with an exception, '' otherwise."""
    failed = [log for log in watcher.restarts if log.failed]
    if not failed or watcher.finished():
        return ""
    own = [log for log in failed if not log.scripted_failure]
    if not own:
        return ""
    first = own[0]
    which = "the only restart" if len(watcher.restarts) == 1 else f"every restart ({len(failed)} of them)"
    return (f"{which} collapsed: in restart {first.index + 1}, {first.failed}. A start must be a valid and "
            "well-conditioned mixture: start every covariance from the data's covariance "
            "(np.cov(X, rowvar=False)), uniform weights, and means at distinct random data points")


def _unpack(value, C: int, d: int, watcher: EMWatcher | None = None):
    if not isinstance(value, (tuple, list)) or len(value) != 4:
        raise Failed("train_EM should return (best_loss, best_pi, best_mu, best_sigma) but returned "
                     + expect.describe_value(value))
    collapse = _all_collapsed(watcher) if watcher is not None else ""
    if watcher is not None and watcher.finished() and any(v is None for v in value):
        raise Failed(f"train_EM returned {tuple(None if v is None else '...' for v in value)} although its restarts "
                     f"finished with bounds {watcher.finals()}",
                     why="the best restart was never recorded: no bound passed your test against the initial "
                         "best_loss; start from best_loss = None (or -np.inf: bounds are negative here) and keep a "
                         "restart when loss > best_loss")
    try:
        loss = expect.scalar(value[0], "best_loss returned by train_EM",
                             why_nonfinite=collapse or "best_loss should be the final bound of the best restart; "
                             "inf or NaN usually means it was never updated (initialise it to None, or test "
                             "`loss > best_loss` correctly) or a restart diverged")
        params = validate_parameters(tuple(value[1:]), C, d, "train_EM")
    except Failed as failure:
        if collapse:
            failure.why = collapse
        raise
    return loss, params


def _require_calls(watcher: EMWatcher) -> None:
    if not watcher.restarts or not any(log.bounds for log in watcher.restarts):
        raise Failed("train_EM did not call compute_vlb (or E_step/M_step)", why=USE_THE_STEPS)


def _best_restart(watcher: EMWatcher) -> RestartLog:
    finished = watcher.finished()
    if not finished:
        raise Failed("no restart of train_EM completed", why=_all_collapsed(watcher) or USE_THE_STEPS)
    return max(finished, key=lambda log: log.final)


def _returned_parameters_are_from(params, log: RestartLog) -> bool:
    candidates = [log.bounds[-1][1]] + log.outputs[-2:]
    return any(_close_exact(params, c) for c in candidates)


def _close_exact(a, b) -> bool:
    try:
        return all(np.shape(x) == np.shape(y) and np.allclose(x, y, rtol=1e-10, atol=0) for x, y in zip(a, b))
    except (TypeError, ValueError):
        return False


def _same(a: float, b: float | None) -> bool:
    return b is not None and bool(np.isclose(a, b, rtol=1e-12, atol=1e-9))


def _why_wrong_best(loss: float, watcher: EMWatcher) -> str:
    """Which restart's bound train_EM returned, and what that says about its bookkeeping."""
    finished = watcher.finished()
    finals = [log.final for log in finished]
    failed = [log for log in watcher.restarts if log.failed and log.bounds]
    if any(_same(loss, log.final) for log in failed) or any(
            _same(loss, value) for log in failed for value, _, _ in log.bounds):
        return ("best_loss is a bound of the restart that FAILED: update the best only after a restart has "
                "finished (after its loop, inside the try)")
    if len(finals) >= 2:
        if _same(loss, min(finals)):
            if all(f > 0 for f in finals):
                return ("you returned the restart whose bound is smallest: higher is better even when the bound "
                        "is positive (compare loss > best_loss, never absolute values)")
            return "you kept the WORST restart: the comparison is reversed (keep a restart when loss > best_loss)"
        if _same(loss, finished[-1].final):
            return ("you returned the LAST restart's bound: compare each restart with the best so far and keep it "
                    "only when loss > best_loss")
        if _same(loss, finished[0].final):
            return "best_loss was never updated after the first restart: compare every restart with the best so far"
    for log in watcher.restarts:
        if any(_same(loss, value) for value, _, _ in log.bounds[:-1]):
            return (f"best_loss is a bound from the middle of restart {log.index + 1}, not its final one: record "
                    "the best after a restart's loop has finished")
    return ("return the highest final bound over the restarts (the bound is a log-likelihood: higher is better, "
            "whatever its sign)")


# ----------------------------------------------------------------------------------------------
@ASSIGNMENT.check("train_EM", "keeps the best restart", 3, timeout=60,
                  hints=("After each restart, compare its final bound with the best so far (higher is better).",
                         "Store the loss AND the parameters of the best restart together, and return those."))
def keeps_best(ctx):
    X = sample()["data"]
    # Bounds are log-densities: negative for spread-out data, positive for concentrated data.
    # First, best, worst and last restart all differ, so the returned value tells which one was kept.
    for finals in ([-1050.0, -1000.0, -1100.0, -1020.0], [120.0, 180.0, 90.0, 150.0]):
        watcher = _watch(ctx, script=geometric_script(finals, gap=abs(finals[0]) / 5), max_iterations=31)
        value = _run(ctx, watcher, X, 3, rtol=1e-3, max_iter=30, restarts=4)
        if value is None:
            raise Failed(f"train_EM was stopped: {watcher.abort_reason}", why=USE_THE_STEPS)
        loss, params = _unpack(value, 3, 2, watcher)
        _require_calls(watcher)
        best = _best_restart(watcher)
        if not _same(loss, best.final):
            raise Failed(f"the restarts ended with bounds {watcher.finals()} but train_EM returned "
                         f"best_loss = {loss:.6g}", why=_why_wrong_best(loss, watcher))
        if not _returned_parameters_are_from(params, best):
            raise Failed(f"best_loss = {loss:.6g} is right, but the returned parameters are not the ones "
                         "that restart ended with",
                         why="save pi, mu and sigma at the same moment as best_loss")


@ASSIGNMENT.check("train_EM", "stops when the relative improvement is at most rtol", 2, timeout=60,
                  hints=("Stop a restart when abs((loss - previous_loss) / previous_loss) <= rtol.",
                         "The bound is negative here: without abs() the relative improvement is negative, and "
                         "an absolute improvement |loss - previous_loss| is not relative."))
def honours_rtol(ctx):
    X = sample()["data"]
    max_iter = 25        # above every stopping point (relative or absolute), and cheap when never reached
    for target in (4, 9):
        script = geometric_script([-1000.0, -1000.0])
        # An rtol halfway (geometrically) between two consecutive improvements: no rounding ambiguity.
        improvements = [abs((script(0, m) - script(0, m - 1)) / script(0, m - 1)) for m in (target - 1, target)]
        rtol = float(np.sqrt(improvements[0] * improvements[1]))
        expected = stopping_iteration(script, 0, rtol)
        watcher = _watch(ctx, script=script, stop_after=expected, max_iterations=max_iter + 1)
        value = _run(ctx, watcher, X, 3, rtol=rtol, max_iter=max_iter, restarts=2)
        if value is not None:
            _unpack(value, 3, 2, watcher)
        _require_calls(watcher)
        late = watcher.abort_kind == "rtol"
        early = [log for log in watcher.finished() if log.bound_iterations < expected]
        if not late and not early:
            continue
        # Where does it stop when nobody stops it? (for the explanation only)
        observer = _watch(ctx, script=script, max_iterations=max_iter + 1)
        _run(ctx, observer, X, 3, rtol=rtol, max_iter=max_iter, restarts=1)
        seen = observer.restarts[0].bound_iterations if observer.restarts else -1
        if not late:
            seen = early[0].bound_iterations
        values = ", ".join(f"{script(0, m):.4f}" for m in range(min(max(seen, 0), expected) + 2))
        raise Failed(f"with rtol={rtol:.3g} and bounds {values}, ... a restart should stop once it has seen "
                     f"the bound after {expected} iterations, but "
                     + (f"it went on (to {seen} iterations when not stopped)" if late else
                        f"restart {early[0].index + 1} stopped after {seen}"),
                     why=_why_wrong_stop(script, rtol, expected, seen, max_iter, observer if late else watcher))


def _why_wrong_stop(script, rtol: float, expected: int, seen: int, max_iter: int, watcher: EMWatcher) -> str:
    rule = "the stopping rule is relative: abs((L_t - L_(t-1)) / L_(t-1)) <= rtol, checked after every iteration"
    if seen >= max_iter or watcher.abort_kind == "max_iter":
        return "it never stopped early: is rtol used at all? " + rule
    absolute = next(m for m in range(1, 10 * max_iter) if abs(script(0, m) - script(0, m - 1)) <= rtol)
    if seen == absolute:
        return f"it stopped where the ABSOLUTE improvement |L_t - L_(t-1)| fell below rtol; {rule}"
    if seen < expected and seen <= 2:
        return ("it stopped at its first test: the bound is negative and rising, so (L_t - L_(t-1)) / L_(t-1) is "
                "negative: take abs() of the relative improvement. " + rule)
    if seen == expected + 1:
        return "it ran one iteration more than needed: test the improvement right after computing the bound. " + rule
    if seen == expected - 1:
        return "it stopped one iteration early: compare the new bound with the previous one, not older ones. " + rule
    return rule


@ASSIGNMENT.check("train_EM", "runs at most max_iter iterations per restart", 1, timeout=60,
                  hints=("Each restart runs at most max_iter iterations: `for it in range(max_iter):`.",))
def honours_max_iter(ctx):
    X = sample()["data"]
    max_iter = 7
    watcher = _watch(ctx, script=geometric_script([-1000.0, -990.0], gap=100.0, ratio=0.9),
                     max_iterations=max_iter + 1)
    value = _run(ctx, watcher, X, 3, rtol=1e-12, max_iter=max_iter, restarts=2)
    if value is not None:
        _unpack(value, 3, 2, watcher)
    _require_calls(watcher)
    # An iteration is an M-step on new responsibilities, whatever the loop looks like (E-step or
    # M-step first, an initial bound, a final E-step). A loop that tests before its M-step may skip
    # the last one: then it has run max_iter E-steps on new parameters.
    counts = [log.m_steps for log in watcher.restarts]
    right = [log.m_steps == max_iter or (log.m_steps == max_iter - 1 and log.e_distinct >= max_iter)
             for log in watcher.restarts]
    if watcher.abort_kind == "max_iter" or len(counts) != 2 or not all(right) \
            or any(log.e_distinct > max_iter + 1 for log in watcher.restarts):
        if watcher.abort_kind == "max_iter":
            why = "it kept going past max_iter (is max_iter used at all?)"
        elif any(c == max_iter + 1 for c in counts):
            why = "one iteration too many: `range(max_iter + 1)` or `while it <= max_iter` runs max_iter + 1"
        elif any(c < max_iter - 1 for c in counts) and len(counts) == 2:
            why = "it stopped early although the bound kept improving (rtol is tiny here)"
        elif len(counts) != 2:
            why = f"there should be restarts=2 restarts, and the checks saw {len(counts)}"
        else:
            why = "each restart runs at most max_iter E/M iterations, and there are `restarts` of them"
        raise Failed(f"with max_iter={max_iter}, restarts=2 and a bound that keeps improving, train_EM ran "
                     f"{counts}{'...' if watcher.abort_kind else ''} iterations per restart; expected {max_iter} "
                     f"in each of 2 restarts", why=why)


@ASSIGNMENT.check("train_EM", "skips restarts whose covariances collapse", 2, timeout=60,
                  hints=("Wrap one whole restart in try/except np.linalg.LinAlgError and move on to the next.",
                         "A restart that failed must not be compared with the others, even if its bound "
                         "looked good before it failed."))
def skips_collapsed(ctx):
    X = sample()["data"]
    scenarios = [
        # restart 2 fails after two iterations, having reached bounds above every finished restart
        ([-1050.0, -900.0, -1000.0], 3, {(1, 2)}),
        # the very first restart fails at once
        ([-900.0, -1000.0], 2, {(0, 0)}),
    ]
    for finals, restarts, fail_at in scenarios:
        watcher = _watch(ctx, script=geometric_script(finals), fail_at=fail_at, max_iterations=31)
        outcome = ctx.attempt(X, 3, rtol=1e-3, max_iter=30, restarts=restarts, standins=watcher.standins())
        if outcome.status == "error" and outcome.error_type == "LinAlgError":
            raise Failed("train_EM let a LinAlgError from a collapsed restart escape",
                         why="catch np.linalg.LinAlgError around each restart and continue with the next")
        if outcome.status == "aborted":
            raise Failed(f"train_EM was stopped: {watcher.abort_reason}", why=USE_THE_STEPS)
        if not outcome.ok:
            raise ctx.failure(outcome)
        ran = len(watcher.restarts)
        if ran < restarts:
            plain = _watch(ctx, script=geometric_script(finals), max_iterations=31)
            _run(ctx, plain, X, 3, rtol=1e-3, max_iter=30, restarts=restarts)
            why = ("the restarts after the failed one never ran: put the try/except INSIDE the loop over restarts "
                   "(around one restart), not around the whole loop")
            if len(plain.restarts) < restarts:
                why = (f"it runs fewer restarts than asked even when none fails ({len(plain.restarts)} of "
                       f"restarts={restarts}): run exactly `restarts` of them")
            raise Failed(f"restart {max(i for i, _ in fail_at) + 1} of {restarts} raised LinAlgError and only "
                         f"{ran} restart(s) ran in all", why=why)
        loss, params = _unpack(outcome.value, 3, 2, watcher)
        _require_calls(watcher)
        best = _best_restart(watcher)
        if not _same(loss, best.final):
            raise Failed(f"a restart raised LinAlgError; the finished restarts ended at {watcher.finals()}, "
                         f"but train_EM returned best_loss = {loss:.6g}", why=_why_wrong_best(loss, watcher))
        if not _returned_parameters_are_from(params, best):
            raise Failed("after a failed restart, the returned parameters do not belong to the best finished restart",
                         why="save pi, mu and sigma together with best_loss")


@ASSIGNMENT.check("train_EM", "restarts start from different points", 1, timeout=60,
                  hints=("Draw each restart's start inside the restart loop, from the global generator "
                         "(np.random.choice) or one generator created once, outside the loop.",))
def different_starts(ctx):
    X = sample()["data"]
    watcher = _watch(ctx, script=geometric_script([-1000.0, -1001.0, -1002.0, -1003.0]), max_iterations=31)
    value = _run(ctx, watcher, X, 3, rtol=1e-3, max_iter=30, restarts=4)
    if value is not None:
        _unpack(value, 3, 2, watcher)
    _require_calls(watcher)
    starts = [log.start for log in watcher.restarts if log.start is not None]
    distinct = {(kind, tuple(np.round(np.ravel(value), 12))) for kind, value in starts}
    if len(starts) >= 2 and len(distinct) < len(starts):
        raise Failed(f"{len(starts)} restarts began from only {len(distinct)} different starting point(s)",
                     why="each restart must draw a new random start; re-seeding the generator inside the "
                         "loop (np.random.seed(0)) or a fixed initialisation makes every restart the same run")


def restarts_matter_data():
    """Three clusters, two of them close: single EM runs often stop in a worse local optimum."""
    mu = np.array([[0.0, 0.0], [4.0, 0.0], [2.0, 6.0]])
    sigma = np.stack([np.eye(2) * 0.5] * 3)
    return theory.sample(np.random.default_rng(0), 300, np.array([0.3, 0.3, 0.4]), mu, sigma)


# The global optimum of the bound on restarts_matter_data() and the best local optimum below it
# (measured with many converged runs; see tests/test_gmm_checks.py::test_restarts_matter_data).
GLOBAL_OPTIMUM = -931.1
NEXT_OPTIMUM = -943.0


@ASSIGNMENT.check("train_EM", "finds the best optimum where restarts matter", 2, timeout=120,
                  hints=("Each restart needs its own random start, and train_EM must keep the best one.",))
def finds_optimum(ctx):
    X = restarts_matter_data()
    rtol, max_iter, restarts = 1e-5, 200, 10
    watcher = _watch(ctx, rtol=rtol, patience=3, max_iterations=max_iter + 1, max_restarts=restarts + 5)
    value = _run(ctx, watcher, X, 3, rtol=rtol, max_iter=max_iter, restarts=restarts)
    if value is None:
        raise Failed(f"train_EM was stopped before it finished: {watcher.abort_reason}",
                     why="each restart must stop when the relative improvement of the bound is at most rtol "
                         "(see the stopping check), or after max_iter iterations")
    loss, params = _unpack(value, 3, 2, watcher)
    threshold = (GLOBAL_OPTIMUM + NEXT_OPTIMUM) / 2
    if loss < threshold:
        finals = watcher.finals()
        starts = {tuple(np.round(np.ravel(log.start[1]), 12)) for log in watcher.restarts if log.start is not None}
        if finals and max(finals) >= threshold:
            why = (f"one of your restarts reached {max(finals):.2f}, but train_EM returned another: "
                   + _why_wrong_best(loss, watcher))
        elif len(starts) <= 1 and len(watcher.restarts) > 1:
            why = "every restart began from the same point: each restart needs a different random start"
        else:
            why = ("none of your restarts reached the best optimum: start each one from a different random point "
                   "(means at random data points work well)")
        raise Failed(f"with {restarts} restarts train_EM returned best_loss = {loss:.2f}, but the best optimum is "
                     f"{GLOBAL_OPTIMUM:.1f} (single runs on this data often stop near {NEXT_OPTIMUM:.0f})", why=why)
    ll = theory.log_likelihood(X, *params)
    if not (ll >= loss - 1e-6 * abs(loss) and ll - loss <= 1e-3 * abs(loss)):
        raise Failed(f"best_loss = {loss:.4f}, but the returned parameters have log-likelihood {ll:.4f}",
                     why="return the parameters that produced best_loss")
