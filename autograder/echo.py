"""Showing what ``check()``, ``progress()`` and ``hint()`` found: once, wherever they run.

Each of them shows its result and returns it (a report to keep, compare, or read
``.passed`` from). Where the interpreter itself displays the value (the last line of a Jupyter
or Colab cell, a line typed at an IPython or Python prompt, ``ipython -c``) we leave it to the
interpreter: Jupyter shows the report as the cell's result (HTML, with its text), a terminal
prints its text. Anywhere else (a plain ``python script.py``, a loop, a function, a line that
is not the last of its cell) the report is shown right away: displayed in a Jupyter kernel,
printed otherwise. A value shown that way is not shown a second time if it then reaches the
display hook of the same cell (a helper function that returns the report).

Which case applies is read from the caller's bytecode: a statement whose value the interpreter
displays is compiled in "single" mode, which hands the value straight to ``sys.displayhook``
(``PRINT_EXPR``; ``CALL_INTRINSIC_1 INTRINSIC_PRINT`` from Python 3.12).
"""

from __future__ import annotations

import dis
from types import FrameType

from .shell import in_kernel, ipython_shell

__all__ = ["Echo", "Said", "present"]


def displayed_by_interpreter(frame: FrameType | None) -> bool:
    """True when the value of the call ``frame`` is making goes straight to ``sys.displayhook``."""
    if frame is None:
        return False
    following = None
    for instruction in dis.get_instructions(frame.f_code):
        if instruction.offset > frame.f_lasti:
            following = instruction
            break
    if following is None:
        return False
    if following.opname == "PRINT_EXPR":
        return True
    return following.opname == "CALL_INTRINSIC_1" and (following.argrepr == "INTRINSIC_PRINT"
                                                        or following.arg == 1)


def _current_cell():
    """Which cell (IPython execution) is running now; None outside IPython."""
    shell = ipython_shell()
    if shell is None:
        return None
    return id(shell), getattr(shell, "execution_count", None)


def _nothing() -> None:
    """What ``_ipython_display_`` does for a value its cell has shown already."""


class Echo:
    """A result that shows itself once per cell (see the module docstring)."""

    _shown_in = None   # the cell (``_current_cell()``) that showed this value, if any

    @property
    def _ipython_display_(self):
        # IPython calls it for display() and for the cell's result. A method only when this cell
        # has shown the value already (then it shows nothing); otherwise None, and IPython
        # formats the value as usual (_repr_html_, __repr__).
        if self._shown_in is not None and self._shown_in == _current_cell():
            return _nothing
        return None

    def _show_now(self) -> None:
        if in_kernel():
            from IPython.display import display
            display(self)
        else:
            print(repr(self))


class Said(str, Echo):
    """A sentence a notebook function says (``hint()``): a str, shown as its plain text."""

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self))

    def _show_now(self) -> None:
        print(str(self))   # a line of text in a notebook, a terminal or a script alike


def present(value: Echo, caller: FrameType | None) -> Echo:
    """Show ``value`` now unless the interpreter will display it as ``caller``'s result; return it.

    ``caller`` is the frame of whoever called the public function (``check``, ``progress``,
    ``hint``).
    """
    if not displayed_by_interpreter(caller):
        value._show_now()
        value._shown_in = _current_cell()
    return value
