"""Checks of the model's pieces: the transform, its log-Jacobian, the log joint and its gradient."""

from __future__ import annotations

import numpy as np

from ...engine import Failed, expect
from . import ASSIGNMENT, theory
from .fixtures import sample, visible, visible_inputs
from .judging import (FD_RTOL, FD_STEP, GRAD_RTOL, VALUE_RTOL, Isolation, compare_gradients,
                      consistency_note, differs_from_reference, used_log_joint_zeta, validate_array)

ONE_OR_MANY = ("accept one draw, shape (3,), or a batch, shape (S, 3): index the last axis (zeta[..., 2]) "
               "instead of the first (zeta[2]) so the same code serves both")


def _data():
    s = sample()
    return s["x"], s["y"]


def _random_zeta(rng, n, spread=1.0):
    """Draws around the posterior (b0 ~ 5.3, b1 ~ -3.5, log sigma ~ 0.9), ``spread`` times wider."""
    centre = np.array([5.3, -3.5, 0.9])
    return centre + spread * np.array([1.0, 0.3, 0.3]) * rng.standard_normal((n, 3))


def _random_priors(rng):
    return {"prior_b_scale": float(rng.uniform(0.5, 20.0)), "prior_sigma_shape": float(rng.uniform(1.0, 5.0)),
            "prior_sigma_rate": float(rng.uniform(0.1, 3.0))}


# =============================================================================== inverse_transform
def _inverse_why(zeta, theta):
    if theta.shape == zeta.shape and np.allclose(theta, np.exp(zeta), rtol=1e-10):
        return "exp was applied to every coordinate; b0 and b1 live on the real line already, only sigma = exp(zeta2)"
    if theta.shape == zeta.shape and np.allclose(theta, zeta):
        return "zeta came back unchanged: sigma = exp(zeta[..., 2]) is missing"
    return "theta = (zeta0, zeta1, exp(zeta2)): b0 and b1 pass through unchanged, only sigma is constrained"


@ASSIGNMENT.check("inverse_transform", "visible fixture", 1,
                  hints=("Only sigma must be positive, so only the last coordinate changes: sigma = exp(zeta2).",
                         "np.concatenate([zeta[..., :2], np.exp(zeta[..., 2:])], axis=-1) keeps the shape and "
                         "works for one draw or a batch."))
def inverse_visible(ctx):
    zeta = visible_inputs()["zeta"]
    theta = validate_array(Isolation(ctx).run(zeta), "theta returned by inverse_transform", zeta.shape)
    expect.close(theta, visible()["theta"], "theta for the visible zeta", rtol=1e-12, atol=1e-300,
                 why=_inverse_why(zeta, theta), case=expect.format_case(zeta=zeta))


@ASSIGNMENT.check("inverse_transform", "round trip: T(T^{-1}(zeta)) = zeta, for one draw or many", 1)
def inverse_round_trip(ctx):
    iso = Isolation(ctx)
    rng = ctx.rng
    for zeta in (rng.uniform(-20.0, 20.0, size=(6, 3)), rng.uniform(-5.0, 5.0, size=3)):
        case = expect.format_case(zeta=zeta)
        theta = validate_array(iso.run(zeta), f"theta for zeta of shape {zeta.shape}", zeta.shape,
                               why_shape=ONE_OR_MANY)
        if not np.all(theta[..., 2] > 0):
            raise Failed("inverse_transform returned a sigma that is not positive", case=case,
                         why="T^{-1} must map every real zeta2 to a valid sigma > 0: sigma = exp(zeta2)")
        with np.errstate(divide="ignore", invalid="ignore"):
            back = theory.transform(theta)
        expect.close(back, zeta, f"T(theta) = (b0, b1, log sigma) for zeta of shape {zeta.shape}", rtol=1e-12,
                     atol=1e-12, case=case, why=_inverse_why(zeta, theta))


@ASSIGNMENT.check("inverse_transform", "hidden inputs match the reference", 1, needs_reference=True)
def inverse_hidden(ctx):
    iso = Isolation(ctx)
    rng = ctx.rng
    for zeta in (rng.normal(size=(1, 3)), rng.normal(size=3) * 10,
                 np.column_stack([rng.normal(size=(200, 2)) * 100, rng.uniform(-30, 30, 200)])):
        expected = ctx.reference("inverse_transform")(zeta)
        theta = validate_array(iso.run(zeta), f"theta for zeta of shape {zeta.shape}", zeta.shape,
                               why_shape=ONE_OR_MANY)
        expect.close(theta, expected, f"theta for zeta of shape {zeta.shape}", rtol=1e-12, atol=1e-300,
                     case=expect.format_case(zeta=zeta), why=_inverse_why(zeta, theta))


# =============================================================================== log_det_jacobian
def _log_det_why(zeta, got):
    if np.allclose(got, np.exp(zeta[..., 2]), rtol=1e-8):
        return "that is |det J| itself; the function returns its logarithm"
    if np.allclose(got, -zeta[..., 2], rtol=1e-8):
        return ("that is the log-determinant of T (theta -> zeta); ADVI needs the one of T^{-1} "
                "(zeta -> theta), whose Jacobian is diag(1, 1, exp(zeta2))")
    return "J = diag(1, 1, exp(zeta2)), so log|det J| = zeta2 for each draw"


@ASSIGNMENT.check("log_det_jacobian", "visible fixture", 1,
                  hints=("T^{-1} acts on each coordinate separately, so its Jacobian is diagonal.",
                         "The diagonal is (1, 1, exp(zeta2)): the log of its product is zeta2."))
def log_det_visible(ctx):
    zeta = visible_inputs()["zeta"]
    got = validate_array(Isolation(ctx).run(zeta), "log_det returned by log_det_jacobian", (len(zeta),),
                         why_shape="one value per draw: shape (S,) for zeta of shape (S, 3)")
    expect.close(got, visible()["log_det"], "log|det J| for the visible zeta", rtol=1e-12, atol=1e-12,
                 why=_log_det_why(zeta, got), case=expect.format_case(zeta=zeta))


@ASSIGNMENT.check("log_det_jacobian", "equals log|det| of the numerical Jacobian of T^{-1}", 1)
def log_det_numerical(ctx):
    iso = Isolation(ctx)
    zeta = ctx.rng.normal(size=(4, 3)) * 3
    for z in zeta:
        jacobian = np.column_stack([(theory.inverse_transform(z + step) - theory.inverse_transform(z - step)) / 2e-6
                                    for step in np.eye(3) * 1e-6])      # J[i, j] = d theta_i / d zeta_j
        expected = np.log(abs(np.linalg.det(jacobian)))
        got = validate_array(iso.run(z), "log_det for one draw (zeta of shape (3,))", (),
                             why_shape="one draw gives one number, shape ()")
        expect.close(got, expected, "log_det_jacobian(zeta) for one draw", rtol=1e-6, atol=1e-6,
                     case=expect.format_case(zeta=z, numerical_jacobian=jacobian), why=_log_det_why(z, got))
    batch = validate_array(iso.run(zeta), "log_det for zeta of shape (4, 3)", (4,),
                           why_shape="one value per draw: shape (S,) for zeta of shape (S, 3)")
    expect.close(batch, zeta[:, 2], "log_det for a batch of 4 draws", rtol=1e-12, atol=1e-12,
                 case=expect.format_case(zeta=zeta), why=_log_det_why(zeta, batch))


# =============================================================================== log_joint
def _log_joint_why(got, expected):
    diff = np.atleast_1d(np.asarray(got) - np.asarray(expected))
    if diff.size > 1 and np.allclose(diff, diff[0], rtol=0, atol=1e-8 * np.abs(expected).max()):
        return (f"the error is the same constant {diff[0]:.6g} for every theta: a normalising constant is "
                "missing or wrong (-N/2 log(2 pi) in the likelihood, -log(2 pi s^2) for the two coefficients, "
                "a log(rate) - log Gamma(a) for sigma)")
    return ("log p(y, theta) = sum_n log N(y_n | b0 + b1 x_n, sigma^2) + log N(b0 | 0, s^2) + log N(b1 | 0, s^2) "
            "+ log Gamma(sigma | shape a, rate r); note that sigma is a standard deviation and r a rate "
            "(scipy's gamma takes scale = 1 / r)")


@ASSIGNMENT.check("log_joint", "visible fixture", 2,
                  hints=("Add log densities, never multiply densities: 80 of them underflow.",
                         "The Gamma density with shape a and rate r is r^a / Gamma(a) sigma^(a-1) exp(-r sigma); "
                         "use autograd.scipy.special.gammaln for log Gamma(a)."))
def log_joint_visible(ctx):
    x, y = _data()
    theta = visible_inputs()["theta"]
    got = validate_array(Isolation(ctx).run(theta, x, y), "log_p returned by log_joint", (len(theta),),
                         why_shape="one value per draw: shape (S,) for theta of shape (S, 3)")
    expected = visible()["log_joint"]
    expect.close(got, expected, "log p(y, theta) for the visible theta and the notebook's data", rtol=VALUE_RTOL,
                 atol=1e-9, why=_log_joint_why(got, expected), case=expect.format_case(theta=theta))


@ASSIGNMENT.check("log_joint", "matches scipy.stats' densities for any priors and data", 1,
                  hints=("Use the prior arguments, not the numbers 10, 2 and 0.5: the grader tries other priors.",))
def log_joint_scipy(ctx):
    iso = Isolation(ctx)
    rng = ctx.rng
    x, y = _data()
    for n in (7, 80):
        priors = _random_priors(rng)
        theta = theory.inverse_transform(_random_zeta(rng, 4, spread=2.0))
        xs, ys = x[:n], y[:n]
        expected = theory.log_joint(theta, xs, ys, **priors)
        got = validate_array(iso.run(theta, xs, ys, **priors), f"log_p for theta of shape {theta.shape}",
                             (len(theta),), why_shape="one value per draw: shape (S,) for theta of shape (S, 3)")
        expect.close(got, expected, f"log p(y, theta) with N={n} and priors {priors}", rtol=VALUE_RTOL, atol=1e-9,
                     why=_log_joint_why(got, expected),
                     case=expect.format_case(theta=theta, **priors) + f"\nx, y = the first {n} points of the data")


@ASSIGNMENT.check("log_joint", "one value per draw, for one draw or many", 1)
def log_joint_shapes(ctx):
    iso = Isolation(ctx)
    x, y = _data()
    theta = theory.inverse_transform(_random_zeta(ctx.rng, 5))
    batch = validate_array(iso.run(theta, x, y), "log_p for theta of shape (5, 3)", (5,),
                           why_shape="row s of the result is log p(y, theta[s]): reduce over the N observations "
                                     "(axis=-1), never over the draws")
    for s, row in enumerate(theta):
        single = validate_array(iso.run(row, x, y), "log_p for one draw (theta of shape (3,))", (),
                                why_shape=ONE_OR_MANY)
        expect.close(batch[s], single, f"row {s} of log_joint(theta) against log_joint(theta[{s}])",
                     rtol=1e-12, atol=1e-9, case=expect.format_case(theta=theta), why=ONE_OR_MANY + (
                         "; with a batch, b0[..., None] + b1[..., None] * x broadcasts each draw against the N "
                         "observations"))


@ASSIGNMENT.check("log_joint", "hidden inputs match the reference", 1, needs_reference=True)
def log_joint_hidden(ctx):
    iso = Isolation(ctx)
    rng = ctx.rng
    x, y = _data()
    wide = np.column_stack([rng.normal(size=(6, 2)) * 30, rng.uniform(-4.0, 4.0, 6)])
    cases = [(theory.inverse_transform(wide), x, y, {}),
             (theory.inverse_transform(_random_zeta(rng, 3)), x[:1], y[:1], _random_priors(rng)),
             (theory.inverse_transform(_random_zeta(rng, 1)[0]), x, y, _random_priors(rng))]
    big = np.random.default_rng(1).uniform(-3, 9, 400)
    cases.append((theory.inverse_transform(_random_zeta(rng, 4)), big, 2.0 - 0.5 * big, {}))
    for theta, xs, ys, priors in cases:
        expected = ctx.reference("log_joint")(theta, xs, ys, **priors)
        got = validate_array(iso.run(theta, xs, ys, **priors), f"log_p for theta of shape {theta.shape}",
                             np.shape(expected))
        expect.close(got, expected, f"log p(y, theta) (N={len(xs)}, priors {priors or 'default'})",
                     rtol=VALUE_RTOL, atol=1e-9, why=_log_joint_why(got, expected),
                     case=expect.format_case(theta=theta, **priors))


# =============================================================================== log_joint_zeta
def _log_joint_zeta_why(zeta, got, x, y):
    expected = theory.log_joint_zeta(zeta, x, y)
    if np.allclose(got + zeta[..., 2], expected, rtol=1e-10):
        return "the log-Jacobian is missing: add log_det_jacobian(zeta)"
    if np.allclose(got - zeta[..., 2], expected, rtol=1e-10):
        return "the log-Jacobian was subtracted: the density of zeta is p(T^{-1}(zeta)) times |det J_{T^{-1}}|"
    return "log p(y, T^{-1}(zeta)) + log|det J_{T^{-1}}(zeta)|: map zeta to theta first, then add the log-Jacobian"


@ASSIGNMENT.check("log_joint_zeta", "visible fixture", 1,
                  hints=("Compose the functions you wrote: log_joint(inverse_transform(zeta), x, y) + "
                         "log_det_jacobian(zeta).",))
def log_joint_zeta_visible(ctx):
    x, y = _data()
    zeta = visible_inputs()["zeta"]
    got = validate_array(Isolation(ctx).run(zeta, x, y), "log_p returned by log_joint_zeta", (len(zeta),))
    expect.close(got, visible()["log_joint_zeta"], "log p(y, T^{-1}(zeta)) + log|det J| for the visible zeta",
                 rtol=VALUE_RTOL, atol=1e-9, why=_log_joint_zeta_why(zeta, got, x, y),
                 case=expect.format_case(zeta=zeta))


@ASSIGNMENT.check("log_joint_zeta", "is the log joint of T^{-1}(zeta) plus the log-Jacobian", 1)
def log_joint_zeta_property(ctx):
    iso = Isolation(ctx)
    x, y = _data()
    for zeta in (_random_zeta(ctx.rng, 6, spread=2.0), _random_zeta(ctx.rng, 1, spread=2.0)[0]):
        got = validate_array(iso.run(zeta, x, y), f"log_p for zeta of shape {zeta.shape}", zeta.shape[:-1],
                             why_shape=ONE_OR_MANY)
        expect.close(got, theory.log_joint_zeta(zeta, x, y), f"log_joint_zeta for zeta of shape {zeta.shape}",
                     rtol=VALUE_RTOL, atol=1e-9, why=_log_joint_zeta_why(zeta, got, x, y),
                     case=expect.format_case(zeta=zeta))


@ASSIGNMENT.check("log_joint_zeta", "hidden inputs match the reference", 1, needs_reference=True)
def log_joint_zeta_hidden(ctx):
    iso = Isolation(ctx)
    x, y = _data()
    for zeta in (_random_zeta(ctx.rng, 50, spread=4.0), np.zeros(3)):
        expected = ctx.reference("log_joint_zeta")(zeta, x, y)
        got = validate_array(iso.run(zeta, x, y), f"log_p for zeta of shape {zeta.shape}", np.shape(expected))
        expect.close(got, expected, f"log_joint_zeta for zeta of shape {zeta.shape}", rtol=VALUE_RTOL, atol=1e-9,
                     why=_log_joint_zeta_why(zeta, got, x, y), case=expect.format_case(zeta=zeta))


# =============================================================================== grad_log_joint_zeta
def _gradient_why(zeta, got, expected):
    got, expected = np.atleast_2d(got), np.atleast_2d(expected)
    zeta = np.atleast_2d(zeta)
    if got.shape == expected.shape:
        if np.allclose(got[:, :2], expected[:, :2], rtol=1e-6) and np.allclose(got[:, 2] + 1, expected[:, 2], rtol=1e-6):
            return "the gradient of log|det J| (0, 0, 1) is missing from the last coordinate"
        sigma = np.exp(zeta[:, 2])
        if np.allclose(got[:, :2], expected[:, :2], rtol=1e-6) and np.allclose(
                got[:, 2] * sigma, expected[:, 2] - 1, rtol=1e-6):
            return ("the chain rule's factor d sigma / d zeta2 = exp(zeta2) is missing: the last coordinate is "
                    "d log p / d sigma * exp(zeta2) + 1")
    return ("by the chain rule, grad_zeta = grad_theta log p(y, theta) * d theta / d zeta + grad_zeta log|det J|, "
            "with d theta / d zeta = (1, 1, exp(zeta2)) and grad log|det J| = (0, 0, 1)")


def _finite_differences_rows(f, zeta):
    """Central differences of a row-wise function: one column per coordinate, all rows at once."""
    columns = []
    for step in np.eye(zeta.shape[-1]) * FD_STEP:
        columns.append((np.asarray(f(zeta + step), dtype=float) - np.asarray(f(zeta - step), dtype=float))
                       / (2 * FD_STEP))
    return np.stack(columns, axis=-1)


def _judge_gradient(ctx, iso, zeta, x, y, expected, label):
    """The student's gradient at ``zeta`` against ``expected`` (or, see judging.py, against their own function)."""
    case = expect.format_case(zeta=zeta)
    got = validate_array(iso.run(zeta, x, y), f"the gradient returned by grad_log_joint_zeta {label}", zeta.shape,
                         why_shape="one gradient per draw: the same shape as zeta")
    if iso.grading and iso.own:
        used = used_log_joint_zeta(iso, x, y)
        if differs_from_reference(iso, used(zeta), ctx.reference("log_joint_zeta")(zeta, x, y)):
            numerical = _finite_differences_rows(used, zeta)
            compare_gradients([got], [numerical], ["the gradient"], rtol=FD_RTOL, case=case,
                              context=f" {label}" + consistency_note(iso), why=_gradient_why(zeta, got, numerical))
            return
    compare_gradients([got], [expected], ["the gradient"], rtol=GRAD_RTOL, case=case, context=f" {label}",
                      why=_gradient_why(zeta, got, expected))


@ASSIGNMENT.check("grad_log_joint_zeta", "visible fixture", 2,
                  hints=("autograd.elementwise_grad(f)(z) gives df/dz row by row when row s of f(z) depends only "
                         "on row s of z; autograd.grad needs a scalar output.",
                         "Differentiate log_joint with respect to theta, then apply the chain rule through "
                         "T^{-1} and add the gradient of log_det_jacobian; or differentiate log_joint_zeta "
                         "directly."))
def grad_visible(ctx):
    x, y = _data()
    zeta = visible_inputs()["zeta"]
    _judge_gradient(ctx, Isolation(ctx), zeta, x, y, visible()["grad_log_joint_zeta"], "for the visible zeta")


@ASSIGNMENT.check("grad_log_joint_zeta", "matches finite differences of log_joint_zeta", 2)
def grad_finite_differences(ctx):
    iso = Isolation(ctx)
    x, y = _data()
    zeta = _random_zeta(ctx.rng, 3, spread=2.0)
    got = validate_array(iso.run(zeta, x, y), "the gradient for zeta of shape (3, 3)", zeta.shape,
                         why_shape="one gradient per draw: the same shape as zeta")
    numerical = _finite_differences_rows(used_log_joint_zeta(iso, x, y), zeta)
    for s, z in enumerate(zeta):
        note = f" at draw {s}" + (consistency_note(iso) if iso.grading and iso.own else "")
        compare_gradients([got[s]], [numerical[s]], ["the gradient"], rtol=FD_RTOL, context=note,
                          case=expect.format_case(zeta=z, finite_differences=numerical[s]),
                          why=_gradient_why(z, got[s], numerical[s]) + "; compare with (f(z + h e_j) - f(z - h e_j)) / 2h")


@ASSIGNMENT.check("grad_log_joint_zeta", "one gradient per draw, whatever the batch", 1)
def grad_shapes(ctx):
    iso = Isolation(ctx)
    x, y = _data()
    zeta = _random_zeta(ctx.rng, 4)
    batch = validate_array(iso.run(zeta, x, y), "the gradient for zeta of shape (4, 3)", (4, 3),
                           why_shape="one gradient per draw: the same shape as zeta (autograd.grad of a sum over "
                                     "draws would give the same numbers; elementwise_grad does it directly)")
    for s in range(len(zeta)):
        single = validate_array(iso.run(zeta[s:s + 1], x, y), "the gradient for a batch of one draw, shape (1, 3)",
                                (1, 3), why_shape="one gradient per draw: the same shape as zeta")[0]
        expect.close(batch[s], single, f"row {s} of the batch gradient against the gradient at zeta[{s}] alone",
                     rtol=1e-10, atol=1e-10 * np.abs(single).max(), case=expect.format_case(zeta=zeta),
                     why="row s of the result must depend on zeta[s] only: did a sum or mean run over the draws?")


@ASSIGNMENT.check("grad_log_joint_zeta", "hidden inputs match the reference", 1, needs_reference=True)
def grad_hidden(ctx):
    iso = Isolation(ctx)
    rng = ctx.rng
    x, y = _data()
    for zeta in (_random_zeta(rng, 1, spread=3.0), _random_zeta(rng, 40, spread=3.0),
                 np.array([[0.0, 0.0, 0.0], [-20.0, 8.0, -3.0], [40.0, -10.0, 4.0]])):
        expected = ctx.reference("grad_log_joint_zeta")(zeta, x, y)
        _judge_gradient(ctx, iso, zeta, x, y, expected, f"for zeta of shape {zeta.shape}")
