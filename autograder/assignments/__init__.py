"""One sub-package per assignment, each exposing ``ASSIGNMENT`` (tasks + checks)."""

from __future__ import annotations

import importlib
import importlib.util

from ..engine import Assignment

ASSIGNMENT_IDS = ("gmm", "prankster", "hard_em", "advi")


def available() -> list[str]:
    """Ids of the assignments this installation can grade."""
    found = []
    for assignment_id in ASSIGNMENT_IDS:
        if importlib.util.find_spec(f"{__name__}.{assignment_id}") is not None:
            found.append(assignment_id)
    return found


def get_assignment(assignment_id: str) -> Assignment:
    if assignment_id not in ASSIGNMENT_IDS:
        raise KeyError(f"unknown assignment {assignment_id!r}; known: {', '.join(ASSIGNMENT_IDS)}")
    try:
        module = importlib.import_module(f"{__name__}.{assignment_id}")
    except ModuleNotFoundError as exc:
        if exc.name == f"{__name__}.{assignment_id}":
            raise KeyError(f"assignment {assignment_id!r} is not available yet") from None
        raise
    return module.ASSIGNMENT
