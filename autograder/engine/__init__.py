"""The check engine: declaring checks, running them, comparing values with feedback that teaches."""

from . import expect
from .check import Assignment, Check, Task
from .context import Context, Spy
from .failures import Failed, GraderError, StudentCodeFailed
from .results import CheckResult, SubmissionResult
from .runner import run_check, run_checks

__all__ = ["Assignment", "Check", "CheckResult", "Context", "Failed", "GraderError", "Spy",
           "StudentCodeFailed", "SubmissionResult", "Task", "expect", "run_check", "run_checks"]
