"""Checks of the Monte Carlo ELBOs and their reparameterisation gradients (mean-field and full-rank)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...engine import Failed, expect
from . import ASSIGNMENT, theory
from .fixtures import L_PROBE, MU_PROBE, OMEGA_PROBE, sample, visible, visible_inputs
from .judging import (ELBO_RTOL, FD_RTOL, GRAD_RTOL, Isolation, central_differences, compare_gradients,
                      consistency_note, differs_from_reference, used_elbo, validate_pair, validate_scalar)

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
def _elbo_why(family: Family, got, mu, second, eta, x, y) -> str:
    """Name the classic mistake the estimate matches, if any."""
    log_p = theory.log_joint_zeta(family.draws(mu, second, eta), x, y)
    entropy = family.entropy(second)
    alternatives = {
        "the entropy of q is missing: ELBO = E_q[log p(y, T^{-1}(zeta)) + log|det J|] + H[q]": log_p.mean(),
        "the entropy's constant D/2 (1 + log 2 pi) is missing": log_p.mean() + entropy - theory.ENTROPY_CONSTANT,
        "the draws were summed; the expectation is their average": log_p.sum() + entropy,
        "the entropy was subtracted; the ELBO adds it": log_p.mean() - entropy,
    }
    if family.name == "mean_field":
        half = theory.log_joint_zeta(mu + np.exp(second / 2) * eta, x, y).mean() + entropy
        alternatives["q's standard deviations are exp(omega), not exp(omega / 2): zeta = mu + exp(omega) * eta"] = half
    else:
        swapped = theory.log_joint_zeta(mu + eta @ second, x, y).mean() + entropy
        alternatives["with one draw per row of eta, zeta_s = mu + L eta_s is `mu + eta @ L.T`, not `eta @ L`"] = swapped
        alternatives["the entropy is sum log|L_ii| + D/2 (1 + log 2 pi): log det(L L^T) / 2, not log det(L L^T)"] = (
            log_p.mean() + entropy + np.sum(np.log(np.abs(np.diag(second)))))
    for why, value in alternatives.items():
        if np.isclose(got, value, rtol=1e-9, atol=1e-9):
            return why
    entropy_text = "sum(omega)" if family.name == "mean_field" else "sum(log|L_ii|)"
    return (f"ELBO estimate = mean over draws of log_joint_zeta(zeta_s) + H[q], with H[q] = {entropy_text} "
            "+ D/2 (1 + log 2 pi) exactly")


def _elbo_visible(ctx, family: Family):
    x, y = _data()
    eta = visible_inputs()["eta"]
    mu, second = family.probe
    got = validate_scalar(Isolation(ctx).run(mu, second, eta, x, y), f"the ELBO returned by {family.elbo}")
    expected = float(visible()[f"elbo_{family.key}"])
    expect.close(got, expected, f"the ELBO estimate for the visible ({'mu, ' + family.second}, eta)",
                 rtol=ELBO_RTOL, atol=1e-9, why=_elbo_why(family, got, mu, second, eta, x, y),
                 case=family.case(mu, second, eta))


def _elbo_exact(ctx, family: Family):
    iso = Isolation(ctx)
    x, y = _data()
    mu, second = family.probe
    wider = second + 0.8 if family.name == "mean_field" else second * 1.8
    for second in (second, wider):
        eta = ctx.rng.standard_normal((EXACT_DRAWS, 3))
        got = validate_scalar(iso.run(mu, second, eta, x, y), f"the ELBO returned by {family.elbo}")
        terms = family.elbo_terms(mu, second, eta, x, y)
        standard_error = terms.std(ddof=1) / np.sqrt(EXACT_DRAWS)
        exact = family.exact_elbo(mu, second, x, y)
        if not abs(got - exact) <= Z_LIMIT * standard_error:
            raise Failed(f"with S = {EXACT_DRAWS} draws {family.elbo} estimates {got:.6f}, but the exact ELBO of this "
                         f"q (closed form) is {exact:.6f}: {abs(got - exact) / standard_error:.0f} standard errors "
                         f"away (standard error {standard_error:.2g})",
                         why=_elbo_why(family, got, mu, second, eta, x, y), case=family.case(mu, second)
                         + f"\neta = {EXACT_DRAWS} standard-normal draws")


def _elbo_hidden(ctx, family: Family):
    iso = Isolation(ctx)
    x, y = _data()
    for n_draws, flip in ((1, False), (37, True), (5, False)):
        mu, second = _hidden_parameters(family, ctx.rng, flip=flip)
        eta = ctx.rng.standard_normal((n_draws, 3))
        expected = float(ctx.reference(family.elbo)(mu, second, eta, x, y))
        got = validate_scalar(iso.run(mu, second, eta, x, y), f"the ELBO returned by {family.elbo}")
        expect.close(got, expected, f"the ELBO estimate with S={n_draws}", rtol=ELBO_RTOL, atol=1e-9,
                     why=_elbo_why(family, got, mu, second, eta, x, y)
                     + ("; a diagonal entry of L is negative here: the entropy uses log|L_ii|" if flip else ""),
                     case=family.case(mu, second, eta))


@ASSIGNMENT.check("elbo_mean_field", "visible fixture", 2,
                  hints=("Draw zeta_s = mu + exp(omega) * eta_s for every row of eta (broadcasting does it), "
                         "average log_joint_zeta over the rows, and add the entropy.",
                         "The entropy of N(mu, diag(exp(omega))^2) is sum(omega) + 3/2 (1 + log 2 pi); "
                         "it needs no Monte Carlo."))
def elbo_mf_visible(ctx):
    _elbo_visible(ctx, MEAN_FIELD)


@ASSIGNMENT.check("elbo_mean_field", "agrees with the exact ELBO (2000 draws)", 2)
def elbo_mf_exact(ctx):
    _elbo_exact(ctx, MEAN_FIELD)


@ASSIGNMENT.check("elbo_mean_field", "hidden inputs match the reference", 1, needs_reference=True)
def elbo_mf_hidden(ctx):
    _elbo_hidden(ctx, MEAN_FIELD)


@ASSIGNMENT.check("elbo_full_rank", "visible fixture", 2,
                  hints=("With one draw per row of eta, zeta = mu + eta @ L.T gives zeta_s = mu + L eta_s.",
                         "The entropy of N(mu, L L^T) is sum(log|L_ii|) + 3/2 (1 + log 2 pi)."))
def elbo_fr_visible(ctx):
    _elbo_visible(ctx, FULL_RANK)


@ASSIGNMENT.check("elbo_full_rank", "agrees with the exact ELBO (2000 draws)", 2)
def elbo_fr_exact(ctx):
    _elbo_exact(ctx, FULL_RANK)


@ASSIGNMENT.check("elbo_full_rank", "hidden inputs match the reference", 1, needs_reference=True)
def elbo_fr_hidden(ctx):
    _elbo_hidden(ctx, FULL_RANK)


# =============================================================================== gradients
def _validate_gradient(value, family: Family):
    grads = validate_pair(value, family.grad, ("grad_mu", f"grad_{family.second}"), ((3,), family.shape))
    if family.name == "full_rank":
        upper = np.abs(np.triu(grads[1], 1)).max()
        if upper > 1e-12 * max(np.abs(grads[1]).max(), 1e-300):
            raise Failed(f"grad_L has non-zero entries above the diagonal (largest {upper:.3g})",
                         why="only the lower triangle of L is a parameter (L stays lower triangular): keep the "
                             "lower triangle of the gradient with np.tril and zeros above it")
    return grads


def _gradient_why(family: Family, got, mu, second, eta, x, y) -> str:
    g_mu, g_second = family.gradient_terms(mu, second, eta, x, y)
    expected = [g_mu.mean(axis=0), g_second.mean(axis=0)]
    close = lambda a, b: np.allclose(a, b, rtol=1e-7, atol=1e-9 * np.abs(b).max())  # noqa: E731
    if not close(got[0], expected[0]):
        if close(got[0], g_mu.sum(axis=0)):
            return "grad_mu is summed over the draws; the estimate is their average"
        return "grad_mu = the average over the draws of grad_log_joint_zeta(zeta_s)"
    g = theory.grad_log_joint_zeta(family.draws(mu, second, eta), x, y)
    if family.name == "mean_field":
        alternatives = {
            "the entropy's gradient (+1 for every omega_i) is missing": expected[1] - 1.0,
            "the chain rule's factor exp(omega) is missing: d zeta / d omega = exp(omega) * eta":
                np.mean(g * eta, axis=0) + 1.0,
            "grad_omega = mean(g_s * eta_s) * exp(omega) + 1, not with exp(omega) squared":
                np.mean(g * eta, axis=0) * np.exp(2 * second) + 1.0,
        }
        generic = "grad_omega = the average of grad_log_joint_zeta(zeta_s) * eta_s, times exp(omega), plus 1"
    else:
        outer = np.mean(g[:, :, None] * eta[:, None, :], axis=0)
        inverse = np.linalg.inv(second)
        alternatives = {
            "the entropy's gradient diag(1 / L_ii) is missing": np.tril(outer),
            "(L^{-1})^T is upper triangular: restricted to the lower triangle it is diag(1 / L_ii); L^{-1} "
            "itself has entries below the diagonal": np.tril(outer) + np.tril(inverse),
            "grad_L is the average of g_s eta_s^T (rows from g, columns from eta), not eta_s g_s^T":
                np.tril(outer.T) + np.diag(1 / np.diag(second)),
        }
        generic = "grad_L = lower triangle of [ mean over draws of g_s eta_s^T + (L^{-1})^T ]"
    for why, value in alternatives.items():
        if close(got[1], value):
            return why
    return generic


def _judge_gradient(ctx, iso, family: Family, mu, second, eta, expected, label):
    x, y = _data()
    case = family.case(mu, second, eta)
    got = _validate_gradient(iso.run(mu, second, eta, x, y), family)
    names = ["grad_mu", f"grad_{family.second}"]
    if iso.grading and iso.own:
        used = used_elbo(iso, family.name, eta, x, y)
        if differs_from_reference(iso, used(mu, second), ctx.reference(family.elbo)(mu, second, eta, x, y)):
            numerical = central_differences(used, [mu, second], masks=[None, family.mask])
            compare_gradients(got, numerical, names, rtol=FD_RTOL, case=case, context=label + consistency_note(iso))
            return got
    compare_gradients(got, expected, names, rtol=GRAD_RTOL, case=case, context=label,
                      why=_gradient_why(family, got, mu, second, eta, x, y))
    return got


def _gradient_visible(ctx, family: Family):
    mu, second = family.probe
    v = visible()
    expected = [v[f"grad_mu_{family.key}"], v[f"grad_{family.second}_{family.key}"]]
    _judge_gradient(ctx, Isolation(ctx), family, mu, second, visible_inputs()["eta"], expected,
                    " for the visible inputs")


def _gradient_finite_differences(ctx, family: Family):
    iso = Isolation(ctx)
    x, y = _data()
    mu, second = family.probe
    eta = ctx.rng.standard_normal((5, 3))
    got = _validate_gradient(iso.run(mu, second, eta, x, y), family)
    used = used_elbo(iso, family.name, eta, x, y)
    numerical = central_differences(used, [mu, second], masks=[None, family.mask])
    note = consistency_note(iso) if iso.grading and iso.own else ""
    compare_gradients(got, numerical, ["grad_mu", f"grad_{family.second}"], rtol=FD_RTOL,
                      context=f" against finite differences of {family.elbo} at the same draws" + note,
                      case=family.case(mu, second, eta),
                      why="for fixed draws eta the reparameterisation gradient is exactly the gradient of the "
                          "Monte Carlo ELBO estimate; " + _gradient_why(family, got, mu, second, eta, x, y))


def _gradient_unbiased(ctx, family: Family):
    iso = Isolation(ctx)
    x, y = _data()
    mu, second = family.probe
    eta = ctx.rng.standard_normal((BATCHES * BATCH_SIZE, 3))
    total = [np.zeros(3), np.zeros(family.shape)]
    for b in range(BATCHES):
        batch = eta[b * BATCH_SIZE:(b + 1) * BATCH_SIZE]
        got = _validate_gradient(iso.run(mu, second, batch, x, y), family)
        if b == 0 and iso.grading and iso.own:
            used = used_elbo(iso, family.name, batch, x, y)
            if differs_from_reference(iso, used(mu, second), ctx.reference(family.elbo)(mu, second, batch, x, y)):
                # Their gradient differentiates their own (wrong) ELBO estimate: its bias is that estimate's,
                # which its own checks report. Judge it as the gradient of what they wrote, once.
                numerical = central_differences(used, [mu, second], masks=[None, family.mask])
                compare_gradients(got, numerical, ["grad_mu", f"grad_{family.second}"], rtol=FD_RTOL,
                                  context=consistency_note(iso), case=family.case(mu, second, batch))
                return
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


def _gradient_hidden(ctx, family: Family):
    iso = Isolation(ctx)
    x, y = _data()
    for n_draws, flip in ((1, False), (25, True), (3, False)):
        mu, second = _hidden_parameters(family, ctx.rng, flip=flip)
        eta = ctx.rng.standard_normal((n_draws, 3))
        expected = [np.asarray(g, dtype=float) for g in ctx.reference(family.grad)(mu, second, eta, x, y)]
        _judge_gradient(ctx, iso, family, mu, second, eta, expected, f" with S={n_draws}")


@ASSIGNMENT.check("grad_elbo_mean_field", "visible fixture", 2,
                  hints=("With zeta_s = mu + exp(omega) * eta_s and g_s = grad_log_joint_zeta(zeta_s): "
                         "grad_mu = mean of g_s.",
                         "grad_omega = mean of g_s * eta_s, times exp(omega), plus 1 (the entropy's gradient)."))
def grad_mf_visible(ctx):
    _gradient_visible(ctx, MEAN_FIELD)


@ASSIGNMENT.check("grad_elbo_mean_field", "matches finite differences of the ELBO estimate", 2)
def grad_mf_finite_differences(ctx):
    _gradient_finite_differences(ctx, MEAN_FIELD)


@ASSIGNMENT.check("grad_elbo_mean_field", "unbiased: the average over many draws is the exact gradient", 2)
def grad_mf_unbiased(ctx):
    _gradient_unbiased(ctx, MEAN_FIELD)


@ASSIGNMENT.check("grad_elbo_mean_field", "hidden inputs match the reference", 1, needs_reference=True)
def grad_mf_hidden(ctx):
    _gradient_hidden(ctx, MEAN_FIELD)


@ASSIGNMENT.check("grad_elbo_full_rank", "visible fixture", 2,
                  hints=("grad_mu is as in the mean-field case; grad_L is the average of the outer products "
                         "g_s eta_s^T, plus the entropy's gradient (L^{-1})^T, keeping the lower triangle.",
                         "The lower triangle of (L^{-1})^T is diag(1 / L_ii): np.tril(g.T @ eta / S) + "
                         "np.diag(1 / np.diag(L))."))
def grad_fr_visible(ctx):
    _gradient_visible(ctx, FULL_RANK)


@ASSIGNMENT.check("grad_elbo_full_rank", "matches finite differences of the ELBO estimate", 2)
def grad_fr_finite_differences(ctx):
    _gradient_finite_differences(ctx, FULL_RANK)


@ASSIGNMENT.check("grad_elbo_full_rank", "unbiased: the average over many draws is the exact gradient", 2)
def grad_fr_unbiased(ctx):
    _gradient_unbiased(ctx, FULL_RANK)


@ASSIGNMENT.check("grad_elbo_full_rank", "hidden inputs match the reference", 1, needs_reference=True)
def grad_fr_hidden(ctx):
    _gradient_hidden(ctx, FULL_RANK)
