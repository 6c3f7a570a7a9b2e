"""Running an assignment's checks against one submission."""

from __future__ import annotations

import traceback
from dataclasses import replace
from typing import TYPE_CHECKING

from ..blas import one_blas_thread
from ..quiet import quiet
from .check import Assignment, Check
from .context import Context, explain_outcome
from .failures import CannotCheckHere, Failed, GraderError
from .results import CheckResult, SubmissionResult

if TYPE_CHECKING:
    from .executors import Executor


def run_checks(assignment: Assignment, executor: Executor, *, reference=None, submission: str = "<notebook>",
               only: list[str] | None = None, on_result=None) -> SubmissionResult:
    """Run every check of ``assignment`` (or of the tasks in ``only``) and collect the results.

    Without a reference (a student's machine) the checks that need it are reported as skipped
    and count for nothing; with it, every check is run and scored. ``on_result(CheckResult)`` is
    called with each result as soon as it is known (a grading process streams them).
    """
    # No progress bars from student or reference code while checks run, and one BLAS thread.
    with quiet(), one_blas_thread():
        result = _run_checks(assignment, executor, reference, submission, only, on_result)
    result.tests = list(result.tests)  # a plain list again (results are pickled, copied)
    return result


class _Results(list):
    """A list of CheckResults that reports every append."""

    def __init__(self, on_result) -> None:
        super().__init__()
        self.on_result = on_result

    def append(self, item) -> None:
        super().append(item)
        if self.on_result is not None:
            self.on_result(item)


def _run_checks(assignment: Assignment, executor: Executor, reference, submission: str,
                only: list[str] | None, on_result=None) -> SubmissionResult:
    result = SubmissionResult(submission=submission, assignment=assignment.id, tests=_Results(on_result))
    tasks = [t.name for t in assignment.tasks if only is None or t.name in only]
    executor.start()
    if executor.load_failure:
        result.error = executor.load_failure
    result.notes.extend(executor.problems)
    for task in tasks:
        missing_message = None
        timeouts = 0
        for check in assignment.checks_for(task):
            if check.needs_reference and reference is None:
                result.tests.append(CheckResult(task, check.name, False, 0.0, 0.0, status="skipped",
                                                feedback="runs when your work is graded"))
                continue
            if result.error:
                result.tests.append(_failed(check, result.error))
                continue
            if missing_message is None and not executor.defines(task):
                from ..sandbox import CallOutcome
                message, why = explain_outcome(task, CallOutcome("missing"), executor)
                missing_message = message + (f"\nWhy: {why}" if why else "")
            if missing_message is not None:
                result.tests.append(_failed(check, missing_message))
                continue
            if timeouts >= 2:
                result.tests.append(_failed(check, f"not run: {task} already timed out twice"))
                continue
            # After a time-out the function is probably stuck: wait less for it the second time.
            outcome = run_check(check, assignment, executor, reference, patience=0.25 if timeouts else 1.0)
            timeouts += outcome.timed_out
            result.tests.append(outcome)
    return result


def run_check(check: Check, assignment: Assignment, executor: Executor, reference, patience: float = 1.0) -> CheckResult:
    if patience != 1.0:
        check = replace(check, timeout=max(2.0, check.timeout * patience))
    ctx = Context(executor, assignment, check, reference)
    try:
        check.run(ctx)
    except Failed as failure:
        result = _failed(check, failure.render(), hints=check.hints)
        result.timed_out = ctx.timed_out
        result.message, result.why, result.case = failure.message, failure.why, failure.case
        return result
    except CannotCheckHere as reason:
        return CheckResult(check.task, check.name, False, 0.0, 0.0, status="skipped", feedback=str(reason))
    except GraderError:
        raise
    except Exception:  # a bug in the grader: loud, never silently passing
        return _failed(check, "internal error in the grader (please report it to your instructor):\n"
                       + traceback.format_exc(limit=4))
    return CheckResult(check.task, check.name, True, float(check.points), float(check.points),
                       status="passed", feedback=ctx.note)


def _failed(check: Check, feedback: str, hints: tuple = ()) -> CheckResult:
    return CheckResult(check.task, check.name, False, 0.0, float(check.points), feedback=feedback,
                       status="failed", hints=hints, message=feedback.split("\n", 1)[0])
