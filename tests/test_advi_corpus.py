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

Shared machinery: tests/corpus_support.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import corpus_support as corpus
from autograder.assignments import get_assignment

CORPUS = Path(__file__).resolve().parent / "corpora" / "advi"
CORRECT, MUTANTS = corpus.corpus_files(CORPUS)
ASSIGNMENT = get_assignment("advi")
FUNCTIONS = [t.name for t in ASSIGNMENT.tasks]

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


@pytest.fixture(scope="module")
def graded(request):
    yield from corpus.grade_all(request, "advi")


def test_corpus_is_complete():
    corpus.assert_corpus_complete(CORRECT, MUTANTS, FUNCTIONS, min_correct=3, min_mutants=12)
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
