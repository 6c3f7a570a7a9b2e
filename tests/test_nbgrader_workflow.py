"""The course as instructors run it with the real nbgrader, for every assignment with a source.

In a temporary copy of the course: ``nbgrader generate_assignment``, submissions in
``submitted/<student>/<assignment>/`` (the solution notebook with its hidden tests removed, the
untouched release, and for the first assignment the release with only its first task solved),
``nbgrader autograde``,
``generate_feedback`` and ``export``; then the CLI on the same ``submitted/`` tree. nbgrader's
points per function must equal the CLI's, the solution must get full marks and the release less,
and the feedback must not show hidden test code.

For the first assignment the course also holds an attack set (``ATTACKS``): notebooks that try to
forge their grade (``grade = lambda name: None``, redefined ``check``/``Checker``, saved outputs in
test cells, edited test-cell metadata), to steal or destroy (the answer key, ``gradebook.db``,
other students' files), to stall or exhaust the grader (a hang, a grader-side memory blow-up, a
grader-side stand-in that never returns, a grading process killed for its memory). Each gets
exactly its points, through ``nbgrader autograde`` and through the CLI, and nothing else on
disk changes.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
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
from conftest import GRADER_SIDE_STALL, ROOT
from process_tree import oom_killer

pytestmark = [pytest.mark.slow, pytest.mark.nbgrader]
ASSIGNMENTS = assignments_with_sources()
STUDENTS = ("solution", "release", "partly")
FIRST = next(a for a in ASSIGNMENT_IDS if a in ASSIGNMENTS) if ASSIGNMENTS else None
HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[ \t]*\n?", re.S | re.M)


def _students(assignment):
    """Three notebooks and the attack set for the course's first assignment, the two extremes for
    the others (time)."""
    return STUDENTS + tuple(ATTACKS) if assignment == FIRST else STUDENTS[:2]


# ------------------------------------------------------------------------------------ the attack set
def _cell(nb, grade_id):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _unsolved(nb, release, function):
    """The function's solution cell as released (raise NotImplementedError)."""
    _cell(nb, function).source = _cell(release, function).source


def _first_in(nb, function, code):
    """``code`` (lines at the function body's indentation) runs first in the function's solution."""
    cell = _cell(nb, function)
    marker = "    ### BEGIN SOLUTION\n"
    assert marker in cell.source, function
    cell.source = cell.source.replace(marker, marker + "".join(f"    {line}\n" for line in code.splitlines()), 1)


def _top_level(nb, code):
    nb.cells.insert(2, nbformat.v4.new_code_cell(code))


FORGE = """grade = lambda name: None
check = lambda *args, **kwargs: None
class Checker:
    def __init__(self, *args):
        pass
    def grade(self, name):
        return 1000
    check = hint = progress = grade
"""
STEAL_AND_DESTROY = """import glob, os, sqlite3
for _db in glob.glob("../../../gradebook.db"):
    _con = sqlite3.connect(_db)
    _con.execute("UPDATE grade SET auto_score = 0")
    _con.commit()
open("../../../PWNED", "w").write(open("../../../solutions/gmm/__init__.py").read())
for _nb in glob.glob("../../../submitted/*/gmm/gmm.ipynb"):
    open(_nb, "w").write("{}")
"""
READ_THE_KEY = """import glob, os
import autograder
_places = [os.path.dirname(os.path.dirname(os.path.realpath(autograder.__file__)))]
_here = os.getcwd()
while _here != os.path.dirname(_here):
    _places.append(_here)
    _here = os.path.dirname(_here)
_keys = [os.path.join(p, "solutions", "gmm", "__init__.py") for p in _places]
for _key in _keys + glob.glob("/tmp/pytest-of-*/*/*/solutions/gmm/__init__.py"):
    if os.path.exists(_key):
        _answers = {}
        exec(open(_key).read(), _answers)
        return _answers["E_step"](X, pi, mu, sigma)
raise RuntimeError("no answer key in sight")"""
OVERWRITE = """import glob, os
for _path in (glob.glob("/tmp/pytest-of-*/*/*/gradebook.db") + glob.glob("/tmp/pytest-of-*/*/*/submitted/*/gmm/*.ipynb")
              + glob.glob(os.path.join(os.getcwd(), "..", "*"))):
    try:
        with open(_path, "w") as _f:
            _f.write("pwned")
    except OSError:
        pass"""
HUGE_GRADER_SIDE = "M_step(np.ones((2, 20000)), np.full((2, 10), 0.1))   # 32 GB of covariances, grader-side"
GRADER_SIDE_OOM = "M_step(np.ones((200, 3500)), np.full((200, 10), 0.1))  # 1 GB of covariances, grader-side"


def _forger(nb, release):
    _unsolved(nb, release, "E_step")
    _top_level(nb, FORGE)
    for cell in nb.cells:       # a saved "all points" in every test cell, and a reassuring display
        if cell.metadata.get("nbgrader", {}).get("grade"):
            points = cell.metadata["nbgrader"]["points"]
            cell.outputs = [nbformat.v4.new_output("display_data", data={"text/plain": "all checks pass"}),
                            nbformat.v4.new_output("execute_result", data={"text/plain": str(points)},
                                                   execution_count=7)]
            cell.execution_count = 7


def _tamperer(nb, release):
    _unsolved(nb, release, "M_step")
    _cell(nb, "test_E_step").metadata["nbgrader"]["grade"] = False
    _cell(nb, "test_M_step").metadata["nbgrader"]["points"] = 1000
    _cell(nb, "test_M_step").source = "M_step  # nothing to test here"
    _cell(nb, "test_compute_vlb").metadata["nbgrader"]["grade_id"] = "test_compute_vlb_again"
    nb.cells.remove(_cell(nb, "test_log_likelihood"))
    copy = nbformat.from_dict(json.loads(json.dumps(_cell(nb, "test_train_EM"))))
    copy.source = "pass"
    nb.cells.insert(2, copy)


def _thief(nb, release):
    _top_level(nb, STEAL_AND_DESTROY)
    _first_in(nb, "E_step", READ_THE_KEY)
    _first_in(nb, "log_likelihood", OVERWRITE)


def _hanger(nb, release):
    _top_level(nb, "while True:\n    pass\n")
    _first_in(nb, "E_step", "while True:\n    pass")


# student -> (how the solution is changed, {function: exact points}; None: anything from 0 to full
# marks, as the submission's time budget allows on a machine this busy). Every function not named
# keeps full marks.
ATTACKS = {
    "forger": (_forger, {"E_step": 0}),
    "tamperer": (_tamperer, {"M_step": 0}),
    "thief": (_thief, {"E_step": 0}),
    "hanger": (_hanger, {"E_step": 0}),
    "greedy": (lambda nb, release: _first_in(nb, "assert_m_step_maximises", HUGE_GRADER_SIDE),
               {"assert_m_step_maximises": 0}),
    "oom_killed": (lambda nb, release: _first_in(nb, "assert_m_step_maximises", GRADER_SIDE_OOM),
                   {"assert_m_step_maximises": 0}),
    # The two functions after it may lose too: the stall uses up the submission's time budget.
    "staller": (lambda nb, release: _first_in(nb, "assert_recovers_parameters", GRADER_SIDE_STALL),
                {"assert_recovers_parameters": 0, "E_step_diag": None, "M_step_diag": None}),
}
# Tight limits for the course holding the attack set (the CLI and nbgrader alike).
# (45 s: the hanger's one 8-s time-out plus every honest check, also on a loaded machine.)
ATTACK_LIMITS = {"max_call_seconds": 8, "max_submission_seconds": 45}


def _digests(folder) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


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
    if assignment == FIRST:
        for student, (attack, _) in ATTACKS.items():
            nb = nbformat.from_dict(json.loads(json.dumps(solution)))
            attack(nb, release)
            out[student] = nb
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
    attacked = assignment == FIRST
    nbgrader_limits = [f"--GradeInSandbox.{k}={v}" for k, v in ATTACK_LIMITS.items()] if attacked else []
    cli_limits = [a for k, v in ATTACK_LIMITS.items() for a in (f"--{k.replace('_', '-')}", str(v))] if attacked else []
    before = {"solutions": _digests(root / "solutions"), "submitted": _digests(root / "submitted")}
    with oom_killer() if attacked else contextlib.nullcontext([]) as kills:
        _nbgrader(root, "autograde", assignment, "--force", *nbgrader_limits)
        _nbgrader(root, "generate_feedback", assignment, "--force")
        _nbgrader(root, "export")
        cli = subprocess.run([sys.executable, "-m", "autograder", "grade", "-a", assignment, "-f", "json", "-j", "1",
                              *cli_limits, "--gradebook", str(root / "cli"), str(root / "submitted")], cwd=root,
                             capture_output=True, text=True, timeout=1800)
    assert cli.returncode == 0, cli.stderr
    after = {"solutions": _digests(root / "solutions"), "submitted": _digests(root / "submitted")}
    from nbgrader.api import Gradebook
    nbgrader_points = {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for student in _students(assignment):
            notebook = gradebook.find_submission_notebook(assignment, assignment, student)
            nbgrader_points[student] = {g.name: (g.score, g.max_score) for g in notebook.grades}
    return {"id": assignment, "root": root, "notebooks": notebooks, "first_task": first_task,
            "nbgrader": nbgrader_points, "cli": json.loads(cli.stdout), "before": before, "after": after,
            "kills": list(kills)}


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
            if function in _budget_dependent(student):
                continue
            assert from_nbgrader[function] == pytest.approx((score, maximum)), (student, function)


def _budget_dependent(student: str) -> set[str]:
    """The functions whose points depend on how much of the time budget an attack left (None in
    ATTACKS): the CLI and nbgrader may differ there, and only there."""
    return {f for f, points in ATTACKS.get(student, (None, {}))[1].items() if points is None}


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
        if not _budget_dependent(student):
            assert float(rows[student]["total"]) == pytest.approx(exported[student])
        assert (root / "cli" / "reports" / f"{student}.html").is_file()


# ------------------------------------------------------------------------------------ the attack set
@pytest.fixture
def attacked(courses):
    if FIRST not in courses:
        pytest.skip("no assignment with a source notebook")
    prepared = courses[FIRST]
    if isinstance(prepared, BaseException):
        raise prepared
    return prepared


@pytest.mark.parametrize("student", list(ATTACKS))
def test_attacks_get_exactly_their_points(attacked, student):
    from autograder.assignments import get_assignment
    assignment = get_assignment(attacked["id"])
    expected = ATTACKS[student][1]
    cli = {}
    for test in _cli_by_student(attacked)[student]["tests"]:
        score, maximum = cli.get(test["function"], (0.0, 0.0))
        cli[test["function"]] = (score + test["score"], maximum + test["max_score"])
    graded = attacked["nbgrader"][student]
    assert set(graded) == {f"test_{t.name}" for t in assignment.tasks}, "a test cell is missing or extra"
    for task in assignment.tasks:
        score, maximum = graded[f"test_{task.name}"]
        assert maximum == assignment.points(task.name), (student, task.name, "max points were changed")
        want = expected.get(task.name, maximum)
        if want is None:   # (the CLI and nbgrader each spent the budget at their own pace)
            assert 0 <= score <= maximum and 0 <= cli[task.name][0] <= maximum, (student, task.name, score)
            continue
        assert score == pytest.approx(want), (student, task.name, score, want)
        assert cli[task.name] == pytest.approx((score, maximum)), (student, task.name, "CLI differs")


def test_attacks_change_nothing_on_disk(attacked):
    root = attacked["root"]
    assert attacked["after"] == attacked["before"], "grading changed solutions/ or submitted/"
    assert not list(root.rglob("PWNED"))
    points = attacked["nbgrader"]
    assert sum(s for s, _ in points["solution"].values()) == sum(m for _, m in points["solution"].values())


def test_a_grading_process_killed_for_its_memory_costs_only_its_submission(attacked):
    """Finding 7: the emulated OOM killer killed the grading process of ``oom_killed`` (in autograde
    and in the CLI) and nobody else paid for it."""
    assert len(attacked["kills"]) >= 4, attacked["kills"]   # at least twice in each of the two runs
    cli = _cli_by_student(attacked)
    charged = [t for t in cli["oom_killed"]["tests"] if t["function"] == "assert_m_step_maximises"]
    assert charged and all("grader's process running it died" in t["feedback"] for t in charged), charged
    for student, entry in cli.items():
        assert entry["error"] is None, (student, entry["error"])

