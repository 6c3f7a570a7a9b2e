"""``iteration_slider``: step through saved EM states with a slider (and a play button).

An ipywidgets slider in a Jupyter kernel with ipywidgets, under a static picture of the first and
last frames that stays in the saved notebook (GitHub, nbviewer and nbconvert HTML cannot run the
slider); elsewhere (or with ``widgets=False``) a plain matplotlib grid of evenly spaced snapshots.
matplotlib and ipywidgets are imported only when a slider is drawn.
"""

from __future__ import annotations

import io
from typing import Callable, Sequence

from . import kernel

__all__ = ["iteration_slider", "slider_widget", "snapshot_grid", "first_and_last_png", "render_png"]


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
        widgets = kernel.widgets_available()
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
