"""Following a student's loop through the calls it makes (the engine's loop followers).

A loop (``run_EM``, ``train_EM``, an ADVI loop) is judged by watching it work: the functions it
calls are replaced by stand-ins that record every call (``Spy``, arguments bound by the called
function's ``Task`` signature, so positional and keyword calls in any order read the same) and end
the student's call the moment the check has its verdict::

    watch = ctx.watch()
    m_step = watch.spy("run_m_step", ctx.stand_in("run_m_step"), before=too_many)
    value = ctx.run(X, w, standins=watch.standins())   # raises the verdict of watch.stop(...)

``before(call)`` sees each call before it is recorded (``spy.calls`` holds the earlier ones;
``call.arguments`` is None for a call that does not fit the signature, which then raises TypeError
in the student's code like the real function) and may call ``watch.stop(message, why)``: that raises ``AbortCall`` with a ``Failed`` as its verdict,
which ends the student's call at once (in the sandbox and in-process, even when the student's code
catches ``BaseException``), and ``ctx.run`` / ``ctx.call`` / ``ctx.value`` raise that ``Failed``.
The first verdict is kept (``watch.stopped``).

Options: ``copies=True`` hands the spies snapshots of the arguments (in the student's kernel a loop
may update its parameters in place after the call); ``outermost=True`` passes calls made from
inside another watched call straight to their target, unrecorded and unchecked (the student's own
gradient differentiating their own watched ELBO).
"""

from __future__ import annotations

from typing import Callable, NoReturn

from ..sandbox import AbortCall
from ..sandbox.mutation import snapshot
from .check import Assignment
from .context import Call, Spy
from .failures import Failed

__all__ = ["Call", "Spy", "Watch"]


class Watch:
    """The watched stand-ins of one call of a student's loop, and the verdict that ended it.

    Parameters
    ----------
    assignment : Assignment, optional
        Whose tasks' signatures bind the calls (a name that is no task is recorded unbound).
    copies : bool
        Record (and pass on) snapshots of the arguments instead of the objects themselves.
    outermost : bool
        Pass calls made while another watched call runs straight to their target.
    """

    def __init__(self, assignment: Assignment | None = None, *, copies: bool = False, outermost: bool = False) -> None:
        self.assignment = assignment
        self.copies = copies
        self.outermost = outermost
        self.spies: dict[str, Spy] = {}
        self.stopped: Failed | None = None
        self._busy: list[str] = []

    def spy(self, name: str, target: Callable, *, before: Callable[[Call], None] | None = None) -> Spy:
        """Watch the calls of ``name`` (they go on to ``target``); ``before(call)`` may ``stop`` the run."""
        task = None
        if self.assignment is not None:
            task = next((t for t in self.assignment.tasks if t.name == name), None)
        self.spies[name] = Spy(name, target, task=task, before=before)
        return self.spies[name]

    def stop(self, message: str, why: str = "", verdict: Failed | None = None) -> NoReturn:
        """End the student's call now: ``verdict`` (default ``Failed(message, why)``) is what the
        check raises; the first verdict is kept."""
        if self.stopped is None:
            self.stopped = verdict if verdict is not None else Failed(message, why=why)
        raise AbortCall(message, verdict=self.stopped)

    def standins(self) -> dict[str, Callable]:
        """{name: stand-in} for ``ctx.run(..., standins=...)`` (or to add to other stand-ins)."""
        return {name: self._watched(spy) for name, spy in self.spies.items()}

    def _watched(self, spy: Spy) -> Callable:
        if not (self.copies or self.outermost):
            return spy
        busy = self._busy

        def watched(*args, **kwargs):
            if self.outermost and busy:
                return spy.target(*args, **kwargs)
            if self.copies:
                args, kwargs = snapshot(args), snapshot(kwargs)
            busy.append(spy.name)
            try:
                return spy(*args, **kwargs)
            finally:
                busy.pop()

        watched.__name__ = watched.__qualname__ = spy.name
        return watched
