"""Interactivity in the notebooks: progress bars, a slider through EM iterations, notebook set-up.

In a notebook::

    from autograder.interactive import progress_bar, iteration_slider

    for restart in progress_bar(range(restarts), desc="restarts"):   # a bar while the student waits
        ...

    def draw(frame, fig):               # draws one saved state on a matplotlib Figure (or SubFigure)
        ax = fig.subplots()
        ax.imshow(frame["face"])

    iteration_slider(frames, draw)      # a slider (and a play button) through the saved states

Everything degrades gracefully, so a notebook never depends on what the machine has:

* ``progress_bar``: a widget bar in a Jupyter kernel with ipywidgets and tqdm (Colab has both),
  a text bar in a terminal, otherwise nothing (plain iteration). It never writes to stderr
  inside a notebook, and it is **silent while the autograder's checks run** (``quiet()`` from
  ``autograder.quiet``: the student-side ``check()``, ``progress()``, the grading process; the
  sandbox child shows none either), so check cells show only their report.
* ``iteration_slider``: an ipywidgets slider in a Jupyter kernel with ipywidgets, under a static
  picture of the first and last frames that stays in the saved notebook (GitHub, nbviewer and
  nbconvert HTML cannot run the slider); elsewhere (or with ``widgets=False``) a plain matplotlib
  grid of evenly spaced snapshots.

``setup(assignment_id, install=...)`` is called by every notebook's set-up cell (see
``autograder/build/setup_cell.py``): it installs what the assignment needs beyond the package
(the package's optional dependencies named after the assignment, e.g. ``autograd`` for ``advi``)
when asked to, and turns Colab's widget manager on.

This module imports nothing heavy at import time: the grader imports it too.
"""

from __future__ import annotations

import importlib
import importlib.util
import io
import os
import re
import subprocess
import sys
from typing import Callable, Iterable, Sequence

from .quiet import QUIET_ENV, is_quiet, quiet  # noqa: F401 - re-exported: the notebooks' API

DISTRIBUTION = "em-vi-course"   # the pip distribution that ships this package

__all__ = ["progress_bar", "iteration_slider", "snapshot_grid", "slider_widget", "first_and_last_png",
           "quiet", "is_quiet", "in_kernel", "in_colab", "widgets_available", "setup", "assignment_requirements"]


# ------------------------------------------------------------------------------------ context
def in_kernel() -> bool:
    """True inside a Jupyter kernel (notebook, JupyterLab, Colab, VS Code), not a plain script."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001
        return False
    return getattr(shell, "kernel", None) is not None


def in_colab() -> bool:
    return "google.colab" in sys.modules or _find_spec("google.colab") is not None


def widgets_available() -> bool:
    """ipywidgets can be shown: a Jupyter kernel with ipywidgets installed."""
    return in_kernel() and _find_spec("ipywidgets") is not None


def _find_spec(name: str):
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):  # the parent package is missing
        return None


# ------------------------------------------------------------------------------- progress bars
class _SilentBar:
    """What ``progress_bar`` returns when no bar is shown: iterates, and accepts tqdm's calls."""

    def __init__(self, iterable=None, total=None) -> None:
        self.iterable = iterable
        self.total = total
        self.n = 0

    def __iter__(self):
        for item in self.iterable:
            yield item

    def __len__(self) -> int:
        if self.total is not None:
            return int(self.total)
        return len(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        self.n += n

    def close(self) -> None:
        pass

    def refresh(self) -> None:
        pass

    def set_description(self, *args, **kwargs) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def write(self, text: str) -> None:
        print(text)


def _bar_class():
    """The tqdm class to use here and now, or None for no bar."""
    if is_quiet() or _find_spec("tqdm") is None:
        return None
    if in_kernel():
        if _find_spec("ipywidgets") is None:
            return None  # tqdm's text fallback would write to stderr in the notebook
        from tqdm.notebook import tqdm
        return tqdm
    stream = sys.stderr
    if stream is not None and hasattr(stream, "isatty") and stream.isatty():
        from tqdm.std import tqdm
        return tqdm
    return None  # a log file, a test, the grader, the sandbox child: no bar


def progress_bar(iterable: Iterable | None = None, *, total: float | None = None, desc: str | None = None,
                 **kwargs):
    """``iterable`` with a progress bar while a student waits (``tqdm.auto`` when it fits).

    Takes tqdm's arguments (``total``, ``desc``, ``leave``, ``unit``, ...). Returns a tqdm bar, or
    an object that iterates the same way and accepts ``update``/``set_postfix``/``close`` when no
    bar is shown: no tqdm, no ipywidgets in a notebook, output that is not a terminal, or inside
    ``quiet()`` (the autograder's checks).
    """
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    bar = _bar_class()
    if bar is None:
        return _SilentBar(iterable, total)
    return bar(iterable, total=total, desc=desc, **kwargs)


# ---------------------------------------------------------------------------- EM iterations
def _snapshot_indices(n: int, count: int) -> list[int]:
    """``count`` evenly spaced indices into ``range(n)``, always including the first and last."""
    if n <= 0:
        return []
    count = max(1, min(count, n))
    if count == 1:
        return [n - 1]
    return sorted({round(k * (n - 1) / (count - 1)) for k in range(count)})


def _labels(frames: Sequence, labels: Sequence[str] | None, description: str) -> list[str]:
    if labels is None:
        return [f"{description} {i}" for i in range(len(frames))]
    if len(labels) != len(frames):
        raise ValueError(f"{len(labels)} labels for {len(frames)} frames")
    return [str(label) for label in labels]


def render_png(frame, draw: Callable, *, title: str = "", figsize=(5.0, 4.0), dpi: int = 90) -> bytes:
    """One frame drawn on a fresh Figure (not registered with pyplot: nothing is shown) as PNG bytes."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    draw(frame, fig)
    if title:
        fig.suptitle(title)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def slider_widget(frames: Sequence, draw: Callable, *, labels: Sequence[str] | None = None,
                  description: str = "iteration", figsize=(5.0, 4.0), dpi: int = 90, interval: int = 400):
    """An ipywidgets box: a play button and a slider over ``frames``, and the drawn frame.

    Frames are drawn on demand (``draw(frame, fig)``) and cached, so stepping back is instant.
    The first frame is drawn right away, so a broken ``draw`` raises here, not silently later.
    """
    import ipywidgets as widgets

    frames = list(frames)
    if not frames:
        raise ValueError("iteration_slider needs at least one frame")
    titles = _labels(frames, labels, description)
    cache: dict[int, bytes] = {}

    def png(i: int) -> bytes:
        if i not in cache:
            cache[i] = render_png(frames[i], draw, title=titles[i], figsize=figsize, dpi=dpi)
        return cache[i]

    # Shown at its own size: the picture is not stretched to the width of the page.
    image = widgets.Image(value=png(0), format="png", width=str(round(figsize[0] * dpi)),
                          layout=widgets.Layout(max_width="100%", height="auto"))
    slider = widgets.IntSlider(value=0, min=0, max=len(frames) - 1, step=1, description=description,
                               continuous_update=True)
    play = widgets.Play(value=0, min=0, max=len(frames) - 1, step=1, interval=interval, description="play")
    widgets.jslink((play, "value"), (slider, "value"))
    errors = widgets.Output()

    def show(change) -> None:
        errors.outputs = ()
        try:
            image.value = png(int(change["new"]))
        except Exception:  # noqa: BLE001 - show the student's error next to the slider, not in a log
            import traceback
            errors.append_stdout(f"drawing {titles[int(change['new'])]} failed:\n" + traceback.format_exc())

    slider.observe(show, names="value")
    box = widgets.VBox([widgets.HBox([play, slider]), image, errors])
    box.slider, box.image, box.play = slider, image, play  # handles for tests and for callers
    return box


def snapshot_grid(frames: Sequence, draw: Callable, *, labels: Sequence[str] | None = None,
                  description: str = "iteration", snapshots: int = 6, columns: int = 3, figsize=(5.0, 4.0),
                  figure=None):
    """A figure with up to ``snapshots`` evenly spaced frames (first and last included).

    A pyplot figure (shown by ``plt.show()``) unless ``figure`` is given: a callable
    ``figure(figsize=...)`` returning the Figure to draw on (``matplotlib.figure.Figure``: drawn
    without pyplot, so nothing is shown on its own).
    """
    if figure is None:
        import matplotlib.pyplot as plt
        figure = plt.figure

    frames = list(frames)
    titles = _labels(frames, labels, description)
    chosen = _snapshot_indices(len(frames), snapshots)
    if not chosen:
        raise ValueError("iteration_slider needs at least one frame")
    columns = max(1, min(columns, len(chosen)))
    rows = -(-len(chosen) // columns)
    fig = figure(figsize=(figsize[0] * columns, figsize[1] * rows), layout="constrained")
    panels = fig.subfigures(rows, columns, squeeze=False).ravel()
    for panel, i in zip(panels, chosen):
        draw(frames[i], panel)
        panel.suptitle(titles[i])
    return fig


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def first_and_last_png(frames: Sequence, draw: Callable, *, labels: Sequence[str] | None = None,
                       description: str = "iteration", figsize=(5.0, 4.0), dpi: int = 90) -> bytes:
    """The first and the last frame side by side, as PNG bytes (drawn without pyplot)."""
    from matplotlib.figure import Figure

    fig = snapshot_grid(frames, draw, labels=labels, description=description, snapshots=2, columns=2,
                        figsize=figsize, figure=Figure)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _display_slider(box, frames: list, draw: Callable, *, labels, description: str, figsize, dpi: int) -> None:
    """Show the slider ``box`` after a static picture of its first and last frames.

    The picture is an output of its own, so every copy of the notebook keeps it: where the
    widget cannot run (nbconvert HTML, nbviewer, GitHub; JupyterLab reopened without its kernel,
    which says "Error displaying widget: model not found") the reader still sees where EM started
    and where it ended. The slider's text form says how to get it back.
    """
    import base64

    from IPython.display import display

    titles = _labels(frames, labels, description)
    ends = titles[0] if len(frames) == 1 else f"{titles[0]} and {titles[-1]}"
    png = first_and_last_png(frames, draw, labels=labels, description=description, figsize=figsize, dpi=dpi)
    display({"image/png": base64.b64encode(png).decode("ascii"),
             "text/plain": f"<{ends}: the first and last of {len(frames)} frames>"}, raw=True)
    display({WIDGET_VIEW: {"version_major": 2, "version_minor": 0, "model_id": box.model_id},
             "text/plain": f"<a slider over {len(frames)} frames: run this cell in Jupyter to step through them>"},
            raw=True)


def iteration_slider(frames: Sequence, draw: Callable, *, labels: Sequence[str] | None = None,
                     description: str = "iteration", figsize=(5.0, 4.0), dpi: int = 90, interval: int = 400,
                     snapshots: int = 6, columns: int = 3, widgets: bool | None = None) -> None:
    """Step through saved EM states with a slider; a grid of snapshots where widgets are unavailable.

    Parameters
    ----------
    frames : sequence
        One saved state per step (anything: a tuple of parameters, a dict of images...).
    draw : callable ``draw(frame, fig)``
        Draws one frame on ``fig``, a matplotlib ``Figure`` or ``SubFigure``: call ``fig.subplots()``
        (or ``fig.subplots(1, 2)``...) and draw on the axes. Do not call ``plt.show()``.
    labels : sequence of str, optional
        A title per frame; default ``"<description> <index>"``.
    description : str
        The slider's name ("iteration").
    figsize, dpi : size of one frame.
    interval : milliseconds between frames when the play button runs.
    snapshots, columns : how many frames the fallback grid shows, and in how many columns.
    widgets : bool, optional
        Force the slider (True) or the static grid (False); default: the slider when available.

    Displays its output (like ``ipywidgets.interact``) and returns None. Above the slider it shows
    the first and last frames as a static picture, which stays in the saved notebook, so a copy
    rendered where widgets cannot run (nbconvert HTML, nbviewer, GitHub) still shows them.
    """
    if widgets is None:
        widgets = widgets_available()
    if widgets:
        frames = list(frames)
        box = slider_widget(frames, draw, labels=labels, description=description, figsize=figsize, dpi=dpi,
                            interval=interval)
        _display_slider(box, frames, draw, labels=labels, description=description, figsize=figsize, dpi=dpi)
        return None
    import matplotlib.pyplot as plt
    snapshot_grid(frames, draw, labels=labels, description=description, snapshots=snapshots, columns=columns,
                  figsize=figsize)
    plt.show()
    return None


# ---------------------------------------------------------------------------- notebook set-up
def assignment_requirements(assignment_id: str, distribution: str = DISTRIBUTION) -> list[str]:
    """The optional dependencies of the installed package named after the assignment (its extra).

    ``[project.optional-dependencies] advi = ["autograd>=1.6"]`` -> ``["autograd>=1.6"]`` for ``advi``.
    Empty when the package's metadata is not installed (a bare source tree on ``sys.path``).
    """
    from importlib import metadata
    try:
        requirements = metadata.requires(distribution) or []
    except metadata.PackageNotFoundError:
        return []
    wanted = []
    for line in requirements:
        requirement, _, marker = line.partition(";")
        extras = re.findall(r"""extra\s*==\s*["']([^"']+)["']""", marker)
        if _normalise(assignment_id) in {_normalise(e) for e in extras}:
            wanted.append(requirement.strip())
    return wanted


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _distribution_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if not match:
        raise ValueError(f"cannot read a package name from {requirement!r}")
    return match.group(1)


def missing_requirements(requirements: Iterable[str]) -> list[str]:
    """The requirements whose distribution is not installed at all (versions are not compared)."""
    from importlib import metadata
    missing = []
    for requirement in requirements:
        try:
            metadata.version(_distribution_name(requirement))
        except metadata.PackageNotFoundError:
            missing.append(requirement)
    return missing


def setup(assignment_id: str, *, install: bool = False) -> None:
    """Make the notebook of ``assignment_id`` ready to run (called by its set-up cell).

    * The assignment's own optional dependencies (the package extra named after it): installed
      with pip when ``install`` is true (on Colab, or when the set-up cell just installed the
      package); otherwise a missing one is reported with the command that installs it.
    * On Colab: the custom widget manager, which ipywidgets 8 needs there.
    """
    missing = missing_requirements(assignment_requirements(assignment_id))
    if missing and install:
        print("Installing what this assignment needs:", ", ".join(missing))
        done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                               *missing], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError("pip could not install " + ", ".join(missing) + ":\n" + done.stderr[-3000:])
        importlib.invalidate_caches()
    elif missing:
        print(f"This assignment needs {', '.join(missing)}, which is not installed here. Install it with\n"
              f'    pip install "{DISTRIBUTION}[{assignment_id}]"\n'
              "(or run `%pip install " + " ".join(f'"{m}"' for m in missing) + "` in a cell), then restart the kernel.")
    if in_colab():
        _enable_colab_widgets()


def _enable_colab_widgets() -> None:
    """Colab renders ipywidgets 7 natively; ipywidgets 8 needs its custom widget manager."""
    try:
        from importlib import metadata
        if int(metadata.version("ipywidgets").split(".")[0]) < 8:
            return
        from google.colab import output
        output.enable_custom_widget_manager()
    except Exception:  # noqa: BLE001 - widgets then fall back to their text form; nothing breaks
        pass
