"""``progress_bar``: a progress bar on the loops a student waits for (training, restarts, EM on images).

A tqdm widget bar in a Jupyter kernel with ipywidgets (Colab has both), a text bar in a terminal,
otherwise a silent object that iterates the same way. It never writes to stderr inside a notebook
(nbgrader zeroes a cell that does), and it is silent while the autograder's checks run
(``autograder.quiet``: the student-side ``check()``, ``progress()``, the grading process).
"""

from __future__ import annotations

import sys
from typing import Iterable

from ..quiet import is_quiet
from . import kernel

__all__ = ["progress_bar"]


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
    if is_quiet() or kernel.find_spec("tqdm") is None:
        return None
    if kernel.in_kernel():
        if kernel.find_spec("ipywidgets") is None:
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
