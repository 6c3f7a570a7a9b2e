"""What a check sees: the student's functions, the reference (when present), a seeded RNG."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Mapping

import numpy as np

from ..sandbox import CallOutcome
from .check import Assignment, Check, Task
from .failures import CannotCheckHere, Failed, GraderError, StudentCodeFailed

if TYPE_CHECKING:
    from .executors import Executor
    from .watch import Watch

WHY_MUTATED = ("a function must not modify the arrays it is given: the caller still needs them (an EM loop would "
               "silently corrupt its data). Work on new arrays (`X - mu` creates one; `X -= mu` overwrites X).")


@dataclass
class Call:
    """One call a spy recorded: arguments and what came back (or the exception raised).

    ``arguments`` maps parameter names to values (defaults filled in) when the spy knows the
    function's signature, so a check reads ``call.arguments["eta"]`` whether the student passed
    it positionally or by keyword; None when the call did not fit the signature.
    """

    args: tuple
    kwargs: dict
    result: object = None
    error: BaseException | None = None
    arguments: dict | None = None


@dataclass
class Spy:
    """A callable that records every call before delegating to ``target``.

    With ``task`` (the spied function's ``Task``) each call's arguments are also bound by name;
    a call that does not fit the signature raises TypeError, as the real function would.

    ``before(call)``, when given, sees each call before it is recorded and before ``target`` runs,
    with ``calls`` holding the earlier ones (``call.arguments`` is None when the call does not fit
    the signature: the spy raises TypeError after ``before``): a loop follower counts there and ends
    the student's call (``Watch.stop``) once it has its verdict. A call it stops is not recorded.
    """

    name: str
    target: Callable
    calls: list[Call] = field(default_factory=list)
    task: Task | None = None
    before: Callable[[Call], None] | None = None

    def __call__(self, *args, **kwargs):
        call = Call(args, kwargs)
        if self.task is not None:
            try:
                call.arguments = self.task.bind(args, kwargs)
            except TypeError as exc:
                call.error = exc
        if self.before is not None:
            self.before(call)
        self.calls.append(call)
        if call.error is not None:
            raise call.error
        try:
            call.result = self.target(*args, **kwargs)
        except BaseException as exc:
            call.error = exc
            raise
        return call.result

    @property
    def __name__(self) -> str:  # noqa: D401 - behaves like the function it wraps
        return self.name


class Context:
    """The handle a check's ``run(ctx)`` works with.

    ``ctx.run(*args)`` calls the student's version of the function under check, with the
    task's other skeleton functions replaced by stand-ins (the reference when the grader has
    it). ``ctx.call(name, *args)`` calls another of the student's functions. Both return the
    value or raise ``StudentCodeFailed`` with a message that explains what happened.
    """

    def __init__(self, executor: Executor, assignment: Assignment, check: Check, reference=None) -> None:
        self.executor = executor
        self.assignment = assignment
        self.check = check
        self.task: Task = assignment.task(check.task)
        self.ref = reference
        self.rng = np.random.default_rng(check.seed)
        self.last: CallOutcome | None = None
        self.timed_out = False
        # What a check that passes wants said anyway (student-side: that it ran only part of what
        # the grader runs); shown next to the passed check. Checks leave it empty when grading.
        self.note = ""

    # ----------------------------------------------------------------------------- facts
    @property
    def has_reference(self) -> bool:
        return self.ref is not None

    def reference(self, name: str) -> Callable:
        if self.ref is None:
            raise GraderError(f"check {self.check.task}/{self.check.name} needs the reference")
        return getattr(self.ref, name)

    def stand_in(self, name: str) -> Callable:
        """The function to use for the skeleton function ``name`` inside another one.

        The reference when the grader has it; otherwise (student-side) the student's own.
        """
        if self.ref is not None:
            return getattr(self.ref, name)
        own = self.executor.own_function(name)
        if own is None:
            raise Failed(f"this check runs your {self.task.name} together with your {name}, "
                         f"which is not defined yet", why=f"define {name} first (run its cell)")
        return own

    def spy(self, name: str, target: Callable | None = None, before: Callable | None = None) -> Spy:
        """A ``Spy`` on ``name`` (default target: ``stand_in(name)``), bound by its task's signature."""
        task = next((t for t in self.assignment.tasks if t.name == name), None)
        return Spy(name, target if target is not None else self.stand_in(name), task=task, before=before)

    def watch(self, **options) -> "Watch":
        """A ``Watch`` (loop follower) over this assignment's tasks; see ``autograder.engine.watch``."""
        from .watch import Watch
        return Watch(self.assignment, **options)

    # ----------------------------------------------------------------------------- calls
    def run(self, *args, standins: Mapping[str, Callable] | None = None, timeout: float | None = None,
            allow_mutation: bool = False, **kwargs):
        """Call the function under check (see class docstring)."""
        if standins is None:
            standins = self.default_standins()
        return self.call(self.task.name, *args, standins=standins, timeout=timeout,
                         allow_mutation=allow_mutation, **kwargs)

    def attempt(self, *args, standins: Mapping[str, Callable] | None = None, timeout: float | None = None,
                **kwargs) -> CallOutcome:
        """Call the function under check and return the raw outcome, whatever happened."""
        if standins is None:
            standins = self.default_standins()
        return self.outcome(self.task.name, args, kwargs, standins=standins, timeout=timeout)

    def outcome(self, name: str, args: tuple, kwargs: Mapping, *, standins: Mapping[str, Callable] | None = None,
                timeout: float | None = None, differentiate: int | None = None) -> CallOutcome:
        """Call the student's ``name`` and return the raw outcome (remembered as ``last``).

        ``differentiate=i`` asks for autograd's derivative of the function with respect to its
        argument ``i`` instead of its value (see ``Sandbox.call``).
        """
        extra = {} if differentiate is None else {"differentiate": differentiate}
        self.last = self.executor.call(name, tuple(args), dict(kwargs), standins=dict(standins or {}),
                                       seed=self.call_seed(name), timeout=timeout or self.check.timeout, **extra)
        self.timed_out |= self.last.status == "timeout"
        return self.last

    def source(self, name: str | None = None) -> str:
        """The source text of the student's ``name`` (default: the function under check).

        In the sandbox it is always available. In a student's kernel it may not be (code created
        by exec): then the check is reported as skipped there, and runs when graded.
        """
        text = self.executor.source(name or self.task.name)
        if text is None:
            if self.executor.in_process and self.ref is None:
                raise CannotCheckHere("the source of this function is not available here; checked when graded")
            raise Failed(f"the source of {name or self.task.name} could not be read")
        return text

    def definitions(self) -> list[str]:
        """The submission's kept top-level statements (imports, definitions), in the order they run.

        In a student's kernel they may be unavailable (code created by exec): then the check is
        reported as skipped there, and runs when graded.
        """
        statements = self.executor.definitions()
        if statements is None:
            if self.executor.in_process and self.ref is None:
                raise CannotCheckHere("the source of your definitions is not available here; checked when graded")
            raise Failed("the source of your definitions could not be read")
        return statements

    def call_seed(self, name: str) -> int:
        """The global-generator seed for a call of the student's ``name`` (see ``Task.call_seed``)."""
        task = next((t for t in self.assignment.tasks if t.name == name), None)
        return task.call_seed if task is not None else Task(name, "()").call_seed

    def failure(self, outcome: CallOutcome | None = None, name: str | None = None) -> StudentCodeFailed:
        """The explanation of a call (of ``name``, default the function under check) that did not
        return normally."""
        outcome = outcome or self.last
        return StudentCodeFailed(*explain_outcome(name or self.task.name, outcome, self.executor), outcome=outcome)

    def default_standins(self) -> dict[str, Callable]:
        if self.ref is None:
            return {}
        return {name: getattr(self.ref, name) for name in self.task.isolated_from}

    def call(self, name: str, *args, standins: Mapping[str, Callable] | None = None,
             timeout: float | None = None, allow_mutation: bool = False, **kwargs):
        """Call the student's ``name``; its value, or the ``Failed`` that ``value`` raises."""
        outcome = self.outcome(name, args, kwargs, standins=standins, timeout=timeout)
        return self.value(name, outcome, allow_mutation=allow_mutation)

    def value(self, name: str, outcome: CallOutcome, *, allow_mutation: bool = False,
              why_mutated: str = WHY_MUTATED, why_failed: Callable[[CallOutcome], str] | None = None):
        """The value of a call of the student's ``name`` that returned normally, else a ``Failed``:

        * stopped by a stand-in (``AbortCall``) whose verdict is a ``Failed``: that verdict
          (``Watch.stop`` makes one), else "``name`` was stopped: reason";
        * raised, hung, crashed or missing: ``StudentCodeFailed`` with the explanation (``why_failed(outcome)``
          when the engine has none) and the outcome;
        * changed an argument in place (unless ``allow_mutation``): says which, ``why_mutated``.
        """
        if outcome.status == "aborted" and isinstance(outcome.value, Failed):
            raise outcome.value
        if not outcome.ok:
            message, why = explain_outcome(name, outcome, self.executor)
            if not why and why_failed is not None:
                why = why_failed(outcome)
            raise StudentCodeFailed(message, why, outcome=outcome)
        if outcome.mutated and not allow_mutation:
            names = ", ".join(f"`{m}`" for m in outcome.mutated)
            raise Failed(f"{name} changed its input {names} in place", why=why_mutated)
        return outcome.value


def explain_outcome(name: str, outcome: CallOutcome, executor: Executor) -> tuple[str, str]:
    """(message, why) for a call that did not return normally."""
    status = outcome.status
    if status == "missing":
        problems = [p for p in executor.problems if "SyntaxError" in p or "skipped" in p]
        why = f"define a function called exactly `{name}` with the skeleton's signature"
        if problems:
            why = "your submission has problems that may explain it: " + "; ".join(problems[:3])
        return f"{name} is not defined in your submission", why
    if status == "unloadable":
        return f"{name} could not be checked: {outcome.message}", ""
    if status == "timeout":
        return (f"{name} {outcome.message}",
                "an infinite loop, or a loop over every data point in pure Python that is far too "
                "slow; use numpy's vectorised operations")
    if status == "crash":
        return f"{name} crashed the Python process running it: {outcome.message}", (
            "this usually means it used far too much memory (an N x N or larger array?) or "
            "called os._exit")
    if status == "aborted":
        return f"{name} was stopped: {outcome.message}", ""
    if status == "budget":
        return f"{name} was not run: {outcome.message}", "earlier calls were too slow"
    where = ""
    if outcome.frames:
        file, line, func, text = outcome.frames[-1]
        place = file.strip("<>") if file.startswith("<cell") else file.rsplit("/", 1)[-1]
        where = f"\n  at {place}, line {line}, in {func}" + (f": `{text.strip()}`" if text else "")
    if outcome.error_type == "SystemExit":
        return f"{name} called sys.exit() / exit(){where}", "never exit the interpreter from a function"
    if outcome.error_type == "NameError":
        return (f"{name} raised NameError: {outcome.message}{where}",
                "the grader runs only your definitions (imports, functions, classes and constants), not "
                "the other cells: a function must not use variables that other cells create (data, "
                "results, objects); pass them as arguments or define them inside the function")
    if outcome.error_type == "NotImplementedError":
        return f"{name} is not implemented yet (it raises NotImplementedError)", (
            "replace `raise NotImplementedError()` with your code")
    message = f"{name} raised {outcome.error_type}: {outcome.message}{where}"
    if outcome.output.strip():
        message += "\n  it printed: " + outcome.output.strip()[:500]
    return message, ""
