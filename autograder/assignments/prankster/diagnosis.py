"""Explanations of wrong answers, each shown only when its symptom is in what the student returned.

An explanation names a cause ("the prior a is missing"). It is given only when the returned value
shows it: the value equals what that mistake computes on the same inputs (each candidate mistake
is recomputed here, plainly), or a symptom only that mistake has (the rows sum to 1 instead of
the columns; NaN exactly in the columns where exp() underflows). When nothing matches, the
feedback restates the definition and blames nothing.

``EXPLANATIONS`` is the registry: the test-suite checks, over the corpus of single-bug
submissions, that each explanation appears on the mutants that have its bug and on no other.
The ``hard_em`` assignment reuses these for its prankster functions.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

from . import theory

EXPLANATIONS = {
    # calculate_log_probability
    "ll_no_constant": "the normalising constant -H W (log s + log(2 pi) / 2) is missing",
    "ll_no_log_2pi": "the log(2 pi) / 2 per pixel is missing",
    "ll_no_log_s": "the -log s per pixel is missing",
    "ll_constant_once": "the constant is counted once per image, not once per pixel (H * W of them)",
    "ll_s2_not_2s2": "the squared residuals are divided by s^2 instead of 2 s^2",
    "ll_s_as_variance": "s is used as a variance: the residuals are divided by 2 s and the constant has log(s) / 2",
    "ll_2s": "the squared residuals are divided by 2 s instead of 2 s^2 (s is the standard deviation)",
    "ll_off_by_one": "the face is pasted one column off: face column m belongs at image column m + d",
    "ll_mirrored": "the face is pasted mirrored (left-right): face column m belongs at image column m + d",
    "ll_mean": "the squared residuals are averaged over the pixels instead of summed",
    "ll_single_precision": ("ll agrees only to about 7 digits: that is single precision (float32); compute in float64 "
                            "(np.asarray(X, dtype=float))"),
    "ll_log_of_exp": ("-inf where the log-likelihood is below -745: the log of a density that exp() has already "
                      "underflowed to 0; take the log of the formula instead (a sum of squares over 2 s^2)"),
    "ll_pixel_loop": ("that is the speed of a Python loop over the pixels (numpy takes a few nanoseconds per pixel): "
                      "vectorise over the pixels; e.g. for each position d the sum over i, j of "
                      "(X[i, j, k] - model_d[i, j])^2 for every image at once, "
                      "((X - model_d[:, :, None]) ** 2).sum(axis=(0, 1))"),
    "in_place_integer": ("numpy cannot store floats in an integer array: an update in place (X /= s, X -= B, ...) of "
                         "an input. The fixtures are integer arrays on purpose: work on new arrays (X = X / s), "
                         "never on the caller's"),
    # calculate_lower_bound
    "bound_no_entropy": "the entropy term -sum q log q is missing",
    "bound_entropy_sign": "the entropy term has the wrong sign (the bound SUBTRACTS E_q[log q])",
    "bound_entropy_twice": "the entropy is counted twice",
    "bound_no_prior": "the log-prior term sum q log a is missing",
    "bound_a_not_log": "the prior enters as a[d] instead of log a[d]",
    "bound_mean": "the bound is averaged over the images instead of summed",
    "bound_negated": "the bound has the wrong sign overall (it is sum q (log p + log a - log q), not its negative)",
    "bound_0log0": ("0 * log(0) is NaN in numpy: terms with q = 0 must count as 0 (mask them, or use "
                    "scipy.special.xlogy); where the prior a is 0, q is 0 too, so q * log(a) must not be evaluated "
                    "as 0 * (-inf)"),
    # run_e_step
    "q_underflow": ("exp of log-probabilities this negative (the largest in these columns is below -745) underflows "
                    "to 0 at every position, so the column sum is 0 and q = 0/0 = NaN; subtract each column's maximum "
                    "(over positions, for every image) before exponentiating"),
    "q_overflow": ("exp of log-probabilities above 709 overflows to inf (and below -745 underflows to 0), so q = inf/inf "
                   "or 0/0 = NaN; subtract each column's maximum (over positions, for every image) before "
                   "exponentiating"),
    "q_global_max": ("one maximum for the whole table is subtracted: columns whose log-probabilities are far below "
                     "the largest of the table still underflow to 0/0; subtract each column's own maximum "
                     "(ll.max(axis=0, keepdims=True))"),
    "q_wrong_axis": "the rows sum to 1 instead of the columns: normalise over positions (axis=0), not over images",
    "q_whole_table": "the whole table sums to 1: normalise every column on its own (a sum over positions, axis=0)",
    "q_not_normalised": "the columns are not normalised: divide every column by its sum over the positions",
    "q_no_prior": "the prior a is missing: add log a[d] to ll[d, k] before normalising",
    "q_a_not_log": "the prior enters as a[d] added to ll instead of log a[d]",
    "q_prior_twice": "the prior is counted twice (log a added twice, or a squared)",
    "q_prior_after": ("the prior multiplies the normalised likelihoods and the columns are not normalised again: "
                      "multiply first (add log a), then normalise"),
    "q_row_max": ("the maximum subtracted is each position's (a row's, axis=1), not each image's (a column's): "
                  "exp(ll[d, k] - m) cancels in the ratio only if m is the same for every d of an image"),
    # run_m_step
    "s_variance": "s is returned as a variance: s^2 is the mean squared residual; return its square root",
    "s_not_over_K": "s^2 is not divided by the number of images K: it is the mean over all H * W * K pixels",
    "s_old_background": ("s is computed with the average image as background: compute s last, with the NEW F and B "
                         "in model_d"),
    "F_over_positions": "F is divided by the number of positions instead of the number of images K",
    "F_mirrored": "F looks mirrored: face column m sits at image column m + d",
    "B_over_K": ("B is divided by K: divide by the total weight of the (d, k) where column j shows the background, "
                 "sum_k sum_{d: j not under the face} q[d, k]"),
    "B_plain_mean": ("B is the plain average of the images: average only the pixels that show the background, "
                     "weighted by q"),
    "B_hidden_nan": ("a background pixel that the face covers in every image has weight 0, and 0/0 = NaN: keep a "
                     "finite value there (any value is optimal; the plain average of the images at that pixel is a "
                     "good one)"),
    "a_counts": "a is the number of images per position, not a share: divide by K (or by the sum)",
    "a_over_positions": ("a is divided by the number of positions instead of the number of images K: a[d] is the "
                         "share of the images whose face is at d"),
    # run_EM
    "LL_no_final": "LL lacks the bound after the final E-step: append calculate_lower_bound(...) once more after "
                   "the loop, with the last q",
    "LL_no_initial": "LL lacks LL[0], the bound at the initial guess with the q of the first E-step",
    "LL_after_e_step": ("LL[t] holds the bound after iteration t's E-step (with the new q); it must be the bound right "
                        "after the M-step, with the q that M-step used"),
    "stop_absolute": ("the run stopped when the absolute improvement fell below tolerance; the rule is relative: "
                      "LL[-1] - LL[-2] < tolerance * abs(LL[-2])"),
    "stop_never": "the run never stopped early: the tolerance is not used",
    "stop_late": ("the run stopped one iteration late: test the improvement of the iteration just done, "
                  "LL[-1] - LL[-2], right after appending its bound"),
    "params_initial": "run_EM returned the initial parameters, not those of the last M-step",
    "params_not_last": "run_EM returned the parameters of an earlier M-step, not those of the last one",
}


def explain(key: str) -> str:
    return EXPLANATIONS[key]


def matching(got, right, candidates: dict, *, rtol: float, atol: float, registry: dict = EXPLANATIONS) -> str | None:
    """The explanation of the first candidate mistake whose value equals ``got`` (and differs from the
    right value by far more than the tolerance, so that only that mistake can explain it)."""
    got = np.asarray(got, dtype=float)
    right = np.asarray(right, dtype=float)
    found = set()
    for key, value in candidates.items():
        value = np.asarray(value, dtype=float)
        if value.shape != got.shape or not np.all(np.isfinite(value)):
            continue
        if np.allclose(value, right, rtol=100 * rtol, atol=100 * atol):
            continue       # this mistake makes no difference on these inputs
        if np.allclose(got, value, rtol=rtol, atol=atol):
            found.add(key)
    return registry[found.pop()] if len(found) == 1 else None      # two mistakes that agree: blame neither


# =============================================================================== log-probabilities
def diagnose_ll(got, X, F, B, s) -> str:
    """Name the usual mistakes in a log-probability table by recomputing it with each of them."""
    X = np.asarray(X, dtype=float)
    H, W, K = X.shape
    F = np.asarray(F, dtype=float)
    w = F.shape[1]
    right = theory.log_probability(X, F, B, s)
    constant = H * W * (np.log(s) + 0.5 * np.log(2 * np.pi))
    squared = (right + constant) * (-2 * s * s)                       # residual sums
    n_pixels = H * W
    candidates = {
        "ll_no_constant": -squared / (2 * s * s),
        "ll_no_log_2pi": right + n_pixels * 0.5 * np.log(2 * np.pi),
        "ll_no_log_s": right + n_pixels * np.log(s),
        "ll_constant_once": right + (n_pixels - 1) * (np.log(s) + 0.5 * np.log(2 * np.pi)),
        "ll_s2_not_2s2": right - squared / (2 * s * s),
        "ll_s_as_variance": -n_pixels * (0.5 * np.log(s) + 0.5 * np.log(2 * np.pi)) - squared / (2 * s),
        "ll_2s": right + squared / (2 * s * s) - squared / (2 * s),
        "ll_mirrored": theory.log_probability(X, F[:, ::-1], B, s),
        "ll_mean": -constant - squared / (2 * s * s) / n_pixels,
    }
    got = np.asarray(got, dtype=float)
    found = matching(got, right, candidates, rtol=1e-8, atol=1e-8)
    if found:
        return found
    if got.shape == right.shape and W - w >= 1 and (np.allclose(got[:-1], right[1:], rtol=1e-8, atol=1e-8)
                                                   or np.allclose(got[1:], right[:-1], rtol=1e-8, atol=1e-8)):
        return explain("ll_off_by_one")
    if got.shape == right.shape and np.all(np.isfinite(got)) and np.allclose(got, right, rtol=3e-6, atol=0):
        return explain("ll_single_precision")
    return ("log p(X_k | d) = sum over the H*W pixels of log N(X[i, j, k] | model_d[i, j], s^2), where model_d is "
            "B with F pasted over columns d .. d + w - 1; compare one entry with a direct computation")


def why_nonfinite_ll(got, right) -> str:
    """The explanation of inf/NaN in a log-probability table."""
    got, right = np.asarray(got, dtype=float), np.asarray(right, dtype=float)
    if got.shape == right.shape:
        bad = ~np.isfinite(got)
        if np.all(got[bad] == -np.inf) and np.all(right[bad] < -700):
            return explain("ll_log_of_exp")
    return ("log-probabilities are finite for s > 0: inf or NaN comes from a log of 0 or of a negative number, "
            "or from 0/0; compute the log of the density formula directly")


# =============================================================================== the bound
def diagnose_bound(got, log_joint_values, q, a) -> str:
    """Name the usual mistakes in a bound, recomputed with each (terms with q = 0 count 0 in all)."""
    q = np.asarray(q, dtype=float)
    log_joint_values = np.asarray(log_joint_values, dtype=float)
    right = theory.bound_from_log_joint(log_joint_values, q)
    h = theory.entropy(q)
    possible = q > 0
    log_a = np.broadcast_to(theory.log_of(a)[:, None], q.shape)
    prior = float(np.sum(q[possible] * log_a[possible]))
    a_column = np.broadcast_to(np.asarray(a, dtype=float)[:, None], q.shape)
    candidates = {
        "bound_no_entropy": right - h,
        "bound_entropy_sign": right - 2 * h,
        "bound_entropy_twice": right + h,
        "bound_no_prior": right - prior,
        "bound_a_not_log": right - prior + float(np.sum(q[possible] * a_column[possible])),
        "bound_mean": right / q.shape[1],
        "bound_negated": -right,
    }
    found = matching(got, right, candidates, rtol=1e-9, atol=1e-9)
    if found:
        return found
    return ("L = sum_k sum_d q[d, k] (log p(X_k | d, F, B, s) + log a[d] - log q[d, k]), a sum over all positions "
            "and all images")


def why_nonfinite_bound(q) -> str:
    """The explanation of a NaN/inf bound: 0 log 0 only when q has zeros."""
    if np.any(np.asarray(q) == 0):
        return explain("bound_0log0")
    return ("the bound is finite for any q with positive entries and a > 0: inf or NaN comes from a log of 0 or of a "
            "negative number, or from 0/0")


# =============================================================================== the E-step
def diagnose_q(got, ll, a) -> str | None:
    """The explanation of a wrong posterior ``got`` for log-probabilities ``ll`` (P, K) and prior ``a``,
    or None when no mistake explains it.

    Each candidate mistake is recomputed on the same inputs, NaN where it makes 0/0 or inf/inf: the
    returned q must equal it (NaN where it has NaN), so an underflow is blamed only where exp()
    really underflows, and only when the rest of the table is what that mistake gives too."""
    got = np.asarray(got, dtype=float)
    ll = np.asarray(ll, dtype=float)
    a = np.asarray(a, dtype=float)
    log_a = theory.log_of(a)[:, None]
    joint = ll + log_a
    if got.shape != joint.shape:
        return None
    right = theory.posterior_from_log_joint(joint)
    top = np.max(joint[np.isfinite(joint)]) if np.isfinite(joint).any() else 0.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        def normalise(e):
            return e / e.sum(axis=0, keepdims=True)

        plain = np.exp(joint)
        row_max = np.max(np.where(np.isfinite(joint), joint, -np.inf), axis=1, keepdims=True)
        global_shift = np.exp(joint - top)
        candidates = [
            ("q_wrong_axis", softmax(joint, axis=1)),
            ("q_whole_table", global_shift / global_shift.sum()),
            ("q_overflow" if np.isinf(plain).any() else "q_underflow", normalise(plain)),
            ("q_underflow", np.nan_to_num(normalise(plain), nan=0.0, posinf=0.0)),
            ("q_global_max", normalise(global_shift)),
            ("q_row_max", normalise(np.exp(joint - row_max))),
            ("q_no_prior", softmax(ll, axis=0)),
            ("q_a_not_log", softmax(ll + a[:, None], axis=0)),
            ("q_prior_twice", softmax(ll + 2 * log_a, axis=0)),
            ("q_prior_after", softmax(ll, axis=0) * a[:, None]),
            ("q_not_normalised", np.exp(joint - joint.max(axis=0, keepdims=True))),
        ]
    found = set()
    for key, value in candidates:
        if value.shape != got.shape or np.allclose(value, right, rtol=1e-4, atol=1e-8, equal_nan=True):
            continue                     # this mistake makes no difference on these inputs
        if np.allclose(got, value, rtol=1e-6, atol=1e-10, equal_nan=True):
            found.add(key)
    if len(found) == 1:
        return explain(found.pop())
    if found:
        return None                      # mistakes that agree on these inputs: blame neither
    if np.all(np.isfinite(got)) and 1 < got.shape[0] != got.shape[1] \
            and np.allclose(got.sum(axis=1), 1, rtol=0, atol=1e-8) \
            and not np.allclose(got.sum(axis=0), 1, rtol=0, atol=1e-8):
        return explain("q_wrong_axis")
    return None


# =============================================================================== the M-step
def diagnose_m_step(got, X, q, w) -> str | None:
    """The explanation of a wrong (F, B, s, a) for images X and posterior q, or None."""
    F, B, s, a = got
    X = np.asarray(X, dtype=float)
    q = np.asarray(q, dtype=float)
    H, W, K = X.shape
    n_positions = W - w + 1
    e_a = q.sum(axis=1) / K
    e_F = sum(X[:, d:d + w, :] @ q[d] for d in range(n_positions)) / K
    e_B = theory.background_average(X, q, w)
    weight = theory.background_weight(q, W, w)
    seen = weight > 0
    e_B_filled = np.where(seen[None, :], e_B, X.mean(axis=2))
    e_s = expected_s(X, q, e_F, e_B_filled)
    checks = [
        ("a", a, e_a, {"a_counts": e_a * K}),
        ("F", F, e_F, {"F_over_positions": e_F * K / n_positions, "F_mirrored": e_F[:, ::-1]}),
        ("B", np.asarray(B)[:, seen], e_B[:, seen],
         {"B_over_K": (e_B * weight / K)[:, seen], "B_plain_mean": X.mean(axis=2)[:, seen]}),
        ("s", s, e_s, {"s_variance": e_s ** 2, "s_not_over_K": e_s * np.sqrt(K),
                       "s_old_background": expected_s(X, q, e_F, X.mean(axis=2))}),
    ]
    for _, value, right, candidates in checks:
        value = np.asarray(value, dtype=float)
        if value.shape == np.shape(right) and np.all(np.isfinite(value)) \
                and np.allclose(value, right, rtol=1e-8, atol=1e-8):
            continue
        return matching(value, right, candidates, rtol=1e-7, atol=1e-7)
    return None


def expected_s(X, q, F, B) -> float:
    """sqrt(sum_{d,k} q[d, k] ||X_k - model_d||^2 / (H W K)) for the given F and B."""
    H, W, K = X.shape
    total = 0.0
    for d in range(q.shape[0]):
        residual = X - theory.model_image(F, B, d)[:, :, None]
        total += float(np.sum(q[d] * np.sum(residual * residual, axis=(0, 1))))
    return float(np.sqrt(total / (H * W * K)))
