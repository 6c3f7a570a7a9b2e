"""Running submissions in isolated processes (see ``process.Sandbox`` and README "Student code is
isolated").

Lazy: this folder is also the sandbox runtime inside the sandbox (``/sandbox/autograder/sandbox``),
where the grader side (``process``) cannot be imported and must not be.
"""

__all__ = ["AbortCall", "CallOutcome", "IsolationPolicy", "Limits", "Sandbox"]


def __getattr__(name):
    if name in ("AbortCall", "CallOutcome", "Sandbox"):
        from . import process
        return getattr(process, name)
    if name in ("IsolationPolicy", "Limits"):
        from . import policy
        return getattr(policy, name)
    raise AttributeError(name)
