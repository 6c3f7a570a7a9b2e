"""Every ADVI check is seen to fail on a wrong implementation, and to pass on the reference.

Each mutation edits one line of the reference module (a realistic bug) and names the checks
that must catch it. Functions other than the mutated one are not graded here: the corpus in
tests/corpora/advi proves that a bug costs points only where it is. The last tests pin the
machinery the checks rely on: isolation that survives autograd, the replay of a loop, and the
tolerances of the fit (measured over many seeds).
"""

import zlib

import numpy as np
import pytest

from autograder.assignments import get_assignment
from autograder.assignments.advi import checks_loops, theory
from autograder.datasets import advi as data
from autograder.engine import run_checks
from autograder.engine.executors import InProcessExecutor, SandboxExecutor
from autograder.engine.reference import load_reference
from autograder.loading import submission_from_cells
from conftest import ROOT

ASSIGNMENT = get_assignment("advi")
REFERENCE = load_reference("advi")
SOURCE = (ROOT / "solutions" / "advi" / "__init__.py").read_text()


def _mutate(function: str, old: str, new: str) -> str:
    """Replace ``old`` by ``new`` inside ``function``'s definition only."""
    start = SOURCE.index(f"def {function}(")
    end = SOURCE.find("\ndef ", start + 1)
    end = len(SOURCE) if end < 0 else end
    body = SOURCE[start:end]
    assert old in body, f"{old!r} not in {function}"
    return SOURCE[:start] + body.replace(old, new, 1) + SOURCE[end:]


VISIBLE, HIDDEN = "visible fixture", "hidden inputs match the reference"
ROUND_TRIP = "round trip: T(T^{-1}(zeta)) = zeta, for one draw or many"
SCIPY = "matches scipy.stats' densities for any priors and data"
EXACT_ELBO = "agrees with the exact ELBO (2000 draws)"
FD = "matches finite differences of the ELBO estimate"
UNBIASED = "unbiased: the average over many draws is the exact gradient"
SHAPES_MF, SHAPES_FR = "returns (mu, omega, elbo_trace) with the right shapes", "returns (mu, L, elbo_trace) with the right shapes"
REPLAY, FIT, RNG = "follows the ADVI iteration step by step", "fits the posterior from a warm start", \
    "the rng argument makes runs repeatable"
DIFFERENTIABLE = "autograd can differentiate it"                                     # the model's functions
DIFFERENTIATED = "autograd can differentiate it, where your gradient functions do"   # the ELBO estimates

# Gradients that differentiate the student's own functions (appended to a mutated reference).
AUTOGRAD_GRADIENTS = '''
from autograd import grad as _grad

def grad_log_joint_zeta(zeta, x, y):
    return elementwise_grad(log_joint_zeta)(zeta, x, y)

def grad_elbo_mean_field(mu, omega, eta, x, y):
    return tuple(_grad(elbo_mean_field, (0, 1))(mu, omega, eta, x, y))

def grad_elbo_full_rank(mu, L, eta, x, y):
    g_mu, g_L = _grad(elbo_full_rank, (0, 1))(mu, L, eta, x, y)
    return g_mu, np.tril(g_L)
'''

MUTATIONS = [
    # (function, description, old, new, checks that must fail)
    ("inverse_transform", "exp of every coordinate",
     "np.concatenate([zeta[..., :2], np.exp(zeta[..., 2:])], axis=-1)", "np.exp(zeta)", {VISIBLE, ROUND_TRIP, HIDDEN}),
    ("inverse_transform", "batches only", "np.concatenate([zeta[..., :2], np.exp(zeta[..., 2:])], axis=-1)",
     "np.concatenate([zeta[:, :2], np.exp(zeta[:, 2:])], axis=-1)", {ROUND_TRIP, HIDDEN}),
    ("inverse_transform", "clips log sigma against overflow", "np.exp(zeta[..., 2:])",
     "np.exp(np.minimum(zeta[..., 2:], 25.0))", {HIDDEN}),
    ("log_det_jacobian", "determinant, not its log", "log_det = zeta[..., 2]", "log_det = np.exp(zeta[..., 2])",
     {VISIBLE, "equals log|det| of the numerical Jacobian of T^{-1}"}),
    ("log_det_jacobian", "sum of all coordinates", "log_det = zeta[..., 2]", "log_det = np.sum(zeta, axis=-1)",
     {VISIBLE, "equals log|det| of the numerical Jacobian of T^{-1}"}),
    ("log_joint", "no 2 pi in the likelihood", "-0.5 * n * np.log(2 * np.pi) - n * np.log(sigma)",
     "-n * np.log(sigma)", {VISIBLE, SCIPY, HIDDEN}),
    ("log_joint", "prior scale hard-coded", "(b0**2 + b1**2) / prior_b_scale**2", "(b0**2 + b1**2) / 10.0**2",
     {SCIPY, HIDDEN}),
    ("log_joint", "Gamma rate used as a scale", "- prior_sigma_rate * sigma", "- sigma / prior_sigma_rate",
     {VISIBLE, SCIPY, HIDDEN}),
    ("log_joint", "sums over the draws too", "np.sum(z**2, axis=-1)", "np.sum(z**2)",
     {VISIBLE, SCIPY, "one value per draw, for one draw or many", HIDDEN}),
    ("log_joint_zeta", "no log-Jacobian", "log_joint(inverse_transform(zeta), x, y) + log_det_jacobian(zeta)",
     "log_joint(inverse_transform(zeta), x, y)",
     {VISIBLE, "is the log joint of T^{-1}(zeta) plus the log-Jacobian", HIDDEN}),
    ("grad_log_joint_zeta", "no gradient of the log-Jacobian",
     "grad = grad_theta * grad_inverse + elementwise_grad(log_det_jacobian)(zeta)", "grad = grad_theta * grad_inverse",
     {VISIBLE, "matches finite differences of log_joint_zeta", HIDDEN}),
    ("grad_log_joint_zeta", "no chain rule through T^{-1}", "grad_theta * grad_inverse + ", "grad_theta + ",
     {VISIBLE, "matches finite differences of log_joint_zeta", HIDDEN}),
    ("grad_log_joint_zeta", "averaged over the draws", "grad_theta * grad_inverse + ",
     "np.mean(grad_theta * grad_inverse, axis=0) + ", {VISIBLE, "one gradient per draw, whatever the batch", HIDDEN}),
    ("elbo_mean_field", "entropy without its constant", "np.sum(omega) + 0.5 * d * (1.0 + np.log(2 * np.pi))",
     "np.sum(omega)", {VISIBLE, EXACT_ELBO, HIDDEN}),
    ("elbo_mean_field", "variances for standard deviations", "zeta = mu + np.exp(omega) * eta",
     "zeta = mu + np.exp(omega / 2) * eta", {VISIBLE, EXACT_ELBO, HIDDEN}),
    ("grad_elbo_mean_field", "entropy's gradient missing", "* sd + 1.0", "* sd",
     {VISIBLE, FD, UNBIASED, HIDDEN}),
    ("grad_elbo_mean_field", "summed over the draws", "grad_mu = np.mean(g, axis=0)", "grad_mu = np.sum(g, axis=0)",
     {VISIBLE, FD, UNBIASED, HIDDEN}),
    ("step_size", "alpha and 1 - alpha swapped", "s = alpha * grad**2 + (1.0 - alpha) * s_prev",
     "s = (1.0 - alpha) * grad**2 + alpha * s_prev",
     {"visible sequence, value by value", "element-wise, for any alpha, tau, eps and shape",
      "hidden sequences match the reference"}),
    ("step_size", "first step recognised by s_prev, not k", "if k == 1:", "if s_prev is None:",
     {"the first step starts the average at g_1^2, whatever s_prev"}),
    ("step_size", "tau hard-coded", "(tau + np.sqrt(s))", "(1.0 + np.sqrt(s))",
     {"element-wise, for any alpha, tau, eps and shape"}),
    ("advi_mean_field", "returns no trace", "return mu, omega, elbo_trace", "return mu, omega",
     {SHAPES_MF, REPLAY, FIT, RNG}),
    ("advi_mean_field", "descends", "mu = mu + rho_mu * grad_mu", "mu = mu - rho_mu * grad_mu", {REPLAY, FIT}),
    ("advi_mean_field", "step-size memory reset", "rho_omega, s_omega = step_size(grad_omega, s_omega, k, learning_rate)",
     "rho_omega, s_omega = step_size(grad_omega, None, 1, learning_rate)", {REPLAY}),
    ("advi_mean_field", "ignores rng", "rng = np.random.default_rng(rng)", "rng = np.random.default_rng(0)", {RNG}),
    ("advi_full_rank", "same draws every iteration", "eta = rng.standard_normal((n_draws, 3))",
     "eta = np.random.default_rng(1).standard_normal((n_draws, 3))", {REPLAY, RNG}),
    ("advi_full_rank", "returns L transposed", "return mu, L, elbo_trace", "return mu, L.T, elbo_trace",
     {REPLAY, FIT}),
    ("advi_full_rank", "trace of length n_iter + 1", "elbo_trace = np.zeros(n_iter)", "elbo_trace = np.zeros(n_iter + 1)",
     {SHAPES_FR, REPLAY, FIT, RNG}),
    ("elbo_full_rank", "L instead of L^T", "zeta = mu + eta @ L.T", "zeta = mu + eta @ L", {VISIBLE, EXACT_ELBO, HIDDEN}),
    ("elbo_full_rank", "log of a negative diagonal", "np.log(np.abs(np.diag(L)))", "np.log(np.diag(L))",
     {VISIBLE, HIDDEN}),
    # Values right, but autograd cannot differentiate them (the gradients differentiate them).
    ("inverse_transform", "assigns into a copy",
     "theta = np.concatenate([zeta[..., :2], np.exp(zeta[..., 2:])], axis=-1)",
     "theta = np.array(zeta, dtype=float); theta[..., 2] = np.exp(zeta[..., 2])", {DIFFERENTIABLE}),
    ("log_det_jacobian", "float() of every value", "log_det = zeta[..., 2]",
     "log_det = np.reshape(np.array([float(v) for v in np.ravel(zeta[..., 2])]), np.shape(zeta)[:-1])",
     {DIFFERENTIABLE}),
    ("log_joint", "scipy.stats' Gamma density", "log_p = log_likelihood + log_prior_b + log_prior_sigma",
     "log_p = log_likelihood + log_prior_b + __import__('scipy.stats').stats.gamma.logpdf("
     "sigma, prior_sigma_shape, scale=1 / prior_sigma_rate)", {DIFFERENTIABLE}),
    ("log_joint_zeta", "plain numpy's asarray", "log_p = log_joint(inverse_transform(zeta), x, y) + log_det_jacobian(zeta)",
     "log_p = __import__('numpy').asarray(log_joint(inverse_transform(zeta), x, y), dtype=float) + "
     "log_det_jacobian(zeta)", {DIFFERENTIABLE}),       # (the reference's gradients never differentiate it)
    ("elbo_mean_field", "float() of the estimate", "elbo = np.mean(log_joint_zeta(zeta, x, y)) + entropy",
     "elbo = float(np.mean(log_joint_zeta(zeta, x, y)) + entropy)", {DIFFERENTIATED}, AUTOGRAD_GRADIENTS),
    ("elbo_full_rank", "float() of the estimate", "elbo = np.mean(log_joint_zeta(zeta, x, y)) + entropy",
     "elbo = float(np.mean(log_joint_zeta(zeta, x, y)) + entropy)", {DIFFERENTIATED}, AUTOGRAD_GRADIENTS),
    ("grad_elbo_full_rank", "whole (L^-1)^T, upper triangle too", "+ np.diag(1.0 / np.diag(L))",
     "+ np.linalg.inv(L).T", {VISIBLE, FD, UNBIASED, HIDDEN}),
    ("grad_elbo_full_rank", "eta g^T instead of g eta^T", "np.tril(g.T @ eta / eta.shape[0])",
     "np.tril(eta.T @ g / eta.shape[0])", {VISIBLE, FD, UNBIASED, HIDDEN}),
]


def _grade(source, functions, sandboxed: bool = True):
    """The grader's checks of ``functions`` on ``source``: as the CLI runs them (in the sandbox), or
    by the same engine in this process (``sandboxed=False``)."""
    if sandboxed:
        with SandboxExecutor(submission_from_cells([source])) as executor:
            return run_checks(ASSIGNMENT, executor, reference=REFERENCE, only=functions)
    namespace = {"__name__": "__student__"}
    exec(compile(source, "mutant", "exec"), namespace)
    return run_checks(ASSIGNMENT, InProcessExecutor(namespace), reference=REFERENCE, only=functions)


def _in_sandbox(name: str, must_fail=()) -> bool:
    """Whether a mutation is graded in the sandbox: those the differentiability probe must catch
    (``Sandbox.call(differentiate=)`` is the sandbox's own path) and a quarter of the others, chosen
    by name. The sandbox costs three times the grading's own time; the checks' logic is the same in
    both executors, and the sandbox's path is covered by these, the corpus (tests/corpora/advi) and
    the hostile corpus."""
    return bool({DIFFERENTIABLE, DIFFERENTIATED} & set(must_fail)) or zlib.crc32(name.encode()) % 4 == 0


@pytest.mark.parametrize("mutation", MUTATIONS, ids=[f"{m[0]}: {m[1]}" for m in MUTATIONS])
def test_checks_catch_the_bug(mutation):
    function, description, old, new, must_fail, *suffix = mutation
    names = {c.name for c in ASSIGNMENT.checks_for(function)}
    assert must_fail <= names, must_fail - names
    result = _grade(_mutate(function, old, new) + "".join(suffix), [function],
                    sandboxed=_in_sandbox(f"{function}: {description}", must_fail))
    failed = {t.name for t in result.tests if not t.passed}
    assert must_fail <= failed, f"not caught by {must_fail - failed}"
    for t in result.tests:
        if not t.passed:
            assert t.feedback.strip() and "internal error" not in t.feedback, t.feedback


def test_every_check_is_exercised_by_a_mutation():
    covered = {(m[0], name) for m in MUTATIONS for name in m[4]}
    missing = [(c.task, c.name) for c in ASSIGNMENT.checks if (c.task, c.name) not in covered]
    assert not missing


def test_the_reference_passes_everything_in_both_modes():
    result = _grade(SOURCE, None)
    assert result.score == result.max_score == ASSIGNMENT.points(), [t.feedback for t in result.tests if not t.passed]
    namespace = {}
    exec(compile(SOURCE, "reference", "exec"), namespace)
    student_side = run_checks(ASSIGNMENT, InProcessExecutor(namespace), reference=None)
    failed = [(t.function, t.name, t.feedback) for t in student_side.tests if t.status != "skipped" and not t.passed]
    assert not failed


# ----------------------------------------------------------------------------- feedback that teaches
@pytest.mark.parametrize("function, old, new, words", [
    ("step_size", "s = alpha * grad**2 + (1.0 - alpha) * s_prev", "s = (1.0 - alpha) * grad**2 + alpha * s_prev",
     "swapped"),
    ("grad_elbo_mean_field", "* sd + 1.0", "* sd", "entropy's gradient"),
    ("advi_mean_field", "mu = mu + rho_mu * grad_mu", "mu = mu - rho_mu * grad_mu", "against the gradient"),
    ("log_joint_zeta", "log_joint(inverse_transform(zeta), x, y) + log_det_jacobian(zeta)",
     "log_joint(inverse_transform(zeta), x, y)", "log-Jacobian is missing"),
    ("grad_elbo_full_rank", "+ np.diag(1.0 / np.diag(L))", "+ np.tril(np.linalg.inv(L))", "upper triangular"),
])
def test_feedback_names_the_mistake(function, old, new, words):
    result = _grade(_mutate(function, old, new), [function], sandboxed=_in_sandbox(f"{function}: {words}"))
    feedback = "\n".join(t.feedback for t in result.tests if not t.passed)
    assert words in feedback, feedback


# ----------------------------------------------------------------------------- isolation and autograd


def test_gradients_through_the_students_own_functions_are_graded_like_any_other():
    """autograd through stand-ins: the grader falls back to the student's own helpers, transparently."""
    result = _grade(SOURCE + AUTOGRAD_GRADIENTS, ["grad_log_joint_zeta", "grad_elbo_mean_field"])
    assert result.score == result.max_score, [t.feedback for t in result.tests if not t.passed]


def test_a_bug_in_a_differentiated_helper_costs_points_once():
    """A wrong log joint differentiated by autograd: the gradients are right for what was written."""
    source = _mutate("log_joint", "- prior_sigma_rate * sigma", "- 2 * prior_sigma_rate * sigma") + AUTOGRAD_GRADIENTS
    result = _grade(source, ["log_joint", "grad_log_joint_zeta", "grad_elbo_mean_field", "elbo_mean_field"])
    scores = result.function_scores()
    assert scores["log_joint"][0] < scores["log_joint"][1]
    for function in ("grad_log_joint_zeta", "grad_elbo_mean_field", "elbo_mean_field"):
        assert scores[function][0] == scores[function][1], [t.feedback for t in result.tests if not t.passed]


def test_a_wrong_gradient_of_a_wrong_helper_still_fails():
    wrong_gradient = AUTOGRAD_GRADIENTS.replace(
        "    return tuple(_grad(elbo_mean_field, (0, 1))(mu, omega, eta, x, y))",
        "    g_mu, g_omega = _grad(elbo_mean_field, (0, 1))(mu, omega, eta, x, y)\n    return g_mu, g_omega + 0.01")
    assert wrong_gradient != AUTOGRAD_GRADIENTS
    source = _mutate("log_joint", "- prior_sigma_rate * sigma", "- 2 * prior_sigma_rate * sigma") + wrong_gradient
    result = _grade(source, ["grad_elbo_mean_field"])
    failed = {t.name for t in result.tests if not t.passed}
    assert {VISIBLE, FD, HIDDEN} <= failed
    assert "your own" in "\n".join(t.feedback for t in result.tests if not t.passed)


def test_a_loop_that_differentiates_the_elbo_itself_is_told_to_call_the_gradient():
    source = _mutate("advi_mean_field", "grad_mu, grad_omega = grad_elbo_mean_field(mu, omega, eta, x, y)",
                     "grad_mu, grad_omega = __import__('autograd').grad(elbo_mean_field, (0, 1))(mu, omega, eta, x, y)")
    result = _grade(source, ["advi_mean_field"])
    assert "grad_elbo_mean_field" in result.tests[1].feedback and not result.tests[1].passed


# ----------------------------------------------------------------------------- the replay
OTHER_DRAWS = '''
def advi_mean_field(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, omega_init=None):
    gen = np.random.default_rng(rng)
    mu = np.zeros(3) if mu_init is None else np.array(mu_init, dtype=float)
    omega = np.zeros(3) if omega_init is None else np.array(omega_init, dtype=float)
    trace, states = [], [None, None]
    for k in range(1, n_iter + 1):
        eta = gen.normal(0.0, 1.0, size=(3, n_draws)).T          # another method, another layout
        g_mu, g_omega = grad_elbo_mean_field(mu, omega, eta, x, y)
        trace.append(elbo_mean_field(mu, omega, gen.standard_normal((n_draws, 3)), x, y))  # its own draws
        (r_mu, states[0]), (r_omega, states[1]) = step_size(g_mu, states[0], k, learning_rate), \\
            step_size(g_omega, states[1], k, learning_rate)
        mu += r_mu * g_mu                                           # in place: the recorder copied
        omega += r_omega * g_omega
    return mu, omega, np.array(trace)
'''


def test_replay_accepts_a_correct_loop_that_draws_differently():
    result = _grade(SOURCE + OTHER_DRAWS, ["advi_mean_field"])
    assert result.score == result.max_score, [t.feedback for t in result.tests if not t.passed]
    namespace = {}
    exec(compile(SOURCE + OTHER_DRAWS, "other", "exec"), namespace)
    student_side = run_checks(ASSIGNMENT, InProcessExecutor(namespace), only=["advi_mean_field"])
    assert all(t.passed for t in student_side.tests), [t.feedback for t in student_side.tests if not t.passed]


def test_replay_rejects_draws_that_are_not_standard_normal():
    source = _mutate("advi_mean_field", "eta = rng.standard_normal((n_draws, 3))",
                     "eta = rng.random((n_draws, 3))")
    result = _grade(source, ["advi_mean_field"])
    replay = next(t for t in result.tests if t.name == REPLAY)
    assert not replay.passed and "standard normal" in replay.feedback


# ----------------------------------------------------------------------------- grader's own numbers
@pytest.mark.slow
@pytest.mark.parametrize("family", ["mean_field", "full_rank"])
def test_fit_tolerances_hold_for_many_seeds(family):
    """The fit check accepts every seed of a correct loop with a margin (300 seeds were checked once; 20 here)."""
    d = data.load()
    x, y = d["x"], d["y"]
    answers = theory.assignment_answers()
    post, best = answers["posterior"], answers[family]
    sd = np.sqrt(np.diag(post["cov_zeta"]))
    loop = REFERENCE.advi_mean_field if family == "mean_field" else REFERENCE.advi_full_rank
    worst = {}
    for seed in range(20):
        mu, second, _ = loop(x, y, rng=seed, mu_init=checks_loops.MU_WARM, **checks_loops.FIT_SETTINGS)
        ratios = {"mu": np.max(np.abs(mu - post["mean_zeta"]) / sd) / checks_loops.MU_TOL_SD}
        if family == "mean_field":
            ratios["omega"] = np.max(np.abs(second - best["omega"])) / checks_loops.OMEGA_TOL
            gap = best["elbo"] - theory.exact_elbo_mean_field(mu, second, x, y)
        else:
            cov = second @ second.T
            corr = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
            ratios["corr"] = abs(corr - post["corr_b"]) / checks_loops.CORR_TOL
            ratios["cov_b"] = (np.abs(cov[:2, :2] - post["cov_b"]).max() / np.abs(post["cov_b"]).max()
                               / checks_loops.COV_B_RTOL)
            gap = best["elbo"] - theory.exact_elbo_full_rank(mu, second, x, y)
        ratios["gap"] = gap / checks_loops.GAP_TOL[family]
        for k, v in ratios.items():
            worst[k] = max(worst.get(k, 0.0), v)
    assert max(worst.values()) < 0.6, worst


def test_visible_probe_points_make_the_unbiasedness_check_powerful():
    """At the probe points a missing entropy gradient is far more than 5 standard errors away."""
    from autograder.assignments.advi import checks_elbo as ce
    d = data.load()
    eta = np.random.default_rng(0).standard_normal((ce.BATCHES * ce.BATCH_SIZE, 3))
    for family in (ce.MEAN_FIELD, ce.FULL_RANK):
        mu, second = family.probe
        _, g_second = family.gradient_terms(mu, second, eta, d["x"], d["y"])
        entropy = 1.0 if family.name == "mean_field" else 1.0 / np.diag(second)
        standard_error = g_second.std(axis=0, ddof=1) / np.sqrt(len(eta))
        se_diag = standard_error if family.name == "mean_field" else np.diag(standard_error)
        assert np.all(np.abs(entropy) / se_diag > 20 * ce.Z_LIMIT / 5)


def test_replay_rejects_noise_with_the_right_mean_and_variance_but_the_wrong_shape():
    # Uniform on [-sqrt(3), sqrt(3)]: mean 0, variance 1, not normal.
    source = _mutate("advi_mean_field", "eta = rng.standard_normal((n_draws, 3))",
                     "eta = np.sqrt(3.0) * (2.0 * rng.random((n_draws, 3)) - 1.0)")
    result = _grade(source, ["advi_mean_field"])
    replay = next(t for t in result.tests if t.name == REPLAY)
    assert not replay.passed and "standard normal" in replay.feedback


# ----------------------------------------------------------------------------- checks that cannot fail
def _stubbed(function: str, body: str) -> str:
    """The reference with ``function``'s body replaced by ``body`` (its signature kept)."""
    start = SOURCE.index(f"def {function}(")
    header_end = SOURCE.index(":\n", SOURCE.index(")", start)) + 2
    end = SOURCE.find("\ndef ", start + 1)
    end = len(SOURCE) if end < 0 else end
    return SOURCE[:header_end] + body + "\n" + SOURCE[end:]


STUBS = {
    "inverse_transform": "    return np.zeros_like(zeta)",
    "log_det_jacobian": "    return np.zeros(np.shape(zeta)[:-1])",
    "log_joint": "    return np.zeros(np.shape(theta)[:-1])",
    "log_joint_zeta": "    return np.zeros(np.shape(zeta)[:-1])",
    "grad_log_joint_zeta": "    return np.zeros_like(zeta)",
    "elbo_mean_field": "    return 0.0",
    "grad_elbo_mean_field": "    return np.zeros(3), np.zeros(3)",
    "step_size": "    return np.zeros_like(grad), np.zeros_like(grad)",
    "advi_mean_field": "    return np.zeros(3), np.zeros(3), np.zeros(n_iter)",
    "elbo_full_rank": "    return 0.0",
    "grad_elbo_full_rank": "    return np.zeros(3), np.zeros((3, 3))",
    "advi_full_rank": "    return np.zeros(3), np.eye(3), np.zeros(n_iter)",
}


@pytest.mark.parametrize("body", ["    raise NotImplementedError()", "    return None", "stub"],
                         ids=["not implemented", "returns None", "returns zeros of the right shapes"])
@pytest.mark.parametrize("function", list(STUBS))
def test_no_check_passes_an_unimplemented_function(function, body):
    """Issue 10: a skeleton, a function without a return value, or one returning zeros of the right
    shapes fails every check of its task (in the grader, reference included, and student-side)."""
    source = _stubbed(function, STUBS[function] if body == "stub" else body)
    result = _grade(source, [function])
    passed = [t.name for t in result.tests if t.passed]
    assert not passed, f"{function} ({body.strip()}) passes {passed}"
    namespace = {}
    exec(compile(source, "stub", "exec"), namespace)
    student_side = run_checks(ASSIGNMENT, InProcessExecutor(namespace), reference=None, only=[function])
    assert not [t.name for t in student_side.tests if t.passed]


# ----------------------------------------------------------------------------- differentiable, whatever the gradients
# Gradients without autograd (appended to a reference): the log joint's gradient derived by hand, the ELBO
# gradients the reference's formulas through it. Nothing the student's gradients do differentiates a model
# function with autograd, so nothing of theirs hands the stand-ins autograd's boxes.
HAND_GRADIENTS = '''
import numpy as _onp

def grad_log_joint_zeta(zeta, x, y):
    zeta = _onp.asarray(zeta, dtype=float)
    b0, b1, sigma = zeta[:, 0], zeta[:, 1], _onp.exp(zeta[:, 2])
    residual = y - b0[:, None] - b1[:, None] * x
    d_b0 = _onp.sum(residual, axis=-1) / sigma**2 - b0 / 10.0**2
    d_b1 = _onp.sum(residual * x, axis=-1) / sigma**2 - b1 / 10.0**2
    d_sigma = -len(x) / sigma + _onp.sum(residual**2, axis=-1) / sigma**3 + (2.0 - 1.0) / sigma - 0.5
    return _onp.stack([d_b0, d_b1, d_sigma * sigma + 1.0], axis=-1)
'''
NOT_DIFFERENTIABLE = [m for m in MUTATIONS if m[4] == {DIFFERENTIABLE}]


def test_hand_derived_gradients_with_differentiable_functions_get_full_marks():
    """A correct solution whose gradients use no autograd keeps "autograd can differentiate it" (its model
    functions are written with autograd.numpy), in the grader and student-side; so does the reference, whose
    gradients differentiate them (test_the_reference_passes_everything_in_both_modes)."""
    functions = ["inverse_transform", "log_det_jacobian", "log_joint", "log_joint_zeta", "grad_log_joint_zeta",
                 "grad_elbo_mean_field"]
    source = SOURCE + HAND_GRADIENTS
    result = _grade(source, functions)
    assert result.score == result.max_score, [t.feedback for t in result.tests if not t.passed]
    assert {t.function for t in result.tests if t.name == DIFFERENTIABLE} == set(functions[:4])
    namespace = {}
    exec(compile(source, "hand", "exec"), namespace)
    student_side = run_checks(ASSIGNMENT, InProcessExecutor(namespace), only=functions)
    assert all(t.passed for t in student_side.tests if t.status != "skipped")


@pytest.mark.parametrize("mutation", NOT_DIFFERENTIABLE, ids=[f"{m[0]}: {m[1]}" for m in NOT_DIFFERENTIABLE])
def test_a_non_differentiable_model_function_loses_its_point_whatever_the_gradients(mutation):
    """Issue 10 (tests/corpora/hostile/advi_numerical_gradients.py): the check probes the model's functions
    with autograd even when the student's gradients never differentiate them (hand-derived here; central
    differences in the hostile file). It used to pass unprobed, so it could not fail for such a student.
    Right values first: only that point is lost."""
    function, description, old, new, must_fail, *suffix = mutation
    result = _grade(_mutate(function, old, new) + HAND_GRADIENTS, [function, "grad_log_joint_zeta"])
    failed = {(t.function, t.name) for t in result.tests if not t.passed}
    assert failed == {(function, DIFFERENTIABLE)}, [t.feedback for t in result.tests if not t.passed]
    feedback = next(t.feedback for t in result.tests if not t.passed)
    assert "autograd" in feedback and function in feedback, feedback
    namespace = {}
    exec(compile(_mutate(function, old, new) + HAND_GRADIENTS, "hand", "exec"), namespace)
    student_side = run_checks(ASSIGNMENT, InProcessExecutor(namespace), only=[function])
    assert {t.name for t in student_side.tests if t.status == "failed"} == {DIFFERENTIABLE}


# ----------------------------------------------------------------------------- autograd one point at a time
PER_POINT = '''
from autograd import grad as _grad

def grad_log_joint_zeta(zeta, x, y):
    return np.stack([_grad(log_joint_zeta)(point, x, y) for point in zeta])
'''


def test_the_reference_can_be_differentiated_one_point_at_a_time_and_in_batches():
    """Issue 11, item 3: per-point and batched autograd of the reference's functions agree, at a
    single (3,) point too (the reference avoids indexing single numbers with None)."""
    import autograd
    d = data.load()
    zeta = np.array([[5.3, -3.5, 0.9], [4.8, -3.2, 1.1]])
    batched = REFERENCE.grad_log_joint_zeta(zeta, d["x"], d["y"])
    for row, expected in zip(zeta, batched):
        np.testing.assert_allclose(autograd.grad(REFERENCE.log_joint_zeta)(row, d["x"], d["y"]), expected, rtol=1e-12)
        np.testing.assert_allclose(REFERENCE.grad_log_joint_zeta(row, d["x"], d["y"]), expected, rtol=1e-12)
        theta = REFERENCE.inverse_transform(row)
        autograd.grad(REFERENCE.log_joint)(theta, d["x"], d["y"])     # no TypeError at one point


def test_a_per_point_autograd_gradient_gets_full_marks_in_the_sandbox_and_student_side():
    source = SOURCE + PER_POINT
    result = _grade(source, ["grad_log_joint_zeta", "log_joint", "grad_elbo_mean_field"])
    assert result.score == result.max_score, [t.feedback for t in result.tests if not t.passed]
    namespace = {}
    exec(compile(source, "per point", "exec"), namespace)
    student_side = run_checks(ASSIGNMENT, InProcessExecutor(namespace), only=["grad_log_joint_zeta", "log_joint"])
    assert all(t.passed for t in student_side.tests if t.status != "skipped")


def test_autograds_bug_with_single_numbers_indexed_by_none_is_still_there():
    """The notebook (Step 2) tells students to write np.expand_dims(sigma, -1) rather than
    sigma[..., None] because autograd raises "first operand must be array" when it differentiates
    the latter at one point (autograd 1.5 to 1.9.1 with NumPy 1.26 and 2.x; no version avoids it).
    When this test fails, autograd has fixed its bug: update Step 2 and Step 3 of the notebook."""
    import autograd
    import autograd.numpy as anp

    def f(theta):
        sigma = theta[..., 2]
        return anp.sum(sigma[..., None] * anp.ones(4)) + anp.log(sigma) + sigma

    with pytest.raises(TypeError, match="first operand must be array"):
        autograd.grad(f)(np.array([1.0, 2.0, 3.0]))
    batch = autograd.elementwise_grad(lambda t: anp.sum(t[..., 2][..., None] * anp.ones(4), axis=-1)
                                      + anp.log(t[..., 2]) + t[..., 2])(np.ones((2, 3)))
    np.testing.assert_allclose(batch[:, 2], 4.0 + 1.0 + 1.0)      # on a batch the same code is fine


def test_per_point_autograd_through_none_indexing_is_explained():
    source = SOURCE.replace("np.expand_dims(b0, -1) - np.expand_dims(b1, -1) * x) / np.expand_dims(sigma, -1)",
                            "b0[..., None] - b1[..., None] * x) / sigma[..., None]") + PER_POINT
    assert "sigma[..., None]" in source
    result = _grade(source, ["grad_log_joint_zeta", "log_joint"])
    scores = result.function_scores()
    assert scores["log_joint"][0] == scores["log_joint"][1]
    assert scores["grad_log_joint_zeta"][0] < scores["grad_log_joint_zeta"][1]
    assert "np.expand_dims" in "\n".join(t.feedback for t in result.tests if not t.passed)


# ----------------------------------------------------------------------------- fast answers
ENDLESS = '''
def advi_mean_field(x, y, n_iter=1000, n_draws=10, learning_rate=0.4, rng=0, mu_init=None, omega_init=None):
    import itertools
    rng = np.random.default_rng(rng)
    mu = np.zeros(3) if mu_init is None else np.array(mu_init, dtype=float)
    omega = np.zeros(3) if omega_init is None else np.array(omega_init, dtype=float)
    s_mu = s_omega = None
    trace = []
    for k in itertools.count(1):             # never stops
        eta = rng.standard_normal((n_draws, 3))
        trace.append(elbo_mean_field(mu, omega, eta, x, y))
        g_mu, g_omega = grad_elbo_mean_field(mu, omega, eta, x, y)
        rho_mu, s_mu = step_size(g_mu, s_mu, k, learning_rate)
        rho_omega, s_omega = step_size(g_omega, s_omega, k, learning_rate)
        mu, omega = mu + rho_mu * g_mu, omega + rho_omega * g_omega
    return mu, omega, np.array(trace)
'''


def test_a_loop_that_never_stops_is_stopped_at_its_verdict():
    """Each loop check stops the student's loop as soon as it has gone past n_iter (AbortCall), so
    the whole function is judged in seconds, not after four time-outs."""
    import time
    started = time.perf_counter()
    result = _grade(SOURCE + ENDLESS, ["advi_mean_field"])
    grading = time.perf_counter() - started
    assert not any(t.passed for t in result.tests)
    assert all("more than" in t.feedback and not t.timed_out for t in result.tests), [t.feedback for t in result.tests]
    namespace = {}
    exec(compile(SOURCE + ENDLESS, "endless", "exec"), namespace)
    started = time.perf_counter()
    student_side = run_checks(ASSIGNMENT, InProcessExecutor(namespace), only=["advi_mean_field"])
    assert not any(t.passed for t in student_side.tests)
    assert all("more than" in t.feedback for t in student_side.tests), [t.feedback for t in student_side.tests]
    assert time.perf_counter() - started < 30 and grading < 60      # (generous: the machine is shared)


def test_every_check_a_student_runs_has_hints_of_its_own():
    """Hints follow the check that failed: every student-side check has hints."""
    missing = [(c.task, c.name) for c in ASSIGNMENT.checks if not c.needs_reference and not c.hints]
    assert not missing


@pytest.mark.parametrize("function, body", [
    ("grad_log_joint_zeta", "    return np.full(np.shape(zeta), np.nan)"),
    ("grad_elbo_full_rank", "    return np.full(3, np.nan), np.full((3, 3), np.nan)"),
    ("log_joint", "    return np.full(np.shape(theta)[:-1], -np.inf)"),
    ("advi_mean_field", "    return np.full(3, np.nan), np.full(3, np.inf), np.full(n_iter, np.nan)"),
])
def test_non_finite_results_are_explained_without_a_warning(function, body, recwarn):
    """NaN and inf from the student reach no comparison that warns in the grader ("One of rtol or
    atol is not valid" zeroes an nbgrader cell); the message says what kind of value it was."""
    import warnings
    source = _stubbed(function, body)
    namespace = {}
    exec(compile(source, "non-finite", "exec"), namespace)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for result in (_grade(source, [function]),
                       run_checks(ASSIGNMENT, InProcessExecutor(namespace), reference=None, only=[function])):
            failed = [t for t in result.tests if t.status == "failed"]
            assert failed and all("internal error" not in t.feedback for t in failed), [t.feedback for t in failed]
            assert any(any(word in t.feedback for word in ("NaN", "nan", "inf")) for t in failed)


# A model function that behaves only while nobody differentiates it: it notices autograd's boxes (not an
# ndarray) and ends its call process. Its probe used to give "no verdict" for a crash, so the point stayed.
ENDS_UNDER_AUTOGRAD = '''
import os as _os
import numpy as _plain_numpy
_differentiable_inverse_transform = inverse_transform

def inverse_transform(zeta):
    if not isinstance(zeta, _plain_numpy.ndarray):
        _os._exit(0)
    return _differentiable_inverse_transform(zeta)
'''


def test_a_model_function_that_ends_its_call_under_autograd_loses_its_point():
    result = _grade(SOURCE + ENDS_UNDER_AUTOGRAD + HAND_GRADIENTS, ["inverse_transform"])
    failed = [t for t in result.tests if not t.passed]
    assert [t.name for t in failed] == [DIFFERENTIABLE], [(t.name, t.feedback) for t in failed]
    assert "with autograd ended the call" in failed[0].feedback, failed[0].feedback
