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
from autograder.assignments.gmm import checks_training, em_parts, theory
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
    ("compute_vlb", "entropy missing", "loss = expected_complete + entropy",
     "loss = expected_complete",
     {"visible fixture", "equals the log-likelihood right after an E-step",
      "hidden random inputs match the reference"}),
    ("compute_vlb", "entropy counted twice", "loss = expected_complete + entropy",
     "loss = expected_complete + 2 * entropy", {"never exceeds the log-likelihood"}),
    ("compute_vlb", "log of the determinant", "log_det = 2.0 * np.log(np.diag(L)).sum()",
     "log_det = np.log(np.linalg.det(sigma[c]))", {"numerically hard inputs"}),
    ("compute_vlb", "0 log 0 = NaN", "entropy = -np.sum(xlogy(gamma, gamma))",
     "entropy = -np.sum(gamma * np.log(gamma))", {"zero responsibilities (0 log 0 = 0)"}),
    ("log_likelihood", "weights ignored", "log_joint[:, c] = log_pi[c] - 0.5", "log_joint[:, c] = -0.5",
     {"visible fixture", "matches its definition on random inputs", "hidden random inputs match the reference"}),
    ("log_likelihood", "log of a sum of exps", "ll = logsumexp(log_joint, axis=1).sum()",
     "ll = np.log(np.exp(log_joint).sum(axis=1)).sum()", {"points far from every mean"}),
    ("log_likelihood", "log of the determinant", "log_det = 2.0 * np.log(np.diag(L)).sum()",
     "log_det = np.log(np.linalg.det(sigma[c]))", {"numerically hard inputs"}),
    ("train_EM", "keeps the last restart", "if best_loss is None or loss > best_loss:", "if True:",
     {"keeps the best restart"}),
    ("train_EM", "ignores rtol", "if previous is not None and abs((loss - previous) / previous) <= rtol:",
     "if False:", {"stops when the relative improvement is at most rtol"}),
    ("train_EM", "absolute instead of relative improvement",
     "abs((loss - previous) / previous) <= rtol", "abs(loss - previous) <= rtol",
     {"stops when the relative improvement is at most rtol"}),
    ("train_EM", "runs past max_iter", "for _ in range(max_iter):", "for _ in range(max_iter + 3):",
     {"runs at most max_iter iterations per restart"}),
    ("train_EM", "one iteration too many", "for _ in range(max_iter):", "for _ in range(max_iter + 1):",
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
     "assert True", {"catches an E-step that is not the posterior", "catches a drop between half-steps"}),
    ("assert_bound_never_decreases", "no slack", "slack = 1e-9 * abs(previous)", "slack = 0.0",
     {"passes on a correct EM"}),
    ("assert_m_step_maximises", "fires on any perturbation", "assert value <= best + 1e-9 * abs(best)",
     "assert value > best", {"passes on a correct M-step"}),
    ("assert_m_step_maximises", "never fires", "assert value <= best + 1e-9 * abs(best)", "assert True",
     {"catches covariances taken around the origin", "catches weights that ignore gamma"}),
    ("assert_m_step_maximises", "never moves the means",
     "new_mu = mu + scale * rng.standard_normal((C, d)) * np.sqrt(np.diagonal(sigma, axis1=1, axis2=2))",
     "new_mu = mu", {"catches means divided by N"}),
    ("assert_bound_is_tight", "tolerance of 50%", "assert abs(tight - ll) <= 1e-8 * abs(ll)",
     "assert abs(tight - ll) <= 0.5 * abs(ll)", {"catches a bound without the entropy",
                                                "catches a small gap after the E-step"}),
    ("assert_bound_is_tight", "tolerance of 5%", "assert abs(tight - ll) <= 1e-8 * abs(ll)",
     "assert abs(tight - ll) <= 0.05 * abs(ll)", {"catches a small gap after the E-step"}),
    ("assert_bound_is_tight", "tight only", "assert value <= ll + 1e-8 * abs(ll)", "assert True",
     {"catches a bound above the log-likelihood"}),
    ("assert_bound_is_tight", "absolute tolerance far too small", "assert abs(tight - ll) <= 1e-8 * abs(ll)",
     "assert abs(tight - ll) <= 1e-300", {"passes on a correct EM"}),
    ("assert_recovers_parameters", "demands exact recovery", "assert np.max(np.abs(mean_mu - mu) / s) <= tol",
     "assert np.max(np.abs(mean_mu - mu) / s) <= 1e-6", {"passes on a correct train_EM"}),
    ("assert_recovers_parameters", "covariances never compared",
     "assert np.max(np.abs(mean_sigma - sigma) / (s[:, :, None] * s[:, None, :])) <= tol", "assert True",
     {"catches covariances divided by N"}),
    ("assert_recovers_parameters", "means never compared", "assert np.max(np.abs(mean_mu - mu) / s) <= tol",
     "assert True", {"catches biased means"}),
    ("assert_recovers_parameters", "absolute errors", "s = np.sqrt(np.diagonal(sigma, axis1=1, axis2=2))",
     "s = np.ones_like(mu)", {"passes on a correct train_EM", "catches biased means"}),
    ("assert_recovers_parameters", "weights never compared", "assert np.max(np.abs(mean_pi - pi)) <= tol",
     "assert True", {"catches wrong weights"}),
    ("E_step_diag", "a comprehension over components", "precision = 1.0 / var",
     "precision = np.array([1.0 / v for v in var])", {"has no Python loop"}),
    ("E_step_diag", "a loop in a nested class's method", "precision = 1.0 / var",
     "class _Hidden:\n        @staticmethod\n        def inverse(v):\n            return np.stack([1.0 / row for row in v])"
     "\n\n    precision = _Hidden.inverse(var)", {"has no Python loop"}),
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
    X, pi, mu, sigma = em_parts.notebook_start()
    gamma = theory.posterior(X, pi, mu, sigma)
    # the M-step bugs lose a lot of Q (the assertion's perturbations find better parameters)
    best = theory.bound(X, *theory.m_step(X, gamma), gamma)
    for bug in (em_parts.m_step_doubling_covariances, em_parts.m_step_uncentred_covariances,
                em_parts.m_step_uniform_weights, em_parts.m_step_means_divided_by_n):
        assert theory.bound(X, *bug(X, gamma), gamma) < best - 1.0
    # an E-step at the wrong temperature loses bound
    ll = theory.log_likelihood(X, pi, mu, sigma)
    assert theory.bound(X, pi, mu, sigma, em_parts.e_step_tempered(0.3)(X, pi, mu, sigma)) < ll - 1.0
    # the KL-added bound: tight at the posterior, far above the likelihood elsewhere
    assert abs(em_parts.vlb_plus_kl(X, pi, mu, sigma, gamma) - ll) < 1e-8 * abs(ll)
    assert em_parts.vlb_plus_kl(X, pi, mu, sigma, np.full_like(gamma, 1 / 3)) > ll + 1.0
    assert abs(em_parts.vlb_without_entropy(X, pi, mu, sigma, gamma) - ll) > 1.0


def _half_steps(e_step, m_step, start, n_iter=dbg.N_ITER):
    """(kind, bound) after every half-step of an EM with the given steps."""
    X, pi, mu, sigma = start
    gamma = e_step(X, pi, mu, sigma)
    values = [("E", theory.bound(X, pi, mu, sigma, gamma))]
    for _ in range(n_iter):
        pi, mu, sigma = m_step(X, gamma)
        values.append(("M", theory.bound(X, pi, mu, sigma, gamma)))
        gamma = e_step(X, pi, mu, sigma)
        values.append(("E", theory.bound(X, pi, mu, sigma, gamma)))
    return values


def test_half_step_bug_is_invisible_to_full_iterations():
    """The "drop between half-steps" bug lowers the bound at a half-step by far more than round-off,
    while the bounds compared once per iteration (after every E-step, or after every M-step) rise."""
    values = _half_steps(em_parts.e_step_tempered(1.5), theory.m_step, em_parts.notebook_start())
    bounds = np.array([v for _, v in values])
    assert np.diff(bounds).min() < -1e-4 * abs(bounds[-1])
    for kind in ("E", "M"):
        assert np.diff([v for k, v in values if k == kind]).min() > 0


def test_converged_start_changes_only_by_round_off():
    """At the converged start, exact EM moves the bound far less than the round-off the parts create."""
    values = np.array([v for _, v in _half_steps(theory.posterior, theory.m_step, em_parts.converged_start())])
    assert np.ptp(values) < 1e-15 * abs(values[0]) * 10
    assert np.ptp(values) < 0.01 * em_parts.ROUND_OFF * abs(values[0])


def test_small_gap_lies_between_round_off_and_loose_tolerances():
    X, pi, mu, sigma = em_parts.overlapping_start()
    ll = theory.log_likelihood(X, pi, mu, sigma)
    gap = ll - theory.bound(X, pi, mu, sigma, em_parts.e_step_tempered(3.0)(X, pi, mu, sigma))
    assert 1e-3 * abs(ll) < gap < 0.01 * abs(ll)              # a 5 % (or 1 %) tolerance accepts it


@pytest.mark.parametrize("bug, parameter", [(em_parts.covariances_divided_by_n, "sigma"),
                                            (em_parts.uniform_weights, "pi"), (em_parts.shifted_means, "mu")])
def test_recovery_bugs_exceed_the_tolerance_by_a_wide_margin(bug, parameter):
    """Under the stated reading each broken train_EM of the checks is off by at least 1.5 tol."""
    truth = em_parts.unequal_truth()
    rng = np.random.default_rng(5)
    fitter = em_parts.Fitter(truth, bug=bug)
    for _ in range(dbg.N_DATASETS):
        fitter(theory.sample(rng, dbg.N_POINTS, *truth), 3)
    assert em_parts.recovery_errors(fitter.calls, truth)[parameter] > 1.5 * 0.15


def test_broken_scenarios_leave_the_other_parameters_well_inside_the_tolerance():
    """In the broken scenarios the parameters a bug does not touch must stay below tol, or an assertion
    that ignores the broken parameter raises on noise and earns its point: a correct EM on the broken
    scenarios' truth stays well inside it, for several seeds (bench_recovery_power.py measures the tail:
    with the 0.1-weight component it once had, the covariances exceeded tol for 1 % of seeds)."""
    truth = em_parts.unequal_truth()
    assert np.min(truth[0]) * dbg.N_POINTS >= 400      # the smallest component's points decide the noise
    for seed in range(5):
        rng = np.random.default_rng(seed)
        fitter = em_parts.Fitter(truth)
        for _ in range(dbg.N_DATASETS):
            fitter(theory.sample(rng, dbg.N_POINTS, *truth), 3)
        assert max(em_parts.recovery_errors(fitter.calls, truth).values()) < 0.8 * 0.15


@pytest.mark.parametrize("factor", [1.0, 30.0])
def test_correct_recovery_stays_well_inside_the_tolerance(factor):
    """The correct scenarios (the notebook's own call, and 30 times wider): a correct EM's averaged
    errors stay well below tol under the stated reading (mean about 0.05 for tol = 0.15), for several seeds."""
    truth = em_parts.scaled(em_parts.notebook_fit(), factor)
    for seed in range(5):
        rng = np.random.default_rng(seed)
        fitter = em_parts.Fitter(truth)
        for _ in range(dbg.N_DATASETS):
            fitter(theory.sample(rng, dbg.N_POINTS, *truth), 3)
        assert max(em_parts.recovery_errors(fitter.calls, truth).values()) < 0.8 * 0.15


def test_untouched_release_earns_nothing():
    """Nothing in the release passes a check on its own: no loop to find in an unimplemented
    E_step_diag, no assertion that passes by never raising."""
    from autograder.grading import grade_file
    result = grade_file(str(ROOT / "course" / "gmm" / "gmm.ipynb"), "gmm")
    assert result.error is None
    assert result.score == 0, [(t.function, t.name) for t in result.tests if t.passed]


# An assertion that retries with fresh data until the parameters are recovered, instead of raising:
# on a broken train_EM it would never return.
_RETRIES_FOREVER = '''
def assert_recovers_parameters(train_EM, pi, mu, sigma, n_points=2000, n_datasets=5, tol=0.15):
    rng = np.random.default_rng(0)
    C, d = mu.shape
    s = np.sqrt(np.diagonal(sigma, axis1=1, axis2=2))
    while True:
        estimates = []
        for _ in range(n_datasets):
            labels = rng.choice(C, size=n_points, p=pi)
            X = mu[labels] + np.einsum("nij,nj->ni", np.linalg.cholesky(sigma)[labels],
                                       rng.standard_normal((n_points, d)))
            _, est_pi, est_mu, est_sigma = train_EM(X, C)
            order = np.argmin(((mu[:, None, :] - est_mu[None, :, :]) ** 2).sum(axis=2), axis=1)
            estimates.append((est_pi[order], est_mu[order], est_sigma[order]))
        mean_pi, mean_mu, mean_sigma = (np.mean(parts, axis=0) for parts in zip(*estimates))
        if (np.max(np.abs(mean_pi - pi)) <= tol and np.max(np.abs(mean_mu - mu) / s) <= tol
                and np.max(np.abs(mean_sigma - sigma) / (s[:, :, None] * s[:, None, :])) <= tol):
            return
'''

# The reference's assertion, but a data set whose fit is far off is fitted again on fresh data
# (three attempts at most): honest, bounded retries.
_RETRIES_TWICE = _mutate(
    "assert_recovers_parameters",
    "        _, est_pi, est_mu, est_sigma = train_EM(X, C)\n",
    "        for attempt in range(3):\n"
    "            _, est_pi, est_mu, est_sigma = train_EM(X, C)\n"
    "            s_true = np.sqrt(np.diagonal(sigma, axis1=1, axis2=2))\n"
    "            nearest = np.argmin(((mu[:, None, :] - est_mu[None, :, :]) ** 2).sum(axis=2), axis=1)\n"
    "            if np.max(np.abs(est_mu[nearest] - mu) / s_true) <= tol:\n"
    "                break\n"
    "            labels = rng.choice(C, size=n_points, p=pi)\n"
    "            X = mu[labels] + np.einsum('nij,nj->ni', np.linalg.cholesky(sigma)[labels],\n"
    "                                       rng.standard_normal((n_points, d)))\n")


def _both_modes(source: str, function: str):
    """(CLI result in the sandbox with the reference, student-side result in-process) for ``function``."""
    with SandboxExecutor(submission_from_cells([source])) as executor:
        graded = run_checks(ASSIGNMENT, executor, reference=REFERENCE, only=[function])
    namespace = {}
    exec(compile(source, "<submission>", "exec"), namespace)
    student = run_checks(ASSIGNMENT, InProcessExecutor(namespace), reference=None, only=[function])
    return graded, student


def test_an_assertion_that_retries_until_recovered_is_stopped_with_its_verdict():
    """The train_EM stand-in stops an assertion past MAX_FITS calls at once (AbortCall): every check
    fails with the verdict that teaches a bounded number of attempts, in the sandbox and in-process,
    long before the checks' time-outs."""
    for result in _both_modes(SOURCE + _RETRIES_FOREVER, "assert_recovers_parameters"):
        tests = [t for t in result.tests if t.status != "skipped"]
        assert tests and not any(t.passed or t.timed_out for t in tests), [t.feedback for t in tests]
        for t in tests:
            assert f"called train_EM {dbg.MAX_FITS + 1} times without deciding" in t.feedback, t.feedback
            assert "bounded number of attempts" in t.why and "never raises" not in t.feedback


def test_an_assertion_with_a_few_honest_retries_keeps_full_marks():
    """Up to three fits per data set (15 calls on a broken train_EM) stay within the budget: full marks
    in both modes, and the retry verdict nowhere."""
    assert 3 * dbg.N_DATASETS <= dbg.MAX_FITS
    for result in _both_modes(_RETRIES_TWICE, "assert_recovers_parameters"):
        tests = [t for t in result.tests if t.status != "skipped"]
        assert tests and all(t.passed for t in tests), [t.feedback for t in tests if not t.passed]


def test_student_side_explanations_see_the_calls_the_assertion_made():
    """In-process the grader's train_EM stand-in is passed by reference (not deep-copied), so the
    explanation of a missed bug is built from the calls the assertion made, as when grading."""
    source = _mutate("assert_recovers_parameters", "assert np.max(np.abs(mean_pi - pi)) <= tol", "assert True")
    for result in _both_modes(source, "assert_recovers_parameters"):
        failed = [t for t in result.tests if t.name == "catches wrong weights"]
        assert failed and not failed[0].passed
        assert "averaged weights were off by" in failed[0].why and "never called" not in failed[0].why, failed[0].why


# A slow sampler, as in an assertion that draws one point per multivariate_normal call (the corpus's
# a_loops_scipy: ~0.6 s a scenario): CPU burnt after each fit, so the cost does not depend on the load.
_FIT_LINE = "        _, est_pi, est_mu, est_sigma = train_EM(X, C)\n"
_SLOW_FIT = (_FIT_LINE + "        import time\n        started = time.process_time()\n"
             "        while time.process_time() - started < 0.07:\n            pass\n")
_RECOVERS = "assert_recovers_parameters"
_WEIGHTS_LINE = "assert np.max(np.abs(mean_pi - pi)) <= tol"
_COVARIANCES_LINE = "assert np.max(np.abs(mean_sigma - sigma) / (s[:, :, None] * s[:, None, :])) <= tol"
_CORRECT, _DIVIDED, _WEIGHTS, _MEANS = (c.name for c in ASSIGNMENT.checks_for(_RECOVERS))


def _slow(old: str | None = None, new: str | None = None) -> str:
    source = _mutate(_RECOVERS, old, new) if old is not None else SOURCE
    assert source.count(_FIT_LINE) == 1
    return source.replace(_FIT_LINE, _SLOW_FIT)


def test_slow_correct_assertion_check_runs_the_core_scenarios_and_says_the_grader_runs_all():
    """check() of an assertion slower than STUDENT_FAST_CPU a call runs the notebook's scenario and
    'covariances divided by N' only (2 s target, issue 12): both pass, the passed check says what it left
    out and that the grader runs every scenario, the other checks run when graded. Grading: full marks."""
    graded, student = _both_modes(_slow(), _RECOVERS)
    assert graded.score == graded.max_score == ASSIGNMENT.points(_RECOVERS), \
        [t.feedback for t in graded.tests if not t.passed]
    assert all(not t.feedback for t in graded.tests)   # no student-side note when grading
    status = {t.name: t.status for t in student.tests}
    assert status == {_CORRECT: "passed", _DIVIDED: "passed", _WEIGHTS: "skipped", _MEANS: "skipped"}, status
    note = next(t.feedback for t in student.tests if t.name == _CORRECT)
    assert "30 times more spread out" in note and "runs only 2 of the grader's 6 scenarios" in note, note
    assert "the grader runs all 6" in note and "can still fail when graded" in note, note
    for t in student.tests:
        if t.status == "skipped":
            assert t.feedback.startswith("runs when graded") and "the grader runs all 6" in t.feedback, t.feedback


@pytest.mark.parametrize("description, old, new, student_status", [
    ("always raises", _WEIGHTS_LINE, "assert False and " + _WEIGHTS_LINE[len("assert "):], dict.fromkeys((_CORRECT, _DIVIDED, _WEIGHTS, _MEANS),
                                                                             "failed")),
    ("never raises", _WEIGHTS_LINE, "return\n    " + _WEIGHTS_LINE, dict.fromkeys((_CORRECT, _DIVIDED, _WEIGHTS, _MEANS), "failed")),
    ("covariances never compared", _COVARIANCES_LINE, "assert True",
     {_CORRECT: "passed", _DIVIDED: "failed", _WEIGHTS: "passed", _MEANS: "skipped"}),
    ("weights never compared", _WEIGHTS_LINE, "assert True",
     {_CORRECT: "passed", _DIVIDED: "passed", _WEIGHTS: "skipped", _MEANS: "skipped"}),
], ids=lambda v: v if isinstance(v, str) and " " in v else "")
def test_slow_wrong_assertion_still_fails_in_check_where_its_verdict_is_known(description, old, new, student_status):
    """A slow assertion that always raises, or never does, fails every check in check() too: a bug check
    whose scenario check() leaves out fails when the assertion is not quiet on a correct EM (that verdict
    needs no bug scenario), and one that never fires on 'covariances divided by N' gets every other bug
    until one fires. The bug check() leaves out is caught when graded; grading is unchanged."""
    graded, student = _both_modes(_slow(old, new), _RECOVERS)
    assert graded.score < graded.max_score
    status = {t.name: t.status for t in student.tests}
    assert status == student_status, [(t.name, t.status, t.feedback[:200]) for t in student.tests]
    graded_failed = {t.name for t in graded.tests if not t.passed}
    assert {n for n, s in status.items() if s == "failed"} <= graded_failed
    assert {n for n, s in status.items() if s == "skipped"} <= graded_failed | {_MEANS}
    if description == "never raises":
        assert "never raises" in next(t.feedback for t in student.tests if t.name == _CORRECT)
    if description == "always raises":
        assert "is not quiet on a CORRECT EM" in next(t.feedback for t in student.tests if t.name == _WEIGHTS)
