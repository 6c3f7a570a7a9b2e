"""The hard_em grader against a corpus of independent student submissions.

``tests/corpora/hard_em/correct/``: ten correct submissions (loops; vectorised with a model stack;
scipy and keyword calls; hard branches visiting only the chosen positions; Python floats and
pure-Python mixtures; another valid order of run_EM's calls; a notebook; expanded distances;
helper classes and kwargs dicts; nansum and while loops). Each gets full marks in the CLI and
passes every student-side check.

``tests/corpora/hard_em/mutants/``: copies with one realistic bug each (header ``# breaks:`` /
``# bug:`` / ``# says:``), judged as in tests/test_prankster_corpus.py: points lost on that
function only, its student-side check fails, the explanation properties of
``corpus_explanations`` hold. The untouched release and placeholders earn 0.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import corpus_explanations as ce
import corpus_support as corpus
from autograder.assignments import get_assignment
from autograder.assignments.hard_em.diagnosis import EXPLANATIONS
from autograder.grading import grade_file
from conftest import ROOT

CORPUS = Path(__file__).resolve().parent / "corpora" / "hard_em"
CORRECT, MUTANTS = corpus.corpus_files(CORPUS)
ASSIGNMENT = get_assignment("hard_em")
FUNCTIONS = [t.name for t in ASSIGNMENT.tasks]

# Words that tie a failing check's feedback to the function or the quantity it computes.
QUANTITIES = {
    "calculate_log_probability": ("ll",),
    "calculate_lower_bound": ("bound",),
    "run_e_step": ("q", "hard_EM"),
    "run_m_step": ("F", "B", "s", "a"),
    "run_EM": ("LL", "iterations", "E-step", "max_iter", "hard_EM"),
    "e_step_spherical": ("gamma",),
    "m_step_spherical": ("pi", "mu", "s2"),
    "kmeans": ("centres", "centre", "labels", "mu"),
}


@pytest.fixture(scope="module")
def graded(request):
    yield from corpus.grade_all(request, "hard_em")


@pytest.fixture(scope="module")
def student_side(request):
    yield from ce.grade_all_student_side(request, "hard_em")


def test_corpus_is_complete():
    corpus.assert_corpus_complete(CORRECT, MUTANTS, FUNCTIONS, min_correct=10, min_mutants=40)
    assert any(p.suffix == ".ipynb" for p in CORRECT)
    ce.check_declarations(MUTANTS, EXPLANATIONS)


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_submission_gets_full_marks(path, graded):
    corpus.assert_full_marks(graded[path].result(), path, FUNCTIONS, ASSIGNMENT.points())


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_submission_passes_student_side_checks(path):
    corpus.assert_student_side_passes(ASSIGNMENT, path)


@pytest.mark.parametrize("path", MUTANTS, ids=lambda p: p.stem)
def test_mutant_loses_points_on_its_function_only(path, graded):
    corpus.assert_loses_points_on_its_function_only(graded[path].result(), path, FUNCTIONS, QUANTITIES)


@pytest.mark.parametrize("path", MUTANTS, ids=lambda p: p.stem)
def test_mutant_fails_its_student_side_check(path, student_side):
    function, bug = corpus.header(path)
    result = student_side[path].result()
    failed = ce.failed_tests(result, function)
    assert failed, f"check('{function}', {function}) passes although {bug}"
    for explanation_key in ce.shown_keys(result, function, EXPLANATIONS) - ce.declared_keys(path):
        pytest.fail(f"the student-side feedback shows {explanation_key!r}, whose symptom {path.name} does not have")


@pytest.mark.parametrize("path", MUTANTS, ids=lambda p: p.stem)
def test_first_failure_names_the_bug(path, graded):
    function, bug = corpus.header(path)
    tokens = ce.says(path)
    first = ce.failed_tests(graded[path].result(), function)[0]
    if tokens:
        assert ce.names_the_bug(first, tokens, EXPLANATIONS), (
            f"the first failing check of {function} ({first.name}) does not name the bug ({bug}):\n{first.feedback}")


@pytest.mark.parametrize("path", MUTANTS, ids=lambda p: p.stem)
def test_explanations_only_where_their_symptom_is(path, graded):
    function, _ = corpus.header(path)
    shown = ce.shown_keys(graded[path].result(), function, EXPLANATIONS)
    assert shown <= ce.declared_keys(path), f"explanations without their symptom: {shown - ce.declared_keys(path)}"


def test_every_explanation_is_shown_on_one_mutant_and_withheld_from_another(graded):
    """Over hard_em's own explanations, and those of the prankster functions its mutants declare (the
    others are tested by the prankster corpus)."""
    from autograder.assignments.prankster.diagnosis import EXPLANATIONS as PRANKSTER_EXPLANATIONS
    shown = {path: ce.shown_keys(graded[path].result(), corpus.header(path)[0], EXPLANATIONS) for path in MUTANTS}
    declared = set().union(*(ce.declared_keys(p) for p in MUTANTS))
    for key in (set(EXPLANATIONS) - set(PRANKSTER_EXPLANATIONS)) | declared:
        showing = [p for p, keys in shown.items() if key in keys]
        assert showing, f"no mutant shows {key!r}"
        functions = {corpus.header(p)[0] for p in showing}
        withheld = [p for p, keys in shown.items() if key not in keys and corpus.header(p)[0] in functions]
        assert withheld, f"{key!r} is shown on every mutant of {functions}"


def test_untouched_release_earns_nothing():
    result = grade_file(ROOT / "course" / "hard_em" / "hard_em.ipynb", "hard_em")
    assert result.error is None, result.error
    assert result.max_score == ASSIGNMENT.points() and result.score == 0, result.function_scores()


PLACEHOLDERS = {
    "calculate_log_probability": ["return np.zeros((X.shape[1] - F.shape[1] + 1, X.shape[2]))",
                                  "return -np.ones((X.shape[1] - F.shape[1] + 1, X.shape[2])) * X.size"],
    "calculate_lower_bound": ["return 0.0", "return -1e300", "return float(np.sum(q))"],
    "e_step_spherical": ["return np.full((len(X), len(pi)), 1 / len(pi))",
                         "g = np.zeros((len(X), len(pi)))\n    g[:, 0] = 1\n    return g"],
    "m_step_spherical": ["C = gamma.shape[1]\n    return np.full(C, 1 / C), np.asarray(X, float)[:C].copy(), 1.0",
                         "C = gamma.shape[1]\n    return gamma.mean(axis=0), np.tile(X.mean(axis=0), (C, 1)), float(X.var())"],
    "kmeans": ["return np.array(mu, dtype=float), np.zeros(len(X), dtype=int)",
               "mu = np.array(mu, dtype=float)\n    return mu, ((X[:, None] - mu[None]) ** 2).sum(axis=2).argmin(axis=1)"],
    "run_e_step": ["P = X.shape[1] - F.shape[1] + 1\n    return np.full((P, X.shape[2]), 1 / P)",
                   "return np.tile(np.asarray(a, dtype=float)[:, None], (1, X.shape[2]))"],
    "run_m_step": ["H, W, K = X.shape\n    return (np.zeros((H, w)), np.asarray(X, float).mean(axis=2), 1.0, "
                   "np.full(W - w + 1, 1 / (W - w + 1)))",
                   "H, W, K = X.shape\n    return (np.asarray(X, float)[:, :w].mean(axis=2), np.asarray(X, float).mean(axis=2), "
                   "float(np.std(X)), np.asarray(q, float).mean(axis=1))"],
    "run_EM": ["H, W, K = X.shape\n    return (np.zeros((H, w)), np.zeros((H, W)), 1.0, np.full(W - w + 1, 1 / (W - w + 1)), "
               "np.zeros(3))",
               "H, W, K = X.shape\n    F = np.zeros((H, w)) if F is None else F\n    B = X.mean(axis=2) if B is None else B\n"
               "    s = 1.0 if s is None else s\n    a = np.full(W - w + 1, 1 / (W - w + 1)) if a is None else a\n"
               "    q = run_e_step(X, F, B, s, a, hard_EM)\n    F, B, s, a = run_m_step(X, q, w, hard_EM)\n"
               "    return F, B, s, a, np.array([0.0, 1.0, 1.0])"],
}


@pytest.mark.parametrize("function, body", [(f, b) for f, bodies in PLACEHOLDERS.items() for b in bodies],
                         ids=[f"{f}-{i}" for f, bodies in PLACEHOLDERS.items() for i in range(len(bodies))])
def test_placeholders_earn_nothing(function, body, tmp_path):
    """No check passes a function that returns well-formed values that ignore the task."""
    signature = ASSIGNMENT.task(function).signature
    path = tmp_path / "placeholder.py"
    path.write_text(f"import numpy as np\n\n\ndef {function}{signature}:\n    {body}\n")
    result = grade_file(path, "hard_em", only=[function])
    passed = [t.name for t in result.tests if t.passed]
    assert result.score == 0, f"a placeholder {function} passes {passed}"
