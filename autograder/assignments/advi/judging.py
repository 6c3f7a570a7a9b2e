"""What the ADVI checks share: isolation that survives autograd, judging a function alone, output
validation, and explanations that follow their symptom.

Isolation and autograd
----------------------
While a function is checked, the task's other skeleton functions (``isolated_from``) are replaced
by stand-ins: the grader's own implementation of the model (``theory``, written from the model's
definition and tested against the reference), the same when grading and on the student's machine,
so that both judge a function the same way and one bug costs points once (the reference itself is
only compared with in the hidden checks; its autograd gradients are also ten times slower than
theory's hand-derived ones, which matters in a loop of 400 iterations). Stand-ins run in the grader's process: the sandbox child calls them back with
plain arrays. A student who computes a gradient with autograd *through* one of those functions
(``elementwise_grad(log_joint_zeta)``, ``grad(elbo_mean_field, (0, 1))``) hands it autograd's
tracing boxes instead, which cannot leave the child (they arrive as ``Opaque`` values; in the
student's kernel as autograd boxes). :class:`Isolation` notices, and runs the call again with the
student's own version of that function, so a correct autograd solution is graded like any other.

The price is that the gradient now depends on the student's own helper. When that helper computes
something else than the stand-in (its own checks say so), a gradient that is exactly the
derivative of what the student wrote is still right: the gradient checks compare with finite
differences of *the function the student differentiated*.

Judging a function alone
------------------------
When the helper cannot be differentiated by autograd at all (an assignment into a copy,
``scipy.stats``, plain numpy, ``float()``), the function under check fails through no fault of its
own. :meth:`Isolation.probe` asks autograd for the helper's derivative and compares it with central
differences of the helper's own values; when it fails, the failure is the helper's (its check
"autograd can differentiate it" reports it) and the function under check keeps its points
(:func:`check` does this for every ADVI check). A second bug in the same function goes unseen until
the helper is fixed: the price of blaming each bug on its own function.

Explanations
------------
An explanation that diagnoses a cause ("the log-Jacobian is missing") is registered with
:func:`explanation` and shown only when its symptom is in what the student's function returned;
tests/test_advi_corpus.py checks, over the corpus of single-bug submissions, that each is shown on
the mutants that have its bug and on no other.
"""

from __future__ import annotations

import re
import sys
import warnings

import numpy as np

from ...engine import Failed, expect
from ...sandbox.codec import Opaque
from . import ASSIGNMENT, theory

# Tolerances, per quantity (see the checks for why each is what it is).
VALUE_RTOL = 1e-10          # log densities and transforms: a few hundred terms summed in float64
ELBO_RTOL = 1e-9            # a mean over draws of log densities
GRAD_RTOL = 1e-8            # autograd, hand-derived and vectorised gradients agree to ~1e-12
FD_RTOL = 1e-6              # central differences with h = 1e-5: truncation error ~1e-8 relative
FD_STEP = 1e-5
PROBE_RTOL = 1e-5           # autograd's derivative against central differences of the same function
PROBE_SECONDS = 20.0        # one call of a probe (the functions answer in milliseconds)

MODEL = ("inverse_transform", "log_det_jacobian", "log_joint", "log_joint_zeta")
# The functions a student's gradient may differentiate with autograd (notebook: both routes are fine).
DIFFERENTIABLE = MODEL + ("elbo_mean_field", "elbo_full_rank")

# What stands in for a student's function while another one is checked.
IMPLEMENTATIONS = {name: getattr(theory, name) for name in (
    "inverse_transform", "log_det_jacobian", "log_joint", "log_joint_zeta", "grad_log_joint_zeta",
    "elbo_mean_field", "grad_elbo_mean_field", "step_size", "elbo_full_rank", "grad_elbo_full_rank")}


# ----------------------------------------------------------------------------- explanations
EXPLANATIONS: dict[str, str] = {}


def explanation(key: str, text: str) -> str:
    """Register a diagnosing explanation (shown only when its symptom is present) and return it."""
    if key in EXPLANATIONS and EXPLANATIONS[key] != text:
        raise ValueError(f"explanation {key!r} registered twice")
    EXPLANATIONS[key] = text
    return text


WHY_NAN = explanation(
    "nan", "NaN comes from the log (or the square root) of a negative number, or from 0/0 or inf - inf: "
           "look for a log of a quantity that can be negative")
WHY_MINUS_INF = explanation(
    "minus_inf", "-inf comes from log(0): a density that underflowed to 0 (multiply densities and 80 of them "
                 "underflow; add log densities instead) or a standard deviation of 0")
WHY_PLUS_INF = explanation("plus_inf", "+inf comes from exp overflowing or from a division by 0")
WHY_MUTATES = explanation(
    "mutates_input", "a function must not modify the arrays it is given: the ADVI loop still needs them. Work on "
                     "new arrays (`zeta[..., 2] = ...` overwrites the caller's zeta; `np.concatenate`/`np.stack` "
                     "build a new one)")
WHY_AUTOGRAD_SCALAR_INDEX = explanation(
    "autograd_scalar_index",
    "autograd cannot differentiate, at a single point, code that indexes a single number: `sigma[..., None]` "
    "when sigma = theta[..., 2] is one number raises this TypeError in every autograd release (1.5 to 1.9). "
    "Differentiate the whole batch at once (elementwise_grad of a function of all the rows), or add the "
    "trailing axis with np.expand_dims(sigma, -1) (or slice theta[..., 2:3]) instead of indexing with None")


def nonfinite_why(value) -> str:
    """The explanation of the first kind of non-finite entry in ``value`` (NaN before -inf before +inf)."""
    arr = np.asarray(value)
    if arr.dtype.kind == "c":
        arr = np.abs(arr)
    arr = arr.astype(float)
    if np.isnan(arr).any():
        return WHY_NAN
    if np.isneginf(arr).any():
        return WHY_MINUS_INF
    return WHY_PLUS_INF


def finite_scale(*values) -> float:
    """The largest finite |entry| of ``values`` (0 when there is none): a safe base for an absolute
    tolerance (np.isclose warns, and the warning reaches the student's stderr, when atol is NaN)."""
    best = 0.0
    for value in values:
        arr = np.abs(np.asarray(value, dtype=float))
        arr = arr[np.isfinite(arr)]
        if arr.size:
            best = max(best, float(arr.max()))
    return best


def close(a, b, rtol: float, atol_relative: float = 0.0, atol: float = 0.0) -> bool:
    """Same shape and ``|a - b| <= atol + atol_relative * max|b| + rtol * |b|``, NaN never close (no warning)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    with np.errstate(invalid="ignore", over="ignore"):
        return bool(np.all(np.abs(a - b) <= atol + atol_relative * finite_scale(b) + rtol * np.abs(b)))


def _contains_traced(value) -> bool:
    """An autograd tracing value: an Opaque from the sandbox child, or a box in the student's kernel."""
    if isinstance(value, Opaque):
        return True
    tracer = sys.modules.get("autograd.tracer")
    if tracer is not None and isinstance(value, tracer.Box):
        return True
    if isinstance(value, (list, tuple)):
        return any(_contains_traced(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_traced(v) for v in value.values())
    return False


class NotExcused(Failed):
    """A failure that is the function's own even when its helpers cannot be differentiated."""


# ----------------------------------------------------------------------------- isolation
class Isolation:
    """Calls the student's functions with stand-ins for the other skeleton functions, except those
    the student's code differentiates with autograd (``own``): their own version is used."""

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.own: set[str] = set()
        self._boxed: list[str] = []
        self._probes: dict[tuple, Failed | None] = {}

    @staticmethod
    def implementation(name: str):
        """What stands in for the student's ``name`` (the same when grading and on their machine)."""
        return IMPLEMENTATIONS[name]

    def standins(self, name: str, extra: dict | None = None) -> dict:
        found = {h: self.implementation(h) for h in self.ctx.assignment.task(name).isolated_from}
        found.update(extra or {})
        return {h: self._guard(h, func) for h, func in found.items() if h not in self.own}

    def _guard(self, name, func):
        boxed = self._boxed

        def guarded(*args, **kwargs):
            if _contains_traced(args) or _contains_traced(kwargs):
                boxed.append(name)
                raise TypeError(f"{name} received autograd's tracing values; the grader retries with your own {name}")
            # A stand-in runs in the grader's process: whatever the student's code hands it (a diverging
            # loop's inf), it must not warn there (stderr zeroes an nbgrader cell); NaN/inf come back.
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return func(*args, **kwargs)

        guarded.__name__ = name
        return guarded

    def outcome(self, name: str, *args, extra: dict | None = None, timeout: float | None = None,
                differentiate: int | None = None, **kwargs):
        """The raw outcome of calling the student's ``name`` (retried with their own helpers when it
        differentiates stand-ins)."""
        while True:
            self._boxed.clear()
            outcome = self.ctx.outcome(name, args, kwargs, standins=self.standins(name, extra), timeout=timeout,
                                       differentiate=differentiate)
            new = set(self._boxed) - self.own
            if not new:     # (a call that caught the stand-in's error is retried too)
                return outcome
            self.own |= new

    def call(self, name: str, *args, extra: dict | None = None, timeout: float | None = None, **kwargs):
        """Call the student's ``name``; returns its value or raises a Failed that explains the problem."""
        return self.value(name, self.outcome(name, *args, extra=extra, timeout=timeout, **kwargs))

    def value(self, name: str, outcome):
        """The engine's ``ctx.value``: a watch's verdict when a stand-in stopped the call, the
        explanation of a crash (with autograd's symptom), ADVI's words for an input changed in place."""
        return self.ctx.value(name, outcome, why_mutated=WHY_MUTATES, why_failed=crash_why)

    def run(self, *args, **kwargs):
        """Call the function under check."""
        return self.call(self.ctx.task.name, *args, **kwargs)

    def version(self, name: str):
        """``name`` as the function under check used it: the student's own, or the stand-in."""
        if name in self.own:
            return lambda *args, **kwargs: self.call(name, *args, **kwargs)
        return self.implementation(name)

    def differentiated(self) -> str:
        return ", ".join(sorted(self.own))

    # ------------------------------------------------------------------------- differentiability
    def helper_fault(self, exclude: str) -> Failed | None:
        """The probe failure of an own helper (other than ``exclude``) that autograd cannot differentiate,
        on a batch or at a single point (a gradient may differentiate one point at a time). Autograd's
        own bug with single numbers indexed by None is not the helper's fault: the gradient chose to
        differentiate points one by one (its checks explain it)."""
        for single in (False, True):
            for name in DIFFERENTIABLE:
                if name in self.own and name != exclude:
                    failure = self.probe(name, single=single)
                    if (failure is not None and failure.culprit != exclude
                            and failure.why != WHY_AUTOGRAD_SCALAR_INDEX):
                        return failure
        return None

    def probe(self, name: str, single: bool = False, visiting: frozenset = frozenset()) -> Failed | None:
        """None when autograd's derivative of the student's own ``name`` agrees with central differences
        of its values at a fixed batch of points (``single``: at one point); otherwise a Failed saying
        why, whose ``culprit`` is the function at fault (``name``, or one of its own helpers that
        autograd went through)."""
        if name in ("elbo_mean_field", "elbo_full_rank"):
            single = False          # (they take no points)
        key = (name, single)
        if key not in self._probes:
            self._probes[key] = _probe(self.ctx, name, single, visiting | {name})
        return self._probes[key]


def _probe_inputs(name: str, single: bool = False):
    """(args, argnums) at which the differentiability of ``name`` is probed (``single``: at one point)."""
    from .fixtures import L_PROBE, MU_PROBE, OMEGA_PROBE, sample
    s = sample()
    x, y = s["x"], s["y"]
    zeta = np.array([[5.2, -3.4, 0.8], [5.6, -3.6, 1.0], [4.9, -3.3, 0.7]])
    if single:
        zeta = zeta[0]
    if name == "log_joint":
        return (theory.inverse_transform(zeta), x, y), (0,)
    if name in ("inverse_transform", "log_det_jacobian"):
        return (zeta,), (0,)
    if name == "log_joint_zeta":
        return (zeta, x, y), (0,)
    eta = np.random.default_rng(3).standard_normal((4, 3))
    second = OMEGA_PROBE if name == "elbo_mean_field" else L_PROBE
    return (MU_PROBE.copy(), second.copy(), eta, x, y), (0, 1)


def _probe(ctx, name: str, single: bool, visiting: frozenset) -> Failed | None:
    sub = Isolation(ctx)

    def deeper() -> Failed | None:
        """The fault of a helper that autograd went through while differentiating ``name``."""
        for helper in DIFFERENTIABLE:
            if helper in sub.own and helper not in visiting:
                failure = sub.probe(helper, single, visiting)
                if failure is not None:
                    return failure
        return None

    args, argnums = _probe_inputs(name, single)
    for argnum in argnums:
        outcome = sub.outcome(name, *args, differentiate=argnum, timeout=PROBE_SECONDS)
        refuse_tampering(name, outcome)
        if outcome.status in ("crash", "timeout"):
            # Its values come back in milliseconds: a call that dies or hangs only when autograd
            # differentiates it is the function's own doing (code that notices autograd's boxes and
            # exits must not keep the point; nor must one that loops).
            return _ended_under_autograd(name, outcome)
        if outcome.status != "ok" and outcome.status != "error":
            return None          # the submission's budget, a stand-in's abort: no verdict
        if not outcome.ok:
            return deeper() or _not_differentiable(name, outcome)
        try:
            derivative = expect.array(outcome.value, f"autograd's derivative of {name}",
                                      shape=np.shape(args[argnum]), finite=False)
            numerical = _central_differences(sub, name, args, argnum)
        except Failed:
            return None          # the function's values are broken: its value checks say so
        if not close(derivative, numerical, rtol=PROBE_RTOL, atol_relative=1e-6):
            found = deeper()
            if found is not None:
                return found
            failure = Failed(f"autograd's derivative of your {name} is not the derivative of its values "
                             f"(it differs from finite differences: {_first_difference(derivative, numerical)})",
                             why=WHY_SILENT)
            failure.culprit = name
            return failure
    if not single and name in MODEL:
        mixed = _mixes_rows(sub, name, args)
        return mixed and (deeper() or mixed)
    return None


WHY_TAMPERED = ("your code changed autograd itself (its functions, their code, its registry of derivatives or "
                "the modules it uses), so what autograd computes next to your code cannot be trusted: use autograd "
                "as it is (new primitives and their VJPs through autograd.extend are fine)")


def refuse_tampering(name: str, outcome) -> None:
    """A failure that nothing excuses when the sandbox saw the submission change autograd (or refused
    to differentiate for that reason): never a pass for what autograd computed there."""
    changed = list(getattr(outcome, "tampered", []) or [])
    if outcome.error_type == "Tampered" and not changed:
        changed = [outcome.message]
    if changed:
        failure = NotExcused(f"the grader cannot tell whether autograd differentiates your {name}: your code "
                             f"changed autograd ({'; '.join(changed[:3])})", why=WHY_TAMPERED)
        failure.culprit = name
        raise failure


def _mixes_rows(sub: Isolation, name: str, args: tuple) -> Failed | None:
    """A Failed when row s of the student's ``name`` on a batch is not its value for row s alone: then
    no gradient of it can be judged row by row (its own checks report the mistake)."""
    try:
        batch = np.asarray(sub.call(name, *args, timeout=PROBE_SECONDS), dtype=float)
        rows = [np.asarray(sub.call(name, args[0][s:s + 1], *args[1:], timeout=PROBE_SECONDS), dtype=float)
                for s in range(len(args[0]))]
    except (Failed, TypeError, ValueError):
        return None
    if batch.shape[:1] == (len(args[0]),) and all(
            r.shape[:1] == (1,) and close(r[0], batch[s], rtol=1e-9, atol_relative=1e-12) for s, r in enumerate(rows)):
        return None
    failure = Failed(f"row s of your {name} on a batch is not its value for the point s alone",
                     why="each row of a batch must be computed from its own row only (index the last axis, reduce "
                         "over the observations with axis=-1)")
    failure.culprit = name
    return failure


def _central_differences(sub: Isolation, name: str, args: tuple, argnum: int) -> np.ndarray:
    """d(sum of name's outputs)/d args[argnum], entry by entry, from the student's own values."""
    base = np.asarray(args[argnum], dtype=float)
    out = np.zeros_like(base)

    def total(point):
        values = list(args)
        values[argnum] = point
        value = np.asarray(expect.array(sub.call(name, *values, timeout=PROBE_SECONDS), f"{name}", finite=True),
                           dtype=float)
        return float(value.sum())

    for index in np.ndindex(base.shape):
        step = FD_STEP * max(1.0, abs(base[index]))
        plus, minus = base.copy(), base.copy()
        plus[index] += step
        minus[index] -= step
        out[index] = (total(plus) - total(minus)) / (2 * step)
    return out


def _first_difference(got, expected) -> str:
    got, expected = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    with np.errstate(invalid="ignore"):
        error = np.where(np.isfinite(got - expected), np.abs(got - expected), np.inf)
    index = np.unravel_index(int(np.argmax(error)), error.shape)
    return (f"at {tuple(int(i) for i in index)} autograd gives {got[index]:.6g}, finite differences "
            f"{expected[index]:.6g}")


WHY_SILENT = explanation(
    "autograd_silent",
    "autograd only follows autograd.numpy operations that build new arrays: values copied into a plain numpy "
    "array (np.zeros then assignments, onp.asarray, float()) are constants to it, so their derivative is lost")
WHY_COPY = explanation(
    "autograd_assignment",
    "autograd cannot differentiate an assignment into an array (`theta = zeta.copy(); theta[..., 2] = ...`, "
    "np.zeros then filling it in): build a new array instead, e.g. "
    "np.concatenate([zeta[..., :2], np.exp(zeta[..., 2:])], axis=-1) or np.stack([...], axis=-1)")
WHY_SCIPY = explanation(
    "autograd_scipy",
    "scipy.stats' densities (and scipy.special imported from scipy) are plain numpy code that autograd cannot "
    "differentiate: write the log densities with autograd.numpy (np.log, np.sum, ...) and "
    "autograd.scipy.special.gammaln")
WHY_AUTOGRAD_STATS_SCALE = explanation(
    "autograd_stats_scale",
    "autograd.scipy.stats' densities evaluate with scale=..., but autograd cannot differentiate them with that "
    "keyword: write the Gamma log density out, a log r - gammaln(a) + (a - 1) log sigma - r sigma")
WHY_PLAIN = explanation(
    "autograd_plain",
    "autograd differentiates only autograd.numpy operations: a conversion to a plain number or array "
    "(float(), math.log, plain numpy's asarray/array) stops it; use the functions of autograd.numpy "
    "(imported as np in the notebook)")
WHY_AUTOGRAD_OTHER = ("autograd cannot follow this operation; write the function with autograd.numpy operations "
                      "that build new arrays (no assignments into arrays, no scipy.stats, no float())")


def _line_of(outcome, name: str) -> tuple[str, str]:
    """(where, text) of the innermost line of ``name`` in the crash's traceback."""
    for file, line, func, text in reversed(outcome.frames or []):
        if func == name:
            return f" (line {line}: `{text.strip()}`)" if text else f" (line {line})", text or ""
    return "", ""


_ASSIGNMENT_INTO = re.compile(r"\]\s*[-+*/]?=(?!=)")


def _ended_under_autograd(name: str, outcome) -> Failed:
    ended = "took too long" if outcome.status == "timeout" else "ended the call"
    failure = Failed(f"differentiating your {name} with autograd {ended} ({outcome.message}), although its "
                     "values alone come back at once",
                     why="autograd calls your function with its tracing boxes in place of arrays: code that treats "
                         "them differently from arrays (tests their type, converts them, exits) breaks "
                         "differentiation; use autograd.numpy operations only")
    failure.culprit = name
    return failure


def _not_differentiable(name: str, outcome) -> Failed:
    where, text = _line_of(outcome, name)
    error = f"{outcome.error_type}: {outcome.message}" if outcome.status == "error" else outcome.message
    lowered = (text + " " + outcome.message).lower()
    if outcome.error_type == "NotImplementedError":
        failure = Failed(f"{name} is not implemented yet (it raises NotImplementedError)",
                         why="replace `raise NotImplementedError()` with your code")
    else:
        line = text.lower()
        if "first operand must be array" in lowered:
            why = WHY_AUTOGRAD_SCALAR_INDEX
        elif "unexpected keyword argument 'scale'" in lowered:
            why = WHY_AUTOGRAD_STATS_SCALE
        elif "stats." in lowered or "scipy" in line or "'isnan' not supported" in lowered:
            why = WHY_SCIPY
        elif any(word in line for word in ("float(", "math.", "asarray", "onp.", "array(")):
            why = WHY_PLAIN
        elif (".copy" in lowered or "item assignment" in lowered or "setting an array element" in lowered
              or _ASSIGNMENT_INTO.search(text)):
            why = WHY_COPY
        else:
            why = WHY_AUTOGRAD_OTHER
        failure = Failed(f"autograd cannot differentiate your {name}: {error}{where}", why=why)
    failure.culprit = name
    return failure


def crash_why(outcome) -> str:
    """A symptom-gated explanation of a crash (empty when none applies)."""
    if "first operand must be array" in outcome.message:
        return WHY_AUTOGRAD_SCALAR_INDEX
    return ""


# ----------------------------------------------------------------------------- checks judged alone
def check(task: str, name: str, points: float, **options):
    """Register an ADVI check ``body(ctx, iso)``: like ``ASSIGNMENT.check``, with an :class:`Isolation`,
    and judged alone: a failure caused by an own helper that autograd cannot differentiate costs the
    helper its points (its differentiability check), not this function."""

    def register(body):
        def run(ctx):
            iso = Isolation(ctx)
            try:
                body(ctx, iso)
            except NotExcused:
                raise
            except Failed:
                if iso.own and iso.helper_fault(exclude=task) is not None:
                    return
                raise

        run.__name__ = run.__qualname__ = body.__name__
        run.__doc__ = body.__doc__
        ASSIGNMENT.check(task, name, points, **options)(run)
        return body

    return register


# ----------------------------------------------------------------------------- what the student used
def used_log_joint_zeta(iso: Isolation, x, y):
    """``zeta -> log p(y, T^{-1}(zeta)) + log|det J|`` built from the versions the function under check used."""
    if "log_joint_zeta" in iso.own:
        own = iso.version("log_joint_zeta")
        return lambda zeta: np.asarray(own(zeta, x, y), dtype=float)
    if not iso.own & set(MODEL):
        implementation = iso.implementation("log_joint_zeta")
        return lambda zeta: np.asarray(implementation(zeta, x, y), dtype=float)
    log_joint, inverse, log_det = (iso.version(n) for n in ("log_joint", "inverse_transform", "log_det_jacobian"))
    return lambda zeta: (np.asarray(log_joint(np.asarray(inverse(zeta), dtype=float), x, y), dtype=float)
                         + np.asarray(log_det(zeta), dtype=float))


def used_elbo(iso: Isolation, family: str, eta, x, y):
    """``(mu, omega or L) -> ELBO estimate at the draws eta``, from the versions the function under check used."""
    name = f"elbo_{family}"
    if name in iso.own or not iso.own:
        version = iso.version(name)
        return lambda mu, second: expect.scalar(version(mu, second, eta, x, y), f"{name} (called by the grader)")
    log_joint_zeta = used_log_joint_zeta(iso, x, y)
    if family == "mean_field":
        return lambda mu, omega: float(np.mean(log_joint_zeta(theory.mean_field_draws(mu, omega, eta)))
                                       + theory.entropy_mean_field(omega))
    return lambda mu, L: float(np.mean(log_joint_zeta(theory.full_rank_draws(mu, L, eta)))
                               + theory.entropy_full_rank(L))


def central_differences(f, params: list, masks: list | None = None, h: float = FD_STEP) -> list:
    """Central differences of the scalar ``f(*params)`` with respect to each entry of each parameter."""
    params = [np.asarray(p, dtype=float) for p in params]
    out = []
    for i, p in enumerate(params):
        grad = np.zeros_like(p)
        for index in np.ndindex(p.shape):
            if masks is not None and masks[i] is not None and not masks[i][index]:
                continue
            plus = [q.copy() for q in params]
            minus = [q.copy() for q in params]
            plus[i][index] += h
            minus[i][index] -= h
            grad[index] = (f(*plus) - f(*minus)) / (2 * h)
        out.append(grad)
    return out


def differs_from_reference(iso: Isolation, used_value, reference_value) -> bool:
    """True when the student's own helpers (used because their code differentiates them) compute
    something else than the stand-in: their gradient is then judged against their own function."""
    return bool(iso.own) and not close(used_value, reference_value, rtol=VALUE_RTOL, atol=1e-9)


def compare_gradients(got: list, expected: list, names: list, *, rtol: float, case: str = "", why: str = "",
                      context: str = "") -> None:
    """Each gradient close to its expected value, with an absolute floor relative to its largest entry."""
    for g, e, name in zip(got, expected, names):
        scale = max(finite_scale(e), 1e-12)
        expect.close(g, e, f"{name}{context}", rtol=rtol, atol=rtol * scale, case=case, why=why)


def consistency_note(iso: Isolation) -> str:
    return (f" (your code differentiates your own {iso.differentiated()}, which computes something else than "
            "the reference, so it was compared with finite differences of your function; fix the function "
            "its own checks report first)")


# ----------------------------------------------------------------------------- validation
def validate_array(value, what: str, shape: tuple, why_shape: str = "", why_nonfinite: str = "") -> np.ndarray:
    if shape == () and isinstance(value, np.ndarray) and value.shape == (1,):
        value = value.reshape(())   # a 0-d array that travelled as shape (1,)
    try:
        arr = expect.array(value, what, shape=shape, finite=False)
    except Failed as failure:
        if why_shape and "shape" in failure.message and not failure.why:
            failure.why = why_shape
        raise
    if not np.all(np.isfinite(arr)):
        expect.array(arr, what, why_nonfinite=why_nonfinite or nonfinite_why(arr))
    return arr


def validate_pair(value, what: str, names: tuple, shapes: tuple) -> list:
    if not isinstance(value, (tuple, list)) or len(value) != len(names):
        raise Failed(f"{what} should return a tuple ({', '.join(names)}) but returned {expect.describe_value(value)}")
    return [validate_array(v, f"{n} returned by {what}", s) for v, n, s in zip(value, names, shapes)]


def validate_scalar(value, what: str, why_nonfinite: str = "") -> float:
    number = expect.scalar(value, what, finite=False)
    if not np.isfinite(number):
        raise Failed(f"{what} is {number}", why=why_nonfinite or nonfinite_why(number))
    return number
