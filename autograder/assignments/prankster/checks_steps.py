"""Checks of calculate_log_probability, calculate_lower_bound, run_e_step and run_m_step.

The check functions are also registered by the ``hard_em`` assignment (same functions, plus a
flag), so each one only uses ``ctx`` and the shared modules.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ...engine import Failed, expect
from . import ASSIGNMENT, theory
from .fixtures import realistic, visible, visible_inputs
from .judging import (BOUND_RTOL, LL_RTOL, NONFINITE_Q, Q_ATOL, Q_RTOL, bound_value, case, compare_m_step,
                      diagnose_ll, run_with_table, validate_ll,
                      validate_m_step, validate_q)

# Hidden random problems (H, W, w, K), smallest first: the first failure is the smallest failing input.
HIDDEN_SIZES = [(1, 3, 1, 2), (2, 5, 2, 3), (3, 8, 3, 6), (4, 12, 12, 5), (6, 20, 7, 30), (12, 40, 15, 60)]
# Property checks run on the student's machine with the student's own functions: small sizes only.
SMALL_SIZES = [(1, 4, 1, 2), (2, 6, 3, 4), (3, 9, 9, 3), (4, 11, 4, 7)]


def _ll_close(got, expected, what, X, F, B, s, case_text=""):
    scale = float(np.abs(expected).max())
    try:
        expect.close(got, expected, what, rtol=LL_RTOL, atol=1e-12 * scale, case=case_text)
    except Failed as failure:
        failure.why = diagnose_ll(got, X, F, B, s)
        raise


# =============================================================================== calculate_log_probability
@ASSIGNMENT.check("calculate_log_probability", "visible fixture", 2,
                  hints=("Build the H x W model image for position d (B with F pasted over columns d .. d+w-1) and "
                         "add log N(X[i, j, k] | model[i, j], s^2) over all pixels.",
                         "log N(x | m, s^2) = -log(s) - log(2 pi) / 2 - (x - m)^2 / (2 s^2); the constant appears "
                         "once per pixel, H * W times per image.",
                         "The fixtures are integer arrays: convert with np.asarray(X, dtype=float) or work on new "
                         "arrays, never update the inputs in place."))
def log_probability_visible(ctx):
    v = visible_inputs()
    ll = validate_ll(ctx.run(v["tX"], v["tF"], v["tB"], v["ts"]), 3, 2)
    _ll_close(ll, visible()["ll"], "ll for the notebook's fixture (tX, tF, tB, ts)", v["tX"], v["tF"], v["tB"],
              v["ts"], case(tX=v["tX"], tF=v["tF"], tB=v["tB"], ts=v["ts"]))


@ASSIGNMENT.check("calculate_log_probability", "matches the Gaussian log-density pixel by pixel", 3)
def log_probability_definition(ctx):
    for n, (H, W, w, K) in enumerate(SMALL_SIZES):
        X, (F, B, s, _) = theory.random_problem(ctx.rng, H, W, w, K, integer=n % 2 == 0)
        text = case(X=X, F=F, B=B, s=s)
        ll = validate_ll(ctx.run(X, F, B, s), W - w + 1, K)
        _ll_close(ll, theory.log_probability(X, F, B, s), f"ll (H={H}, W={W}, w={w}, K={K})", X, F, B, s, text)


@ASSIGNMENT.check("calculate_log_probability", "realistic shots: 100 x 200 pixels, log-probabilities near -1e5", 2)
def log_probability_realistic(ctx):
    shots = realistic(K=6)
    X, F, B = shots["X"], shots["face"], shots["background"]
    for s in (200.0, 35.0):
        ll = validate_ll(ctx.run(X, F, B, s), X.shape[1] - F.shape[1] + 1, X.shape[2])
        _ll_close(ll, theory.log_probability(X, F, B, s),
                  f"ll for 6 camera shots (100 x 200, w = 73) at the true face and background, s = {s:g}",
                  X, F, B, s)


@ASSIGNMENT.check("calculate_log_probability", "hidden random inputs match the reference", 3, needs_reference=True)
def log_probability_hidden(ctx):
    for n, (H, W, w, K) in enumerate(HIDDEN_SIZES):
        X, (F, B, s, _) = theory.random_problem(ctx.rng, H, W, w, K, integer=n % 2 == 1)
        expected = ctx.reference("calculate_log_probability")(X, F, B, s)
        ll = validate_ll(ctx.run(X, F, B, s), W - w + 1, K)
        _ll_close(ll, expected, f"ll (H={H}, W={W}, w={w}, K={K})", X, F, B, s,
                  case(X=X, F=F, B=B, s=s) if X.size <= 200 else f"\nH={H}, W={W}, w={w}, K={K}")


# =============================================================================== calculate_lower_bound
def _diagnose_bound(got, log_joint_values, q, a) -> str:
    right = theory.bound_from_log_joint(log_joint_values, q)
    h = theory.entropy(q)
    q = np.asarray(q, dtype=float)
    log_a = np.broadcast_to(theory.log_of(a)[:, None], q.shape)
    prior = float(np.sum(q[q > 0] * log_a[q > 0]))
    candidates = {
        "the entropy term -sum q log q is missing": right - h,
        "the entropy term has the wrong sign (the bound SUBTRACTS E_q[log q])": right - 2 * h,
        "the log-prior term sum q log a is missing": right - prior,
        "the bound is averaged over the images instead of summed": right / q.shape[1],
    }
    for reason, value in candidates.items():
        if np.isclose(got, value, rtol=1e-9, atol=1e-9):
            return reason
    return ("L = sum_k sum_d q[d, k] (log p(X_k | d, F, B, s) + log a[d] - log q[d, k]), a sum over all positions "
            "and all images")


def _bound_with_table(ctx, table, a, make_q, what):
    """The student's bound for log-probabilities ``table`` (scripted, or the true ones of the inputs when
    the function computes them itself), prior ``a`` and ``q = make_q(table_used)``.

    Returns (bound, table_used, q_used).
    """
    used_q = {}

    def make_args(used):
        used_q["q"] = make_q(used)
        return (a, used_q["q"]), {}

    value, used = run_with_table(ctx, table, make_args)
    return bound_value(value, what), used, used_q["q"]


@ASSIGNMENT.check("calculate_lower_bound", "visible fixture", 2,
                  hints=("L = sum over images k and positions d of q[d, k] * (ll[d, k] + log a[d] - log q[d, k]), "
                         "with ll = calculate_log_probability(X, F, B, s).",
                         "Broadcast log(a) over the images: np.log(a)[:, None] has shape (W-w+1, 1)."))
def bound_visible(ctx):
    v = visible_inputs()
    got = bound_value(ctx.run(v["tX"], v["tF"], v["tB"], v["ts"], v["ta"], v["tq"]))
    expected = float(visible()["bound"])
    if not np.isclose(got, expected, rtol=BOUND_RTOL, atol=0):
        log_joint = theory.log_joint(v["tX"], v["tF"], v["tB"], v["ts"], v["ta"])
        raise Failed(f"the bound for the notebook's fixture is {got:.10g}, expected {expected:.10g}",
                     why=_diagnose_bound(got, log_joint, v["tq"], v["ta"]),
                     case=case(tX=v["tX"], tF=v["tF"], tB=v["tB"], ts=v["ts"], ta=v["ta"], tq=v["tq"]))


def _random_table(rng, n_positions, K, magnitude=1e5, spread=30.0):
    """Log-probabilities of realistic size: around -magnitude, differences of order ``spread``."""
    return -magnitude * rng.uniform(0.9, 1.1, K)[None, :] - spread * rng.random((n_positions, K))


@ASSIGNMENT.check("calculate_lower_bound", "equals the log-likelihood when q is the exact posterior", 2)
def bound_tight(ctx):
    for n_positions, K in ((2, 1), (4, 3), (7, 5)):
        table = _random_table(ctx.rng, n_positions, K, spread=3.0)
        a = ctx.rng.dirichlet(np.full(n_positions, 2.0))
        got, table, q = _bound_with_table(
            ctx, table, a, lambda t: theory.posterior_from_log_joint(t + np.log(a)[:, None]), "the bound")
        log_joint = table + np.log(a)[:, None]
        ll = float(logsumexp(log_joint, axis=0).sum())
        if not np.isclose(got, ll, rtol=BOUND_RTOL, atol=0):
            raise Failed(f"with q = the exact posterior the bound must equal the log-likelihood {ll:.10g} "
                         f"(sum_k log sum_d a[d] p(X_k | d)), but it is {got:.10g}",
                         why=_diagnose_bound(got, log_joint, q, a), case=case(ll=table, a=a, q=q))


@ASSIGNMENT.check("calculate_lower_bound", "never exceeds the log-likelihood", 1)
def bound_below(ctx):
    for n_positions, K in ((3, 2), (6, 4)):
        table = _random_table(ctx.rng, n_positions, K, magnitude=50.0, spread=2.0)
        a = ctx.rng.dirichlet(np.full(n_positions, 2.0))
        for blend in (0.05, 0.5, 1.0):
            noise = theory.random_posterior(ctx.rng, n_positions, K)

            def blended(t, blend=blend, noise=noise):
                return (1 - blend) * theory.posterior_from_log_joint(t + np.log(a)[:, None]) + blend * noise

            got, used, q = _bound_with_table(ctx, table, a, blended, "the bound")
            log_joint = used + np.log(a)[:, None]
            ll = float(logsumexp(log_joint, axis=0).sum())
            if got > ll + 1e-9 * abs(ll):
                raise Failed(f"for a q that is not the posterior the bound {got:.10g} exceeds the log-likelihood "
                             f"{ll:.10g}; a lower bound never does", why=_diagnose_bound(got, log_joint, q, a),
                             case=case(ll=used, a=a, q=q))


@ASSIGNMENT.check("calculate_lower_bound", "zero probabilities: 0 log 0 = 0, also where a = 0", 2,
                  hints=("np.log(0) is -inf and 0 * -inf is NaN: compute q * (...) only where q > 0.",))
def bound_zeros(ctx):
    n_positions, K = 5, 4
    table = _random_table(ctx.rng, n_positions, K, magnitude=2e3, spread=20.0)
    a = np.array([0.0, 0.3, 0.0, 0.5, 0.2])             # positions 0 and 2 impossible
    q = theory.random_posterior(ctx.rng, n_positions, K)
    q[[0, 2]] = 0.0
    q[:, 0] = [0, 1, 0, 0, 0]                           # a sure position: q log q = 1 log 1 + 0 log 0
    q /= q.sum(axis=0, keepdims=True)
    got, used, _ = _bound_with_table(ctx, table, a, lambda t: q, "the bound with zeros in q and in a")
    expected = theory.bound_from_log_joint(used + theory.log_of(a)[:, None], q)
    if not np.isclose(got, expected, rtol=BOUND_RTOL, atol=0):
        raise Failed(f"with zeros in q (and a = 0 wherever q = 0) the bound is {got:.10g}, expected {expected:.10g}",
                     why="terms with q = 0 contribute exactly 0, whatever log a or log q is there",
                     case=case(ll=used, a=a, q=q))


@ASSIGNMENT.check("calculate_lower_bound", "hidden random inputs match the reference", 2, needs_reference=True)
def bound_hidden(ctx):
    for n, (H, W, w, K) in enumerate(HIDDEN_SIZES):
        X, (F, B, s, a) = theory.random_problem(ctx.rng, H, W, w, K, integer=n % 2 == 1)
        q = theory.random_posterior(ctx.rng, W - w + 1, K, concentration=0.5, zero_rows=n % 3)
        if n % 3:
            a = np.where(q.sum(axis=1) > 0, a, 0.0)
            a /= a.sum()
        expected = ctx.reference("calculate_lower_bound")(X, F, B, s, a, q)
        got = bound_value(ctx.run(X, F, B, s, a, q))
        if not np.isclose(got, expected, rtol=BOUND_RTOL, atol=0):
            log_joint = ctx.reference("calculate_log_probability")(X, F, B, s) + theory.log_of(a)[:, None]
            raise Failed(f"the bound (H={H}, W={W}, w={w}, K={K}) is {got:.10g}, expected {expected:.10g}",
                         why=_diagnose_bound(got, log_joint, q, a),
                         case=case(X=X, F=F, B=B, s=s, a=a, q=q) if X.size <= 60 else "")


# =============================================================================== run_e_step
def _e_step_with_table(ctx, table, a, what):
    """q from the student's E-step for log-probabilities ``table`` (scripted, or the true ones of the
    inputs when the function computes them itself). Returns (q, table_used)."""
    value, used = run_with_table(ctx, table, lambda t: ((a,), {}))
    return validate_q(value, *np.shape(table), what), used


@ASSIGNMENT.check("run_e_step", "visible fixture", 2,
                  hints=("q[d, k] is proportional to a[d] * p(X_k | d): add log a[d] to ll[d, k], exponentiate, "
                         "normalise each column.",
                         "Before exponentiating subtract each column's maximum: "
                         "ll - ll.max(axis=0, keepdims=True)."))
def e_step_visible(ctx):
    v = visible_inputs()
    q = validate_q(ctx.run(v["tX"], v["tF"], v["tB"], v["ts"], v["ta"]), 3, 2)
    expect.close(q, visible()["q"], "q for the notebook's fixture (tX, tF, tB, ts, ta)", rtol=Q_RTOL, atol=Q_ATOL,
                 case=case(tX=v["tX"], tF=v["tF"], tB=v["tB"], ts=v["ts"], ta=v["ta"]),
                 why="q[d, k] = a[d] p(X_k | d) / sum_d' a[d'] p(X_k | d')")


@ASSIGNMENT.check("run_e_step", "columns are probability distributions", 1)
def e_step_columns(ctx):
    for H, W, w, K in SMALL_SIZES[:3]:
        X, (F, B, s, a) = theory.random_problem(ctx.rng, H, W, w, K)
        try:
            validate_q(ctx.run(X, F, B, s, a), W - w + 1, K)
        except Failed as failure:
            failure.case = failure.case or case(X=X, F=F, B=B, s=s, a=a)
            raise


@ASSIGNMENT.check("run_e_step", "equals the exact posterior of the positions", 2)
def e_step_posterior(ctx):
    for n_positions, K in ((1, 2), (3, 2), (6, 5)):
        table = ctx.rng.normal(-20.0, 3.0, (n_positions, K))
        a = ctx.rng.dirichlet(np.full(n_positions, 2.0))
        q, table = _e_step_with_table(ctx, table, a, "q returned by run_e_step")
        expected = theory.posterior_from_log_joint(table + np.log(a)[:, None])
        why = "q[d, k] = a[d] exp(ll[d, k]) / sum_d' a[d'] exp(ll[d', k])"
        if np.allclose(q, theory.posterior_from_log_joint(table), rtol=1e-6, atol=1e-12) and n_positions > 1:
            why = "the prior a is missing: add log a[d] to ll[d, k] before normalising"
        expect.close(q, expected, "q for the log-probabilities ll (calculate_log_probability's result) and prior a",
                     rtol=Q_RTOL, atol=Q_ATOL, why=why, case=case(ll=table, a=a))


@ASSIGNMENT.check("run_e_step", "unchanged when an image's log-probabilities all shift by a constant", 2,
                  hints=("exp(-1e5) is 0 in floating point: subtract the largest log-probability of each image "
                         "(each column) before exponentiating; it cancels in the normalisation.",))
def e_step_shift(ctx):
    n_positions, K = 6, 5
    table = ctx.rng.normal(0.0, 4.0, (n_positions, K))
    a = ctx.rng.dirichlet(np.full(n_positions, 2.0))
    a[2] = 0.0                                                   # an impossible position
    a /= a.sum()
    shifts = np.array([-1.3e5, -2.9e5, -8e4, 2e5, -1.2e5])      # one constant per image
    for label, values in (("moderate log-probabilities", table),
                          ("the same log-probabilities shifted by " + ", ".join(f"{c:g}" for c in shifts)
                           + " (one constant per image)", table + shifts[None, :])):
        q, used = _e_step_with_table(ctx, values, a, f"q for {label}")
        # (a function that computes the log-probabilities itself is judged on the true ones of its
        # inputs; the realistic-shots check exercises magnitudes of 1e5 for it)
        expected = theory.posterior_from_log_joint(used + theory.log_of(a)[:, None])
        expect.close(q, expected, f"q for {label}", rtol=Q_RTOL, atol=Q_ATOL, case=case(ll=values, a=a),
                     why="adding a constant to every log-probability of one image leaves its posterior unchanged; "
                         + NONFINITE_Q + " (a single maximum over the whole table is not enough when images differ "
                         "by 1e5)")
    if np.any(q[2] != 0):
        raise Failed("a position with prior a[d] = 0 gets a positive posterior", why="q[d, k] is proportional to a[d]")


@ASSIGNMENT.check("run_e_step", "realistic shots: log-probabilities near -1e5", 1)
def e_step_realistic(ctx):
    shots = realistic(K=8)
    X, F, B = shots["X"], shots["face"], shots["background"]
    a = shots["prior"]
    s = 120.0
    q = validate_q(ctx.run(X, F, B, s, a), len(a), X.shape[2],
                   "q for 8 camera shots (100 x 200, w = 73) at the true face and background")
    expect.close(q, theory.posterior(X, F, B, s, a), "q for 8 camera shots at the true face and background",
                 rtol=1e-6, atol=1e-10, why=NONFINITE_Q)


@ASSIGNMENT.check("run_e_step", "hidden random inputs match the reference", 2, needs_reference=True)
def e_step_hidden(ctx):
    for n, (H, W, w, K) in enumerate(HIDDEN_SIZES):
        X, (F, B, s, a) = theory.random_problem(ctx.rng, H, W, w, K, integer=n % 2 == 0)
        if n % 2 and W - w + 1 > 1:
            a[0] = 0.0
            a /= a.sum()
        expected = ctx.reference("run_e_step")(X, F, B, s, a)
        q = validate_q(ctx.run(X, F, B, s, a), W - w + 1, K)
        expect.close(q, expected, f"q (H={H}, W={W}, w={w}, K={K})", rtol=Q_RTOL, atol=Q_ATOL,
                     case=case(X=X, F=F, B=B, s=s, a=a) if X.size <= 60 else "")


# =============================================================================== run_m_step
@ASSIGNMENT.check("run_m_step", "visible fixture", 2,
                  hints=("Update in the order a, F, B, s; s uses the new F and B.",
                         "sum_k q[d, k] X[:, :, k] for every d at once is one matrix product: "
                         "X.reshape(H * W, K) @ q.T."))
def m_step_visible(ctx):
    v, e = visible_inputs(), visible()
    tX, tq, tw = v["tX"], v["tq"], v["tw"]
    got = validate_m_step(ctx.run(tX, tq, tw), *tX.shape[:2], tw)
    compare_m_step(got, (e["F"], e["B"], e["s"], e["a"]), tq, tX.shape[1], tw, case(tX=tX, tq=tq, tw=tw))


@ASSIGNMENT.check("run_m_step", "maximises the bound for a fixed q", 3)
def m_step_maximises(ctx):
    check_maximises(ctx)


def check_maximises(ctx, hard: bool = False, **flag):
    """No small move of F, B, s or a (in both directions along random directions) raises the bound."""
    rng = ctx.rng
    for H, W, w, K in ((2, 6, 2, 8), (3, 10, 4, 15)):
        X, _ = theory.random_problem(rng, H, W, w, K)
        if hard:
            q = theory.one_hot(rng.integers(0, W - w + 1, K), W - w + 1)
        else:
            q = theory.random_posterior(rng, W - w + 1, K, concentration=0.5)
        F, B, s, a = validate_m_step(ctx.run(X, q, w, **flag), H, W, w)
        B = np.where(np.isfinite(B), B, 0.0)
        best = theory.bound(X, F, B, s, a, q)
        text = case(X=X, q=q, w=w)
        moves = {"F": lambda e, v: (F + e * v[0], B, s, a),
                 "B": lambda e, v: (F, B + e * v[1], s, a),
                 "s": lambda e, v: (F, B, s * np.exp(e / 100), a),
                 "a": lambda e, v: (F, B, s, a * np.exp(e / 100 * v[2]) / np.sum(a * np.exp(e / 100 * v[2])))}
        for name, move in moves.items():
            for _ in range(2):
                v = (rng.standard_normal(F.shape), rng.standard_normal(B.shape), rng.standard_normal(a.shape))
                for size in (0.01, 0.1, 1.0, 10.0):
                    for sign in (1.0, -1.0):
                        value = theory.bound(X, *move(sign * size, v), q)
                        if value > best + 1e-10 * abs(best):
                            raise Failed(
                                f"changing {name} slightly raises the bound ({value:.10g} > {best:.10g}) with q "
                                f"fixed: your run_m_step does not maximise it", case=text,
                                why=f"re-derive the update of {name}: set the derivative of the bound with "
                                    f"respect to {name} to zero" + (" (with the NEW F and B)" if name == "s" else "")
                                    + (" (under the constraint sum(a) = 1)" if name == "a" else ""))


@ASSIGNMENT.check("run_m_step", "noise-free shots at known positions: F and B come back exactly, s = 0", 2)
def m_step_exact_fit(ctx):
    rng = ctx.rng
    H, W, w = 3, 8, 3
    face = rng.integers(0, 256, (H, w))
    background = rng.integers(0, 256, (H, W))
    positions = np.array([0, 5, 2, 3, 1, 4, 2])                  # every column is background somewhere
    X = np.stack([theory.model_image(face, background, d) for d in positions], axis=2).astype(np.int64)
    q = theory.one_hot(positions, W - w + 1)
    F, B, s, a = validate_m_step(ctx.run(X, q, w), H, W, w, exact_fit=True)
    text = case(X=X, q=q, w=w)
    expect.close(F, face, "F for noise-free shots at known positions (it must be the face)", rtol=1e-9, atol=1e-9,
                 case=text, why="with q one-hot, F is the average of the windows X[:, d_k:d_k + w, k]")
    expect.close(B, background, "B for noise-free shots at known positions (it must be the background)",
                 rtol=1e-9, atol=1e-9, case=text,
                 why="B[:, j] averages only the images in which column j is NOT under the face")
    if not s < 1e-4:
        raise Failed(f"s is {s:.6g} for shots that the returned F and B explain exactly; expected 0 "
                     "(up to rounding)", case=text,
                     why="s^2 is the mean squared residual of the model with the NEW F and B: here every residual is 0")
    expect.close(a, np.bincount(positions, minlength=W - w + 1) / len(positions), "a for known positions",
                 rtol=1e-12, atol=1e-15, case=text)


@ASSIGNMENT.check("run_m_step", "a background column hidden in every image stays finite", 1)
def m_step_hidden_column(ctx):
    rng = ctx.rng
    H, W, w, K = 2, 9, 5, 6
    X, _ = theory.random_problem(rng, H, W, w, K)
    q = np.zeros((W - w + 1, K))                                  # every face at position 2 or 3:
    q[2] = rng.uniform(0.2, 0.8, K)                                # columns 3..6 never show the background
    q[3] = 1 - q[2]
    F, B, s, a = validate_m_step(ctx.run(X, q, w), H, W, w)
    seen = theory.background_weight(q, W, w) > 0
    expect.close(B[:, seen], theory.background_average(X, q, w)[:, seen], "B where some image shows the background",
                 rtol=1e-8, atol=1e-8, case=case(X=X, q=q, w=w))



@ASSIGNMENT.check("run_m_step", "hidden random inputs match the reference", 2, needs_reference=True)
def m_step_hidden(ctx):
    for n, (H, W, w, K) in enumerate(HIDDEN_SIZES):
        X, _ = theory.random_problem(ctx.rng, H, W, w, K, integer=n % 2 == 0)
        q = theory.random_posterior(ctx.rng, W - w + 1, K, concentration=0.5, zero_rows=n % 2)
        expected = ctx.reference("run_m_step")(X, q, w)
        got = validate_m_step(ctx.run(X, q, w), H, W, w)
        compare_m_step(got, expected, q, W, w, case(X=X, q=q, w=w) if X.size <= 60 else "")


@ASSIGNMENT.check("run_m_step", "realistic shots and posterior match the reference", 2, needs_reference=True)
def m_step_realistic(ctx):
    shots = realistic(K=40)
    X, w = shots["X"], shots["w"]
    q = ctx.reference("run_e_step")(X, shots["face"], shots["background"], 150.0, shots["prior"])
    expected = ctx.reference("run_m_step")(X, q, w)
    got = validate_m_step(ctx.run(X, q, w), *X.shape[:2], w)
    compare_m_step(got, expected, q, X.shape[1], w,
                   "\n40 camera shots (100 x 200, w = 73) and their posterior at the true face (mostly 0 and 1)")
