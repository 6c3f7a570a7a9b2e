"""Grading one submission file end to end: load, run in a sandbox, check, collect."""

from __future__ import annotations

import traceback
from pathlib import Path

from .assignments import get_assignment
from .engine import SubmissionResult, run_checks
from .engine.executors import SandboxExecutor
from .engine.reference import load_reference
from .loading import load_submission
from .sandbox import Limits

SUBMISSION_SUFFIXES = (".ipynb", ".py")


class ReferenceMissing(RuntimeError):
    """Grading needs the reference solutions (a course checkout), and this machine has none."""


def reference_for(assignment_id: str):
    reference = load_reference(assignment_id)
    if reference is None:
        raise ReferenceMissing(
            f"cannot find the reference solutions for {assignment_id!r}: run from the course checkout "
            "(the folder holding solutions/ and nbgrader_config.py) or set AUTOGRADER_COURSE_ROOT")
    return reference


def grade_file(path: str | Path, assignment_id: str, *, only: list[str] | None = None,
               limits: Limits = Limits(), reference=None, label: str | None = None) -> SubmissionResult:
    """Grade one file. Never raises for anything the submission does."""
    label = label or str(path)
    try:
        assignment = get_assignment(assignment_id)
        reference = reference if reference is not None else reference_for(assignment_id)
        submission = load_submission(path)
        with SandboxExecutor(submission, limits) as executor:
            result = run_checks(assignment, executor, reference=reference, submission=label, only=only)
    except ReferenceMissing:
        raise
    except Exception:  # a grader bug must not take the batch down: report it on this submission
        result = SubmissionResult(label, assignment_id, error="internal error in the grader:\n"
                                  + traceback.format_exc(limit=5))
    return result


def collect_paths(paths: list[str | Path]) -> list[Path]:
    """Expand folders into the submission files below them (sorted, checkpoints skipped)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                if (candidate.suffix in SUBMISSION_SUFFIXES and candidate.is_file()
                        and ".ipynb_checkpoints" not in candidate.parts and "__pycache__" not in candidate.parts):
                    found.append(candidate)
        else:
            found.append(path)  # a missing or odd file is reported by the loader, not here
    return found
