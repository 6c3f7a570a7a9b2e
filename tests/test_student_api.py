"""check(), progress() and hint() where students run them, and what makes them fast.

* A plain ``python script.py``, a terminal IPython (``ipython -c`` and the interactive shell
  reading its input) and a real Jupyter kernel (nbclient): each result is shown once (text in a
  script or terminal, HTML in a notebook), and the value returned stays usable. Colab:
  tests/test_colab.py runs the same cells in its simulated Colab.
* ``progress()`` remembers results by the code of each function and reruns only what changed:
  every way the behaviour of a function can change (itself, a helper, a global constant, a
  default, a closure, a class, a module file, a function its checks combine it with) reruns it.
* Checks run with one BLAS thread; the engine does not import the notebook UI.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import re
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import solutions.gmm as ref
from autograder import Checker
from autograder.code_key import code_key
from conftest import ROOT

_cells = itertools.count()


def _run_cell(source: str, namespace: dict) -> dict:
    """Run ``source`` as a notebook cell would, in ``namespace`` (its own file name per cell)."""
    exec(compile(textwrap.dedent(source), f"<cell {next(_cells)}>", "exec"), namespace)
    return namespace


def _environment(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENBLAS", "OMP_", "MKL_", "AUTOGRADER"))}
    env.update({"PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1", **extra})
    return env


def _titles(text: str, pattern: str) -> list[str]:
    return [line for line in text.splitlines() if re.search(pattern, line)]


# ------------------------------------------------------------------------ where students run it
SCRIPT = '''\
from autograder import Checker
import solutions.gmm as ref

checker = Checker("gmm")
check, grade, hint, progress = checker.check, checker.grade, checker.hint, checker.progress


def main():                      # the functions are local: progress() must still see them
    E_step = ref.E_step

    def M_step(X, gamma):
        raise NotImplementedError()

    report = check("E_step", E_step)
    check("M_step", M_step)
    hint("M_step")
    summary = progress()
    said = hint("E_step")
    print("RESULT", json.dumps([report.passed, list(summary.rerun), str(said)]))


import json
main()
'''


def test_a_plain_script_prints_each_report_once_and_progress_counts_the_checked_tasks(tmp_path):
    (tmp_path / "work.py").write_text(SCRIPT)
    done = subprocess.run([sys.executable, "work.py"], cwd=tmp_path, env=_environment(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    out = done.stdout
    assert len(_titles(out, r"^E_step\(X, pi, mu, sigma\): 5 / 5$")) == 1, out
    assert len(_titles(out, r"^M_step\(X, gamma\): 0 / ")) == 1, out
    assert len(_titles(out, r"^Hint 1/\d+ for M_step")) == 1, out
    assert len(_titles(out, r"^Progress on ")) == 1, out
    assert _titles(out, r"^✓ E_step ") and _titles(out, r"^· M_step +not implemented yet$"), out
    assert _titles(out, r"^· compute_vlb +not defined yet$"), out
    passed, rerun, said = json.loads(out.split("RESULT ", 1)[1])
    assert passed is True and rerun == []            # progress() reused what check() found
    assert said == "All the checks of E_step you ran pass: no hint needed."
    assert len(_titles(out, re.escape(said))) == 2     # printed once, and once by the script's print


_IPYTHON = [sys.executable, "-m", "IPython", "--quick", "--no-banner", "--colors=nocolor", "--simple-prompt",
            "--HistoryManager.enabled=False"]
_SETUP = ("from autograder import Checker; import solutions.gmm as ref; checker = Checker('gmm'); "
          "check, hint, progress = checker.check, checker.hint, checker.progress; "
          "E_step, M_step = ref.E_step, ref.M_step")


def test_terminal_ipython_shows_each_result_once(tmp_path):
    """The interactive shell, each line a cell: the displayed value is the report's text, once."""
    lines = [_SETUP, 'check("E_step", E_step)', 'r = check("M_step", M_step)', "r.passed",
             'for name in ["E_step"]: check(name)', "progress()", 'hint("E_step")', "exit()"]
    done = subprocess.run(_IPYTHON, input="\n".join(lines) + "\n", cwd=tmp_path, capture_output=True, text=True,
                          env=_environment(IPYTHONDIR=str(tmp_path / "ipython")), timeout=300)
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert len(_titles(out, r"E_step\(X, pi, mu, sigma\): 5 / 5$")) == 2, out   # the cell's value; the loop
    assert len(_titles(out, r"M_step\(X, gamma\): 5 / 5$")) == 1, out
    assert re.search(r"Out\[\d+\]: True", out), out
    assert len(_titles(out, r"Progress on ")) == 1, out
    assert len(_titles(out, r"All the checks of E_step you ran pass: no hint needed\.")) == 1, out


def test_ipython_c_shows_each_result_once(tmp_path):
    code = _SETUP + '\nr = check("E_step", E_step)\ncheck("M_step", M_step)'
    done = subprocess.run(_IPYTHON + ["-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env=_environment(IPYTHONDIR=str(tmp_path / "ipython")), timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(_titles(done.stdout, r"E_step\(X, pi, mu, sigma\): 5 / 5$")) == 1, done.stdout
    assert len(_titles(done.stdout, r"M_step\(X, gamma\): 5 / 5$")) == 1, done.stdout


_KERNEL_CELLS = {
    "last line": 'check("E_step", E_step)',
    "assigned": 'r = check("M_step", M_step)',
    "assigned, then the value": 'r = check("M_step", M_step)\nr',
    "the value, in a later cell": "r",
    "loop": 'for name in ["E_step", "M_step"]:\n    check(name, globals()[name])',
    "returned by a helper": 'def helper():\n    return check("E_step", E_step)\nhelper()',
    "attribute": 'check("E_step", E_step).passed',
    "hint": 'hint("E_step")',
    "progress": "progress()",
    "progress, then its value": "p = progress()\np.rerun",
    "a new E_step, then progress": "def E_step(X, pi, mu, sigma):\n    return ref.E_step(X, pi, mu, sigma) * 1.01\n"
                                   "progress().rerun",
}


@pytest.mark.slow
def test_a_jupyter_kernel_shows_each_report_once_as_html(tmp_path):
    import nbformat
    from nbclient import NotebookClient

    sources = [_SETUP.replace("; ", "\n"), *_KERNEL_CELLS.values()]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute(
        env=_environment())
    outputs = {label: cell.outputs for label, cell in zip(_KERNEL_CELLS, nb.cells[1:])}

    def reports(label):
        return [(o.output_type, re.search(r"<h3>(\w+)", o.data["text/html"]).group(1))
                for o in outputs[label] if "ag-report" in o.get("data", {}).get("text/html", "")]

    assert reports("last line") == [("execute_result", "E_step")]
    assert reports("assigned") == [("display_data", "M_step")]
    assert reports("assigned, then the value") == [("display_data", "M_step")]
    assert reports("the value, in a later cell") == [("execute_result", "M_step")]
    assert reports("loop") == [("display_data", "E_step"), ("display_data", "M_step")]
    assert reports("returned by a helper") == [("display_data", "E_step")]
    assert reports("attribute") == [("display_data", "E_step")]
    assert [o.data["text/plain"] for o in outputs["attribute"] if o.output_type == "execute_result"] == ["True"]
    for label in _KERNEL_CELLS:
        assert all(o.output_type != "stream" or o.name != "stderr" for o in outputs[label]), (label, outputs[label])
        if label not in ("hint", "progress, then its value", "attribute", "a new E_step, then progress"):
            assert len(outputs[label]) == len(reports(label)), (label, outputs[label])
    assert [(o.output_type, o.data["text/plain"]) for o in outputs["hint"]] == \
        [("execute_result", "All the checks of E_step you ran pass: no hint needed.")]
    progress = [o for o in outputs["progress"] if "ag-progress" in o.data.get("text/html", "")]
    assert len(outputs["progress"]) == 1 and progress[0].output_type == "execute_result"
    assert "2 of 11 tasks pass their checks" in progress[0].data["text/plain"]
    shown, value = outputs["progress, then its value"]
    assert "ag-progress" in shown.data["text/html"] and value.data["text/plain"] == "()"   # nothing rerun
    shown, value = outputs["a new E_step, then progress"]      # a cell's function: keyed by its code
    assert "ag-progress" in shown.data["text/html"] and value.data["text/plain"] == "('E_step',)"


# ------------------------------------------------------------------------------- progress cache
BASE = '''
import numpy as np
import solutions.gmm as ref

SCALE = 1.0

def _responsibilities(X, pi, mu, sigma):
    return ref.E_step(X, pi, mu, sigma) * SCALE

def E_step(X, pi, mu, sigma):
    return _responsibilities(X, pi, mu, sigma)

def M_step(X, gamma):
    return ref.M_step(X, gamma)

def compute_vlb(X, pi, mu, sigma, gamma):
    return ref.compute_vlb(X, pi, mu, sigma, gamma)
'''


# compute_vlb's student-side checks use the student's own E_step and M_step (its isolated_from):
# a change to either reruns compute_vlb too.
E_AND_VLB, M_AND_VLB = ("E_step", "compute_vlb"), ("M_step", "compute_vlb")


def _rows(report) -> dict:
    return {name: mark for mark, name, _ in report.rows()}


@pytest.fixture
def student():
    """(checker, namespace): a notebook's globals with E_step (through a helper), M_step, compute_vlb."""
    checker = Checker("gmm")
    namespace = _run_cell(BASE, {"__name__": "__student__"})
    first = checker.progress(namespace)
    assert set(first.rerun) == {"E_step", "M_step", "compute_vlb"}
    assert {n: m for n, m in _rows(first).items() if m != "·"} == {"E_step": "✓", "M_step": "✓", "compute_vlb": "✓"}
    return checker, namespace


def test_progress_reruns_nothing_when_nothing_changed(student):
    checker, namespace = student
    again = checker.progress(namespace)
    assert again.rerun == () and _rows(again)["E_step"] == "✓"
    assert repr(again).splitlines()[1:] == repr(checker.progress(namespace)).splitlines()[1:]


def test_running_the_same_cell_again_reruns_nothing(student):
    checker, namespace = student
    exec(compile(textwrap.dedent(BASE), "<the same cell>", "exec"), namespace)   # new objects...
    checker.progress(namespace)
    exec(compile(textwrap.dedent(BASE), "<the same cell>", "exec"), namespace)   # ... same code
    assert checker.progress(namespace).rerun == ()


def test_redefining_a_helper_reruns_the_functions_that_call_it(student):
    checker, namespace = student
    _run_cell("def _responsibilities(X, pi, mu, sigma):\n    return ref.E_step(X, pi, mu, sigma) * 1.01", namespace)
    report = checker.progress(namespace)
    assert report.rerun == E_AND_VLB and _rows(report)["E_step"] == "✗"


def test_changing_a_global_constant_reruns_the_functions_that_use_it(student):
    checker, namespace = student
    namespace["SCALE"] = 1.01
    assert checker.progress(namespace).rerun == E_AND_VLB
    namespace["SCALE"] = 1.0                      # back: run again, and pass again
    report = checker.progress(namespace)
    assert report.rerun == E_AND_VLB and _rows(report)["E_step"] == "✓"


def test_mutating_a_global_array_reruns(student):
    checker, namespace = student
    _run_cell("WEIGHTS = np.ones(3)\n"
              "def M_step(X, gamma):\n    return ref.M_step(X, gamma * WEIGHTS[0])", namespace)
    assert checker.progress(namespace).rerun == M_AND_VLB
    assert checker.progress(namespace).rerun == ()
    namespace["WEIGHTS"][0] = 2.0                 # the same array object, new contents
    assert checker.progress(namespace).rerun == M_AND_VLB


def test_changing_a_default_or_a_closure_reruns(student):
    checker, namespace = student
    both = E_AND_VLB
    _run_cell("def E_step(X, pi, mu, sigma, scale=1.0):\n    return ref.E_step(X, pi, mu, sigma) * scale", namespace)
    assert checker.progress(namespace).rerun == both
    namespace["E_step"].__defaults__ = (1.01,)
    assert checker.progress(namespace).rerun == both
    _run_cell("def make(scale):\n    def E_step(X, pi, mu, sigma):\n        return ref.E_step(X, pi, mu, sigma) * scale\n"
              "    return E_step\nE_step = make(1.0)", namespace)
    assert checker.progress(namespace).rerun == both
    namespace["E_step"] = namespace["make"](1.0)   # a new closure over the same value
    assert checker.progress(namespace).rerun == ()
    namespace["E_step"] = namespace["make"](1.01)
    report = checker.progress(namespace)
    assert report.rerun == both and _rows(report)["E_step"] == "✗"


def test_redefining_a_class_a_function_uses_reruns_it(student):
    checker, namespace = student
    _run_cell("class Steps:\n    def m(self, X, gamma):\n        return ref.M_step(X, gamma)\n"
              "def M_step(X, gamma):\n    return Steps().m(X, gamma)", namespace)
    assert checker.progress(namespace).rerun == M_AND_VLB
    assert checker.progress(namespace).rerun == ()
    _run_cell("class Steps:\n    def m(self, X, gamma):\n        return ref.M_step(X, gamma * 2)", namespace)
    assert checker.progress(namespace).rerun == M_AND_VLB


def test_redefining_a_function_the_checks_combine_it_with_reruns_it(student):
    """compute_vlb's code does not call E_step, but its student-side checks may use the student's
    E_step (the task's ``isolated_from``): a new E_step reruns compute_vlb too."""
    checker, namespace = student
    _run_cell("def E_step(X, pi, mu, sigma):\n    return ref.E_step(X, pi, mu, sigma)", namespace)
    assert set(checker.progress(namespace).rerun) == {"E_step", "compute_vlb"}


def test_editing_the_students_own_module_reruns(student, tmp_path, monkeypatch):
    checker, namespace = student
    module = tmp_path / "my_steps.py"
    module.write_text("import solutions.gmm as ref\ndef m(X, gamma):\n    return ref.M_step(X, gamma)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace["my_steps"] = importlib.import_module("my_steps")
    _run_cell("def M_step(X, gamma):\n    return my_steps.m(X, gamma)", namespace)
    assert checker.progress(namespace).rerun == M_AND_VLB
    assert checker.progress(namespace).rerun == ()
    module.write_text("import solutions.gmm as ref\ndef m(X, gamma):\n    return ref.M_step(X, 2 * gamma)\n")
    os.utime(module, ns=(os.stat(module).st_atime_ns, os.stat(module).st_mtime_ns + 10**9))
    importlib.reload(namespace["my_steps"])
    assert checker.progress(namespace).rerun == M_AND_VLB


def test_a_function_using_what_cannot_be_keyed_always_reruns(student):
    checker, namespace = student
    namespace["LOCK"] = threading.Lock()           # does not pickle: no key
    _run_cell("def M_step(X, gamma):\n    with LOCK:\n        return ref.M_step(X, gamma)", namespace)
    assert code_key(namespace["M_step"]) is None
    assert checker.progress(namespace).rerun == M_AND_VLB
    assert checker.progress(namespace).rerun == M_AND_VLB


def test_check_always_runs_and_progress_reuses_what_it_found(student):
    checker, namespace = student
    _run_cell("def E_step(X, pi, mu, sigma):\n    return ref.E_step(X, pi, mu, sigma) * 1.01", namespace)
    report = checker.check("E_step", namespace["E_step"])
    assert not report.passed
    summary = checker.progress(namespace)
    assert "E_step" not in summary.rerun and _rows(summary)["E_step"] == "✗"


def test_a_timed_out_result_is_not_remembered(student):
    """A time-out depends on how busy the machine was: such a result is run again next time."""
    from autograder.engine.results import CheckResult, SubmissionResult
    checker, namespace = student
    result = SubmissionResult("this notebook", "gmm")
    result.tests.append(CheckResult("M_step", "visible fixture", False, 0.0, 2.0, status="failed",
                                    feedback="M_step did not return within 20 s"))
    result.tests[-1].timed_out = True
    checker._record("M_step", result, key="any key")
    assert "M_step" not in checker._remembered
    assert checker.progress(namespace).rerun == ("M_step",)   # compute_vlb: remembered


def test_code_keys_of_recursive_and_library_functions():
    namespace = _run_cell("def f(n):\n    return g(n - 1) if n else 0\ndef g(n):\n    return f(n)\n", {})
    before = code_key(namespace["f"])            # mutual recursion: keyed, not looping
    assert before is not None and code_key(namespace["f"]) == before
    _run_cell("def g(n):\n    return f(n) + 1\n", namespace)
    assert code_key(namespace["f"]) != before
    assert code_key(np.linalg.solve) is not None  # a library function: by its name


def test_functions_of_a_module_without_a_file_are_keyed_by_their_code(monkeypatch):
    """A notebook's functions live in ``__main__``, a module without ``__file__``: the student's
    code, not a library's (which would be keyed by name only)."""
    import types
    module = types.ModuleType("notebook_main")
    monkeypatch.setitem(sys.modules, "notebook_main", module)
    _run_cell("def helper():\n    return 1\ndef f():\n    return helper()\n", vars(module))
    before = code_key(module.f)
    _run_cell("def helper():\n    return 2\n", vars(module))
    assert code_key(module.f) != before


# ------------------------------------------------------------------------------- BLAS, layers
_BLAS_PROBE = '''
import json
from threadpoolctl import threadpool_info
import solutions.gmm as ref
from autograder import Checker

def blas_threads():
    return max(i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas")

seen = []
def E_step(X, pi, mu, sigma):
    seen.append(blas_threads())
    return ref.E_step(X, pi, mu, sigma)

before = blas_threads()
report = Checker("gmm").check("E_step", E_step)
print("PROBE" + json.dumps({"before": before, "inside": sorted(set(seen)), "after": blas_threads(),
                            "passed": report.passed}))
'''


def test_checks_run_with_one_blas_thread(tmp_path):
    env = _environment()
    del env["OPENBLAS_NUM_THREADS"]                # BLAS's own default: one thread per core
    done = subprocess.run([sys.executable, "-c", _BLAS_PROBE], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout.split("PROBE", 1)[1])
    assert probe["inside"] == [1] and probe["passed"], probe
    assert probe["after"] == probe["before"], probe     # restored after the check
    if (os.cpu_count() or 1) > 1:
        assert probe["before"] > 1, probe


def test_the_engine_does_not_import_the_notebook_ui():
    code = ("import sys, autograder.engine, autograder.student, autograder.quiet, autograder.interactive as ui; "
            "print(ui.quiet is autograder.quiet.quiet)")
    done = subprocess.run([sys.executable, "-c", code], env=_environment(), capture_output=True, text=True)
    assert done.stdout.strip() == "True", done.stderr
    code = "import sys, autograder.engine.runner, autograder.student; print('autograder.interactive' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], env=_environment(), capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr
