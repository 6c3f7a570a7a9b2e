"""The prankster grader against a corpus of independent student submissions.

``tests/corpora/prankster/correct/``: (a) one Python loop over the positions wherever positions
matter (what a careful student writes first); (b) fully vectorised with window sums (cumulative
sums along the columns) and sliding windows, never building a stack of model images; (c) a
notebook with scratch cells, magics and plots, scipy's softmax and xlogy, tensordot in the
M-step. Each must get full marks and pass every student-side check.

``tests/corpora/prankster/mutants/``: copies of (a) and (b) with one realistic bug each (header
``# breaks: <function>`` / ``# bug: ...``): each must lose points on that function only, with
feedback that names the function or the quantity it got wrong. Shared machinery:
tests/corpus_support.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import corpus_support as corpus
from autograder.assignments import get_assignment

CORPUS = Path(__file__).resolve().parent / "corpora" / "prankster"
CORRECT, MUTANTS = corpus.corpus_files(CORPUS)
ASSIGNMENT = get_assignment("prankster")
FUNCTIONS = [t.name for t in ASSIGNMENT.tasks]

# Words that tie a failing check's feedback to the function or the quantity it computes.
QUANTITIES = {
    "calculate_log_probability": ("ll",),
    "calculate_lower_bound": ("bound",),
    "run_e_step": ("q",),
    "run_m_step": ("F", "B", "s", "a"),
    "run_EM": ("LL", "iterations", "E-step"),
}


@pytest.fixture(scope="module")
def graded(request):
    yield from corpus.grade_all(request, "prankster")


def test_corpus_is_complete():
    corpus.assert_corpus_complete(CORRECT, MUTANTS, FUNCTIONS, min_correct=3, min_mutants=15)
    assert any(p.suffix == ".ipynb" for p in CORRECT)


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_submission_gets_full_marks(path, graded):
    corpus.assert_full_marks(graded[path].result(), path, FUNCTIONS, ASSIGNMENT.points())


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_submission_passes_student_side_checks(path):
    corpus.assert_student_side_passes(ASSIGNMENT, path)


@pytest.mark.parametrize("path", MUTANTS, ids=lambda p: p.stem)
def test_mutant_loses_points_on_its_function_only(path, graded):
    corpus.assert_loses_points_on_its_function_only(graded[path].result(), path, FUNCTIONS, QUANTITIES)


@pytest.mark.parametrize("path", [CORPUS / "mutants" / "calculate_log_probability__scales_X_in_place.py"],
                         ids=lambda p: p.stem)
def test_in_place_updates_are_caught_and_explained(path, graded):
    result = graded[path].result()
    feedback = "\n".join(t.feedback for t in result.tests if t.function == "calculate_log_probability" and not t.passed)
    assert "in place" in feedback                      # float inputs: the engine notices the changed argument
    assert "UFuncTypeError" in feedback or "cast" in feedback   # the integer fixture: the update fails outright
