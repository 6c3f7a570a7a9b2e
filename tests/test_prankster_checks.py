"""Every prankster check is seen to fail on a wrong implementation, and to pass on the reference.

Each mutation edits one line of the reference module (a realistic bug) and names the checks that
must catch it. Functions other than the mutated one are not graded here: the corpus in
tests/corpora/prankster proves that a bug costs points only where it is. The last tests pin the
grader's own data and the speed promise of the student-side checks.
"""

import linecache
import re

import nbformat
import numpy as np
import pytest

from autograder.assignments import get_assignment
from autograder.assignments.prankster import fixtures, theory, watching
from autograder.engine import run_checks
from autograder.engine.executors import InProcessExecutor, SandboxExecutor
from autograder.engine.reference import load_reference
from autograder.loading import submission_from_cells
from conftest import ROOT

ASSIGNMENT = get_assignment("prankster")
REFERENCE = load_reference("prankster")
SOURCE = (ROOT / "solutions" / "prankster" / "__init__.py").read_text()
LOOPS = (ROOT / "tests" / "corpora" / "prankster" / "correct" / "a_loop_per_position.py").read_text()


def _mutate(function: str, old: str, new: str, source: str = SOURCE) -> str:
    """Replace ``old`` by ``new`` inside ``function``'s definition only."""
    start = source.index(f"def {function}(")
    end = source.find("\ndef ", start + 1)
    end = len(source) if end < 0 else end
    body = source[start:end]
    assert body.count(old) == 1, f"{old!r} is not once in {function}"
    return source[:start] + body.replace(old, new, 1) + source[end:]


VISIBLE, HIDDEN = "visible fixture", "hidden random inputs match the reference"
PIXELS = "matches the Gaussian log-density pixel by pixel"
REALISTIC_LL = "realistic shots: 100 x 200 pixels, log-probabilities near -1e5"
TIGHT, BELOW, ZEROS = ("equals the log-likelihood when q is the exact posterior", "never exceeds the log-likelihood",
                       "zero probabilities: 0 log 0 = 0, also where a = 0")
COLUMNS, POSTERIOR = "columns are probability distributions", "equals the exact posterior of the positions"
SHIFT = "unchanged when an image's log-probabilities all shift by a constant"
REALISTIC_Q = "realistic shots: log-probabilities near -1e5"
MAXIMISES = "maximises the bound for a fixed q"
EXACT = "noise-free shots at known positions: F and B come back exactly, s = 0"
HIDDEN_COLUMN = "a background column hidden in every image stays finite"
REALISTIC_M = "realistic shots and posterior match the reference"
RECORDS = "LL: the bound at the start, after every iteration and after the last E-step"
MONOTONE, TOLERANCE = "the bound never decreases", "stops when the relative improvement is below tolerance"
MAX_ITER, GIVEN = "runs at most max_iter iterations", "starts from the given F, B, s, a"
SMALL_SHOTS = "small camera shots: the same result as the reference's run"

MUTATIONS = [
    # (function, description, old, new, checks that must fail)
    ("calculate_log_probability", "constant without log(2 pi) / 2",
     "ll = -H * W * (np.log(s) + 0.5 * np.log(2.0 * np.pi))", "ll = -H * W * np.log(s)",
     {VISIBLE, PIXELS, REALISTIC_LL, HIDDEN}),
    ("calculate_log_probability", "single precision", "X = np.asarray(X, dtype=float)",
     "X = np.asarray(X, dtype=np.float32)", {REALISTIC_LL}),
    ("calculate_log_probability", "face not shifted with the position", "strides=(step_m + step_j, step_j, step_k)",
     "strides=(step_m, step_j, step_k)", {PIXELS, REALISTIC_LL, HIDDEN}),   # (the fixture's face is 1 wide)
    ("calculate_lower_bound", "no entropy", "log_q = np.log(q, out=np.zeros(q.shape), where=possible)",
     "log_q = np.zeros(q.shape)", {VISIBLE, TIGHT, HIDDEN}),
    ("calculate_lower_bound", "entropy counted twice", "log_joint - log_q, 0.0", "log_joint - 2 * log_q, 0.0",
     {VISIBLE, TIGHT, BELOW, HIDDEN}),
    ("calculate_lower_bound", "0 * log 0 is NaN", "L = float(np.sum(q * np.where(possible, log_joint - log_q, 0.0)))",
     "L = float(np.sum(q * (log_joint - log_q)))", {ZEROS, HIDDEN}),
    ("run_e_step", "no max trick", "joint = np.exp(log_joint - log_joint.max(axis=0, keepdims=True))",
     "joint = np.exp(log_joint)", {VISIBLE, SHIFT, REALISTIC_Q, HIDDEN}),
    ("run_e_step", "one maximum for the whole table", "log_joint.max(axis=0, keepdims=True)", "log_joint.max()",
     {SHIFT}),
    ("run_e_step", "normalised over the whole table", "q = joint / joint.sum(axis=0, keepdims=True)",
     "q = joint / joint.sum()", {COLUMNS, POSTERIOR, SHIFT, REALISTIC_Q, HIDDEN}),
    ("run_e_step", "prior forgotten", "log_joint = calculate_log_probability(X, F, B, s) + log_a[:, None]",
     "log_joint = calculate_log_probability(X, F, B, s)", {POSTERIOR, HIDDEN}),
    ("run_m_step", "background divided by K", "B[:, seen] /= background_weight[seen]", "B[:, seen] /= K",
     {VISIBLE, MAXIMISES, EXACT, HIDDEN_COLUMN, HIDDEN, REALISTIC_M}),
    ("run_m_step", "s with the average image as background", 'B_window = np.einsum("ij,ijd->jd", B, summed)',
     'B_window = np.einsum("ij,ijd->jd", X.mean(axis=2), summed)',
     {VISIBLE, MAXIMISES, EXACT, HIDDEN, REALISTIC_M}),
    ("run_m_step", "NaN where no image shows the background", "B[:, ~seen] = X[:, ~seen, :].mean(axis=2)",
     "B[:, ~seen] = np.nan", {HIDDEN_COLUMN}),
    ("run_m_step", "s without the square root", "s = float(np.sqrt(max(expected_error, 0.0) / (H * W * total)))",
     "s = float(max(expected_error, 0.0) / (H * W * total))", {VISIBLE, MAXIMISES, HIDDEN, REALISTIC_M}),
    ("run_EM", "ignores the tolerance", "if LL[-1] - LL[-2] < tolerance * abs(LL[-2]):", "if False:",
     {VISIBLE, TOLERANCE, SMALL_SHOTS}),
    ("run_EM", "no bound after the final E-step", "\n    LL.append(calculate_lower_bound(X, F, B, s, a, q))\n    LL =",
     "\n    LL =", {VISIBLE, RECORDS, SMALL_SHOTS}),
    ("run_EM", "one iteration too many", "for _ in range(max_iter):", "for _ in range(max_iter + 1):",
     {MAX_ITER}),
    ("run_EM", "ignores the given face", "    if F is None:", "    if True:", {GIVEN}),
    ("run_EM", "E-step at twice the noise level", "        q = run_e_step(X, F, B, s, a)",
     "        q = run_e_step(X, F, B, 2 * s, a)", {MONOTONE}),
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


def test_student_checks_pass_a_loop_per_position():
    """A correct but slow submission (one loop per position) passes every student-side check. How
    long they take is measured in benchmarks/bench_student_checks.py (not in a timed unit test)."""
    namespace = _namespace(LOOPS, "<loops>")
    for task in ASSIGNMENT.tasks:
        result = run_checks(ASSIGNMENT, InProcessExecutor(namespace), reference=None, only=[task.name])
        assert all(t.passed for t in result.tests if t.status != "skipped"), task.name


PIXEL_LOOP = SOURCE + """

def calculate_log_probability(X, F, B, s):
    H, W, K = X.shape
    w = F.shape[1]
    out = np.zeros((W - w + 1, K))
    for d in range(W - w + 1):
        for k in range(K):
            total = 0.0
            for i in range(H):
                for j in range(W):
                    model = F[i, j - d] if d <= j < d + w else B[i, j]
                    total += (X[i, j, k] - model) ** 2
            out[d, k] = -0.5 * H * W * np.log(2 * np.pi * s * s) - total / (2 * s * s)
    return out
"""


def test_a_loop_over_pixels_is_told_too_slow_by_its_measured_speed_not_by_a_time_out():
    """Right values, a Python loop over every pixel: the realistic check's probes measure its speed
    (a microsecond or so per pixel term) and stop the check with the pixel-loop verdict, in the
    sandbox and in-process, without waiting for a time-out; the correct loop per position is fast
    enough and never told so."""
    from autograder.assignments.prankster.diagnosis import EXPLANATIONS
    name = "realistic shots: 100 x 200 pixels, log-probabilities near -1e5"
    with SandboxExecutor(submission_from_cells([PIXEL_LOOP])) as executor:
        graded = run_checks(ASSIGNMENT, executor, reference=REFERENCE, only=["calculate_log_probability"])
    student = run_checks(ASSIGNMENT, InProcessExecutor(_namespace(PIXEL_LOOP, "<pixel loop>")), reference=None,
                         only=["calculate_log_probability"])
    for result in (graded, student):
        realistic = next(t for t in result.tests if t.name == name)
        assert not realistic.passed and not realistic.timed_out, realistic.feedback
        assert "too slow" in realistic.message and EXPLANATIONS["ll_pixel_loop"] in realistic.why
        assert all(t.passed for t in result.tests if t.name != name and t.status != "skipped")
    loops = run_checks(ASSIGNMENT, InProcessExecutor(_namespace(LOOPS, "<loops>")), reference=None,
                       only=["calculate_log_probability"])
    assert all(t.passed for t in loops.tests if t.status != "skipped")


def test_feedback_teaches_the_max_trick_and_in_place_updates():
    source = _mutate("run_e_step", "joint = np.exp(log_joint - log_joint.max(axis=0, keepdims=True))",
                     "joint = np.exp(log_joint)")
    with SandboxExecutor(submission_from_cells([source])) as executor:
        result = run_checks(ASSIGNMENT, executor, reference=REFERENCE, only=["run_e_step"])
    feedback = "\n".join(t.feedback for t in result.tests if not t.passed)
    assert "underflows" in feedback and "subtract each column's maximum" in feedback
    source = _mutate("calculate_log_probability", "X = np.asarray(X, dtype=float)", "X -= 0.5")
    with SandboxExecutor(submission_from_cells([source])) as executor:
        result = run_checks(ASSIGNMENT, executor, reference=REFERENCE, only=["calculate_log_probability"])
    feedback = "\n".join(t.feedback for t in result.tests if not t.passed)
    assert "in place" in feedback and "X" in feedback            # float inputs: the engine sees X change
    assert "Cannot cast" in feedback                              # integer fixtures: the update fails outright


# ----------------------------------------------------------------------------- the grader's own data
def test_realistic_shots_have_realistic_log_probabilities():
    shots = fixtures.realistic(K=6)
    ll = theory.log_probability(shots["X"], shots["face"], shots["background"], 200.0)
    assert ll.max() < -1e5                       # exp() underflows: only the max trick survives
    assert np.ptp(ll, axis=0).min() > 1e2        # and positions differ by far more than rounding
    q = theory.posterior(shots["X"], shots["face"], shots["background"], 120.0, shots["prior"])
    assert np.all(np.abs(q.sum(axis=0) - 1) < 1e-12)


def test_theory_agrees_with_the_reference():
    rng = np.random.default_rng(0)
    for H, W, w, K in [(1, 3, 1, 2), (3, 8, 3, 6), (4, 12, 12, 5)]:
        X, (F, B, s, a) = theory.random_problem(rng, H, W, w, K)
        q = theory.random_posterior(rng, W - w + 1, K)
        np.testing.assert_allclose(theory.log_probability(X, F, B, s),
                                   REFERENCE.calculate_log_probability(X, F, B, s), rtol=1e-11)
        assert theory.bound(X, F, B, s, a, q) == pytest.approx(REFERENCE.calculate_lower_bound(X, F, B, s, a, q),
                                                                rel=1e-11)
        np.testing.assert_allclose(theory.posterior(X, F, B, s, a), REFERENCE.run_e_step(X, F, B, s, a),
                                   rtol=1e-9, atol=1e-15)
        positions = rng.integers(0, W - w + 1, K)
        for ours, theirs in zip(theory.m_step_one_hot(X, positions, w),
                                REFERENCE.run_m_step(X, theory.one_hot(positions, W - w + 1), w)):
            ours = np.asarray(ours)
            np.testing.assert_allclose(np.where(np.isnan(ours), theirs, ours), theirs, rtol=1e-10)


def test_the_reference_run_on_small_shots_is_a_real_run():
    shots = fixtures.realistic(K=200, small=True)
    *_, LL = REFERENCE.run_EM(shots["X"], shots["w"], tolerance=1e-6, max_iter=12)
    assert 4 <= len(LL) - 2 < 12                 # several iterations, stopped by the tolerance


def test_scripted_stopping_rule():
    script = watching.geometric_script()
    m = watching.stopping_iteration(script, 1e-3)
    gain = lambda k: (script(k) - script(k - 1)) / abs(script(k - 1))  # noqa: E731
    assert gain(m) < 1e-3 <= gain(m - 1)


def test_the_notebook_states_the_fixtures_expected_values():
    """The numbers written next to each task agree with the stored expected values."""
    text = "\n".join(c.source for c in nbformat.read(ROOT / "solutions" / "prankster" / "prankster.ipynb", 4).cells
                     if c.cell_type == "markdown")
    v = fixtures.visible()
    rows = ", ".join("[" + ", ".join(f"{x:.3f}" for x in row) + "]" for row in v["ll"])
    assert f"`[{rows}]`" in text
    assert f"`{float(v['bound']):.4f}`" in text
    assert "`[" + ", ".join(f"[{x:.4f}]" for x in v["F"].ravel()) + "]`" in text
    short = lambda x: f"{x:.4f}".rstrip("0").rstrip(".")  # noqa: E731
    assert "`[" + ", ".join("[" + ", ".join(short(x) for x in row) + "]" for row in v["B"]) + "]`" in text
    assert f"`{float(v['s']):.5f}`" in text
    assert "`[" + ", ".join(f"{x:.5f}" for x in v["a"]) + "]`" in text
    assert "`[" + ", ".join(f"{x:.4f}" for x in v["em_LL"]) + "]`" in text
    assert f"stops after {len(v['em_LL']) - 2}" in text
    assert re.search(r"\[\[1, 1\], \[0, 0\], \[0, 0\]\]", text) and np.allclose(v["q"], [[1, 1], [0, 0], [0, 0]])


@pytest.mark.slow
def test_the_notebook_numbers_on_the_bound_per_shot_are_its_own():
    """The bound per shot, correlations and the seen/unseen split quoted next to the growing-subsets
    cell are what that cell computes (with the reference steps)."""
    from autograder.datasets import prankster
    nb = nbformat.read(ROOT / "solutions" / "prankster" / "prankster.ipynb", 4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    cell = next(c.source for c in nb.cells if c.cell_type == "code" and "schedule = [" in c.source)
    schedule = eval(re.search(r"schedule = (\[.*?\])", cell).group(1))
    data = prankster.load()
    X, w = data["X"], data["w"]
    true_face = prankster.ground_truth()["face"]
    H, W, K = X.shape
    rng = np.random.default_rng(int(re.search(r"default_rng\((\d+)\)", cell).group(1)))
    F, B, s, a = rng.uniform(0, 255, (H, w)), X[:, :, :50].mean(axis=2), None, None
    per_shot, correlations = [], []
    for n_shots, n_iterations in schedule:
        for _ in range(n_iterations):
            F, B, s, a, LL = REFERENCE.run_EM(X[:, :, :n_shots], w, F, B, s, a, tolerance=0.0, max_iter=1)
        per_shot.append(LL[-1] / n_shots)
        correlations.append(np.corrcoef(F.ravel(), true_face.ravel())[0, 1])
        if n_shots == schedule[0][0]:
            unseen = X[:, :, n_shots:]
            q = REFERENCE.run_e_step(unseen, F, B, s, a)
            unseen_per_shot = REFERENCE.calculate_lower_bound(unseen, F, B, s, a, q) / unseen.shape[2]
    assert ", ".join(f"{c:.2f}" for c in correlations[1:-1]) + f" and {correlations[-1]:.2f}" in text
    assert f"is {correlations[0]:.2f} after the 50-shot stage" in text
    falling = [round(v) for v in per_shot[1:]]
    assert all(b < a for a, b in zip(falling, falling[1:])) and per_shot[1] > per_shot[0]
    assert ", ".join(str(v) for v in falling[:-1]) + f" and {falling[-1]}" in text
    assert f"those 50 shots score\n{round(per_shot[0])} per shot, the 950 others {round(unseen_per_shot)}" in text \
        or f"score {round(per_shot[0])} per shot, the 950 others {round(unseen_per_shot)}" in text.replace("\n", " ")
