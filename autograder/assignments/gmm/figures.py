"""Pictures for the feedback report (see ``autograder.reporting.figures``).

The student's clusters against the reference's: both run the same EM iterations from the
notebook's starting point on the notebook's data, with the student's ``E_step`` and ``M_step``
on the left and the reference's on the right.
"""

from __future__ import annotations

import numpy as np

from .fixtures import sample

ITERATIONS = 30


def figures(call, reference):
    """[(caption, matplotlib Figure)]. ``call(name, *args)`` runs the student's function."""
    from matplotlib.figure import Figure

    s = sample()
    X, pi0, mu0, sigma0 = s["data"], s["pi0"], s["mu0"], s["sigma0"]
    N, d = X.shape
    C = pi0.shape[0]

    def student_e(pi, mu, sigma):
        gamma = np.asarray(call("E_step", X, pi, mu, sigma), dtype=float)
        if gamma.shape != (N, C) or not np.all(np.isfinite(gamma)):
            raise ValueError(f"your E_step returned an array of shape {gamma.shape} with "
                             f"{int(np.sum(~np.isfinite(gamma)))} non-finite values")
        return gamma

    def student_m(gamma):
        pi, mu, sigma = (np.asarray(v, dtype=float) for v in call("M_step", X, gamma))
        if pi.shape != (C,) or mu.shape != (C, d) or sigma.shape != (C, d, d):
            raise ValueError("your M_step returned parameters of the wrong shapes")
        return pi, mu, sigma

    mine, failure = _iterate(student_e, student_m, pi0, mu0, sigma0)
    theirs, _ = _iterate(lambda *p: reference.E_step(X, *p), lambda g: reference.M_step(X, g), pi0, mu0, sigma0)
    fig = Figure(figsize=(9.5, 4.3), dpi=80)
    axes = fig.subplots(1, 2)
    if mine is None:
        axes[0].text(0.5, 0.5, "no clusters to show:\n" + failure, ha="center", va="center", wrap=True,
                     transform=axes[0].transAxes)
        axes[0].set_axis_off()
    else:
        done = ITERATIONS if failure is None else mine[3]
        _panel(axes[0], X, *mine[:3], f"your E_step and M_step ({done} iterations)")
        if failure is not None:
            axes[0].set_xlabel("then: " + failure[:70], color="tab:red")
    _panel(axes[1], X, *theirs[:3], f"reference ({ITERATIONS} iterations)")
    if mine is not None:
        axes[0].set_xlim(axes[1].get_xlim())
        axes[0].set_ylim(axes[1].get_ylim())
    fig.tight_layout()
    return [(f"Clusters after {ITERATIONS} EM iterations from the notebook's starting point (colour: the "
             "most likely component of each point; ellipses: two standard deviations of each component)",
             fig)]


def _iterate(e_step, m_step, pi, mu, sigma):
    """(gamma, mu, sigma, iterations done) of the last good state, and the failure or None."""
    state = None
    try:
        gamma = e_step(pi, mu, sigma)
        state = (gamma, mu, sigma, 0)
        for iteration in range(1, ITERATIONS + 1):
            pi, mu, sigma = m_step(gamma)
            gamma = e_step(pi, mu, sigma)
            state = (gamma, mu, sigma, iteration)
    except Exception as exc:  # noqa: BLE001 - the picture shows how far the student's EM got
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return state, message.splitlines()[0][:200]
    return state, None


def _panel(ax, X, gamma, mu, sigma, title):
    from matplotlib.patches import Ellipse

    colours = np.array(["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"])
    labels = np.argmax(gamma, axis=1) % len(colours)
    ax.scatter(X[:, 0], X[:, 1], c=colours[labels], s=8, alpha=0.6, linewidths=0)
    for c in range(mu.shape[0]):
        values, vectors = np.linalg.eigh(sigma[c][:2, :2])
        values = np.clip(values, 0, None)
        angle = np.degrees(np.arctan2(vectors[1, -1], vectors[0, -1]))
        ax.add_patch(Ellipse(mu[c, :2], 4 * np.sqrt(values[-1]), 4 * np.sqrt(values[0]), angle=angle,
                             fill=False, color=colours[c % len(colours)], linewidth=2))
        ax.plot(mu[c, 0], mu[c, 1], "k+", markersize=10)
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="box")
