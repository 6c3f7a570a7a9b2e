"""``setup(assignment_id)``: what every notebook's set-up cell calls (``autograder/build/setup_cell.py``).

It installs what the assignment needs beyond the package (the package's extra named after the
assignment, e.g. ``autograd`` for ``advi``; read by ``autograder.extras``) when asked to, and turns
Colab's widget manager on.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from typing import Iterable

from .. import extras
from ..extras import DISTRIBUTION
from . import kernel

__all__ = ["setup", "assignment_requirements", "missing_requirements"]


def assignment_requirements(assignment_id: str, distribution: str = DISTRIBUTION) -> list[str]:
    """The requirements of the package's extra named after the assignment.

    ``[project.optional-dependencies] advi = ["autograd>=1.6"]`` -> ``["autograd>=1.6"]`` for ``advi``.
    Empty when neither the package's metadata nor its checkout's ``pyproject.toml`` can be read.
    """
    return extras.of_extra(extras.requires(distribution) or [], assignment_id)


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
    if kernel.in_colab():
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
