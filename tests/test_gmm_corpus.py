"""The gmm grader against a corpus of independent student submissions.

``tests/corpora/gmm/correct/`` holds complete, correct submissions written independently of the
reference (loops with scipy.stats, vectorised numpy, Cholesky factors, a noisy notebook, ...):
each must get full marks from the grader, and pass every student-side check.

``tests/corpora/gmm/mutants/`` holds copies of those submissions with exactly one realistic bug
in one function, named on the file's first two lines::

    # breaks: <function>
    # bug: <what is wrong>

Each must lose points on that function, and only on that function, with feedback that names
the function or the quantity it got wrong.

Where the grader is wrong (it passes a mutant, or fails a correct submission) the case is marked
``xfail(strict=True)`` with the reason in ``GRADER_DEFECTS``: the suite documents the defect and
turns red once the grader is fixed, so the mark can be removed.

Grading is the slow part (one sandboxed process per submission, about 2 s of CPU each), so every
selected file is graded up front in worker processes (``spawn``: fresh interpreters with the CLI's
default warning filters; ``GMM_CORPUS_WORKERS``, default 2); each test waits for its own result.
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

CORPUS = Path(__file__).resolve().parent / "corpora" / "gmm"
CORRECT = sorted(p for p in (CORPUS / "correct").iterdir() if p.suffix in (".py", ".ipynb"))
MUTANTS = sorted((CORPUS / "mutants").glob("*.py"))
ASSIGNMENT = get_assignment("gmm")
FUNCTIONS = [t.name for t in ASSIGNMENT.tasks]
FULL_MARKS = ASSIGNMENT.points()

# Words that tie a failing check's feedback to the function or the quantity it computes.
QUANTITIES = {
    "E_step": ("gamma", "responsibilities"),
    "M_step": ("pi", "mu", "sigma", "Q"),
    "compute_vlb": ("bound",),
    "log_likelihood": ("log-likelihood",),
    "train_EM": ("best_loss", "restart", "iteration"),
    "E_step_diag": ("log_gamma",),
    "M_step_diag": ("var", "mu", "pi"),
}

# file stem -> why the grader is wrong about that file (the file itself is the reproduction: grade
# it with `python -m autograder grade --assignment gmm PATH`). Remove an entry once the grader is
# fixed: the strict xfail then reports the fix as XPASS.
#
# Fixed since the corpus first reported them (kept as ordinary cases, so they stay fixed):
# f_no_m_step_after_last_bound, g_module_level_rng, h_constant_from_math_names,
# E_step_diag__python_loop_over_points, assert_bound_is_tight__tightness_only,
# assert_m_step_maximises__never_moves_means, assert_recovers_parameters__forgets_weights,
# train_EM__best_by_absolute_value, train_EM__same_start_every_restart, train_EM__reseeds_every_restart,
# and test_nonfinite_result_is_explained_not_reported_as_crash.
# file stem -> why the grader is wrong about that file (strict xfail until the grader is fixed;
# the file itself is the reproduction: `python -m autograder grade --assignment gmm PATH`).
GRADER_DEFECTS: dict[str, str] = {}

# The same defects seen from the student's side (check() in the notebook runs the same checks).
STUDENT_SIDE_DEFECTS: dict[str, str] = {}

# These mutants return a non-finite numpy float64 (np.sum(...) of NaN / -inf): the feedback must
# say so, not report a crash of the sandbox (the codec once rejected repr 'np.float64(nan)').
NONFINITE_NUMPY_SCALAR = ["compute_vlb__0log0_nan_numpy_scalar", "log_likelihood__no_max_trick"]


def _header(path: Path) -> tuple[str, str]:
    lines = path.read_text().splitlines()
    breaks = re.fullmatch(r"# breaks: (\w+)", lines[0])
    bug = re.fullmatch(r"# bug: (.+)", lines[1])
    assert breaks and bug, f"{path.name}: the first two lines must be '# breaks: <function>' and '# bug: <...>'"
    return breaks.group(1), bug.group(1)


def _param(path: Path, defects: dict = GRADER_DEFECTS):
    marks = []
    if path.stem in defects:
        marks.append(pytest.mark.xfail(strict=True, reason="grader defect: " + defects[path.stem]))
    return pytest.param(path, id=path.stem, marks=marks)


# ----------------------------------------------------------------------------------- grading pool
@pytest.fixture(scope="module")
def graded(request):
    """path -> Future of grade_file(path, 'gmm'), for every file a selected test of this module needs."""
    wanted = []
    for item in request.session.items:
        if item.module is request.module and hasattr(item, "callspec") and "path" in item.callspec.params:
            wanted.append(item.callspec.params["path"])
    workers = int(os.environ.get("GMM_CORPUS_WORKERS", "2"))
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield {path: pool.submit(grade_file, str(path), "gmm") for path in dict.fromkeys(wanted)}


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
    assert len(CORRECT) >= 4 and any(p.suffix == ".ipynb" for p in CORRECT)
    assert len(MUTANTS) >= 20
    targets = {}
    for path in MUTANTS:
        function, _ = _header(path)
        assert function in FUNCTIONS, f"{path.name}: unknown function {function!r}"
        targets.setdefault(function, []).append(path.stem)
    caught = {f for f, stems in targets.items() if any(s not in GRADER_DEFECTS for s in stems)}
    assert caught == set(FUNCTIONS), f"functions without a mutant the grader must catch: {set(FUNCTIONS) - caught}"
    assert set(GRADER_DEFECTS) <= {p.stem for p in CORRECT + MUTANTS}
    assert set(NONFINITE_NUMPY_SCALAR) <= {p.stem for p in MUTANTS}


# ----------------------------------------------------------------------------------- correct submissions
@pytest.mark.parametrize("path", [_param(p) for p in CORRECT])
def test_correct_submission_gets_full_marks(path, graded):
    result = graded[path].result()
    assert result.error is None, result.error
    assert set(result.function_scores()) == set(FUNCTIONS)
    assert result.max_score == FULL_MARKS
    assert result.score == FULL_MARKS, f"{path.name} lost points:\n{_failures(result)}"


@pytest.mark.parametrize("path", [_param(p, STUDENT_SIDE_DEFECTS) for p in CORRECT])
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
    assert any(t.feedback.strip() and any(re.search(rf"\b{re.escape(w)}\b", t.feedback) for w in words)
               for t in failing), (
        f"no failing check of {function} explains itself:\n{_failures(result, [function])}")


@pytest.mark.parametrize("path", [pytest.param(CORPUS / "mutants" / f"{s}.py", id=s) for s in NONFINITE_NUMPY_SCALAR])
def test_nonfinite_result_is_explained_not_reported_as_crash(path, graded):
    function, _ = _header(path)
    result = graded[path].result()
    failing = [t for t in result.tests if t.function == function and not t.passed]
    assert failing
    assert not any("crashed the Python process" in t.feedback for t in failing), _failures(result, [function])
    assert any(re.search(r"\b(nan|-?inf|non-finite)\b", t.feedback) for t in failing), _failures(result, [function])
