"""Checks of the "debug your EM" functions: assertions that must pass on a correct EM and fire on a broken one.

Each assert_* function gets EM's building blocks as arguments. We hand it correct ones (it must
return quietly) and, one at a time, broken ones with a classic bug (it must raise
AssertionError). Points are earned only by an assertion that tells them apart: catching a bug
counts only if the assertion is also quiet on the correct EM, and being quiet counts only if it
fires on at least one bug (an assertion that always raises, or never does, earns nothing).

The parts record every call (``em_parts``), so a failure names what the assertion actually did:
the half-steps it evaluated, the perturbations it tried, the gap it accepted.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...engine import Failed
from ...engine.failures import CannotCheckHere
from . import ASSIGNMENT, em_parts as parts, theory
from .em_parts import Fitter, Parts


@dataclass(frozen=True)
class Scenario:
    """One call of the student's assertion: the inputs, and what a correct assertion must do."""

    key: str
    label: str                      # what the student is told ("exact E- and M-steps from ...")
    build: Callable                 # () -> (args, kwargs, recorder): the call's arguments and what records it
    correct: bool


# Outcomes of the assertion per executor (one submission) and scenario: the checks of one task
# share them, so each scenario runs once. Keyed by the grader-side executor, never by anything
# of the student's process.
_OUTCOMES: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _attempt(ctx, scenario: Scenario):
    """(outcome, recorder) of the student's assertion on ``scenario`` (memoised per submission)."""
    memo = _OUTCOMES.setdefault(ctx.executor, {})
    key = (ctx.task.name, scenario.key)
    if key not in memo:
        args, kwargs, recorder = scenario.build()
        started = time.process_time()
        outcome = ctx.attempt(*args, **kwargs)
        # The call's CPU time in this process: what student-side checks know of the assertion's cost
        # (in-process; when grading the student's code runs in the sandbox and this is not used).
        memo.setdefault(("cpu", ctx.task.name), {})[scenario.key] = time.process_time() - started
        memo[key] = (outcome, recorder)
    return memo[key]


def _attempted(ctx, scenario: Scenario) -> bool:
    """Whether ``scenario`` already ran for this submission."""
    return (ctx.task.name, scenario.key) in _OUTCOMES.get(ctx.executor, {})


def _fires(outcome) -> bool:
    return outcome.status == "error" and outcome.error_type == "AssertionError"


def _crash(ctx, outcome, scenario: Scenario, recorder, explain) -> Failed:
    failure = ctx.failure(outcome)
    if outcome.status == "aborted":   # a part stopped the call: its verdict (a str) says why
        why = outcome.value if isinstance(outcome.value, str) else ""
    else:
        why = explain(outcome, recorder) if explain else ""
    kind = "a CORRECT EM" if scenario.correct else "an EM with a bug"
    failure.message = f"on {kind} ({scenario.label}) {failure.message}"
    failure.why = why or failure.why
    return failure


def quiet_check(ctx, correct: list[Scenario], bugs: list[Scenario], false_alarm, crash=None,
                runs_here: Callable | None = None) -> None:
    """Quiet on every correct scenario, and useful: it fires on at least one bug.

    ``runs_here(scenario)`` (student-side only) says whether a correct scenario is run in this
    check() (see ``_runs_here``); one that is not leaves a note on the passed check. Every bug
    scenario the verdict "useful" needs is run.
    """
    left_out = []
    for scenario in correct:
        if runs_here is not None and not runs_here(scenario):
            left_out.append(scenario)
            continue
        outcome, recorder = _attempt(ctx, scenario)
        if outcome.ok:
            continue
        if _fires(outcome):
            why = (_NOTHING_CALLED.format(what="raised AssertionError") if not _calls(recorder)
                   else false_alarm(ctx, scenario, recorder, outcome))
            raise Failed(f"{ctx.task.name} raised AssertionError on a CORRECT EM ({scenario.label}): "
                         f"{outcome.message[:300]}", why=why)
        raise _crash(ctx, outcome, scenario, recorder, crash)
    for scenario in bugs:
        if _fires(_attempt(ctx, scenario)[0]):
            if left_out:
                ctx.note = _left_out_note(ctx, left_out)
            return
    stopped = [b for b in bugs if _attempt(ctx, b)[0].status == "aborted"]
    if stopped:   # it never decided on a bug: say that, not "never raises"
        outcome, recorder = _attempt(ctx, stopped[0])
        raise _crash(ctx, outcome, stopped[0], recorder, None)
    silent = not any(_calls(_attempt(ctx, b)[1]) for b in bugs)
    raise Failed(f"{ctx.task.name} never raises, not even for an EM with a bug "
                 f"({'; '.join(b.label for b in bugs)})",
                 why=(_NOTHING_CALLED.format(what="returned") + "; " if silent else "")
                 + "an assertion that can never fail checks nothing: it earns its points for staying quiet on "
                   "correct code only when it also fires on broken code (see the other checks for what it missed)")


_NOTHING_CALLED = ("it {what} without calling any of the functions it was given (E_step, M_step, compute_vlb, "
                   "log_likelihood or train_EM): an assertion must compute the property it asserts")


def _calls(recorder) -> int:
    """How many calls a scenario's parts (or train_EM stand-in) received."""
    return len(recorder.events) if hasattr(recorder, "events") else len(getattr(recorder, "calls", []))


def bug_check(ctx, bug: Scenario, main: Scenario, missed, crash=None) -> None:
    """Fires on ``bug``, and counts only when quiet on the main correct scenario."""
    outcome, recorder = _attempt(ctx, bug)
    if not _fires(outcome):
        if outcome.ok:
            correct, _ = _attempt(ctx, main)
            if _fires(correct):
                why = ("it does the opposite of what it should: it raises on a CORRECT EM and stays quiet on this "
                       "broken one, so its comparison is probably reversed (see 'passes on a correct EM')")
            else:
                why = missed(ctx, bug, recorder)
            raise Failed(f"{ctx.task.name} did not raise AssertionError for an EM with a bug: {bug.label}", why=why)
        raise _crash(ctx, outcome, bug, recorder, crash)
    correct, _ = _attempt(ctx, main)
    if not correct.ok:
        raise Failed(f"{ctx.task.name} raised for the bug ({bug.label}), but it also raises on a CORRECT EM "
                     f"({main.label}), so this does not count",
                     why="an assertion earns its points for catching a bug only if it stays quiet on correct code "
                         "(see 'passes on a correct EM')")


def _relative(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


# =============================================================================== assert_bound_never_decreases
N_ITER = 20


def _monotone(key, label, start, correct, round_off="", **swap):
    def build():
        p = Parts(round_off=round_off, **swap)
        X, pi, mu, sigma = start()
        return (X, pi, mu, sigma, p.E_step, p.M_step, p.compute_vlb), {"n_iter": N_ITER}, p.record
    return Scenario(key, label, build, correct)


MONOTONE_CORRECT = [
    _monotone("notebook", "exact E- and M-steps from the notebook's start", parts.notebook_start, True),
    _monotone("converged", "exact E- and M-steps started at a converged point, where the bound changes only "
                           f"by round-off ({parts.ROUND_OFF:g} relative)", parts.converged_start, True,
              round_off="alternate"),
]
MONOTONE_BUGS = {
    "doubling": _monotone("doubling", "the M-step returns twice the right covariances", parts.notebook_start, False,
                          m_step=parts.m_step_doubling_covariances),
    "tempered": _monotone("tempered", "the E-step's softmax uses the wrong temperature (0.3)", parts.notebook_start,
                          False, e_step=parts.e_step_tempered(0.3)),
    "half-step": _monotone("half-step", "the E-step's softmax is too sharp (temperature 1.5): the bound drops at "
                                        "some E-steps and rises again at the next M-step", parts.notebook_start,
                           False, e_step=parts.e_step_tempered(1.5)),
}


def _big_drop(after: str) -> Scenario:
    """Correct steps and a scripted bound that drops by 60 % right after one kind of half-step."""
    def build():
        p = Parts(drop_after=after)
        X, pi, mu, sigma = parts.notebook_start()
        return (X, pi, mu, sigma, p.E_step, p.M_step, p.compute_vlb), {"n_iter": N_ITER}, p.record
    return Scenario(f"big drop after {after}", f"a bound that drops by 60 % after an {after}-step", build, False)


def _bounds(recorder):
    return [(e.note.get("after", "other"), e.output) for e in recorder.of("vlb") if e.output is not None]


def _monotone_false_alarm(ctx, scenario, recorder, outcome) -> str:
    values = _bounds(recorder)
    if len(values) >= 2:
        (_, before), (_, after) = values[-2], values[-1]
        if after > before and _relative(after, before) > 1e-11:
            return (f"it raised when the bound went UP, from {before:.10g} to {after:.10g}: the inequality is "
                    "reversed (the bound is a log-likelihood to climb, not a loss: assert new >= old - slack)")
        if _relative(after, before) <= 1e-11:
            return (f"it raised when the bound changed by round-off only ({before:.15g} -> {after:.15g}, "
                    f"{_relative(after, before):.0e} relative): compare with a small relative slack, e.g. "
                    "new >= old - 1e-9 * abs(old)")
        first = values[0][1]
        if after < first:
            return "it compares values that are not consecutive"
    return ("on a correct EM the bound never decreases by more than round-off: compare each value with the "
            "previous one, new >= old - 1e-9 * abs(old)")


def _monotone_missed(ctx, bug, recorder) -> str:
    e_steps, m_steps = recorder.of("E"), recorder.of("M")
    values = _bounds(recorder)
    if not values:
        return "it never called compute_vlb: evaluate the bound after every E-step and every M-step"
    if len(m_steps) < N_ITER:
        return (f"it ran {len(m_steps)} M-step(s) although n_iter={N_ITER}: this bug shows after a few iterations; "
                "run all n_iter of them")
    hint = ""
    drops = [(i, values[i - 1][1], values[i][1]) for i in range(1, len(values)) if values[i][1] < values[i - 1][1]]
    if drops:
        i, before, after = max(drops, key=lambda d: d[1] - d[2])
        drop = f"the bound fell from {before:.6g} to {after:.6g} ({_relative(after, before):.1e} relative) between " \
               "two of your evaluations and your assertion stayed quiet"
        after_e = _fires(_attempt(ctx, _big_drop("E"))[0])
        after_m = _fires(_attempt(ctx, _big_drop("M"))[0])
        if after_e and after_m:
            return (hint + drop + ", although it fires for a 60 % drop: the slack is far too loose (round-off is "
                    "about 1e-13 relative; 1e-9 * abs(old) is plenty)")
        if after_e != after_m:
            missed_step, caught_step = ("M", "E") if after_e else ("E", "M")
            return (hint + drop + f"; it notices a 60 % drop after an {caught_step}-step but not after an "
                    f"{missed_step}-step: compare the bound after every {missed_step}-step with the value just "
                    f"before that {missed_step}-step too (every half-step, not only some)")
        first = values[0][1]
        if all(v >= first for _, v in values):
            return (hint + drop + "; it stays quiet even when the bound drops by 60 % but stays above its FIRST "
                    "value: compare each value with the previous one, not with the first")
        return hint + drop + ": compare each value with the previous one, new >= old - 1e-9 * abs(old)"
    # No drop between the student's own evaluations: did they skip half-steps?
    places = {after for after, _ in values}
    if not {"E", "M"} <= places:
        seen = "after the E-steps" if "E" in places else "after the M-steps" if "M" in places else "at other points"
        return (hint + f"you evaluate the bound only {seen} (once per full iteration), and with this bug the bound "
                "drops at one half-step and rises again at the next: evaluate it after EVERY E-step and EVERY "
                "M-step, as the task asks")
    return hint + ("the property your function asserts is broken by this bug; evaluate the bound after every "
                   "half-step and compare each value with the previous one")


@ASSIGNMENT.check("assert_bound_never_decreases", "passes on a correct EM", 1, timeout=60,
                  hints=("Compare each bound with the previous one with a small relative slack: "
                         "new >= old - 1e-9 * abs(old).",
                         "Near convergence the bound only wobbles by round-off; an exact comparison fires there."))
def monotone_correct(ctx):
    quiet_check(ctx, MONOTONE_CORRECT, list(MONOTONE_BUGS.values()), _monotone_false_alarm)


@ASSIGNMENT.check("assert_bound_never_decreases", "catches an M-step that doubles the covariances", 1, timeout=60,
                  hints=("Evaluate the bound right after the M-step too: that is where this bug shows.",))
def monotone_bad_m(ctx):
    bug_check(ctx, MONOTONE_BUGS["doubling"], MONOTONE_CORRECT[0], _monotone_missed)


@ASSIGNMENT.check("assert_bound_never_decreases", "catches an E-step that is not the posterior", 1, timeout=60,
                  hints=("Evaluate the bound right after the E-step too: that is where this bug shows.",))
def monotone_bad_e(ctx):
    bug_check(ctx, MONOTONE_BUGS["tempered"], MONOTONE_CORRECT[0], _monotone_missed)


@ASSIGNMENT.check("assert_bound_never_decreases", "catches a drop between half-steps", 1, timeout=60,
                  hints=("Evaluate the bound after EVERY half-step: after the E-step and after the M-step.",
                         "A bug can lower the bound at one half-step and raise it at the next: values compared "
                         "once per iteration never see it."))
def monotone_half_step(ctx):
    bug_check(ctx, MONOTONE_BUGS["half-step"], MONOTONE_CORRECT[0], _monotone_missed)


# =============================================================================== assert_m_step_maximises
def _maximises(key, label, start, correct, round_off="", kwargs=None, **swap):
    def build():
        p = Parts(round_off=round_off, **swap)
        X, pi, mu, sigma = start()
        gamma = theory.posterior(X, pi, mu, sigma)
        return (X, gamma, p.M_step, p.compute_vlb), dict(kwargs or {}), p.record
    return Scenario(key, label, build, correct)


MAXIMISES_CORRECT = [
    _maximises("notebook", "exact M-step on the notebook's data", parts.notebook_start, True),
    _maximises("small variances", "exact M-step on data with variances near 1e-4", parts.small_variance_start, True),
    _maximises("tiny perturbations", "exact M-step, perturbations of relative size scale=1e-9, where the bound "
                                     "differs from the optimum's by round-off only", parts.notebook_start, True,
               round_off="optimum", kwargs={"scale": 1e-9}),
]
MAXIMISES_BUGS = {
    "uncentred": _maximises("uncentred", "sigma is the scatter around 0 instead of around the new mean",
                            parts.notebook_start, False, m_step=parts.m_step_uncentred_covariances),
    "uniform": _maximises("uniform", "pi is always uniform", parts.notebook_start, False,
                          m_step=parts.m_step_uniform_weights),
    "means": _maximises("means", "mu is divided by N instead of N_c", parts.notebook_start, False,
                        m_step=parts.m_step_means_divided_by_n),
}
_BROKEN_PARAMETER = {"uncentred": "sigma", "uniform": "pi", "means": "mu"}


def _perturbations(recorder):
    """(optimum's bound, [(params, value, outside) of every other bound]) from a recorder."""
    bounds = [e for e in recorder.of("vlb")]
    best = next((e.output for e in bounds if e.note.get("after") == "M"), None)
    others = [(e.inputs["params"], e.output, e.note.get("outside", "")) for e in bounds if e.note.get("after") != "M"]
    return best, others


def _maximises_false_alarm(ctx, scenario, recorder, outcome) -> str:
    best, others = _perturbations(recorder)
    outside = next((o for _, _, o in others if o), "")
    if outside:
        return (f"your perturbed parameters leave the model ({outside}): perturb within it, pi * exp(noise) "
                "renormalised to sum to 1, and A sigma A^T with A = I + scale * noise")
    if best is not None and others:
        last = others[-1][1]
        if last is not None and last < best and _relative(last, best) > 1e-11:
            return (f"it raised when a perturbation gave a LOWER bound ({last:.10g} < {best:.10g}), which is what "
                    "the maximiser guarantees: the inequality is reversed (assert value <= best + slack)")
        if last is not None and _relative(last, best) <= 1e-11:
            return (f"it raised when a perturbation's bound exceeded the optimum's by round-off only "
                    f"({last:.15g} vs {best:.15g}): compare with a small relative slack, "
                    "value <= best + 1e-9 * abs(best)")
    return ("on a correct M-step no perturbation within the model beats the M-step's parameters by more than "
            "round-off: compare value <= best + 1e-9 * abs(best)")


def _maximises_crash(outcome, recorder) -> str:
    if outcome.error_type == "LinAlgError":
        _, others = _perturbations(recorder)
        outside = next((o for _, _, o in others if o), "")
        return ("compute_vlb raised LinAlgError because your perturbed parameters leave the model"
                + (f" ({outside})" if outside else "")
                + ": with small variances, sigma + scale * noise is no longer positive definite; perturb as "
                  "A sigma A^T with A = I + scale * noise (positive definite whatever the scale)")
    return ""


def _maximises_missed(ctx, bug, recorder) -> str:
    name = _BROKEN_PARAMETER[bug.key]
    best, others = _perturbations(recorder)
    if best is None:
        return "it never evaluated the bound at the M-step's own parameters: compare every perturbation with it"
    if not others:
        return "it tried no perturbation: evaluate the bound for n_trials perturbed parameter sets"
    m_out = recorder.of("M")[0].output if recorder.of("M") else None
    index = {"pi": 0, "mu": 1, "sigma": 2}[name]
    if m_out is not None and all(np.array_equal(p[index], m_out[index]) for p, _, _ in others):
        return (f"your perturbations never change {name}, and this M-step's {name} is the wrong one: perturb every "
                "parameter (pi, mu and sigma)")
    better = [v for _, v, o in others if v is not None and not o and v > best]
    if better:
        top = max(better)
        return (f"a perturbation raised the bound from {best:.8g} to {top:.8g} ({_relative(top, best):.1e} relative) "
                "and your assertion stayed quiet: your slack is far too loose (1e-9 * abs(best) is plenty)")
    return (f"none of your {len(others)} perturbations found better parameters: perturb by `scale` relative to each "
            "parameter's own size (sigma through A sigma A^T, mu by scale times the standard deviations)")


@ASSIGNMENT.check("assert_m_step_maximises", "passes on a correct M-step", 1, timeout=60,
                  hints=("Perturb within the model: weights stay positive and sum to 1, covariances stay "
                         "symmetric positive definite (A sigma A^T).",
                         "Compare with a small relative slack: value <= best + 1e-9 * abs(best)."))
def maximises_correct(ctx):
    quiet_check(ctx, MAXIMISES_CORRECT, list(MAXIMISES_BUGS.values()), _maximises_false_alarm, _maximises_crash)


@ASSIGNMENT.check("assert_m_step_maximises", "catches covariances taken around the origin", 1, timeout=60,
                  hints=("Perturb sigma too, e.g. A sigma A^T with A = I + scale * noise.",))
def maximises_uncentred(ctx):
    bug_check(ctx, MAXIMISES_BUGS["uncentred"], MAXIMISES_CORRECT[0], _maximises_missed, _maximises_crash)


@ASSIGNMENT.check("assert_m_step_maximises", "catches weights that ignore gamma", 1, timeout=60,
                  hints=("Perturb pi too, e.g. pi * exp(scale * noise), renormalised.",))
def maximises_uniform(ctx):
    bug_check(ctx, MAXIMISES_BUGS["uniform"], MAXIMISES_CORRECT[0], _maximises_missed, _maximises_crash)


@ASSIGNMENT.check("assert_m_step_maximises", "catches means divided by N", 1, timeout=60,
                  hints=("Perturb mu too, by scale times each component's standard deviations.",))
def maximises_means(ctx):
    bug_check(ctx, MAXIMISES_BUGS["means"], MAXIMISES_CORRECT[0], _maximises_missed, _maximises_crash)


# =============================================================================== assert_bound_is_tight
def _tight(key, label, correct, round_off="", **swap):
    def build():
        p = Parts(round_off=round_off, **swap)
        X, pi, mu, sigma = parts.overlapping_start()
        return (X, pi, mu, sigma, p.E_step, p.compute_vlb, p.log_likelihood), {}, p.record
    return Scenario(key, label, build, correct)


def _far_below_bound(X, pi, mu, sigma, gamma):
    value = theory.bound(X, pi, mu, sigma, gamma)
    return value - 10.0 * abs(value)


_FAR_BELOW = _tight("far below", "a bound ten times the log-likelihood below it", False, bound=_far_below_bound)


def _far_above_bound(X, pi, mu, sigma, gamma):
    value = theory.bound(X, pi, mu, sigma, gamma)
    if np.allclose(gamma, theory.posterior(X, pi, mu, sigma), rtol=0, atol=1e-12):
        return value
    return theory.log_likelihood(X, pi, mu, sigma) + 10.0 * abs(value)


_FAR_ABOVE = _tight("far above", "bounds for other q ten times the log-likelihood above it", False,
                    bound=_far_above_bound)

TIGHT_CORRECT = [
    _tight("overlapping", "exact E-step, bound and log-likelihood, which agree up to round-off "
                          f"({parts.ROUND_OFF:g} relative)", True, round_off="likelihood"),
]
TIGHT_BUGS = {
    "no entropy": _tight("no entropy", "compute_vlb forgets the entropy of q", False, bound=parts.vlb_without_entropy),
    "above": _tight("above", "compute_vlb adds the KL gap instead of subtracting it (tight only at the posterior)",
                    False, bound=parts.vlb_plus_kl),
    "small gap": _tight("small gap", "the E-step's softmax is too sharp (temperature 3): after it the bound is a few "
                                     "nats (0.5 %) below the log-likelihood", False,
                        e_step=parts.e_step_tempered(3.0)),
}


def _tight_values(recorder):
    """(log-likelihood, bound at the E-step's gamma, [bounds at other q])."""
    ll = next((e.output for e in recorder.of("ll")), None)
    tight = next((e.output for e in recorder.of("vlb") if e.note.get("after") == "E"), None)
    others = [e.output for e in recorder.of("vlb") if e.note.get("after") != "E" and e.output is not None]
    return ll, tight, others


def _tight_false_alarm(ctx, scenario, recorder, outcome) -> str:
    ll, tight, others = _tight_values(recorder)
    if ll is not None and others and others[-1] < ll and len(others) >= 1 and \
            (tight is None or _relative(tight, ll) <= 1e-11):
        return (f"it raised when the bound for another q was BELOW the log-likelihood ({others[-1]:.10g} < "
                f"{ll:.10g}), which is what a lower bound does: the inequality is reversed (assert value <= ll + slack)")
    if ll is not None and tight is not None and _relative(tight, ll) <= 1e-11:
        return (f"after the E-step the bound ({tight:.15g}) and the log-likelihood ({ll:.15g}) differ by round-off "
                f"only ({_relative(tight, ll):.0e} relative): compare with a slack, "
                "abs(bound - ll) <= 1e-8 * abs(ll), never with ==")
    return ("on a correct EM the bound after an E-step equals the log-likelihood up to round-off and every other q "
            "gives a lower bound: compare with a small relative slack")


def _tight_missed(ctx, bug, recorder) -> str:
    ll, tight, others = _tight_values(recorder)
    if ll is None:
        return "it never called log_likelihood: compare the bound with the log-likelihood"
    if bug.key in ("no entropy", "small gap"):
        if tight is None:
            return ("it never computed the bound at the E-step's responsibilities: compute "
                    "compute_vlb(X, pi, mu, sigma, E_step(X, pi, mu, sigma)) and compare it with the log-likelihood")
        gap = (f"after the E-step the bound was {tight:.8g} and the log-likelihood {ll:.8g}: a gap of "
               f"{abs(ll - tight):.3g} ({_relative(tight, ll):.1e} relative), and your assertion stayed quiet")
        far, _ = _attempt(ctx, _FAR_BELOW)
        if not _fires(far):
            return (gap + "; it stays quiet even when the bound is ten times the log-likelihood below it: it never "
                    "checks that the bound EQUALS the log-likelihood after the E-step (a bound below it is not enough)")
        return gap + ": your tolerance is far too loose (round-off is about 1e-13 relative; 1e-8 * abs(ll) is plenty)"
    if not others:
        return ("it never computed the bound for any other q: draw random responsibilities (rows of "
                "rng.dirichlet(np.ones(C), size=N)) and assert the bound stays below the log-likelihood")
    top = max(others)
    if top > ll:
        excess = (f"a bound for another q reached {top:.8g}, above the log-likelihood {ll:.8g} by {top - ll:.3g} "
                  f"({_relative(top, ll):.1e} relative), and your assertion stayed quiet")
        if not _fires(_attempt(ctx, _FAR_ABOVE)[0]):
            return (excess + "; it stays quiet even when those bounds are ten times the log-likelihood above it: "
                    "it never checks that the bound for other q stays BELOW the log-likelihood")
        return excess + ": your tolerance is far too loose (1e-8 * abs(ll) is plenty)"
    return "the bound for other q must stay below the log-likelihood: assert value <= ll + 1e-8 * abs(ll)"


@ASSIGNMENT.check("assert_bound_is_tight", "passes on a correct EM", 1, timeout=60,
                  hints=("Floating-point sums agree only up to round-off: abs(bound - ll) <= 1e-8 * abs(ll).",))
def tight_correct(ctx):
    quiet_check(ctx, TIGHT_CORRECT, list(TIGHT_BUGS.values()), _tight_false_alarm)


@ASSIGNMENT.check("assert_bound_is_tight", "catches a bound without the entropy", 1, timeout=60,
                  hints=("After the E-step the bound must EQUAL the log-likelihood (up to round-off).",))
def tight_no_entropy(ctx):
    bug_check(ctx, TIGHT_BUGS["no entropy"], TIGHT_CORRECT[0], _tight_missed)


@ASSIGNMENT.check("assert_bound_is_tight", "catches a bound above the log-likelihood", 1, timeout=60,
                  hints=("Try random distributions q too: the bound must stay below the log-likelihood.",))
def tight_above(ctx):
    bug_check(ctx, TIGHT_BUGS["above"], TIGHT_CORRECT[0], _tight_missed)


@ASSIGNMENT.check("assert_bound_is_tight", "catches a small gap after the E-step", 1, timeout=60,
                  hints=("A relative tolerance of a few percent accepts a gap of tens of nats here: use 1e-8.",))
def tight_small_gap(ctx):
    bug_check(ctx, TIGHT_BUGS["small gap"], TIGHT_CORRECT[0], _tight_missed)


# =============================================================================== assert_recovers_parameters
N_POINTS, N_DATASETS = 2000, 5
# The train_EM stand-ins take at most this many calls per scenario. A correct assertion fits each
# of the N_DATASETS data sets once; one that gives every data set up to three more tries (other
# seeds, other restarts) stays within it. An assertion past it retries until it is satisfied, which
# never ends on a broken train_EM: it is stopped there (within seconds, not at the time-out).
# Calls, not seconds: the verdict is the same on every machine.
MAX_FITS = 4 * N_DATASETS


def _recovers(key, label, truth, correct, bug=None, order="rotate"):
    def build():
        t = truth()
        fitter = Fitter(t, bug=bug, order=order, max_calls=MAX_FITS)
        return (fitter, *t), {"n_points": N_POINTS, "n_datasets": N_DATASETS}, fitter
    return Scenario(key, label, build, correct)


RECOVERS_CORRECT = [
    _recovers("notebook", "a correct train_EM on data simulated from the notebook's fit, as the notebook's own cell "
                          "does (components returned in a different order each time)", parts.notebook_fit, True),
    _recovers("spread out", "a correct train_EM on data 30 times more spread out",
              lambda: parts.scaled(parts.notebook_fit(), 30.0), True),
]
RECOVERS_BUGS = {
    "divided": _recovers("divided", "the covariances are divided by N instead of N_c", parts.unequal_truth, False,
                         bug=parts.covariances_divided_by_n),
    "weights": _recovers("weights", "the weights are always uniform", parts.unequal_truth, False,
                         bug=parts.uniform_weights),
    "shifted": _recovers("shifted", "every mean is off by one standard deviation", parts.unequal_truth, False,
                         bug=parts.shifted_means),
    "shifted small": _recovers("shifted small", "every mean is off by one standard deviation, on data 50 times "
                                                "less spread out", lambda: parts.scaled(parts.unequal_truth(), 0.02),
                               False, bug=parts.shifted_means),
}
_RECOVERY_DIAGNOSTICS = {
    "in order": _recovers("in order", "components in the true order", parts.notebook_fit, True, order="truth"),
    "same order": _recovers("same order", "components in the same order every time", parts.notebook_fit, True,
                            order="fixed"),
}


# Student side: check() in the student's kernel is feedback, not grading, and may run fewer scenarios
# than the grader, as nbgrader's visible tests are a subset of its hidden ones. Data sets are never
# made smaller there (benchmarks/bench_recovery_power.py: below 2000 x 5 noise decides verdicts), so
# what an assertion that samples slowly (one point per call: ~57 us a point, 0.6 s a scenario) costs
# is the number of scenarios. check() always runs the two that matter most (the notebook's own call,
# and the bug the first check needs to see it fire) and every scenario a verdict needs (an assertion
# that does not fire on them gets the other bugs too: it is wrong, and has its 10 s); the others only
# when the assertion is fast, at most STUDENT_FAST_CPU CPU seconds a call, so check() answers within
# 2 s (6 calls at most 1.2 s). A slow assertion's other checks are reported as run when graded, and
# a passed check that left a scenario out says so. CPU time, not the clock: another program on the
# machine hardly changes which scenarios run. Grading runs every scenario, unchanged.
STUDENT_CORE = ("notebook", "divided")
STUDENT_FAST_CPU = 0.2
_RECOVERY_SCENARIOS = len(RECOVERS_CORRECT) + len(RECOVERS_BUGS)


def _cpu_per_call(ctx) -> float:
    """CPU seconds per call of the student's assertion on the core scenarios (run first if need be)."""
    for scenario in (RECOVERS_CORRECT[0], RECOVERS_BUGS["divided"]):
        _attempt(ctx, scenario)
    cpu = _OUTCOMES[ctx.executor][("cpu", ctx.task.name)]
    return (cpu["notebook"] + cpu["divided"]) / 2


def _runs_here(ctx, scenario: Scenario) -> bool:
    """Whether this run of the checks uses ``scenario``: always when grading; student-side (no
    reference), a core scenario, one that already ran, or any when the assertion is fast."""
    if ctx.has_reference or scenario.key in STUDENT_CORE or _attempted(ctx, scenario):
        return True
    return _cpu_per_call(ctx) <= STUDENT_FAST_CPU


def _subset(ctx) -> str:
    ran = sum(_attempted(ctx, s) for s in RECOVERS_CORRECT + list(RECOVERS_BUGS.values()))
    return (f"your assertion takes {_cpu_per_call(ctx):.2g} s a call, so check() runs only {ran} of the grader's "
            f"{_RECOVERY_SCENARIOS} scenarios (over {STUDENT_FAST_CPU:g} s a call: the notebook's, 'covariances "
            f"divided by N', and those a verdict needs); the grader runs all {_RECOVERY_SCENARIOS}")


def _left_out_note(ctx, left_out: list[Scenario]) -> str:
    return (f"check() left out: {'; '.join(s.label for s in left_out)} ({_subset(ctx)}): this check can still "
            "fail when graded")


def _recovers_bug_check(ctx, keys: tuple[str, ...]) -> None:
    """``bug_check`` of each bug in ``keys`` that runs here (``_runs_here``); student-side, one left
    out makes the check skipped (none ran) or leaves a note (some ran) unless its verdict is known
    without it: an assertion that is not quiet on the main correct scenario fails every bug check."""
    left_out = []
    for key in keys:
        bug = RECOVERS_BUGS[key]
        if _runs_here(ctx, bug):
            bug_check(ctx, bug, RECOVERS_CORRECT[0], _recovers_missed)
        else:
            left_out.append(bug)
    if not left_out:
        return
    main = RECOVERS_CORRECT[0]
    if not _attempt(ctx, main)[0].ok:
        raise Failed(f"{ctx.task.name} is not quiet on a CORRECT EM ({main.label}), so catching this bug "
                     "cannot count (see 'passes on a correct train_EM')",
                     why="an assertion earns its points for catching a bug only if it stays quiet on correct "
                         f"code; check() did not run this bug's scenario ({_subset(ctx)}, with this verdict too)")
    if len(left_out) == len(keys):
        raise CannotCheckHere(f"runs when graded: {_subset(ctx)}")
    ctx.note = _left_out_note(ctx, left_out)


def _recovers_false_alarm(ctx, scenario, recorder, outcome) -> str:
    if scenario.key == "notebook":
        in_order, _ = _attempt(ctx, _RECOVERY_DIAGNOSTICS["in order"])
        same_order, _ = _attempt(ctx, _RECOVERY_DIAGNOSTICS["same order"])
        if in_order.ok and not same_order.ok:
            return ("it stays quiet when train_EM returns the components in the true order, and raises when they "
                    "come back in another order: components have no fixed order (label switching); match each "
                    "data set's estimates to the true components (e.g. by nearest means) before comparing")
        if in_order.ok and same_order.ok:
            return ("it stays quiet when every data set returns the components in the same order, and raises when "
                    "the order changes from one data set to the next: match each data set's components to the true "
                    "ones BEFORE averaging, not once on the averages")
    if scenario.key == "spread out":
        return ("it raised on data 30 times more spread out although it was quiet on the notebook's: your errors are "
                "absolute; measure them relative to the spread of the data, as the notebook states (weights "
                "absolute, means in standard deviations, covariances in s_i s_j)")
    errors = parts.recovery_errors(recorder.calls, recorder.truth)
    if errors:
        return ("with a correct EM the averaged errors were weights {pi:.3f}, means {mu:.3f} standard deviations, "
                "covariances {sigma:.3f} s_i s_j, all below tol: compute them as the notebook states (averages over "
                "the data sets, after matching each data set's components to the true ones)".format(**errors))
    return "match the components, average over the data sets, then compare relative to the spread of the data"


def _recovers_missed(ctx, bug, recorder) -> str:
    errors = parts.recovery_errors(recorder.calls, recorder.truth)
    if not recorder.calls:
        return "it never called train_EM: fit every simulated data set with the train_EM it is given"
    which = {"divided": "covariances", "weights": "weights", "shifted": "means", "shifted small": "means"}[bug.key]
    size = {"divided": f"{errors.get('sigma', 0):.2f} s_i s_j", "weights": f"{errors.get('pi', 0):.2f}",
            "shifted": f"{errors.get('mu', 0):.2f} standard deviations",
            "shifted small": f"{errors.get('mu', 0):.2f} standard deviations"}[bug.key]
    if bug.key == "shifted small":
        return (f"the averaged means were off by {size} and your assertion stayed quiet on data this concentrated, "
                "although it catches the same bug on wider data: your errors are absolute; measure them relative "
                "to the spread of the data (standard deviations), as the notebook states")
    return (f"the averaged {which} were off by {size}, far above tol, and your assertion stayed quiet: compare every "
            "parameter (weights, means and covariances) with the truth")


@ASSIGNMENT.check("assert_recovers_parameters", "passes on a correct train_EM", 1, timeout=120,
                  hints=("Components come back in any order: match each data set's estimates to the true components "
                         "first, then average.",
                         "Measure errors relative to the spread of the data: weights absolute, means in standard "
                         "deviations, covariances in s_i s_j (see the task's text)."))
def recovers_correct(ctx):
    quiet_check(ctx, RECOVERS_CORRECT, list(RECOVERS_BUGS.values()), _recovers_false_alarm,
                runs_here=lambda scenario: _runs_here(ctx, scenario))


@ASSIGNMENT.check("assert_recovers_parameters", "catches covariances divided by N", 1, timeout=120,
                  hints=("Compare the covariances too.",))
def recovers_divided(ctx):
    _recovers_bug_check(ctx, ("divided",))


@ASSIGNMENT.check("assert_recovers_parameters", "catches wrong weights", 1, timeout=120,
                  hints=("Compare the weights too.",))
def recovers_weights(ctx):
    _recovers_bug_check(ctx, ("weights",))


@ASSIGNMENT.check("assert_recovers_parameters", "catches biased means", 1, timeout=120,
                  hints=("Compare the means in units of the standard deviations, so the test works at any scale.",))
def recovers_shifted(ctx):
    _recovers_bug_check(ctx, ("shifted", "shifted small"))


assert {s.key for s in RECOVERS_CORRECT + list(RECOVERS_BUGS.values())} >= set(STUDENT_CORE)
