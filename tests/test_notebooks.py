"""Every notebook runs top to bottom in a real Jupyter kernel.

Solution notebooks: every cell runs, and every hidden test cell (which calls the full grader in
a clean process) returns full marks. Released notebooks, untouched: the check cells report
"not implemented yet" instead of crashing, and the only errors are NotImplementedError.
"""

import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from autograder.build.__main__ import assignments_with_sources
from conftest import ROOT

pytestmark = pytest.mark.slow
ASSIGNMENTS = assignments_with_sources()


def _run(path, cwd, allow_errors=False):
    nb = nbformat.read(path, 4)
    NotebookClient(nb, timeout=900, kernel_name="python3", allow_errors=allow_errors,
                   resources={"metadata": {"path": str(cwd)}}).execute()
    return nb


def _stderr(cell):
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stderr")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_notebook_runs_and_earns_full_marks(assignment):
    source = ROOT / "solutions" / assignment / f"{assignment}.ipynb"
    nb = _run(source, source.parent)
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert graded
    for cell in graded:
        points = cell.metadata["nbgrader"]["points"]
        results = [o for o in cell.outputs if o.output_type == "execute_result"]
        assert results, f"{cell.metadata['nbgrader']['grade_id']} returned no score"
        assert float(results[0].data["text/plain"]) == points, cell.metadata["nbgrader"]["grade_id"]
        assert "text/html" in results[0].data
        widgets = [o for o in cell.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        assert not widgets, f"{cell.metadata['nbgrader']['grade_id']} shows widgets (progress bars must be quiet)"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not _stderr(cell), (cell.source[:80], _stderr(cell))  # nbgrader zeroes cells that warn


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_untouched_release_reports_instead_of_crashing(assignment, tmp_path):
    release = ROOT / "course" / assignment / f"{assignment}.ipynb"
    shutil.copy(release, tmp_path / release.name)
    nb = _run(tmp_path / release.name, tmp_path, allow_errors=True)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if cell.metadata.get("nbgrader", {}).get("grade"):
            assert not errors, (cell.source, errors)
            text = "".join(o.data.get("text/plain", "") for o in cell.outputs if o.output_type == "execute_result")
            assert "not implemented yet" in text
        else:
            assert all(e.ename == "NotImplementedError" for e in errors), (cell.source[:80], errors)
