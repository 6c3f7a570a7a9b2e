"""The Gradescope autograder zip, run locally in a folder laid out like Gradescope's /autograder."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from autograder.assignments import get_assignment
from autograder.build.__main__ import assignments_with_sources
from conftest import ROOT

pytestmark = pytest.mark.slow


def _zip(assignment: str, folder: Path) -> Path:
    done = subprocess.run([sys.executable, "-m", "autograder", "gradescope", "-a", assignment, "--out", str(folder)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    path = Path(done.stdout.strip())
    assert path == folder / f"gradescope-{assignment}.zip" and path.is_file()
    return path


def _install(zip_path: Path, root: Path) -> None:
    """Unzip into root/source like Gradescope does (keeping the executable bits)."""
    source = root / "source"
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            target = source / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            os.chmod(target, (info.external_attr >> 16) & 0o777 or 0o644)
    (root / "submission").mkdir(parents=True, exist_ok=True)


def _run(root: Path) -> dict:
    env = dict(os.environ, GRADESCOPE_ROOT=str(root), GRADESCOPE_PYTHON=sys.executable)
    env.pop("AUTOGRADER_COURSE_ROOT", None)
    done = subprocess.run([str(root / "source" / "run_autograder")], cwd="/", env=env, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    return json.loads((root / "results" / "results.json").read_text())


@pytest.mark.parametrize("assignment", assignments_with_sources())
def test_the_zip_holds_what_grading_needs_and_no_answer_key_for_students(assignment, tmp_path):
    names = zipfile.ZipFile(_zip(assignment, tmp_path)).namelist()
    assert {"setup.sh", "run_autograder", "requirements.txt", "lib/autograder/__init__.py",
            "course/nbgrader_config.py", f"course/solutions/{assignment}/__init__.py"} <= set(names)
    assert any(n.startswith(f"lib/autograder/assignments/{assignment}/") for n in names)
    assert any(n.startswith("lib/autograder/datasets/") for n in names)
    assert not [n for n in names if n.endswith(".ipynb")]  # no source notebook (hidden tests), no release
    others = [a for a in assignments_with_sources() if a != assignment]
    assert not [n for n in names for a in others if n.startswith(f"course/solutions/{a}/")]
    assert not [n for n in names if n.startswith(("tests/", "examples/")) or "__pycache__" in n]


@pytest.mark.parametrize("assignment", assignments_with_sources())
def test_run_autograder_gives_full_marks_to_the_reference(assignment, tmp_path):
    root = tmp_path / "autograder"
    _install(_zip(assignment, tmp_path), root)
    reference = ROOT / "solutions" / assignment / "__init__.py"
    (root / "submission" / f"{assignment}.py").write_text(reference.read_text())
    results = _run(root)
    total = get_assignment(assignment).points()
    assert results["score"] == total, results["output"]
    assert sum(t["max_score"] for t in results["tests"]) == total
    for test in results["tests"]:
        assert set(test) >= {"name", "score", "max_score", "output", "visibility"}
        assert test["score"] == test["max_score"] and test["visibility"] == "visible"


def test_run_autograder_agrees_with_the_cli_on_a_partly_wrong_notebook(tmp_path):
    root = tmp_path / "autograder"
    _install(_zip("gmm", tmp_path), root)
    notebook = ROOT / "examples" / "gmm" / "partly_wrong.ipynb"
    (root / "submission" / "gmm.ipynb").write_bytes(notebook.read_bytes())
    (root / "submission" / "notes.txt").write_text("my notes")
    results = _run(root)
    cli = subprocess.run([sys.executable, "-m", "autograder", "grade", "-a", "gmm", "-f", "json", str(notebook)],
                         cwd=ROOT, capture_output=True, text=True, timeout=600)
    expected = json.loads(cli.stdout)[0]
    assert 0 < results["score"] == expected["score"] < expected["max_score"]
    assert [(t["score"], t["max_score"], t["output"]) for t in results["tests"]] == [
        (t["score"], t["max_score"], t["feedback"]) for t in expected["tests"]]
    assert [t["name"] for t in results["tests"]] == [f"{t['function']}: {t['name']}" for t in expected["tests"]]
    # The zip's own copy of the package did the grading, with the zip's reference.
    env = dict(os.environ, PYTHONPATH=str(root / "source" / "lib"))
    where = subprocess.run([sys.executable, "-c", "import autograder; print(autograder.__file__)"], cwd="/",
                           env=env, capture_output=True, text=True).stdout
    assert where.startswith(str(root / "source" / "lib"))


def test_run_autograder_explains_an_empty_submission(tmp_path):
    root = tmp_path / "autograder"
    _install(_zip("gmm", tmp_path), root)
    results = _run(root)
    assert results["score"] == 0 and "gmm.ipynb" in results["output"]
    assert all(t["score"] == 0 for t in results["tests"])


def test_run_autograder_refuses_a_submission_that_is_a_symbolic_link(tmp_path):
    """A repository submitted through GitHub keeps its symlinks: gmm.py -> the zip's reference
    module would otherwise be graded as the student's work (full marks)."""
    root = tmp_path / "autograder"
    _install(_zip("gmm", tmp_path), root)
    [reference] = [p for p in (root / "source").rglob("__init__.py") if p.parent.name == "gmm"
                   and "solutions" in p.parts]
    (root / "submission" / "gmm.py").symlink_to(reference)
    results = _run(root)
    assert results["score"] == 0 and all(t["score"] == 0 for t in results["tests"]), results["output"]
    assert "symbolic link" in json.dumps(results)
