"""Running submissions in isolated child processes."""

from .process import CallOutcome, Limits, Sandbox

__all__ = ["CallOutcome", "Limits", "Sandbox"]
