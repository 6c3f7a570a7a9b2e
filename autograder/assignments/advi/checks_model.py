"""Checks of the model's pieces: the transform, its log-Jacobian, the log joint and its gradient."""

from __future__ import annotations

import numpy as np

from ...engine import Failed, expect
from . import judging, theory
from .fixtures import sample, visible, visible_inputs
from .judging import (FD_RTOL, FD_STEP, GRAD_RTOL, VALUE_RTOL, Isolation, check, close, compare_gradients,
                      consistency_note, differs_from_reference, explanation, finite_scale, refuse_tampering,
                      used_log_joint_zeta, validate_array)
from .judging import _probe_inputs as probe_inputs

ONE_OR_MANY = ("accept one draw, shape (3,), or a batch, shape (S, 3): index the last axis (zeta[..., 2]) "
               "instead of the first (zeta[2]) so the same code serves both")
PER_DRAW = "one value per draw: shape (S,) for theta of shape (S, 3)"


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


# =============================================================================== differentiability
# Which of the student's gradient functions may differentiate a function with autograd.
_GRADIENTS = ("grad_log_joint_zeta", "grad_elbo_mean_field", "grad_elbo_full_rank")
DIFFERENTIATED_BY = {"inverse_transform": _GRADIENTS, "log_det_jacobian": _GRADIENTS, "log_joint": _GRADIENTS,
                     "log_joint_zeta": _GRADIENTS, "elbo_mean_field": ("grad_elbo_mean_field",),
                     "elbo_full_rank": ("grad_elbo_full_rank",)}
# The model's functions must be differentiable by autograd whatever the student's gradients do: the notebook
# asks for it (Task 1: build a new array, "autograd cannot differentiate assignments into an existing array";
# Task 3: "write it with autograd.numpy ... so that autograd can differentiate it"; Step 3's two routes both
# differentiate them with autograd), so the check always probes them (a gradient written without autograd
# must not make it pass unprobed). The ELBO estimates need it only where the student's own gradient
# differentiates them: the notebook offers grad(elbo_mean_field, (0, 1)) as one valid way and the
# reparameterisation formulas (through grad_log_joint_zeta) as the other, and asks nothing else of them.
ALWAYS_PROBED = judging.MODEL
DIFFERENTIABLE_CHECK = "autograd can differentiate it"
DIFFERENTIATED_CHECK = "autograd can differentiate it, where your gradient functions do"
DIFFERENTIABLE_HINTS = (
    "autograd follows only autograd.numpy operations that build new arrays: no assignment into an array "
    "(theta[..., 2] = ...), no scipy.stats, no float() or math functions.",
    "Build arrays with np.concatenate / np.stack, write log densities with np.log and np.sum, and take "
    "gammaln from autograd.scipy.special.")


def _gradient_arguments(name: str):
    from .fixtures import L_PROBE, MU_PROBE, OMEGA_PROBE
    x, y = _data()
    eta = np.random.default_rng(5).standard_normal((3, 3))
    if name == "grad_log_joint_zeta":
        return (np.array([[5.1, -3.4, 0.85], [5.5, -3.55, 0.95], [5.3, -3.5, 0.9]]), x, y)
    second = OMEGA_PROBE if name == "grad_elbo_mean_field" else L_PROBE
    return (MU_PROBE.copy(), second.copy(), eta, x, y)


def differentiable_check(ctx, iso: Isolation, name: str) -> None:
    """``name`` must be differentiable by autograd: always for the model's functions (``ALWAYS_PROBED``),
    where the student's own gradient functions differentiate it for the ELBOs (a formula gradient needs
    nothing of them). Its values must be right first, so that the check cannot pass an unimplemented
    function; autograd's derivative is then compared with central differences of the student's own
    values (:meth:`Isolation.probe`), a failure caused by one of its helpers being the helper's."""
    args, _ = probe_inputs(name)
    expected = np.asarray(getattr(theory, name)(*args), dtype=float)
    got = validate_array(iso.run(*args), f"{name}'s value", expected.shape)
    if not close(got, expected, rtol=1e-8, atol_relative=1e-12):
        raise Failed(f"{name} returns wrong values (see its other checks), so autograd's derivative of it "
                     "cannot be right either", case=expect.format_case(**{f"argument {i}": a for i, a in
                                                                          enumerate(args[:3])}))
    differentiated = False
    for gradient in DIFFERENTIATED_BY[name]:
        if not ctx.executor.defines(gradient):
            continue
        users = Isolation(ctx)
        # (a gradient that "differentiates" through a patched autograd shows nothing of its use)
        refuse_tampering(name, users.outcome(gradient, *_gradient_arguments(gradient), timeout=20.0))
        if name in users.own:
            differentiated = True
            break
    if differentiated or name in ALWAYS_PROBED:
        failure = iso.probe(name)
        if failure is not None and failure.culprit == name:
            raise failure


def _depends_on_the_draws(batch, name: str, argument: str) -> None:
    """Different draws give different values (so a function that ignores its input cannot pass a
    consistency check)."""
    if len(batch) > 1 and np.all(batch == batch[0]):
        raise Failed(f"{name} returns the same value for every draw of the batch",
                     why=f"row s of the result is computed from {argument}[s]: different draws give different values")


# =============================================================================== inverse_transform
WHY_EXP_EVERYTHING = explanation(
    "inverse_exp_everything",
    "exp was applied to every coordinate; b0 and b1 live on the real line already, only sigma = exp(zeta2)")
WHY_UNCHANGED = explanation("inverse_unchanged", "zeta came back unchanged: sigma = exp(zeta[..., 2]) is missing")


def _inverse_why(zeta, theta):
    if theta.shape == zeta.shape and close(theta, np.exp(zeta), rtol=1e-10):
        return WHY_EXP_EVERYTHING
    if theta.shape == zeta.shape and close(theta, zeta, rtol=1e-10):
        return WHY_UNCHANGED
    return "theta = (zeta0, zeta1, exp(zeta2)): b0 and b1 pass through unchanged, only sigma is constrained"


@check("inverse_transform", "visible fixture", 1,
       hints=("Only sigma must be positive, so only the last coordinate changes: sigma = exp(zeta2).",
              "np.concatenate([zeta[..., :2], np.exp(zeta[..., 2:])], axis=-1) keeps the shape and "
              "works for one draw or a batch."))
def inverse_visible(ctx, iso):
    zeta = visible_inputs()["zeta"]
    theta = validate_array(iso.run(zeta), "theta returned by inverse_transform", zeta.shape)
    expect.close(theta, visible()["theta"], "theta for the visible zeta", rtol=1e-12, atol=1e-300,
                 why=_inverse_why(zeta, theta), case=expect.format_case(zeta=zeta))


@check("inverse_transform", "round trip: T(T^{-1}(zeta)) = zeta, for one draw or many", 1,
       hints=("Index the last axis (zeta[..., 2]) so the same code serves one draw (3,) and a batch (S, 3).",
              "T(theta) = (b0, b1, log sigma) must give zeta back for every real zeta2: sigma = exp(zeta2) > 0."))
def inverse_round_trip(ctx, iso):
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


@check("inverse_transform", DIFFERENTIABLE_CHECK, 1, hints=DIFFERENTIABLE_HINTS)
def inverse_differentiable(ctx, iso):
    differentiable_check(ctx, iso, "inverse_transform")


@check("inverse_transform", "hidden inputs match the reference", 1, needs_reference=True)
def inverse_hidden(ctx, iso):
    rng = ctx.rng
    for zeta in (rng.normal(size=(1, 3)), rng.normal(size=3) * 10,
                 np.column_stack([rng.normal(size=(200, 2)) * 100, rng.uniform(-30, 30, 200)])):
        expected = ctx.reference("inverse_transform")(zeta)
        theta = validate_array(iso.run(zeta), f"theta for zeta of shape {zeta.shape}", zeta.shape,
                               why_shape=ONE_OR_MANY)
        expect.close(theta, expected, f"theta for zeta of shape {zeta.shape}", rtol=1e-12, atol=1e-300,
                     case=expect.format_case(zeta=zeta), why=_inverse_why(zeta, theta))


# =============================================================================== log_det_jacobian
WHY_LOG_DET_EXP = explanation("log_det_not_log", "that is |det J| itself; the function returns its logarithm")
WHY_LOG_DET_FORWARD = explanation(
    "log_det_forward", "that is the log-determinant of T (theta -> zeta); ADVI needs the one of T^{-1} "
                       "(zeta -> theta), whose Jacobian is diag(1, 1, exp(zeta2))")


def _log_det_why(zeta, got):
    if close(got, np.exp(zeta[..., 2]), rtol=1e-8):
        return WHY_LOG_DET_EXP
    if close(got, -zeta[..., 2], rtol=1e-8):
        return WHY_LOG_DET_FORWARD
    return "J = diag(1, 1, exp(zeta2)), so log|det J| = zeta2 for each draw"


@check("log_det_jacobian", "visible fixture", 1,
       hints=("T^{-1} acts on each coordinate separately, so its Jacobian is diagonal.",
              "The diagonal is (1, 1, exp(zeta2)): the log of its product is zeta2."))
def log_det_visible(ctx, iso):
    zeta = visible_inputs()["zeta"]
    got = validate_array(iso.run(zeta), "log_det returned by log_det_jacobian", (len(zeta),),
                         why_shape="one value per draw: shape (S,) for zeta of shape (S, 3)")
    expect.close(got, visible()["log_det"], "log|det J| for the visible zeta", rtol=1e-12, atol=1e-12,
                 why=_log_det_why(zeta, got), case=expect.format_case(zeta=zeta))


@check("log_det_jacobian", "equals log|det| of the numerical Jacobian of T^{-1}", 1,
       hints=("Work out the 3 x 3 Jacobian of (zeta0, zeta1, exp(zeta2)) and take the log of its determinant.",
              "One draw (3,) gives one number; a batch (S, 3) gives S numbers: index zeta[..., 2]."))
def log_det_numerical(ctx, iso):
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


@check("log_det_jacobian", DIFFERENTIABLE_CHECK, 1, hints=DIFFERENTIABLE_HINTS)
def log_det_differentiable(ctx, iso):
    differentiable_check(ctx, iso, "log_det_jacobian")


# =============================================================================== log_joint
WHY_CONSTANT = explanation(
    "log_joint_constant",
    "the error is the same constant for every theta: a normalising constant is missing or wrong "
    "(-N/2 log(2 pi) in the likelihood, -log(2 pi s^2) for the two coefficients, a log(rate) - log Gamma(a) "
    "for sigma)")
WHY_RATE_AS_SCALE = explanation(
    "log_joint_rate_as_scale",
    "the Gamma prior's rate r was used as a scale: its density is r^a / Gamma(a) sigma^(a-1) exp(-r sigma) "
    "(scipy's gamma takes scale = 1 / r)")
WHY_SCALE_AS_VARIANCE = explanation(
    "log_joint_scale_as_variance",
    "prior_b_scale is the standard deviation s of N(0, s^2), not its variance: the prior term is "
    "-log(2 pi s^2) / 2 - b^2 / (2 s^2) per coefficient")
WHY_IGNORES_PRIOR = explanation(
    "log_joint_ignores_prior",
    "use the arguments prior_b_scale, prior_sigma_shape and prior_sigma_rate, not the numbers 10, 2 and 0.5: "
    "the grader tries other priors")
WHY_LOG_JOINT_GENERIC = (
    "log p(y, theta) = sum_n log N(y_n | b0 + b1 x_n, sigma^2) + log N(b0 | 0, s^2) + log N(b1 | 0, s^2) "
    "+ log Gamma(sigma | shape a, rate r); note that sigma is a standard deviation and r a rate "
    "(scipy's gamma takes scale = 1 / r)")


def _log_joint_why(got, theta, x, y, priors: dict | None = None):
    priors = dict(theory.PRIORS, **(priors or {}))
    expected = theory.log_joint(theta, x, y, **priors)
    diff = np.atleast_1d(np.asarray(got, dtype=float) - expected)
    if diff.size > 1 and np.all(np.isfinite(diff)) and close(diff, np.full_like(diff, diff[0]), rtol=0,
                                                             atol=1e-8 * finite_scale(expected)):
        return WHY_CONSTANT
    swapped = dict(priors, prior_sigma_rate=1.0 / priors["prior_sigma_rate"])
    if close(got, theory.log_joint(theta, x, y, **swapped), rtol=1e-10):
        return WHY_RATE_AS_SCALE
    variance = dict(priors, prior_b_scale=np.sqrt(priors["prior_b_scale"]))
    if close(got, theory.log_joint(theta, x, y, **variance), rtol=1e-10):
        return WHY_SCALE_AS_VARIANCE
    return WHY_LOG_JOINT_GENERIC


def _ignored_priors(iso, theta, x, y, priors) -> list[str]:
    """The prior arguments whose change alone leaves the student's log_joint unchanged."""
    base = np.asarray(iso.run(theta, x, y, **priors), dtype=float)
    ignored = []
    for name in ("prior_b_scale", "prior_sigma_shape", "prior_sigma_rate"):
        changed = dict(priors, **{name: priors[name] * 1.7})
        try:
            value = np.asarray(iso.run(theta, x, y, **changed), dtype=float)
        except Failed:
            continue
        if value.shape == base.shape and np.array_equal(value, base):
            ignored.append(name)
    return ignored


@check("log_joint", "visible fixture", 2,
       hints=("Add log densities, never multiply densities: 80 of them underflow.",
              "The Gamma density with shape a and rate r is r^a / Gamma(a) sigma^(a-1) exp(-r sigma); "
              "use autograd.scipy.special.gammaln for log Gamma(a)."))
def log_joint_visible(ctx, iso):
    x, y = _data()
    theta = visible_inputs()["theta"]
    got = validate_array(iso.run(theta, x, y), "log_p returned by log_joint", (len(theta),), why_shape=PER_DRAW)
    expect.close(got, visible()["log_joint"], "log p(y, theta) for the visible theta and the notebook's data",
                 rtol=VALUE_RTOL, atol=1e-9, why=_log_joint_why(got, theta, x, y), case=expect.format_case(theta=theta))


@check("log_joint", "matches scipy.stats' densities for any priors and data", 1,
       hints=("Use the prior arguments, not the numbers 10, 2 and 0.5: the grader tries other priors.",))
def log_joint_scipy(ctx, iso):
    rng = ctx.rng
    x, y = _data()
    for n in (7, 80):
        priors = _random_priors(rng)
        theta = theory.inverse_transform(_random_zeta(rng, 4, spread=2.0))
        xs, ys = x[:n], y[:n]
        expected = theory.log_joint(theta, xs, ys, **priors)
        got = validate_array(iso.run(theta, xs, ys, **priors), f"log_p for theta of shape {theta.shape}",
                             (len(theta),), why_shape=PER_DRAW)
        case = expect.format_case(theta=theta, **priors) + f"\nx, y = the first {n} points of the data"
        if not close(got, expected, rtol=VALUE_RTOL, atol=1e-9):
            ignored = _ignored_priors(iso, theta, xs, ys, priors)
            if ignored:
                raise Failed(f"log_joint gives the same log p whatever {' and '.join(ignored)} is (it ignores "
                             f"{'that argument' if len(ignored) == 1 else 'those arguments'})",
                             why=WHY_IGNORES_PRIOR, case=case)
        expect.close(got, expected, f"log p(y, theta) with N={n} and priors {priors}", rtol=VALUE_RTOL, atol=1e-9,
                     why=_log_joint_why(got, theta, xs, ys, priors), case=case)


@check("log_joint", "one value per draw, for one draw or many", 1,
       hints=("Index the last axis: theta[..., 0], theta[..., 1], theta[..., 2] work for (3,) and (S, 3).",
              "Give each draw its own row against the N observations (a trailing axis of length 1, e.g. "
              "np.expand_dims(b0, -1)) and sum over the last axis only."))
def log_joint_shapes(ctx, iso):
    x, y = _data()
    theta = theory.inverse_transform(_random_zeta(ctx.rng, 5))
    batch = validate_array(iso.run(theta, x, y), "log_p for theta of shape (5, 3)", (5,),
                           why_shape="row s of the result is log p(y, theta[s]): reduce over the N observations "
                                     "(axis=-1), never over the draws")
    _depends_on_the_draws(batch, "log_joint", "theta")
    for s, row in enumerate(theta):
        single = validate_array(iso.run(row, x, y), "log_p for one draw (theta of shape (3,))", (),
                                why_shape=ONE_OR_MANY)
        expect.close(batch[s], single, f"row {s} of log_joint(theta) against log_joint(theta[{s}])",
                     rtol=1e-12, atol=1e-9, case=expect.format_case(theta=theta), why=ONE_OR_MANY + (
                         "; with a batch, each draw needs a trailing axis (np.expand_dims(b0, -1)) to broadcast "
                         "against the N observations"))


@check("log_joint", DIFFERENTIABLE_CHECK, 1, hints=DIFFERENTIABLE_HINTS)
def log_joint_differentiable(ctx, iso):
    differentiable_check(ctx, iso, "log_joint")


@check("log_joint", "hidden inputs match the reference", 1, needs_reference=True)
def log_joint_hidden(ctx, iso):
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
                     rtol=VALUE_RTOL, atol=1e-9, why=_log_joint_why(got, theta, xs, ys, priors),
                     case=expect.format_case(theta=theta, **priors))


# =============================================================================== log_joint_zeta
WHY_JACOBIAN_MISSING = explanation("jacobian_missing", "the log-Jacobian is missing: add log_det_jacobian(zeta)")
WHY_JACOBIAN_SUBTRACTED = explanation(
    "jacobian_subtracted",
    "the log-Jacobian was subtracted: the density of zeta is p(T^{-1}(zeta)) times |det J_{T^{-1}}|")


def _log_joint_zeta_why(zeta, got, x, y):
    expected = theory.log_joint_zeta(zeta, x, y)
    if close(got + zeta[..., 2], expected, rtol=1e-10):
        return WHY_JACOBIAN_MISSING
    if close(got + 2 * zeta[..., 2], expected, rtol=1e-10):
        return WHY_JACOBIAN_SUBTRACTED
    return "log p(y, T^{-1}(zeta)) + log|det J_{T^{-1}}(zeta)|: map zeta to theta first, then add the log-Jacobian"


@check("log_joint_zeta", "visible fixture", 1,
       hints=("Compose the functions you wrote: log_joint(inverse_transform(zeta), x, y) + "
              "log_det_jacobian(zeta).",))
def log_joint_zeta_visible(ctx, iso):
    x, y = _data()
    zeta = visible_inputs()["zeta"]
    got = validate_array(iso.run(zeta, x, y), "log_p returned by log_joint_zeta", (len(zeta),))
    expect.close(got, visible()["log_joint_zeta"], "log p(y, T^{-1}(zeta)) + log|det J| for the visible zeta",
                 rtol=VALUE_RTOL, atol=1e-9, why=_log_joint_zeta_why(zeta, got, x, y),
                 case=expect.format_case(zeta=zeta))


@check("log_joint_zeta", "is the log joint of T^{-1}(zeta) plus the log-Jacobian", 1,
       hints=("log p(y, zeta) = log_joint(inverse_transform(zeta), x, y) + log_det_jacobian(zeta), for one draw "
              "(3,) or a batch (S, 3).",))
def log_joint_zeta_property(ctx, iso):
    x, y = _data()
    for zeta in (_random_zeta(ctx.rng, 6, spread=2.0), _random_zeta(ctx.rng, 1, spread=2.0)[0]):
        got = validate_array(iso.run(zeta, x, y), f"log_p for zeta of shape {zeta.shape}", zeta.shape[:-1],
                             why_shape=ONE_OR_MANY)
        expect.close(got, theory.log_joint_zeta(zeta, x, y), f"log_joint_zeta for zeta of shape {zeta.shape}",
                     rtol=VALUE_RTOL, atol=1e-9, why=_log_joint_zeta_why(zeta, got, x, y),
                     case=expect.format_case(zeta=zeta))


@check("log_joint_zeta", DIFFERENTIABLE_CHECK, 1, hints=DIFFERENTIABLE_HINTS)
def log_joint_zeta_differentiable(ctx, iso):
    differentiable_check(ctx, iso, "log_joint_zeta")


@check("log_joint_zeta", "hidden inputs match the reference", 1, needs_reference=True)
def log_joint_zeta_hidden(ctx, iso):
    x, y = _data()
    for zeta in (_random_zeta(ctx.rng, 50, spread=4.0), np.zeros(3)):
        expected = ctx.reference("log_joint_zeta")(zeta, x, y)
        got = validate_array(iso.run(zeta, x, y), f"log_p for zeta of shape {zeta.shape}", np.shape(expected))
        expect.close(got, expected, f"log_joint_zeta for zeta of shape {zeta.shape}", rtol=VALUE_RTOL, atol=1e-9,
                     why=_log_joint_zeta_why(zeta, got, x, y), case=expect.format_case(zeta=zeta))


# =============================================================================== grad_log_joint_zeta
WHY_GRAD_NO_LOG_DET = explanation(
    "grad_no_log_det", "the gradient of log|det J| (0, 0, 1) is missing from the last coordinate")
WHY_GRAD_NO_CHAIN = explanation(
    "grad_no_chain_rule", "the chain rule's factor d sigma / d zeta2 = exp(zeta2) is missing: the last coordinate "
                          "is d log p / d sigma * exp(zeta2) + 1")
WHY_GRAD_ROWS_MIXED = explanation(
    "grad_rows_mixed", "row s of the result must depend on zeta[s] only: a sum or mean ran over the draws")


def _gradient_why(zeta, got, expected):
    got, expected = np.atleast_2d(got), np.atleast_2d(expected)
    zeta = np.atleast_2d(zeta)
    if got.shape == expected.shape:
        first_two = close(got[:, :2], expected[:, :2], rtol=1e-6, atol_relative=1e-9)
        if first_two and close(got[:, 2] + 1, expected[:, 2], rtol=1e-6, atol_relative=1e-9):
            return WHY_GRAD_NO_LOG_DET
        sigma = np.exp(zeta[:, 2])
        if first_two and close((got[:, 2] - 1) * sigma, expected[:, 2] - 1, rtol=1e-6, atol_relative=1e-9):
            return WHY_GRAD_NO_CHAIN
        if len(got) > 1 and close(got, np.broadcast_to(expected.mean(axis=0), got.shape), rtol=1e-6,
                                  atol_relative=1e-9):
            return WHY_GRAD_ROWS_MIXED
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
    if iso.own:
        used = used_log_joint_zeta(iso, x, y)
        if differs_from_reference(iso, used(zeta), iso.implementation("log_joint_zeta")(zeta, x, y)):
            numerical = _finite_differences_rows(used, zeta)
            compare_gradients([got], [numerical], ["the gradient"], rtol=FD_RTOL, case=case,
                              context=f" {label}" + consistency_note(iso), why=_gradient_why(zeta, got, numerical))
            return
    compare_gradients([got], [expected], ["the gradient"], rtol=GRAD_RTOL, case=case, context=f" {label}",
                      why=_gradient_why(zeta, got, expected))


GRADIENT_HINTS = (
    "autograd.elementwise_grad(f)(z) gives df/dz row by row when row s of f(z) depends only on row s of z; "
    "autograd.grad needs a scalar output.",
    "Differentiate log_joint with respect to theta, then apply the chain rule through T^{-1} and add the "
    "gradient of log_det_jacobian; or differentiate log_joint_zeta directly.")


@check("grad_log_joint_zeta", "visible fixture", 2, hints=GRADIENT_HINTS)
def grad_visible(ctx, iso):
    x, y = _data()
    zeta = visible_inputs()["zeta"]
    _judge_gradient(ctx, iso, zeta, x, y, visible()["grad_log_joint_zeta"], "for the visible zeta")


@check("grad_log_joint_zeta", "matches finite differences of log_joint_zeta", 2,
       hints=("Compare your gradient with (f(z + h e_j) - f(z - h e_j)) / 2h for h = 1e-5: a check you can run "
              "whenever you write a gradient.",) + GRADIENT_HINTS)
def grad_finite_differences(ctx, iso):
    x, y = _data()
    zeta = _random_zeta(ctx.rng, 3, spread=2.0)
    got = validate_array(iso.run(zeta, x, y), "the gradient for zeta of shape (3, 3)", zeta.shape,
                         why_shape="one gradient per draw: the same shape as zeta")
    numerical = _finite_differences_rows(used_log_joint_zeta(iso, x, y), zeta)
    for s, z in enumerate(zeta):
        note = f" at draw {s}" + (consistency_note(iso) if iso.own else "")
        compare_gradients([got[s]], [numerical[s]], ["the gradient"], rtol=FD_RTOL, context=note,
                          case=expect.format_case(zeta=z, finite_differences=numerical[s]),
                          why=_gradient_why(z, got[s], numerical[s]) + "; compare with (f(z + h e_j) - f(z - h e_j)) / 2h")


@check("grad_log_joint_zeta", "one gradient per draw, whatever the batch", 1,
       hints=("Row s of the gradient must depend on zeta[s] only: elementwise_grad of a function whose row s "
              "depends on row s gives exactly that; never sum or average over the draws.",))
def grad_shapes(ctx, iso):
    x, y = _data()
    zeta = _random_zeta(ctx.rng, 4)
    batch = validate_array(iso.run(zeta, x, y), "the gradient for zeta of shape (4, 3)", (4, 3),
                           why_shape="one gradient per draw: the same shape as zeta (autograd.grad of a sum over "
                                     "draws would give the same numbers; elementwise_grad does it directly)")
    _depends_on_the_draws(batch, "grad_log_joint_zeta", "zeta")
    for s in range(len(zeta)):
        single = validate_array(iso.run(zeta[s:s + 1], x, y), "the gradient for a batch of one draw, shape (1, 3)",
                                (1, 3), why_shape="one gradient per draw: the same shape as zeta")[0]
        expect.close(batch[s], single, f"row {s} of the batch gradient against the gradient at zeta[{s}] alone",
                     rtol=1e-10, atol=1e-10 * finite_scale(single), case=expect.format_case(zeta=zeta),
                     why=WHY_GRAD_ROWS_MIXED)


@check("grad_log_joint_zeta", "hidden inputs match the reference", 1, needs_reference=True)
def grad_hidden(ctx, iso):
    rng = ctx.rng
    x, y = _data()
    for zeta in (_random_zeta(rng, 1, spread=3.0), _random_zeta(rng, 40, spread=3.0),
                 np.array([[0.0, 0.0, 0.0], [-20.0, 8.0, -3.0], [40.0, -10.0, 4.0]])):
        expected = ctx.reference("grad_log_joint_zeta")(zeta, x, y)
        _judge_gradient(ctx, iso, zeta, x, y, expected, f"for zeta of shape {zeta.shape}")
