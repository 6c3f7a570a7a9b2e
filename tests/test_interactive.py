"""autograder.interactive: progress bars that stay out of the checks, the EM slider and its fallback,
the notebook set-up helper."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import types

import matplotlib
import numpy as np
import pytest

from autograder import Checker, extras, interactive
from autograder.notebook import environment, kernel
from autograder.notebook import progress as bars_module
from autograder.notebook import slider as slider_module
from autograder.interactive import iteration_slider, progress_bar, quiet, snapshot_grid, slider_widget

matplotlib.use("Agg")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# ------------------------------------------------------------------------------ progress_bar
def test_progress_bar_outside_a_terminal_or_kernel_is_a_silent_pass_through(capsys):
    bar = progress_bar(range(5), desc="restarts")
    assert list(bar) == [0, 1, 2, 3, 4] and len(bar) == 5
    with progress_bar(total=3) as manual:      # tqdm's manual form works without tqdm's output
        manual.update()
        manual.set_postfix(loss=1.0)
        manual.set_description("x")
    assert list(progress_bar(x for x in "ab")) == ["a", "b"]
    assert capsys.readouterr() == ("", "")


def test_progress_bar_shows_tqdm_in_a_terminal(monkeypatch):
    pytest.importorskip("tqdm")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    bar = progress_bar(range(3), desc="restarts", mininterval=0)
    assert type(bar).__module__.startswith("tqdm")
    assert list(bar) == [0, 1, 2]
    assert "restarts" in terminal.getvalue() and "3/3" in terminal.getvalue()


def test_progress_bar_is_silent_inside_quiet_and_with_the_environment_variable(monkeypatch):
    pytest.importorskip("tqdm")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    with quiet():
        with quiet():   # nests
            assert interactive.is_quiet()
        assert interactive.is_quiet() and os.environ[interactive.QUIET_ENV] == "1"
        assert list(progress_bar(range(3))) == [0, 1, 2]
    assert not interactive.is_quiet() and interactive.QUIET_ENV not in os.environ
    monkeypatch.setenv(interactive.QUIET_ENV, "1")
    assert list(progress_bar(range(3))) == [0, 1, 2]
    assert terminal.getvalue() == ""


def test_progress_bar_without_tqdm_falls_back(monkeypatch):
    real = kernel.find_spec
    monkeypatch.setattr(kernel, "find_spec", lambda name: None if name == "tqdm" else real(name))
    monkeypatch.setattr(sys, "stderr", _Terminal())
    bar = progress_bar(range(2))
    assert isinstance(bar, bars_module._SilentBar) and list(bar) == [0, 1]


def test_progress_bar_in_a_kernel_without_ipywidgets_writes_nothing(monkeypatch):
    """tqdm.auto would warn and fall back to a text bar on stderr (nbgrader zeroes such cells)."""
    real = kernel.find_spec
    monkeypatch.setattr(kernel, "in_kernel", lambda: True)
    monkeypatch.setattr(kernel, "find_spec", lambda name: None if name == "ipywidgets" else real(name))
    assert isinstance(progress_bar(range(2)), bars_module._SilentBar)


def test_the_checks_run_quietly_in_the_students_kernel():
    """check() runs the student's train_EM, whose skeleton loops over progress_bar(...): no bar."""
    import inspect

    import solutions.gmm as ref

    bars = []

    def recording_progress_bar(*args, **kwargs):
        bars.append((interactive.is_quiet(), progress_bar(*args, **kwargs)))
        return bars[-1][1]

    namespace = {"np": np, "progress_bar": recording_progress_bar,
                 **{k: getattr(ref, k) for k in ("E_step", "M_step", "compute_vlb")}}
    source = inspect.getsource(ref.train_EM)
    assert "progress_bar(range(restarts)" in source
    exec(source, namespace)
    report = Checker("gmm").check("train_EM", namespace["train_EM"])
    assert report.passed, repr(report)
    assert bars and all(q and isinstance(bar, bars_module._SilentBar) for q, bar in bars)
    assert not interactive.is_quiet()


def test_the_sandbox_child_shows_no_bar(tmp_path):
    """In the grading sandbox, progress_bar is a silent pass-through (no output in the feedback)."""
    from autograder.engine.executors import SandboxExecutor
    from autograder.loading import load_submission

    path = tmp_path / "submission.py"
    path.write_text("from autograder.interactive import progress_bar\n\n"
                    "def probe():\n"
                    "    bar = progress_bar(range(3), desc='restarts')\n"
                    "    return [type(bar).__name__, sum(bar)]\n")
    with SandboxExecutor(load_submission(path)) as executor:
        outcome = executor.call("probe", (), {}, standins={}, seed=0, timeout=30)
    assert outcome.status == "ok", outcome
    assert outcome.value == ["_SilentBar", 3] and outcome.output == ""


def test_the_sandbox_child_does_not_inherit_the_quiet_variable(tmp_path):
    """What autograder/quiet.py says: the child's environment is a whitelist without
    AUTOGRADER_QUIET, even when it starts inside quiet(); its bars are silent all the same."""
    from autograder.engine.executors import SandboxExecutor
    from autograder.loading import load_submission

    path = tmp_path / "submission.py"
    path.write_text("import os\n\ndef probe():\n    return os.environ.get('AUTOGRADER_QUIET')\n")
    with quiet(), SandboxExecutor(load_submission(path)) as executor:
        outcome = executor.call("probe", (), {}, standins={}, seed=0, timeout=30)
    assert outcome.status == "ok", outcome
    assert outcome.value is None


# ------------------------------------------------------------------------------ the slider
def _frames(n=7):
    return [{"i": i, "mu": np.array([i, -i], float)} for i in range(n)]


def _draw_recording(drawn):
    def draw(frame, fig):
        drawn.append(frame["i"])
        ax = fig.subplots()
        ax.plot([0, frame["mu"][0]], [0, frame["mu"][1]])
    return draw


@pytest.mark.parametrize("n, count, expected", [(1, 6, [0]), (2, 6, [0, 1]), (7, 4, [0, 2, 4, 6]),
                                                (31, 6, [0, 6, 12, 18, 24, 30]), (5, 1, [4]), (0, 3, [])])
def test_snapshot_indices_are_evenly_spaced_and_keep_first_and_last(n, count, expected):
    assert slider_module._snapshot_indices(n, count) == expected


def test_snapshot_grid_draws_evenly_spaced_frames_with_their_labels():
    import matplotlib.pyplot as plt
    drawn = []
    fig = snapshot_grid(_frames(7), _draw_recording(drawn), labels=[f"step {i}" for i in range(7)], snapshots=4,
                        columns=3)
    try:
        assert drawn == [0, 2, 4, 6]
        titles = [sf._suptitle.get_text() for sf in fig.subfigs if sf._suptitle is not None]
        assert titles == ["step 0", "step 2", "step 4", "step 6"]
        assert len(fig.axes) == 4
    finally:
        plt.close(fig)


def test_iteration_slider_outside_a_kernel_falls_back_to_the_grid(monkeypatch):
    import matplotlib.pyplot as plt
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    drawn = []
    assert iteration_slider(_frames(3), _draw_recording(drawn)) is None
    assert drawn == [0, 1, 2] and len(shown) == 1
    plt.close("all")


def test_iteration_slider_rejects_mismatched_labels():
    with pytest.raises(ValueError, match="2 labels for 3 frames"):
        iteration_slider(_frames(3), _draw_recording([]), labels=["a", "b"], widgets=False)


def test_slider_widget_draws_on_demand_caches_and_reports_errors():
    pytest.importorskip("ipywidgets")
    drawn = []
    draw = _draw_recording(drawn)

    def draw_or_fail(frame, fig):
        if frame["i"] == 5:
            raise RuntimeError("broken frame")
        draw(frame, fig)

    box = slider_widget(_frames(7), draw_or_fail, description="iteration")
    assert drawn == [0] and box.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert box.slider.max == 6 and box.play.max == 6
    first = box.image.value
    box.slider.value = 3
    assert drawn == [0, 3] and box.image.value != first
    box.slider.value = 0
    box.slider.value = 3
    assert drawn == [0, 3]                      # cached
    box.slider.value = 5                        # the error is shown next to the slider, not lost
    assert any("broken frame" in o.get("text", "") for o in box.children[-1].outputs)
    box.slider.value = 4
    assert box.children[-1].outputs == () and drawn[-1] == 4


def test_first_and_last_png_draws_only_the_first_and_last_frames():
    import matplotlib.pyplot as plt
    drawn, figures = [], plt.get_fignums()
    png = interactive.first_and_last_png(_frames(7), _draw_recording(drawn), labels=[f"step {i}" for i in range(7)])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and drawn == [0, 6]
    assert plt.get_fignums() == figures         # drawn without pyplot: nothing shows on its own


_SLIDER_CELL = """
import numpy as np
from autograder.interactive import iteration_slider

frames = [{"i": i, "mu": np.array([i, -i], float)} for i in range(5)]

def draw(frame, fig):
    ax = fig.subplots()
    ax.plot([0, frame["mu"][0]], [0, frame["mu"][1]])
    ax.set(xlim=(0, 5), ylim=(-5, 0))

iteration_slider(frames, draw, labels=[f"iteration {i}" for i in range(5)])
"""


@pytest.mark.slow
def test_a_saved_notebook_keeps_a_static_picture_of_the_slider(tmp_path):
    """Executed in a real kernel and saved: a PNG of the first and last frames next to the widget,
    which nbconvert's HTML (what nbviewer shows) renders as an image; the live slider is there too."""
    pytest.importorskip("ipywidgets")
    import base64

    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(_SLIDER_CELL)])
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    nbformat.write(nb, tmp_path / "saved.ipynb")
    saved = nbformat.read(tmp_path / "saved.ipynb", 4)
    outputs = saved.cells[0].outputs
    still = [o for o in outputs if "image/png" in o.get("data", {})]
    widget = [o for o in outputs if interactive.WIDGET_VIEW in o.get("data", {})]
    assert len(still) == 1 and len(widget) == 1, outputs
    assert base64.b64decode(still[0].data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "iteration 0 and iteration 4" in still[0].data["text/plain"]
    assert "slider over 5 frames" in widget[0].data["text/plain"]
    assert not [o for o in outputs if o.output_type == "error" or o.get("name") == "stderr"], outputs

    html, _ = HTMLExporter().from_notebook_node(saved)
    assert f'src="data:image/png;base64,{still[0].data["image/png"][:200]}' in html.replace("\n", "")


def test_a_broken_draw_fails_loudly_right_away():
    pytest.importorskip("ipywidgets")

    def draw(frame, fig):
        raise KeyError("mu")

    with pytest.raises(KeyError):
        slider_widget(_frames(2), draw)


# ------------------------------------------------------------------------------ setup()
_LINES = ["numpy>=1.24", 'autograd>=1.6; extra == "advi"', 'tqdm>=4.60; extra == "interactive"',
          "pkg-x; python_version >= '3.10' and extra == 'hard_em'", 'pkg-y;extra=="hard-em"',
          'pkg-z; python_version >= "3.10"']


def test_assignment_requirements_come_from_the_extra_named_after_the_assignment():
    """One parser for the set-up cell and the Gradescope zip: an extra by its normalised name
    (PEP 685: hard_em is hard-em), in either quote and any spacing; the package's own requirements
    are those whose marker names no extra; markers are dropped."""
    assert extras.of_extra(_LINES, "advi") == ["autograd>=1.6"]
    assert extras.of_extra(_LINES, "hard_em") == extras.of_extra(_LINES, "Hard.EM") == ["pkg-x", "pkg-y"]
    assert extras.of_extra(_LINES, "gmm") == []
    assert extras.base(_LINES) == ["numpy>=1.24", "pkg-z"]


def test_the_set_up_cell_and_the_gradescope_zip_read_the_same_requirements(monkeypatch):
    from autograder import gradescope
    monkeypatch.setattr(extras, "requires", lambda distribution=extras.DISTRIBUTION: list(_LINES))
    assert interactive.assignment_requirements("hard_em") == ["pkg-x", "pkg-y"]
    assert gradescope.requirements("hard_em") == ["numpy>=1.24", "pkg-z", "pkg-x", "pkg-y"]
    monkeypatch.setattr(extras, "requires", lambda distribution=extras.DISTRIBUTION: None)
    assert interactive.assignment_requirements("advi") == []
    with pytest.raises(RuntimeError, match="cannot read the requirements"):
        gradescope.requirements("advi")


def test_a_checkout_reads_its_pyproject_and_agrees_with_it():
    """In this checkout the lines come from pyproject.toml itself (an editable install's metadata
    can be older than the file)."""
    import tomllib
    from pathlib import Path
    project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
    lines = extras.requires()
    assert extras.base(lines) == project["dependencies"]
    for extra, requirements in project["optional-dependencies"].items():
        assert extras.of_extra(lines, extra) == requirements


def test_assignment_requirements_of_the_installed_package():
    """The real metadata (this checkout is installed in the virtualenv): advi needs autograd."""
    from importlib import metadata
    try:
        metadata.version(interactive.DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pytest.skip("the course package is not installed")
    assert [r.split(">")[0] for r in interactive.assignment_requirements("advi")] == ["autograd"]
    assert interactive.assignment_requirements("gmm") == []


def test_setup_installs_missing_requirements_only_when_asked(monkeypatch, capsys):
    calls = []
    monkeypatch.setattr(environment, "assignment_requirements", lambda a: ["numpy>=1", "surely-not-installed-x>=2"])
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append(cmd) or
                        subprocess.CompletedProcess(cmd, 0, "", ""))
    interactive.setup("advi", install=False)
    assert calls == []
    out = capsys.readouterr().out
    assert 'pip install "em-vi-course[advi]"' in out and "surely-not-installed-x>=2" in out
    interactive.setup("advi", install=True)
    assert calls == [[sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                      "surely-not-installed-x>=2"]]


def test_setup_reports_a_failed_install(monkeypatch):
    monkeypatch.setattr(environment, "assignment_requirements", lambda a: ["surely-not-installed-x"])
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(cmd, 1, "", "no network"))
    with pytest.raises(RuntimeError, match="no network"):
        interactive.setup("advi", install=True)


def test_setup_does_nothing_when_everything_is_there(monkeypatch, capsys):
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("nothing to install"))
    interactive.setup("gmm", install=True)
    assert capsys.readouterr().out == ""


def test_setup_on_colab_turns_on_the_widget_manager_for_ipywidgets_8(monkeypatch):
    pytest.importorskip("ipywidgets")
    from importlib import metadata
    calls = []
    output = types.SimpleNamespace(enable_custom_widget_manager=lambda: calls.append("on"))
    colab = types.ModuleType("google.colab")
    colab.output = output
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(environment, "assignment_requirements", lambda a: [])
    assert interactive.in_colab()
    interactive.setup("gmm")
    assert calls == (["on"] if int(metadata.version("ipywidgets").split(".")[0]) >= 8 else [])
