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

Shared machinery: tests/corpus_support.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import corpus_support as corpus
from autograder.assignments import get_assignment

CORPUS = Path(__file__).resolve().parent / "corpora" / "gmm"
CORRECT, MUTANTS = corpus.corpus_files(CORPUS)
ASSIGNMENT = get_assignment("gmm")
FUNCTIONS = [t.name for t in ASSIGNMENT.tasks]

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

# These mutants return a non-finite numpy float64 (np.sum(...) of NaN / -inf): the feedback must
# say so, not report a crash of the sandbox (the codec once rejected repr 'np.float64(nan)').
NONFINITE_NUMPY_SCALAR = ["compute_vlb__0log0_nan_numpy_scalar", "log_likelihood__no_max_trick"]


@pytest.fixture(scope="module")
def graded(request):
    yield from corpus.grade_all(request, "gmm")


def test_corpus_is_complete():
    corpus.assert_corpus_complete(CORRECT, MUTANTS, FUNCTIONS, min_correct=4, min_mutants=20)
    assert any(p.suffix == ".ipynb" for p in CORRECT)
    assert set(NONFINITE_NUMPY_SCALAR) <= {p.stem for p in MUTANTS}


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_submission_gets_full_marks(path, graded):
    corpus.assert_full_marks(graded[path].result(), path, FUNCTIONS, ASSIGNMENT.points())


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_submission_passes_student_side_checks(path):
    corpus.assert_student_side_passes(ASSIGNMENT, path)


@pytest.mark.parametrize("path", MUTANTS, ids=lambda p: p.stem)
def test_mutant_loses_points_on_its_function_only(path, graded):
    corpus.assert_loses_points_on_its_function_only(graded[path].result(), path, FUNCTIONS, QUANTITIES)


@pytest.mark.parametrize("path", [CORPUS / "mutants" / f"{s}.py" for s in NONFINITE_NUMPY_SCALAR],
                         ids=lambda p: p.stem)
def test_nonfinite_result_is_explained_not_reported_as_crash(path, graded):
    function, _ = corpus.header(path)
    result = graded[path].result()
    failing = [t for t in result.tests if t.function == function and not t.passed]
    assert failing
    assert not any("crashed the Python process" in t.feedback for t in failing), corpus.failures(result, [function])
    assert any(re.search(r"\b(nan|-?inf|non-finite)\b", t.feedback) for t in failing), \
        corpus.failures(result, [function])
