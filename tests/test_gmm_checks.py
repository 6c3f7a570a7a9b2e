"""Every GMM check is seen to fail on a wrong implementation, and to pass on the reference.

Each mutation edits one line of the reference module (a realistic bug) and names the checks
that must catch it. Functions other than the mutated one are not graded here: the corpus in
tests/corpora/gmm proves that a bug costs points only where it is.
"""

import linecache

import numpy as np
import pytest

from autograder.assignments import get_assignment
from autograder.assignments.gmm import checks_debugging as dbg
from autograder.assignments.gmm import checks_training, theory
from autograder.datasets import gmm as data
from autograder.engine import run_checks
from autograder.engine.executors import InProcessExecutor, SandboxExecutor
from autograder.engine.reference import load_reference
from autograder.loading import submission_from_cells
from conftest import ROOT

ASSIGNMENT = get_assignment("gmm")
REFERENCE = load_reference("gmm")
SOURCE = (ROOT / "solutions" / "gmm" / "__init__.py").read_text()


def _mutate(function: str, old: str, new: str) -> str:
    """Replace ``old`` by ``new`` inside ``function``'s definition only."""
    start = SOURCE.index(f"def {function}(")
    end = SOURCE.find("\ndef ", start + 1)
    end = len(SOURCE) if end < 0 else end
    body = SOURCE[start:end]
    assert old in body, f"{old!r} not in {function}"
    return SOURCE[:start] + body.replace(old, new, 1) + SOURCE[end:]


MUTATIONS = [
    # (function, description, old, new, checks that must fail)
    ("E_step", "log-determinant without the factor 2", "log_det = 2.0 * np.log", "log_det = np.log",
     {"visible fixture", "hidden random inputs match the reference"}),
    ("E_step", "normalised over everything instead of per point", "y /= y.sum(axis=0)", "y /= y.sum()",
     {"visible fixture", "rows are probability distributions", "hidden random inputs match the reference"}),
    ("E_step", "no max trick", "y -= y.max(axis=0)", "pass",
     {"numerically hard inputs give finite, normalised gamma", "numerically hard inputs match the reference"}),
    ("E_step", "determinant instead of log-determinant",
     "log_det = 2.0 * np.log(np.diag(L)).sum()", "log_det = np.log(np.linalg.det(sigma[c]))",
     {"numerically hard inputs give finite, normalised gamma", "numerically hard inputs match the reference"}),
    ("M_step", "covariance divided by N", "@ diff) / weights[c]", "@ diff) / N",
     {"visible fixture", "maximises the expected complete-data log-likelihood",
      "hard assignments give per-cluster sample moments", "hidden random inputs match the reference"}),
    ("M_step", "tiny components clamped", "@ diff) / weights[c]", "@ diff) / max(weights[c], 1.0)",
     {"large and lopsided inputs match the reference"}),
    ("compute_vlb", "entropy missing", "loss = float(expected_complete + entropy)",
     "loss = float(expected_complete)",
     {"visible fixture", "equals the log-likelihood right after an E-step",
      "hidden random inputs match the reference"}),
    ("compute_vlb", "entropy counted twice", "loss = float(expected_complete + entropy)",
     "loss = float(expected_complete + 2 * entropy)", {"never exceeds the log-likelihood"}),
    ("compute_vlb", "0 log 0 = NaN", "entropy = -np.sum(xlogy(gamma, gamma))",
     "entropy = -np.sum(gamma * np.log(gamma))", {"zero responsibilities (0 log 0 = 0)"}),
    ("log_likelihood", "weights ignored", "log_joint[:, c] = log_pi[c] - 0.5", "log_joint[:, c] = -0.5",
     {"visible fixture", "matches its definition on random inputs", "hidden random inputs match the reference"}),
    ("log_likelihood", "log of a sum of exps", "ll = float(logsumexp(log_joint, axis=1).sum())",
     "ll = float(np.log(np.exp(log_joint).sum(axis=1)).sum())", {"points far from every mean"}),
    ("train_EM", "keeps the last restart", "if best_loss is None or loss > best_loss:", "if True:",
     {"keeps the best restart"}),
    ("train_EM", "ignores rtol", "if previous is not None and abs((loss - previous) / previous) <= rtol:",
     "if False:", {"stops when the relative improvement is at most rtol"}),
    ("train_EM", "absolute instead of relative improvement",
     "abs((loss - previous) / previous) <= rtol", "abs(loss - previous) <= rtol",
     {"stops when the relative improvement is at most rtol"}),
    ("train_EM", "runs past max_iter", "for _ in range(max_iter):", "for _ in range(max_iter + 3):",
     {"runs at most max_iter iterations per restart"}),
    ("train_EM", "lets LinAlgError escape", "except np.linalg.LinAlgError:", "except ZeroDivisionError:",
     {"skips restarts whose covariances collapse"}),
    ("train_EM", "every restart from the same means", "mu = X[np.random.choice(N, size=C, replace=False)]",
     "mu = X[np.zeros(C, dtype=int)]", {"finds the best optimum where restarts matter"}),
    ("train_EM", "re-seeds every restart", "pi = np.full(C, 1.0 / C)",
     "np.random.seed(0); pi = np.full(C, 1.0 / C)", {"restarts start from different points"}),
    ("assert_bound_never_decreases", "demands strict increase", "slack = 1e-9 * abs(previous)",
     "slack = -1.0", {"passes on a correct EM"}),
    ("assert_bound_never_decreases", "M-step never checked", "assert after_m >= previous - slack",
     "assert True", {"catches an M-step that doubles the covariances"}),
    ("assert_bound_never_decreases", "E-step never checked", "assert after_e >= after_m - slack",
     "assert True", {"catches an E-step that is not the posterior"}),
    ("assert_m_step_maximises", "fires on any perturbation", "assert value <= best + 1e-9 * abs(best)",
     "assert value > best", {"passes on a correct M-step"}),
    ("assert_m_step_maximises", "never fires", "assert value <= best + 1e-9 * abs(best)", "assert True",
     {"catches covariances taken around the origin", "catches weights that ignore gamma"}),
    ("assert_m_step_maximises", "never moves the means",
     "new_mu = mu + scale * rng.standard_normal((C, d)) * np.sqrt(np.diagonal(sigma, axis1=1, axis2=2))",
     "new_mu = mu", {"catches means divided by N"}),
    ("assert_bound_is_tight", "tolerance of 50%", "assert abs(tight - ll) <= 1e-8 * abs(ll)",
     "assert abs(tight - ll) <= 0.5 * abs(ll)", {"catches a bound without the entropy"}),
    ("assert_bound_is_tight", "tight only", "assert value <= ll + 1e-8 * abs(ll)", "assert True",
     {"catches a bound above the log-likelihood"}),
    ("assert_bound_is_tight", "absolute tolerance far too small", "assert abs(tight - ll) <= 1e-8 * abs(ll)",
     "assert abs(tight - ll) <= 1e-300", {"passes on a correct EM"}),
    ("assert_recovers_parameters", "demands exact recovery", "<= tol * scale, f\"means",
     "<= 1e-6 * scale, f\"means", {"passes on a correct train_EM"}),
    ("assert_recovers_parameters", "covariances never compared",
     "assert np.max(np.abs(mean_sigma - sigma)) <= tol * scale**2", "assert True",
     {"catches covariances divided by N"}),
    ("assert_recovers_parameters", "means never compared", "assert np.max(np.abs(mean_mu - mu)) <= tol * scale",
     "assert True", {"catches biased means"}),
    ("assert_recovers_parameters", "weights never compared", "assert np.max(np.abs(mean_pi - pi)) <= tol",
     "assert True", {"catches wrong weights"}),
    ("E_step_diag", "a comprehension over components", "precision = 1.0 / var",
     "precision = np.array([1.0 / v for v in var])", {"has no Python loop"}),
    ("M_step_diag", "a comprehension over components", "pi = weights / X.shape[0]",
     "pi = np.array([w / X.shape[0] for w in weights])", {"has no Python loop"}),
    ("E_step_diag", "log-variance without the 1/2", "np.log(var).sum(axis=1) + maha)",
     "2 * np.log(var).sum(axis=1) + maha)", {"visible fixture", "hidden random inputs match the reference"}),
    ("E_step_diag", "log of normalised exponentials",
     "log_gamma = log_joint - logsumexp(log_joint, axis=1, keepdims=True)",
     "log_gamma = np.log(np.exp(log_joint) / np.exp(log_joint).sum(axis=1, keepdims=True))",
     {"stays finite where probabilities underflow"}),
    ("M_step_diag", "variance around zero", "(X[:, None, :] - mu[None]) ** 2", "X[:, None, :] ** 2",
     {"visible fixture", "equals the diagonal of the full M-step",
      "hidden inputs far from the origin match the reference"}),
    ("M_step_diag", "E[x^2] - mu^2",
     "var = np.einsum(\"nc,ncd->cd\", gamma, (X[:, None, :] - mu[None]) ** 2) / weights[:, None]",
     "var = (gamma.T @ X**2) / weights[:, None] - mu**2",
     {"hidden inputs far from the origin match the reference"}),
]


@pytest.mark.parametrize("function, description, old, new, must_fail", MUTATIONS,
                         ids=[f"{m[0]}: {m[1]}" for m in MUTATIONS])
def test_checks_catch_the_bug(function, description, old, new, must_fail):
    names = {c.name for c in ASSIGNMENT.checks_for(function)}
    assert must_fail <= names, must_fail - names
    submission = submission_from_cells([_mutate(function, old, new)])
    with SandboxExecutor(submission) as executor:
        result = run_checks(ASSIGNMENT, executor, reference=REFERENCE, only=[function])
    failed = {t.name for t in result.tests if not t.passed}
    assert must_fail <= failed, f"not caught by {must_fail - failed}"
    for t in result.tests:
        if not t.passed:
            assert t.feedback.strip() and "internal error" not in t.feedback


def test_every_check_is_exercised_by_a_mutation():
    covered = {(m[0], name) for m in MUTATIONS for name in m[4]}
    missing = [(c.task, c.name) for c in ASSIGNMENT.checks if (c.task, c.name) not in covered]
    assert not missing


def test_the_reference_passes_everything_in_both_modes():
    submission = submission_from_cells([SOURCE])
    with SandboxExecutor(submission) as executor:
        result = run_checks(ASSIGNMENT, executor, reference=REFERENCE)
    assert result.score == result.max_score == ASSIGNMENT.points(), [t.feedback for t in result.tests if not t.passed]
    namespace = {}
    linecache.cache["<reference>"] = (len(SOURCE), None, SOURCE.splitlines(True), "<reference>")
    exec(compile(SOURCE, "<reference>", "exec"), namespace)
    student_side = run_checks(ASSIGNMENT, InProcessExecutor(namespace), reference=None)
    assert all(t.passed for t in student_side.tests if t.status != "skipped")


def test_feedback_teaches_the_max_trick():
    submission = submission_from_cells([_mutate("E_step", "y -= y.max(axis=0)", "pass")])
    with SandboxExecutor(submission) as executor:
        result = run_checks(ASSIGNMENT, executor, reference=REFERENCE, only=["E_step"])
    feedback = "\n".join(t.feedback for t in result.tests if not t.passed)
    assert "far from every mean" in feedback and "subtract the row maximum" in feedback


# ----------------------------------------------------------------------------- grader's own data
def test_restarts_matter_data_has_the_stated_optima():
    """Single converged runs land in distinct optima; the best is GLOBAL_OPTIMUM, the next NEXT_OPTIMUM."""
    X = checks_training.restarts_matter_data()
    finals = []
    rng = np.random.default_rng(0)
    for _ in range(40):
        pi, mu, sigma = np.full(3, 1 / 3), X[rng.choice(len(X), 3, replace=False)], np.repeat(np.eye(2)[None], 3, 0)
        previous = None
        try:
            for _ in range(2000):
                gamma = REFERENCE.E_step(X, pi, mu, sigma)
                pi, mu, sigma = REFERENCE.M_step(X, gamma)
                loss = REFERENCE.compute_vlb(X, pi, mu, sigma, gamma)
                if previous is not None and abs((loss - previous) / previous) <= 1e-10:
                    break
                previous = loss
        except np.linalg.LinAlgError:
            continue
        finals.append(loss)
    finals = np.array(finals)
    assert abs(finals.max() - checks_training.GLOBAL_OPTIMUM) < 0.1
    below = finals[finals < checks_training.GLOBAL_OPTIMUM - 1]
    assert below.size >= 5  # restarts matter: many single runs end elsewhere
    assert below.max() <= checks_training.NEXT_OPTIMUM + 0.5


def test_scripted_stopping_rule():
    script = checks_training.geometric_script([-1000.0])
    m = checks_training.stopping_iteration(script, 0, 1e-3)
    improvement = lambda k: abs((script(0, k) - script(0, k - 1)) / script(0, k - 1))  # noqa: E731
    assert improvement(m) <= 1e-3 < improvement(m - 1)


def test_broken_em_parts_break_their_property_by_a_wide_margin():
    s = data.load()
    X, pi, mu, sigma = s["data"], s["pi0"], s["mu0"], s["sigma0"]
    gamma = dbg.correct_E_step(X, pi, mu, sigma)
    # the M-step bugs lose a lot of Q (the assertion's perturbations find better parameters)
    best = theory.bound(X, *dbg.correct_M_step(X, gamma), gamma)
    for bug in (dbg.m_step_doubling_covariances, dbg.m_step_uncentred_covariances, dbg.m_step_uniform_weights):
        assert theory.bound(X, *bug(X, gamma), gamma) < best - 1.0
    # an E-step at the wrong temperature loses bound
    assert theory.bound(X, pi, mu, sigma, dbg.e_step_tempered(X, pi, mu, sigma)) < \
        theory.log_likelihood(X, pi, mu, sigma) - 1.0
    # the KL-added bound: tight at the posterior, far above the likelihood elsewhere
    ll = theory.log_likelihood(X, pi, mu, sigma)
    assert abs(dbg.vlb_plus_kl(X, pi, mu, sigma, gamma) - ll) < 1e-8 * abs(ll)
    assert dbg.vlb_plus_kl(X, pi, mu, sigma, np.full_like(gamma, 1 / 3)) > ll + 1.0
    assert abs(dbg.vlb_without_entropy(X, pi, mu, sigma, gamma) - ll) > 1.0
