"""Pictures in feedback reports: a small hook per assignment, rendered to PNG data URIs.

An assignment that wants pictures in its reports has a module
``autograder/assignments/<id>/figures.py`` with::

    def figures(call, reference) -> list[tuple[str, matplotlib.figure.Figure]]

``call(name, *args, **kwargs)`` runs the student's function ``name`` in the submission's sandbox
(the same child that was graded) and returns its value, or raises ``StudentCodeFailed`` when it
crashes, hangs or is missing; ``reference`` is the reference module. The hook builds figures
from the values the student's functions returned (in the grader's process; student code never
draws) and returns them with captions; they are rendered with matplotlib's Agg backend to PNG
``data:`` URIs. A hook that raises costs nothing but its picture: the report says why it is
missing.
"""

from __future__ import annotations

import base64
import importlib
import io

from ..engine.context import explain_outcome
from ..engine.failures import StudentCodeFailed

CALL_SECONDS = 15.0


def has_figures(assignment_id: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(f"autograder.assignments.{assignment_id}.figures") is not None


def render(assignment_id: str, executor, reference) -> list[list[str]]:
    """[[caption, data URI or ""]...] for one graded submission (``executor`` still open)."""
    if reference is None or not has_figures(assignment_id):
        return []
    hook = importlib.import_module(f"autograder.assignments.{assignment_id}.figures")

    def call(name, *args, **kwargs):
        outcome = executor.call(name, args, kwargs, standins={}, seed=0, timeout=CALL_SECONDS)
        if not outcome.ok:
            raise StudentCodeFailed(*explain_outcome(name, outcome, executor))
        return outcome.value

    try:
        made = hook.figures(call, reference)
    except StudentCodeFailed as exc:
        return [["No picture: " + exc.message.splitlines()[0], ""]]
    except Exception as exc:  # noqa: BLE001 - a picture must never cost a grade
        return [[f"No picture: {type(exc).__name__}: {str(exc)[:300]}", ""]]
    return [[caption, to_data_uri(fig)] for caption, fig in made]


def to_data_uri(fig) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
