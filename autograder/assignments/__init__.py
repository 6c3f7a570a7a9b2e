"""One sub-package per assignment, each exposing ``ASSIGNMENT`` (tasks + checks).

Assignments are discovered, not listed: every sub-package of this package is one, its id the
folder's name. A package places itself in listings with a top-level ``ORDER = <number>`` (the
course's order: gmm 1, prankster 2, hard_em 3, advi 4); packages without one come last, by name.
The order is read from the package's source without importing it (importing imports its checks,
seconds for all of them together), so listing the assignments costs nothing.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import math
import pkgutil
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..engine import Assignment


def _declared_order(assignment_id: str) -> float:
    """The ``ORDER = <number>`` at the top level of the package's ``__init__.py`` (inf if none)."""
    spec = importlib.util.find_spec(f"{__name__}.{assignment_id}")
    try:
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    except (AttributeError, TypeError, OSError, SyntaxError, ValueError):
        return math.inf
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "ORDER" for t in node.targets):
            try:
                return float(ast.literal_eval(node.value))
            except (ValueError, TypeError):
                return math.inf
    return math.inf


def available() -> tuple[str, ...]:
    """Ids of the assignments this installation can grade, in the course's order."""
    found = [m.name for m in pkgutil.iter_modules(__path__) if m.ispkg and not m.name.startswith("_")]
    return tuple(sorted(found, key=lambda name: (_declared_order(name), name)))


# Every assignment, in the course's order (computed: the sub-packages found at import).
ASSIGNMENT_IDS = available()


def get_assignment(assignment_id: str) -> Assignment:
    if assignment_id not in ASSIGNMENT_IDS:
        raise KeyError(f"unknown assignment {assignment_id!r}; known: {', '.join(ASSIGNMENT_IDS)}")
    return importlib.import_module(f"{__name__}.{assignment_id}").ASSIGNMENT
