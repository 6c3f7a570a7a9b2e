"""Removing IPython syntax (magics, shell escapes, help) from a cell so Python can parse it."""

from __future__ import annotations

import re

# Cell magics whose body is ordinary Python: keep the body, drop the magic line.
_PYTHON_BODY_CELL_MAGICS = {"time", "timeit", "capture", "prun"}

_LINE_MAGIC = re.compile(r"^(\s*)(%|!)")
_ASSIGNED_MAGIC = re.compile(r"^(\s*)[\w.,\s\[\]]+=\s*[%!]")
_HELP = re.compile(r"^(\s*)[\w.]+\?{1,2}\s*$|^(\s*)\?{1,2}[\w.]+\s*$")


def strip_ipython_syntax(source: str) -> str | None:
    """Return ``source`` with IPython-only lines replaced by ``pass``.

    Returns None when the whole cell is not Python (``%%bash``, ``%%html``...). Lines are
    replaced rather than deleted so line numbers in tracebacks still match the notebook.
    """
    lines = source.splitlines()
    first = next((i for i, line in enumerate(lines) if line.strip()), None)
    if first is not None and lines[first].lstrip().startswith("%%"):
        name = lines[first].strip()[2:].split(maxsplit=1)[0] if lines[first].strip()[2:] else ""
        if name not in _PYTHON_BODY_CELL_MAGICS:
            return None
        lines[first] = ""
    cleaned = []
    for line in lines:
        match = _LINE_MAGIC.match(line) or _ASSIGNED_MAGIC.match(line) or _HELP.match(line)
        if match:
            indent = re.match(r"\s*", line).group(0)
            cleaned.append(f"{indent}pass")
        else:
            cleaned.append(line)
    return "\n".join(cleaned)
