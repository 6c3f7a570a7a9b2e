"""Tests of the ADVI assignment's reference and of the grader's own mathematics.

The reference module ``solutions.advi`` (generated from the source notebook), the data module
``autograder.datasets.advi`` (the generator and the exact posterior) and the grader-side theory
``autograder.assignments.advi.theory`` are played against each other and against independent
code paths: autograd against finite differences and hand-derived gradients, the reparameterised
gradient estimates against the gradient of the closed-form ELBO, Monte Carlo ELBO estimates
against the closed form, the 1-D quadrature posterior against a brute-force 3-D grid of the
reference log joint.
"""

import inspect

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
import scipy.stats

from autograder.assignments.advi import theory
from autograder.datasets import advi as data
from autograder.engine.reference import load_reference

# Any warning (RuntimeWarning from an overflow, autograd's warnings, ...) fails the test.
pytestmark = pytest.mark.filterwarnings("error")

reference = load_reference("advi")

# A variational distribution away from the optimum, where gradients are far from zero.
MU = np.array([4.0, -3.0, 1.2])
OMEGA = np.array([-1.0, -2.0, -1.5])
L_FULL = np.array([[0.5, 0.0, 0.0], [-0.12, 0.1, 0.0], [0.02, -0.01, 0.15]])
# Warm start used for the fast ("student-side") loop settings.
MU_WARM = np.array([5.3, -3.5, 0.9])


@pytest.fixture(scope="module")
def xy():
    d = data.load()
    return d["x"], d["y"]


@pytest.fixture(scope="module")
def posterior(xy):
    return theory.exact_posterior(*xy)


@pytest.fixture(scope="module")
def optimum_mf(xy):
    return theory.optimal_mean_field(*xy)


@pytest.fixture(scope="module")
def optimum_fr(xy):
    return theory.optimal_full_rank(*xy)


def central_differences(f, z, h=1e-5):
    """Gradient of the scalar function ``f`` at ``z`` (any shape) by central differences."""
    z = np.asarray(z, dtype=float)
    out = np.zeros_like(z)
    for index in np.ndindex(z.shape):
        step = np.zeros_like(z)
        step[index] = h
        out[index] = (f(z + step) - f(z - step)) / (2 * h)
    return out


# --------------------------------------------------------------------------------------- data


def test_generate_shapes_values_and_determinism():
    d = data.generate(seed=3, n=57)
    assert set(d) == {"x", "y", "true_b", "true_sigma"}
    assert d["x"].shape == d["y"].shape == (57,)
    np.testing.assert_array_equal(d["true_b"], [5.0, -3.5])
    assert d["true_sigma"] == 2.5
    assert np.all((d["x"] >= data.X_LOW) & (d["x"] < data.X_HIGH))
    again = data.generate(seed=3, n=57)
    np.testing.assert_array_equal(d["x"], again["x"])
    np.testing.assert_array_equal(d["y"], again["y"])
    assert not np.allclose(d["y"], data.generate(seed=4, n=57)["y"])


def test_load_is_pinned():
    # Guards against a silent change of the generator: the numbers below are the assignment's.
    d = data.load()
    assert d["x"].shape == (80,)
    x_head = [5.709636474059745, 3.673820565786469, 5.076175258219655]
    y_head = [-18.23176824382231, -6.9987924683860445, -14.65081420531206]
    np.testing.assert_allclose(d["x"][:3], x_head, rtol=1e-14)
    np.testing.assert_allclose(d["y"][:3], y_head, rtol=1e-14)
    np.testing.assert_allclose(d["y"].sum(), -558.6754668923518, rtol=1e-13)


# --------------------------------------------------------------------------------- transform


def test_inverse_transform_round_trip_and_shapes():
    zeta = np.random.default_rng(0).normal(size=(7, 3)) * 3
    theta = reference.inverse_transform(zeta)
    assert theta.shape == (7, 3)
    assert np.all(theta[:, 2] > 0)
    back = np.column_stack([theta[:, :2], np.log(theta[:, 2])])  # T(theta)
    np.testing.assert_allclose(back, zeta, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(reference.inverse_transform(zeta[0]), theta[0], rtol=1e-15)
    assert reference.log_det_jacobian(zeta).shape == (7,)
    assert np.shape(reference.log_det_jacobian(zeta[0])) == ()


def test_log_det_jacobian_matches_numerical_jacobian():
    for zeta in np.random.default_rng(1).normal(size=(5, 3)) * 2:
        jacobian = np.column_stack(
            [central_differences(lambda z: reference.inverse_transform(z)[i], zeta) for i in range(3)]
        ).T  # J[i, j] = d theta_i / d zeta_j
        expected = np.log(abs(np.linalg.det(jacobian)))
        np.testing.assert_allclose(reference.log_det_jacobian(zeta), expected, rtol=1e-8, atol=1e-8)


# ------------------------------------------------------------------------------- log joint


def test_log_joint_matches_scipy(xy):
    x, y = xy
    for b0, b1, sigma in [(5.0, -3.5, 2.5), (0.0, 0.0, 1.0), (-20.0, 7.0, 0.05), (3.0, 1.0, 40.0)]:
        expected = (
            scipy.stats.norm.logpdf(y, b0 + b1 * x, sigma).sum()
            + scipy.stats.norm.logpdf([b0, b1], 0.0, 10.0).sum()
            + scipy.stats.gamma.logpdf(sigma, a=2.0, scale=1 / 0.5)
        )
        np.testing.assert_allclose(reference.log_joint(np.array([b0, b1, sigma]), x, y), expected, rtol=1e-12)


def test_log_joint_is_vectorised_over_draws(xy):
    zeta = np.random.default_rng(2).normal(size=(6, 3)) + [5, -3.5, 1]
    theta = reference.inverse_transform(zeta)
    batch = reference.log_joint(theta, *xy)
    assert batch.shape == (6,)
    np.testing.assert_allclose(batch, [reference.log_joint(t, *xy) for t in theta], rtol=1e-14)
    # The density of zeta picks up the Jacobian of sigma = exp(zeta2).
    np.testing.assert_allclose(reference.log_joint_zeta(zeta, *xy), batch + zeta[:, 2], rtol=1e-14)


def test_prior_defaults_agree_between_reference_and_exact():
    parameters = inspect.signature(reference.log_joint).parameters
    defaults = {k: p.default for k, p in parameters.items() if k.startswith("prior")}
    assert defaults == {
        "prior_b_scale": theory.PRIOR_B_SCALE,
        "prior_sigma_shape": theory.PRIOR_SIGMA_SHAPE,
        "prior_sigma_rate": theory.PRIOR_SIGMA_RATE,
    }


def test_grad_log_joint_zeta_matches_finite_differences(xy):
    zeta = np.random.default_rng(3).normal(size=(4, 3)) * 0.5 + [5.0, -3.5, 0.9]
    grads = reference.grad_log_joint_zeta(zeta, *xy)
    assert grads.shape == (4, 3)
    for row, g in zip(zeta, grads):
        numerical = central_differences(lambda z: reference.log_joint_zeta(z, *xy), row)
        np.testing.assert_allclose(g, numerical, rtol=1e-6, atol=1e-6 * np.abs(numerical).max())
    np.testing.assert_allclose(reference.grad_log_joint_zeta(zeta[:1], *xy), grads[:1], rtol=1e-14)


# ------------------------------------------------------------------------------------ ELBO


def test_full_rank_with_diagonal_factor_is_mean_field(xy):
    eta = np.random.default_rng(4).standard_normal((9, 3))
    L = np.diag(np.exp(OMEGA))
    np.testing.assert_allclose(
        reference.elbo_full_rank(MU, L, eta, *xy), reference.elbo_mean_field(MU, OMEGA, eta, *xy), rtol=1e-14
    )
    g_mu_mf, g_omega = reference.grad_elbo_mean_field(MU, OMEGA, eta, *xy)
    g_mu_fr, g_L = reference.grad_elbo_full_rank(MU, L, eta, *xy)
    np.testing.assert_allclose(g_mu_fr, g_mu_mf, rtol=1e-13)
    # Chain rule through L_ii = exp(omega_i).
    np.testing.assert_allclose(np.diag(g_L) * np.exp(OMEGA), g_omega, rtol=1e-12)


@pytest.mark.parametrize("family", ["mean_field", "full_rank"])
def test_elbo_estimate_matches_closed_form(xy, family):
    eta = np.random.default_rng(5).standard_normal((20_000, 3))
    if family == "mean_field":
        estimate = reference.elbo_mean_field(MU, OMEGA, eta, *xy)
        truth = theory.exact_elbo_mean_field(MU, OMEGA, *xy)
        zeta = MU + np.exp(OMEGA) * eta
    else:
        estimate = reference.elbo_full_rank(MU, L_FULL, eta, *xy)
        truth = theory.exact_elbo_full_rank(MU, L_FULL, *xy)
        zeta = MU + eta @ L_FULL.T
    # The entropy is exact, so the estimate's error is that of a mean of S i.i.d. terms.
    standard_error = np.std(reference.log_joint_zeta(zeta, *xy)) / np.sqrt(len(eta))
    assert abs(estimate - truth) < 5 * standard_error


@pytest.mark.parametrize("family", ["mean_field", "full_rank"])
def test_closed_form_elbo_gradient_matches_finite_differences(xy, family):
    if family == "mean_field":
        params, f = np.r_[MU, OMEGA], lambda p: theory.exact_elbo_mean_field(p[:3], p[3:], *xy)
        g = np.r_[theory.exact_grad_mean_field(MU, OMEGA, *xy)]
    else:
        rows, cols = np.tril_indices(3)

        def f(p):
            L = np.zeros((3, 3))
            L[rows, cols] = p[3:]
            return theory.exact_elbo_full_rank(p[:3], L, *xy)

        params = np.r_[MU, L_FULL[rows, cols]]
        g_mu, g_L = theory.exact_grad_full_rank(MU, L_FULL, *xy)
        assert np.all(np.triu(g_L, 1) == 0)
        g = np.r_[g_mu, g_L[rows, cols]]
    numerical = central_differences(f, params, h=1e-6)
    np.testing.assert_allclose(g, numerical, rtol=1e-6, atol=1e-6 * np.abs(g).max())


# ------------------------------------------------------------------------------- gradients


def test_gradients_at_fixed_draws_are_gradients_of_the_estimate(xy):
    # For fixed eta the reparameterised gradient is the exact gradient of the Monte Carlo ELBO.
    eta = np.random.default_rng(6).standard_normal((10, 3))
    g_mu, g_omega = reference.grad_elbo_mean_field(MU, OMEGA, eta, *xy)
    a_mu, a_omega = autograd.grad(reference.elbo_mean_field, (0, 1))(MU, OMEGA, eta, *xy)
    np.testing.assert_allclose(g_mu, a_mu, rtol=1e-10)
    np.testing.assert_allclose(g_omega, a_omega, rtol=1e-10)

    g_mu, g_L = reference.grad_elbo_full_rank(MU, L_FULL, eta, *xy)
    a_mu, a_L = autograd.grad(reference.elbo_full_rank, (0, 1))(MU, L_FULL, eta, *xy)
    assert g_L.shape == (3, 3) and np.all(np.triu(g_L, 1) == 0)
    np.testing.assert_allclose(g_mu, a_mu, rtol=1e-10)
    np.testing.assert_allclose(g_L, np.tril(a_L), rtol=1e-10, atol=1e-12 * np.abs(a_L).max())


def _batch_means(gradient, n_batches, batch_size, seed):
    """Gradient estimates on ``n_batches`` independent batches of standard-normal draws, flattened."""
    rng = np.random.default_rng(seed)
    batches = (gradient(rng.standard_normal((batch_size, 3))) for _ in range(n_batches))
    return np.array([np.concatenate([np.ravel(g) for g in batch]) for batch in batches])


@pytest.mark.parametrize("family", ["mean_field", "full_rank"])
def test_gradient_estimates_are_unbiased(xy, family):
    # 400 batches of 50 draws: the batch means are i.i.d. with mean the true gradient, so each
    # coordinate's error over all 20,000 draws is approximately N(0, SE^2) with SE estimated from
    # the spread of the batch means. |error| < 5 SE has a false-alarm probability of 6e-7 per
    # coordinate (about 5e-6 for the 9 coordinates), while a missing entropy term (+1 or 1/L_ii)
    # is 15 to 75 SE away.
    if family == "mean_field":
        means = _batch_means(lambda eta: reference.grad_elbo_mean_field(MU, OMEGA, eta, *xy), 400, 50, seed=7)
        truth = np.concatenate(theory.exact_grad_mean_field(MU, OMEGA, *xy))
        entropy_gradient = np.r_[np.zeros(3), np.ones(3)]
    else:
        means = _batch_means(lambda eta: reference.grad_elbo_full_rank(MU, L_FULL, eta, *xy), 400, 50, seed=8)
        g_mu, g_L = theory.exact_grad_full_rank(MU, L_FULL, *xy)
        keep = np.r_[np.ones(3, bool), np.tril(np.ones((3, 3), bool)).ravel()]  # drop the structural zeros
        means, truth = means[:, keep], np.r_[g_mu, g_L.ravel()][keep]
        entropy_gradient = np.r_[np.zeros(3), np.diag(1 / np.diag(L_FULL)).ravel()][keep]
    estimate = means.mean(axis=0)
    standard_error = means.std(axis=0, ddof=1) / np.sqrt(len(means))
    z = (estimate - truth) / standard_error
    assert np.all(np.abs(z) < 5), z
    # The test has power: dropping the entropy's gradient is detected.
    missing = entropy_gradient != 0
    assert np.all(np.abs((estimate - entropy_gradient - truth) / standard_error)[missing] > 5)


# ------------------------------------------------------------------------------- step size


def test_step_size_by_hand():
    lr = 0.5
    # k = 1: s_1 = g_1^2 whatever s_prev is; rho_1 = lr / (1 + |g_1|).
    g1 = np.array([3.0, -4.0, 0.0])
    rho, s = reference.step_size(g1, None, 1, lr)
    np.testing.assert_allclose(s, [9.0, 16.0, 0.0], rtol=1e-15)
    np.testing.assert_allclose(rho, [0.125, 0.1, 0.5], rtol=1e-15)
    rho_again, s_again = reference.step_size(g1, np.array([100.0, 100.0, 100.0]), 1, lr)
    np.testing.assert_array_equal(rho_again, rho)
    np.testing.assert_array_equal(s_again, s)
    # k = 2: s_2 = 0.1 * [1, 4, 1] + 0.9 * [9, 16, 0] = [8.2, 14.8, 0.1].
    rho, s = reference.step_size(np.array([1.0, 2.0, -1.0]), s, 2, lr)
    np.testing.assert_allclose(s, [8.2, 14.8, 0.1], rtol=1e-14)
    np.testing.assert_allclose(rho, lr / np.sqrt(2) / (1 + np.sqrt([8.2, 14.8, 0.1])), rtol=1e-14)
    # k = 3, zero gradient: s_3 = 0.9 * s_2 = [7.38, 13.32, 0.09]; sqrt(0.09) = 0.3.
    rho, s = reference.step_size(np.zeros(3), s, 3, lr)
    np.testing.assert_allclose(s, [7.38, 13.32, 0.09], rtol=1e-14)
    np.testing.assert_allclose(rho[2], 0.5 / np.sqrt(3) / 1.3, rtol=1e-14)


def test_step_size_parameters_and_shapes():
    # The exponent is -1/2 + eps: with eps = 0.25, k = 16 gives 16^(-1/4) = 1/2.
    rho, s = reference.step_size(np.array([0.0]), np.array([1.0]), 16, 1.0, eps=0.25)
    np.testing.assert_allclose(s, [0.9], rtol=1e-15)
    np.testing.assert_allclose(rho, 0.5 / (1 + np.sqrt(0.9)), rtol=1e-14)
    # alpha and tau: s = 0.5 * 4 + 0.5 * 0 = 2; rho = 2 * 2^(-1/2) / (3 + sqrt(2)).
    rho, s = reference.step_size(np.array([2.0]), np.array([0.0]), 2, 2.0, alpha=0.5, tau=3.0)
    np.testing.assert_allclose(s, [2.0], rtol=1e-15)
    np.testing.assert_allclose(rho, 2 * 2**-0.5 / (3 + np.sqrt(2)), rtol=1e-14)
    # Works element-wise on a matrix (the full-rank factor's gradient).
    grad = np.arange(9.0).reshape(3, 3)
    rho, s = reference.step_size(grad, None, 1, 1.0)
    assert rho.shape == s.shape == (3, 3)
    np.testing.assert_allclose(rho, 1 / (1 + np.abs(grad)), rtol=1e-15)


# ----------------------------------------------------------------------------------- loops


def test_loops_are_reproducible(xy):
    settings = dict(n_iter=30, n_draws=4, learning_rate=0.4)
    for loop in (reference.advi_mean_field, reference.advi_full_rank):
        first = loop(*xy, rng=5, **settings)
        again = loop(*xy, rng=np.random.default_rng(5), **settings)
        for a, b in zip(first, again):
            np.testing.assert_array_equal(a, b)
        assert not np.array_equal(first[0], loop(*xy, rng=6, **settings)[0])
        assert first[2].shape == (30,)


def _check_mean_field_fit(result, xy, posterior, optimum_mf, mu_tol, omega_tol, gap_tol):
    mu, omega, trace = result
    post_sd = np.sqrt(np.diag(posterior["cov_zeta"]))
    assert np.all(np.abs(mu - posterior["mean_zeta"]) < mu_tol * post_sd)
    assert np.all(np.abs(mu - optimum_mf["mu"]) < mu_tol * post_sd)
    assert np.all(np.abs(omega - optimum_mf["omega"]) < omega_tol)
    assert optimum_mf["elbo"] - theory.exact_elbo_mean_field(mu, omega, *xy) < gap_tol
    assert np.all(np.isfinite(trace))


def _check_full_rank_fit(result, xy, posterior, optimum_fr, mu_tol, corr_tol, cov_b_rtol, gap_tol):
    mu, L, trace = result
    post_sd = np.sqrt(np.diag(posterior["cov_zeta"]))
    cov = L @ L.T
    corr_b = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    assert np.all(np.triu(L, 1) == 0)
    assert np.all(np.abs(mu - posterior["mean_zeta"]) < mu_tol * post_sd)
    assert abs(corr_b - posterior["corr_b"]) < corr_tol
    cov_b_post = posterior["cov_b"]
    assert np.abs(cov[:2, :2] - cov_b_post).max() < cov_b_rtol * np.abs(cov_b_post).max()
    assert optimum_fr["elbo"] - theory.exact_elbo_full_rank(mu, L, *xy) < gap_tol
    assert np.all(np.isfinite(trace))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mean_field_fit_with_defaults(xy, posterior, optimum_mf, seed):
    # Paper's start (mu = 0, omega = 0), 1000 iterations, S = 10, learning rate 0.4.
    result = reference.advi_mean_field(*xy, rng=seed)
    _check_mean_field_fit(result, xy, posterior, optimum_mf, mu_tol=0.6, omega_tol=0.15, gap_tol=0.3)
    # Mean-field: q's correlation is zero by construction, the posterior's is strongly negative,
    # and the marginal spread of b0 is badly underestimated.
    assert posterior["corr_b"] < -0.9
    assert np.exp(result[1][0]) < 0.5 * np.sqrt(posterior["cov_b"][0, 0])


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_full_rank_fit_with_defaults(xy, posterior, optimum_fr, seed):
    result = reference.advi_full_rank(*xy, rng=seed)
    _check_full_rank_fit(
        result, xy, posterior, optimum_fr, mu_tol=0.6, corr_tol=0.08, cov_b_rtol=0.15, gap_tol=0.5
    )


def test_large_learning_rate_stays_finite_without_warnings(xy):
    # From the paper's start the first gradients are about 1e4-1e5; nothing may overflow.
    for loop in (reference.advi_mean_field, reference.advi_full_rank):
        *params, trace = loop(*xy, n_iter=300, learning_rate=3.0, rng=0)
        assert all(np.all(np.isfinite(p)) for p in params) and np.all(np.isfinite(trace))


@pytest.mark.parametrize("seed", range(5))
def test_fast_settings_for_student_checks(xy, posterior, optimum_mf, optimum_fr, seed):
    # The settings recommended for the student-side loop checks: warm start at the rounded
    # posterior mean, 400 iterations, S = 10, learning rate 0.2 (about 0.2-0.3 s per loop).
    fast = dict(n_iter=400, n_draws=10, learning_rate=0.2, rng=seed, mu_init=MU_WARM)
    mean_field = reference.advi_mean_field(*xy, **fast)
    _check_mean_field_fit(mean_field, xy, posterior, optimum_mf, mu_tol=0.75, omega_tol=0.25, gap_tol=0.4)
    full_rank = reference.advi_full_rank(*xy, **fast)
    _check_full_rank_fit(
        full_rank, xy, posterior, optimum_fr, mu_tol=0.75, corr_tol=0.1, cov_b_rtol=0.25, gap_tol=0.5
    )


# ---------------------------------------------------------------------------- exact answers


def test_conditional_posterior_is_the_mode_of_the_log_joint(xy):
    x, y = xy
    for sigma in (0.7, 2.5, 9.0):
        mean, cov = data.posterior_b_given_sigma(x, y, sigma)

        def log_joint_b(b, sigma=sigma):
            # A batch of one point: the function is differentiated on batches (autograd cannot
            # accumulate gradients into 0-d intermediate values, which single points create).
            return reference.log_joint(anp.concatenate([b, anp.array([sigma])])[None, :], x, y)[0]

        gradient = autograd.grad(log_joint_b)(mean)
        assert np.abs(gradient).max() < 1e-9 * np.abs(autograd.grad(log_joint_b)(np.zeros(2))).max()
        np.testing.assert_allclose(-autograd.hessian(log_joint_b)(mean), np.linalg.inv(cov), rtol=1e-10)


def test_exact_posterior_matches_brute_force_grid(xy, posterior):
    # Independent check: a 3-D Riemann sum of exp(log_joint_zeta) of the reference implementation
    # on an axis-aligned grid covering +-8 posterior standard deviations.
    sd = np.sqrt(np.diag(posterior["cov_zeta"]))
    axes = [np.linspace(m - 8 * s, m + 8 * s, 71) for m, s in zip(posterior["mean_zeta"], sd)]
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, 3)
    log_p = np.concatenate([reference.log_joint_zeta(chunk, *xy) for chunk in np.array_split(grid, 40)])
    w = np.exp(log_p - log_p.max())
    w /= w.sum()
    mean = w @ grid
    cov = (w[:, None] * (grid - mean)).T @ (grid - mean)
    np.testing.assert_allclose(mean, posterior["mean_zeta"], rtol=0, atol=1e-4 * sd.min())
    np.testing.assert_allclose(cov, posterior["cov_zeta"], rtol=0, atol=1e-4 * np.outer(sd, sd).max())
    corr_b = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    assert abs(corr_b - posterior["corr_b"]) < 1e-4
    density = posterior["log_sigma_density"]
    assert abs(density.sum() * (posterior["log_sigma_grid"][1] - posterior["log_sigma_grid"][0]) - 1) < 1e-12


def test_exact_posterior_with_known_sigma_limit(xy):
    # A Gamma prior concentrated at sigma = 2.5 makes the full posterior of b the conjugate one.
    x, y = xy
    shape = 1e6
    result = theory.exact_posterior(x, y, prior_sigma_shape=shape, prior_sigma_rate=shape / 2.5)
    mean, cov = data.posterior_b_given_sigma(x, y, 2.5)
    np.testing.assert_allclose(result["mean_b"], mean, rtol=1e-3)
    np.testing.assert_allclose(result["cov_b"], cov, rtol=1e-2)


def test_optimal_gaussians(xy, posterior, optimum_mf, optimum_fr):
    for gradient in (
        theory.exact_grad_mean_field(optimum_mf["mu"], optimum_mf["omega"], *xy),
        theory.exact_grad_full_rank(optimum_fr["mu"], optimum_fr["L"], *xy),
    ):
        assert max(np.abs(g).max() for g in gradient) < 1e-5
    assert optimum_fr["elbo"] > optimum_mf["elbo"] + 0.5
    assert np.all(np.diag(optimum_fr["L"]) > 0)
    # The posterior is nearly Gaussian: the best full-rank Gaussian is close to it (a few percent
    # narrower, as KL(q || p) prefers), and the mean-field variances are close to 1 / precision_ii.
    post_sd = np.sqrt(np.diag(posterior["cov_zeta"]))
    np.testing.assert_allclose(optimum_fr["mu"], posterior["mean_zeta"], rtol=0, atol=0.01 * post_sd.min())
    np.testing.assert_allclose(optimum_fr["cov"], posterior["cov_zeta"], rtol=0.06, atol=1e-4)
    precision = np.linalg.inv(posterior["cov_zeta"])
    np.testing.assert_allclose(np.exp(-2 * optimum_mf["omega"]), np.diag(precision), rtol=0.06)


# ---------------------------------------------------------------------- the grader's own mathematics


def test_theory_model_agrees_with_the_reference(xy):
    rng = np.random.default_rng(11)
    zeta = rng.normal(size=(9, 3)) * [3.0, 1.0, 1.0] + [5.0, -3.5, 0.5]
    for priors in ({}, {"prior_b_scale": 2.0, "prior_sigma_shape": 3.5, "prior_sigma_rate": 1.7}):
        theta = reference.inverse_transform(zeta)
        np.testing.assert_allclose(theory.log_joint(theta, *xy, **priors), reference.log_joint(theta, *xy, **priors),
                                   rtol=1e-12)
    np.testing.assert_allclose(theory.inverse_transform(zeta), reference.inverse_transform(zeta), rtol=1e-15)
    np.testing.assert_allclose(theory.transform(theory.inverse_transform(zeta)), zeta, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(theory.log_joint_zeta(zeta, *xy), reference.log_joint_zeta(zeta, *xy), rtol=1e-12)
    # The hand-derived gradient against autograd's.
    np.testing.assert_allclose(theory.grad_log_joint_zeta(zeta, *xy), reference.grad_log_joint_zeta(zeta, *xy),
                               rtol=1e-10, atol=1e-9)


def test_theory_log_joint_is_scipy_stats_densities(xy):
    """The grader's log joint (what the checks compare with, and what stands in for a student's)."""
    x, y = xy
    rng = np.random.default_rng(14)
    theta = np.column_stack([rng.normal(size=(6, 2)) * 8, rng.uniform(0.05, 30.0, 6)])
    for priors in ({}, {"prior_b_scale": 2.0, "prior_sigma_shape": 3.5, "prior_sigma_rate": 1.7}):
        s, a, r = (priors.get(k, v) for k, v in theory.PRIORS.items())
        expected = [scipy.stats.norm.logpdf(y, b0 + b1 * x, sigma).sum() + scipy.stats.norm.logpdf([b0, b1], 0.0, s).sum()
                    + scipy.stats.gamma.logpdf(sigma, a=a, scale=1 / r) for b0, b1, sigma in theta]
        np.testing.assert_allclose(theory.log_joint(theta, x, y, **priors), expected, rtol=1e-12)
        np.testing.assert_allclose(theory.log_joint(theta[0], x, y, **priors), expected[0], rtol=1e-12)


def test_theory_monte_carlo_terms_average_to_the_reference_estimates(xy):
    eta = np.random.default_rng(12).standard_normal((13, 3))
    np.testing.assert_allclose(theory.elbo_terms_mean_field(MU, OMEGA, eta, *xy).mean(),
                               reference.elbo_mean_field(MU, OMEGA, eta, *xy), rtol=1e-12)
    np.testing.assert_allclose(theory.elbo_terms_full_rank(MU, L_FULL, eta, *xy).mean(),
                               reference.elbo_full_rank(MU, L_FULL, eta, *xy), rtol=1e-12)
    for terms, estimates in ((theory.gradient_terms_mean_field(MU, OMEGA, eta, *xy),
                              reference.grad_elbo_mean_field(MU, OMEGA, eta, *xy)),
                             (theory.gradient_terms_full_rank(MU, L_FULL, eta, *xy),
                              reference.grad_elbo_full_rank(MU, L_FULL, eta, *xy))):
        for term, estimate in zip(terms, estimates):
            np.testing.assert_allclose(term.mean(axis=0), estimate, rtol=1e-9, atol=1e-9 * np.abs(estimate).max())


def test_theory_step_size_is_the_reference_one():
    rng = np.random.default_rng(13)
    s = None
    for k in range(1, 30):
        g = rng.normal(size=(3, 3)) * 10.0 ** rng.integers(-3, 4)
        rho, s_new = theory.step_size(g, s, k, 0.3, alpha=0.2, tau=0.5, eps=0.1)
        rho_ref, s_ref = reference.step_size(g, s, k, 0.3, alpha=0.2, tau=0.5, eps=0.1)
        np.testing.assert_array_equal(rho, rho_ref)
        np.testing.assert_array_equal(s_new, s_ref)
        s = s_new


def test_posterior_density_of_b_is_the_exact_marginal(xy, posterior):
    sd = np.sqrt(np.diag(posterior["cov_b"]))
    b0 = posterior["mean_b"][0] + 7 * sd[0] * np.linspace(-1, 1, 241)
    b1 = posterior["mean_b"][1] + 7 * sd[1] * np.linspace(-1, 1, 241)
    B0, B1 = np.meshgrid(b0, b1)
    density = data.posterior_density_b(*xy, B0, B1)
    cell = (b0[1] - b0[0]) * (b1[1] - b1[0])
    assert abs(density.sum() * cell - 1) < 1e-6
    mean = np.array([(density * B0).sum(), (density * B1).sum()]) * cell
    np.testing.assert_allclose(mean, posterior["mean_b"], rtol=0, atol=1e-4 * sd.min())


def test_assignment_answers_are_the_optima(xy, posterior, optimum_mf, optimum_fr):
    answers = theory.assignment_answers()
    np.testing.assert_allclose(answers["posterior"]["mean_zeta"], posterior["mean_zeta"], rtol=1e-14)
    assert answers["mean_field"]["elbo"] == pytest.approx(optimum_mf["elbo"], abs=1e-9)
    np.testing.assert_allclose(answers["full_rank"]["cov"], optimum_fr["cov"], rtol=1e-9)
