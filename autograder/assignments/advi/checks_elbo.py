"""Checks of the Monte Carlo ELBOs and their reparameterisation gradients (mean-field and full-rank)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...engine import Failed, expect
from . import theory
from .checks_model import DIFFERENTIABLE_HINTS, DIFFERENTIATED_CHECK, differentiable_check
from .fixtures import L_FLIPPED, L_PROBE, MU_PROBE, OMEGA_PROBE, sample, visible, visible_inputs
from .judging import (ELBO_RTOL, EXPLANATIONS, FD_RTOL, GRAD_RTOL, WHY_NAN, check, central_differences, close, compare_gradients,
                      consistency_note, differs_from_reference, explanation, finite_scale, used_elbo, validate_pair,
                      validate_scalar)

# The high-precision comparisons: S draws, and how many standard errors an estimate may be off.
EXACT_DRAWS = 2000
Z_LIMIT = 5.0            # a correct estimate is further only with probability 6e-7 per quantity
BATCHES, BATCH_SIZE = 40, 50
LOWER = np.tril(np.ones((3, 3), dtype=bool))


@dataclass(frozen=True)
class Family:
    name: str                     # "mean_field" or "full_rank"
    second: str                   # "omega" or "L"
    shape: tuple                  # shape of the second parameter
    key: str                      # suffix of the visible expectations

    @property
    def elbo(self) -> str:
        return f"elbo_{self.name}"

    @property
    def grad(self) -> str:
        return f"grad_elbo_{self.name}"

    @property
    def probe(self):
        return (MU_PROBE.copy(), (OMEGA_PROBE if self.name == "mean_field" else L_PROBE).copy())

    @property
    def mask(self):
        return None if self.name == "mean_field" else LOWER

    def draws(self, mu, second, eta):
        if self.name == "mean_field":
            return theory.mean_field_draws(mu, second, eta)
        return theory.full_rank_draws(mu, second, eta)

    def entropy(self, second) -> float:
        return theory.entropy_mean_field(second) if self.name == "mean_field" else theory.entropy_full_rank(second)

    def elbo_terms(self, mu, second, eta, x, y):
        if self.name == "mean_field":
            return theory.elbo_terms_mean_field(mu, second, eta, x, y)
        return theory.elbo_terms_full_rank(mu, second, eta, x, y)

    def exact_elbo(self, mu, second, x, y) -> float:
        if self.name == "mean_field":
            return float(theory.exact_elbo_mean_field(mu, second, x, y))
        return float(theory.exact_elbo_full_rank(mu, second, x, y))

    def gradient_terms(self, mu, second, eta, x, y):
        if self.name == "mean_field":
            return theory.gradient_terms_mean_field(mu, second, eta, x, y)
        return theory.gradient_terms_full_rank(mu, second, eta, x, y)

    def exact_gradient(self, mu, second, x, y):
        if self.name == "mean_field":
            return list(theory.exact_grad_mean_field(mu, second, x, y))
        return list(theory.exact_grad_full_rank(mu, second, x, y))

    def case(self, mu, second, eta=None) -> str:
        values = {"mu": mu, self.second: second}
        if eta is not None:
            values["eta"] = eta
        return expect.format_case(**values)


MEAN_FIELD = Family("mean_field", "omega", (3,), "mf")
FULL_RANK = Family("full_rank", "L", (3, 3), "fr")


def _data():
    s = sample()
    return s["x"], s["y"]


def _hidden_parameters(family: Family, rng, flip: bool = False):
    mu = MU_PROBE + 0.3 * rng.standard_normal(3)
    if family.name == "mean_field":
        return mu, OMEGA_PROBE + 0.5 * rng.standard_normal(3)
    L = L_PROBE * np.exp(0.3 * rng.standard_normal((3, 3)))
    if flip:
        L[1, :] = -L[1, :]           # a negative diagonal entry: q depends on L L^T only
    return mu, np.tril(L)


# =============================================================================== ELBO estimates
WHY_NO_ENTROPY = explanation(
    "elbo_no_entropy", "the entropy of q is missing: ELBO = E_q[log p(y, T^{-1}(zeta)) + log|det J|] + H[q]")
WHY_NO_ENTROPY_CONSTANT = explanation(
    "elbo_no_entropy_constant", "the entropy's constant D/2 (1 + log 2 pi) is missing")
WHY_SUMMED_DRAWS = explanation("elbo_summed_draws", "the draws were summed; the expectation is their average")
WHY_ENTROPY_SUBTRACTED = explanation("elbo_entropy_subtracted", "the entropy was subtracted; the ELBO adds it")
WHY_HALF_OMEGA = explanation(
    "elbo_half_omega", "q's standard deviations are exp(omega), not exp(omega / 2): zeta = mu + exp(omega) * eta")
WHY_ETA_L = explanation(
    "elbo_eta_L", "with one draw per row of eta, zeta_s = mu + L eta_s is `mu + eta @ L.T`, not `eta @ L`")
WHY_LOG_DET_FULL = explanation(
    "elbo_log_det_full", "the entropy is sum log|L_ii| + D/2 (1 + log 2 pi): log det(L L^T) / 2, not log det(L L^T)")
WHY_NEGATIVE_DIAGONAL = explanation(
    "elbo_negative_diagonal",
    "a diagonal entry of L is negative here, and the log of a negative number is NaN: the entropy uses "
    "log|L_ii| (q depends on L L^T only, so the diagonal of L may have either sign)")


def _elbo_why(family: Family, got, mu, second, eta, x, y) -> str:
    """Name the classic mistake the estimate matches, if any."""
    log_p = theory.log_joint_zeta(family.draws(mu, second, eta), x, y)
    entropy = family.entropy(second)
    alternatives = {
        WHY_NO_ENTROPY: log_p.mean(),
        WHY_NO_ENTROPY_CONSTANT: log_p.mean() + entropy - theory.ENTROPY_CONSTANT,
        WHY_SUMMED_DRAWS: log_p.sum() + entropy,
        WHY_ENTROPY_SUBTRACTED: log_p.mean() - entropy,
    }
    if family.name == "mean_field":
        alternatives[WHY_HALF_OMEGA] = theory.log_joint_zeta(mu + np.exp(second / 2) * eta, x, y).mean() + entropy
    else:
        alternatives[WHY_ETA_L] = theory.log_joint_zeta(mu + eta @ second, x, y).mean() + entropy
        alternatives[WHY_LOG_DET_FULL] = log_p.mean() + entropy + np.sum(np.log(np.abs(np.diag(second))))
    for why, value in alternatives.items():
        if len(eta) > 1 or why != WHY_SUMMED_DRAWS:
            if close(got, value, rtol=1e-9, atol=1e-9):
                return why
    entropy_text = "sum(omega)" if family.name == "mean_field" else "sum(log|L_ii|)"
    return (f"ELBO estimate = mean over draws of log_joint_zeta(zeta_s) + H[q], with H[q] = {entropy_text} "
            "+ D/2 (1 + log 2 pi) exactly")


def _elbo_value(iso, family: Family, mu, second, eta, x, y) -> float:
    """The student's ELBO estimate, validated (a NaN with a negative diagonal of L says why)."""
    why_nonfinite = ""
    if family.name == "full_rank" and np.any(np.diag(second) < 0):
        why_nonfinite = WHY_NEGATIVE_DIAGONAL
    value = iso.run(mu, second, eta, x, y)
    try:
        return validate_scalar(value, f"the ELBO returned by {family.elbo}")
    except Failed as failure:
        if why_nonfinite and failure.why == WHY_NAN:
            failure.why = why_nonfinite
            failure.case = family.case(mu, second, eta)
        raise


def _elbo_visible(ctx, iso, family: Family):
    x, y = _data()
    eta = visible_inputs()["eta"]
    mu, second = family.probe
    points = [(second, f"elbo_{family.key}", "")]
    if family.name == "full_rank":       # a factor with a negative diagonal entry: q is the same Gaussian
        points.append((L_FLIPPED.copy(), "elbo_fr_flipped", " with a negative diagonal entry of L"))
    for second, key, label in points:
        got = _elbo_value(iso, family, mu, second, eta, x, y)
        expected = float(visible()[key])
        expect.close(got, expected, f"the ELBO estimate for the visible ({'mu, ' + family.second}, eta){label}",
                     rtol=ELBO_RTOL, atol=1e-9, why=_elbo_why(family, got, mu, second, eta, x, y),
                     case=family.case(mu, second, eta))


def _elbo_exact(ctx, iso, family: Family):
    x, y = _data()
    mu, second = family.probe
    wider = second + 0.8 if family.name == "mean_field" else second * 1.8
    for second in (second, wider):
        eta = ctx.rng.standard_normal((EXACT_DRAWS, 3))
        got = _elbo_value(iso, family, mu, second, eta, x, y)
        terms = family.elbo_terms(mu, second, eta, x, y)
        standard_error = terms.std(ddof=1) / np.sqrt(EXACT_DRAWS)
        exact = family.exact_elbo(mu, second, x, y)
        if not abs(got - exact) <= Z_LIMIT * standard_error:
            raise Failed(f"with S = {EXACT_DRAWS} draws {family.elbo} estimates {got:.6f}, but the exact ELBO of this "
                         f"q (closed form) is {exact:.6f}: {abs(got - exact) / standard_error:.0f} standard errors "
                         f"away (standard error {standard_error:.2g})",
                         why=_elbo_why(family, got, mu, second, eta, x, y), case=family.case(mu, second)
                         + f"\neta = {EXACT_DRAWS} standard-normal draws")


def _elbo_hidden(ctx, iso, family: Family):
    x, y = _data()
    for n_draws, flip in ((1, False), (37, True), (5, False)):
        mu, second = _hidden_parameters(family, ctx.rng, flip=flip)
        eta = ctx.rng.standard_normal((n_draws, 3))
        expected = float(ctx.reference(family.elbo)(mu, second, eta, x, y))
        got = _elbo_value(iso, family, mu, second, eta, x, y)
        expect.close(got, expected, f"the ELBO estimate with S={n_draws}" + (
            " and a negative diagonal entry of L" if flip and family.name == "full_rank" else ""),
            rtol=ELBO_RTOL, atol=1e-9, why=_elbo_why(family, got, mu, second, eta, x, y),
            case=family.case(mu, second, eta))


ELBO_MF_HINTS = ("Draw zeta_s = mu + exp(omega) * eta_s for every row of eta (broadcasting does it), "
                 "average log_joint_zeta over the rows, and add the entropy.",
                 "The entropy of N(mu, diag(exp(omega))^2) is sum(omega) + 3/2 (1 + log 2 pi); it needs no Monte Carlo.")
ELBO_FR_HINTS = ("With one draw per row of eta, zeta = mu + eta @ L.T gives zeta_s = mu + L eta_s.",
                 "The entropy of N(mu, L L^T) is sum(log|L_ii|) + 3/2 (1 + log 2 pi): the absolute value matters, "
                 "the diagonal of L may be negative.")


@check("elbo_mean_field", "visible fixture", 2, hints=ELBO_MF_HINTS)
def elbo_mf_visible(ctx, iso):
    _elbo_visible(ctx, iso, MEAN_FIELD)


@check("elbo_mean_field", "agrees with the exact ELBO (2000 draws)", 2, hints=ELBO_MF_HINTS)
def elbo_mf_exact(ctx, iso):
    _elbo_exact(ctx, iso, MEAN_FIELD)


@check("elbo_mean_field", DIFFERENTIATED_CHECK, 1, hints=DIFFERENTIABLE_HINTS)
def elbo_mf_differentiable(ctx, iso):
    differentiable_check(ctx, iso, "elbo_mean_field")


@check("elbo_mean_field", "hidden inputs match the reference", 1, needs_reference=True)
def elbo_mf_hidden(ctx, iso):
    _elbo_hidden(ctx, iso, MEAN_FIELD)


@check("elbo_full_rank", "visible fixture", 2, hints=ELBO_FR_HINTS)
def elbo_fr_visible(ctx, iso):
    _elbo_visible(ctx, iso, FULL_RANK)


@check("elbo_full_rank", "agrees with the exact ELBO (2000 draws)", 2, hints=ELBO_FR_HINTS)
def elbo_fr_exact(ctx, iso):
    _elbo_exact(ctx, iso, FULL_RANK)


@check("elbo_full_rank", DIFFERENTIATED_CHECK, 1, hints=DIFFERENTIABLE_HINTS)
def elbo_fr_differentiable(ctx, iso):
    differentiable_check(ctx, iso, "elbo_full_rank")


@check("elbo_full_rank", "hidden inputs match the reference", 1, needs_reference=True)
def elbo_fr_hidden(ctx, iso):
    _elbo_hidden(ctx, iso, FULL_RANK)


# =============================================================================== gradients
WHY_GRAD_L_UPPER = explanation(
    "grad_L_upper", "only the lower triangle of L is a parameter (L stays lower triangular): keep the lower "
                    "triangle of the gradient with np.tril and zeros above it")
WHY_GRAD_MU_SUMMED = explanation("grad_mu_summed", "grad_mu is summed over the draws; the estimate is their average")
WHY_MF_NO_ENTROPY = explanation("grad_omega_no_entropy", "the entropy's gradient (+1 for every omega_i) is missing")
WHY_MF_NO_CHAIN = explanation(
    "grad_omega_no_chain", "the chain rule's factor exp(omega) is missing: d zeta / d omega = exp(omega) * eta")
WHY_MF_SQUARED = explanation(
    "grad_omega_squared", "grad_omega = mean(g_s * eta_s) * exp(omega) + 1, not with exp(omega) squared")
WHY_FR_NO_ENTROPY = explanation("grad_L_no_entropy", "the entropy's gradient diag(1 / L_ii) is missing")
WHY_FR_INVERSE = explanation(
    "grad_L_inverse", "(L^{-1})^T is upper triangular: restricted to the lower triangle it is diag(1 / L_ii); "
                      "L^{-1} itself has entries below the diagonal")
WHY_FR_TRANSPOSED = explanation(
    "grad_L_transposed", "grad_L is the average of g_s eta_s^T (rows from g, columns from eta), not eta_s g_s^T")


def _validate_gradient(value, family: Family):
    grads = validate_pair(value, family.grad, ("grad_mu", f"grad_{family.second}"), ((3,), family.shape))
    if family.name == "full_rank":
        upper = np.abs(np.triu(grads[1], 1)).max()
        if upper > 1e-12 * max(finite_scale(grads[1]), 1e-300):
            raise Failed(f"grad_L has non-zero entries above the diagonal (largest {upper:.3g})",
                         why=WHY_GRAD_L_UPPER)
    return grads


def _gradient_why(family: Family, got, mu, second, eta, x, y) -> str:
    g_mu, g_second = family.gradient_terms(mu, second, eta, x, y)
    expected = [g_mu.mean(axis=0), g_second.mean(axis=0)]
    near = lambda a, b: close(a, b, rtol=1e-7, atol_relative=1e-9)  # noqa: E731
    if not near(got[0], expected[0]):
        if len(eta) > 1 and near(got[0], g_mu.sum(axis=0)):
            return WHY_GRAD_MU_SUMMED
        return "grad_mu = the average over the draws of grad_log_joint_zeta(zeta_s)"
    g = theory.grad_log_joint_zeta(family.draws(mu, second, eta), x, y)
    if family.name == "mean_field":
        alternatives = {
            WHY_MF_NO_ENTROPY: expected[1] - 1.0,
            WHY_MF_NO_CHAIN: np.mean(g * eta, axis=0) + 1.0,
            WHY_MF_SQUARED: np.mean(g * eta, axis=0) * np.exp(2 * second) + 1.0,
        }
        generic = "grad_omega = the average of grad_log_joint_zeta(zeta_s) * eta_s, times exp(omega), plus 1"
    else:
        outer = np.mean(g[:, :, None] * eta[:, None, :], axis=0)
        inverse = np.linalg.inv(second)
        alternatives = {
            WHY_FR_NO_ENTROPY: np.tril(outer),
            WHY_FR_INVERSE: np.tril(outer) + np.tril(inverse),
            WHY_FR_TRANSPOSED: np.tril(outer.T) + np.diag(1 / np.diag(second)),
        }
        generic = "grad_L = lower triangle of [ mean over draws of g_s eta_s^T + (L^{-1})^T ]"
    for why, value in alternatives.items():
        if near(got[1], value):
            return why
    return generic


def _judge_gradient(ctx, iso, family: Family, mu, second, eta, expected, label):
    x, y = _data()
    case = family.case(mu, second, eta)
    got = _validate_gradient(iso.run(mu, second, eta, x, y), family)
    names = ["grad_mu", f"grad_{family.second}"]
    if iso.own:
        used = used_elbo(iso, family.name, eta, x, y)
        if differs_from_reference(iso, used(mu, second), iso.implementation(family.elbo)(mu, second, eta, x, y)):
            numerical = central_differences(used, [mu, second], masks=[None, family.mask])
            compare_gradients(got, numerical, names, rtol=FD_RTOL, case=case, context=label + consistency_note(iso))
            return got
    compare_gradients(got, expected, names, rtol=GRAD_RTOL, case=case, context=label,
                      why=_gradient_why(family, got, mu, second, eta, x, y))
    return got


def _gradient_visible(ctx, iso, family: Family):
    mu, second = family.probe
    v = visible()
    expected = [v[f"grad_mu_{family.key}"], v[f"grad_{family.second}_{family.key}"]]
    _judge_gradient(ctx, iso, family, mu, second, visible_inputs()["eta"], expected, " for the visible inputs")


def _gradient_finite_differences(ctx, iso, family: Family):
    x, y = _data()
    mu, second = family.probe
    eta = ctx.rng.standard_normal((5, 3))
    got = _validate_gradient(iso.run(mu, second, eta, x, y), family)
    used = used_elbo(iso, family.name, eta, x, y)
    numerical = central_differences(used, [mu, second], masks=[None, family.mask])
    note = consistency_note(iso) if iso.own else ""
    compare_gradients(got, numerical, ["grad_mu", f"grad_{family.second}"], rtol=FD_RTOL,
                      context=f" against finite differences of {family.elbo} at the same draws" + note,
                      case=family.case(mu, second, eta),
                      why="for fixed draws eta the reparameterisation gradient is exactly the gradient of the "
                          "Monte Carlo ELBO estimate; " + _gradient_why(family, got, mu, second, eta, x, y))


def _gradient_unbiased(ctx, iso, family: Family):
    x, y = _data()
    mu, second = family.probe
    eta = ctx.rng.standard_normal((BATCHES * BATCH_SIZE, 3))
    total = [np.zeros(3), np.zeros(family.shape)]
    for b in range(BATCHES):
        batch = eta[b * BATCH_SIZE:(b + 1) * BATCH_SIZE]
        got = _validate_gradient(iso.run(mu, second, batch, x, y), family)
        if b == 0 and iso.own:
            used = used_elbo(iso, family.name, batch, x, y)
            if differs_from_reference(iso, used(mu, second), iso.implementation(family.elbo)(mu, second, batch, x, y)):
                # Their gradient differentiates their own (wrong) ELBO estimate: its bias is that estimate's,
                # which its own checks report. Judge it as the gradient of what they wrote, once.
                numerical = central_differences(used, [mu, second], masks=[None, family.mask])
                compare_gradients(got, numerical, ["grad_mu", f"grad_{family.second}"], rtol=FD_RTOL,
                                  context=consistency_note(iso), case=family.case(mu, second, batch))
                return
        if b == 0:
            # The first batch alone decides most wrong estimators: compare it with the reference first.
            g_mu, g_second = family.gradient_terms(mu, second, batch, x, y)
            first = [g_mu.mean(axis=0), g_second.mean(axis=0)]
            if not all(close(a, e, rtol=1e-6, atol_relative=1e-9) for a, e in zip(got, first)):
                why = _gradient_why(family, got, mu, second, batch, x, y)
                if why in EXPLANATIONS.values():
                    raise Failed(f"{family.grad} is biased: on a batch of {BATCH_SIZE} draws it differs from the "
                                 "reparameterisation estimate", why=why, case=family.case(mu, second, batch))
        total = [t + g for t, g in zip(total, got)]
    average = [t / BATCHES for t in total]
    exact = family.exact_gradient(mu, second, x, y)
    terms = family.gradient_terms(mu, second, eta, x, y)
    for name, avg, true, per_draw in zip(["grad_mu", f"grad_{family.second}"], average, exact, terms):
        standard_error = per_draw.std(axis=0, ddof=1) / np.sqrt(len(eta))
        keep = standard_error > 0               # the structural zeros above L's diagonal
        z = np.zeros_like(avg)
        z[keep] = (avg[keep] - true[keep]) / standard_error[keep]
        worst = np.unravel_index(np.argmax(np.abs(z)), z.shape)
        if abs(z[worst]) > Z_LIMIT:
            index = tuple(int(i) for i in worst)
            raise Failed(
                f"averaged over {BATCHES} batches of {BATCH_SIZE} draws, {name}{list(index)} is {avg[worst]:.6g}, "
                f"but the exact gradient of the ELBO is {true[worst]:.6g}: {abs(z[worst]):.0f} standard errors away "
                "(a biased estimator)",
                why="E_eta[gradient estimate] must equal the gradient of the exact ELBO; "
                    + _gradient_why(family, got, mu, second, eta[-BATCH_SIZE:], x, y),
                case=family.case(mu, second) + f"\neta = {BATCHES} batches of {BATCH_SIZE} standard-normal draws")


def _gradient_hidden(ctx, iso, family: Family):
    for n_draws, flip in ((1, False), (25, True), (3, False)):
        mu, second = _hidden_parameters(family, ctx.rng, flip=flip)
        eta = ctx.rng.standard_normal((n_draws, 3))
        expected = [np.asarray(g, dtype=float) for g in ctx.reference(family.grad)(mu, second, eta, *_data())]
        _judge_gradient(ctx, iso, family, mu, second, eta, expected, f" with S={n_draws}")


MF_HINTS = ("With zeta_s = mu + exp(omega) * eta_s and g_s = grad_log_joint_zeta(zeta_s): grad_mu = mean of g_s.",
            "grad_omega = mean of g_s * eta_s, times exp(omega), plus 1 (the entropy's gradient).")
FR_HINTS = ("grad_mu is as in the mean-field case; grad_L is the average of the outer products g_s eta_s^T, plus "
            "the entropy's gradient (L^{-1})^T, keeping the lower triangle.",
            "The lower triangle of (L^{-1})^T is diag(1 / L_ii): np.tril(g.T @ eta / S) + np.diag(1 / np.diag(L)).")


@check("grad_elbo_mean_field", "visible fixture", 2, hints=MF_HINTS)
def grad_mf_visible(ctx, iso):
    _gradient_visible(ctx, iso, MEAN_FIELD)


@check("grad_elbo_mean_field", "matches finite differences of the ELBO estimate", 2, hints=MF_HINTS)
def grad_mf_finite_differences(ctx, iso):
    _gradient_finite_differences(ctx, iso, MEAN_FIELD)


@check("grad_elbo_mean_field", "unbiased: the average over many draws is the exact gradient", 2, hints=MF_HINTS)
def grad_mf_unbiased(ctx, iso):
    _gradient_unbiased(ctx, iso, MEAN_FIELD)


@check("grad_elbo_mean_field", "hidden inputs match the reference", 1, needs_reference=True)
def grad_mf_hidden(ctx, iso):
    _gradient_hidden(ctx, iso, MEAN_FIELD)


@check("grad_elbo_full_rank", "visible fixture", 2, hints=FR_HINTS)
def grad_fr_visible(ctx, iso):
    _gradient_visible(ctx, iso, FULL_RANK)


@check("grad_elbo_full_rank", "matches finite differences of the ELBO estimate", 2, hints=FR_HINTS)
def grad_fr_finite_differences(ctx, iso):
    _gradient_finite_differences(ctx, iso, FULL_RANK)


@check("grad_elbo_full_rank", "unbiased: the average over many draws is the exact gradient", 2, hints=FR_HINTS)
def grad_fr_unbiased(ctx, iso):
    _gradient_unbiased(ctx, iso, FULL_RANK)


@check("grad_elbo_full_rank", "hidden inputs match the reference", 1, needs_reference=True)
def grad_fr_hidden(ctx, iso):
    _gradient_hidden(ctx, iso, FULL_RANK)
