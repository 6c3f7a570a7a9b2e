"""Running submissions in isolated child processes."""

from .process import AbortCall, CallOutcome, Limits, Sandbox

__all__ = ["AbortCall", "CallOutcome", "Limits", "Sandbox"]
