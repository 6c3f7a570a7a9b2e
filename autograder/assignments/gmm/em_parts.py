"""EM building blocks handed to the student's debugging assertions, correct and broken.

Every part runs in the grader's process (the student's assertion calls it back) and records what
it was asked and what it answered, so that a check can say *why* an assertion stayed quiet or
fired: which half-steps it evaluated, whether its perturbations stayed inside the model, how far
the bound moved when it did not raise. Arguments are bound by the parts' signatures (positional
or keyword), and values are what a plain numpy implementation returns (float64 arrays and
numpy scalars); a covariance that is not symmetric positive definite raises LinAlgError, as a
Cholesky factorisation would.

Round-off is created, not hoped for: a part may add a deterministic relative perturbation of
order 1e-13 to the values it returns, far below any sensible tolerance but far above the
differences exact arithmetic leaves, so an assertion that compares with no slack is exposed on
every machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ...sandbox import AbortCall
from . import ASSIGNMENT, theory
from .fixtures import sample

ROUND_OFF = 1e-13   # relative size of the created round-off

_SIGNATURES = {name: ASSIGNMENT.task(name) for name in ("E_step", "M_step", "compute_vlb", "log_likelihood")}


@dataclass
class Event:
    kind: str                       # "E", "M", "vlb", "ll", "fit"
    inputs: dict
    output: object = None
    note: dict = field(default_factory=dict)


class Recorder:
    """A list of the calls the parts received, in order."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.kind == kind]


def _in_model(pi, sigma) -> str:
    """'' when (pi, sigma) are valid mixture parameters, else what is wrong."""
    pi, sigma = np.asarray(pi, dtype=float), np.asarray(sigma, dtype=float)
    if pi.ndim != 1 or np.any(pi < 0) or not np.isclose(pi.sum(), 1.0, rtol=0, atol=1e-8):
        return f"weights that are not a distribution (they sum to {pi.sum():.6g}, smallest {pi.min():.3g})"
    for c in range(len(sigma)):
        if not np.allclose(sigma[c], sigma[c].T, rtol=1e-10, atol=1e-14 * np.abs(sigma[c]).max()):
            return f"a covariance sigma[{c}] that is not symmetric"
        if np.linalg.eigvalsh(sigma[c]).min() <= 0:
            return f"a covariance sigma[{c}] that is not positive definite"
    return ""


def _identical(a, b) -> bool:
    try:
        return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(a, b)) and len(a) == len(b)
    except (TypeError, ValueError):
        return False


class Parts:
    """E_step, M_step, compute_vlb and log_likelihood for one scenario, recording every call.

    Parameters
    ----------
    e_step, m_step, bound, log_likelihood : callables
        What the parts compute (theory's exact steps unless a bug is swapped in).
    round_off : {"", "alternate", "optimum", "likelihood"}
        Created round-off: "alternate" perturbs the k-th bound by (-1)^k ROUND_OFF (relative);
        "optimum" lowers the bound of the M-step's own output and raises every other; "likelihood"
        lowers the log-likelihood, so that it sits just below the bound after an exact E-step.
    """

    def __init__(self, e_step=None, m_step=None, bound=None, log_likelihood=None, round_off: str = "",
                 drop_after: str = "") -> None:
        self._e = e_step or theory.posterior
        self._m = m_step or theory.m_step
        self._bound = bound or theory.bound
        self._ll = log_likelihood or theory.log_likelihood
        self.round_off = round_off
        self.drop_after = drop_after
        self.record = Recorder()

    def functions(self) -> tuple:
        return self.E_step, self.M_step, self.compute_vlb, self.log_likelihood

    def E_step(self, *args, **kwargs):
        a = _SIGNATURES["E_step"].bind(args, kwargs)
        params = tuple(np.asarray(a[k], dtype=float) for k in ("pi", "mu", "sigma"))
        with np.errstate(all="ignore"):
            gamma = np.asarray(self._e(np.asarray(a["X"], dtype=float), *params), dtype=float)
        self.record.events.append(Event("E", {"params": params}, gamma))
        return gamma

    def M_step(self, *args, **kwargs):
        a = _SIGNATURES["M_step"].bind(args, kwargs)
        gamma = np.asarray(a["gamma"], dtype=float)
        with np.errstate(all="ignore"):
            out = tuple(np.asarray(p, dtype=float) for p in self._m(np.asarray(a["X"], dtype=float), gamma))
        self.record.events.append(Event("M", {"gamma": gamma}, out))
        return out

    def compute_vlb(self, *args, **kwargs):
        a = _SIGNATURES["compute_vlb"].bind(args, kwargs)
        X = np.asarray(a["X"], dtype=float)
        params = tuple(np.asarray(a[k], dtype=float) for k in ("pi", "mu", "sigma"))
        gamma = np.asarray(a["gamma"], dtype=float)
        event = Event("vlb", {"params": params, "gamma": gamma})
        self.record.events.append(event)
        event.note["outside"] = _in_model(params[0], params[2])
        event.note["after"] = self._classify(event)
        k = len(self.record.of("vlb")) - 1
        if self.drop_after:
            value = self._scripted(event)
            event.output = value
            return np.float64(value)
        with np.errstate(all="ignore"):
            value = float(self._bound(X, *params, gamma))
        if self.round_off == "alternate":
            value += (-1) ** k * ROUND_OFF * abs(value)
        elif self.round_off == "optimum":
            value += (-1 if event.note["after"] == "M" else 1) * ROUND_OFF * abs(value)
        event.output = value
        return np.float64(value)

    def _scripted(self, event: Event) -> float:
        """A diagnostic bound: -2000 first, then rising by 1 per call, except that the second bound
        computed right after a ``drop_after`` half-step ("E" or "M") drops by 60 % (staying above
        the first value): which drops an assertion notices tells what it compares."""
        bounds = self.record.of("vlb")
        if len(bounds) == 1:
            return -2000.0
        same_kind = [e for e in bounds[1:] if e.note.get("after") == self.drop_after]
        if event.note.get("after") == self.drop_after and len(same_kind) == 2:
            return -1600.0
        return -1000.0 + len(bounds)

    def log_likelihood(self, *args, **kwargs):
        a = _SIGNATURES["log_likelihood"].bind(args, kwargs)
        params = tuple(np.asarray(a[k], dtype=float) for k in ("pi", "mu", "sigma"))
        with np.errstate(all="ignore"):
            value = float(self._ll(np.asarray(a["X"], dtype=float), *params))
        if self.round_off == "likelihood":
            value -= ROUND_OFF * abs(value)
        self.record.events.append(Event("ll", {"params": params}, value))
        return np.float64(value)

    def _classify(self, event: Event) -> str:
        """Where a bound was computed: right after an E-step ("E"), right after an M-step ("M"),
        at an E-step's input before any M-step ("start"), or elsewhere ("other")."""
        params, gamma = event.inputs["params"], event.inputs["gamma"]
        for previous in reversed(self.record.events[:-1]):
            if previous.kind == "M" and _identical(previous.output, params) and \
                    np.array_equal(previous.inputs["gamma"], gamma):
                return "M"
            if previous.kind == "E" and np.array_equal(previous.output, gamma) and \
                    _identical(previous.inputs["params"], params):
                return "E"
        return "other"


# ----------------------------------------------------------------------------- broken parts
def m_step_doubling_covariances(X, gamma):
    pi, mu, sigma = theory.m_step(X, gamma)
    return pi, mu, 2.0 * sigma


def m_step_uncentred_covariances(X, gamma):
    """Scatter around the origin instead of around the new mean."""
    pi, mu, _ = theory.m_step(X, gamma)
    weights = gamma.sum(axis=0)
    sigma = np.einsum("nc,nd,ne->cde", gamma, X, X) / weights[:, None, None]
    return pi, mu, sigma


def m_step_uniform_weights(X, gamma):
    _, mu, sigma = theory.m_step(X, gamma)
    return np.full(gamma.shape[1], 1.0 / gamma.shape[1]), mu, sigma


def m_step_means_divided_by_n(X, gamma):
    pi, _, _ = theory.m_step(X, gamma)
    mu = gamma.T @ X / len(X)
    diff = X[:, None, :] - mu[None]
    sigma = np.einsum("nc,ncd,nce->cde", gamma, diff, diff) / gamma.sum(axis=0)[:, None, None]
    return pi, mu, sigma


def e_step_tempered(temperature: float):
    """A softmax at the wrong temperature: not the posterior."""
    def e_step(X, pi, mu, sigma):
        return theory.tempered_posterior(X, pi, mu, sigma, temperature)
    e_step.__name__ = f"e_step_tempered_{temperature:g}"
    return e_step


def vlb_without_entropy(X, pi, mu, sigma, gamma):
    return theory.expected_complete(X, pi, mu, sigma, gamma)


def vlb_plus_kl(X, pi, mu, sigma, gamma):
    """log p(X) + KL(q || posterior): the identity log p(X) = L + KL read backwards.

    Tight after an exact E-step, above the log-likelihood everywhere else.
    """
    from scipy.special import xlogy
    log_post = theory.log_joint(X, pi, mu, sigma)
    log_post = log_post - np.logaddexp.reduce(log_post, axis=1, keepdims=True)
    kl = float(np.sum(xlogy(gamma, gamma)) - np.sum(np.where(gamma > 0, gamma * log_post, 0.0)))
    return theory.log_likelihood(X, pi, mu, sigma) + kl


# ----------------------------------------------------------------------------- starting points
def notebook_start():
    s = sample()
    return s["data"], s["pi0"], s["mu0"], s["sigma0"]


def overlapping_start():
    """Components that all overlap: the posterior is uncertain, so its entropy is a large part of
    the bound (a tolerance loose enough to miss a missing entropy is exposed)."""
    X = sample()["data"]
    C = 3
    mu = X.mean(axis=0) + 0.1 * np.arange(C)[:, None] * X.std(axis=0)
    return X, np.full(C, 1.0 / C), mu, np.repeat(np.cov(X, rowvar=False)[None], C, axis=0)


@lru_cache(maxsize=1)
def converged_start():
    """The notebook's data and the maximum-likelihood mixture EM converges to from its start:
    further iterations change the bound by less than 1e-15 (relative)."""
    X, pi, mu, sigma = notebook_start()
    return (X, *theory.run_em(X, pi, mu, sigma, n_iter=5000, rtol=1e-15))


def small_variance_start():
    """The notebook's data shrunk 100 times (variances near 1e-4), with the posterior at its start."""
    X, pi, mu, sigma = notebook_start()
    return X * 0.01, pi, mu * 0.01, sigma * 1e-4


# ----------------------------------------------------------------------------- train_EM stand-ins
def _match(mu_true, mu_est):
    """For each true component, the index of its nearest estimated mean (a permutation when possible)."""
    from itertools import permutations
    C = len(mu_true)
    cost = ((mu_true[:, None, :] - mu_est[None, :, :]) ** 2).sum(axis=2)
    if C <= 6:
        return np.array(min(permutations(range(C)), key=lambda p: sum(cost[i, p[i]] for i in range(C))))
    return np.argmin(cost, axis=1)


class Fitter:
    """A correct (or deliberately broken) train_EM for the recovery assertion, recording each call.

    It fits by EM started from the true parameters (the maximum-likelihood mixture nearest to the
    truth: a correct EM that found the right optimum), and returns the components in an order
    that changes from call to call, as a real train_EM's random starts do.

    Parameters
    ----------
    truth : (pi, mu, sigma)
        The parameters the assertion was given.
    bug : callable, optional
        ``bug(pi, mu, sigma) -> (pi, mu, sigma)`` applied to each fit.
    order : {"rotate", "fixed", "truth"}
        "rotate": a different order in every call; "fixed": the same (reversed) order in every
        call; "truth": the true components' order.
    max_calls : int, optional
        The most calls the assertion may make: one more stops it at once (``AbortCall``, with
        ``RETRIES_WHY`` as the verdict), so an assertion that retries until the parameters are
        recovered ends here instead of at its time-out.
    """

    def __init__(self, truth, bug=None, order: str = "rotate", max_calls: int | None = None) -> None:
        self.truth = tuple(np.asarray(t, dtype=float) for t in truth)
        self.bug = bug
        self.order = order
        self.max_calls = max_calls
        self.calls: list[dict] = []

    def __call__(self, *args, **kwargs):
        if self.max_calls is not None and len(self.calls) >= self.max_calls:
            raise AbortCall(f"it called train_EM {self.max_calls + 1} times without deciding (it neither "
                            "returned nor raised AssertionError)", verdict=RETRIES_WHY)
        a = ASSIGNMENT.task("train_EM").bind(args, kwargs)
        X = np.asarray(a["X"], dtype=float)
        C = int(a["C"])
        pi, mu, sigma = self.truth
        if C != len(pi) or X.ndim != 2 or X.shape[1] != mu.shape[1]:
            rng = np.random.default_rng(len(X))
            pi, mu = np.full(C, 1.0 / C), X[rng.choice(len(X), C, replace=False)]
            sigma = np.repeat(np.atleast_2d(np.cov(X, rowvar=False))[None], C, axis=0)
        with np.errstate(all="ignore"):
            fit = theory.run_em(X, pi, mu, sigma, n_iter=6, rtol=1e-8)
            loss = theory.bound(X, *fit, theory.posterior(X, *fit))
        if self.bug is not None:
            fit = self.bug(*fit)
        k = len(self.calls)
        C = len(fit[0])
        perm = {"rotate": np.roll(np.arange(C)[::-1], k), "fixed": np.arange(C)[::-1],
                "truth": np.arange(C)}[self.order]
        out = tuple(np.ascontiguousarray(p[perm]) for p in fit)
        self.calls.append({"X": X, "fit": fit, "returned": out})
        return np.float64(loss), *out


RETRIES_WHY = ("an assertion must decide in a bounded number of attempts: fit each of the n_datasets simulated "
               "data sets once (or retry a few times at most), then return or raise AssertionError. Retrying "
               "with fresh data until the parameters are recovered never ends on a broken train_EM, which is "
               "exactly what the assertion is there to catch")


def shifted_means(pi, mu, sigma, amount: float = 1.0):
    """Every mean moved by ``amount`` standard deviations of its component, in every dimension."""
    return pi, mu + amount * np.sqrt(np.diagonal(sigma, axis1=1, axis2=2)), sigma


def covariances_divided_by_n(pi, mu, sigma):
    return pi, mu, sigma * pi[:, None, None]


def uniform_weights(pi, mu, sigma):
    return np.full(len(pi), 1.0 / len(pi)), mu, sigma


def scaled(truth, factor: float):
    pi, mu, sigma = truth
    return pi, mu * factor, sigma * factor**2


@lru_cache(maxsize=1)
def notebook_fit():
    """The mixture the notebook's own cell simulates from: EM's optimum on the notebook's data."""
    from ...datasets import gmm
    X = sample()["data"]
    return theory.run_em(X, gmm.TRUE_PI, gmm.TRUE_MU, gmm.TRUE_SIGMA, n_iter=5000, rtol=1e-14)


def unequal_truth():
    """The course data's mixture with more unequal weights, so uniform weights are far off.

    The broken scenarios simulate from it. Uniform weights are off by 0.6 - 1/3 = 0.267 (1.8 tol).
    The other two components share the rest equally because the smallest one's points decide the
    stand-in's noise in the parameters a bug leaves alone, which must stay below tol: otherwise an
    assertion that ignores the broken parameter raises on noise and earns its point. Measured with
    ``benchmarks/bench_recovery_power.py --seeds 400 --weights ...`` (largest covariance error over
    400 seeds): 0.6/0.3/0.1 0.175 (above tol for 1 % of seeds), 0.6/0.2/0.2 0.138, 0.2/0.6/0.2
    0.141, 0.2/0.2/0.6 0.150.
    """
    from ...datasets import gmm
    return np.array([0.6, 0.2, 0.2]), gmm.TRUE_MU, gmm.TRUE_SIGMA


def recovery_errors(calls: list[dict], truth) -> dict:
    """The averaged estimates' errors, in the units the notebook states, after matching each fit."""
    pi, mu, sigma = truth
    matched = []
    for call in calls:
        est = call["returned"]
        if len(est[0]) != len(pi):
            continue
        order = _match(mu, est[1])
        matched.append(tuple(p[order] for p in est))
    if not matched:
        return {}
    mean_pi, mean_mu, mean_sigma = (np.mean(parts, axis=0) for parts in zip(*matched))
    s = np.sqrt(np.diagonal(sigma, axis1=1, axis2=2))          # (C, d)
    return {"pi": float(np.abs(mean_pi - pi).max()),
            "mu": float((np.abs(mean_mu - mu) / s).max()),
            "sigma": float((np.abs(mean_sigma - sigma) / (s[:, :, None] * s[:, None, :])).max())}
