"""Checks of calculate_log_probability, calculate_lower_bound, run_e_step and run_m_step.

The check functions are also registered by the ``hard_em`` assignment (same functions, plus a
flag), so each one only uses ``ctx`` and the shared modules.

Two kinds of check. Value checks compare with stored values, the definitions (``theory``) or the
reference, and explain a mismatch only by a mistake the returned value shows (``diagnosis``).
Property checks test one property any correct implementation has (invariance to a shift, the
bound below the log-likelihood, ...) and nothing else, so their message and hints are about that
property; each also requires the answer to depend on its inputs, so that no placeholder (a
constant, zeros, a uniform q) can earn their points.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ...engine import Failed, StudentCodeFailed, expect
from . import ASSIGNMENT, diagnosis, theory
from .fixtures import HIDDEN_SIZES, realistic, visible, visible_inputs
from .judging import (BOUND_RTOL, LL_RTOL, Q_ATOL, Q_RTOL, bound_value, case, check_maximises, compare_m_step,
                      compare_q, run_visible, run_with_table, validate_ll, validate_m_step, validate_q)

# Property checks run on the student's machine with the student's own functions: small sizes only.
SMALL_SIZES = [(1, 4, 1, 2), (2, 6, 3, 4), (3, 9, 9, 3), (4, 11, 4, 7)]


def ll_close(got, expected, what, X, F, B, s, case_text=""):
    scale = float(np.abs(expected).max())
    try:
        expect.close(got, expected, what, rtol=LL_RTOL, atol=1e-12 * scale, case=case_text)
    except Failed as failure:
        failure.why = diagnosis.diagnose_ll(got, X, F, B, s)
        raise


def student_ll(ctx, X, F, B, s, what, run=None):
    right = theory.log_probability(X, F, B, s)
    return validate_ll((run or ctx.run)(X, F, B, s), *right.shape, what=what, right=right), right


# =============================================================================== calculate_log_probability
@ASSIGNMENT.check("calculate_log_probability", "visible fixture", 2,
                  hints=("Build the H x W model image for position d (B with F pasted over columns d .. d+w-1) and "
                         "add log N(X[i, j, k] | model[i, j], s^2) over all pixels.",
                         "log N(x | m, s^2) = -log(s) - log(2 pi) / 2 - (x - m)^2 / (2 s^2); the constant appears "
                         "once per pixel, H * W times per image."))
def log_probability_visible(ctx):
    v = visible_inputs()
    ll, _ = student_ll(ctx, v["tX"], v["tF"], v["tB"], v["ts"], "ll returned by calculate_log_probability",
                       run=lambda *args: run_visible(ctx, *args))
    ll_close(ll, visible()["ll"], "ll for the notebook's fixture (tX, tF, tB, ts)", v["tX"], v["tF"], v["tB"],
             v["ts"], case(tX=v["tX"], tF=v["tF"], tB=v["tB"], ts=v["ts"]))


@ASSIGNMENT.check("calculate_log_probability", "matches the Gaussian log-density pixel by pixel", 3,
                  hints=("Compare one entry with a direct computation: build model_d for one d and sum "
                         "log N(X[i, j, k] | model_d[i, j], s^2) over the pixels of image k.",))
def log_probability_definition(ctx):
    for n, (H, W, w, K) in enumerate(SMALL_SIZES):
        X, (F, B, s, _) = theory.random_problem(ctx.rng, H, W, w, K, integer=n % 2 == 0)
        text = case(X=X, F=F, B=B, s=s)
        ll, right = student_ll(ctx, X, F, B, s, "ll returned by calculate_log_probability")
        ll_close(ll, right, f"ll (H={H}, W={W}, w={w}, K={K})", X, F, B, s, text)


@ASSIGNMENT.check("calculate_log_probability", "realistic shots: 100 x 200 pixels, log-probabilities near -1e5", 2,
                  hints=("Stay in logs and in float64: a shot's likelihood is exp(-1e5), which is 0 in floating "
                         "point, and float32 keeps only 7 digits of a number near -1e5.",))
def log_probability_realistic(ctx):
    shots = realistic(K=8)      # (the generated shots are cached; another check uses the same eight)
    X, F, B = np.ascontiguousarray(shots["X"][:, :, :REALISTIC_K]), shots["face"], shots["background"]
    speed = _probe(ctx, X, F, B)
    for s in REALISTIC_S:
        what = f"ll for {REALISTIC_K} camera shots (100 x 200, w = 73) at the true face and background, s = {s:g}"
        try:
            ll, right = student_ll(ctx, X, F, B, s, what)
        except StudentCodeFailed:
            if ctx.last is None or ctx.last.status != "timeout":
                raise
            raise _too_slow(X, F, speed, f"did not return within {ctx.check.timeout:g} s") from None
        ll_close(ll, right, what, X, F, B, s)


# Two full-size shots at all 128 positions: 256 log-probabilities near -1e5, where exp() underflows and
# float32 keeps 7 digits (more shots add nothing to that, only time), at a large and a small s.
REALISTIC_K, REALISTIC_S = 2, (200.0, 35.0)
# Before the full calls, two probes of one shot: at 2 and at 33 positions (100 x 74 and 100 x 105
# pixels, ll near -5e4, their values checked too). Their difference is the time the work itself
# takes, without the cost of a call (a fresh process per call in the sandbox: tens of milliseconds
# whatever the size). Vectorised code spends a few nanoseconds per pixel term (pixel x position x
# image), a loop over positions and images too; a Python loop over the pixels half a microsecond or
# more on any machine, so that one E-step on the notebook's 1000 shots takes most of an hour. From
# PIXEL_LOOP_SECONDS per term on (or when the full calls would take longer than the check waits) the
# check stops with a "too slow" verdict, decided on the fastest of two rounds of probes (one slow
# moment of a busy machine decides nothing; the probes' difference is 330 000 terms, so 10 ms of
# noise is 30 ns a term).
PROBE_POSITIONS = (2, 33)
PROBE_ROUNDS = 2
PIXEL_LOOP_SECONDS = 2e-7
NOTEBOOK_TERMS = 128 * 1000 * 100 * 200     # one E-step of the notebook: 1000 shots at 128 positions


def _work(X, F) -> int:
    """Pixel terms added up by one call: positions x images x pixels per image."""
    H, W, K = X.shape
    return (W - F.shape[1] + 1) * K * H * W


def _probe(ctx, X, F, B) -> float:
    """Seconds per pixel term of the student's function, measured on two probes (whose values are
    checked); stops the check (Failed) when it is too slow for shots like ``X``."""
    w = F.shape[1]
    probes = [(X[:, :w + n - 1, :1], B[:, :w + n - 1]) for n in PROBE_POSITIONS]
    work = [_work(x, F) for x, _ in probes]
    best = [np.inf, np.inf]
    for round_ in range(PROBE_ROUNDS):
        for i, (x, b) in enumerate(probes):
            if round_ == 0:
                what = (f"ll for one camera shot (100 x {x.shape[1]}, w = {w}, {PROBE_POSITIONS[i]} positions) "
                        "at the true face and background, s = 200")
                ll, right = student_ll(ctx, x, F, b, 200.0, what)
                ll_close(ll, right, what, x, F, b, 200.0)
            else:
                ctx.run(x, F, b, 200.0)
            best[i] = min(best[i], ctx.last.seconds)
        speed = max(best[1] - best[0], 0.0) / (work[1] - work[0])
        estimate = len(REALISTIC_S) * (best[0] + speed * (_work(X, F) - work[0]))
        if speed < PIXEL_LOOP_SECONDS and estimate <= ctx.check.timeout:
            return speed
    verdict = f"would take about {estimate:.0f} s"
    if estimate > ctx.check.timeout:
        verdict += f", more than the {ctx.check.timeout:g} s this check waits"
    raise _too_slow(X, F, speed, verdict)


def _too_slow(X, F, speed: float, verdict: str) -> Failed:
    """The verdict on a function too slow for realistic shots, explained only by its measured speed."""
    H, W, K = X.shape
    w = F.shape[1]
    message = (f"calculate_log_probability is too slow for camera shots of the notebook's size: on {K} shots "
               f"({H} x {W}, w = {w}, {W - w + 1} positions) it {verdict}; measured on one shot, it spends "
               f"{speed * 1e6:.2g} microseconds per pixel, position and image, so one E-step on the notebook's "
               f"1000 shots would take about {speed * NOTEBOOK_TERMS / 60:.0f} minutes")
    why = diagnosis.explain("ll_pixel_loop") if speed >= PIXEL_LOOP_SECONDS else (
        "compute with whole-array numpy operations: a Python loop over the positions and the images is fine, "
        "one over rows or pixels is not")
    return Failed(message, why=why)


@ASSIGNMENT.check("calculate_log_probability", "hidden random inputs match the reference", 3, needs_reference=True)
def log_probability_hidden(ctx):
    for n, (H, W, w, K) in enumerate(HIDDEN_SIZES):
        X, (F, B, s, _) = theory.random_problem(ctx.rng, H, W, w, K, integer=n % 2 == 1)
        expected = ctx.reference("calculate_log_probability")(X, F, B, s)
        ll = validate_ll(ctx.run(X, F, B, s), W - w + 1, K, right=expected)
        ll_close(ll, expected, f"ll (H={H}, W={W}, w={w}, K={K})", X, F, B, s,
                 case(X=X, F=F, B=B, s=s) if X.size <= 200 else f"\nH={H}, W={W}, w={w}, K={K}")


# =============================================================================== calculate_lower_bound
def bound_with_table(ctx, table, a, make_q, what, **flag):
    """The student's bound for log-probabilities ``table`` (scripted, or the true ones of the inputs when
    the function computes them itself), prior ``a`` and ``q = make_q(table_used)``.

    Returns (bound, table_used, q_used); ``table_used is table`` when the scripted table was used.
    """
    used_q = {}

    def make_args(used):
        used_q["q"] = make_q(used)
        return (a, used_q["q"]), dict(flag)

    table = np.asarray(table, dtype=float)
    value, used = run_with_table(ctx, table, make_args)
    return bound_value(value, what, q=used_q["q"]), used, used_q["q"]


@ASSIGNMENT.check("calculate_lower_bound", "visible fixture", 2,
                  hints=("L = sum over images k and positions d of q[d, k] * (ll[d, k] + log a[d] - log q[d, k]), "
                         "with ll = calculate_log_probability(X, F, B, s).",
                         "Broadcast log(a) over the images: np.log(a)[:, None] has shape (W-w+1, 1)."))
def bound_visible(ctx):
    v = visible_inputs()
    got = bound_value(run_visible(ctx, v["tX"], v["tF"], v["tB"], v["ts"], v["ta"], v["tq"]), q=v["tq"])
    expected = float(visible()["bound"])
    if not np.isclose(got, expected, rtol=BOUND_RTOL, atol=0):
        log_joint = theory.log_joint(v["tX"], v["tF"], v["tB"], v["ts"], v["ta"])
        raise Failed(f"the bound for the notebook's fixture is {got:.10g}, expected {expected:.10g}",
                     why=diagnosis.diagnose_bound(got, log_joint, v["tq"], v["ta"]),
                     case=case(tX=v["tX"], tF=v["tF"], tB=v["tB"], ts=v["ts"], ta=v["ta"], tq=v["tq"]))


def random_table(rng, n_positions, K, magnitude=1e5, spread=30.0):
    """Log-probabilities of realistic size: around -magnitude, differences of order ``spread``."""
    return -magnitude * rng.uniform(0.9, 1.1, K)[None, :] - spread * rng.random((n_positions, K))


@ASSIGNMENT.check("calculate_lower_bound", "equals the log-likelihood when q is the exact posterior", 2,
                  hints=("For the exact posterior the bound is tight: L = sum_k log sum_d a[d] p(X_k | d). The "
                         "entropy term -sum q log q is what closes the gap.",))
def bound_tight(ctx):
    for n_positions, K in ((2, 1), (4, 3), (7, 5)):
        table = random_table(ctx.rng, n_positions, K, spread=3.0)
        a = ctx.rng.dirichlet(np.full(n_positions, 2.0))
        got, table, q = bound_with_table(
            ctx, table, a, lambda t: theory.posterior_from_log_joint(t + np.log(a)[:, None]), "the bound")
        log_joint = table + np.log(a)[:, None]
        ll = float(logsumexp(log_joint, axis=0).sum())
        if not np.isclose(got, ll, rtol=BOUND_RTOL, atol=0):
            raise Failed(f"with q = the exact posterior the bound must equal the log-likelihood {ll:.10g} "
                         f"(sum_k log sum_d a[d] p(X_k | d)), but it is {got:.10g}",
                         why=diagnosis.diagnose_bound(got, log_joint, q, a), case=case(ll=table, a=a, q=q))


@ASSIGNMENT.check("calculate_lower_bound", "never exceeds the log-likelihood", 1,
                  hints=("For any q, L <= log p(X): if yours is above, a term enters with the wrong sign (the "
                         "entropy -sum q log q is >= 0 and must not be counted twice).",))
def bound_below(ctx):
    """Property: L <= the log-likelihood for every q (and L >= sum_k min_d of the log joint, which no
    constant stays between for inputs of different sizes); L must change with q."""
    values = []
    for n_positions, K in ((3, 2), (6, 4)):
        table = random_table(ctx.rng, n_positions, K, magnitude=50.0, spread=2.0)
        a = ctx.rng.dirichlet(np.full(n_positions, 2.0))
        for blend in (0.05, 0.5, 1.0):
            noise = theory.random_posterior(ctx.rng, n_positions, K)

            def blended(t, blend=blend, noise=noise):
                return (1 - blend) * theory.posterior_from_log_joint(t + np.log(a)[:, None]) + blend * noise

            got, used, q = bound_with_table(ctx, table, a, blended, "the bound")
            values.append(got)
            log_joint = used + np.log(a)[:, None]
            ll = float(logsumexp(log_joint, axis=0).sum())
            lowest = float(log_joint.min(axis=0).sum())
            if got > ll + 1e-9 * abs(ll):
                raise Failed(f"for a q that is not the posterior the bound {got:.10g} exceeds the log-likelihood "
                             f"{ll:.10g}; a lower bound never does",
                             why=diagnosis.diagnose_bound(got, log_joint, q, a), case=case(ll=used, a=a, q=q))
            if got < lowest - 1e-9 * abs(lowest):
                raise Failed(f"the bound {got:.10g} is below sum_k min_d (ll[d, k] + log a[d]) = {lowest:.10g}, "
                             "the least an average over q of the log joint can be (the entropy only adds)",
                             why=diagnosis.diagnose_bound(got, log_joint, q, a), case=case(ll=used, a=a, q=q))
    if len(set(values)) < len(values):
        raise Failed("calculate_lower_bound returned the same bound for different q and log-probabilities",
                     why="the bound depends on q and on the log-probabilities: compute it from them")


@ASSIGNMENT.check("calculate_lower_bound", "zero probabilities: 0 log 0 = 0, also where a = 0", 2,
                  hints=("Terms with q = 0 count as 0 in the bound: compute q * (...) only where q > 0, or use "
                         "scipy.special.xlogy.",))
def bound_zeros(ctx):
    """Property: positions with q = 0 (and a = 0) contribute nothing. The student's bound with them is
    compared with the student's own bound without them: impossible positions (a = 0, q = 0) removed, and
    the other zeros of q replaced by 1e-200 (whose terms are below rounding)."""
    n_positions, K = 5, 4
    table = random_table(ctx.rng, n_positions, K, magnitude=2e3, spread=20.0)
    a = np.array([0.0, 0.3, 0.0, 0.5, 0.2])             # positions 0 and 2 impossible
    q = theory.random_posterior(ctx.rng, n_positions, K)
    q[[0, 2]] = 0.0
    q[:, 0] = [0, 1, 0, 0, 0]                           # a sure position: q log q = 1 log 1 + 0 log 0
    q /= q.sum(axis=0, keepdims=True)
    got, used, _ = bound_with_table(ctx, table, a, lambda t: q, "the bound with zeros in q and in a")
    if used is not table:         # it computes its own log-probabilities: judged on their value
        expected = theory.bound_from_log_joint(used + theory.log_of(a)[:, None], q)
        if not np.isclose(got, expected, rtol=BOUND_RTOL, atol=0):
            raise Failed(f"with zeros in q (and a = 0 wherever q = 0) the bound is {got:.10g}, expected "
                         f"{expected:.10g}", case=case(ll=used, a=a, q=q),
                         why=diagnosis.diagnose_bound(got, used + theory.log_of(a)[:, None], q, a))
        return
    keep = a > 0
    tiny = np.where(q[keep] > 0, q[keep], 1e-200)
    tiny /= tiny.sum(axis=0, keepdims=True)
    without, used_without, _ = bound_with_table(ctx, used[keep], a[keep], lambda t: tiny,
                                                "the bound without the zeros")
    if not np.isclose(got, without, rtol=BOUND_RTOL, atol=0):
        raise Failed(f"zeros in q change your bound: with them it is {got:.10g}; with the impossible positions "
                     f"(a = 0) removed and the other zeros of q replaced by 1e-200 it is {without:.10g}",
                     why="terms with q = 0 contribute exactly 0, whatever log a or log q is there: compute them only "
                         "where q > 0", case=case(ll=used, a=a, q=q))
    other, _, _ = bound_with_table(ctx, used, a, lambda t: theory.posterior_from_log_joint(
        t + theory.log_of(a)[:, None]), "the bound")
    if other == got:
        raise Failed("calculate_lower_bound returned the same bound for two different q",
                     why="the bound depends on q: compute it from q")


@ASSIGNMENT.check("calculate_lower_bound", "hidden random inputs match the reference", 2, needs_reference=True)
def bound_hidden(ctx):
    for n, (H, W, w, K) in enumerate(HIDDEN_SIZES):
        X, (F, B, s, a) = theory.random_problem(ctx.rng, H, W, w, K, integer=n % 2 == 1)
        q = theory.random_posterior(ctx.rng, W - w + 1, K, concentration=0.5, zero_rows=n % 3)
        if n % 3:
            a = np.where(q.sum(axis=1) > 0, a, 0.0)
            a /= a.sum()
        expected = ctx.reference("calculate_lower_bound")(X, F, B, s, a, q)
        got = bound_value(ctx.run(X, F, B, s, a, q), q=q)
        if not np.isclose(got, expected, rtol=BOUND_RTOL, atol=0):
            log_joint = ctx.reference("calculate_log_probability")(X, F, B, s) + theory.log_of(a)[:, None]
            raise Failed(f"the bound (H={H}, W={W}, w={w}, K={K}) is {got:.10g}, expected {expected:.10g}",
                         why=diagnosis.diagnose_bound(got, log_joint, q, a),
                         case=case(X=X, F=F, B=B, s=s, a=a, q=q) if X.size <= 60 else "")


# =============================================================================== run_e_step
def e_step_with_table(ctx, table, a, what, **flag):
    """q from the student's E-step for log-probabilities ``table`` (scripted, or the true ones of the
    inputs when the function computes them itself). Returns (q, table_used)."""
    table = np.asarray(table, dtype=float)
    value, used = run_with_table(ctx, table, lambda t: ((a,), dict(flag)))
    return validate_q(value, *np.shape(table), what, ll=used, a=a), used


@ASSIGNMENT.check("run_e_step", "visible fixture", 2,
                  hints=("q[d, k] is proportional to a[d] * p(X_k | d): add log a[d] to ll[d, k], exponentiate, "
                         "normalise each column (a sum over the positions, axis=0).",))
def e_step_visible(ctx):
    v = visible_inputs()
    ll = theory.log_probability(v["tX"], v["tF"], v["tB"], v["ts"])
    q = validate_q(run_visible(ctx, v["tX"], v["tF"], v["tB"], v["ts"], v["ta"]), 3, 2, ll=ll, a=v["ta"])
    compare_q(q, visible()["q"], "q for the notebook's fixture (tX, tF, tB, ts, ta)", ll, v["ta"],
              case(tX=v["tX"], tF=v["tF"], tB=v["tB"], ts=v["ts"], ta=v["ta"]))


@ASSIGNMENT.check("run_e_step", "columns are probability distributions", 1,
                  hints=("Every column q[:, k] is a distribution over the positions: entries in [0, 1] that sum to 1 "
                         "over axis 0.",))
def e_step_columns(ctx):
    """Property: every column is a distribution over the positions, and q depends on the images."""
    seen = []
    for H, W, w, K in SMALL_SIZES[:3]:
        X, (F, B, s, a) = theory.random_problem(ctx.rng, H, W, w, K)
        try:
            q = validate_q(ctx.run(X, F, B, s, a), W - w + 1, K, ll=theory.log_probability(X, F, B, s), a=a)
        except Failed as failure:
            failure.case = failure.case or case(X=X, F=F, B=B, s=s, a=a)
            raise
        seen.append(q)
        again = validate_q(ctx.run(X[:, :, ::-1], F, B, s, a), W - w + 1, K,
                           ll=theory.log_probability(X[:, :, ::-1], F, B, s), a=a)
        if K > 1 and np.allclose(again, q) and not np.allclose(theory.posterior(X, F, B, s, a),
                                                               theory.posterior(X[:, :, ::-1], F, B, s, a)):
            raise Failed("q does not change when the images do (the same q for the images in reverse order)",
                         why="q[:, k] is the posterior of image k: compute it from ll = calculate_log_probability(...)")


@ASSIGNMENT.check("run_e_step", "equals the exact posterior of the positions", 2)
def e_step_posterior(ctx):
    for n_positions, K in ((1, 2), (3, 2), (6, 5)):
        table = ctx.rng.normal(-20.0, 3.0, (n_positions, K))
        a = ctx.rng.dirichlet(np.full(n_positions, 2.0))
        if n_positions == 6:
            a[2] = 0.0                                  # an impossible position: q = 0 there
            a /= a.sum()
        q, table = e_step_with_table(ctx, table, a, "q returned by run_e_step")
        expected = theory.posterior_from_log_joint(table + theory.log_of(a)[:, None])
        compare_q(q, expected, "q for the log-probabilities ll (calculate_log_probability's result) and prior a",
                  table, a, case(ll=table, a=a))


@ASSIGNMENT.check("run_e_step", "unchanged when an image's log-probabilities all shift by a constant", 2,
                  hints=("exp(-1e5) is 0 in floating point: subtract the largest log-probability of each image "
                         "(each column) before exponentiating; it cancels in the normalisation.",))
def e_step_shift(ctx):
    """Property: q is unchanged when every log-probability of an image shifts by a constant (one per
    image, as large as real ones: 1e5), whatever q itself is; and q depends on the log-probabilities."""
    n_positions, K = 6, 5
    table = ctx.rng.normal(0.0, 4.0, (n_positions, K))
    a = ctx.rng.dirichlet(np.full(n_positions, 2.0))
    shifts = np.array([-1.3e5, -2.9e5, -8e4, 2e5, -1.2e5])      # one constant per image
    q, used = e_step_with_table(ctx, table, a, "q for moderate log-probabilities")
    if used is not table:         # it computes its own log-probabilities: judged on their value (the
        compare_q(q, theory.posterior_from_log_joint(used + np.log(a)[:, None]),   # realistic check has 1e5)
                  "q for its own log-probabilities", used, a, case(ll=used, a=a))
        return
    label = "the same log-probabilities shifted by " + ", ".join(f"{c:g}" for c in shifts) + " (one constant per image)"
    shifted, _ = e_step_with_table(ctx, used + shifts[None, :], a, f"q for {label}")
    expect.close(shifted, q, f"q for {label}", rtol=Q_RTOL, atol=Q_ATOL, case=case(ll=used, a=a),
                 why="adding a constant to every log-probability of one image leaves its posterior unchanged, but "
                     "yours changes: subtract each column's own maximum before exponentiating")
    other, _ = e_step_with_table(ctx, used[::-1], a, "q for the log-probabilities in reverse order of positions")
    if np.allclose(other, q):
        raise Failed("run_e_step returned the same q for different log-probabilities",
                     why="q is computed from ll = calculate_log_probability(X, F, B, s) and the prior a")


@ASSIGNMENT.check("run_e_step", "realistic shots: log-probabilities near -1e5", 1,
                  hints=("On real shots every log-probability is near -1e5: exponentiate only after subtracting each "
                         "column's maximum.",))
def e_step_realistic(ctx):
    shots = realistic(K=8)
    X, F, B = shots["X"], shots["face"], shots["background"]
    a = shots["prior"]
    s = 120.0
    ll = theory.log_probability(X, F, B, s)
    q = validate_q(ctx.run(X, F, B, s, a), len(a), X.shape[2],
                   "q for 8 camera shots (100 x 200, w = 73) at the true face and background", ll=ll, a=a)
    expected = theory.posterior(X, F, B, s, a)
    why = diagnosis.diagnose_q(q, ll, a) or "q[d, k] = a[d] exp(ll[d, k]) / sum_d' a[d'] exp(ll[d', k])"
    expect.close(q, expected, "q for 8 camera shots at the true face and background", rtol=1e-6, atol=1e-10, why=why)


@ASSIGNMENT.check("run_e_step", "hidden random inputs match the reference", 2, needs_reference=True)
def e_step_hidden(ctx):
    for n, (H, W, w, K) in enumerate(HIDDEN_SIZES):
        X, (F, B, s, a) = theory.random_problem(ctx.rng, H, W, w, K, integer=n % 2 == 0)
        if n % 2 and W - w + 1 > 1:
            a[0] = 0.0
            a /= a.sum()
        expected = ctx.reference("run_e_step")(X, F, B, s, a)
        ll = theory.log_probability(X, F, B, s)
        q = validate_q(ctx.run(X, F, B, s, a), W - w + 1, K, ll=ll, a=a)
        compare_q(q, expected, f"q (H={H}, W={W}, w={w}, K={K})", ll, a,
                  case(X=X, F=F, B=B, s=s, a=a) if X.size <= 60 else "")


# =============================================================================== run_m_step
@ASSIGNMENT.check("run_m_step", "visible fixture", 2,
                  hints=("Update in the order a, F, B, s; s uses the new F and B, and is a standard deviation (the "
                         "square root of the mean squared residual).",))
def m_step_visible(ctx):
    v, e = visible_inputs(), visible()
    tX, tq, tw = v["tX"], v["tq"], v["tw"]
    got = validate_m_step(run_visible(ctx, tX, tq, tw), *tX.shape[:2], tw, q=tq, X=tX)
    compare_m_step(got, (e["F"], e["B"], e["s"], e["a"]), tq, tX.shape[1], tw, case(tX=tX, tq=tq, tw=tw), X=tX)


@ASSIGNMENT.check("run_m_step", "maximises the bound for a fixed q", 3,
                  hints=("Each update sets a derivative of the bound to zero: a with the constraint sum(a) = 1, then "
                         "F, B, and s with the new F and B.",))
def m_step_maximises(ctx):
    check_maximises(ctx)


@ASSIGNMENT.check("run_m_step", "noise-free shots at known positions: F and B come back exactly, s = 0", 2,
                  hints=("With a one-hot q, F is the average of the chosen windows, B at each column the average of "
                         "the images that show the background there, s the root mean squared residual.",))
def m_step_exact_fit(ctx):
    rng = ctx.rng
    H, W, w = 3, 8, 3
    face = rng.integers(0, 256, (H, w))
    background = rng.integers(0, 256, (H, W))
    positions = np.array([0, 5, 2, 3, 1, 4, 2])                  # every column is background somewhere
    X = np.stack([theory.model_image(face, background, d) for d in positions], axis=2).astype(np.int64)
    q = theory.one_hot(positions, W - w + 1)
    F, B, s, a = got = validate_m_step(ctx.run(X, q, w), H, W, w, exact_fit=True, q=q, X=X)
    text = case(X=X, q=q, w=w)
    diagnosed = diagnosis.diagnose_m_step(got, X, q, w)
    expect.close(a, np.bincount(positions, minlength=W - w + 1) / len(positions), "a for known positions",
                 rtol=1e-12, atol=1e-15, case=text, why=diagnosed or "a[d] is the share of the images at position d")
    expect.close(F, face, "F for noise-free shots at known positions (it must be the face)", rtol=1e-9, atol=1e-9,
                 case=text, why=diagnosed or "with q one-hot, F is the average of the windows X[:, d_k:d_k + w, k]")
    expect.close(B, background, "B for noise-free shots at known positions (it must be the background)",
                 rtol=1e-9, atol=1e-9, case=text,
                 why=diagnosed or "B[:, j] averages only the images in which column j is NOT under the face")
    if not s < 1e-4:
        raise Failed(f"s is {s:.6g} for shots that the returned F and B explain exactly; expected 0 "
                     "(up to rounding)", case=text,
                     why=diagnosed or "s^2 is the mean squared residual of the model with the NEW F and B: here every "
                                      "residual is 0")


@ASSIGNMENT.check("run_m_step", "a background column hidden in every image stays finite", 1,
                  hints=("If the face covers column j wherever q > 0, the weight of column j is 0 and 0/0 is NaN: "
                         "keep the plain average of the images there.",))
def m_step_hidden_column(ctx):
    rng = ctx.rng
    H, W, w, K = 2, 9, 5, 6
    X, _ = theory.random_problem(rng, H, W, w, K)
    q = np.zeros((W - w + 1, K))                                  # every face at position 2 or 3:
    q[2] = rng.uniform(0.2, 0.8, K)                                # columns 3..6 never show the background
    q[3] = 1 - q[2]
    F, B, s, a = validate_m_step(ctx.run(X, q, w), H, W, w, q=q, X=X)
    seen = theory.background_weight(q, W, w) > 0
    expect.close(B[:, seen], theory.background_average(X, q, w)[:, seen], "B where some image shows the background",
                 rtol=1e-8, atol=1e-8, case=case(X=X, q=q, w=w),
                 why=diagnosis.diagnose_m_step((F, B, s, a), X, q, w) or
                 "B[i, j] averages X[i, j, k] where column j shows the background, weighted by q[d, k]")


@ASSIGNMENT.check("run_m_step", "hidden random inputs match the reference", 2, needs_reference=True)
def m_step_hidden(ctx):
    for n, (H, W, w, K) in enumerate(HIDDEN_SIZES):
        X, _ = theory.random_problem(ctx.rng, H, W, w, K, integer=n % 2 == 0)
        q = theory.random_posterior(ctx.rng, W - w + 1, K, concentration=0.5, zero_rows=n % 2)
        expected = ctx.reference("run_m_step")(X, q, w)
        got = validate_m_step(ctx.run(X, q, w), H, W, w, q=q, X=X)
        compare_m_step(got, expected, q, W, w, case(X=X, q=q, w=w) if X.size <= 60 else "", X=X)


@ASSIGNMENT.check("run_m_step", "realistic shots and posterior match the reference", 2, needs_reference=True)
def m_step_realistic(ctx):
    shots = realistic(K=40)
    X, w = shots["X"], shots["w"]
    q = ctx.reference("run_e_step")(X, shots["face"], shots["background"], 150.0, shots["prior"])
    expected = ctx.reference("run_m_step")(X, q, w)
    got = validate_m_step(ctx.run(X, q, w), *X.shape[:2], w, q=q, X=X)
    compare_m_step(got, expected, q, X.shape[1], w,
                   "\n40 camera shots (100 x 200, w = 73) and their posterior at the true face (mostly 0 and 1)", X=X)
