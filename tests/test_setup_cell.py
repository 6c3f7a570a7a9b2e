"""The set-up cell: one template for every notebook, one public pip source, Colab links, packaging.

``make build`` writes every notebook's set-up cell from ``autograder/build/setup_cell.py`` and
``test_generated_files_are_up_to_date`` fails when one differs; these tests say so directly, and
check what the cell does with and without the package, and that an installed package (what a
Colab student gets) holds every module and data file the notebooks need.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import subprocess
import tomllib

import nbformat
import pytest

from autograder.build import setup_cell
from autograder.build.__main__ import assignments_with_sources
from conftest import ROOT

ASSIGNMENTS = assignments_with_sources()


def _first_code_cell(path):
    return next(c for c in nbformat.read(path, 4).cells if c.cell_type == "code")


@pytest.mark.parametrize("folder", ["solutions", "course"])
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_notebook_starts_with_the_generated_set_up_cell(assignment, folder):
    cell = _first_code_cell(ROOT / folder / assignment / f"{assignment}.ipynb")
    assert cell.source == setup_cell.setup_cell_source(assignment), \
        f"{folder}/{assignment}: the set-up cell differs from the template: run `make build`"
    assert cell.metadata["nbgrader"]["locked"] and cell.metadata["nbgrader"]["grade_id"] == "setup"


def test_the_public_pip_source_is_written_in_one_place_in_the_code():
    holders = [p.relative_to(ROOT).as_posix() for p in [*ROOT.glob("autograder/**/*.py"), *ROOT.glob("data/**/*.py")]
               if "github.com/" in p.read_text(encoding="utf-8")]
    assert holders == ["autograder/build/setup_cell.py"]
    assert setup_cell.PIP_SOURCE == "em-vi-course @ git+https://github.com/em-vi-course/em-vi-course"


def test_the_readme_opens_every_notebook_in_colab_and_names_the_same_source():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for assignment in ASSIGNMENTS:
        assert f"({setup_cell.colab_url(assignment)})" in readme, f"README: no Colab link for {assignment}"
    assert setup_cell.PIP_SOURCE in readme
    assert setup_cell.colab_url("gmm") == ("https://colab.research.google.com/github/em-vi-course/em-vi-course/"
                                           "blob/main/course/gmm/gmm.ipynb")


def _run_cell(assignment, monkeypatch, *, installed: bool, pip_returncode=0):
    """Execute the set-up cell here; pip is replaced by a recorder."""
    calls = []

    def run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, pip_returncode, "", "ERROR: no route to host")

    real_find_spec = importlib.util.find_spec
    if not installed:
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a: None if name == "autograder" else real_find_spec(name, *a))
    monkeypatch.setattr(subprocess, "run", run)
    namespace = {}
    exec(compile(setup_cell.setup_cell_source(assignment), "<set-up cell>", "exec"), namespace)
    return namespace, calls


def test_where_the_package_is_installed_the_cell_installs_nothing(monkeypatch, capsys):
    namespace, calls = _run_cell("gmm", monkeypatch, installed=True)
    assert calls == [] and capsys.readouterr().out == ""
    assert not namespace["INSTALL"] and not namespace["IN_COLAB"]
    for name in ("check", "grade", "hint", "progress", "datasets"):
        assert name in namespace
    assert namespace["checker"].assignment.id == "gmm"


def test_without_the_package_the_cell_installs_it_from_course_pip_source(monkeypatch, capsys):
    monkeypatch.delenv("COURSE_PIP_SOURCE", raising=False)
    _, calls = _run_cell("gmm", monkeypatch, installed=False)
    assert calls[0][-1] == setup_cell.PIP_SOURCE and calls[0][1:4] == ["-m", "pip", "install"]
    monkeypatch.setenv("COURSE_PIP_SOURCE", "/somewhere/em-vi-course")
    _, calls = _run_cell("gmm", monkeypatch, installed=False)
    assert calls[0][-1] == "/somewhere/em-vi-course"
    assert "Installing the course package from /somewhere/em-vi-course" in capsys.readouterr().out


def test_a_failed_install_says_what_pip_said(monkeypatch):
    with pytest.raises(RuntimeError, match="no route to host"):
        _run_cell("gmm", monkeypatch, installed=False, pip_returncode=1)


def test_the_build_replaces_an_old_set_up_cell_or_inserts_one():
    old = ('# Set-up: run this cell first. An older wording.\nimport os\n'
           'from autograder import Checker\nchecker = Checker("gmm")')
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell(old),
                                         nbformat.v4.new_code_cell("import numpy as np")])
    nb.cells[1].id = "keep-me"
    nb = setup_cell.with_setup_cell(nb, "gmm")
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code"]
    assert nb.cells[1].source == setup_cell.setup_cell_source("gmm") and nb.cells[1].id == "keep-me"
    assert setup_cell.with_setup_cell(nb, "gmm") == nb                     # idempotent

    bare = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# Title"),
                                           nbformat.v4.new_code_cell("import numpy as np")])
    bare = setup_cell.with_setup_cell(bare, "advi")
    assert [c.source for c in bare.cells][1:] == [setup_cell.setup_cell_source("advi"), "import numpy as np"]
    nbformat.validate(bare)


# ------------------------------------------------------------------------------ packaging
def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _package_dirs():
    """{package name: folder} of every package the distribution must ship (autograder + data)."""
    found = {}
    for init in ROOT.glob("autograder/**/__init__.py"):
        found[".".join(init.parent.relative_to(ROOT).parts)] = init.parent
    for init in ROOT.glob("data/**/__init__.py"):
        found[".".join(("autograder", "datasets", *init.parent.relative_to(ROOT / "data").parts))] = init.parent
    return {k: v for k, v in found.items() if "__pycache__" not in v.parts}


def test_every_package_and_data_file_is_in_the_distribution():
    """What `pip install` of the course (a Colab student's install) gets: every check module, every
    data file. A sub-package missing from pyproject.toml works in the checkout but not on Colab."""
    setuptools = _pyproject()["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    missing = sorted(set(_package_dirs()) - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"
    package_data = setuptools.get("package-data", {})
    for package, folder in _package_dirs().items():
        for path in folder.iterdir():
            if path.is_file() and path.suffix not in (".py", ".pyc") and not path.name.startswith("."):
                patterns = package_data.get(package, []) + package_data.get("*", [])
                assert any(fnmatch.fnmatch(path.name, p) for p in patterns), \
                    f"{path.relative_to(ROOT)} is not in [tool.setuptools.package-data] {package!r}"


def test_a_student_install_needs_only_what_colab_ships():
    """Required dependencies stay within Colab's base; anything else is an optional extra."""
    required = {r.split(">")[0].split("=")[0].split("<")[0].strip().lower() for r in _pyproject()["project"]["dependencies"]}
    # threadpoolctl: on Colab as a dependency of its scikit-learn (tests/test_colab.py COLAB_BASE)
    assert required <= {"numpy", "scipy", "matplotlib", "pandas", "threadpoolctl"}, required
