"""The switch that silences progress bars while the autograder's checks run.

``engine.run_checks`` wraps every check run in ``quiet()`` (the student-side ``check()`` and
``progress()``, the grading process), and ``interactive.progress_bar`` shows nothing while
``is_quiet()`` is true, so check cells show only their report and never write to stderr. It lives
here, below both, so that the engine does not import the notebook UI.

``quiet()`` also sets ``AUTOGRADER_QUIET=1`` for its duration, so processes started inside the
block inherit it, *unless* they are started with an environment of their own. The sandbox child
is: its environment is a whitelist that does not carry ``AUTOGRADER_QUIET``. The child shows no
bar for other reasons: it is no Jupyter kernel and its output is a pipe, not a terminal, so
``progress_bar`` is a silent pass-through there (and where the sandbox gives the student's code a
package of its own, that package's progress bar is silent by construction). Set ``AUTOGRADER_QUIET=1`` yourself to
silence the bars of a whole process tree (a batch job, a test run).
"""

from __future__ import annotations

import contextlib
import os

QUIET_ENV = "AUTOGRADER_QUIET"   # set to 1 (not "" or "0") to silence progress bars in a process tree

__all__ = ["QUIET_ENV", "quiet", "is_quiet"]

_depth = 0


@contextlib.contextmanager
def quiet():
    """Within this block progress bars are silent (nests; restores ``AUTOGRADER_QUIET`` after)."""
    global _depth
    outermost = _depth == 0
    previous = os.environ.get(QUIET_ENV)
    _depth += 1
    if outermost:
        os.environ[QUIET_ENV] = "1"
    try:
        yield
    finally:
        _depth -= 1
        if outermost:
            if previous is None:
                os.environ.pop(QUIET_ENV, None)
            else:
                os.environ[QUIET_ENV] = previous


def is_quiet() -> bool:
    """True inside ``quiet()`` or when ``AUTOGRADER_QUIET`` is set to anything but "" or "0"."""
    return _depth > 0 or os.environ.get(QUIET_ENV, "") not in ("", "0")
