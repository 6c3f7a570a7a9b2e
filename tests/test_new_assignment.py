"""A new assignment is its folders (checks, source notebook, data, corpus); only pyproject.toml
and the README list it too (tests/test_setup_cell.py names what is missing there).

The test copies the checkout to a temporary folder, adds a toy assignment there
(``autograder/assignments/toy/__init__.py`` with one task and two checks, the source notebook
``solutions/toy/toy.ipynb`` and a data set ``data/toy.py``) and, with only that copy on the
path, builds it (``python -m autograder.build toy``: reference module, released notebook), finds
it in the registry, the CLI's help and the data loaders, grades a right and a wrong
submission with ``python -m autograder grade`` (the sandbox included), and runs the generic
corpus test (``tests/test_corpora.py``) on a corpus ``tests/corpora/toy/`` of one of each.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import nbformat
import pytest

from conftest import ROOT

TOY_CHECKS = '''\
"""Assignment `toy`: doubling numbers (the test's toy)."""

import numpy as np

from ...engine import Assignment, Task, expect

ORDER = 99

ASSIGNMENT = Assignment(id="toy", title="A toy", tasks=[Task("double", "(x)", "2 * x")])


@ASSIGNMENT.check("double", "doubles a visible vector", 1)
def double_visible(ctx):
    x = np.arange(3.0)
    expect.close(expect.array(ctx.run(x), "double(x)", shape=(3,)), 2 * x, "double(x)", rtol=1e-12, atol=0.0)


@ASSIGNMENT.check("double", "agrees with the reference", 2, needs_reference=True)
def double_hidden(ctx):
    x = ctx.rng.normal(size=5)
    expected = ctx.reference("double")(x)
    expect.close(expect.array(ctx.run(x), "double(x)", shape=(5,)), expected, "double(x)", rtol=1e-12, atol=0.0)
'''

TOY_IMPORTS = "import numpy as np"
TOY_SOLUTION = "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION"
TOY_TEST = 'check("double", double)\n### BEGIN HIDDEN TESTS\ngrade("double")\n### END HIDDEN TESTS'
TOY_DATA = "import numpy as np\n\n\ndef load():\n    return {'x': np.arange(3.0)}\n"
TOY_RIGHT = "def double(x):\n    return x + x\n"
TOY_MUTANT = "# breaks: double\n# bug: triples x\n# (mutant of correct/a_sum.py)\ndef double(x):\n    return 3 * x\n"


def _copy_checkout(dest):
    """The tracked files of the checkout (as they are in the working tree), without tests/."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for rel in filter(None, listed.decode().split("\0")):
        if rel.startswith(("tests/", "benchmarks/", "examples/", "course/")) or not (ROOT / rel).is_file():
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)


@pytest.fixture(scope="module")
def course_with_toy(tmp_path_factory):
    course = tmp_path_factory.mktemp("course")
    _copy_checkout(course)
    package = course / "autograder" / "assignments" / "toy"
    package.mkdir()
    (package / "__init__.py").write_text(TOY_CHECKS)
    (course / "solutions" / "toy").mkdir()
    nbformat.write(_toy_notebook(), course / "solutions" / "toy" / "toy.ipynb")
    (course / "data" / "toy.py").write_text(TOY_DATA)
    # What installing does (pyproject.toml maps data/ to autograder.datasets); else the datasets
    # would come from this checkout's editable install.
    (course / "autograder" / "datasets").symlink_to(course / "data", target_is_directory=True)
    # What `make build` runs. It takes some 11 s of CPU, but nbgrader's start (alembic) took 3 min of
    # wall time on the shared 2-core machine under load: the limit only guards against a hang.
    built = _run(course, "-m", "autograder.build", "toy", timeout=400)
    assert built.returncode == 0, built.stdout + built.stderr
    return course


def _toy_notebook():
    cell = nbformat.v4.new_code_cell
    grading = {"schema_version": 3, "locked": False}
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# A toy"),
        cell(TOY_IMPORTS, metadata={"tags": ["export"]}),
        cell(TOY_SOLUTION, metadata={"tags": ["export"], "nbgrader": {
            **grading, "solution": True, "grade": False, "grade_id": "double"}}),
        cell(TOY_TEST, metadata={"nbgrader": {
            **grading, "solution": False, "grade": True, "locked": True, "points": 0, "grade_id": "test_double"}}),
    ])


def _run(course, *args, timeout=60):
    env = {k: v for k, v in os.environ.items() if k != "AUTOGRADER_COURSE_ROOT"}
    env["PYTHONPATH"] = str(course)
    return subprocess.run([sys.executable, *args], cwd=course, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_copy_builds_the_toy(course_with_toy):
    reference = (course_with_toy / "solutions" / "toy" / "__init__.py").read_text()
    assert "return 2 * x" in reference and "BEGIN SOLUTION" not in reference
    released = nbformat.read(course_with_toy / "course" / "toy" / "toy.ipynb", 4)
    assert "return 2 * x" not in "".join(c.source for c in released.cells)
    points = [c.metadata["nbgrader"].get("points") for c in released.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert points == [3]                      # the checks' points, written by the build


def test_the_copy_finds_the_toy_in_the_registry_the_help_and_the_data(course_with_toy):
    found = _run(course_with_toy, "-c", textwrap.dedent("""
        import autograder
        from autograder import datasets
        from autograder.assignments import ASSIGNMENT_IDS, get_assignment
        print(autograder.__file__)
        print(",".join(ASSIGNMENT_IDS))
        print(get_assignment("toy").points())
        print(datasets.load("toy")["x"].tolist())
    """))
    assert found.returncode == 0, found.stderr
    package, ids, points, data = found.stdout.split("\n")[:4]
    assert package.startswith(str(course_with_toy)), "the copy's package must be the one imported"
    assert ids.split(",")[-1] == "toy" and ids.split(",")[:4] == ["gmm", "prankster", "hard_em", "advi"]
    assert float(points) == 3 and data == "[0.0, 1.0, 2.0]"
    helped = _run(course_with_toy, "-m", "autograder", "grade", "--help")
    assert "advi, toy" in " ".join(helped.stdout.split())


def test_the_copy_grades_a_toy_submission(course_with_toy, tmp_path):
    (tmp_path / "right.py").write_text(TOY_RIGHT)
    (tmp_path / "wrong.py").write_text("def double(x):\n    return 3 * x\n")
    graded = _run(course_with_toy, "-m", "autograder", "grade", "--assignment", "toy", "--format", "json",
                  "--jobs", "1", "--no-progress", str(tmp_path / "right.py"), str(tmp_path / "wrong.py"))
    assert graded.returncode == 0, graded.stderr
    results = {r["submission"]: r for r in json.loads(graded.stdout)}
    scores = {os.path.basename(s): (r["score"], r["max_score"], r["error"]) for s, r in results.items()}
    assert scores == {"right.py": (3, 3, None), "wrong.py": (0, 3, None)}, scores


def test_the_copy_grades_the_toy_corpus_with_the_generic_corpus_test(course_with_toy):
    """Its corpus, without a test module of its own, is graded by tests/test_corpora.py."""
    corpora = course_with_toy / "tests" / "corpora" / "toy"
    (corpora / "correct").mkdir(parents=True)
    (corpora / "mutants").mkdir()
    (corpora / "correct" / "a_sum.py").write_text(TOY_RIGHT)
    (corpora / "mutants" / "double__triples.py").write_text(TOY_MUTANT)
    for name in ("conftest.py", "corpus_support.py", "test_corpora.py"):
        shutil.copy2(ROOT / "tests" / name, course_with_toy / "tests" / name)
    ran = _run(course_with_toy, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_corpora.py", timeout=300)
    assert ran.returncode == 0 and re.search(r"^5 passed\b", ran.stdout, re.M), ran.stdout[-3000:] + ran.stderr[-3000:]
