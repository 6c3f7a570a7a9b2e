"""The hard_em grader against a corpus of independent student submissions.

``tests/corpora/hard_em/correct/``: (a) loops over positions, components and clusters, whose hard
branches visit only the chosen positions; (b) vectorised, with a stack of model images, the hard
branches reusing the general formulas, and the mixture through expanded squared distances. Each
must get full marks and pass every student-side check.

``tests/corpora/hard_em/mutants/``: copies with one realistic bug each (header
``# breaks: <function>`` / ``# bug: ...``): each must lose points on that function only, with
feedback that names the function or the quantity it got wrong. Shared machinery:
tests/corpus_support.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import corpus_support as corpus
from autograder.assignments import get_assignment

CORPUS = Path(__file__).resolve().parent / "corpora" / "hard_em"
CORRECT, MUTANTS = corpus.corpus_files(CORPUS)
ASSIGNMENT = get_assignment("hard_em")
FUNCTIONS = [t.name for t in ASSIGNMENT.tasks]

QUANTITIES = {
    "calculate_log_probability": ("ll",),
    "calculate_lower_bound": ("bound",),
    "run_e_step": ("q", "hard_EM"),
    "run_m_step": ("F", "B", "s", "a"),
    "run_EM": ("LL", "hard_EM", "iterations"),
    "e_step_spherical": ("gamma",),
    "m_step_spherical": ("pi", "mu", "s2"),
    "kmeans": ("centres", "centre", "labels", "mu"),
}


@pytest.fixture(scope="module")
def graded(request):
    yield from corpus.grade_all(request, "hard_em")


def test_corpus_is_complete():
    corpus.assert_corpus_complete(CORRECT, MUTANTS, FUNCTIONS, min_correct=2, min_mutants=8)


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_submission_gets_full_marks(path, graded):
    corpus.assert_full_marks(graded[path].result(), path, FUNCTIONS, ASSIGNMENT.points())


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_submission_passes_student_side_checks(path):
    corpus.assert_student_side_passes(ASSIGNMENT, path)


@pytest.mark.parametrize("path", MUTANTS, ids=lambda p: p.stem)
def test_mutant_loses_points_on_its_function_only(path, graded):
    corpus.assert_loses_points_on_its_function_only(graded[path].result(), path, FUNCTIONS, QUANTITIES)
