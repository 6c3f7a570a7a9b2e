"""Checks of train_EM.

train_EM is judged by watching it work: its calls to E_step, M_step and compute_vlb go to
stand-ins (the reference when grading, the student's own functions on their machine) wrapped by
an ``EMWatcher`` that follows the restarts. A scripted bound makes the stopping rule and the
choice of the best restart testable exactly, whatever random initialisation the student uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ...engine import Failed, expect
from . import ASSIGNMENT, theory
from .checks_steps import validate_parameters
from .fixtures import sample

USE_THE_STEPS = ("train_EM must call E_step, M_step and compute_vlb (by those names) for every iteration; "
                 "the checks follow the restarts through these calls")


@dataclass
class RestartLog:
    e_steps: int = 0
    m_steps: int = 0
    failed: bool = False
    start: object = None                          # what the restart began from: means (E-step first) or gamma
    outputs: list = field(default_factory=list)   # (pi, mu, sigma) returned by each M-step
    bounds: list = field(default_factory=list)    # (value, (pi, mu, sigma)) for each compute_vlb call


class EMWatcher:
    """Stand-ins for E_step, M_step and compute_vlb that notice where each restart begins.

    A new restart begins when E_step receives parameters that are not (close to) the last M-step's
    output, or M_step receives responsibilities that are not the last E-step's output.

    Parameters
    ----------
    e_step, m_step : callables
        The functions that do the work.
    bound : callable, optional
        The real compute_vlb. Exactly one of ``bound`` and ``script`` is given.
    script : callable, optional
        ``script(restart, m) -> float``: the bound reported after ``m`` M-steps of a restart.
    fail_at : set of (restart, e_step_number), optional
        E-steps that raise ``np.linalg.LinAlgError`` (a collapsed covariance), counted from 1.
    """

    def __init__(self, e_step, m_step, bound=None, script=None, fail_at=()):
        self._e, self._m, self._bound, self._script = e_step, m_step, bound, script
        self.fail_at = set(fail_at)
        self.restarts: list[RestartLog] = []
        self._last_params = None
        self._last_gamma = None

    def standins(self) -> dict:
        return {"E_step": self.E_step, "M_step": self.M_step, "compute_vlb": self.compute_vlb}

    def E_step(self, X, pi, mu, sigma):
        if not self.restarts or not _close(self._last_params, (pi, mu, sigma)):
            self.restarts.append(RestartLog(start=("means", np.asarray(mu, dtype=float).copy())))
        log = self.restarts[-1]
        log.e_steps += 1
        if (len(self.restarts) - 1, log.e_steps) in self.fail_at:
            log.failed = True
            raise np.linalg.LinAlgError("Matrix is not positive definite (a component collapsed)")
        self._last_gamma = self._e(X, pi, mu, sigma)
        return self._last_gamma

    def M_step(self, X, gamma):
        if not self.restarts or not _close(self._last_gamma, gamma):
            self.restarts.append(RestartLog(start=("gamma", np.asarray(gamma, dtype=float).copy())))
        log = self.restarts[-1]
        out = self._m(X, gamma)
        log.m_steps += 1
        log.outputs.append(out)
        self._last_params = out
        return out

    def compute_vlb(self, X, pi, mu, sigma, gamma):
        if not self.restarts:
            self.restarts.append(RestartLog())
        log = self.restarts[-1]
        if self._script is not None:
            value = float(self._script(len(self.restarts) - 1, log.m_steps))
        else:
            value = self._bound(X, pi, mu, sigma, gamma)
        log.bounds.append((value, (pi, mu, sigma)))
        return value


def _close(a, b) -> bool:
    if a is None or b is None:
        return False
    a = a if isinstance(a, tuple) else (a,)
    b = b if isinstance(b, tuple) else (b,)
    try:
        return len(a) == len(b) and all(np.shape(x) == np.shape(y) and np.allclose(x, y, rtol=1e-3, atol=1e-8)
                                        for x, y in zip(a, b))
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


def _watch(ctx, *, script=None, fail_at=()):
    return EMWatcher(ctx.stand_in("E_step"), ctx.stand_in("M_step"),
                     bound=None if script else ctx.stand_in("compute_vlb"), script=script, fail_at=fail_at)


def _unpack(value, C: int, d: int):
    if not isinstance(value, (tuple, list)) or len(value) != 4:
        raise Failed("train_EM should return (best_loss, best_pi, best_mu, best_sigma) but returned "
                     + expect.describe_value(value))
    loss = expect.scalar(value[0], "best_loss returned by train_EM")
    params = validate_parameters(tuple(value[1:]), C, d, "train_EM")
    return loss, params


def _require_calls(watcher: EMWatcher) -> None:
    if not watcher.restarts or not any(log.bounds for log in watcher.restarts):
        raise Failed("train_EM did not call compute_vlb (or E_step/M_step)", why=USE_THE_STEPS)


def _best_restart(watcher: EMWatcher) -> RestartLog:
    finished = [log for log in watcher.restarts if not log.failed and log.bounds]
    if not finished:
        raise Failed("no restart of train_EM completed", why=USE_THE_STEPS)
    return max(finished, key=lambda log: log.bounds[-1][0])


def _returned_parameters_are_from(params, log: RestartLog) -> bool:
    candidates = [log.bounds[-1][1]] + log.outputs[-2:]
    return any(_close_exact(params, c) for c in candidates)


def _close_exact(a, b) -> bool:
    return all(np.shape(x) == np.shape(y) and np.allclose(x, y, rtol=1e-10, atol=0) for x, y in zip(a, b))


# ----------------------------------------------------------------------------------------------
@ASSIGNMENT.check("train_EM", "keeps the best restart", 3, timeout=60,
                  hints=("After each restart, compare its final bound with the best so far (higher is better).",
                         "Store the loss AND the parameters of the best restart together, and return those."))
def keeps_best(ctx):
    X = sample()["data"]
    # Bounds are log-densities: negative for spread-out data, positive for concentrated data.
    for finals in ([-1050.0, -1000.0, -1020.0, -1100.0], [120.0, 180.0, 150.0, 90.0]):
        watcher = _watch(ctx, script=geometric_script(finals, gap=abs(finals[0]) / 5))
        loss, params = _unpack(ctx.run(X, 3, restarts=4, standins=watcher.standins()), 3, 2)
        _require_calls(watcher)
        best = _best_restart(watcher)
        seen = [round(log.bounds[-1][0], 3) for log in watcher.restarts if log.bounds]
        if not np.isclose(loss, best.bounds[-1][0], rtol=1e-12, atol=1e-9):
            raise Failed(f"the restarts ended with bounds {seen} but train_EM returned best_loss = {loss:.6g}",
                         why="return the highest final bound over the restarts (the bound is a log-likelihood: "
                             "higher is better, whatever its sign)")
        if not _returned_parameters_are_from(params, best):
            raise Failed(f"best_loss = {loss:.6g} is right, but the returned parameters are not the ones "
                         "that restart ended with",
                         why="save pi, mu and sigma at the same moment as best_loss")


@ASSIGNMENT.check("train_EM", "stops when the relative improvement is at most rtol", 2, timeout=60,
                  hints=("Stop a restart when abs((loss - previous_loss) / previous_loss) <= rtol.",))
def honours_rtol(ctx):
    X = sample()["data"]
    for target in (4, 9):
        script = geometric_script([-1000.0])
        # An rtol halfway (geometrically) between two consecutive improvements: no rounding ambiguity.
        improvements = [abs((script(0, m) - script(0, m - 1)) / script(0, m - 1)) for m in (target - 1, target)]
        rtol = float(np.sqrt(improvements[0] * improvements[1]))
        expected = stopping_iteration(script, 0, rtol)
        watcher = _watch(ctx, script=script)
        _unpack(ctx.run(X, 3, rtol=rtol, max_iter=60, restarts=1, standins=watcher.standins()), 3, 2)
        _require_calls(watcher)
        done = watcher.restarts[0].m_steps
        if done not in (expected, expected + 1):
            values = ", ".join(f"{script(0, m):.4f}" for m in range(min(done, expected) + 2))
            raise Failed(f"with rtol={rtol:.3g} and bounds {values}, ... the restart should stop after "
                         f"{expected} iterations, but it ran {done}",
                         why="the stopping rule is relative: abs((L_t - L_(t-1)) / L_(t-1)) <= rtol, "
                             "checked after every iteration"
                         + (" (it never stopped early: is rtol used at all?)" if done >= 60 else ""))


@ASSIGNMENT.check("train_EM", "runs at most max_iter iterations per restart", 1, timeout=60)
def honours_max_iter(ctx):
    X = sample()["data"]
    watcher = _watch(ctx, script=geometric_script([-1000.0, -990.0], gap=100.0, ratio=0.9))
    _unpack(ctx.run(X, 3, rtol=1e-12, max_iter=7, restarts=2, standins=watcher.standins()), 3, 2)
    _require_calls(watcher)
    # An iteration is an E-step plus an M-step; a loop may skip the last M-step or add a final
    # E-step, so count the larger of the two.
    counts = [max(log.e_steps, log.m_steps) for log in watcher.restarts]
    if len(counts) != 2 or any(c not in (7, 8) for c in counts):
        raise Failed(f"with max_iter=7, restarts=2 and a bound that keeps improving, train_EM ran "
                     f"{counts} iterations per restart; expected 7 in each of 2 restarts",
                     why="each restart runs at most max_iter E/M iterations, and there are `restarts` of them")


@ASSIGNMENT.check("train_EM", "skips restarts whose covariances collapse", 2, timeout=60,
                  hints=("Wrap one whole restart in try/except np.linalg.LinAlgError and move on to the next.",
                         "A restart that failed must not be compared with the others, even if its bound "
                         "looked good before it failed."))
def skips_collapsed(ctx):
    X = sample()["data"]
    scenarios = [
        # restart 1 fails at its third E-step, after reaching bounds above every finished restart
        ([-1050.0, -900.0, -1000.0], 3, {(1, 3)}),
        # the very first restart fails at once
        ([-900.0, -1000.0], 2, {(0, 1)}),
    ]
    for finals, restarts, fail_at in scenarios:
        watcher = _watch(ctx, script=geometric_script(finals), fail_at=fail_at)
        try:
            loss, params = _unpack(ctx.run(X, 3, restarts=restarts, standins=watcher.standins()), 3, 2)
        except Failed as failure:
            if "LinAlgError" in failure.message:
                raise Failed("train_EM let a LinAlgError from a collapsed restart escape",
                             why="catch np.linalg.LinAlgError around each restart and continue with the next") from None
            raise
        _require_calls(watcher)
        best = _best_restart(watcher)
        if not np.isclose(loss, best.bounds[-1][0], rtol=1e-12, atol=1e-9):
            failed = [log for log in watcher.restarts if log.failed]
            partial = failed[0].bounds[-1][0] if failed and failed[0].bounds else None
            why = "skip the failed restart and keep the best of the others"
            if partial is not None and np.isclose(loss, partial):
                why = ("best_loss is the last bound of the restart that FAILED: update the best only after a "
                       "restart has finished")
            raise Failed(f"a restart raised LinAlgError; the finished restarts ended at "
                         f"{[round(log.bounds[-1][0], 3) for log in watcher.restarts if not log.failed and log.bounds]}, "
                         f"but train_EM returned best_loss = {loss:.6g}", why=why)
        if not _returned_parameters_are_from(params, best):
            raise Failed("after a failed restart, the returned parameters do not belong to the best finished restart",
                         why="save pi, mu and sigma together with best_loss")


@ASSIGNMENT.check("train_EM", "restarts start from different points", 1, timeout=60)
def different_starts(ctx):
    X = sample()["data"]
    watcher = _watch(ctx, script=geometric_script([-1000.0, -1001.0, -1002.0, -1003.0]))
    _unpack(ctx.run(X, 3, restarts=4, standins=watcher.standins()), 3, 2)
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


@ASSIGNMENT.check("train_EM", "finds the best optimum where restarts matter", 2, timeout=120)
def finds_optimum(ctx):
    X = restarts_matter_data()
    loss, params = _unpack(ctx.run(X, 3, rtol=1e-6, max_iter=500, restarts=15), 3, 2)
    threshold = (GLOBAL_OPTIMUM + NEXT_OPTIMUM) / 2
    if loss < threshold:
        raise Failed(f"with 15 restarts train_EM returned best_loss = {loss:.2f}, but the best optimum is "
                     f"{GLOBAL_OPTIMUM:.1f} (single runs on this data often stop near {NEXT_OPTIMUM:.0f})",
                     why="each restart needs a different random start (means at random data points work well), "
                         "and train_EM must keep the best restart")
    ll = theory.log_likelihood(X, *params)
    if not (ll >= loss - 1e-6 * abs(loss) and ll - loss <= 1e-3 * abs(loss)):
        raise Failed(f"best_loss = {loss:.4f}, but the returned parameters have log-likelihood {ll:.4f}",
                     why="return the parameters that produced best_loss")
