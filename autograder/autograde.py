"""``nbgrader autograde`` through the sandbox: nothing in a submitted notebook runs outside it.

nbgrader's own ``Execute`` step ran the whole notebook in a kernel with the instructor's rights
and read each hidden test cell's score from what the cell displayed, so a notebook could forge
its grade (``grade = lambda name: None``: no output means full marks) or rewrite the gradebook.
``configure(c)`` (called by ``nbgrader_config.py``) changes two of nbgrader's pipelines:

Sanitising: nbgrader's ``ClearOutput`` drops every output the student saved; then ours,
``RestoreTestCells``, makes every autograded test cell of the release exist exactly once with the
release's source and metadata (the last of several copies is kept, like nbgrader does; a deleted
one is added back; a flipped ``grade`` flag, changed points or cell type restored) and removes
nbgrader metadata that names no cell of the release or is malformed (nbgrader's next steps
would fail on it, and the whole notebook would go ungraded); then nbgrader's ``DeduplicateIds``,
``OverwriteCells`` (restores locked cells, types, points and checksums from the gradebook, that
is the release) and ``CheckCellMetadata``.

Autograding: ``GradeInSandbox`` replaces ``Execute``. It grades the notebook's code cells with
the one grading function (``grading.grade_submission``, in a grading process of its own, the
student's functions in the sandbox; no other cell runs) and writes into every autograded test
cell (grade id ``test_<function>``) exactly two outputs: a display of the report (``text/html``
and ``text/plain``; never stderr) and an ``execute_result`` whose ``text/plain`` is the function's
points, which nbgrader's ``SaveAutoGrades`` reads as partial credit. Every such cell gets an
explicit score, 0 for anything that went wrong (missing function, unreadable code, crash,
time-out, a grader error), never "no output" (which nbgrader reads as full marks). Then
nbgrader's ``SaveAutoGrades`` and the rest run as before, so ``generate_feedback`` and ``export``
are unchanged. Notebooks are not executed: the autograded notebook is the student's code without
outputs, with the reports in the test cells.
"""

from __future__ import annotations

import os

from nbformat import v4
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Dict, Float, Int

__all__ = ["GradeInSandbox", "RestoreTestCells", "configure"]


def configure(c) -> None:
    """Put our two steps into nbgrader's autograde pipelines (``c``: nbgrader's config).

    Never raises: nbgrader ignores a config file that raises, and would then run its own
    ``Execute`` step again.
    """
    from nbgrader.converters import Autograde
    from nbgrader.preprocessors import DeduplicateIds, Execute

    autograde = [GradeInSandbox if p is Execute else p for p in Autograde.autograde_preprocessors.default()]
    if GradeInSandbox not in autograde:  # pragma: no cover - another nbgrader: grade first anyway
        autograde.insert(0, GradeInSandbox)
    sanitize = list(Autograde.sanitize_preprocessors.default())
    sanitize.insert(sanitize.index(DeduplicateIds) if DeduplicateIds in sanitize else 0, RestoreTestCells)
    c.Autograde.autograde_preprocessors = autograde
    c.Autograde.sanitize_preprocessors = sanitize


def _test_cells(resources) -> tuple[dict, list]:
    """({grade id: (source cell, points)} of the autograded test cells, [grade ids in order])."""
    from nbgrader.api import Gradebook
    info = resources["nbgrader"]
    with Gradebook(info["db_url"]) as gradebook:
        notebook = gradebook.find_notebook(info["notebook"], info["assignment"])
        solutions = {c.name for c in notebook.solution_cells}
        points = {c.name: float(c.max_score) for c in notebook.grade_cells
                  if c.cell_type == "code" and c.name not in solutions}
        order = [c.name for c in notebook.source_cells]
        cells = {c.name: {"source": c.source, "checksum": c.checksum, "locked": bool(c.locked),
                          "points": points[c.name]} for c in notebook.source_cells if c.name in points}
    return cells, order


def _is_test_cell(cell) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


class RestoreTestCells(NbGraderPreprocessor):
    """Sanitising, before nbgrader's own steps: every autograded test cell of the release,
    exactly once, as released; no nbgrader metadata that names no cell of the release."""

    def preprocess(self, nb, resources):
        cells, order = _test_cells(resources)
        known = set(order)
        kept: set[str] = set()
        for cell in reversed(nb.cells):         # of cells sharing a grade id nbgrader keeps the last
            meta = cell.metadata.get("nbgrader")
            if meta is None:
                continue
            grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
            if grade_id not in known or (grade_id in cells and grade_id in kept):
                # Malformed, unknown or a second copy: nbgrader's later steps would fail on it
                # (and the student's whole notebook with them).
                del cell.metadata["nbgrader"]
                continue
            if grade_id in cells:
                kept.add(grade_id)
                _restore(cell, grade_id, cells[grade_id])
        for grade_id in [g for g in order if g in cells and g not in kept]:
            self.log.warning("test cell %s was missing from the submission: added back", grade_id)
            cell = v4.new_code_cell()
            if (nb.get("nbformat"), nb.get("nbformat_minor", 0)) < (4, 5):
                cell.pop("id", None)        # cell ids exist from nbformat 4.5 on
            _restore(cell, grade_id, cells[grade_id])
            earlier = set(order[:order.index(grade_id)])
            at = len(nb.cells)      # after the last cell of the release that comes before it
            for index, other in enumerate(nb.cells):
                if other.metadata.get("nbgrader", {}).get("grade_id") in earlier:
                    at = index + 1
            nb.cells.insert(at, cell)
        return nb, resources


def _restore(cell, grade_id: str, released: dict) -> None:
    cell.cell_type = "code"
    cell.source = released["source"]
    cell.outputs = []
    cell.execution_count = None
    cell.pop("attachments", None)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": released["locked"],
                                 "points": released["points"], "grade_id": grade_id,
                                 "checksum": released["checksum"], "cell_type": "code", "schema_version": 3}


class GradeInSandbox(NbGraderPreprocessor):
    """Autograding: grade the notebook's code in the sandbox; write each test cell's score."""

    assignments = Dict({}, help="nbgrader assignment id -> autograder assignment id (default: the same)"
                       ).tag(config=True)
    max_call_seconds = Float(0.0, help="cap on every call of a student's function (0: each check's own)"
                             ).tag(config=True)
    max_submission_seconds = Float(0.0, help="time for all calls of one notebook together (0: the default, "
                                   "300 s)").tag(config=True)
    grader_memory_mb = Int(0, help="address space of the grading process in MB (0: the default)").tag(config=True)

    def preprocess(self, nb, resources):
        from .assignments import ASSIGNMENT_IDS, get_assignment
        from .engine import SubmissionResult
        from .supervisor import Request, grade_one

        info = resources["nbgrader"]
        assignment_id = self.assignments.get(info["assignment"], info["assignment"])
        if assignment_id not in ASSIGNMENT_IDS:
            raise ValueError(f"the autograder has no checks for assignment {assignment_id!r} "
                             f"(known: {', '.join(ASSIGNMENT_IDS)}); map it in GradeInSandbox.assignments")
        assignment = get_assignment(assignment_id)
        limits = {}
        if self.max_call_seconds > 0:
            limits["max_call_seconds"] = self.max_call_seconds
        if self.max_submission_seconds > 0:
            limits["total_seconds"] = self.max_submission_seconds
        if self.grader_memory_mb > 0:
            limits["grader_memory_mb"] = self.grader_memory_mb
        cells = tuple(cell.source for cell in nb.cells if cell.cell_type == "code")
        label = f"{info['student']}/{info['notebook']}.ipynb"
        record = grade_one(Request(assignment_id, label, cells=cells, hidden=tuple(self._hidden()),
                                   limits=limits))
        result = SubmissionResult.from_dict(record["result"])
        if record.get("internal_error"):
            self.log.error("the autograder failed on %s (its test cells get 0; grade it again): %s",
                           label, result.error)
        functions = {task.name for task in assignment.tasks}
        scores = result.function_scores()
        total = 0.0
        for cell in nb.cells:
            if not _is_test_cell(cell):
                continue
            grade_id = cell.metadata["nbgrader"].get("grade_id", "")
            points = float(cell.metadata["nbgrader"].get("points", 0))
            function = grade_id[len("test_"):] if grade_id.startswith("test_") else None
            if function in functions:
                score, maximum = scores.get(function, (0.0, assignment.points(function)))
                awarded = score if maximum == points else score * points / maximum if maximum else 0.0
                html, text = _report(result, function, awarded, points, scaled=maximum != points)
            else:
                awarded = 0.0
                text = (f"0 / {points:g}: this test cell ({grade_id or 'no grade id'}) does not test a function "
                        f"of {assignment_id}; the autograder gives it no points")
                html = f"<pre>{_escape(text)}</pre>"
            awarded = min(max(awarded, 0.0), points)
            total += awarded
            cell.outputs = [
                v4.new_output("display_data", data={"text/html": html, "text/plain": text}),
                v4.new_output("execute_result", data={"text/plain": repr(float(awarded))}, execution_count=None),
            ]
            cell.execution_count = None
        self.log.info("%s: %g points (graded in the sandbox in %.1f s)", label, total, record.get("seconds", 0))
        return nb, resources

    def _hidden(self) -> list[str]:
        """Folders the sandbox must not show, beyond its defaults (while it still hides by a list)."""
        exchange = self.config.get("Exchange", {}).get("root", "/srv/nbgrader/exchange")
        return [str(exchange), os.getcwd()]


def _report(result, function: str, awarded: float, points: float, scaled: bool) -> tuple[str, str]:
    from .reporting import render_html, render_text
    title = f"{function}: {awarded:g} / {points:g}"
    footer = ""
    if scaled:
        footer = f"(the checks' points are scaled to this cell's {points:g} points)"
    html = render_html(result, title=title, functions=[function], footer=footer)
    text = f"{title}\n" + render_text(result, functions=[function]) + (f"\n{footer}" if footer else "")
    return html, text


def _escape(text: str) -> str:
    import html
    return html.escape(text, quote=False)
