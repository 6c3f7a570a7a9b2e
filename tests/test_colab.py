"""Every student notebook in a simulated Google Colab: a fresh environment with only what Colab ships.

* A virtualenv with Colab's base packages only (numpy, scipy, matplotlib, pandas, ipykernel,
  threadpoolctl; no tqdm, no ipywidgets, no course package), cached under
  ``.cache/colab-venv/<hash>`` keyed by the requirements, so only the first run downloads
  anything; and a wheelhouse keyed the same way (the package's build backend and the
  assignments' own extras, e.g. autograd) so that the installs inside the notebooks need no
  network.
* Per notebook, a thin layer over the cached venv (its own site-packages; the base through a
  ``.pth``): the course package is installed into the layer, the cache stays pristine. The layer
  holds a stand-in ``google.colab`` package, so the notebook believes it runs on Colab.
* The released notebook with a finished solution pasted into its skeleton cells is copied alone
  into an empty folder and run in a real kernel of the layer, with ``COURSE_PIP_SOURCE`` pointing
  at a snapshot of this checkout: the set-up cell installs the package, every check cell reports
  all its checks passing, ``progress()`` counts every task, nothing writes to stderr.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

from autograder.assignments import get_assignment
from autograder.build.__main__ import assignments_with_sources
from conftest import ROOT
from solved_release import check_cells, solved_release

pytestmark = [pytest.mark.slow]

ASSIGNMENTS = assignments_with_sources()
# What Colab ships that the notebooks may rely on (versions: whatever pip picks, like Colab's);
# threadpoolctl comes with Colab's scikit-learn.
COLAB_BASE = ["numpy", "scipy", "matplotlib", "pandas", "ipykernel", "threadpoolctl"]
CACHE = ROOT / ".cache" / "colab-venv"

_GOOGLE_COLAB_STANDIN = {
    "google/__init__.py": '"""Stand-in for the google namespace of a Colab runtime (tests/test_colab.py)."""\n',
    "google/colab/__init__.py": '"""Stand-in for google.colab (tests/test_colab.py): importable, as on Colab."""\n'
                                "from . import output  # noqa: F401\n",
    "google/colab/output.py": "calls = []\n\n\ndef enable_custom_widget_manager():\n"
                              "    calls.append('enable_custom_widget_manager')\n",
}


def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:12]


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)


def _python_version(python) -> str:
    return _run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]).stdout.strip()


def _wheelhouse_requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = project["project"].get("optional-dependencies", {})
    wanted = list(project["build-system"]["requires"])
    for assignment in ASSIGNMENTS:
        wanted += extras.get(assignment, [])
    return sorted(set(wanted))


def _cached(directory: Path, build) -> Path:
    """``directory``, built once by ``build(directory)`` under a lock; a half-built one is rebuilt."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (directory / ".ready").exists():
            shutil.rmtree(directory, ignore_errors=True)
            problem = build(directory)
            if problem:
                shutil.rmtree(directory, ignore_errors=True)
                pytest.skip(f"cannot build the simulated Colab environment (no package registry?): {problem}")
            (directory / ".ready").write_text("ok\n")
    return directory


@pytest.fixture(scope="session")
def colab_base() -> dict:
    """The cached venv with Colab's base packages, and the wheelhouse, as paths."""
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    venv = CACHE / f"venv-py{version}-{_key(version, COLAB_BASE)}"

    def build_venv(path: Path):
        done = _run([sys.executable, "-m", "venv", path])
        python = path / "bin" / "python"
        if done.returncode == 0:
            done = _run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *COLAB_BASE])
        if done.returncode == 0:  # build matplotlib's font cache now, not (on stderr) inside a notebook
            done = _run([python, "-c", "import matplotlib.pyplot"], env={**os.environ, "MPLCONFIGDIR": str(path / "mpl")})
        return None if done.returncode == 0 else done.stderr[-1500:]

    _cached(venv, build_venv)
    requirements = _wheelhouse_requirements()
    wheelhouse = CACHE / f"wheelhouse-{_key(requirements)}"

    def build_wheelhouse(path: Path):
        path.mkdir(parents=True)
        done = _run([venv / "bin" / "python", "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                     "--only-binary=:all:", "--dest", path, *requirements])
        return None if done.returncode == 0 else done.stderr[-1500:]

    _cached(wheelhouse, build_wheelhouse)
    site = _run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    return {"venv": venv, "site": Path(site.stdout.strip()), "wheelhouse": wheelhouse, "mplconfig": venv / "mpl"}


@pytest.fixture(scope="session")
def checkout_snapshot(tmp_path_factory) -> Path:
    """This checkout as pip sees a source tree (without .git, virtualenvs, caches, build output)."""
    target = tmp_path_factory.mktemp("checkout") / "em-vi-course"
    skip_anywhere = {".git", ".venv", ".cache", ".pytest_cache", "__pycache__", ".ipynb_checkpoints", "artifacts"}

    def ignore(directory, names):
        skipped = {n for n in names if n in skip_anywhere or n.endswith(".egg-info")}
        if Path(directory) == ROOT:
            skipped |= {n for n in names if n in {"build", "dist", "gradebook.db", "demo-output"}}
        return skipped

    shutil.copytree(ROOT, target, ignore=ignore, symlinks=True)
    return target


def _layer(base: dict, path: Path) -> Path:
    """A fresh environment over the cached one: its own site-packages, the base's behind it."""
    done = _run([base["venv"] / "bin" / "python", "-m", "venv", "--without-pip", path])
    assert done.returncode == 0, done.stderr
    python = path / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    # The base's packages are this environment's "system" packages. pip's isolated build
    # environments (PYTHONPATH=.../pip-build-env-*/site) must not see them, as on a real machine.
    (site / "_colab_base.pth").write_text(
        "import os, site; 'pip-build-env' in os.environ.get('PYTHONPATH', '') or "
        f"site.addsitedir({str(base['site'])!r})\n")
    for rel, text in _GOOGLE_COLAB_STANDIN.items():
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    return python


def _kernel_manager(python: Path, where: Path):
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import KernelManager

    spec_dir = where / "kernels" / "colab"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (simulated Colab)", "language": "python"}))
    return KernelManager(kernel_name="colab", kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(where / "kernels")]))


def _environment(python: Path, base: dict, source: Path, home: Path) -> dict:
    """The kernel's whole environment: nothing from this test process leaks in (no PYTHONPATH...)."""
    home.mkdir(parents=True, exist_ok=True)
    return {
        "PATH": f"{python.parent}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1", "MPLCONFIGDIR": str(base["mplconfig"]),
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "COURSE_PIP_SOURCE": str(source),
        # Offline: pip finds the build backend and the assignments' extras in the cached wheelhouse.
        "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(base["wheelhouse"]), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "PIP_ROOT_USER_ACTION": "ignore", "PIP_NO_CACHE_DIR": "1",
    }


_PROBE = """\
import importlib.util, json, sys, autograder
print("PROBE" + json.dumps({"autograder": autograder.__file__, "prefix": sys.prefix,
                            "colab": "google.colab" in sys.modules,
                            "tqdm": importlib.util.find_spec("tqdm") is not None,
                            "ipywidgets": importlib.util.find_spec("ipywidgets") is not None}))"""


# The student API away from a cell's last line: check() inside a statement or a loop shows its
# report right away, exactly once; the values it returns stay usable.
_API_CELLS = ['report = check("{task}", {task})\nreport.passed',
              'for name in ["{task}"]:\n    check(name)',
              'hint("{task}")']


def _reports(cell) -> list:
    return [o for o in cell.outputs if "ag-report" in o.get("data", {}).get("text/html", "")]


def _stderr(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stderr")


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_student_notebook_sets_itself_up_and_passes_its_checks_in_a_fresh_colab(
        assignment, colab_base, checkout_snapshot, tmp_path):
    from nbclient import NotebookClient

    python = _layer(colab_base, tmp_path / "venv")
    folder = tmp_path / "content"            # Colab's working folder: the notebook and nothing else
    folder.mkdir()
    nb = solved_release(assignment)
    nbformat.write(nb, folder / f"{assignment}.ipynb")
    nb = nbformat.read(folder / f"{assignment}.ipynb", 4)
    nb.cells.append(nbformat.v4.new_code_cell(_PROBE))
    first = get_assignment(assignment).tasks[0].name
    api = [nbformat.v4.new_code_cell(source.format(task=first)) for source in _API_CELLS]
    nb.cells.extend(api)
    env = _environment(python, colab_base, checkout_snapshot, tmp_path / "home")
    client = NotebookClient(nb, timeout=600, km=_kernel_manager(python, tmp_path), allow_errors=False,
                            resources={"metadata": {"path": str(folder)}})
    client.execute(env=env)

    setup = next(c for c in nb.cells if c.cell_type == "code")
    assert f"Installing the course package from {checkout_snapshot}" in _stdout(setup), setup.outputs
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for requirement in extras.get(assignment, []):   # the assignment's own extra, e.g. autograd for advi
        assert requirement in _stdout(setup).split("Installing what this assignment needs:")[1], setup.outputs
    probe = json.loads(_stdout(nb.cells[-1 - len(api)]).split("PROBE", 1)[1])
    assert probe["prefix"] == str(tmp_path / "venv")
    assert probe["autograder"].startswith(str(tmp_path / "venv")), probe   # installed, not the checkout
    assert not probe["tqdm"] and not probe["ipywidgets"], probe          # the fallbacks ran

    tasks = [t.name for t in get_assignment(assignment).tasks]
    reported = []
    for cell in check_cells(nb):
        results = [o for o in cell.outputs if o.output_type == "execute_result"]
        assert results, f"{cell.source!r} shows no report"
        text, html = results[0].data["text/plain"], results[0].data["text/html"]
        score = re.match(r".*: ([\d.]+) / ([\d.]+)$", text.splitlines()[0])
        assert score and score.group(1) == score.group(2) and float(score.group(2)) > 0, text
        assert not re.search(r'class="[^"]*\bag-bad\b', html) and 'class="ag-fn ag-ok"' in html, text
        assert not [o for o in cell.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        reported.append(re.match(r'check\("(\w+)"', cell.source).group(1))
    assert reported == tasks
    summary = [c for c in nb.cells if c.cell_type == "code" and c.source.strip() == "progress()"]
    if summary:
        text = summary[0].outputs[0].data["text/plain"]
        assert f"{len(tasks)} of {len(tasks)} tasks pass their checks" in text, text
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not _stderr(cell), (cell.source[:80], _stderr(cell))

    in_statement, in_loop, hint = api
    assert len(_reports(in_statement)) == 1 and _reports(in_statement)[0].output_type == "display_data"
    assert [o.data["text/plain"] for o in in_statement.outputs if o.output_type == "execute_result"] == ["True"]
    assert len(_reports(in_loop)) == 1 and len(in_loop.outputs) == 1, in_loop.outputs
    assert [o.data["text/plain"] for o in hint.outputs] == [f"All the checks of {first} you ran pass: no hint needed."]
