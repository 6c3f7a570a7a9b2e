"""Generated files are in sync, releases hold no solutions, notebooks are clean, configs agree."""

import ast
import re
import subprocess
import sys
import tomllib

import nbformat
import pytest
import yaml

from autograder.assignments import get_assignment
from autograder.build.__main__ import assignments_with_sources
from conftest import ROOT

ASSIGNMENTS = assignments_with_sources()
MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")


def test_generated_files_are_up_to_date():
    done = subprocess.run([sys.executable, "-m", "autograder.build", "--check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr


def _solution_lines(source_notebook):
    """Substantial code lines written only between the solution markers of the source notebook."""
    solution, given = [], set()
    for cell in nbformat.read(source_notebook, 4).cells:
        inside = False
        for line in cell.source.splitlines():
            if line.strip() == MARKERS[0]:
                inside = True
            elif line.strip() == MARKERS[1]:
                inside = False
            elif inside and len(line.strip()) > 12 and not line.strip().startswith("#"):
                solution.append(line.strip())
            else:
                given.add(line.strip())
    return [line for line in solution if line not in given]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_released_notebook_contains_no_solution_code(assignment):
    release = nbformat.read(ROOT / "course" / assignment / f"{assignment}.ipynb", 4)
    released_lines = {line.strip() for cell in release.cells for line in cell.source.splitlines()}
    source = ROOT / "solutions" / assignment / f"{assignment}.ipynb"
    leaked = [line for line in _solution_lines(source) if line in released_lines]
    assert not leaked, leaked[:5]
    text = "\n".join(cell.source for cell in release.cells)
    assert "BEGIN HIDDEN TESTS" not in text and "grade(" not in text


def _signatures(code):
    out = {}
    for node in ast.parse(code).body:
        if isinstance(node, ast.FunctionDef):
            out[node.name] = ast.unparse(node.args)
    return out


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_reference_module_exposes_the_notebooks_functions_and_signatures(assignment):
    module = _signatures((ROOT / "solutions" / assignment / "__init__.py").read_text())
    release = nbformat.read(ROOT / "course" / assignment / f"{assignment}.ipynb", 4)
    skeletons = {}
    for cell in release.cells:
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("solution"):
            skeletons.update(_signatures(cell.source))
    tasks = get_assignment(assignment).tasks
    assert set(skeletons) <= set(module)
    for task in tasks:
        assert task.name in skeletons, f"{task.name} has no skeleton in the release"
        assert skeletons[task.name] == module[task.name]
        assert skeletons[task.name] == _signatures(f"def f{task.signature}: pass")["f"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_task_has_a_test_cell_worth_its_checks(assignment):
    spec = get_assignment(assignment)
    source = nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", 4)
    cells = {c.metadata["nbgrader"]["grade_id"]: c for c in source.cells
             if c.metadata.get("nbgrader", {}).get("grade")}
    for task in spec.tasks:
        cell = cells[f"test_{task.name}"]
        assert cell.metadata["nbgrader"]["points"] == spec.points(task.name)
        assert cell.source == (f'check("{task.name}", {task.name})\n### BEGIN HIDDEN TESTS\n'
                               f'grade("{task.name}")\n### END HIDDEN TESTS')


@pytest.mark.parametrize("path", sorted([*ROOT.glob("solutions/*/*.ipynb"), *ROOT.glob("course/*/*.ipynb"),
                                         *ROOT.glob("examples/*/*.ipynb")]), ids=lambda p: str(p.relative_to(ROOT)))
def test_committed_notebooks_are_valid_and_without_outputs(path):
    nb = nbformat.read(path, as_version=nbformat.NO_CONVERT)
    assert nb.nbformat == 4
    nbformat.validate(nb)
    if "examples" in path.parts:
        return  # example submissions may carry outputs, like real ones
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


def _requirement_names(requirements):
    return {re.split(r"[<>=!\[ ]", r, maxsplit=1)[0].lower(): r.replace(" ", "") for r in requirements}


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        wanted += extra
    expected = {}
    for req in wanted:
        if req.startswith("dask[distributed]"):  # conda splits this extra into two packages
            spec = req[len("dask[distributed]"):]
            expected["dask"] = "dask" + spec
            expected["distributed"] = "distributed" + spec
        else:
            expected.update(_requirement_names([req]))
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = [d for d in env["dependencies"] if isinstance(d, str) and not d.startswith(("python", "pip"))]
    got = _requirement_names(conda)
    assert got == expected
    python = next(d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python="))
    assert python == "python=3.11"


def test_the_distribution_does_not_ship_the_solutions():
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert not any(p == "solutions" or p.startswith("solutions.") for p in packages)
    assert all((ROOT / p.replace(".", "/")).is_dir() or p.startswith("autograder.datasets") for p in packages)


def test_shipped_data_regenerates_identically():
    from autograder.datasets import gmm, npz_bytes
    assert gmm.PATH.read_bytes() == npz_bytes(gmm.generate())
