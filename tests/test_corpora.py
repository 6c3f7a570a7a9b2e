"""The corpus of an assignment without a corpus test of its own: the suite picks a new one up.

For every assignment ``<id>`` with a corpus ``tests/corpora/<id>/{correct,mutants}/`` (see
tests/corpus_support.py) and no ``tests/test_<id>_corpus.py`` (which adds the assignment's own
properties: the words of its quantities, its explanations), this module checks the properties
every corpus has: each correct submission gets full marks from the grader and passes every
student-side check; each mutant loses points on its function only, with feedback that names it;
every check of the assignment fails on some mutant (no check that cannot fail). The four course
assignments have modules of their own, so nothing here runs in the course's suite;
tests/test_new_assignment.py runs it on a toy assignment's corpus in a copy of the checkout.
"""

from __future__ import annotations

import contextlib

import pytest

import corpus_support as corpus
from autograder.assignments import ASSIGNMENT_IDS, get_assignment
from conftest import CORPORA, ROOT

IDS = [a for a in corpus.generic_corpora(ROOT) if a in ASSIGNMENT_IDS]
if not IDS:
    pytest.skip("every assignment's corpus has a test module of its own", allow_module_level=True)
FILES = {a: corpus.corpus_files(CORPORA / a) for a in IDS}           # {id: (correct, mutants)}
CORRECT = [(a, p) for a in IDS for p in FILES[a][0]]
MUTANTS = [(a, p) for a in IDS for p in FILES[a][1]]


def _name(value):
    return value.stem if hasattr(value, "stem") else str(value)


@pytest.fixture(scope="module")
def graded(request):
    with contextlib.ExitStack() as stack:
        futures = {}
        for assignment_id in IDS:
            grading = contextlib.contextmanager(corpus.grade_all)
            futures.update(stack.enter_context(grading(request, assignment_id, paths=[*FILES[assignment_id][0],
                                                                                        *FILES[assignment_id][1]])))
        yield futures


@pytest.mark.parametrize("assignment_id", IDS)
def test_corpus_is_complete(assignment_id):
    functions = [t.name for t in get_assignment(assignment_id).tasks]
    correct, mutants = FILES[assignment_id]
    corpus.assert_corpus_complete(correct, mutants, functions, min_correct=1, min_mutants=len(functions))


@pytest.mark.parametrize("assignment_id, path", CORRECT, ids=_name)
def test_correct_submission_gets_full_marks(assignment_id, path, graded):
    assignment = get_assignment(assignment_id)
    corpus.assert_full_marks(graded[path].result(), path, [t.name for t in assignment.tasks], assignment.points())


@pytest.mark.parametrize("assignment_id, path", CORRECT, ids=_name)
def test_correct_submission_passes_student_side_checks(assignment_id, path):
    corpus.assert_student_side_passes(get_assignment(assignment_id), path)


@pytest.mark.parametrize("assignment_id, path", MUTANTS, ids=_name)
def test_mutant_loses_points_on_its_function_only(assignment_id, path, graded):
    functions = [t.name for t in get_assignment(assignment_id).tasks]
    corpus.assert_loses_points_on_its_function_only(graded[path].result(), path, functions, {})


@pytest.mark.parametrize("assignment_id", IDS)
def test_every_check_fails_on_some_mutant(assignment_id, graded):
    failed = {(t.function, t.name) for path in FILES[assignment_id][1] for t in graded[path].result().tests
              if not t.passed}
    never = [f"{c.task} / {c.name}" for c in get_assignment(assignment_id).checks if (c.task, c.name) not in failed]
    assert not never, "checks no mutant of the corpus fails (add a mutant that breaks each):\n  " + "\n  ".join(never)
