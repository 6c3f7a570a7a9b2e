"""The advi grader against a corpus of independent student submissions.

``tests/corpora/advi/correct/`` holds complete, correct submissions written independently of the
reference: (a) autograd for every derivative, the ELBO gradients included (so the grader must let
autograd run through the student's own functions); (b) no autograd at all, scipy densities and
hand-derived gradients; (c) everything vectorised over the draws, flat parameter vectors and all
the noise drawn up front; (d) a notebook that loops over the draws one at a time (slow but
correct), with scratch cells. Each must get full marks and pass every student-side check.

``tests/corpora/advi/mutants/`` holds copies of those with exactly one realistic bug in one
function, named on the file's first two lines::

    # breaks: <function>
    # bug: <what is wrong>

Each must lose points on that function, and only on that function, with feedback that names
the function or the quantity it got wrong. Several mutants break a function that an autograd
submission differentiates (log_joint, log_joint_zeta, elbo_mean_field): the gradients built on
it must keep their points.

Grading is the slow part (one sandboxed process per submission), so every selected file is
graded up front in two worker processes; each test waits for its own file's result.
"""

from __future__ import annotations

import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # inherited by the grading workers

from autograder.assignments import get_assignment  # noqa: E402
from autograder.engine import run_checks  # noqa: E402
from autograder.engine.executors import InProcessExecutor  # noqa: E402
from autograder.grading import grade_file  # noqa: E402
from autograder.loading import load_submission  # noqa: E402

CORPUS = Path(__file__).resolve().parent / "corpora" / "advi"
CORRECT = sorted(p for p in (CORPUS / "correct").iterdir() if p.suffix in (".py", ".ipynb"))
MUTANTS = sorted((CORPUS / "mutants").glob("*.py"))
ASSIGNMENT = get_assignment("advi")
FUNCTIONS = [t.name for t in ASSIGNMENT.tasks]
FULL_MARKS = ASSIGNMENT.points()

# Words that tie a failing check's feedback to the function or the quantity it computes.
QUANTITIES = {
    "inverse_transform": ("theta", "sigma"),
    "log_det_jacobian": ("log_det", "Jacobian"),
    "log_joint": ("log p", "log_p"),
    "log_joint_zeta": ("log_joint_zeta", "log-Jacobian"),
    "grad_log_joint_zeta": ("gradient",),
    "elbo_mean_field": ("ELBO",),
    "grad_elbo_mean_field": ("grad_mu", "grad_omega"),
    "step_size": ("rho", "s_k"),
    "advi_mean_field": ("iteration", "mu", "omega"),
    "elbo_full_rank": ("ELBO",),
    "grad_elbo_full_rank": ("grad_mu", "grad_L"),
    "advi_full_rank": ("iteration", "L"),
}

# file stem -> why the grader is wrong about that file (none known).
GRADER_DEFECTS: dict[str, str] = {}


def _header(path: Path) -> tuple[str, str]:
    lines = path.read_text().splitlines()
    breaks = re.fullmatch(r"# breaks: (\w+)", lines[0])
    bug = re.fullmatch(r"# bug: (.+)", lines[1])
    assert breaks and bug, f"{path.name}: the first two lines must be '# breaks: <function>' and '# bug: <...>'"
    return breaks.group(1), bug.group(1)


def _param(path: Path, *marks):
    marks = list(marks)
    if path.stem in GRADER_DEFECTS:
        marks.append(pytest.mark.xfail(strict=True, reason="grader defect: " + GRADER_DEFECTS[path.stem]))
    return pytest.param(path, id=path.stem, marks=marks)


# ----------------------------------------------------------------------------------- grading pool
@pytest.fixture(scope="module")
def graded(request):
    """path -> Future of grade_file(path, 'advi'), for every file a selected test of this module needs."""
    wanted = []
    for item in request.session.items:
        if item.module is request.module and hasattr(item, "callspec") and "path" in item.callspec.params:
            wanted.append(item.callspec.params["path"])
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield {path: pool.submit(grade_file, str(path), "advi") for path in dict.fromkeys(wanted)}


def _failures(result, functions=None) -> str:
    return "\n".join(f"  {t.function} / {t.name}: {t.feedback[:400]}" for t in result.tests
                     if not t.passed and (functions is None or t.function in functions))


def _student_namespace(path: Path) -> dict:
    """The submission's globals as the student's kernel would have them (its definitions, for notebooks)."""
    namespace = {"__name__": "__student__"}
    if path.suffix == ".py":
        exec(compile(path.read_text(), str(path), "exec"), namespace)
    else:
        submission = load_submission(path)
        assert submission.error is None, submission.error
        for statement in submission.statements:
            exec(compile(statement.source, statement.filename, "exec"), namespace)
    return namespace


# ----------------------------------------------------------------------------------- the corpus itself
def test_corpus_is_complete():
    assert len(CORRECT) >= 3 and any(p.suffix == ".ipynb" for p in CORRECT)
    assert len(MUTANTS) >= 12
    targets = {}
    for path in MUTANTS:
        function, _ = _header(path)
        assert function in FUNCTIONS, f"{path.name}: unknown function {function!r}"
        targets.setdefault(function, []).append(path.stem)
    caught = {f for f, stems in targets.items() if any(s not in GRADER_DEFECTS for s in stems)}
    assert caught == set(FUNCTIONS), f"functions without a mutant the grader must catch: {set(FUNCTIONS) - caught}"
    assert set(GRADER_DEFECTS) <= {p.stem for p in CORRECT + MUTANTS}


# ----------------------------------------------------------------------------------- correct submissions
@pytest.mark.parametrize("path", [_param(p) for p in CORRECT])
def test_correct_submission_gets_full_marks(path, graded):
    result = graded[path].result()
    assert result.error is None, result.error
    assert set(result.function_scores()) == set(FUNCTIONS)
    assert result.max_score == FULL_MARKS
    assert result.score == FULL_MARKS, f"{path.name} lost points:\n{_failures(result)}"


@pytest.mark.parametrize("path", [_param(p) for p in CORRECT])
def test_correct_submission_passes_student_side_checks(path):
    result = run_checks(ASSIGNMENT, InProcessExecutor(_student_namespace(path)), reference=None,
                        submission=path.name)
    ran = [t for t in result.tests if t.status != "skipped"]
    assert {t.function for t in ran} == set(FUNCTIONS)
    failed = [t for t in ran if not t.passed]
    assert not failed, f"{path.name} fails student-side checks:\n" + "\n".join(
        f"  {t.function} / {t.name}: {t.feedback[:400]}" for t in failed)


# ----------------------------------------------------------------------------------- mutants
@pytest.mark.parametrize("path", [_param(p) for p in MUTANTS])
def test_mutant_loses_points_on_its_function_only(path, graded):
    function, bug = _header(path)
    result = graded[path].result()
    assert result.error is None, result.error
    scores = result.function_scores()
    assert set(scores) == set(FUNCTIONS)
    got, full = scores[function]
    assert got < full, f"the grader gives {function} full marks although {bug}"
    collateral = {f: s for f, s in scores.items() if f != function and s[0] < s[1]}
    assert not collateral, f"points lost outside {function}: {collateral}\n{_failures(result, collateral)}"
    words = (function,) + QUANTITIES.get(function, ())
    failing = [t for t in result.tests if t.function == function and not t.passed]
    assert any(t.feedback.strip() and any(w in t.feedback for w in words) for t in failing), (
        f"no failing check of {function} explains itself:\n{_failures(result, [function])}")
