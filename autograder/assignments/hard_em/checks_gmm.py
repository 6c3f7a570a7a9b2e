"""Checks of e_step_spherical, m_step_spherical and kmeans (the Gaussian mixture part)."""

from __future__ import annotations

import numpy as np

from ...engine import Failed, expect
from . import ASSIGNMENT, theory
from .fixtures import S2_VISIBLE, gmm_sample, visible

GAMMA_RTOL, GAMMA_ATOL = 1e-7, 1e-12
HIDDEN_SIZES = [(3, 1, 2), (12, 2, 3), (40, 3, 4), (300, 5, 6), (2000, 4, 3)]     # (N, d, C), smallest first

NONFINITE_GAMMA = ("for a small s2 the log-weights are huge and negative (of order -distance^2 / (2 s2)): "
                   "exp() gives 0 for every component and 0/0 = NaN; subtract each row's maximum before "
                   "exponentiating")
NOT_ONE_HOT = ("with hard_EM=True every row of gamma is a point mass: 1 at the component with the largest "
               "log pi_c + log N(x_i | mu_c, s2 I), 0 elsewhere")


def _case(**values) -> str:
    return expect.format_case(**values)


def validate_gamma(value, N: int, C: int, what: str = "gamma returned by e_step_spherical") -> np.ndarray:
    gamma = expect.array(value, what, shape=(N, C), why_nonfinite=NONFINITE_GAMMA)
    sums = gamma.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1) > 1e-8)
    if bad.size:
        i = int(bad[0])
        why = "normalise every row (a sum over the components, axis=1)"
        if np.allclose(gamma.sum(axis=0), 1, atol=1e-8):
            why = "the columns sum to 1 instead of the rows: normalise over components (axis=1), not over points"
        raise Failed(f"{len(bad)} row(s) of gamma do not sum to 1 (row {i} sums to {sums[i]:.6g})", why=why)
    if gamma.min() < -1e-12 or gamma.max() > 1 + 1e-12:
        raise Failed(f"gamma has entries outside [0, 1] (min {gamma.min():.3g}, max {gamma.max():.3g})",
                     why="responsibilities are probabilities")
    return gamma


def validate_one_hot(gamma, what: str) -> np.ndarray:
    if not np.all((gamma == 0) | (gamma == 1)):
        raise Failed(f"{what} is not one-hot (it has entries other than 0 and 1)", why=NOT_ONE_HOT)
    return np.argmax(gamma, axis=1)


def validate_parameters(value, C: int, d: int):
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise Failed(f"m_step_spherical should return (pi, mu, s2) but returned {expect.describe_value(value)}")
    pi = expect.array(value[0], "pi returned by m_step_spherical", shape=(C,))
    mu = expect.array(value[1], "mu returned by m_step_spherical", shape=(C, d))
    s2 = expect.scalar(value[2], "s2 returned by m_step_spherical")
    if not s2 > 0:
        raise Failed(f"s2 returned by m_step_spherical is {s2:.6g}; a variance must be positive")
    return pi, mu, s2


def compare_parameters(got, expected, case: str = "") -> None:
    pi, mu, s2 = got
    e_pi, e_mu, e_s2 = expected
    expect.close(pi, e_pi, "pi returned by m_step_spherical", rtol=1e-9, atol=1e-12, case=case,
                 why="pi_c = N_c / N with N_c = sum_i gamma_ic")
    expect.close(mu, e_mu, "mu returned by m_step_spherical", rtol=1e-9, atol=1e-9 * max(1.0, np.abs(e_mu).max()),
                 case=case, why="mu_c = sum_i gamma_ic x_i / N_c: the gamma-weighted mean")
    why = "s2 = sum_ic gamma_ic ||x_i - mu_c||^2 / (N d): one variance shared by all components and all dimensions"
    d = mu.shape[1]
    if d > 1 and np.isclose(s2, e_s2 * d, rtol=1e-6):
        why = "s2 is not divided by the dimension d: the shared variance is per coordinate, s2 * I"
    elif np.isclose(s2, e_s2, rtol=1e-4) and np.abs(mu).max() > 1e3 * np.sqrt(e_s2):
        why = ("close, but not to the last digits the data allow: on points far from the origin, sums of x^2 minus "
               "N_c mu^2 subtract two huge, nearly equal numbers; square the CENTRED points x_i - mu_c instead")
    expect.close(s2, e_s2, "s2 returned by m_step_spherical", rtol=1e-9, atol=0, case=case, why=why)


# =============================================================================== e_step_spherical
@ASSIGNMENT.check("e_step_spherical", "visible fixture", 2,
                  hints=("log N(x | mu_c, s2 I) = -d/2 log(2 pi s2) - ||x - mu_c||^2 / (2 s2).",
                         "Build the (N, C) table of log pi_c + log N(x_i | mu_c, s2 I), subtract each row's maximum, "
                         "exponentiate, normalise each row; with hard_EM put a 1 at each row's argmax."))
def e_step_visible(ctx):
    g, e = gmm_sample(), visible()
    X, pi0, mu0 = g["data"], g["pi0"], g["mu0"]
    text = f"\nthe gmm sample (300 points), pi0, mu0 and s2 = {S2_VISIBLE}"
    gamma = validate_gamma(ctx.run(X, pi0, mu0, S2_VISIBLE), *e["gamma_soft"].shape)
    expect.close(gamma, e["gamma_soft"], "gamma for the notebook's data", rtol=GAMMA_RTOL, atol=GAMMA_ATOL, case=text,
                 why="gamma_ic is proportional to pi_c N(x_i | mu_c, s2 I)")
    hard = validate_gamma(ctx.run(X, pi0, mu0, S2_VISIBLE, hard_EM=True), *e["gamma_hard"].shape,
                          "gamma returned by e_step_spherical(..., hard_EM=True)")
    validate_one_hot(hard, "gamma with hard_EM=True")
    expect.close(hard, e["gamma_hard"], "gamma for the notebook's data with hard_EM=True", rtol=0, atol=0, case=text,
                 why=NOT_ONE_HOT)


@ASSIGNMENT.check("e_step_spherical", "soft: the exact posterior of the components", 2)
def e_step_posterior(ctx):
    for N, d, C in HIDDEN_SIZES[:3]:
        X, (pi, mu, s2) = theory.random_mixture(ctx.rng, N, d, C)
        gamma = validate_gamma(ctx.run(X, pi, mu, s2), N, C)
        expected = theory.posterior(X, pi, mu, s2)
        why = "gamma_ic = pi_c N(x_i | mu_c, s2 I) / sum_k pi_k N(x_i | mu_k, s2 I)"
        if C > 1 and np.allclose(gamma, theory.posterior(X, np.full(C, 1 / C), mu, s2), rtol=1e-6, atol=1e-12):
            why = "the weights pi are missing: add log pi_c to every log-density"
        expect.close(gamma, expected, f"gamma (N={N}, d={d}, C={C})", rtol=GAMMA_RTOL, atol=GAMMA_ATOL, why=why,
                     case=_case(X=X, pi=pi, mu=mu, s2=s2))


@ASSIGNMENT.check("e_step_spherical", "hard: one-hot at the most probable component", 1)
def e_step_hard(ctx):
    for N, d, C in HIDDEN_SIZES[1:3]:
        X, (pi, mu, s2) = theory.random_mixture(ctx.rng, N, d, C, s2=4.0)
        pi = np.sort(pi)[::-1] ** 3
        pi /= pi.sum()                                    # lopsided weights: the weights matter here
        gamma = validate_gamma(ctx.run(X, pi, mu, s2, hard_EM=True), N, C,
                               "gamma returned by e_step_spherical(..., hard_EM=True)")
        chosen = validate_one_hot(gamma, "gamma with hard_EM=True")
        expected = np.argmax(theory.log_weights(X, pi, mu, s2), axis=1)
        if not np.array_equal(chosen, expected):
            i = int(np.flatnonzero(chosen != expected)[0])
            why = NOT_ONE_HOT
            if np.array_equal(chosen, theory.nearest(X, mu)):
                why = "the weights pi are missing: the most probable component is not simply the nearest mean"
            raise Failed(f"with hard_EM=True point {i} goes to component {chosen[i]}, but the most probable one is "
                         f"{expected[i]}", why=why, case=_case(X=X, pi=pi, mu=mu, s2=s2))


@ASSIGNMENT.check("e_step_spherical", "tiny s2: finite, and the nearest mean wins (the k-means limit)", 2,
                  hints=("With s2 = 1e-10 a distance of 1 gives a log-density of -5e9: stay in logs and subtract each "
                         "row's maximum before exponentiating.",))
def e_step_tiny_variance(ctx):
    X, (pi, mu, _) = theory.random_mixture(ctx.rng, 200, 2, 4)
    for s2 in (1e-4, 1e-10):
        expected = theory.posterior(X, pi, mu, s2)
        assert np.array_equal(np.argmax(expected, axis=1), theory.nearest(X, mu))
        gamma = validate_gamma(ctx.run(X, pi, mu, s2), *expected.shape, f"gamma for s2 = {s2:g}")
        expect.close(gamma, expected, f"gamma for s2 = {s2:g} (every point to its nearest mean)", rtol=GAMMA_RTOL,
                     atol=GAMMA_ATOL, why=NONFINITE_GAMMA, case=f"\n200 points in 2-d, 4 components, s2 = {s2:g}")
        hard = validate_gamma(ctx.run(X, pi, mu, s2, hard_EM=True), *expected.shape,
                              f"gamma for s2 = {s2:g} with hard_EM=True")
        expect.close(hard, theory.one_hot_rows(theory.nearest(X, mu), 4),
                     f"gamma for s2 = {s2:g} with hard_EM=True", rtol=0, atol=0, why=NOT_ONE_HOT)


@ASSIGNMENT.check("e_step_spherical", "hidden random inputs match the reference", 1, needs_reference=True)
def e_step_hidden(ctx):
    for N, d, C in HIDDEN_SIZES:
        X, (pi, mu, s2) = theory.random_mixture(ctx.rng, N, d, C, spread=6.0)
        for hard in (False, True):
            expected = ctx.reference("e_step_spherical")(X, pi, mu, s2, hard_EM=hard)
            gamma = validate_gamma(ctx.run(X, pi, mu, s2, hard_EM=hard), N, C)
            expect.close(gamma, expected, f"gamma with hard_EM={hard} (N={N}, d={d}, C={C})", rtol=GAMMA_RTOL,
                         atol=GAMMA_ATOL, case=_case(X=X, pi=pi, mu=mu, s2=s2) if N <= 12 else "")


# =============================================================================== m_step_spherical
@ASSIGNMENT.check("m_step_spherical", "visible fixture", 2,
                  hints=("pi_c = N_c / N, mu_c = sum_i gamma_ic x_i / N_c with N_c = sum_i gamma_ic.",
                         "s2 = sum_i sum_c gamma_ic ||x_i - mu_c||^2 / (N d), around the NEW means."))
def m_step_visible(ctx):
    g, e = gmm_sample(), visible()
    X = g["data"]
    got = validate_parameters(ctx.run(X, e["gamma_soft"]), *e["mu1"].shape)
    compare_parameters(got, (e["pi1"], e["mu1"], float(e["s2_1"])),
                       "\nthe gmm sample and the responsibilities of the visible E-step")


@ASSIGNMENT.check("m_step_spherical", "maximises the expected complete-data log-likelihood", 2)
def m_step_maximises(ctx):
    rng = ctx.rng
    for N, d, C in ((12, 2, 3), (40, 3, 4)):
        X, _ = theory.random_mixture(rng, N, d, C)
        gamma = theory.random_responsibilities(rng, N, C, concentration=0.5)
        pi, mu, s2 = validate_parameters(ctx.run(X, gamma), C, d)
        if not np.isclose(pi.sum(), 1.0, rtol=0, atol=1e-10):
            raise Failed(f"pi sums to {pi.sum():.10g}, not 1", case=_case(X=X, gamma=gamma))
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
                                     why=f"set the derivative with respect to {name} to zero"
                                         + (" (s2 is around the NEW means, per coordinate)" if name == "s2" else ""),
                                     case=_case(X=X, gamma=gamma))


@ASSIGNMENT.check("m_step_spherical", "one-hot gamma: cluster sizes, cluster means, pooled variance", 1)
def m_step_one_hot(ctx):
    X, _ = theory.random_mixture(ctx.rng, 30, 2, 3)
    labels = np.arange(30) % 3
    gamma = theory.one_hot_rows(labels, 3)
    got = validate_parameters(ctx.run(X, gamma), 3, 2)
    means = np.stack([X[labels == c].mean(axis=0) for c in range(3)])
    pooled = sum(np.sum((X[labels == c] - means[c]) ** 2) for c in range(3)) / (30 * 2)
    compare_parameters(got, (np.full(3, 1 / 3), means, pooled), _case(X=X, labels=labels))


@ASSIGNMENT.check("m_step_spherical", "hidden random inputs match the reference", 1, needs_reference=True)
def m_step_hidden(ctx):
    for N, d, C in HIDDEN_SIZES:
        X, _ = theory.random_mixture(ctx.rng, N, d, C)
        X = X + 1e5                                        # far from the origin: centre before squaring
        gamma = theory.random_responsibilities(ctx.rng, N, C)
        expected = ctx.reference("m_step_spherical")(X, gamma)
        got = validate_parameters(ctx.run(X, gamma), C, d)
        compare_parameters(got, expected, _case(X=X, gamma=gamma) if N <= 12 else f"\nN={N}, d={d}, C={C}")


# =============================================================================== kmeans
def validate_kmeans(value, N: int, C: int, d: int):
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise Failed(f"kmeans should return (mu, labels) but returned {expect.describe_value(value)}")
    mu = expect.array(value[0], "mu returned by kmeans", shape=(C, d),
                      why_nonfinite="a cluster that loses all its points has no mean (0/0): keep its previous centre")
    labels = expect.array(value[1], "labels returned by kmeans", shape=(N,))
    if not np.all(labels == np.round(labels)) or labels.min() < 0 or labels.max() >= C:
        raise Failed(f"labels returned by kmeans must be cluster indices 0..{C - 1}",
                     why="labels[i] is the index of the centre point i is assigned to")
    return mu, labels.astype(int)


def _clustered(rng, N: int, d: int, C: int):
    X, _ = theory.random_mixture(rng, N, d, C, spread=5.0)
    return X, X[rng.choice(N, size=C, replace=False)].copy()


@ASSIGNMENT.check("kmeans", "visible fixture", 2,
                  hints=("Repeat: assign every point to its nearest centre; stop if no label changed; move every "
                         "centre to the mean of its points.",
                         "Squared distances of all points to all centres at once: "
                         "((X[:, None, :] - mu[None, :, :]) ** 2).sum(axis=2), then argmin over axis 1."))
def kmeans_visible(ctx):
    g, e = gmm_sample(), visible()
    X, mu0 = g["data"], g["mu0"]
    mu, labels = validate_kmeans(ctx.run(X, mu0), len(X), *mu0.shape)
    text = "\nthe gmm sample (300 points) from the centres mu0"
    expect.close(labels, e["kmeans_labels"], "labels of kmeans(X, mu0)", rtol=0, atol=0, case=text,
                 why="labels are the nearest-centre assignments that produced the returned centres")
    expect.close(mu, e["kmeans_mu"], "centres of kmeans(X, mu0)", rtol=1e-9, atol=1e-12, case=text,
                 why="every centre is the mean of the points assigned to it")


@ASSIGNMENT.check("kmeans", "returns a fixed point: nearest centres, centres at the means", 2)
def kmeans_fixed_point(ctx):
    for N, d, C in ((20, 2, 3), (200, 3, 5)):
        X, start = _clustered(ctx.rng, N, d, C)
        mu, labels = validate_kmeans(ctx.run(X, start), N, C, d)
        text = _case(X=X, mu=start) if N <= 20 else f"\nN={N}, d={d}, C={C}"
        nearest = theory.nearest(X, mu)
        if not np.array_equal(labels, nearest):
            i = int(np.flatnonzero(labels != nearest)[0])
            raise Failed(f"after convergence point {i} is labelled {labels[i]} but its nearest centre is {nearest[i]}",
                         why="iterate until the assignments stop changing, and return the final assignments",
                         case=text)
        for c in range(C):
            if np.any(labels == c) and not np.allclose(mu[c], X[labels == c].mean(axis=0), rtol=1e-9, atol=1e-12):
                raise Failed(f"centre {c} is not the mean of the points labelled {c}",
                             why="the update step moves every centre to the mean of its points", case=text)


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


@ASSIGNMENT.check("kmeans", "stops after max_iter updates", 1)
def kmeans_max_iter(ctx):
    X, start = _clustered(ctx.rng, 60, 2, 4)
    for max_iter in (1, 2):
        mu, labels = validate_kmeans(ctx.run(X, start, max_iter=max_iter), 60, 4, 2)
        e_mu, e_labels = theory.lloyd(X, start, max_iter)
        if not (np.array_equal(labels, e_labels) and np.allclose(mu, e_mu, rtol=1e-9, atol=1e-12)):
            raise Failed(f"with max_iter={max_iter} kmeans should do exactly {max_iter} assignment and update step(s) "
                         "(unless the labels stop changing first) and return the centres and the labels of the last "
                         "update", case=_case(X=X, mu=start),
                         why="each iteration: assign, stop if nothing changed, update")


@ASSIGNMENT.check("kmeans", "hidden random inputs match the reference", 2, needs_reference=True)
def kmeans_hidden(ctx):
    for N, d, C in HIDDEN_SIZES[1:]:
        X, start = _clustered(ctx.rng, N, d, C)
        expected_mu, expected_labels = ctx.reference("kmeans")(X, start)
        mu, labels = validate_kmeans(ctx.run(X, start), N, C, d)
        text = _case(X=X, mu=start) if N <= 12 else f"\nN={N}, d={d}, C={C}"
        expect.close(labels, expected_labels, f"labels (N={N}, d={d}, C={C})", rtol=0, atol=0, case=text)
        expect.close(mu, expected_mu, f"centres (N={N}, d={d}, C={C})", rtol=1e-9, atol=1e-12, case=text)
