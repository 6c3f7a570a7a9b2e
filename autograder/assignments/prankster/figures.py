"""Pictures for the feedback report (see ``autograder.reporting.figures``).

The face and the background the student's E-step and M-step recover from small camera shots,
next to the reference's: both run the same EM iterations from the same starting point (the one
``run_EM`` uses by default), so a wrong step shows as a blurred, shifted or noisy face.
"""

from __future__ import annotations

import numpy as np

from .fixtures import realistic

ITERATIONS = 15
SHOTS, SEED = 150, 7          # small shots (30 x 60, face width 22): a recognisable face in 15 steps


def figures(call, reference, **flags):
    """[(caption, matplotlib Figure)]. ``call(name, *args, **kwargs)`` runs the student's function;
    ``flags`` (``hard_EM=True`` for the hard-EM assignment) go to every step."""
    from matplotlib.figure import Figure

    shots = realistic(K=SHOTS, seed=SEED, small=True)
    X, w = shots["X"], shots["w"]
    H, W, K = X.shape

    def student_e(F, B, s, a):
        q = np.asarray(call("run_e_step", X, F, B, s, a, **flags), dtype=float)
        if q.shape != (W - w + 1, K) or not np.all(np.isfinite(q)):
            raise ValueError(f"your run_e_step returned an array of shape {q.shape} with "
                             f"{int(np.sum(~np.isfinite(q)))} non-finite values")
        return q

    def student_m(q):
        F, B, s, a = call("run_m_step", X, q, w, **flags)
        F, B = np.asarray(F, dtype=float), np.asarray(B, dtype=float)
        if F.shape != (H, w) or B.shape != (H, W):
            raise ValueError("your run_m_step returned F or B of the wrong shape")
        return F, B, float(s), np.asarray(a, dtype=float)

    start = _default_start(X.astype(float), w)
    mine, failure = _iterate(student_e, student_m, start)
    theirs, _ = _iterate(lambda *p: reference.run_e_step(X, *p, **flags),
                         lambda q: reference.run_m_step(X, q, w, **flags), start)
    fig = Figure(figsize=(9.5, 2.5), dpi=80)
    grid = fig.add_gridspec(2, 4, width_ratios=[1, 2.7, 1, 2.7])
    panels = [(mine, "yours", 0), (theirs, "reference", 2)]
    for state, who, column in panels:
        face_ax, background_ax = fig.add_subplot(grid[:, column]), fig.add_subplot(grid[:, column + 1])
        if state is None:
            background_ax.text(0.5, 0.5, "no face to show:\n" + failure, ha="center", va="center", wrap=True,
                               transform=background_ax.transAxes)
        else:
            F, B, done = state
            face_ax.imshow(F, cmap="gray")
            background_ax.imshow(B, cmap="gray")
            face_ax.set_title(f"F, {who}")
            background_ax.set_title(f"B, {who} ({done} iterations)")
            if who == "yours" and failure is not None:
                background_ax.set_xlabel("then: " + failure[:60], color="tab:red")
        face_ax.set_axis_off()
        background_ax.set_xticks([])
        background_ax.set_yticks([])
    fig.tight_layout()
    kind = "hard-EM" if flags.get("hard_EM") else "EM"
    return [(f"Face F and background B after {ITERATIONS} {kind} iterations on {SHOTS} small camera shots "
             "(30 x 60, face width 22), your run_e_step and run_m_step next to the reference's, same start", fig)]


def _default_start(X, w):
    """``run_EM``'s default initial guess: F the mean window, B the mean image, uniform a."""
    H, W, K = X.shape
    mean_image = X.mean(axis=2)
    F = np.lib.stride_tricks.sliding_window_view(mean_image, w, axis=1).mean(axis=1)
    s = float(np.sqrt(np.mean((X - mean_image[:, :, None]) ** 2)))
    return F, mean_image, s, np.full(W - w + 1, 1.0 / (W - w + 1))


def _iterate(e_step, m_step, start):
    """((F, B, iterations done) of the last good state, failure or None)."""
    F, B, s, a = start
    state = (F, B, 0)
    try:
        for iteration in range(1, ITERATIONS + 1):
            q = e_step(F, B, s, a)
            F, B, s, a = m_step(q)
            state = (F, B, iteration)
    except Exception as exc:  # noqa: BLE001 - the picture shows how far the student's EM got
        message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        return (state if state[2] else None), message.splitlines()[0][:200]
    return state, None
