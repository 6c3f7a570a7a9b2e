"""The prankster references, the data generator and the loop baseline.

The references are generated from the source notebooks (``make build``): ``solutions.prankster``
(the prankster assignment's functions) and ``solutions.hard_em`` (the same functions with a
``hard_EM`` flag). Most tests use ``ref`` = ``solutions.hard_em``, which can do both; the soft
functions of the two modules are checked to agree. The loop baseline
(``benchmarks/prankster_loops.py``) is the yardstick of the benchmark.
"""

import hashlib
import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy.special import xlogy
from scipy.stats import norm

from autograder.datasets import prankster
from autograder.engine.reference import load_reference

REPO = Path(__file__).resolve().parents[1]


def _load(name, relative_path):
    spec = importlib.util.spec_from_file_location(name, REPO / relative_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ref = load_reference("hard_em")
soft = load_reference("prankster")
loops = _load("prankster_loops", "benchmarks/prankster_loops.py")

RECOGNISABLE = 0.9  # correlation with the true face; see benchmarks/bench_prankster.py


@pytest.fixture(autouse=True, scope="module")
def _private_cache(tmp_path_factory):
    """Generated data goes to a temporary cache, not to the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COURSE_DATA_CACHE", str(tmp_path_factory.mktemp("course-data")))
        yield


@pytest.fixture
def strict():
    """Any numpy floating-point problem or warning fails the test (underflow to 0 is fine)."""
    with warnings.catch_warnings(), np.errstate(divide="raise", over="raise", invalid="raise"):
        warnings.simplefilter("error")
        yield


# --------------------------------------------------------------------------------------------
# The original practical's fixtures
# --------------------------------------------------------------------------------------------

tH, tW, tw, tK = 2, 3, 1, 2


def practical_fixtures():
    tX = np.arange(tH * tW * tK).reshape(tH, tW, tK)
    tF = np.arange(tH * tw).reshape(tH, tw)
    tB = np.arange(tH * tW).reshape(tH, tW)
    ts = 0.1
    ta = np.arange(1, (tW - tw + 1) + 1)
    ta = ta / ta.sum()
    tq = np.arange(1, (tW - tw + 1) * tK + 1).reshape(tW - tw + 1, tK)
    tq = tq / tq.sum(axis=0)[np.newaxis, :]
    return tX, tF, tB, ts, ta, tq


def brute_force_lower_bound(X, F, B, s, a, q):
    """The bound from its definition, pixel by pixel, with scipy's log-density."""
    H, W, K = X.shape
    w = F.shape[1]
    bound = 0.0
    for d in range(W - w + 1):
        model = np.array(B, dtype=float)
        model[:, d:d + w] = F
        for k in range(K):
            log_likelihood = norm.logpdf(X[:, :, k], loc=model, scale=s).sum()
            bound += q[d, k] * (log_likelihood + np.log(a[d])) - xlogy(q[d, k], q[d, k])
    return bound


def test_log_probability_matches_the_practical(strict):
    tX, tF, tB, ts, _, _ = practical_fixtures()
    expected = np.array([[-3541.69812064, -5541.69812064],
                         [-4541.69812064, -6741.69812064],
                         [-6141.69812064, -8541.69812064]])
    np.testing.assert_allclose(ref.calculate_log_probability(tX, tF, tB, ts), expected,
                               rtol=0, atol=1e-8)


def test_lower_bound_matches_the_practical(strict):
    tX, tF, tB, ts, ta, tq = practical_fixtures()
    actual = ref.calculate_lower_bound(tX, tF, tB, ts, ta, tq)
    assert isinstance(actual, float)
    # The practical prints -12761.1875, rounded to 4 decimals; the exact value is
    # -12761.187501001..., which the definition computed pixel by pixel confirms.
    assert actual == pytest.approx(-12761.1875, abs=1e-5)
    assert actual == pytest.approx(brute_force_lower_bound(tX, tF, tB, ts, ta, tq), rel=1e-12)


def test_e_step_matches_the_practical(strict):
    tX, tF, tB, ts, ta, _ = practical_fixtures()
    expected = np.array([[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(ref.run_e_step(tX, tF, tB, ts, ta), expected, rtol=0, atol=1e-12)


def test_m_step_matches_the_practical(strict):
    tX, _, _, _, _, tq = practical_fixtures()
    F, B, s, a = ref.run_m_step(tX, tq, tw)
    np.testing.assert_allclose(F, [[3.27777778], [9.27777778]], rtol=0, atol=1e-8)
    np.testing.assert_allclose(B, [[0.48387097, 2.5, 4.52941176],
                                   [6.48387097, 8.5, 10.52941176]], rtol=0, atol=1e-8)
    assert s == pytest.approx(0.94868, abs=1e-5)  # printed with 5 decimals
    np.testing.assert_allclose(a, [0.13888889, 0.33333333, 0.52777778], rtol=0, atol=1e-8)


def test_integer_inputs_work_and_are_not_modified(strict):
    fixtures = practical_fixtures()
    copies = [np.copy(value) for value in fixtures]
    tX, tF, tB, ts, ta, tq = fixtures
    ref.calculate_log_probability(tX, tF, tB, ts)
    ref.calculate_lower_bound(tX, tF, tB, ts, ta, tq)
    ref.run_e_step(tX, tF, tB, ts, ta)
    ref.run_m_step(tX, tq, tw)
    ref.run_EM(tX, tw, tF, tB, ts, ta, max_iter=3)
    for value, copy in zip(fixtures, copies):
        assert np.asarray(value).dtype == copy.dtype
        np.testing.assert_array_equal(value, copy)


def test_run_em_on_the_practicals_fixture(strict):
    tX, *_ = practical_fixtures()
    F, B, s, a, LL = ref.run_EM(tX, tw, max_iter=3)
    assert F.shape == (tH, tw) and B.shape == (tH, tW) and a.shape == (tW - tw + 1,)
    assert 3 <= len(LL) <= 5
    # This tiny problem reaches a fixed point after one iteration, so later steps change the
    # bound by exactly 0: "increases" has to be read as "never decreases".
    assert np.all(np.diff(LL) >= 0)


# --------------------------------------------------------------------------------------------
# Reference == loop baseline
# --------------------------------------------------------------------------------------------

def random_problem(seed):
    """Random sizes (including w = 1 and w = W), parameters and posteriors with zeros."""
    rng = np.random.default_rng(seed)
    W = int(rng.integers(2, 9))
    H = int(rng.integers(1, 6))
    K = int(rng.integers(2, 6))  # one image can be fitted exactly: see test_exact_fit
    w = int(rng.choice([1, W, int(rng.integers(1, W + 1))]))
    n_positions = W - w + 1
    X = rng.uniform(0, 255, (H, W, K))
    F = rng.uniform(0, 255, (H, w))
    B = rng.uniform(0, 255, (H, W))
    s = float(rng.uniform(20, 150))
    a = rng.dirichlet(np.ones(n_positions))
    q = rng.dirichlet(np.ones(n_positions), size=K).T
    if n_positions > 1 and seed % 2 == 0:  # impossible positions: a = 0 and q = 0 there
        a[0] = 0.0
        a /= a.sum()
        q[0] = 0.0
        q /= q.sum(axis=0)
    return X, F, B, s, a, q, w


def one_hot(positions, n_positions):
    q = np.zeros((n_positions, len(positions)))
    q[positions, np.arange(len(positions))] = 1.0
    return q


@pytest.mark.parametrize("seed", range(24))
def test_reference_equals_loop_baseline(seed, strict):
    X, F, B, s, a, q, w = random_problem(seed)
    n_positions = q.shape[0]
    q_hard = one_hot(np.argmax(q, axis=0), n_positions)   # hard EM's q is always a point mass
    np.testing.assert_allclose(ref.calculate_log_probability(X, F, B, s),
                               loops.calculate_log_probability(X, F, B, s), rtol=1e-10, atol=0)
    for hard, posterior in ((False, q), (False, q_hard), (True, q_hard)):
        assert ref.calculate_lower_bound(X, F, B, s, a, posterior, hard) == pytest.approx(
            loops.calculate_lower_bound(X, F, B, s, a, posterior, hard), rel=1e-10, abs=0)
    for hard in (False, True):
        np.testing.assert_allclose(ref.run_e_step(X, F, B, s, a, hard),
                                   loops.run_e_step(X, F, B, s, a, hard), rtol=1e-10, atol=1e-15)
    # A soft posterior, a hard one, and one that puts every face at the same place (the
    # background under it is then never seen); the hard M-step only ever sees point masses.
    everyone_at_0 = one_hot(np.zeros(q.shape[1], dtype=int), n_positions)
    for hard, posterior in ((False, q), (False, q_hard), (True, q_hard), (False, everyone_at_0),
                            (True, everyone_at_0)):
        for ours, theirs in zip(ref.run_m_step(X, posterior, w, hard), loops.run_m_step(X, posterior, w, hard)):
            np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=0)


@pytest.mark.parametrize("seed", range(12))
def test_the_two_references_agree_without_the_flag(seed, strict):
    X, F, B, s, a, q, w = random_problem(seed)
    np.testing.assert_array_equal(soft.calculate_log_probability(X, F, B, s), ref.calculate_log_probability(X, F, B, s))
    assert soft.calculate_lower_bound(X, F, B, s, a, q) == ref.calculate_lower_bound(X, F, B, s, a, q)
    np.testing.assert_array_equal(soft.run_e_step(X, F, B, s, a), ref.run_e_step(X, F, B, s, a))
    for ours, theirs in zip(soft.run_m_step(X, q, w), ref.run_m_step(X, q, w)):
        np.testing.assert_array_equal(ours, theirs)
    for ours, theirs in zip(soft.run_EM(X, w, max_iter=3), ref.run_EM(X, w, max_iter=3)):
        np.testing.assert_array_equal(ours, theirs)


def test_exact_fit(strict):
    """One image and a sure position: F and B fit it exactly and the noise estimate is ~0.

    The reference expands the squared errors (||x||^2 - 2 <x, m> + ||m||^2), so it gets 0 only
    up to rounding, about 1e-8 of the pixel scale; the loops get exactly 0.
    """
    X = np.random.default_rng(4).uniform(0, 255, (3, 7, 1))
    q = one_hot([2], 5)
    F, B, s, a = ref.run_m_step(X, q, 3)
    np.testing.assert_array_equal(F, X[:, 2:5, 0])
    np.testing.assert_array_equal(B[:, [0, 1, 5, 6]], X[:, [0, 1, 5, 6], 0])
    assert 0 <= s < 1e-5 and loops.run_m_step(X, q, 3)[2] == 0


def test_run_em_equals_loop_baseline(strict):
    # Enough images that the model cannot fit them exactly (s = 0 would be degenerate).
    X = np.random.default_rng(3).integers(0, 256, (4, 9, 12))
    w = 3
    for hard in (False, True):
        for ours, theirs in zip(ref.run_EM(X, w, max_iter=5, hard_EM=hard),
                                loops.run_EM(X, w, max_iter=5, hard_EM=hard)):
            np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=0)


# --------------------------------------------------------------------------------------------
# Properties and numerical robustness
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(8))
def test_posterior_columns_sum_to_one(seed, strict):
    X, F, B, s, a, _, _ = random_problem(seed)
    for scale in (1.0, 1e-2, 1e-4):  # down to log-probabilities of order -1e9
        for hard in (False, True):
            q = ref.run_e_step(X, F, B, s * scale, a, hard)
            assert np.all(q >= 0)
            np.testing.assert_allclose(q.sum(axis=0), 1.0, rtol=0, atol=1e-12)


def test_no_warning_on_extreme_inputs(strict):
    rng = np.random.default_rng(7)
    H, W, w, K = 6, 10, 4, 5
    n_positions = W - w + 1
    X = rng.integers(0, 256, (H, W, K))  # integers, as a student may pass them
    F = np.zeros((H, w), dtype=int)
    B = np.full((H, W), 255)
    a = np.zeros(n_positions)
    a[[1, 4]] = 0.5  # impossible positions
    for s in (1.0, 0.01):  # log-probabilities of order -1e5 and -1e9: exp underflows
        ll = ref.calculate_log_probability(X, F, B, s)
        assert np.all(np.isfinite(ll)) and ll.max() < -1e4
        for hard in (False, True):
            q = ref.run_e_step(X, F, B, s, a, hard)
            assert np.all(q[[0, 2, 3, 5, 6]] == 0)
            assert np.isfinite(ref.calculate_lower_bound(X, F, B, s, a, q, hard))
            F_new, B_new, s_new, a_new = ref.run_m_step(X, q, w, hard)
            for value in (F_new, B_new, s_new, a_new):
                assert np.all(np.isfinite(value))
    # A posterior that is 0 where the prior is positive and every face at the same place.
    q = one_hot(np.full(K, 2), n_positions)
    F_new, B_new, s_new, a_new = ref.run_m_step(X, q, w)
    hidden = slice(2, 2 + w)  # columns that no image shows as background
    np.testing.assert_allclose(B_new[:, hidden], X.mean(axis=2)[:, hidden], rtol=1e-12)
    assert np.isfinite(ref.calculate_lower_bound(X, F_new, B_new, s_new, a_new, q))


def test_lower_bound_is_minus_infinity_only_where_it_should(strict):
    X, F, B, s, a, q, w = random_problem(0)  # even seed: a[0] = q[0] = 0
    assert np.isfinite(ref.calculate_lower_bound(X, F, B, s, a, q))
    q_bad = q.copy()
    q_bad[:, 0] = 0.0
    q_bad[0, 0] = 1.0  # puts mass on a position that the prior forbids
    assert ref.calculate_lower_bound(X, F, B, s, a, q_bad) == -np.inf


def test_hard_bound_is_the_soft_bound_of_a_one_hot_posterior(strict):
    X, F, B, s, a, q, _ = random_problem(5)
    q_hard = ref.run_e_step(X, F, B, s, a, hard_EM=True)
    assert ref.calculate_lower_bound(X, F, B, s, a, q_hard, hard_EM=True) == pytest.approx(
        ref.calculate_lower_bound(X, F, B, s, a, q_hard), rel=1e-13)


def test_e_step_maximises_the_bound_and_m_step_improves_it(strict):
    X, F, B, s, a, q, w = random_problem(9)
    best_q = ref.run_e_step(X, F, B, s, a)
    assert ref.calculate_lower_bound(X, F, B, s, a, best_q) >= ref.calculate_lower_bound(
        X, F, B, s, a, q)
    F2, B2, s2, a2 = ref.run_m_step(X, q, w)
    assert ref.calculate_lower_bound(X, F2, B2, s2, a2, q) >= ref.calculate_lower_bound(
        X, F, B, s, a, q)


@pytest.fixture(scope="module")
def small_data():
    return prankster.load(small=True)


@pytest.mark.parametrize("hard", [False, True])
def test_bound_increases_at_every_iteration_on_small_data(small_data, hard, strict):
    X, w = small_data["X"], small_data["w"]
    F, B, s, a, LL = ref.run_EM(X, w, tolerance=0.0, max_iter=20, hard_EM=hard)
    assert 3 <= len(LL) <= 22
    improvements = np.diff(LL)
    assert improvements[0] > 0
    # At convergence a step may change the bound by a rounding error only.
    assert np.all(improvements >= -1e-12 * np.abs(LL[:-1]))


def test_run_em_stops_when_the_relative_improvement_is_small(small_data, strict):
    X, w = small_data["X"], small_data["w"]
    tolerance = 1e-4
    *_, LL = ref.run_EM(X, w, tolerance=tolerance, max_iter=50)
    iterations = len(LL) - 2
    gains = (LL[1:iterations + 1] - LL[:iterations]) / np.abs(LL[:iterations])
    assert np.all(gains[:-1] >= tolerance)
    assert gains[-1] < tolerance or iterations == 50
    *_, LL = ref.run_EM(X, w, tolerance=0.0, max_iter=2)
    assert len(LL) == 4


def test_run_em_is_deterministic_and_keeps_given_parameters(small_data, strict):
    X, w = small_data["X"], small_data["w"]
    first = ref.run_EM(X, w, max_iter=2)
    second = ref.run_EM(X, w, max_iter=2)
    for x, y in zip(first, second):
        np.testing.assert_array_equal(x, y)
    F0, B0 = first[0].copy(), first[1].copy()
    ref.run_EM(X, w, first[0], first[1], first[2], first[3], max_iter=1)
    np.testing.assert_array_equal(first[0], F0)
    np.testing.assert_array_equal(first[1], B0)


@pytest.mark.parametrize("hard", [False, True])
def test_em_finds_the_culprit_on_small_data(small_data, hard, strict):
    truth = prankster.ground_truth(small=True)
    F, B, s, a, LL = ref.run_EM(small_data["X"], small_data["w"], tolerance=1e-6, hard_EM=hard)
    assert np.corrcoef(F.ravel(), truth["face"].ravel())[0, 1] > 0.85
    assert prankster.is_culprit(prankster.identify(F))


@pytest.mark.slow
def test_em_finds_the_culprit_on_the_full_data(strict):
    data = prankster.load()
    truth = prankster.ground_truth()
    F, B, s, a, LL = ref.run_EM(data["X"], data["w"])
    assert F.shape == truth["face"].shape
    assert np.corrcoef(F.ravel(), truth["face"].ravel())[0, 1] > RECOGNISABLE
    assert prankster.is_culprit(prankster.identify(F))


# --------------------------------------------------------------------------------------------
# The data
# --------------------------------------------------------------------------------------------

SMALL_SHA256 = "42a0bb879597f45a5fa9309ead496dec69672f1470b129cf8c39046fae8deeea"
FULL_SHA256 = "f6031af1877be218ab8bd13afb05af9039ab06495efbb578ff40419bd94d3e73"
"""Digests of the data sets' uint8 bytes (generator VERSION 1, DEFAULT_SEED)."""


def test_small_data_shapes_types_and_values(small_data):
    X, w = small_data["X"], small_data["w"]
    sizes = prankster.SMALL_SIZE
    assert X.shape == (sizes["height"], sizes["width"], sizes["n_images"])
    assert X.dtype == np.float64 and w == sizes["face_width"]
    assert np.all((X >= 0) & (X <= 255)) and np.all(X == np.round(X))


def test_data_is_the_same_bytes_everywhere(small_data):
    """Same seed, same bytes: pins the generator (bump VERSION and this digest together)."""
    assert prankster.VERSION == 1
    digest = hashlib.sha256(small_data["X"].astype(np.uint8).tobytes()).hexdigest()
    assert digest == SMALL_SHA256
    sizes = prankster.SMALL_SIZE
    X, _ = prankster.generate(sizes["n_images"], height=sizes["height"], width=sizes["width"],
                              face_width=sizes["face_width"])
    np.testing.assert_array_equal(X, small_data["X"])


def test_noise_hides_the_face_in_every_single_image(small_data):
    X = small_data["X"]
    truth = prankster.ground_truth(small=True)
    clipped = np.mean((X == 0) | (X == 255))
    assert 0.3 < clipped < 0.7
    w = small_data["w"]
    correlations = [np.corrcoef(X[:, d:d + w, k].ravel(), truth["face"].ravel())[0, 1]
                    for k, d in enumerate(truth["offsets"])]
    assert max(correlations) < 0.5


def test_ground_truth_describes_the_data(small_data):
    truth = prankster.ground_truth(small=True)
    sizes = prankster.SMALL_SIZE
    H, W, w, K = sizes["height"], sizes["width"], sizes["face_width"], sizes["n_images"]
    assert truth["face"].shape == (H, w) and truth["background"].shape == (H, W)
    assert truth["offsets"].shape == (K,) and truth["prior"].shape == (W - w + 1,)
    assert truth["offsets"].min() >= 0 and truth["offsets"].max() <= W - w
    assert truth["prior"].sum() == pytest.approx(1.0) and truth["prior"].min() > 0
    assert truth["prior"].max() > 3 * truth["prior"].min()  # clearly not uniform
    assert truth["noise_sd"] == prankster.NOISE_SD
    clean = prankster.compose_images(truth["face"], truth["background"], truth["offsets"])
    residual = (small_data["X"] - clean)[(clean > 60) & (clean < 195)]
    assert abs(residual.mean()) < 5  # the noise is centred where clipping is rare


def test_cache_is_reused_and_regenerated_when_corrupt(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_CACHE", str(tmp_path))
    first = prankster.load(small=True)["X"]
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and f"v{prankster.VERSION}" in files[0].name
    content = files[0].read_bytes()
    for name in prankster.SUSPECT_NAMES:  # nobody's name is in the data file
        assert name.encode() not in content and name.split()[1].encode() not in content

    def no_generation(*args, **kwargs):
        raise AssertionError("generated although cached")

    with monkeypatch.context() as patch:
        patch.setattr(prankster.cache, "generate_uint8", no_generation)   # where load() finds it
        np.testing.assert_array_equal(prankster.load(small=True)["X"], first)

    files[0].write_bytes(content[: len(content) // 2])  # truncated
    np.testing.assert_array_equal(prankster.load(small=True)["X"], first)
    files[0].write_bytes(b"not a zip file")
    np.testing.assert_array_equal(prankster.load(small=True)["X"], first)


def test_unwritable_cache_still_gives_the_data(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("COURSE_DATA_CACHE", str(blocker / "cache"))
    assert prankster.load(small=True)["X"].shape[2] == prankster.SMALL_SIZE["n_images"]


@pytest.mark.parametrize("shape", [(100, 73), (30, 22)])
def test_lineup_is_distinct_and_identifiable(shape):
    faces = prankster.lineup(shape)
    assert len(faces) >= 6 and len(set(faces)) == len(faces)
    stack = np.stack([face.ravel() for face in faces.values()])
    assert stack.min() >= 0 and stack.max() <= 255
    correlations = np.corrcoef(stack)
    np.fill_diagonal(correlations, -1)
    # Any face within correlation 0.9 of a portrait is then closer to it than to any other.
    assert correlations.max() < np.cos(2 * np.arccos(RECOGNISABLE))
    rng = np.random.default_rng(0)
    for name, face in faces.items():
        assert face.shape == shape
        assert prankster.identify(face) == name
        assert prankster.identify(face + rng.normal(0, 60, shape)) == name


def test_background_does_not_look_like_a_face():
    for (H, W), w in (((100, 200), 73), ((30, 60), 22)):
        background = prankster.draw_background((H, W))
        assert background.shape == (H, W)
        portraits = prankster.lineup((H, w)).values()
        windows = [background[:, d:d + w].ravel() for d in range(W - w + 1)]
        assert max(np.corrcoef(window, face.ravel())[0, 1]
                   for window in windows for face in portraits) < 0.6


def test_exactly_one_suspect_is_the_culprit():
    for seed in (prankster.DEFAULT_SEED, 0, 1, 2, 3):
        verdicts = [prankster.is_culprit(name, seed) for name in prankster.SUSPECT_NAMES]
        assert sum(verdicts) == 1
    culprit = prankster.identify(prankster.ground_truth(small=True)["face"])
    assert prankster.is_culprit(culprit)
    assert prankster.is_culprit("  " + culprit.upper().replace(" ", "   ") + " ")
    assert not prankster.is_culprit("Nobody Atall")


@pytest.mark.slow
def test_full_data_generation_is_shaped_and_reproducible():
    X, truth = prankster.generate()
    assert X.shape == (100, 200, 1000) and X.dtype == np.float64
    assert truth["face"].shape == (100, 73) and truth["prior"].shape == (128,)
    assert hashlib.sha256(X.astype(np.uint8).tobytes()).hexdigest() == FULL_SHA256
