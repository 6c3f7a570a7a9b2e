"""Grading one submission: the one function every way of grading goes through.

``grade_submission(source, assignment_id, ...)`` loads a submission (a file, its bytes or its
code cells), runs the assignment's checks against it with the student's code in the sandbox, and
returns a ``Graded``: the result, the pictures for the report and what the sandbox's isolation
achieved. The CLI batch, Dask workers, nbgrader's autograde step, the Gradescope runner and the
instructor's ``grade()`` all call it, always inside a grading process of its own
(``autograder.supervisor``), which bounds its time and memory.

It decides what the sandbox may see: nothing but the sandbox's defaults, plus, while the sandbox
still hides by a list (an allowlist sandbox ignores ``hidden``), the folders the caller names and
any course checkout the grader knows of (``course_checkouts``).
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Collection, Sequence

from .sandbox import Limits as SandboxLimits

SUBMISSION_SUFFIXES = (".ipynb", ".py")


@dataclass(frozen=True)
class Limits(SandboxLimits):
    """Everything that bounds the grading of one submission.

    The sandbox's limits (per call, per submission, the sandbox child's memory; see
    ``autograder.sandbox.Limits``) and the grading process's own:

    grader_memory_mb : int
        Address space (``RLIMIT_AS``) of the grading process: the checks, the reference, the
        grader-side stand-ins the student's code calls, the pictures. A real grading needs about
        300 to 350 MB (measured on the references and every corpus, pictures included; see the
        README): 2 GB leaves a wide margin and stops a stand-in asked to build a huge array.
    slack_seconds : float
        Added to ``total_seconds + load_seconds`` for the one wall-clock budget of the whole
        grading (process start, the grader's own work between calls, the pictures). When it is
        used up the grading process is killed; the checks finished by then keep their points.
    """

    grader_memory_mb: int = 2048
    slack_seconds: float = 30.0

    @property
    def budget_seconds(self) -> float:
        return self.total_seconds + self.load_seconds + self.slack_seconds

    def for_sandbox(self) -> SandboxLimits:
        """The sandbox's part, as the sandbox's own type (it knows nothing of the rest)."""
        names = {f.name for f in dataclasses.fields(SandboxLimits)}
        return SandboxLimits(**{name: getattr(self, name) for name in names})

    @classmethod
    def from_dict(cls, values: dict | None) -> "Limits":
        """From a job's ``limits`` (field name -> value; unknown names are ignored)."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in (values or {}).items() if k in known})


@dataclass
class Graded:
    """What grading one submission produced."""

    result: object                                   # engine.SubmissionResult
    figures: list = field(default_factory=list)      # [[caption, PNG data URI or ""], ...]
    isolation: dict | None = None                    # the sandbox's report of what it achieved
    internal_error: bool = False                     # a bug in the grader (never the student's fault)
    seconds: float = 0.0


class ReferenceMissing(RuntimeError):
    """Grading needs the reference solutions (a course checkout), and this machine has none."""


def reference_for(assignment_id: str):
    from .engine.reference import load_reference
    reference = load_reference(assignment_id)
    if reference is None:
        raise ReferenceMissing(
            f"cannot find the reference solutions for {assignment_id!r}: run from the course checkout "
            "(the folder holding solutions/ and nbgrader_config.py) or set AUTOGRADER_COURSE_ROOT")
    return reference


def load(source, *, suffix: str | None = None, label: str | None = None):
    """A ``Submission`` from a path, a file's bytes (with ``suffix``) or a list of code cells."""
    from .loading import Submission, load_submission, load_submission_bytes, submission_from_cells
    if isinstance(source, Submission):
        return source
    if isinstance(source, (str, Path)):
        return load_submission(Path(source)) if label is None else _relabel(load_submission(Path(source)), label)
    if isinstance(source, (bytes, bytearray)):
        return load_submission_bytes(bytes(source), suffix or ".ipynb", label or "submission")
    if isinstance(source, (list, tuple)) and all(isinstance(cell, str) for cell in source):
        return submission_from_cells(list(source), path=label or "this notebook")
    return Submission(path=label or "submission", error="cannot read the submission: nothing to grade")


def _relabel(submission, label: str):
    submission.path = label
    return submission


def grade_submission(source, assignment_id: str, *, suffix: str | None = None, label: str | None = None,
                     only: Sequence[str] | None = None, limits: Limits = Limits(), figures: bool = False,
                     hidden: Sequence[str] = (), skip: Collection[tuple[str, str]] = (),
                     on_loaded: Callable | None = None, on_result: Callable | None = None) -> Graded:
    """Grade one submission. Never raises for anything the submission does.

    Parameters
    ----------
    source : path, bytes, list of str or Submission
        The submission file, its content (then ``suffix`` says ``.ipynb`` or ``.py``), the
        sources of its code cells in order, or an already loaded ``Submission``.
    assignment_id : str
    only : list of str, optional
        Grade only these functions.
    limits : Limits
    figures : bool
        Also draw the assignment's pictures for the HTML report (never changes a grade).
    hidden : list of str
        Folders the sandbox must not show (ignored by an allowlist sandbox).
    skip : set of (function, check name)
        Checks not to run (a supervisor resuming after its grading process died has them).
    on_loaded : callable(error, notes), optional
        Called once the submission is loaded in its sandbox.
    on_result : callable(CheckResult), optional
        Called with every check's result as soon as it is known (in the checks' order).

    Raises
    ------
    ReferenceMissing
        This machine has no reference solutions (a set-up problem, not the submission's).
    """
    from .assignments import get_assignment
    from .engine import SubmissionResult, run_checks
    from .engine.executors import SandboxExecutor

    started = time.monotonic()
    label = label or (str(source) if isinstance(source, (str, Path)) else "submission")
    reference = reference_for(assignment_id)
    pictures: list = []
    isolation = None
    try:
        assignment = get_assignment(assignment_id)
        if skip:
            assignment = dataclasses.replace(
                assignment, checks=[c for c in assignment.checks if (c.task, c.name) not in set(skip)])
        submission = load(source, suffix=suffix, label=label)
        hidden = tuple(dict.fromkeys([*map(str, hidden), *course_checkouts()]))
        with SandboxExecutor(submission, limits.for_sandbox(), hidden=hidden) as executor:
            executor.start()
            if on_loaded is not None:
                on_loaded(executor.load_failure, list(executor.problems))
            result = run_checks(assignment, executor, reference=reference, submission=label,
                                only=list(only) if only else None, on_result=on_result)
            if figures and not submission.error and not result.error:
                from .reporting.figures import render
                pictures = render(assignment_id, executor, reference)
            isolation = executor.sandbox.isolation
        internal = False
    except Exception:  # a grader bug must not take the batch down: report it on this submission
        result = SubmissionResult(label, assignment_id, error="internal error in the grader:\n"
                                  + traceback.format_exc(limit=5))
        internal = True
    return Graded(result, pictures, isolation, internal, round(time.monotonic() - started, 3))


def course_checkouts() -> list[str]:
    """Course checkouts (folders with ``solutions/`` and ``nbgrader_config.py``) the grader knows:
    the one it grades with, and the one this package was installed from (a development
    checkout), which may be another copy of the course."""
    from .engine.reference import course_root
    found = []
    for folder in (course_root(), Path(__file__).resolve().parents[1]):
        if folder is not None and (folder / "solutions").is_dir() and (folder / "nbgrader_config.py").is_file():
            found.append(str(folder))
    return found


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


def grade_file(path: str | Path, assignment_id: str, *, only: Sequence[str] | None = None,
               limits: Limits = Limits(), label: str | None = None):
    """``grade_submission(path, ...).result``, in this process (the corpus tests call it from
    worker processes of their own). Never raises for anything the submission does."""
    return grade_submission(path, assignment_id, only=only, limits=limits, label=label or str(path)).result
