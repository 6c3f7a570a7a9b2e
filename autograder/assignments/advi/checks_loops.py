"""Checks of the ADVI loops, advi_mean_field and advi_full_rank.

A loop is judged by watching it work. Its calls to the ELBO and gradient functions go to recording
stand-ins (the reference when grading, the student's own functions on their machine); the checks
then replay the recorded iterations: fresh standard-normal draws every iteration, the trace is the
ELBO the stand-in returned, and every update is ``parameter + rho * gradient`` with ADVI's step
size. This accepts any correct way of drawing the randomness (another generator method, another
layout, draws made elsewhere), because only the draws the loop actually used are looked at.

Separately, a longer run from a warm start must land near the exact posterior: the tolerances
below hold for every seed tried (see tests/test_advi_checks.py), so a correct loop passes whatever
random numbers it draws.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

from ...engine import Failed, expect
from . import ASSIGNMENT, theory
from .fixtures import L_PROBE, MU_PROBE, OMEGA_PROBE, sample
from .judging import Isolation

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

REPLAY_RTOL = 1e-10         # an update recomputed from the recorded gradient, in float64
USE_THE_FUNCTIONS = ("{loop} must call {elbo} and {grad} (by those names) once per iteration, with the "
                     "iteration's draws eta of shape (n_draws, 3): the checks follow the iterations through "
                     "these calls")


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


class Recorder:
    """A stand-in that records the parameters and draws of every call, then delegates to ``target``.

    Recorders of one run share ``busy``: a call made from inside another recorded call (a gradient
    that differentiates the student's own ELBO, on their machine) is passed through, not recorded.
    """

    _SIGNATURE = inspect.Signature([inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                                    for n in ("mu", "second", "eta", "x", "y")])

    def __init__(self, name: str, target, busy: list) -> None:
        self.__name__ = name
        self.target = target
        self.calls: list[dict] = []
        self.busy = busy

    def __call__(self, *args, **kwargs):
        if self.busy:
            return self.target(*args, **kwargs)
        self.busy.append(self.__name__)
        try:
            return self._record(*args, **kwargs)
        finally:
            self.busy.pop()

    def _record(self, *args, **kwargs):
        record = {"mu": None, "second": None, "eta": None, "result": None}
        try:
            bound = self._SIGNATURE.bind(*args, **kwargs).arguments
            record.update({k: np.array(bound[k], dtype=float) for k in ("mu", "second", "eta")})
        except (TypeError, ValueError):
            pass  # an odd call: recorded as such, the replay explains it
        self.calls.append(record)
        result = self.target(*args, **kwargs)
        try:
            record["result"] = (tuple(np.array(r, dtype=float) for r in result) if isinstance(result, (tuple, list))
                                else float(result))
        except (TypeError, ValueError):
            pass
        return result


def _data():
    s = sample()
    return s["x"], s["y"]


def _unpack(value, loop: Loop, n_iter: int):
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise Failed(f"{loop.name} should return (mu, {loop.second}, elbo_trace) but returned "
                     + expect.describe_value(value))
    mu = expect.array(value[0], f"mu returned by {loop.name}", shape=(3,))
    second = expect.array(value[1], f"{loop.second} returned by {loop.name}", shape=loop.shape)
    trace = expect.array(value[2], f"elbo_trace returned by {loop.name}", shape=(n_iter,),
                         why_nonfinite="the ELBO estimates of a correct run stay finite: is the learning rate "
                                       "or the initialisation off?")
    return mu, second, trace


def _watched_run(ctx, loop: Loop, timeout: float | None = None, **settings):
    """Run the loop with recording stand-ins; return (mu, second, trace, gradient calls, elbo calls)."""
    iso = Isolation(ctx)
    busy: list = []
    grads = Recorder(loop.grad, ctx.stand_in(loop.grad), busy)
    elbos = Recorder(loop.elbo, ctx.stand_in(loop.elbo), busy)
    x, y = _data()
    value = iso.call(loop.name, x, y, extra={loop.grad: grads, loop.elbo: elbos}, timeout=timeout, **settings)
    differentiated = iso.own & {loop.elbo, loop.grad, "log_joint_zeta", "log_joint"}
    if differentiated:
        raise Failed(f"{loop.name} differentiates {', '.join(sorted(differentiated))} with autograd itself",
                     why=f"the gradient is {loop.grad}'s job: " + loop.use_the_functions())
    mu, second, trace = _unpack(value, loop, settings["n_iter"])
    return mu, second, trace, grads.calls, elbos.calls


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
    return a.shape == b.shape and np.allclose(a, b, rtol=REPLAY_RTOL, atol=1e-12 * max(np.abs(b).max(), 1.0))


def _update_why(loop: Loop, k, param, gradient, got, state, lr, name) -> str:
    rho, _ = theory.step_size(gradient, state, k, lr)
    fresh, _ = theory.step_size(gradient, None, 1, lr)
    alternatives = {
        "it moved against the gradient: ADVI maximises the ELBO, so the update is parameter + rho * gradient":
            param - rho * gradient,
        "the step size starts afresh every iteration: keep s between iterations (s_prev = the s of the "
        "previous step_size call, one running average per parameter) and pass the iteration number k":
            param + fresh * gradient,
        "the step size starts afresh every iteration: keep s between iterations (s_prev = the s of the "
        "previous step_size call, one running average per parameter)":
            param + fresh * k ** -0.5 * gradient,
        "the adaptive step size is missing: rho = step_size(...)[0], not the learning rate itself":
            param + lr * gradient,
        "the iteration number k passed to step_size must start at 1 and grow by one per iteration":
            param + theory.step_size(gradient, state, k + 1, lr)[0] * gradient,
    }
    for why, value in alternatives.items():
        if _close(got, value):
            return why
    return (f"each iteration: {name} <- {name} + rho * grad_{name} with rho, s = step_size(grad_{name}, s_prev, k, "
            "learning_rate), k = 1, 2, ... and a separate running average s for each parameter (the check "
            "recomputes the step sizes with a correct step_size: if yours fails its own checks, fix it first)")


def _replay(loop: Loop, grad_calls, elbo_calls, init, final, trace, n_iter, n_draws, lr) -> None:
    """Raise Failed at the first way the recorded run differs from the ADVI iteration."""
    settings = f"(n_iter={n_iter}, n_draws={n_draws}, learning_rate={lr})"
    for calls, name in ((grad_calls, loop.grad), (elbo_calls, loop.elbo)):
        if len(calls) != n_iter:
            raise Failed(f"with n_iter={n_iter}, {loop.name} called {name} {len(calls)} times", why=loop.use_the_functions())
        for k, call in enumerate(calls, start=1):
            if call["eta"] is None or call["eta"].ndim != 2 or call["eta"].shape[1] != 3:
                raise Failed(f"at iteration {k}, {name} was called without draws eta of shape (n_draws, 3)",
                             why=loop.use_the_functions())
    draws = [c["eta"] for c in grad_calls]
    for k, eta in enumerate(draws, start=1):
        if eta.shape != (n_draws, 3):
            raise Failed(f"at iteration {k} the draws passed to {loop.grad} have shape {eta.shape}; with "
                         f"n_draws={n_draws} they should have shape ({n_draws}, 3)",
                         why="one draw per row: eta = rng.standard_normal((n_draws, 3))")
        if k > 1 and np.array_equal(eta, draws[k - 2]):
            raise Failed(f"iterations {k - 1} and {k} used the same draws eta",
                         why="draw fresh standard-normal numbers every iteration: the gradient estimates must be "
                             "independent for stochastic optimisation to converge")
    # The ELBO may be estimated with the gradient's draws (as documented) or with draws of its own.
    separate = [e["eta"].ravel() for e, g in zip(elbo_calls, grad_calls) if not np.array_equal(e["eta"], g["eta"])]
    samples = [("the gradient's draws", np.array(draws))]
    if separate:
        samples.append(("the ELBO's draws", np.concatenate(separate)))
    for what, sample_draws in samples:
        ok, mean, var = _looks_standard_normal(sample_draws)
        if not ok:
            raise Failed(f"{what} of the {n_iter} iterations do not look standard normal (mean {mean:.3g}, "
                         f"variance {var:.3g} over {sample_draws.size} numbers, or the wrong shape of "
                         "distribution)",
                         why="eta ~ N(0, I): rng.standard_normal((n_draws, 3)); the reparameterisation "
                             "zeta = mu + ... eta needs standard-normal eta")
    # The parameters each iteration evaluated, and the updates between them.
    params = [(c["mu"], c["second"]) for c in grad_calls]
    names = ("mu", loop.second)
    for value, start, name in zip(params[0], init, names):
        if not _close(value, start):
            raise Failed(f"the first iteration used {name} = {np.array2string(value, precision=4)}, but the run "
                         f"started from {name} = {np.array2string(np.asarray(start), precision=4)}",
                         why=f"start from mu_init and {loop.second}_init when given; by default mu = 0 and "
                             + ("omega = 0" if loop.family == "mean_field" else "L = the identity"))
    for k, (g_call, e_call) in enumerate(zip(grad_calls, elbo_calls), start=1):
        for value, expected, name in zip((e_call["mu"], e_call["second"]), params[k - 1], names):
            if not _close(value, expected):
                raise Failed(f"at iteration {k} the ELBO was evaluated at another {name} than the gradient",
                             why="record the ELBO of the current q, before the update, at the same parameters")
        if e_call["result"] is None or not np.isclose(trace[k - 1], e_call["result"], rtol=1e-12, atol=1e-12):
            raise Failed(f"elbo_trace[{k - 1}] is {trace[k - 1]:.10g}, but {loop.elbo} returned "
                         f"{e_call['result']} at iteration {k}",
                         why="elbo_trace[k - 1] is the ELBO estimate computed at iteration k")
    states = [None, None]
    for k, call in enumerate(grad_calls, start=1):
        gradients = call["result"]
        if not isinstance(gradients, tuple) or len(gradients) != 2:
            raise Failed(f"{loop.grad} returned something unusable at iteration {k}", why=loop.use_the_functions())
        following = params[k] if k < n_iter else (final[0], final[1])
        for i, name in enumerate(names):
            rho, new_state = theory.step_size(gradients[i], states[i], k, lr)
            expected = params[k - 1][i] + rho * gradients[i]
            if not _close(following[i], expected):
                where = f"after iteration {k}" if k < n_iter else f"returned after the last iteration ({k})"
                why = _update_why(loop, k, params[k - 1][i], gradients[i], following[i], states[i], lr, name)
                if k == n_iter and _close(following[i], params[k - 1][i]):
                    why = "return the parameters after the last update, not before it"
                raise Failed(f"{name} {where} is {np.array2string(following[i], precision=6)}, but the ADVI update "
                             f"gives {np.array2string(expected, precision=6)} {settings}", why=why)
            states[i] = new_state


def _replay_check(ctx, loop: Loop):
    runs = [dict(n_iter=25, n_draws=40, learning_rate=0.3, rng=7, **loop.init_kwargs(MU_PROBE, loop.probe_second())),
            dict(n_iter=3, n_draws=2, learning_rate=0.4, rng=1)]
    for settings in runs:
        mu, second, trace, grad_calls, elbo_calls = _watched_run(ctx, loop, **settings)
        init = (settings.get("mu_init", np.zeros(3)), settings.get(f"{loop.second}_init", loop.default_second()))
        _replay(loop, grad_calls, elbo_calls, init, (mu, second), trace, settings["n_iter"], settings["n_draws"],
                settings["learning_rate"])


def _shapes_check(ctx, loop: Loop):
    _watched_run(ctx, loop, n_iter=5, n_draws=3, learning_rate=0.2, rng=0,
                 **loop.init_kwargs(MU_WARM, loop.probe_second()))


def _reproducible_check(ctx, loop: Loop):
    iso = Isolation(ctx)
    x, y = _data()
    settings = dict(n_iter=8, n_draws=3, learning_rate=0.2, **loop.init_kwargs(MU_WARM, loop.probe_second()))
    first, again, other = (_unpack(iso.call(loop.name, x, y, rng=seed, **settings), loop, 8) for seed in (3, 3, 4))
    if not all(np.array_equal(a, b) for a, b in zip(first, again)):
        raise Failed(f"two runs of {loop.name} with rng=3 gave different results",
                     why="draw every random number from np.random.default_rng(rng): the same seed must give the "
                         "same run (experiments must be repeatable)")
    if np.array_equal(first[0], other[0]):
        raise Failed(f"runs of {loop.name} with rng=3 and rng=4 gave the same mu",
                     why="the draws must come from np.random.default_rng(rng), so that the seed changes them")


def _fit_check(ctx, loop: Loop):
    post = theory.assignment_answers()["posterior"]
    best = theory.assignment_answers()[loop.family]
    x, y = _data()
    settings = dict(FIT_SETTINGS, rng=int(ctx.rng.integers(1_000_000)), mu_init=MU_WARM)
    iso = Isolation(ctx)
    mu, second, trace = _unpack(iso.call(loop.name, x, y, **settings), loop, FIT_SETTINGS["n_iter"])
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
for _loop in (MEAN_FIELD, FULL_RANK):
    _second = "omega" if _loop.family == "mean_field" else "L"
    ASSIGNMENT.check(_loop.name, f"returns (mu, {_second}, elbo_trace) with the right shapes", 1, timeout=60)(
        lambda ctx, loop=_loop: _shapes_check(ctx, loop))
    ASSIGNMENT.check(_loop.name, "follows the ADVI iteration step by step", 3, timeout=60,
                     hints=("Per iteration: draw eta, record the ELBO, compute the gradients, one step_size call "
                            "per parameter (each with its own running average s), then ascend: "
                            "parameter + rho * gradient.",
                            "k starts at 1; s_prev is None the first time and the returned s afterwards."))(
        lambda ctx, loop=_loop: _replay_check(ctx, loop))
    ASSIGNMENT.check(_loop.name, "fits the posterior from a warm start", 3, timeout=150)(
        lambda ctx, loop=_loop: _fit_check(ctx, loop))
    ASSIGNMENT.check(_loop.name, "the rng argument makes runs repeatable", 1, timeout=60,
                     hints=("rng = np.random.default_rng(rng) at the top, then rng.standard_normal((n_draws, 3)) "
                            "each iteration.",))(
        lambda ctx, loop=_loop: _reproducible_check(ctx, loop))
