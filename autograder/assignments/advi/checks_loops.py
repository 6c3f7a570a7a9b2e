"""Checks of the ADVI loops, advi_mean_field and advi_full_rank.

A loop is judged by watching it work. Its calls to the ELBO and gradient functions go to recording
stand-ins (the grader's own implementations, see judging.py), bound by the tasks' signatures; the checks
then replay the recorded iterations: fresh standard-normal draws every iteration, the trace is the
ELBO the stand-in returned, and every update is ``parameter + rho * gradient`` with ADVI's step
size. This accepts any correct way of drawing the randomness (another generator method, another
layout, draws made elsewhere), because only the draws the loop actually used are looked at.

Separately, a longer run from a warm start must land near the exact posterior: the tolerances
below hold for every seed tried (see tests/test_advi_checks.py), so a correct loop passes whatever
random numbers it draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...engine import Failed, expect
from . import theory
from .fixtures import L_PROBE, MU_PROBE, OMEGA_PROBE, sample
from .judging import Isolation, NotExcused, check, explanation, validate_array

# The fast fitting run: a warm start at the rounded posterior mean, 400 iterations of S = 10 draws,
# learning rate 0.2 (about 0.4 s for the reference).
MU_WARM = np.array([5.3, -3.5, 0.9])
FIT_SETTINGS = {"n_iter": 400, "n_draws": 10, "learning_rate": 0.2}
# Tolerances of the fit. Over 300 seeds of the reference loop the largest error of each quantity is
# at most 58% of its tolerance (tests/test_advi_checks.py keeps checking 40 of them), so a correct
# loop passes whatever random numbers it draws; a loop that does not follow ADVI misses by far more.
MU_TOL_SD = 0.75            # |mu - posterior mean| in posterior standard deviations, per coordinate
OMEGA_TOL = 0.3             # |omega - best mean-field omega|
GAP_TOL = {"mean_field": 0.4, "full_rank": 0.6}   # best ELBO - exact ELBO of the fit
CORR_TOL = 0.1              # |corr(b0, b1) of q - posterior corr(b0, b1)|
COV_B_RTOL = 0.25           # largest error of the (b0, b1) covariance block, relative to its largest entry
# A loop may evaluate the ELBO more often than once per iteration (an initial or a final estimate);
# beyond this many calls per iteration it is stopped.
ELBO_CALLS_PER_ITERATION = 3
# Wall-clock limits (the stand-ins answer in milliseconds): a loop that hangs is told so quickly.
SHORT_RUN_SECONDS = 20.0
FIT_SECONDS = 60.0

REPLAY_RTOL = 1e-10         # an update recomputed from the recorded gradient, in float64
USE_THE_FUNCTIONS = ("{loop} must call {elbo} and {grad} (by those names) once per iteration, with the "
                     "iteration's draws eta of shape (n_draws, 3): the checks follow the iterations through "
                     "these calls")
WHY_K_FROM_ZERO = explanation(
    "loop_k_from_zero", "the iteration number k passed to step_size starts at 1 (k = 1, 2, ..., n_iter): "
                        "with range(n_iter) pass k + 1, or loop over range(1, n_iter + 1)")
WHY_S_PREV_NONE = explanation(
    "loop_s_prev_lost", "s_prev is None only at k = 1; afterwards pass the s that step_size returned at the "
                        "previous iteration (one running average per parameter)")
WHY_OVERRUN = explanation(
    "loop_overrun", "run exactly n_iter iterations: one gradient call per iteration, k = 1, ..., n_iter")


@dataclass(frozen=True)
class Loop:
    name: str
    family: str
    second: str

    @property
    def elbo(self) -> str:
        return f"elbo_{self.family}"

    @property
    def grad(self) -> str:
        return f"grad_elbo_{self.family}"

    @property
    def shape(self) -> tuple:
        return (3,) if self.family == "mean_field" else (3, 3)

    def default_second(self):
        return np.zeros(3) if self.family == "mean_field" else np.eye(3)

    def probe_second(self):
        return (OMEGA_PROBE if self.family == "mean_field" else L_PROBE).copy()

    def init_kwargs(self, mu, second) -> dict:
        return {"mu_init": mu, f"{self.second}_init": second}

    def use_the_functions(self) -> str:
        return USE_THE_FUNCTIONS.format(loop=self.name, elbo=self.elbo, grad=self.grad)


MEAN_FIELD = Loop("advi_mean_field", "mean_field", "omega")
FULL_RANK = Loop("advi_full_rank", "full_rank", "L")


class Watch:
    """The loop's calls of its ELBO, gradient and step-size functions, followed by the engine's loop
    follower (``autograder.engine.watch``): each call's arguments bound by the task's signature, so
    positional and keyword calls, in any order, read the same; recorded as copies (in the student's
    kernel a loop may update its parameters in place afterwards); a call made from inside another
    watched call (the student's own gradient differentiating their own ELBO) is passed through, not
    recorded.

    The watch stops the loop (``Watch.stop``) as soon as the check has its verdict: more gradient calls
    than iterations, a step-size call that could not work (k < 1, or no s_prev after the first step).
    """

    def __init__(self, iso: Isolation, loop: Loop, n_iter: int) -> None:
        self.loop, self.n_iter = loop, n_iter
        self.watch = iso.ctx.watch(copies=True, outermost=True)
        self.spies = {name: self.watch.spy(name, iso.implementation(name), before=self._before_call(name))
                      for name in (loop.elbo, loop.grad, "step_size")}

    @property
    def grad_calls(self):
        return [c for c in self.spies[self.loop.grad].calls if c.arguments is not None]

    @property
    def elbo_calls(self):
        return [c for c in self.spies[self.loop.elbo].calls if c.arguments is not None]

    def standins(self) -> dict:
        return self.watch.standins()

    def _stop(self, message: str, why: str):
        self.watch.stop(message, verdict=NotExcused(message, why=why))

    def _before_call(self, name: str):
        return lambda call: self._before(name, call)

    def _before(self, name: str, call) -> None:
        loop, n_iter = self.loop, self.n_iter
        spy = self.spies[name]
        if name == loop.grad and len(spy.calls) >= n_iter:
            self._stop(f"with n_iter={n_iter}, {loop.name} called {loop.grad} more than {n_iter} times "
                       "(it was stopped there)", WHY_OVERRUN)
        if name == loop.elbo and len(spy.calls) >= ELBO_CALLS_PER_ITERATION * n_iter + 2:
            self._stop(f"with n_iter={n_iter}, {loop.name} called {loop.elbo} more than "
                       f"{ELBO_CALLS_PER_ITERATION * n_iter + 2} times (it was stopped there)", WHY_OVERRUN)
        if name == "step_size":
            if call.arguments is None:
                return          # the spy raises TypeError in the student's code, like the real function
            k, s_prev = call.arguments["k"], call.arguments["s_prev"]
            number = np.asarray(k) if isinstance(k, (int, float, np.number, np.ndarray)) else None
            if number is not None and number.size == 1 and float(number) < 1:
                self._stop(f"{loop.name} called step_size with k = {k!r}", WHY_K_FROM_ZERO)
            if number is not None and number.size == 1 and float(number) > 1 and s_prev is None:
                self._stop(f"{loop.name} called step_size with s_prev = None at k = {k!r}", WHY_S_PREV_NONE)


def _data():
    s = sample()
    return s["x"], s["y"]


WHY_DIVERGED = explanation(
    "loop_diverged", "the run diverged (its parameters or ELBO estimates became NaN or infinite): each step must "
                     "be rho * gradient with rho from step_size, which keeps steps small where gradients are large")


def _unpack(value, loop: Loop, n_iter: int, finite: bool = True):
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise Failed(f"{loop.name} should return (mu, {loop.second}, elbo_trace) but returned "
                     + expect.describe_value(value))
    out = []
    for part, what, shape in zip(value, ("mu", loop.second, "elbo_trace"), ((3,), loop.shape, (n_iter,))):
        arr = expect.array(part, f"{what} returned by {loop.name}", shape=shape, finite=False)
        if finite:
            expect.array(arr, f"{what} returned by {loop.name}", why_nonfinite=WHY_DIVERGED)
        out.append(arr.astype(float))
    return tuple(out)


def _watched_run(iso: Isolation, loop: Loop, timeout: float = SHORT_RUN_SECONDS, finite: bool = True, **settings):
    """Run the loop with watching stand-ins; return (mu, second, trace, watch)."""
    watch = Watch(iso, loop, settings["n_iter"])
    x, y = _data()
    value = iso.call(loop.name, x, y, extra=watch.standins(), timeout=timeout, **settings)
    differentiated = iso.own & {loop.elbo, loop.grad, "log_joint_zeta", "log_joint"}
    if differentiated:
        raise NotExcused(f"{loop.name} differentiates {', '.join(sorted(differentiated))} with autograd itself",
                         why=f"the gradient is {loop.grad}'s job: " + loop.use_the_functions())
    mu, second, trace = _unpack(value, loop, settings["n_iter"], finite=finite)
    return mu, second, trace, watch


def _arrays(call, loop: Loop):
    """(mu, second, eta) of one recorded call, as float arrays (None when not numeric)."""
    out = []
    for key in ("mu", loop.second, "eta"):
        try:
            out.append(np.array(call.arguments[key], dtype=float))
        except (TypeError, ValueError, KeyError):
            out.append(None)
    return out


def _looks_standard_normal(draws: np.ndarray) -> tuple[bool, float, float]:
    """Mean, variance and shape of the distribution (Kolmogorov-Smirnov against N(0, 1)).

    Each test fails a correct generator with probability about 1e-6, while uniform or
    t-distributed noise rescaled to variance 1 fails the shape test on a few hundred numbers.
    """
    from scipy.stats import kstest
    flat = draws.ravel()
    z_mean = flat.mean() * np.sqrt(flat.size)
    z_var = (flat.var() - 1.0) * np.sqrt(flat.size / 2.0)
    shape_ok = kstest(flat, "norm").pvalue > 1e-6
    return abs(z_mean) <= 5 and abs(z_var) <= 5 and shape_ok, flat.mean(), flat.var()


def _close(a, b) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return False
    with np.errstate(invalid="ignore", over="ignore"):
        scale = np.abs(b[np.isfinite(b)]).max() if np.isfinite(b).any() else 0.0
        return bool(np.all(np.abs(a - b) <= REPLAY_RTOL * np.abs(b) + 1e-12 * max(scale, 1.0)))


WHY_DESCENDS = explanation(
    "loop_descends", "it moved against the gradient: ADVI maximises the ELBO, so the update is parameter + rho * "
                     "gradient")
WHY_RESET_K = explanation(
    "loop_step_reset", "the step size starts afresh every iteration: keep s between iterations (s_prev = the s of "
                       "the previous step_size call, one running average per parameter) and pass the iteration "
                       "number k")
WHY_NOT_ADAPTIVE = explanation(
    "loop_not_adaptive", "the adaptive step size is missing: rho = step_size(...)[0], not the learning rate itself")
WHY_SAME_DRAWS = explanation(
    "loop_same_draws", "draw fresh standard-normal numbers every iteration: the gradient estimates must be "
                       "independent for stochastic optimisation to converge")
WHY_NOT_NORMAL = explanation(
    "loop_not_normal", "eta ~ N(0, I): rng.standard_normal((n_draws, 3)); the reparameterisation zeta = mu + ... "
                       "eta needs standard-normal eta")
WHY_RETURN_BEFORE = explanation(
    "loop_returns_before_update", "return the parameters after the last update, not before it")
WHY_TRACE = explanation(
    "loop_trace", "elbo_trace[k - 1] is the ELBO estimate computed at iteration k, at that iteration's parameters")
WHY_SHARED_AVERAGE = explanation(
    "loop_shared_average", "each parameter needs its own running average: s_mu for mu and s_omega (or s_L) for the "
                           "other, each passed back to step_size at the next iteration")
WHY_START = explanation(
    "loop_start", "start from mu_init and the second parameter's init when given; by default mu = 0 and "
                  "omega = 0 (L = the identity)")
WHY_WRONG_EVALUATION = explanation(
    "loop_elbo_elsewhere", "record the ELBO of the current q, before the update, at the same parameters as the "
                           "gradient")


def _update_why(loop: Loop, k, param, gradient, got, state, other_state, lr, name) -> str:
    rho, _ = theory.step_size(gradient, state, k, lr)
    fresh, _ = theory.step_size(gradient, None, 1, lr)
    alternatives = {
        WHY_DESCENDS: param - rho * gradient,
        WHY_RESET_K: param + fresh * gradient,
        WHY_NOT_ADAPTIVE: param + lr * gradient,
    }
    if other_state is not None and k > 1:
        with np.errstate(all="ignore"):
            try:    # (a loop may broadcast mu's average against L's gradient)
                alternatives[WHY_SHARED_AVERAGE] = param + theory.step_size(gradient, other_state, k, lr)[0] * gradient
            except ValueError:
                pass
    for why, value in alternatives.items():
        if _close(got, value):
            return why
    return (f"each iteration: {name} <- {name} + rho * grad_{name} with rho, s = step_size(grad_{name}, s_prev, k, "
            "learning_rate), k = 1, 2, ... and a separate running average s for each parameter (the check "
            "recomputes the step sizes with a correct step_size: if yours fails its own checks, fix it first)")


def _replay(loop: Loop, watch: Watch, init, final, trace, n_iter, n_draws, lr) -> None:
    """Raise Failed at the first way the recorded run differs from the ADVI iteration."""
    settings = f"(n_iter={n_iter}, n_draws={n_draws}, learning_rate={lr})"
    grad_calls = [(c, *_arrays(c, loop)) for c in watch.grad_calls]
    elbo_calls = [(c, *_arrays(c, loop)) for c in watch.elbo_calls]
    if len(grad_calls) != n_iter:
        raise Failed(f"with n_iter={n_iter}, {loop.name} called {loop.grad} {len(grad_calls)} times",
                     why=loop.use_the_functions())
    if len(elbo_calls) < n_iter:
        raise Failed(f"with n_iter={n_iter}, {loop.name} called {loop.elbo} {len(elbo_calls)} times",
                     why=loop.use_the_functions())
    for calls, name in ((grad_calls, loop.grad), (elbo_calls, loop.elbo)):
        for k, (call, mu, second, eta) in enumerate(calls, start=1):
            if mu is None or second is None or eta is None or eta.ndim != 2 or eta.shape[1] != 3:
                raise Failed(f"{name} call number {k} did not get numeric mu, {loop.second} and draws eta of "
                             "shape (n_draws, 3)", why=loop.use_the_functions())
    draws = [eta for *_, eta in grad_calls]
    for k, eta in enumerate(draws, start=1):
        if eta.shape != (n_draws, 3):
            raise Failed(f"at iteration {k} the draws passed to {loop.grad} have shape {eta.shape}; with "
                         f"n_draws={n_draws} they should have shape ({n_draws}, 3)",
                         why="one draw per row: eta = rng.standard_normal((n_draws, 3))")
        if k > 1 and np.array_equal(eta, draws[k - 2]):
            raise Failed(f"iterations {k - 1} and {k} used the same draws eta", why=WHY_SAME_DRAWS)
    # The parameters each iteration evaluated, and the ELBO estimate recorded for it (the ELBO may be
    # estimated with the gradient's draws, as documented, or with draws of its own; extra estimates at
    # other parameters, an initial or a final one, are allowed).
    params = [(mu, second) for _, mu, second, _ in grad_calls]
    names = ("mu", loop.second)
    for value, start, name in zip(params[0], init, names):
        if not _close(value, start):
            raise Failed(f"the first iteration used {name} = {np.array2string(value, precision=4)}, but the run "
                         f"started from {name} = {np.array2string(np.asarray(start), precision=4)}", why=WHY_START)
    states = [None, None]
    for k, (call, *_rest) in enumerate(grad_calls, start=1):
        gradients = call.result
        if not isinstance(gradients, (tuple, list)) or len(gradients) != 2:
            raise Failed(f"{loop.grad} returned something unusable at iteration {k}", why=loop.use_the_functions())
        gradients = [np.asarray(g, dtype=float) for g in gradients]
        following = params[k] if k < n_iter else (final[0], final[1])
        for i, name in enumerate(names):
            rho, new_state = theory.step_size(gradients[i], states[i], k, lr)
            expected = params[k - 1][i] + rho * gradients[i]
            if not _close(following[i], expected):
                where = f"after iteration {k}" if k < n_iter else f"returned after the last iteration ({k})"
                why = _update_why(loop, k, params[k - 1][i], gradients[i], following[i], states[i], states[1 - i],
                                  lr, name)
                if k == n_iter and _close(following[i], params[k - 1][i]):
                    why = WHY_RETURN_BEFORE
                raise Failed(f"{name} {where} is {np.array2string(np.asarray(following[i]), precision=6)}, but the "
                             f"ADVI update gives {np.array2string(expected, precision=6)} {settings}", why=why)
            states[i] = new_state
    separate = []
    for k, (mu, second) in enumerate(params, start=1):
        evaluated = [(c, eta) for c, e_mu, e_second, eta in elbo_calls if _close(e_mu, mu) and _close(e_second, second)]
        if not evaluated:
            raise Failed(f"at iteration {k} the ELBO was never evaluated at the parameters of that iteration "
                         "(those the gradient got)", why=WHY_WRONG_EVALUATION)
        results = [_as_float(c.result) for c, _ in evaluated]
        if not any(r is not None and np.isclose(trace[k - 1], r, rtol=1e-12, atol=1e-12, equal_nan=True) for r in results):
            raise Failed(f"elbo_trace[{k - 1}] is {trace[k - 1]:.10g}, but {loop.elbo} returned "
                         f"{results[-1]} at the parameters of iteration {k}", why=WHY_TRACE)
        separate += [eta.ravel() for _, eta in evaluated if not np.array_equal(eta, draws[k - 1])]
    samples = [("the gradient's draws", np.array(draws))]
    if separate:
        samples.append(("the ELBO's draws", np.concatenate(separate)))
    for what, sample_draws in samples:
        ok, mean, var = _looks_standard_normal(sample_draws)
        if not ok:
            raise Failed(f"{what} of the {n_iter} iterations do not look standard normal (mean {mean:.3g}, "
                         f"variance {var:.3g} over {sample_draws.size} numbers, or the wrong shape of "
                         "distribution)", why=WHY_NOT_NORMAL)


def _as_float(value):
    try:
        return float(np.asarray(value, dtype=float).reshape(()))
    except (TypeError, ValueError):
        return None


def _replay_check(ctx, iso, loop: Loop):
    runs = [dict(n_iter=25, n_draws=40, learning_rate=0.3, rng=7, **loop.init_kwargs(MU_PROBE, loop.probe_second())),
            dict(n_iter=3, n_draws=2, learning_rate=0.4, rng=1)]
    for settings in runs:
        # The replay first: it names the first wrong update of a run that diverges.
        mu, second, trace, watch = _watched_run(iso, loop, finite=False, **settings)
        init = (settings.get("mu_init", np.zeros(3)), settings.get(f"{loop.second}_init", loop.default_second()))
        with np.errstate(all="ignore"):
            _replay(loop, watch, init, (mu, second), trace, settings["n_iter"], settings["n_draws"],
                    settings["learning_rate"])
        _unpack((mu, second, trace), loop, settings["n_iter"])


def _shapes_check(ctx, iso, loop: Loop):
    n_iter = 5
    *_, watch = _watched_run(iso, loop, n_iter=n_iter, n_draws=3, learning_rate=0.2, rng=0,
                             **loop.init_kwargs(MU_WARM, loop.probe_second()))
    if len(watch.grad_calls) != n_iter:   # (shapes alone would pass a function that returns zeros)
        raise Failed(f"with n_iter={n_iter}, {loop.name} called {loop.grad} {len(watch.grad_calls)} times",
                     why=loop.use_the_functions())


def _reproducible_check(ctx, iso, loop: Loop):
    settings = dict(n_iter=8, n_draws=3, learning_rate=0.2, **loop.init_kwargs(MU_WARM, loop.probe_second()))
    first, again, other = (_watched_run(iso, loop, rng=seed, **settings)[:3] for seed in (3, 3, 4))
    if not all(np.array_equal(a, b) for a, b in zip(first, again)):
        raise Failed(f"two runs of {loop.name} with rng=3 gave different results",
                     why="draw every random number from np.random.default_rng(rng): the same seed must give the "
                         "same run (experiments must be repeatable)")
    if np.array_equal(first[0], other[0]):
        raise Failed(f"runs of {loop.name} with rng=3 and rng=4 gave the same mu",
                     why="the draws must come from np.random.default_rng(rng), so that the seed changes them")


def _fit_check(ctx, iso, loop: Loop):
    post = theory.assignment_answers()["posterior"]
    best = theory.assignment_answers()[loop.family]
    x, y = _data()
    settings = dict(FIT_SETTINGS, rng=int(ctx.rng.integers(1_000_000)), mu_init=MU_WARM)
    mu, second, trace, _ = _watched_run(iso, loop, timeout=FIT_SECONDS, **settings)
    described = (f"after {FIT_SETTINGS['n_iter']} iterations (n_draws={FIT_SETTINGS['n_draws']}, learning_rate="
                 f"{FIT_SETTINGS['learning_rate']}, mu_init={MU_WARM.tolist()})")
    why = ("run the replay check of this loop first: a loop that follows the ADVI iteration lands near the "
           "posterior from this start")
    post_sd = np.sqrt(np.diag(post["cov_zeta"]))
    off = np.abs(mu - post["mean_zeta"]) / post_sd
    if np.any(off > MU_TOL_SD):
        i = int(np.argmax(off))
        raise Failed(f"{described} mu = {np.array2string(mu, precision=4)}; the exact posterior mean is "
                     f"{np.array2string(post['mean_zeta'], precision=4)} (coordinate {i} is {off[i]:.2f} posterior "
                     f"standard deviations away, more than {MU_TOL_SD})", why=why)
    if loop.family == "mean_field":
        if np.any(np.abs(second - best["omega"]) > OMEGA_TOL):
            raise Failed(f"{described} omega = {np.array2string(second, precision=3)}; the best mean-field "
                         f"Gaussian has omega = {np.array2string(best['omega'], precision=3)}", why=why)
        elbo = float(theory.exact_elbo_mean_field(mu, second, x, y))
    else:
        if np.abs(np.triu(second, 1)).max() > 0:
            raise Failed(f"{described} L has non-zero entries above the diagonal",
                         why="L must stay lower triangular: its gradient is zero above the diagonal")
        cov = second @ second.T
        corr = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
        if abs(corr - post["corr_b"]) > CORR_TOL:
            raise Failed(f"{described} the correlation of b0 and b1 under q is {corr:.3f}; under the exact "
                         f"posterior it is {post['corr_b']:.3f}", why=why)
        error = np.abs(cov[:2, :2] - post["cov_b"]).max() / np.abs(post["cov_b"]).max()
        if error > COV_B_RTOL:
            raise Failed(f"{described} the covariance of (b0, b1) under q, L L^T = "
                         f"{np.array2string(cov[:2, :2], precision=4)}, is {error:.0%} away from the exact "
                         f"posterior covariance {np.array2string(post['cov_b'], precision=4)}", why=why)
        elbo = float(theory.exact_elbo_full_rank(mu, second, x, y))
    if best["elbo"] - elbo > GAP_TOL[loop.family]:
        raise Failed(f"{described} the exact ELBO of q is {elbo:.3f}, {best['elbo'] - elbo:.2f} below the best "
                     f"possible {best['elbo']:.3f}", why=why)


# =============================================================================== the checks
LOOP_HINTS = ("Per iteration: draw eta, record the ELBO, compute the gradients, one step_size call per parameter "
              "(each with its own running average s), then ascend: parameter + rho * gradient.",
              "k starts at 1; s_prev is None the first time and the returned s afterwards.")
for _loop in (MEAN_FIELD, FULL_RANK):
    _second = "omega" if _loop.family == "mean_field" else "L"
    check(_loop.name, f"returns (mu, {_second}, elbo_trace) with the right shapes", 1, hints=LOOP_HINTS)(
        lambda ctx, iso, loop=_loop: _shapes_check(ctx, iso, loop))
    check(_loop.name, "follows the ADVI iteration step by step", 3, hints=LOOP_HINTS)(
        lambda ctx, iso, loop=_loop: _replay_check(ctx, iso, loop))
    check(_loop.name, "fits the posterior from a warm start", 3, timeout=FIT_SECONDS, hints=LOOP_HINTS)(
        lambda ctx, iso, loop=_loop: _fit_check(ctx, iso, loop))
    check(_loop.name, "the rng argument makes runs repeatable", 1,
          hints=("rng = np.random.default_rng(rng) at the top, then rng.standard_normal((n_draws, 3)) "
                 "each iteration.",))(
        lambda ctx, iso, loop=_loop: _reproducible_check(ctx, iso, loop))
