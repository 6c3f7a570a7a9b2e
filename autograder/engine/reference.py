"""Finding the reference implementation (instructors have it, students do not)."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path


def course_root() -> Path | None:
    """The checkout holding ``solutions/`` and ``nbgrader_config.py``, if this machine has one.

    Looked for in ``$AUTOGRADER_COURSE_ROOT``, then from the working directory upwards (nbgrader
    runs hidden test cells inside ``<course>/autograded/<student>/<assignment>/``), then next
    to this package (a development checkout).
    """
    candidates = []
    if os.environ.get("AUTOGRADER_COURSE_ROOT"):
        candidates.append(Path(os.environ["AUTOGRADER_COURSE_ROOT"]))
    cwd = Path.cwd().resolve()
    candidates.extend([cwd, *cwd.parents])
    candidates.append(Path(__file__).resolve().parents[2])
    for path in candidates:
        if (path / "solutions" / "__init__.py").is_file() and (path / "nbgrader_config.py").is_file():
            return path
    return None


def load_reference(assignment_id: str):
    """The module ``solutions.<assignment_id>`` or None when this machine does not have it."""
    root = course_root()
    if root is None:
        return None
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        return importlib.import_module(f"solutions.{assignment_id}")
    except ImportError:
        return None
