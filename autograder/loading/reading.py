"""Reading the cells of a submission file, whatever state the file is in."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path


class UnreadableSubmission(Exception):
    """The file cannot be read as a notebook or Python source at all."""


# `# %%` (percent format) splits a .py file into cells, so one syntax error costs one cell only.
_PERCENT_CELL = re.compile(r"^# ?%%(?!%)", re.MULTILINE)
_MAX_BYTES = 50 * 1024 * 1024


def read_code_cells(path: Path) -> list[str]:
    """Return the source of every code cell of ``path``, in order.

    Raises
    ------
    UnreadableSubmission
        With a message a student understands, when the file is missing, binary, not valid
        UTF-8, not JSON, or not shaped like a notebook.
    """
    path = Path(path)
    return code_cells_from_bytes(read_submission_bytes(path), path.suffix)


def read_submission_bytes(path: Path) -> bytes:
    """The content of a submission file, read by the grader (outside any sandbox).

    A symbolic link is refused, not followed: a submission that arrives as a link (an archive or
    a git repository can carry one) would otherwise make the grader read whatever it points at,
    e.g. the reference solutions, and grade that as the student's work. The size is checked
    before anything is read, so a huge (or sparse) file costs the reader nothing.

    Raises
    ------
    UnreadableSubmission
        With a message a student understands.
    """
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            raise UnreadableSubmission("the file is a symbolic link: submit the file itself, not a link to it")
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableSubmission("this is not a regular file")
        _check_size(info.st_size)
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise UnreadableSubmission(f"cannot open the file: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:   # (the file opened is the one checked: never a link, at most the cap)
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableSubmission("this is not a regular file")
        _check_size(info.st_size)
        data = f.read(_MAX_BYTES + 1)
    _check_size(len(data))
    return data


def _check_size(size: int) -> None:
    if size > _MAX_BYTES:
        raise UnreadableSubmission(f"the file is {size / 2**20:.0f} MiB; submissions are limited to "
                                   f"{_MAX_BYTES // 2**20} MiB (did you save outputs with huge images?)")


def code_cells_from_bytes(raw: bytes, suffix: str) -> list[str]:
    """``read_code_cells`` for a file's content already in memory (``suffix``: ".ipynb" or ".py")."""
    _check_size(len(raw))
    if b"\x00" in raw[:8192]:
        raise UnreadableSubmission("this is a binary file, not a notebook or a Python file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableSubmission(f"the file is not valid UTF-8 text (byte {exc.start})") from None
    if suffix == ".ipynb":
        return _notebook_code_cells(text)
    return _python_cells(text)


def _python_cells(text: str) -> list[str]:
    starts = [m.start() for m in _PERCENT_CELL.finditer(text)]
    if not starts:
        return [text]
    bounds = [0, *starts, len(text)] if starts[0] != 0 else [*starts, len(text)]
    return [text[a:b] for a, b in zip(bounds, bounds[1:]) if text[a:b].strip()]


def _notebook_code_cells(text: str) -> list[str]:
    try:
        nb = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnreadableSubmission(
            f"the notebook is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "it was probably truncated or edited by hand. Re-download it from Jupyter "
            "(File > Download) and submit that copy") from None
    if not isinstance(nb, dict):
        raise UnreadableSubmission("the notebook's JSON is not an object; this is not a notebook")
    cells = nb.get("cells")
    if cells is None and isinstance(nb.get("worksheets"), list):  # nbformat 3
        cells = [c for ws in nb["worksheets"] if isinstance(ws, dict) for c in ws.get("cells", [])]
    if not isinstance(cells, list):
        raise UnreadableSubmission("the notebook has no list of cells; this is not a notebook")
    sources = []
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", cell.get("input", ""))
        if isinstance(source, list):
            source = "".join(part for part in source if isinstance(part, str))
        if isinstance(source, str):
            sources.append(source)
    return sources
