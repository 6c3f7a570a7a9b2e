"""The advi grader against a corpus of independent student submissions, stated as properties.

``tests/corpora/advi/correct/`` holds complete, correct submissions written independently of the
reference, each in another style (see the first lines of each file): autograd through the
student's own functions (batched, one point at a time, by the chain rule, through closures),
hand-derived gradients with autograd.scipy densities, plain numpy with Python floats, numpy scalars
(their model functions in autograd.numpy, which the notebook asks for),
keyword calls in any order, extra ELBO evaluations, packed parameter vectors, other layouts of the
draws, the notebook's first reference (indexing with None) and notebooks with scratch cells.

``tests/corpora/advi/mutants/`` holds copies of those with exactly one realistic bug in one
function, named in the file's leading comment block::

    # breaks: <function>
    # bug: <what is wrong>
    # why: <keys of the explanations the grader must give, comma-separated, or ->
    # visible: no          (optional: only the hidden checks can see this bug)

Properties, over the whole corpus, in the CLI and in the student's own ``check()`` alike:

* every correct submission gets full marks (and passes every student-side check);
* every mutant loses points on its function and only there, with feedback that names the function
  or its quantity; student-side, it fails only there too, and fails there unless ``visible: no``;
* an explanation that diagnoses a cause (registered with ``judging.explanation``) is shown exactly
  on the mutants that claim it: never on another, and every registered explanation is claimed by
  at least one mutant (so each is seen shown, and seen absent on the others).

Grading is the slow part: the files are graded up front in worker processes, with RuntimeWarnings
raised as errors in the grader's own code (a check that warns would zero an nbgrader cell).
"""

from __future__ import annotations

from pathlib import Path

import pytest

import corpus_support as corpus
from autograder.assignments import get_assignment
from autograder.assignments.advi.judging import EXPLANATIONS

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
    "step_size": ("rho", "rho_k", "s_k"),
    "advi_mean_field": ("iteration", "mu", "omega"),
    "elbo_full_rank": ("ELBO",),
    "grad_elbo_full_rank": ("grad_mu", "grad_L"),
    "advi_full_rank": ("iteration", "L"),
}


def claimed(path: Path) -> set[str]:
    value = corpus.header_fields(path).get("why", "-")
    return set() if value == "-" else {key.strip() for key in value.split(",")}


def shown(result, function: str) -> set[str]:
    """The registered explanations in the failed checks of ``function``."""
    texts = {text: key for key, text in EXPLANATIONS.items()}
    return {texts[t.why] for t in result.tests if t.function == function and not t.passed and t.why in texts}


def shown_anywhere(result) -> set[str]:
    texts = {text: key for key, text in EXPLANATIONS.items()}
    return {texts[t.why] for t in result.tests if not t.passed and t.why in texts}


@pytest.fixture(scope="module")
def graded(request):
    yield from corpus.grade_all(request, "advi", strict=True, student=True)


def test_corpus_is_complete():
    corpus.assert_corpus_complete(CORRECT, MUTANTS, FUNCTIONS, min_correct=10, min_mutants=40)
    assert sum(p.suffix == ".ipynb" for p in CORRECT) >= 2
    claims = [claimed(p) for p in MUTANTS]
    unknown = set().union(*claims) - set(EXPLANATIONS)
    assert not unknown, f"mutants claim explanations nobody registered: {unknown}"
    for key in EXPLANATIONS:
        claiming = [p for p, c in zip(MUTANTS, claims) if key in c]
        others = [p for p, c in zip(MUTANTS, claims) if key not in c]
        assert claiming, f"no mutant shows the explanation {key!r}: add one that must show it"
        assert others, key


@pytest.mark.parametrize("path", CORRECT, ids=lambda p: p.stem)
def test_correct_submission_gets_full_marks(path, graded):
    cli, student = (f.result() for f in graded[path])
    corpus.assert_full_marks(cli, path, FUNCTIONS, ASSIGNMENT.points())
    ran = [t for t in student.tests if t.status != "skipped"]
    assert {t.function for t in ran} == set(FUNCTIONS)
    failed = [t for t in ran if not t.passed]
    assert not failed, f"{path.name} fails student-side checks:\n" + "\n".join(
        f"  {t.function} / {t.name}: {t.feedback[:400]}" for t in failed)


@pytest.mark.parametrize("path", MUTANTS, ids=lambda p: p.stem)
def test_mutant_loses_points_on_its_function_only(path, graded):
    cli, student = (f.result() for f in graded[path])
    corpus.assert_loses_points_on_its_function_only(cli, path, FUNCTIONS, QUANTITIES)
    function = corpus.header(path)[0]
    failing = {t.function for t in student.tests if t.status == "failed"}
    assert failing <= {function}, f"student-side checks fail outside {function}: {failing}\n" + corpus.failures(
        student, failing - {function})
    if corpus.header_fields(path).get("visible") != "no":
        assert failing == {function}, f"the student-side checks of {function} miss the bug"


@pytest.mark.parametrize("path", MUTANTS, ids=lambda p: p.stem)
def test_explanations_are_shown_only_where_their_symptom_is(path, graded):
    cli, student = (f.result() for f in graded[path])
    function = corpus.header(path)[0]
    for where, result in (("CLI", cli), ("student-side", student)):
        extra = shown_anywhere(result) - claimed(path)
        assert not extra, f"{where}: explanations shown without their symptom: {extra}\n{corpus.failures(result)}"
    missing = claimed(path) - shown(cli, function)
    assert not missing, f"the grader does not explain {missing}:\n{corpus.failures(cli, [function])}"


def test_the_untouched_release_earns_nothing():
    from autograder.grading import grade_file
    release = Path(__file__).resolve().parents[1] / "course" / "advi" / "advi.ipynb"
    result = corpus.grade_strictly(str(release), "advi")
    assert result.error is None, result.error
    assert result.max_score == ASSIGNMENT.points()
    assert result.score == 0, [(t.function, t.name) for t in result.tests if t.passed]
    assert grade_file  # (the same path as the CLI's)
