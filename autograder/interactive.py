"""The notebooks' import path for interactivity: progress bars, the EM slider, the set-up.

In a notebook::

    from autograder.interactive import progress_bar, iteration_slider

    for restart in progress_bar(range(restarts), desc="restarts"):   # a bar while the student waits
        ...

    def draw(frame, fig):               # draws one saved state on a matplotlib Figure (or SubFigure)
        ax = fig.subplots()
        ax.imshow(frame["face"])

    iteration_slider(frames, draw)      # a slider (and a play button) through the saved states

and the set-up cell calls ``interactive.setup("<id>", install=...)``. The code lives in
``autograder.notebook`` (one module per job: ``kernel``, ``progress``, ``slider``, ``environment``)
and the quiet switch in ``autograder.quiet``; this module only names them, so the notebooks, the
reference modules and the README keep one path (the sandbox replaces exactly this module with a
silent stand-in, ``sandbox/guest/interactive.py``, while a submission is graded).
"""

from __future__ import annotations

from .extras import DISTRIBUTION
from .notebook.environment import assignment_requirements, missing_requirements, setup
from .notebook.kernel import in_colab, in_kernel, widgets_available
from .notebook.progress import progress_bar
from .notebook.slider import WIDGET_VIEW, first_and_last_png, iteration_slider, render_png, slider_widget, snapshot_grid
from .quiet import QUIET_ENV, is_quiet, quiet

__all__ = ["progress_bar", "iteration_slider", "snapshot_grid", "slider_widget", "first_and_last_png",
           "quiet", "is_quiet", "in_kernel", "in_colab", "widgets_available", "setup", "assignment_requirements",
           "missing_requirements", "render_png", "DISTRIBUTION", "QUIET_ENV", "WIDGET_VIEW"]
