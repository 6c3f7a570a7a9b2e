"""Explanations of wrong answers of the hard_em functions, each shown only when its symptom is in
what the student returned (see ``autograder.assignments.prankster.diagnosis``, whose explanations
of the prankster functions are reused and extended here).
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

from ..prankster import diagnosis as prankster
from ..prankster import theory as pt
from . import theory

EXPLANATIONS = dict(prankster.EXPLANATIONS)
EXPLANATIONS.update({
    # the prankster functions with hard_EM=True
    "hard_q_soft": "with hard_EM=True it returned the soft posterior: the flag is ignored",
    "hard_q_no_prior": ("the chosen positions maximise ll[d, k] alone: the prior counts, maximise "
                        "ll[d, k] + log a[d] (a position with a[d] = 0 is impossible)"),
    "hard_q_argmin": "the chosen positions are the LEAST probable ones: use argmax, not argmin",
    "hard_q_impossible": ("a chosen position has prior a[d] = 0, so it is impossible: maximise ll[d, k] + log a[d] "
                          "(log 0 = -inf never wins)"),
    # e_step_spherical
    "gamma_underflow": ("for a small s2 the log-weights are huge and negative (of order -distance^2 / (2 s2)): exp() "
                        "gives 0 for every component and 0/0 = NaN; subtract each row's maximum before exponentiating"),
    "gamma_wrong_axis": "the columns sum to 1 instead of the rows: normalise over components (axis=1), not over points",
    "gamma_not_normalised": "the rows are not normalised: divide every row by its sum over the components",
    "gamma_no_pi": "the weights pi are missing: add log pi_c to every log-density",
    "gamma_pi_not_log": "the weights enter as pi_c added to the log-density instead of log pi_c",
    "gamma_s2_not_2s2": "the squared distances are divided by s2 instead of 2 s2",
    "gamma_s2_as_sd": "s2 is used as a standard deviation: the squared distances are divided by 2 s2^2",
    "gamma_distance": "the distances are not squared: log N has -||x - mu_c||^2 / (2 s2)",
    "hard_gamma_soft": "with hard_EM=True it returned soft responsibilities: the flag is ignored",
    "hard_gamma_nearest": ("with hard_EM=True every point goes to its nearest mean: the weights pi are ignored (the "
                           "most probable component maximises log pi_c - ||x - mu_c||^2 / (2 s2))"),
    "hard_gamma_argmin": "with hard_EM=True every point goes to its LEAST probable component: use argmax",
    # m_step_spherical
    "s2_not_per_dimension": "s2 is not divided by the dimension D: the shared variance is per coordinate, s2 * I",
    "s2_cancellation": ("s2 changes when the data are shifted, and a variance does not: on points far from the "
                        "origin sum x^2 minus N_c mu^2 subtracts two huge, nearly equal numbers; square the CENTRED "
                        "points x_i - mu_c instead"),
    "s2_overall_mean": "s2 is computed around the mean of all points, not around each component's new mean",
    "s2_component_average": ("s2 averages the per-component variances; it is the gamma-weighted squared distance of "
                             "all points to their means divided by N D"),
    "pi_counts": "pi is the weight N_c of each component, not its share: divide by N",
    "mu_over_N": "mu is divided by N instead of N_c = sum_i gamma_ic",
    "mu_unweighted": "mu is the plain average of all points: weight every point by gamma_ic",
    # kmeans
    "kmeans_L1": ("the points are assigned by the sum of absolute differences (L1): k-means assigns to the nearest "
                  "centre in squared Euclidean distance, ((X[:, None, :] - mu[None]) ** 2).sum(axis=2)"),
    "kmeans_argmax": "every point goes to its FARTHEST centre: use argmin",
    "kmeans_one_update": "it stopped after the first update: stop only when no label changed",
    "kmeans_extra_iteration": "one iteration too many: with max_iter=m do at most m assignment + update steps",
    "kmeans_ignores_max_iter": "it ran until convergence whatever max_iter says: stop after max_iter iterations",
    "kmeans_labels_of_new_centres": ("the labels were recomputed from the final centres: return the labels that "
                                     "produced them (of the last assignment step)"),
    "kmeans_empty_nan": ("a cluster that loses all its points has no mean (0/0 = NaN): keep its previous centre"),
})


def explain(key: str) -> str:
    return EXPLANATIONS[key]


# =============================================================================== prankster, hard
def diagnose_hard_q(q, ll, a) -> str | None:
    """Why a hard q (one-hot or not) is wrong for log-probabilities ``ll`` and prior ``a``."""
    q = np.asarray(q, dtype=float)
    joint = ll + pt.log_of(a)[:, None]
    if q.shape != joint.shape or not np.all(np.isfinite(q)):
        return None
    soft = pt.posterior_from_log_joint(joint)
    if not np.all((q == 0) | (q == 1)):
        if np.allclose(q, soft, rtol=1e-6, atol=1e-10):
            return explain("hard_q_soft")
        return None
    chosen = np.argmax(q, axis=0)
    right = np.argmax(joint, axis=0)
    for key, candidate in (("hard_q_no_prior", np.argmax(ll, axis=0)),
                           ("hard_q_argmin", np.argmin(np.where(np.isfinite(joint), joint, np.inf), axis=0))):
        if not np.array_equal(candidate, right) and np.array_equal(chosen, candidate):
            return explain(key)
    if np.any(np.asarray(a)[chosen] == 0):
        return explain("hard_q_impossible")
    return None


def diagnose_hard_m_step(got, X, q, w) -> str | None:
    return prankster.diagnose_m_step(got, X, q, w)


# =============================================================================== spherical mixture
def diagnose_gamma(gamma, X, pi, mu, s2) -> str | None:
    """Why soft responsibilities ``gamma`` are wrong, or None: the one candidate mistake whose
    recomputed value (NaN where it makes 0/0) equals ``gamma``."""
    gamma = np.asarray(gamma, dtype=float)
    X = np.asarray(X, dtype=float)
    mu = np.asarray(mu, dtype=float)
    pi = np.asarray(pi, dtype=float)
    log_weights = theory.log_weights(X, pi, mu, s2)
    if gamma.shape != log_weights.shape:
        return None
    C = len(pi)
    right = theory.posterior(X, pi, mu, s2)
    squared = np.sum((X[:, None, :] - mu[None]) ** 2, axis=2)
    log_pi = pt.log_of(pi)[None, :]
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        plain = np.exp(log_weights)
        candidates = [
            ("gamma_underflow", plain / plain.sum(axis=1, keepdims=True)),
            ("gamma_underflow", np.nan_to_num(plain / plain.sum(axis=1, keepdims=True), nan=0.0, posinf=0.0)),
            ("gamma_wrong_axis", softmax(log_weights, axis=0)),
            ("gamma_no_pi", theory.posterior(X, np.full(C, 1 / C), mu, s2)),
            ("gamma_pi_not_log", softmax(pi[None, :] - squared / (2 * s2), axis=1)),
            ("gamma_s2_not_2s2", softmax(log_pi - squared / s2, axis=1)),
            ("gamma_s2_as_sd", softmax(log_pi - squared / (2 * s2 * s2), axis=1)),
            ("gamma_distance", softmax(log_pi - np.sqrt(squared) / (2 * s2), axis=1)),
            ("gamma_not_normalised", np.exp(log_weights - log_weights.max(axis=1, keepdims=True))),
        ]
    found = set()
    for key, value in candidates:
        if np.allclose(value, right, rtol=1e-4, atol=1e-8, equal_nan=True):
            continue
        if np.allclose(gamma, value, rtol=1e-6, atol=1e-10, equal_nan=True):
            found.add(key)
    if len(found) == 1:
        return explain(found.pop())
    if not found and np.all(np.isfinite(gamma)) and gamma.shape[1] > 1 \
            and np.any(np.abs(gamma.sum(axis=1) - 1) > 1e-8) and np.allclose(gamma.sum(axis=0), 1, rtol=0, atol=1e-8):
        return explain("gamma_wrong_axis")
    return None


def diagnose_hard_gamma(gamma, X, pi, mu, s2) -> str | None:
    """Why hard responsibilities are wrong: the rule whose labels they are, when only one rule gives them."""
    gamma = np.asarray(gamma, dtype=float)
    log_weights = theory.log_weights(X, pi, mu, s2)
    if gamma.shape != log_weights.shape or not np.all(np.isfinite(gamma)):
        return None
    if not np.all((gamma == 0) | (gamma == 1)):
        if np.allclose(gamma, theory.posterior(X, pi, mu, s2), rtol=1e-6, atol=1e-10):
            return explain("hard_gamma_soft")
        return None
    chosen = np.argmax(gamma, axis=1)
    right = np.argmax(log_weights, axis=1)
    squared = np.sum((np.asarray(X)[:, None, :] - np.asarray(mu)[None]) ** 2, axis=2)
    log_pi = pt.log_of(pi)[None, :]
    rules = {"hard_gamma_nearest": np.argmin(squared, axis=1),
             "hard_gamma_argmin": np.argmin(log_weights, axis=1),
             "gamma_s2_not_2s2": np.argmax(log_pi - squared / s2, axis=1),
             "gamma_pi_not_log": np.argmax(np.asarray(pi)[None, :] - squared / (2 * s2), axis=1)}
    matches = [key for key, labels in rules.items() if np.array_equal(chosen, labels)
               and not np.array_equal(labels, right)]
    return explain(matches[0]) if len(matches) == 1 else None


def diagnose_m_step(got, X, gamma) -> str | None:
    """Why (pi, mu, s2) are wrong for responsibilities ``gamma``: the first wrong quantity's mistake."""
    pi, mu, s2 = (np.asarray(v, dtype=float) for v in got)
    X = np.asarray(X, dtype=float)
    N, D = X.shape
    e_pi, e_mu, e_s2 = theory.m_step(X, gamma)
    Nc = gamma.sum(axis=0)
    candidates = [
        (pi, e_pi, {"pi_counts": Nc}),
        (mu, e_mu, {"mu_over_N": gamma.T @ X / N, "mu_unweighted": np.broadcast_to(X.mean(axis=0), e_mu.shape)}),
        (s2, e_s2, {"s2_not_per_dimension": e_s2 * D,
                    "s2_overall_mean": float(np.sum(gamma * np.sum((X - X.mean(axis=0)) ** 2, axis=1)[:, None])
                                             / (N * D)),
                    "s2_component_average": float(np.mean([gamma[:, c] @ np.sum((X - e_mu[c]) ** 2, axis=1) / (Nc[c] * D)
                                                           for c in range(len(Nc))]))}),
    ]
    for value, right, options in candidates:
        if value.shape == np.shape(right) and np.allclose(value, right, rtol=1e-8, atol=1e-10):
            continue
        return prankster.matching(value, right, options, rtol=1e-7, atol=1e-9, registry=EXPLANATIONS)
    return None


# =============================================================================== k-means
def lloyd_variant(X, mu, max_iter, distance="squared", pick=np.argmin, stop_after_first=False,
                  labels_from_final=False):
    """Lloyd's algorithm with one of the usual mistakes (for diagnoses)."""
    X = np.asarray(X, dtype=float)
    mu = np.array(mu, dtype=float)
    labels = None

    def assign(centres):
        diff = X[:, None, :] - centres[None]
        table = np.abs(diff).sum(axis=2) if distance == "L1" else (diff ** 2).sum(axis=2)
        return pick(table, axis=1)

    for it in range(max_iter):
        new = assign(mu)
        if labels is not None and (stop_after_first or np.array_equal(new, labels)):
            break
        labels = new
        for c in range(len(mu)):
            if np.any(labels == c):
                mu[c] = X[labels == c].mean(axis=0)
    if labels_from_final and labels is not None:
        labels = assign(mu)
    return mu, labels


def diagnose_kmeans(got_mu, got_labels, X, start, max_iter: int) -> str | None:
    right_mu, right_labels = theory.lloyd(X, start, max_iter)
    variants = {
        "kmeans_L1": lloyd_variant(X, start, max_iter, distance="L1"),
        "kmeans_argmax": lloyd_variant(X, start, max_iter, pick=np.argmax),
        "kmeans_one_update": lloyd_variant(X, start, max_iter, stop_after_first=True),
        "kmeans_extra_iteration": lloyd_variant(X, start, max_iter + 1),
        "kmeans_ignores_max_iter": lloyd_variant(X, start, 10_000),
        "kmeans_labels_of_new_centres": lloyd_variant(X, start, max_iter, labels_from_final=True),
    }
    found = []
    for key, (mu, labels) in variants.items():
        if labels is None:
            continue
        same_as_right = np.array_equal(labels, right_labels) and np.allclose(mu, right_mu, rtol=1e-9, atol=1e-12)
        if not same_as_right and np.array_equal(got_labels, labels) and np.allclose(got_mu, mu, rtol=1e-9,
                                                                                   atol=1e-12):
            found.append(key)
    return explain(found[0]) if len(found) == 1 else None
