"""A clean grading process for nbgrader's hidden test cells.

The notebook kernel is the student's: their top-level code has run there and may have changed
numpy, builtins or this package. So ``Checker.grade`` does not compare anything in the kernel: it
sends the executed cells to ``python -m autograder serve``, a fresh process started once per
kernel, which grades them with the same code path as ``python -m autograder grade``.

Protocol: one JSON object per line on stdin ({"assignment", "cells", "only"}), one JSON result
per line on stdout (the CLI's per-submission object plus "notes").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .engine.results import SubmissionResult


def executed_cells() -> list[str]:
    """The raw source of every cell run so far in this IPython kernel, in order."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        get_ipython = None
    shell = get_ipython() if get_ipython else None
    if shell is None:
        raise RuntimeError("grade() runs inside a Jupyter/IPython kernel; elsewhere use "
                           "`python -m autograder grade --assignment ID FILE`")
    return [cell for cell in shell.history_manager.input_hist_raw if cell.strip()]


class GradingClient:
    """Starts ``python -m autograder serve`` on first use and talks to it."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None

    def _start(self) -> None:
        env = dict(os.environ)
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = "1"
        self._proc = subprocess.Popen([sys.executable, "-m", "autograder", "serve"], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
                                      cwd=os.getcwd())

    def grade(self, assignment_id: str, cells: list[str], only: list[str] | None = None) -> SubmissionResult:
        request = json.dumps({"assignment": assignment_id, "cells": cells, "only": only})
        for attempt in range(2):  # a dead server is restarted once
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            try:
                self._proc.stdin.write(request + "\n")
                self._proc.stdin.flush()
                line = self._proc.stdout.readline()
            except (BrokenPipeError, OSError):
                line = ""
            if line:
                return SubmissionResult.from_dict(json.loads(line))
            self._proc = None
        return SubmissionResult("this notebook", assignment_id, error="the grading process stopped unexpectedly")

    def close(self) -> None:
        if self._proc is not None:
            self._proc.stdin.close()
            self._proc.wait(timeout=10)
            self._proc = None


def serve(stdin=sys.stdin, stdout=sys.stdout) -> int:
    """The server loop: grade each request; never die on a bad one."""
    from .grading import ReferenceMissing, reference_for
    from .assignments import get_assignment
    from .engine import run_checks
    from .engine.executors import SandboxExecutor
    from .loading import submission_from_cells

    for line in stdin:
        try:
            request = json.loads(line)
            assignment_id = request["assignment"]
            assignment = get_assignment(assignment_id)
            reference = reference_for(assignment_id)
            submission = submission_from_cells(list(request["cells"]), path="this notebook")
            with SandboxExecutor(submission) as executor:
                result = run_checks(assignment, executor, reference=reference, submission="this notebook",
                                    only=request.get("only"))
            payload = result.to_dict()
            payload["notes"] = result.notes
        except ReferenceMissing as exc:
            payload = _error_payload(line, f"{exc} (check() runs the checks that need no reference)")
        except Exception as exc:  # noqa: BLE001 - report, keep serving
            payload = _error_payload(line, f"internal error in the grader: {type(exc).__name__}: {exc}")
        stdout.write(json.dumps(payload) + "\n")
        stdout.flush()
    return 0


def _error_payload(line: str, message: str) -> dict:
    try:
        assignment = json.loads(line).get("assignment", "?")
    except Exception:  # noqa: BLE001
        assignment = "?"
    return {"submission": "this notebook", "assignment": assignment, "score": 0.0, "max_score": 0.0,
            "error": message, "tests": []}
