"""The package's requirements, and those of a pyproject extra: one parser, for every reader.

``[project.optional-dependencies] advi = ["autograd>=1.6"]`` reaches the installed metadata as
``Requires-Dist: autograd>=1.6; extra == "advi"``. The notebook's set-up cell
(``notebook.setup``) installs the extra named after its assignment; the Gradescope zip
(``gradescope.requirements``) lists the package's own requirements plus that extra.

The rules (PEP 508 and PEP 685):

* a requirement belongs to an extra when its marker says ``extra == "<name>"`` (either quote,
  any spacing), the names compared normalised (``hard_em``, ``Hard-EM`` and ``hard.em`` are one
  extra; setuptools writes the normalised form into the metadata);
* it is one of the package's own requirements when its marker names no extra at all;
* what is returned is the requirement without its marker (``"pkg>=1"``).

In a checkout the lines are made from its ``pyproject.toml`` (the source of the metadata); an
installed package (pip, Colab) reads its metadata.
"""

from __future__ import annotations

import re
from pathlib import Path

DISTRIBUTION = "em-vi-course"   # the pip distribution that ships this package

_EXTRA = re.compile(r"""\bextra\s*==\s*["']([^"']+)["']""")


def normalise(name: str) -> str:
    """PEP 685's form of an extra's (or a distribution's) name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def split(line: str) -> tuple[str, set[str]]:
    """(the requirement without its marker, the normalised extras its marker names)."""
    requirement, _, marker = line.partition(";")
    return requirement.strip(), {normalise(e) for e in _EXTRA.findall(marker)}


def base(lines: list[str]) -> list[str]:
    """The requirements of ``lines`` that belong to no extra."""
    return [requirement for requirement, extras in map(split, lines) if not extras]


def of_extra(lines: list[str], extra: str) -> list[str]:
    """The requirements of ``lines`` that belong to the extra ``extra``."""
    wanted = normalise(extra)
    return [requirement for requirement, extras in map(split, lines) if wanted in extras]


def requires(distribution: str = DISTRIBUTION) -> list[str] | None:
    """The package's requirement lines (``Requires-Dist`` form): from the checkout's
    ``pyproject.toml`` when the package runs from a checkout (an editable install's metadata can be
    older than the file it was made from), else from the installed metadata; None when neither
    can be read."""
    lines = _from_pyproject(Path(__file__).resolve().parent.parent / "pyproject.toml", distribution)
    if lines is not None:
        return lines
    from importlib import metadata
    try:
        return list(metadata.requires(distribution) or [])
    except metadata.PackageNotFoundError:
        return None


def _from_pyproject(path: Path, distribution: str) -> list[str] | None:
    try:
        import tomllib
    except ImportError:   # Python 3.10
        return None
    try:
        project = tomllib.loads(path.read_text(encoding="utf-8")).get("project", {})
    except (OSError, ValueError):
        return None
    if normalise(str(project.get("name", ""))) != normalise(distribution):
        return None
    lines = list(project.get("dependencies", []))
    for extra, requirements in project.get("optional-dependencies", {}).items():
        lines += [f'{r}; extra == "{normalise(extra)}"' for r in requirements]
    return lines
