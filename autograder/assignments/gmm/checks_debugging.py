"""Checks of the "debug your EM" functions: assertions that must pass on a correct EM and fire on a broken one.

Each assert_* function gets EM's building blocks as arguments. We hand it correct ones (it must
return quietly) and, one at a time, broken ones with a classic bug (it must raise AssertionError).
The broken ones are chosen so that the property they break breaks by a wide margin, and the
test-suite verifies that they do.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax, xlogy

from ...engine import Failed
from . import ASSIGNMENT, theory
from .fixtures import sample


# ----------------------------------------------------------------------------- correct EM parts
def correct_E_step(X, pi, mu, sigma):
    return theory.posterior(X, pi, mu, sigma)


def correct_M_step(X, gamma):
    return theory.m_step(X, gamma)


def correct_compute_vlb(X, pi, mu, sigma, gamma):
    return theory.bound(X, pi, mu, sigma, gamma)


def correct_log_likelihood(X, pi, mu, sigma):
    return theory.log_likelihood(X, pi, mu, sigma)


def correct_train_EM(X, C, rtol=1e-4, max_iter=200, restarts=3):
    """A plain, correct train_EM (means started at random data points, seeded)."""
    rng = np.random.default_rng(len(X))
    best = None
    for _ in range(restarts):
        pi = np.full(C, 1.0 / C)
        mu = X[rng.choice(len(X), C, replace=False)]
        sigma = np.repeat(np.atleast_2d(np.cov(X, rowvar=False))[None], C, axis=0)
        previous = None
        for _ in range(max_iter):
            gamma = correct_E_step(X, pi, mu, sigma)
            pi, mu, sigma = correct_M_step(X, gamma)
            loss = correct_compute_vlb(X, pi, mu, sigma, gamma)
            if previous is not None and abs((loss - previous) / previous) <= rtol:
                break
            previous = loss
        if best is None or loss > best[0]:
            best = (loss, pi, mu, sigma)
    return best


# ----------------------------------------------------------------------------- classic bugs
def m_step_doubling_covariances(X, gamma):
    pi, mu, sigma = correct_M_step(X, gamma)
    return pi, mu, 2.0 * sigma


def m_step_uncentred_covariances(X, gamma):
    """Scatter around the origin instead of around the new mean."""
    pi, mu, _ = correct_M_step(X, gamma)
    weights = gamma.sum(axis=0)
    sigma = np.einsum("nc,nd,ne->cde", gamma, X, X) / weights[:, None, None]
    return pi, mu, sigma


def m_step_uniform_weights(X, gamma):
    _, mu, sigma = correct_M_step(X, gamma)
    return np.full(gamma.shape[1], 1.0 / gamma.shape[1]), mu, sigma


def m_step_means_divided_by_n(X, gamma):
    pi, _, _ = correct_M_step(X, gamma)
    mu = gamma.T @ X / len(X)
    diff = X[:, None, :] - mu[None]
    sigma = np.einsum("nc,ncd,nce->cde", gamma, diff, diff) / gamma.sum(axis=0)[:, None, None]
    return pi, mu, sigma


def e_step_tempered(X, pi, mu, sigma):
    """A softmax at the wrong temperature: not the posterior."""
    return softmax(0.3 * theory.log_joint(X, pi, mu, sigma), axis=1)


def vlb_without_entropy(X, pi, mu, sigma, gamma):
    return theory.expected_complete(X, pi, mu, sigma, gamma)


def vlb_plus_kl(X, pi, mu, sigma, gamma):
    """log p(X) + KL(q || posterior): the identity log p(X) = L + KL read backwards.

    Tight after an exact E-step, above the log-likelihood everywhere else.
    """
    log_post = theory.log_joint(X, pi, mu, sigma)
    log_post = log_post - np.logaddexp.reduce(log_post, axis=1, keepdims=True)
    kl = float(np.sum(xlogy(gamma, gamma)) - np.sum(gamma * log_post))
    return theory.log_likelihood(X, pi, mu, sigma) + kl


def train_EM_divided_by_N(X, C, **kwargs):
    loss, pi, mu, sigma = correct_train_EM(X, C)
    return loss, pi, mu, sigma * pi[:, None, None]


def train_EM_uniform_weights(X, C, **kwargs):
    loss, pi, mu, sigma = correct_train_EM(X, C)
    return loss, np.full(C, 1.0 / C), mu, sigma


def train_EM_shifted_means(X, C, **kwargs):
    loss, pi, mu, sigma = correct_train_EM(X, C)
    return loss, pi, mu + 0.5 * np.sqrt(np.trace(sigma, axis1=1, axis2=2))[:, None], sigma


# ----------------------------------------------------------------------------- the checks
def _start():
    s = sample()
    return s["data"], s["pi0"], s["mu0"], s["sigma0"]


def _overlapping_start():
    """Components that all overlap: the posterior is uncertain, so its entropy is a large part of
    the bound (a tolerance loose enough to miss a missing entropy is exposed)."""
    X = sample()["data"]
    C, d = 3, X.shape[1]
    mu = X.mean(axis=0) + 0.1 * np.arange(C)[:, None] * X.std(axis=0)
    return X, np.full(C, 1.0 / C), mu, np.repeat(np.cov(X, rowvar=False)[None], C, axis=0)


def _expect_quiet(ctx, what: str, *args, **kwargs) -> None:
    outcome = ctx.attempt(*args, **kwargs)
    if outcome.ok:
        return
    if outcome.error_type == "AssertionError":
        raise Failed(f"{ctx.task.name} raised AssertionError on a CORRECT EM ({what}): {outcome.message}",
                     why="an assertion that fires on correct code is as useless as one that never fires; "
                         "compare with a small relative tolerance (floating-point sums differ in the last "
                         "digits) and make sure perturbations stay valid parameters")
    raise ctx.failure(outcome)


def _expect_assertion(ctx, bug: str, *args, **kwargs) -> None:
    outcome = ctx.attempt(*args, **kwargs)
    if outcome.status == "error" and outcome.error_type == "AssertionError":
        return
    if outcome.ok:
        raise Failed(f"{ctx.task.name} did not raise AssertionError for an EM with a bug: {bug}",
                     why="the property your function asserts is broken by this bug; check that you "
                         "evaluate it at every step and that your tolerance is small")
    failure = ctx.failure(outcome)
    failure.message = (f"on an EM with a bug ({bug}) {ctx.task.name} should raise AssertionError, "
                       f"but: {failure.message}")
    raise failure


@ASSIGNMENT.check("assert_bound_never_decreases", "passes on a correct EM", 1, timeout=60)
def monotone_correct(ctx):
    _expect_quiet(ctx, "exact E- and M-steps", *_start(), correct_E_step, correct_M_step, correct_compute_vlb)


@ASSIGNMENT.check("assert_bound_never_decreases", "catches an M-step that doubles the covariances", 1, timeout=60)
def monotone_bad_m(ctx):
    _expect_assertion(ctx, "the M-step returns twice the right covariances", *_start(),
                      correct_E_step, m_step_doubling_covariances, correct_compute_vlb)


@ASSIGNMENT.check("assert_bound_never_decreases", "catches an E-step that is not the posterior", 1, timeout=60)
def monotone_bad_e(ctx):
    _expect_assertion(ctx, "the E-step's softmax uses the wrong temperature", *_start(),
                      e_step_tempered, correct_M_step, correct_compute_vlb)


@ASSIGNMENT.check("assert_m_step_maximises", "passes on a correct M-step", 1, timeout=60)
def maximises_correct(ctx):
    X, pi, mu, sigma = _start()
    _expect_quiet(ctx, "exact M-step", X, correct_E_step(X, pi, mu, sigma), correct_M_step, correct_compute_vlb)


@ASSIGNMENT.check("assert_m_step_maximises", "catches covariances taken around the origin", 1, timeout=60)
def maximises_uncentred(ctx):
    X, pi, mu, sigma = _start()
    _expect_assertion(ctx, "sigma is the scatter around 0 instead of around the new mean", X,
                      correct_E_step(X, pi, mu, sigma), m_step_uncentred_covariances, correct_compute_vlb)


@ASSIGNMENT.check("assert_m_step_maximises", "catches weights that ignore gamma", 1, timeout=60)
def maximises_uniform(ctx):
    X, pi, mu, sigma = _start()
    _expect_assertion(ctx, "pi is always uniform", X, correct_E_step(X, pi, mu, sigma),
                      m_step_uniform_weights, correct_compute_vlb)


@ASSIGNMENT.check("assert_m_step_maximises", "catches means divided by N", 1, timeout=60)
def maximises_means(ctx):
    X, pi, mu, sigma = _start()
    _expect_assertion(ctx, "mu is divided by N instead of N_c", X, correct_E_step(X, pi, mu, sigma),
                      m_step_means_divided_by_n, correct_compute_vlb)


@ASSIGNMENT.check("assert_bound_is_tight", "passes on a correct EM", 1, timeout=60)
def tight_correct(ctx):
    _expect_quiet(ctx, "exact E-step, bound and log-likelihood", *_overlapping_start(), correct_E_step,
                  correct_compute_vlb, correct_log_likelihood)


@ASSIGNMENT.check("assert_bound_is_tight", "catches a bound without the entropy", 1, timeout=60)
def tight_no_entropy(ctx):
    _expect_assertion(ctx, "compute_vlb forgets the entropy of q", *_overlapping_start(), correct_E_step,
                      vlb_without_entropy, correct_log_likelihood)


@ASSIGNMENT.check("assert_bound_is_tight", "catches a bound above the log-likelihood", 1, timeout=60)
def tight_above(ctx):
    _expect_assertion(ctx, "compute_vlb adds the KL gap instead of subtracting it (tight only at the "
                           "posterior)", *_overlapping_start(), correct_E_step, vlb_plus_kl, correct_log_likelihood)


def _truth():
    """The course data's mixture with more unequal weights, so wrong weights are far off."""
    from ...datasets import gmm
    return np.array([0.6, 0.3, 0.1]), gmm.TRUE_MU, gmm.TRUE_SIGMA


@ASSIGNMENT.check("assert_recovers_parameters", "passes on a correct train_EM", 1, timeout=120)
def recovers_correct(ctx):
    _expect_quiet(ctx, "a correct train_EM", correct_train_EM, *_truth(), n_points=600, n_datasets=3)


@ASSIGNMENT.check("assert_recovers_parameters", "catches covariances divided by N", 1, timeout=120)
def recovers_divided(ctx):
    _expect_assertion(ctx, "the covariances are divided by N instead of N_c", train_EM_divided_by_N, *_truth(),
                      n_points=600, n_datasets=3)


@ASSIGNMENT.check("assert_recovers_parameters", "catches wrong weights", 1, timeout=120)
def recovers_weights(ctx):
    _expect_assertion(ctx, "the weights are always uniform", train_EM_uniform_weights, *_truth(),
                      n_points=600, n_datasets=3)


@ASSIGNMENT.check("assert_recovers_parameters", "catches biased means", 1, timeout=120)
def recovers_shifted(ctx):
    _expect_assertion(ctx, "every mean is off by half a standard deviation", train_EM_shifted_means, *_truth(),
                      n_points=600, n_datasets=3)
