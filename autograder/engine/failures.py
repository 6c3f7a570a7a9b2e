"""How a check says that something is wrong."""

from __future__ import annotations


class Failed(Exception):
    """A check failed. The message says *what* is wrong, ``why`` says why it matters or how to fix it.

    Parameters
    ----------
    message : str
        What broke, in terms of the student's function ("rows of gamma sum to 0 ...").
    why : str, optional
        The teaching part: the likely cause and the fix.
    case : str, optional
        The (smallest) input on which it broke, already formatted.
    """

    def __init__(self, message: str, why: str = "", case: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.why = why
        self.case = case

    def render(self) -> str:
        parts = [self.message]
        if self.case:
            parts.append(f"Failing input: {self.case}")
        if self.why:
            parts.append(f"Why: {self.why}")
        return "\n".join(parts)


class CannotCheckHere(Exception):
    """The check cannot run in this environment (student side only): reported as skipped."""


class StudentCodeFailed(Failed):
    """The student's function raised, hung, crashed or is missing.

    ``outcome`` is the ``CallOutcome`` of the call that failed (None when there was no call), so a
    check can tell a symptom (``outcome.error_type``, ``outcome.message``) and explain it.
    """

    def __init__(self, message: str, why: str = "", case: str = "", outcome=None) -> None:
        super().__init__(message, why, case)
        self.outcome = outcome


class GraderError(Exception):
    """A bug in the grader itself (never the student's fault)."""
