"""Reading, cleaning and writing notebooks deterministically."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

# Notebook metadata we keep; everything else (widget state, execution timing...) is dropped.
_KEEP_NOTEBOOK_METADATA = ("kernelspec", "language_info", "colab", "celltoolbar")
_KEEP_CELL_METADATA = ("nbgrader", "tags", "id", "editable", "deletable")


def read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def clean(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Outputs, execution counts and volatile metadata removed (committed notebooks are clean)."""
    nb.metadata = {k: v for k, v in nb.metadata.items() if k in _KEEP_NOTEBOOK_METADATA}
    nb.metadata.setdefault("kernelspec", {"display_name": "Python 3", "language": "python", "name": "python3"})
    nb.metadata.setdefault("language_info", {"name": "python"})
    nb.metadata["language_info"] = {"name": "python"}
    for cell in nb.cells:
        cell.metadata = {k: v for k, v in cell.metadata.items() if k in _KEEP_CELL_METADATA}
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.pop("attachments", None) if cell.cell_type != "markdown" else None
    return nb


def dumps(nb: nbformat.NotebookNode) -> str:
    nbformat.validate(nb)
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def code_cells_tagged(nb: nbformat.NotebookNode, tag: str) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and tag in c.metadata.get("tags", [])]


def sync_points(nb: nbformat.NotebookNode, points: dict[str, float]) -> nbformat.NotebookNode:
    """Set each test cell's nbgrader points to the total of its function's checks (one source of truth)."""
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and meta.get("grade_id") in points:
            value = points[meta["grade_id"]]
            meta["points"] = int(value) if float(value).is_integer() else value
    return nb
