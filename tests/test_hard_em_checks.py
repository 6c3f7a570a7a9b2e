"""Every hard_em check is seen to fail on a wrong implementation, and to pass on the reference.

Each mutation edits one line of the reference module (a realistic bug) and names the checks that
must catch it. The corpus in tests/corpora/hard_em proves that a bug costs points only where it
is. The last tests pin the speed of the student-side checks and the grader's own data.
"""

import linecache

import numpy as np
import pytest

from autograder.assignments import get_assignment
from autograder.assignments.hard_em import fixtures, theory
from autograder.engine import run_checks
from autograder.engine.executors import InProcessExecutor, SandboxExecutor
from autograder.engine.reference import load_reference
from autograder.loading import submission_from_cells
from conftest import ROOT

ASSIGNMENT = get_assignment("hard_em")
REFERENCE = load_reference("hard_em")
SOURCE = (ROOT / "solutions" / "hard_em" / "__init__.py").read_text()
LOOPS = (ROOT / "tests" / "corpora" / "hard_em" / "correct" / "a_loops.py").read_text()


def _mutate(function: str, old: str, new: str) -> str:
    """Replace ``old`` by ``new`` inside ``function``'s definition only."""
    start = SOURCE.index(f"def {function}(")
    end = SOURCE.find("\ndef ", start + 1)
    end = len(SOURCE) if end < 0 else end
    body = SOURCE[start:end]
    assert body.count(old) == 1, f"{old!r} is not once in {function}"
    return SOURCE[:start] + body.replace(old, new, 1) + SOURCE[end:]


VISIBLE, HIDDEN = "visible fixture", "hidden random inputs match the reference"
HIDDEN_BOTH = "hidden random inputs match the reference (soft and hard)"
SOFT_VISIBLE, HARD_VISIBLE = "soft: visible fixture", "hard: visible fixture"
PIXELS = "matches the Gaussian log-density pixel by pixel"
SOFT_TIGHT = "soft: equals the log-likelihood when q is the exact posterior"
HARD_CHOSEN = "hard: the log joint probability at the chosen positions (a = 0 elsewhere)"
SOFT_SHIFT = "soft: unchanged when an image's log-probabilities all shift by a constant"
HARD_ARGMAX = "hard: one-hot at the most probable position"
HARD_AVERAGES, HARD_MAXIMISES = "hard: averages over the chosen windows", "hard: maximises the bound for the chosen positions"
HARD_COLUMN = "hard: a background column that no shot shows stays finite"
PASSES_FLAG, HARD_MONOTONE = "passes hard_EM on to every step", "hard: the bound never decreases"
FIXED_POINT = "hard: stops at a fixed point"
HARD_SMALL = "hard: small camera shots: the same result as the reference's run"
SPH_POSTERIOR, SPH_HARD = "soft: the exact posterior of the components", "hard: one-hot at the most probable component"
TINY = "tiny s2: finite, and the nearest mean wins (the k-means limit)"
Q_MAX, ONE_HOT = "maximises the expected complete-data log-likelihood", "one-hot gamma: cluster sizes, cluster means, pooled variance"
TOLERANCE, EM_MAX_ITER = "stops when the relative improvement is below tolerance", "runs at most max_iter iterations"
FIXED, EMPTY, MAX_ITER = ("returns a fixed point: nearest centres, centres at the means", "an empty cluster keeps its centre",
                          "stops after max_iter updates")

MUTATIONS = [
    # (function, description, old, new, checks that must fail)
    ("calculate_log_probability", "constant without log(2 pi) / 2",
     "ll = -H * W * (np.log(s) + 0.5 * np.log(2.0 * np.pi))", "ll = -H * W * np.log(s)", {VISIBLE, PIXELS, HIDDEN}),
    ("calculate_lower_bound", "no entropy", "log_q = np.log(q, out=np.zeros(q.shape), where=possible)",
     "log_q = np.zeros(q.shape)", {SOFT_VISIBLE, SOFT_TIGHT, HIDDEN_BOTH}),
    ("calculate_lower_bound", "0 * log(0) where a hard M-step left a = 0",
     "L = float(np.sum(q * np.where(possible, log_joint - log_q, 0.0)))", "L = float(np.sum(q * (log_joint - log_q)))",
     {HARD_VISIBLE, HARD_CHOSEN, HIDDEN_BOTH}),
    ("run_e_step", "no max trick", "joint = np.exp(log_joint - log_joint.max(axis=0, keepdims=True))",
     "joint = np.exp(log_joint)", {SOFT_VISIBLE, SOFT_SHIFT, HIDDEN_BOTH}),
    ("run_e_step", "hard: the least probable position", "q[np.argmax(log_joint, axis=0), np.arange(log_joint.shape[1])]",
     "q[np.argmin(log_joint, axis=0), np.arange(log_joint.shape[1])]", {HARD_VISIBLE, HARD_ARGMAX, HIDDEN_BOTH}),
    ("run_e_step", "hard: the prior forgotten", "q[np.argmax(log_joint, axis=0), np.arange(log_joint.shape[1])]",
     "q[np.argmax(calculate_log_probability(X, F, B, s), axis=0), np.arange(log_joint.shape[1])]", {HARD_ARGMAX}),
    ("run_m_step", "background divided by K", "B[:, seen] /= background_weight[seen]", "B[:, seen] /= K",
     {SOFT_VISIBLE, HARD_AVERAGES, HARD_COLUMN, HIDDEN_BOTH}),   # (the hard fixture: every column seen twice)
    ("run_m_step", "NaN where no shot shows the background", "B[:, ~seen] = X[:, ~seen, :].mean(axis=2)",
     "B[:, ~seen] = np.nan", {HARD_VISIBLE, HARD_COLUMN}),
    ("run_m_step", "s without the square root", "s = float(np.sqrt(max(expected_error, 0.0) / (H * W * total)))",
     "s = float(max(expected_error, 0.0) / (H * W * total))",
     {SOFT_VISIBLE, HARD_VISIBLE, HARD_AVERAGES, HARD_MAXIMISES, HIDDEN_BOTH}),
    ("run_EM", "hard_EM not passed to the M-step", "F, B, s, a = run_m_step(X, q, w, hard_EM)",
     "F, B, s, a = run_m_step(X, q, w)", {PASSES_FLAG}),
    ("run_EM", "hard_EM not passed to the E-step in the loop", "        q = run_e_step(X, F, B, s, a, hard_EM)",
     "        q = run_e_step(X, F, B, s, a)", {PASSES_FLAG, HARD_SMALL}),
    ("run_EM", "ignores the tolerance", "if LL[-1] - LL[-2] < tolerance * abs(LL[-2]):", "if False:",
     {SOFT_VISIBLE, HARD_VISIBLE, FIXED_POINT, HARD_SMALL, TOLERANCE}),
    ("run_EM", "one iteration too many", "for _ in range(max_iter):", "for _ in range(max_iter + 1):", {EM_MAX_ITER}),
    ("run_EM", "E-step at twice the noise level", "        q = run_e_step(X, F, B, s, a, hard_EM)",
     "        q = run_e_step(X, F, B, 2 * s, a, hard_EM)", {HARD_MONOTONE}),
    ("e_step_spherical", "no max trick", "gamma = np.exp(log_weights - log_weights.max(axis=1, keepdims=True))",
     "gamma = np.exp(log_weights)", {TINY}),
    ("e_step_spherical", "hard: the nearest mean, whatever the weights",
     "gamma[np.arange(len(X)), np.argmax(log_weights, axis=1)] = 1.0",
     "gamma[np.arange(len(X)), np.argmin(squared, axis=1)] = 1.0", {VISIBLE, SPH_HARD, HIDDEN}),
    ("e_step_spherical", "weights forgotten", "log_weights = log_pi[None, :] - 0.5", "log_weights = - 0.5",
     {VISIBLE, SPH_POSTERIOR, HIDDEN}),
    ("m_step_spherical", "s2 not per dimension", "s2 = float(np.sum(gamma * squared) / (N * D))",
     "s2 = float(np.sum(gamma * squared) / N)", {VISIBLE, Q_MAX, ONE_HOT, HIDDEN}),
    ("m_step_spherical", "E[x^2] - mu^2", "squared = ((X[:, None, :] - mu[None, :, :]) ** 2).sum(axis=2)",
     "squared = (X ** 2).sum(axis=1)[:, None] - 2 * X @ mu.T + (mu ** 2).sum(axis=1)[None, :]", {HIDDEN}),
    ("kmeans", "an empty cluster gets the mean of nothing", "mu[has_points] = sums[has_points] / counts[has_points, None]",
     "mu = sums / counts[:, None]", {EMPTY}),
    ("kmeans", "one iteration too many", "for _ in range(max_iter):", "for _ in range(max_iter + 1):", {MAX_ITER}),
    ("kmeans", "stops after the first update", "if labels is not None and np.array_equal(new_labels, labels):",
     "if labels is not None:", {VISIBLE, FIXED, HIDDEN}),
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


def _namespace(source: str, name: str) -> dict:
    namespace = {"__name__": "__student__"}
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)
    exec(compile(source, name, "exec"), namespace)
    return namespace


def test_the_reference_passes_everything_in_both_modes():
    with SandboxExecutor(submission_from_cells([SOURCE])) as executor:
        result = run_checks(ASSIGNMENT, executor, reference=REFERENCE)
    assert result.score == result.max_score == ASSIGNMENT.points(), [t.feedback for t in result.tests if not t.passed]
    student_side = run_checks(ASSIGNMENT, InProcessExecutor(_namespace(SOURCE, "<reference>")), reference=None)
    assert all(t.passed for t in student_side.tests if t.status != "skipped")


def test_student_checks_pass_loops():
    namespace = _namespace(LOOPS, "<loops>")
    run_checks(ASSIGNMENT, InProcessExecutor(namespace), reference=None, only=["calculate_log_probability"])
    for task in ASSIGNMENT.tasks:
        result = run_checks(ASSIGNMENT, InProcessExecutor(namespace), reference=None, only=[task.name])
        assert all(t.passed for t in result.tests if t.status != "skipped"), task.name


# ----------------------------------------------------------------------------- the grader's own data
def test_hard_em_on_small_shots_reaches_a_fixed_point_quickly():
    from autograder.assignments.prankster.fixtures import realistic
    shots = realistic(K=60, small=True)
    *_, LL = REFERENCE.run_EM(shots["X"], shots["w"], tolerance=1e-12, max_iter=40, hard_EM=True)
    assert len(LL) - 2 < 40 and LL[-2] == LL[-3]


def test_the_visible_k_means_run_converges_and_has_no_empty_cluster():
    g = fixtures.gmm_sample()
    mu, labels = REFERENCE.kmeans(g["data"], g["mu0"])
    assert np.array_equal(labels, theory.nearest(g["data"], mu)) and len(set(labels.tolist())) == 3
    mu_theory, labels_theory = theory.lloyd(g["data"], g["mu0"])
    assert np.array_equal(labels, labels_theory) and np.allclose(mu, mu_theory, rtol=1e-12)


def test_theory_agrees_with_the_reference():
    rng = np.random.default_rng(0)
    X, (pi, mu, s2) = theory.random_mixture(rng, 50, 3, 4)
    np.testing.assert_allclose(theory.posterior(X, pi, mu, s2), REFERENCE.e_step_spherical(X, pi, mu, s2),
                               rtol=1e-10, atol=1e-15)
    gamma = theory.random_responsibilities(rng, 50, 4)
    for ours, theirs in zip(theory.m_step(X, gamma), REFERENCE.m_step_spherical(X, gamma)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


# ----------------------------------------------------------------------------- what the notebook says
def _notebook():
    import nbformat
    return nbformat.read(ROOT / "solutions" / "hard_em" / "hard_em.ipynb", 4)


def _markdown() -> str:
    return "\n".join(c.source for c in _notebook().cells if c.cell_type == "markdown")


def test_the_notebook_states_the_fixtures_expected_values():
    """The numbers written next to each task agree with the stored expected values."""
    text, v = _markdown(), fixtures.visible()

    def rows(array, fmt):
        return "[" + ", ".join("[" + ", ".join(fmt(x) for x in row) + "]" for row in np.atleast_2d(array)) + "]"

    short = lambda x: f"{x:.4f}".rstrip("0").rstrip(".")  # noqa: E731
    assert rows(v["hard_q"], lambda x: f"{x:.0f}") == "[[1, 1], [0, 0], [0, 0]]" and "`[[1, 1], [0, 0], [0, 0]]`" in text
    assert f"`{float(v['hard_bound']):.4f}`" in text
    assert f"`{rows(v['hard_F'], short)}`" in text and f"`{rows(v['hard_B'], short)}`" in text
    assert f"`{short(float(v['hard_s']))}`" in text
    assert "`[" + ", ".join(short(x) for x in v["hard_a"]) + "]`" in text
    assert "`[" + ", ".join(f"{x:.4f}" for x in v["hard_em_LL"]) + "]`" in text
    assert f"stops after {len(v['hard_em_LL']) - 2} iterations" in text
    assert f"`{rows(v['hard_em_F'], short)}`" in text and "`[" + ", ".join(short(x) for x in v["hard_em_a"]) + "]`" in text
    assert "`[" + ", ".join(f"{x:.5f}" for x in v["gamma_soft"][0]) + "]`" in text
    assert "`[" + ", ".join(f"{x:.4f}" for x in v["gamma_soft"].sum(axis=0)) + "]`" in text
    assert "`[" + ", ".join(f"{x:.0f}" for x in v["gamma_hard"].sum(axis=0)) + "]`" in text
    assert "`[" + ", ".join(f"{x:.5f}" for x in v["pi1"]) + "]`" in text
    assert f"`{rows(v['mu1'], lambda x: f'{x:.5f}')}`" in text and f"`{float(v['s2_1']):.5f}`" in text
    assert f"`{rows(v['kmeans_mu'], short)}`" in text
    counts = np.bincount(v["kmeans_labels"].astype(int))
    assert ", ".join(str(n) for n in counts[:-1]) + f" and {counts[-1]} points" in text
    g = fixtures.gmm_sample()
    updates = next(m for m in range(1, 100) if np.array_equal(theory.lloyd(g["data"], g["mu0"], m)[1],
                                                              theory.lloyd(g["data"], g["mu0"], m + 1)[1]))
    assert f"stops after {updates} updates" in text
    far = REFERENCE.m_step_spherical(g["data"] + fixtures.FAR_SHIFT, v["gamma_soft"])
    assert far[2] == pytest.approx(float(v["s2_1"]), rel=1e-12)
    assert "`Xg + [" + ", ".join(f"{x:.0e}".replace("+0", "") for x in fixtures.FAR_SHIFT) + "]`" in text


def test_the_notebook_s2_claims_are_what_its_mixture_cell_computes():
    """"0.95 against 0.99" and "2.59" in the text are the s2 of the notebook's own mixture runs."""
    import re
    cell = next(c.source for c in _notebook().cells if c.cell_type == "code" and "def mixture_em" in c.source)
    namespace = {"np": np, "e_step_spherical": REFERENCE.e_step_spherical, "m_step_spherical": REFERENCE.m_step_spherical}
    exec(cell.split("\n\n\nfig, axes")[0], namespace)
    g = fixtures.gmm_sample()
    s2 = {label: namespace["mixture_em"](g["data"], g["mu0"], 4.0, hard, learn)[2]
          for label, hard, learn in (("EM", False, True), ("hard", True, True), ("hard equal", True, False))}
    text = _markdown()
    claim = re.search(r"smaller \$s\^2\$ than EM \((\d\.\d\d) against (\d\.\d\d)\).*?larger instead \((\d\.\d\d)\)", text,
                      re.S)
    assert claim, "the notebook no longer compares the mixture runs' s2"
    assert [float(x) for x in claim.groups()] == [round(s2["hard equal"], 2), round(s2["EM"], 2), round(s2["hard"], 2)]
    assert s2["hard equal"] < s2["EM"] < s2["hard"]
