"""The check engine: declaring checks, running them, comparing values with feedback that teaches."""

from . import expect
from .check import Assignment, Check, Task
from .context import Call, Context, Spy
from .failures import Failed, GraderError, StudentCodeFailed
from .results import CheckResult, SubmissionResult
from .runner import run_check, run_checks
from .watch import Watch

__all__ = ["Assignment", "Call", "Check", "CheckResult", "Context", "Failed", "GraderError", "Spy",
           "StudentCodeFailed", "SubmissionResult", "Task", "Watch", "expect", "run_check", "run_checks"]
