"""The gmm grader against a corpus of independent student submissions.

``tests/corpora/gmm/correct/`` holds complete, correct submissions written independently of the
reference (loops with scipy.stats, vectorised numpy, Cholesky factors, a noisy notebook, ...):
each must get full marks from the grader, and pass every student-side check.

``tests/corpora/gmm/mutants/`` holds copies of those submissions with exactly one realistic bug
in one function, named on the file's first two lines::

    # breaks: <function>
    # bug: <what is wrong>

Each must lose points on that function, and only on that function, with feedback that names
the function or the quantity it got wrong, in the CLI and in the notebook's own ``check()``
(where its visible checks cover the bug). A mutant may name, on a line ``# explained: <keys>``,
the explanations its feedback must give (see EXPLANATIONS): each explanation is shown on the
mutants that declare it and on no other mutant of the same function, so every "Why" is tied to
a symptom, tested on a mutant that must show it and on ones that must not.

Shared machinery: tests/corpus_support.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import corpus_support as corpus
from autograder.assignments import get_assignment
from autograder.engine import run_checks
from autograder.engine.executors import InProcessExecutor

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

# Explanations the checks give, by function: (key, what the feedback says when it gives it).
EXPLANATIONS = {
    "E_step": {
        "max trick": r"max trick", "det": r"over- or underflows|under- or overflows",
        "sigma inverse": r"INVERSE of sigma|instead of its inverse", "rows vs columns": r"columns sum to 1 instead of rows",
        "logdet half": r"log-determinant lacks its factor 1/2", "logdet sign": r"log-determinant has the wrong sign",
        "maha half": r"Mahalanobis term lacks its factor 1/2", "weights missing": r"weights pi are missing",
        "pi not logged": r"pi_c instead of log pi_c", "in place": r"changed its input", "transposed": r"looks transposed",
        "float32": r"has dtype float32",
    },
    "M_step": {
        "divided by N": r"divided by N instead of N_c", "gamma squared": r"weighted by gamma squared",
        "unweighted": r"ignores the weights gamma", "around data mean": r"around the mean of all the data",
        "around zero": r"around 0 instead of mu_c", "unbiased": r"'unbiased' weighted covariance",
        "pi update": r"pi_c is the average responsibility", "float32": r"float32",
    },
    "compute_vlb": {
        "no entropy": r"entropy term -sum gamma log gamma is missing", "entropy twice": r"counted twice",
        "entropy sign": r"entropy term has the wrong sign", "no 2pi": r"log\(2 pi\) of the Gaussian log-density",
        "no log pi": r"log\(pi_c\) term is missing", "logdet half": r"log-determinant should be multiplied by 1/2",
        "0log0": r"0 \* log\(0\) gives NaN", "det": r"under- or overflows in d=10", "in place": r"changed its input",
    },
    "log_likelihood": {
        "wrong axis": r"wrong axis", "weights missing": r"weights pi are missing", "mean": r"averages over the points",
        "sum of logs": r"sums the logs over components", "max only": r"largest term only", "log(0)": r"underflows to log\(0\)",
        "det": r"under- or overflows in d=10",
    },
    "train_EM": {
        "rtol unused": r"is rtol used at all", "absolute": r"ABSOLUTE improvement", "no abs": r"take abs\(\)",
        "worst": r"WORST restart", "last": r"LAST restart", "smallest positive": r"smallest: higher is better",
        "failed restart": r"restart that FAILED", "escape": r"LinAlgError from a collapsed restart escape",
        "try outside": r"try/except INSIDE the loop", "max_iter+1": r"one iteration too many",
        "past max_iter": r"kept going past max_iter", "same start": r"began from only \d+ different|began from the same point",
        "params": r"save pi, mu and sigma", "collapse": r"(only restart|every restart \(\d+ of them\)) collapsed",
        "never recorded": r"never recorded", "restarts count": r"there should be restarts=2 restarts",
        "fewer restarts": r"fewer restarts than asked",
    },
    "assert_bound_never_decreases": {
        "round-off": r"round-off only", "reversed": r"reversed", "first value": r"not with the first",
        "loose": r"far too loose", "half-steps": r"once per full iteration|every half-step, not only some",
        "never raises": r"never raises", "nothing called": r"without calling any of the functions",
        "n_iter": r"run all n_iter",
    },
    "assert_m_step_maximises": {
        "round-off": r"round-off only", "reversed": r"reversed", "loose": r"far too loose",
        "leave the model": r"leave the model", "never change": r"never change (pi|mu|sigma)",
        "never raises": r"never raises", "nothing called": r"without calling any of the functions",
    },
    "assert_bound_is_tight": {
        "round-off": r"round-off only", "reversed": r"reversed", "loose": r"far too loose",
        "never equals": r"never checks that the bound EQUALS", "never below": r"stays BELOW the log-likelihood",
        "never raises": r"never raises", "nothing called": r"without calling any of the functions",
    },
    "assert_recovers_parameters": {
        "label switching": r"label switching", "before averaging": r"BEFORE averaging",
        "absolute": r"errors are absolute", "compare every": r"compare every parameter",
        "never raises": r"never raises", "nothing called": r"without calling any of the functions",
        "retries": r"times without deciding",
    },
    "E_step_diag": {
        "loop": r"E_step_diag uses .*(loop|comprehension|generator|recursion|map\(\)|np\.vectorize|np\.frompyfunc"
                r"|apply_along_axis|functools\.reduce|itertools)",
        "suspicious": r"cannot follow", "log domain": r"log domain|subtract logsumexp",
        "logvar half": r"log\(2 pi var_cj\) lacks its factor 1/2", "var squared": r"divided by var\*\*2",
    },
    "M_step_diag": {
        "loop": r"M_step_diag uses", "cancellation": r"loses digits", "in place": r"changed its input",
        "std": r"standard deviations: return the variances", "divided by N": r"divided by N instead of N_c",
        "pi update": r"pi_c = N_c / N",
    },
}


def explained(path: Path) -> set[str]:
    """The explanation keys a mutant declares (``# explained: a, b`` in its first lines)."""
    for line in path.read_text().splitlines()[:6]:
        if line.startswith("# explained:"):
            return {k.strip() for k in line.split(":", 1)[1].split(",") if k.strip()}
    return set()


# These mutants return a non-finite numpy float64 (np.sum(...) of NaN / -inf): the feedback must
# say so, not report a crash of the sandbox (the codec once rejected repr 'np.float64(nan)').
NONFINITE_NUMPY_SCALAR = ["compute_vlb__0log0_nan_numpy_scalar", "log_likelihood__no_max_trick"]


@pytest.fixture(scope="module")
def graded(request):
    yield from corpus.grade_all(request, "gmm", sandboxed=NONFINITE_NUMPY_SCALAR)


def test_corpus_is_complete():
    corpus.assert_corpus_complete(CORRECT, MUTANTS, FUNCTIONS, min_correct=20, min_mutants=100)
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


@pytest.mark.parametrize("path", MUTANTS, ids=lambda p: p.stem)
def test_mutant_feedback_explains_its_bug_and_nothing_else(path, graded):
    """Each explanation a mutant declares is given; no explanation of its function that it does not
    declare is (an explanation is shown only when its symptom is present)."""
    function, _ = corpus.header(path)
    result = graded[path].result()
    feedback = "\n".join(t.feedback for t in result.tests if t.function == function and not t.passed)
    declared = explained(path)
    assert declared <= set(EXPLANATIONS.get(function, {})), declared - set(EXPLANATIONS.get(function, {}))
    for key in declared:
        assert re.search(EXPLANATIONS[function][key], feedback), \
            f"{path.name} should be explained as {key!r}:\n{corpus.failures(result, [function])}"
    for key, pattern in EXPLANATIONS.get(function, {}).items():
        if key not in declared:
            assert not re.search(pattern, feedback), \
                f"{path.name} is explained as {key!r} although its bug is not that:\n{corpus.failures(result, [function])}"


def test_every_explanation_is_tested_on_a_mutant_that_shows_it_and_one_that_does_not():
    by_function = {}
    for path in MUTANTS:
        function, _ = corpus.header(path)
        by_function.setdefault(function, []).append(explained(path))
    for function, keys in EXPLANATIONS.items():
        for key in keys:
            declared = [k for k in by_function.get(function, []) if key in k]
            assert declared, f"no mutant of {function} shows the explanation {key!r}"
            assert len(declared) < len(by_function[function]), f"every mutant of {function} declares {key!r}"


@pytest.mark.parametrize("path", MUTANTS, ids=lambda p: p.stem)
def test_student_check_fails_where_the_visible_checks_cover_the_bug(path, graded):
    """The notebook's check() of the mutated function (the student's kernel, no reference) fails every
    visible check the grader fails, and its own function loses points there too."""
    function, _ = corpus.header(path)
    visible = {c.name for c in ASSIGNMENT.checks_for(function) if not c.needs_reference}
    cli_failed = {t.name for t in graded[path].result().tests if t.function == function and not t.passed} & visible
    student = run_checks(ASSIGNMENT, InProcessExecutor(corpus.student_namespace(path)), reference=None,
                         only=[function])
    skipped = {t.name for t in student.tests if t.status == "skipped"}
    student_failed = {t.name for t in student.tests if t.status == "failed"}
    assert cli_failed - skipped <= student_failed, \
        f"check() passes {sorted(cli_failed - skipped - student_failed)} although grading fails them"
