"""The set-up cell every notebook starts with, generated from ONE template.

The first code cell of every source notebook (and so of every released notebook) is exactly
``setup_cell_source(<id>)``: ``make build`` writes it (replacing an older set-up cell or inserting
one before the first code cell) and ``make build --check`` (run by the test-suite) fails when a
notebook's set-up cell differs. The course's public pip source and repository live here and
nowhere else in the code; the README's "Open in Colab" links are ``colab_url(<id>)`` (a test
checks them).

What the cell does:
  * on Google Colab, or wherever the course package is not importable, ``pip install`` the package
    from ``COURSE_PIP_SOURCE`` (environment variable; any pip requirement: a path, a git URL;
    default: the public repository), which brings the checks and the data;
  * ``autograder.interactive.setup``: the assignment's own optional dependencies (the package extra
    named after the assignment, e.g. autograd for advi) when the package was just installed or on
    Colab; Colab's widget manager;
  * ``check``, ``grade``, ``hint``, ``progress`` for the assignment.
Where the package is already installed (the course's own environment, nbgrader) nothing is
installed and nothing printed.
"""

from __future__ import annotations

REPOSITORY = "em-vi-course/em-vi-course"            # GitHub owner/name of the public course
PIP_SOURCE = f"em-vi-course @ git+https://github.com/{REPOSITORY}"
BRANCH = "main"
MARKER = "# Set-up: run this cell first."           # how the build recognises a set-up cell
CELL_ID = "setup"                                    # the cell id of an inserted set-up cell

# nbgrader: a read-only cell, restored from the release when an instructor autogrades.
NBGRADER_METADATA = {"grade": False, "grade_id": "setup", "locked": True, "schema_version": 3, "solution": False}

_TEMPLATE = '''\
{marker} On Google Colab, or wherever the course package is missing, it
# installs it (the checks, the data and what this assignment needs); elsewhere it changes nothing.
import importlib, importlib.util, os, subprocess, sys
IN_COLAB = bool(importlib.util.find_spec("google") and importlib.util.find_spec("google.colab"))
INSTALL = importlib.util.find_spec("autograder") is None
if INSTALL:
    COURSE_PIP_SOURCE = os.environ.get("COURSE_PIP_SOURCE", "{source}")
    print("Installing the course package from", COURSE_PIP_SOURCE, "...")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           COURSE_PIP_SOURCE], capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError("pip could not install the course package:\\n" + done.stderr[-3000:])
    importlib.invalidate_caches()

from autograder import Checker, datasets, interactive
interactive.setup("{assignment}", install=INSTALL or IN_COLAB)
checker = Checker("{assignment}")
check, grade, hint, progress = checker.check, checker.grade, checker.hint, checker.progress'''


def setup_cell_source(assignment_id: str) -> str:
    """The exact source of the set-up cell of assignment ``assignment_id``."""
    if not assignment_id.isidentifier():
        raise ValueError(f"not an assignment id: {assignment_id!r}")
    return _TEMPLATE.format(marker=MARKER, source=PIP_SOURCE, assignment=assignment_id)


def colab_url(assignment_id: str) -> str:
    """Where the released notebook of ``assignment_id`` opens in Google Colab."""
    return (f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/"
            f"course/{assignment_id}/{assignment_id}.ipynb")


def is_setup_cell(cell) -> bool:
    """A cell written from this template, or an older hand-written set-up cell (it builds a Checker)."""
    return cell.cell_type == "code" and (cell.source.lstrip().startswith(MARKER)
                                         or "Checker(" in cell.source)


def with_setup_cell(nb, assignment_id: str):
    """``nb`` whose first code cell is the set-up cell of ``assignment_id`` (replaced or inserted)."""
    import nbformat

    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    source = setup_cell_source(assignment_id)
    if code_cells and is_setup_cell(nb.cells[code_cells[0]]):
        cell = nb.cells[code_cells[0]]
    else:
        cell = nbformat.v4.new_code_cell(source)
        cell.id = CELL_ID
        nb.cells.insert(code_cells[0] if code_cells else len(nb.cells), cell)
    cell.source = source
    cell.metadata = {**{k: v for k, v in cell.metadata.items() if k not in ("nbgrader", "editable", "deletable")},
                     "nbgrader": dict(NBGRADER_METADATA)}
    return nb
