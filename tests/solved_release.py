"""A released student notebook with a finished solution pasted in, as a student would hand it in.

Each solution cell of ``course/<id>/<id>.ipynb`` (nbgrader ``solution: true``) gets the source of
the source notebook's cell with the same ``grade_id``, minus the ``### BEGIN/END SOLUTION``
marker lines. Everything else (set-up cell, check cells without hidden tests, given code) stays
exactly as released.
"""

from __future__ import annotations

import nbformat

from conftest import ROOT

MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def _grade_id(cell) -> str | None:
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def solved_release(assignment: str) -> nbformat.NotebookNode:
    release = nbformat.read(ROOT / "course" / assignment / f"{assignment}.ipynb", 4)
    source = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", 4)
    solutions = {_grade_id(c): c.source for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")}
    filled = 0
    for cell in release.cells:
        if cell.metadata.get("nbgrader", {}).get("solution"):
            code = solutions[_grade_id(cell)]
            cell.source = "\n".join(line for line in code.splitlines() if line.strip() not in MARKERS)
            filled += 1
    assert filled, f"course/{assignment} has no solution cells"
    return release


def check_cells(nb) -> list:
    """The released test cells (``check("name", name)``), in order."""
    return [c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")]
