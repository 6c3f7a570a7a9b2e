"""What the ADVI checks share: isolation that survives autograd, output validation, gradient judging.

Isolation and autograd
----------------------
While a function is graded, the task's other skeleton functions are replaced by the reference
(``isolated_from``), which runs in the grader's process: the sandbox child calls it back with
plain arrays. A student who computes a gradient with autograd *through* one of those functions
(``elementwise_grad(log_joint)(theta, x, y)``, ``grad(elbo_mean_field)(...)``) hands it autograd's
tracing boxes instead, which cannot leave the child. :class:`Isolation` notices (the stand-in
receives an opaque value), and runs the call again with the student's own version of that function,
so a correct autograd solution is graded like any other.

The price is that the gradient now depends on the student's own helper. When that helper is wrong
(its own checks say so), a gradient that is exactly the derivative of what the student wrote is
still right; the gradient checks then compare with finite differences of *the function the student
differentiated* instead of the reference gradient, so one bug costs points once.
"""

from __future__ import annotations

import numpy as np

from ...engine import Failed, expect
from ...engine.context import explain_outcome
from ...engine.failures import StudentCodeFailed
from ...sandbox.codec import Opaque
from . import theory

# Tolerances, per quantity (see the checks for why each is what it is).
VALUE_RTOL = 1e-10          # log densities and transforms: a few hundred terms summed in float64
ELBO_RTOL = 1e-9            # a mean over draws of log densities
GRAD_RTOL = 1e-8            # autograd, hand-derived and vectorised gradients agree to ~1e-12
FD_RTOL = 1e-6              # central differences with h = 1e-5: truncation error ~1e-8 relative
FD_STEP = 1e-5


def _contains_opaque(value) -> bool:
    if isinstance(value, Opaque):
        return True
    if isinstance(value, (list, tuple)):
        return any(_contains_opaque(v) for v in value)
    if isinstance(value, dict):
        return any(_contains_opaque(v) for v in value.values())
    return False


class Isolation:
    """Calls the student's functions with the reference standing in for the other skeleton functions,
    except those the student's code differentiates with autograd (``own``): their own version is used.
    """

    def __init__(self, ctx) -> None:
        self.ctx = ctx
        self.own: set[str] = set()
        self._boxed: list[str] = []

    @property
    def grading(self) -> bool:
        return self.ctx.has_reference

    def standins(self, extra: dict | None = None) -> dict:
        found = dict(self.ctx.default_standins())
        found.update(extra or {})
        return {name: self._guard(name, func) for name, func in found.items() if name not in self.own}

    def _guard(self, name, func):
        boxed = self._boxed

        def guarded(*args, **kwargs):
            if _contains_opaque(args) or _contains_opaque(kwargs):
                boxed.append(name)
                raise TypeError(f"{name} received autograd's tracing values; the grader retries with your own {name}")
            return func(*args, **kwargs)

        guarded.__name__ = name
        return guarded

    def call(self, name: str, *args, extra: dict | None = None, timeout: float | None = None, **kwargs):
        """Call the student's ``name``; returns its value or raises a Failed that explains the problem."""
        ctx = self.ctx
        for _ in range(len(ctx.default_standins()) + len(extra or {}) + 1):
            self._boxed.clear()
            outcome = ctx.executor.call(name, args, kwargs, standins=self.standins(extra), seed=ctx.call_seed(name),
                                        timeout=timeout or ctx.check.timeout)
            if not self._boxed:   # (a call that caught the stand-in's error is retried too)
                break
            self.own.update(self._boxed)
        ctx.last = outcome
        ctx.timed_out = getattr(ctx, "timed_out", False) or outcome.status == "timeout"
        if outcome.status == "crash" and "bad float" in outcome.message:
            # The sandbox's codec cannot carry a NaN or infinite numpy scalar back to the grader.
            raise StudentCodeFailed(f"{name} returned a number that is NaN or infinite",
                                    "inf or NaN usually comes from exp overflowing, the log of a negative or zero "
                                    "number (a negative diagonal entry of L?), or 0/0")
        if not outcome.ok:
            raise StudentCodeFailed(*explain_outcome(name, outcome, ctx.executor))
        if outcome.mutated:
            names = ", ".join(f"`{m}`" for m in outcome.mutated)
            raise Failed(f"{name} changed its input {names} in place",
                         why="a function must not modify the arrays it is given: the ADVI loop still needs "
                             "them. Work on new arrays (`zeta[..., 2] = ...` overwrites the caller's zeta; "
                             "`np.concatenate`/`np.column_stack` build a new one).")
        return outcome.value

    def run(self, *args, **kwargs):
        """Call the function under check."""
        return self.call(self.ctx.task.name, *args, **kwargs)

    def version(self, name: str):
        """``name`` as the function under check used it: the student's own, or the reference."""
        if not self.grading or name in self.own:
            return lambda *args, **kwargs: self.call(name, *args, **kwargs)
        return self.ctx.reference(name)

    def differentiated(self) -> str:
        return ", ".join(sorted(self.own))


# ----------------------------------------------------------------------------- what the student used
def used_log_joint_zeta(iso: Isolation, x, y):
    """``zeta -> log p(y, T^{-1}(zeta)) + log|det J|`` built from the versions the function under check used."""
    if not iso.grading or "log_joint_zeta" in iso.own:
        own = iso.version("log_joint_zeta")
        return lambda zeta: np.asarray(own(zeta, x, y), dtype=float)
    log_joint, inverse, log_det = (iso.version(n) for n in ("log_joint", "inverse_transform", "log_det_jacobian"))
    return lambda zeta: (np.asarray(log_joint(np.asarray(inverse(zeta), dtype=float), x, y), dtype=float)
                         + np.asarray(log_det(zeta), dtype=float))


def used_elbo(iso: Isolation, family: str, eta, x, y):
    """``(mu, omega or L) -> ELBO estimate at the draws eta``, from the versions the function under check used."""
    name = f"elbo_{family}"
    if not iso.grading or name in iso.own:
        own = iso.version(name)
        return lambda mu, second: expect.scalar(own(mu, second, eta, x, y), f"{name} (called by the grader)")
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
    something else than the reference: their gradient is then judged against their own function."""
    return (iso.grading and bool(iso.own)
            and not np.allclose(used_value, reference_value, rtol=1e-12, atol=1e-10))


def compare_gradients(got: list, expected: list, names: list, *, rtol: float, case: str = "", why: str = "",
                      context: str = "") -> None:
    """Each gradient close to its expected value, with an absolute floor relative to its largest entry."""
    for g, e, name in zip(got, expected, names):
        scale = max(float(np.abs(e).max()), 1e-12)
        expect.close(g, e, f"{name}{context}", rtol=rtol, atol=rtol * scale, case=case, why=why)


def consistency_note(iso: Isolation) -> str:
    return (f" (your code differentiates your own {iso.differentiated()}, which computes something else than "
            "the reference, so it was compared with finite differences of your function; fix the function "
            "its own checks report first)")


# ----------------------------------------------------------------------------- validation
def validate_array(value, what: str, shape: tuple, why_shape: str = "") -> np.ndarray:
    if shape == () and isinstance(value, np.ndarray) and value.shape == (1,):
        value = value.reshape(())   # the sandbox's codec delivers a 0-d array with shape (1,)
    try:
        return expect.array(value, what, shape=shape)
    except Failed as failure:
        if why_shape and "shape" in failure.message and not failure.why:
            failure.why = why_shape
        raise


def validate_pair(value, what: str, names: tuple, shapes: tuple) -> list:
    if not isinstance(value, (tuple, list)) or len(value) != len(names):
        raise Failed(f"{what} should return a tuple ({', '.join(names)}) but returned {expect.describe_value(value)}")
    return [expect.array(v, f"{n} returned by {what}", shape=s) for v, n, s in zip(value, names, shapes)]


def validate_scalar(value, what: str) -> float:
    return expect.scalar(value, what, why_nonfinite="the ELBO estimate must be finite: look for exp overflowing or "
                                                      "log of a non-positive number")
