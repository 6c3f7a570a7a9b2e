"""Checks of e_step_spherical, m_step_spherical and kmeans (the Gaussian mixture part)."""

from __future__ import annotations

import numpy as np

from ...engine import Failed, expect
from . import ASSIGNMENT, diagnosis, theory
from .fixtures import FAR_SHIFT, S2_VISIBLE, gmm_sample, visible

GAMMA_RTOL, GAMMA_ATOL = 1e-7, 1e-12
HIDDEN_SIZES = [(3, 1, 2), (12, 2, 3), (40, 3, 4), (300, 5, 6), (2000, 4, 3)]     # (N, d, C), smallest first

NOT_ONE_HOT = ("with hard_EM=True every row of gamma is a point mass: 1 at the component with the largest "
               "log pi_c + log N(x_i | mu_c, s2 I), 0 elsewhere")


def _case(**values) -> str:
    return expect.format_case(**values)


GAMMA_DEFINITION = "gamma_ic = pi_c N(x_i | mu_c, s2 I) / sum_k pi_k N(x_i | mu_k, s2 I)"


def validate_gamma(value, N: int, C: int, what: str = "gamma returned by e_step_spherical", inputs=None) -> np.ndarray:
    """``value`` as responsibilities (finite, in [0, 1], rows summing to 1); ``inputs`` = (X, pi, mu, s2)
    lets a failure be explained by its symptom."""
    gamma = expect.array(value, what, shape=(N, C), finite=False)
    why = (diagnosis.diagnose_gamma(gamma, *inputs) if inputs is not None else None) or GAMMA_DEFINITION
    if not np.all(np.isfinite(gamma)):
        bad = np.argwhere(~np.isfinite(gamma))
        first = tuple(int(i) for i in bad[0])
        raise Failed(f"{what} contains {len(bad)} non-finite value(s) (first: {gamma[first]!r} at index {first})",
                     why=why if why != GAMMA_DEFINITION else "NaN comes from 0/0, inf - inf or 0 * inf: print the "
                                                             "intermediate arrays of your E-step on this input")
    sums = gamma.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1) > 1e-8)
    if bad.size:
        i = int(bad[0])
        if why == GAMMA_DEFINITION and np.allclose(gamma.sum(axis=0), 1, atol=1e-8):
            why = diagnosis.explain("gamma_wrong_axis")
        raise Failed(f"{len(bad)} row(s) of gamma do not sum to 1 (row {i} sums to {sums[i]:.6g})", why=why)
    if gamma.min() < -1e-12 or gamma.max() > 1 + 1e-12:
        raise Failed(f"gamma has entries outside [0, 1] (min {gamma.min():.3g}, max {gamma.max():.3g})", why=why)
    return gamma


def compare_gamma(gamma, expected, what, inputs, case_text="") -> None:
    expect.close(gamma, expected, what, rtol=GAMMA_RTOL, atol=GAMMA_ATOL, case=case_text,
                 why=diagnosis.diagnose_gamma(gamma, *inputs) or GAMMA_DEFINITION)


def compare_hard_gamma(gamma, inputs, what, case_text="") -> None:
    """Hard responsibilities: one-hot at the most probable component of every row."""
    validate_one_hot(gamma, what, inputs)
    X, pi, mu, s2 = inputs
    expected = theory.one_hot_rows(np.argmax(theory.log_weights(X, pi, mu, s2), axis=1), len(pi))
    expect.close(gamma, expected, what, rtol=0, atol=0, case=case_text,
                 why=diagnosis.diagnose_hard_gamma(gamma, *inputs) or NOT_ONE_HOT)


def validate_one_hot(gamma, what: str, inputs=None) -> np.ndarray:
    if not np.all((gamma == 0) | (gamma == 1)):
        why = (diagnosis.diagnose_hard_gamma(gamma, *inputs) if inputs is not None else None) or NOT_ONE_HOT
        raise Failed(f"{what} is not one-hot (it has entries other than 0 and 1)", why=why)
    return np.argmax(gamma, axis=1)


def validate_parameters(value, C: int, d: int):
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise Failed(f"m_step_spherical should return (pi, mu, s2) but returned {expect.describe_value(value)}")
    pi = expect.array(value[0], "pi returned by m_step_spherical", shape=(C,))
    mu = expect.array(value[1], "mu returned by m_step_spherical", shape=(C, d))
    s2 = expect.scalar(value[2], "s2 returned by m_step_spherical")
    if not s2 > 0:
        raise Failed(f"s2 returned by m_step_spherical is {s2:.6g}; a variance must be positive",
                     why="s2 = sum_ic gamma_ic ||x_i - mu_c||^2 / (N D) is an average of squares: it is negative only "
                         "when rounding errors of a difference of huge numbers (E[x^2] - mu^2) exceed it")
    return pi, mu, s2


DEFINITIONS = {"pi": "pi_c = N_c / N with N_c = sum_i gamma_ic",
               "mu": "mu_c = sum_i gamma_ic x_i / N_c: the gamma-weighted mean",
               "s2": "s2 = sum_ic gamma_ic ||x_i - mu_c||^2 / (N D): one variance shared by all components and all "
                     "dimensions"}


def compare_parameters(got, expected, case: str = "", X=None, gamma=None, s2_rtol: float = 1e-9) -> None:
    pi, mu, s2 = got
    e_pi, e_mu, e_s2 = expected
    diagnosed = diagnosis.diagnose_m_step(got, X, gamma) if X is not None else None
    expect.close(pi, e_pi, "pi returned by m_step_spherical", rtol=1e-9, atol=1e-12, case=case,
                 why=diagnosed or DEFINITIONS["pi"])
    expect.close(mu, e_mu, "mu returned by m_step_spherical", rtol=1e-9, atol=1e-9 * max(1.0, np.abs(e_mu).max()),
                 case=case, why=diagnosed or DEFINITIONS["mu"])
    expect.close(s2, e_s2, "s2 returned by m_step_spherical", rtol=s2_rtol, atol=0, case=case,
                 why=diagnosed or DEFINITIONS["s2"])


def check_shift_invariance(ctx, X, gamma, got, shift, case_text):
    """s2 must not change (and mu must move by ``shift``) when the data are shifted far from the origin:
    the symptom of E[x^2] - mu^2 is a variance that changes with the shift."""
    far = validate_parameters(ctx.run(X + shift, gamma), gamma.shape[1], X.shape[1])
    pi, mu, s2 = got
    if not np.isclose(far[2], s2, rtol=1e-8, atol=0):
        raise Failed(f"s2 for the same points shifted by {np.asarray(shift).tolist()} is {far[2]:.10g}; unshifted "
                     f"it is {s2:.10g} (a variance does not change when the data move)",
                     why=diagnosis.explain("s2_cancellation"), case=case_text)
    expect.close(far[1], mu + shift, f"mu for the points shifted by {np.asarray(shift).tolist()}", rtol=1e-12,
                 atol=1e-9 * max(1.0, float(np.abs(shift).max())), case=case_text,
                 why="the means move with the data: mu_c = sum_i gamma_ic x_i / N_c")


# =============================================================================== e_step_spherical
@ASSIGNMENT.check("e_step_spherical", "visible fixture", 2,
                  hints=("log N(x | mu_c, s2 I) = -D/2 log(2 pi s2) - ||x - mu_c||^2 / (2 s2).",
                         "Build the (N, C) table of log pi_c + log N(x_i | mu_c, s2 I), subtract each row's maximum, "
                         "exponentiate, normalise each row; with hard_EM put a 1 at each row's argmax."))
def e_step_visible(ctx):
    g, e = gmm_sample(), visible()
    X, pi0, mu0 = g["data"], g["pi0"], g["mu0"]
    inputs = (X, pi0, mu0, S2_VISIBLE)
    text = f"\nthe gmm sample (300 points), pi0, mu0 and s2 = {S2_VISIBLE}"
    gamma = validate_gamma(ctx.run(X, pi0, mu0, S2_VISIBLE), *e["gamma_soft"].shape, inputs=inputs)
    compare_gamma(gamma, e["gamma_soft"], "gamma for the notebook's data", inputs, text)
    hard = validate_gamma(ctx.run(X, pi0, mu0, S2_VISIBLE, hard_EM=True), *e["gamma_hard"].shape,
                          "gamma returned by e_step_spherical(..., hard_EM=True)")
    compare_hard_gamma(hard, inputs, "gamma for the notebook's data with hard_EM=True", text)


@ASSIGNMENT.check("e_step_spherical", "soft: the exact posterior of the components", 2,
                  hints=("gamma_ic is proportional to pi_c exp(-||x_i - mu_c||^2 / (2 s2)); normalise every row.",))
def e_step_posterior(ctx):
    for N, d, C in HIDDEN_SIZES[:3]:
        X, (pi, mu, s2) = theory.random_mixture(ctx.rng, N, d, C)
        inputs = (X, pi, mu, s2)
        gamma = validate_gamma(ctx.run(X, pi, mu, s2), N, C, inputs=inputs)
        compare_gamma(gamma, theory.posterior(X, pi, mu, s2), f"gamma (N={N}, d={d}, C={C})", inputs,
                      _case(X=X, pi=pi, mu=mu, s2=s2))


@ASSIGNMENT.check("e_step_spherical", "hard: one-hot at the most probable component", 1,
                  hints=("The most probable component maximises log pi_c - ||x - mu_c||^2 / (2 s2): the weights count.",))
def e_step_hard(ctx):
    for N, d, C in HIDDEN_SIZES[1:3]:
        X, (pi, mu, s2) = theory.random_mixture(ctx.rng, N, d, C, s2=4.0)
        pi = np.sort(pi)[::-1] ** 3
        pi /= pi.sum()                                    # lopsided weights: the weights matter here
        inputs = (X, pi, mu, s2)
        gamma = validate_gamma(ctx.run(X, pi, mu, s2, hard_EM=True), N, C,
                               "gamma returned by e_step_spherical(..., hard_EM=True)")
        compare_hard_gamma(gamma, inputs, f"gamma with hard_EM=True (N={N}, d={d}, C={C})",
                           _case(X=X, pi=pi, mu=mu, s2=s2))


@ASSIGNMENT.check("e_step_spherical", "tiny s2: finite, and the nearest mean wins (the k-means limit)", 2,
                  hints=("With s2 = 1e-10 a distance of 1 gives a log-density of -5e9: stay in logs and subtract each "
                         "row's maximum before exponentiating.",))
def e_step_tiny_variance(ctx):
    X, (pi, mu, _) = theory.random_mixture(ctx.rng, 200, 2, 4)
    for s2 in (1e-4, 1e-10):
        inputs = (X, pi, mu, s2)
        expected = theory.posterior(X, pi, mu, s2)
        assert np.array_equal(np.argmax(expected, axis=1), theory.nearest(X, mu))
        text = f"\n200 points in 2-d, 4 components, s2 = {s2:g}"
        gamma = validate_gamma(ctx.run(X, pi, mu, s2), *expected.shape, f"gamma for s2 = {s2:g}", inputs=inputs)
        compare_gamma(gamma, expected, f"gamma for s2 = {s2:g} (every point to its nearest mean)", inputs, text)
        hard = validate_gamma(ctx.run(X, pi, mu, s2, hard_EM=True), *expected.shape,
                              f"gamma for s2 = {s2:g} with hard_EM=True")
        compare_hard_gamma(hard, inputs, f"gamma for s2 = {s2:g} with hard_EM=True", text)


@ASSIGNMENT.check("e_step_spherical", "hidden random inputs match the reference", 1, needs_reference=True)
def e_step_hidden(ctx):
    for N, d, C in HIDDEN_SIZES:
        X, (pi, mu, s2) = theory.random_mixture(ctx.rng, N, d, C, spread=6.0)
        inputs = (X, pi, mu, s2)
        text = _case(X=X, pi=pi, mu=mu, s2=s2) if N <= 12 else ""
        for hard in (False, True):
            expected = ctx.reference("e_step_spherical")(X, pi, mu, s2, hard_EM=hard)
            gamma = validate_gamma(ctx.run(X, pi, mu, s2, hard_EM=hard), N, C, inputs=None if hard else inputs)
            if hard:
                compare_hard_gamma(gamma, inputs, f"gamma with hard_EM=True (N={N}, d={d}, C={C})", text)
            else:
                compare_gamma(gamma, expected, f"gamma with hard_EM=False (N={N}, d={d}, C={C})", inputs, text)


# =============================================================================== m_step_spherical
@ASSIGNMENT.check("m_step_spherical", "visible fixture", 2,
                  hints=("pi_c = N_c / N, mu_c = sum_i gamma_ic x_i / N_c with N_c = sum_i gamma_ic.",
                         "s2 = sum_i sum_c gamma_ic ||x_i - mu_c||^2 / (N D), around the NEW means, from the centred "
                         "points x_i - mu_c (the data may be far from the origin)."))
def m_step_visible(ctx):
    g, e = gmm_sample(), visible()
    X, gamma = g["data"], e["gamma_soft"]
    text = "\nthe gmm sample and the responsibilities of the visible E-step"
    got = validate_parameters(ctx.run(X, gamma), *e["mu1"].shape)
    compare_parameters(got, (e["pi1"], e["mu1"], float(e["s2_1"])), text, X=X, gamma=gamma)
    check_shift_invariance(ctx, X, gamma, got, FAR_SHIFT, text + f", shifted by {FAR_SHIFT.tolist()}")


@ASSIGNMENT.check("m_step_spherical", "maximises the expected complete-data log-likelihood", 2,
                  hints=("Each parameter sets a derivative to zero: pi with the constraint sum(pi) = 1, mu_c the "
                         "weighted mean, s2 around the NEW means, per coordinate.",))
def m_step_maximises(ctx):
    rng = ctx.rng
    for N, d, C in ((12, 2, 3), (40, 3, 4)):
        X, _ = theory.random_mixture(rng, N, d, C)
        gamma = theory.random_responsibilities(rng, N, C, concentration=0.5)
        got = pi, mu, s2 = validate_parameters(ctx.run(X, gamma), C, d)
        if not np.isclose(pi.sum(), 1.0, rtol=0, atol=1e-10):
            raise Failed(f"pi sums to {pi.sum():.10g}, not 1", case=_case(X=X, gamma=gamma),
                         why=diagnosis.diagnose_m_step(got, X, gamma) or DEFINITIONS["pi"])
        best = theory.expected_complete(X, pi, mu, s2, gamma)
        moves = {"pi": lambda e, v: (pi * np.exp(e * v[0]) / np.sum(pi * np.exp(e * v[0])), mu, s2),
                 "mu": lambda e, v: (pi, mu + e * v[1], s2),
                 "s2": lambda e, v: (pi, mu, s2 * np.exp(e))}
        for name, move in moves.items():
            v = (rng.standard_normal(C), rng.standard_normal((C, d)))
            for size in (1e-4, 1e-2, 1.0):
                for sign in (1.0, -1.0):
                    value = theory.expected_complete(X, *move(sign * size, v), gamma)
                    if value > best + 1e-10 * abs(best):
                        raise Failed(f"changing {name} slightly raises the expected complete-data log-likelihood "
                                     f"({value:.10g} > {best:.10g}): m_step_spherical does not maximise it",
                                     why=diagnosis.diagnose_m_step(got, X, gamma) or
                                     (f"set the derivative with respect to {name} to zero"
                                      + (" (s2 is around the NEW means, per coordinate)" if name == "s2" else "")),
                                     case=_case(X=X, gamma=gamma))


@ASSIGNMENT.check("m_step_spherical", "one-hot gamma: cluster sizes, cluster means, pooled variance", 1,
                  hints=("With one-hot rows, N_c counts the points of cluster c, mu_c is their mean and s2 the mean "
                         "squared distance of every point to its own cluster's mean, per coordinate.",))
def m_step_one_hot(ctx):
    X, _ = theory.random_mixture(ctx.rng, 30, 2, 3)
    labels = np.arange(30) % 3
    gamma = theory.one_hot_rows(labels, 3)
    got = validate_parameters(ctx.run(X, gamma), 3, 2)
    means = np.stack([X[labels == c].mean(axis=0) for c in range(3)])
    pooled = sum(np.sum((X[labels == c] - means[c]) ** 2) for c in range(3)) / (30 * 2)
    compare_parameters(got, (np.full(3, 1 / 3), means, pooled), _case(X=X, labels=labels), X=X, gamma=gamma)


@ASSIGNMENT.check("m_step_spherical", "hidden random inputs match the reference", 1, needs_reference=True)
def m_step_hidden(ctx):
    for N, d, C in HIDDEN_SIZES:
        X, _ = theory.random_mixture(ctx.rng, N, d, C)
        X = X + 1e5                                        # far from the origin: centre before squaring
        gamma = theory.random_responsibilities(ctx.rng, N, C)
        expected = ctx.reference("m_step_spherical")(X, gamma)
        got = validate_parameters(ctx.run(X, gamma), C, d)
        text = _case(X=X, gamma=gamma) if N <= 12 else f"\nN={N}, d={d}, C={C}"
        try:
            compare_parameters(got, expected, text, X=X, gamma=gamma, s2_rtol=1e-8)
        except Failed as failure:
            if "s2" in failure.message:
                check_shift_invariance(ctx, X - 1e5, gamma, validate_parameters(ctx.run(X - 1e5, gamma), C, d),
                                       np.full(d, 1e5), text)
            raise


# =============================================================================== kmeans
def validate_kmeans(value, N: int, C: int, d: int):
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise Failed(f"kmeans should return (mu, labels) but returned {expect.describe_value(value)}")
    mu = expect.array(value[0], "mu returned by kmeans", shape=(C, d),
                      why_nonfinite=diagnosis.explain("kmeans_empty_nan"))
    labels = expect.array(value[1], "labels returned by kmeans", shape=(N,))
    if not np.all(labels == np.round(labels)) or labels.min() < 0 or labels.max() >= C:
        raise Failed(f"labels returned by kmeans must be cluster indices 0..{C - 1}",
                     why="labels[i] is the index of the centre point i is assigned to")
    return mu, labels.astype(int)


def _clustered(rng, N: int, d: int, C: int):
    X, _ = theory.random_mixture(rng, N, d, C, spread=5.0)
    return X, X[rng.choice(N, size=C, replace=False)].copy()


def compare_kmeans(mu, labels, X, start, max_iter, what, text, expected=None) -> None:
    e_mu, e_labels = expected if expected is not None else theory.lloyd(X, start, max_iter)
    why = diagnosis.diagnose_kmeans(mu, labels, X, start, max_iter)
    expect.close(labels, e_labels, f"labels of {what}", rtol=0, atol=0, case=text,
                 why=why or "labels are the nearest-centre assignments that produced the returned centres")
    expect.close(mu, e_mu, f"centres of {what}", rtol=1e-9, atol=1e-12, case=text,
                 why=why or "every centre is the mean of the points assigned to it")


@ASSIGNMENT.check("kmeans", "visible fixture", 2,
                  hints=("Repeat: assign every point to its nearest centre; stop if no label changed; move every "
                         "centre to the mean of its points.",
                         "Squared distances of all points to all centres at once: "
                         "((X[:, None, :] - mu[None, :, :]) ** 2).sum(axis=2), then argmin over axis 1."))
def kmeans_visible(ctx):
    g, e = gmm_sample(), visible()
    X, mu0 = g["data"], g["mu0"]
    mu, labels = validate_kmeans(ctx.run(X, mu0), len(X), *mu0.shape)
    compare_kmeans(mu, labels, X, mu0, 100, "kmeans(X, mu0)", "\nthe gmm sample (300 points) from the centres mu0")


@ASSIGNMENT.check("kmeans", "returns a fixed point: nearest centres, centres at the means", 2,
                  hints=("At convergence every point's label is its nearest centre (squared Euclidean distance) and "
                         "every centre the mean of its points.",))
def kmeans_fixed_point(ctx):
    for N, d, C in ((20, 2, 3), (200, 3, 5)):
        X, start = _clustered(ctx.rng, N, d, C)
        mu, labels = validate_kmeans(ctx.run(X, start), N, C, d)
        text = _case(X=X, mu=start) if N <= 20 else f"\nN={N}, d={d}, C={C}"
        check_fixed_point(mu, labels, X, start, text)


def check_fixed_point(mu, labels, X, start, text):
    nearest = theory.nearest(X, mu)
    why = diagnosis.diagnose_kmeans(mu, labels, X, start, 100)
    if not np.array_equal(labels, nearest):
        i = int(np.flatnonzero(labels != nearest)[0])
        raise Failed(f"after convergence point {i} is labelled {labels[i]} but its nearest centre is {nearest[i]}",
                     why=why or "iterate until the assignments stop changing, and return the final assignments",
                     case=text)
    for c in range(len(mu)):
        if np.any(labels == c) and not np.allclose(mu[c], X[labels == c].mean(axis=0), rtol=1e-9, atol=1e-12):
            raise Failed(f"centre {c} is not the mean of the points labelled {c}",
                         why=why or "the update step moves every centre to the mean of its points", case=text)


@ASSIGNMENT.check("kmeans", "an empty cluster keeps its centre", 1,
                  hints=("X[labels == c].mean(axis=0) of no points is NaN (with a warning): update only the centres "
                         "that have points.",))
def kmeans_empty(ctx):
    X, start = _clustered(ctx.rng, 30, 2, 3)
    start = np.vstack([start, [[1e3, 1e3]]])               # a centre nobody is near
    mu, labels = validate_kmeans(ctx.run(X, start), 30, 4, 2)
    if not np.array_equal(mu[3], start[3]):
        raise Failed(f"a centre that gets no points moved from {start[3].tolist()} to {mu[3].tolist()}",
                     why="a cluster without points has no mean: keep its centre where it is",
                     case=_case(X=X, mu=start))
    check_fixed_point(mu, labels, X, start, _case(X=X, mu=start))     # (and the others did their job)


@ASSIGNMENT.check("kmeans", "stops after max_iter updates", 1,
                  hints=("Each iteration: assign, stop if nothing changed, update; at most max_iter of them.",))
def kmeans_max_iter(ctx):
    X, start = _clustered(ctx.rng, 60, 2, 4)
    for max_iter in (1, 2):
        mu, labels = validate_kmeans(ctx.run(X, start, max_iter=max_iter), 60, 4, 2)
        e_mu, e_labels = theory.lloyd(X, start, max_iter)
        if not (np.array_equal(labels, e_labels) and np.allclose(mu, e_mu, rtol=1e-9, atol=1e-12)):
            raise Failed(f"with max_iter={max_iter} kmeans should do exactly {max_iter} assignment and update step(s) "
                         "(unless the labels stop changing first) and return the centres and the labels of the last "
                         "update", case=_case(X=X, mu=start),
                         why=diagnosis.diagnose_kmeans(mu, labels, X, start, max_iter)
                         or "each iteration: assign, stop if nothing changed, update")


@ASSIGNMENT.check("kmeans", "hidden random inputs match the reference", 2, needs_reference=True)
def kmeans_hidden(ctx):
    for N, d, C in HIDDEN_SIZES[1:]:
        X, start = _clustered(ctx.rng, N, d, C)
        expected = ctx.reference("kmeans")(X, start)
        mu, labels = validate_kmeans(ctx.run(X, start), N, C, d)
        text = _case(X=X, mu=start) if N <= 12 else f"\nN={N}, d={d}, C={C}"
        compare_kmeans(mu, labels, X, start, 100, f"kmeans (N={N}, d={d}, C={C})", text, expected)
