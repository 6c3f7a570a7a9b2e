"""The course as instructors run it with the real nbgrader, for every assignment with a source.

In a temporary copy of the course: ``nbgrader generate_assignment``, submissions in
``submitted/<student>/<assignment>/`` (the solution notebook with its hidden tests removed, the
untouched release, and for the first assignment the release with only its first task solved),
``nbgrader autograde``,
``generate_feedback`` and ``export``; then the CLI on the same ``submitted/`` tree. nbgrader's
points per function must equal the CLI's, the solution must get full marks and the release less,
and the feedback must not show hidden test code.
"""

from __future__ import annotations

import csv
import html
import json
import re
import shutil
import subprocess
import sys

import nbformat
import pytest

from autograder.assignments import ASSIGNMENT_IDS
from autograder.build.__main__ import assignments_with_sources
from conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.nbgrader]
ASSIGNMENTS = assignments_with_sources()
STUDENTS = ("solution", "release", "partly")
FIRST = next(a for a in ASSIGNMENT_IDS if a in ASSIGNMENTS) if ASSIGNMENTS else None
HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[ \t]*\n?", re.S | re.M)


def _students(assignment):
    """Three notebooks for the course's first assignment, the two extremes for the others (time)."""
    return STUDENTS if assignment == FIRST else STUDENTS[:2]


def _nbgrader(root, *args):
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"], cwd=root,
                          capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _graded_cells(nb):
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


def _submissions(root, assignment):
    """{student: notebook} written into root/submitted/<student>/<assignment>/<assignment>.ipynb."""
    source = nbformat.read(root / "solutions" / assignment / f"{assignment}.ipynb", 4)
    solution = nbformat.from_dict(json.loads(json.dumps(source)))
    for cell in solution.cells:
        if cell.cell_type == "code":
            cell.source = HIDDEN.sub("", cell.source)
    release = nbformat.read(root / "course" / assignment / f"{assignment}.ipynb", 4)
    partly = nbformat.from_dict(json.loads(json.dumps(release)))
    solved = [c for c in solution.cells if c.metadata.get("nbgrader", {}).get("solution")
              and c.cell_type == "code"][0]
    for cell in partly.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == solved.metadata["nbgrader"]["grade_id"]:
            cell.source = solved.source
    out = {"solution": solution, "release": release, "partly": partly}
    out = {student: nb for student, nb in out.items() if student in _students(assignment)}
    for student, nb in out.items():
        folder = root / "submitted" / student / assignment
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{assignment}.ipynb")
    return out, solved.metadata["nbgrader"]["grade_id"]


def _prepare(assignment, root):
    shutil.copy(ROOT / "nbgrader_config.py", root)
    (root / "solutions").mkdir()
    shutil.copy(ROOT / "solutions" / "__init__.py", root / "solutions")
    shutil.copytree(ROOT / "solutions" / assignment, root / "solutions" / assignment,
                    ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    _nbgrader(root, "generate_assignment", assignment, "--force")
    notebooks, first_task = _submissions(root, assignment)
    _nbgrader(root, "autograde", assignment, "--force")
    _nbgrader(root, "generate_feedback", assignment, "--force")
    _nbgrader(root, "export")
    cli = subprocess.run([sys.executable, "-m", "autograder", "grade", "-a", assignment, "-f", "json", "-j", "1",
                          "--gradebook", str(root / "cli"), str(root / "submitted")], cwd=root,
                         capture_output=True, text=True, timeout=1800)
    assert cli.returncode == 0, cli.stderr
    from nbgrader.api import Gradebook
    nbgrader_points = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for student in _students(assignment):
            notebook = gradebook.find_submission_notebook(assignment, assignment, student)
            nbgrader_points[student] = {g.name: (g.score, g.max_score) for g in notebook.grades}
    return {"id": assignment, "root": root, "notebooks": notebooks, "first_task": first_task,
            "nbgrader": nbgrader_points, "cli": json.loads(cli.stdout)}


@pytest.fixture(scope="module")
def courses(tmp_path_factory):
    """Every assignment's course, two at a time (a notebook kernel uses one core)."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {a: pool.submit(_prepare, a, tmp_path_factory.mktemp(f"course-{a}")) for a in ASSIGNMENTS}
        return {a: f.exception() or f.result() for a, f in futures.items()}


@pytest.fixture(params=ASSIGNMENTS)
def course(request, courses):
    prepared = courses[request.param]
    if isinstance(prepared, BaseException):
        raise prepared
    return prepared


def _cli_by_student(course):
    out = {}
    for entry in course["cli"]:
        student = entry["submission"].split("/submitted/")[1].split("/")[0]
        out[student] = entry
    return out


def test_solution_gets_full_marks_and_the_release_less(course):
    points = course["nbgrader"]
    solution = points["solution"]
    assert solution and all(score == maximum for score, maximum in solution.values()), solution
    total = sum(m for _, m in solution.values())
    for student in set(points) - {"solution"}:
        assert sum(s for s, _ in points[student].values()) < total, (student, points[student])
    if "partly" not in points:
        return
    # The partly solved notebook: its one solved task earns its points, the others do not.
    solved = f"test_{course['first_task']}"
    assert points["partly"][solved][0] == points["partly"][solved][1] > 0
    assert sum(s for name, (s, _) in points["partly"].items() if name != solved) < \
        sum(m for name, (_, m) in points["partly"].items() if name != solved)


def test_nbgrader_points_per_function_equal_the_cli(course):
    cli = _cli_by_student(course)
    assert set(cli) == set(course["nbgrader"])
    for student in course["nbgrader"]:
        entry = cli[student]
        assert entry["error"] is None, entry["error"]
        per_function = {}
        for test in entry["tests"]:
            score, maximum = per_function.get(test["function"], (0.0, 0.0))
            per_function[test["function"]] = (score + test["score"], maximum + test["max_score"])
        from_nbgrader = {name.removeprefix("test_"): value for name, value in course["nbgrader"][student].items()
                         if name.startswith("test_")}
        assert from_nbgrader.keys() == per_function.keys(), student
        for function, (score, maximum) in per_function.items():
            assert from_nbgrader[function] == pytest.approx((score, maximum)), (student, function)


def test_feedback_never_shows_hidden_tests(course):
    root, assignment = course["root"], course["id"]
    for student in course["nbgrader"]:
        page = (root / "feedback" / student / assignment / f"{assignment}.html").read_text(encoding="utf-8")
        text = html.unescape(re.sub(r"<[^>]+>", "", page))
        assert "HIDDEN TESTS" not in text
        assert not re.search(r"\bgrade\(\s*['\"]", text), f"hidden test code in {student}'s feedback"
    # The failing cells say what failed: the release's first test cell reports "not implemented".
    release = (root / "feedback" / "release" / assignment / f"{assignment}.html").read_text(encoding="utf-8")
    assert "not implemented yet" in html.unescape(re.sub(r"<[^>]+>", "", release))


def test_feedback_explains_one_failing_case_not_the_answer_key(course):
    """Each failed check's message shows at most one small failing case: never whole reference arrays."""
    for entry in course["cli"]:
        for test in entry["tests"]:
            if not test["passed"]:
                numbers = re.findall(r"-?\d+\.\d+(?:e[-+]?\d+)?", test["feedback"])
                assert len(numbers) <= 120, (test["function"], test["name"], len(numbers))


def test_export_and_the_cli_gradebook(course):
    root, assignment = course["root"], course["id"]
    with open(root / "grades.csv", newline="") as f:
        exported = {row["student_id"]: float(row["raw_score"]) for row in csv.DictReader(f)
                    if row["assignment"] == assignment}
    for student in course["nbgrader"]:
        assert exported[student] == pytest.approx(sum(s for s, _ in course["nbgrader"][student].values()))
    with open(root / "cli" / "gradebook.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(course["nbgrader"])
    for student in course["nbgrader"]:
        assert float(rows[student]["total"]) == pytest.approx(exported[student])
        assert (root / "cli" / "reports" / f"{student}.html").is_file()
