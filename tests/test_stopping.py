"""A stopped run stops everything it started (issue 15).

The CLI (and ``nbgrader autograde``) run under a subreaper launcher (tests/process_tree.py), so
every process the run starts (the zygote, grading processes, sandbox children and whatever
they start) stays findable after its parent dies. Each test stops the run while grading
processes and sandbox children are busy, then checks that within a few seconds no process of
the run is left, that the store holds only whole results, and that a rerun resumes from them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CORPORA, ROOT, grader_side_stall
from process_tree import Launched, named

pytestmark = pytest.mark.slow

CORRECT = CORPORA / "gmm" / "correct" / "b_vectorised.py"
HOSTILE = CORPORA / "hostile"
GRACE = 5.0     # seconds within which every process of a stopped run must be gone


# Keeps its grading process busy in grader code: conftest.grader_side_stall in its assertion, on
# data large enough that the grader's train_EM stand-in takes ~0.5 s a fit. (The stand-in stops an
# assertion after 21 fits: on 20000 points, 0.03 s a fit, the stalled grading was over within
# seconds, and in a full suite once before the test's signal reached the CLI.)
GRADER_BUSY = CORRECT.read_text() + """

def assert_recovers_parameters(train_EM, pi, mu, sigma, n_points=2000, n_datasets=5, tol=0.15):
""" + "".join(f"    {line}\n" for line in grader_side_stall(400_000).splitlines())


def _is_sandbox(cmdline: str) -> bool:
    """A sandbox process: the launcher, or a call process started from the guest's boot script."""
    return "autograder.sandbox.launcher" in cmdline or "/sandbox/boot.py" in cmdline


def _batch(folder: Path, stall: str = "sleeping.py", n: int = 4) -> Path:
    """A submission that keeps its grading busy (a hostile corpus file, or "grader_busy"), then n
    distinct correct ones."""
    folder.mkdir(parents=True)
    if stall == "grader_busy":
        (folder / "a_grader_busy.py").write_text(GRADER_BUSY)
    else:
        shutil.copy(HOSTILE / stall, folder / f"a_{stall}")
    for i in range(n):
        (folder / f"b_correct{i}.py").write_text(CORRECT.read_text() + f"\n# copy {i}\n")
    return folder


def _stored(store: Path) -> dict[Path, tuple]:
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in store.rglob("*.json") if not p.name.startswith(".")}


def _half_written(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".tmp-*")] if folder.exists() else []


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _busy(run: Launched, graders: int = 1) -> bool:
    """At least ``graders`` grading processes and one sandbox child are running."""
    below = run.descendants()
    return (len(named(below, "ag-grader")) >= graders
            and any(_is_sandbox(cmdline) for _, cmdline in below))


def _grade_command(subs: Path, gradebook: Path, *extra) -> list[str]:
    return [sys.executable, "-m", "autograder", "grade", "-a", "gmm", "-j", "2", "--only", "E_step,M_step,log_likelihood",
            "--max-call-seconds", "3", "-f", "json", "--gradebook", str(gradebook), *extra, str(subs)]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_signal_to_the_cli_ends_every_process_and_a_rerun_resumes(tmp_path, signum):
    subs = _batch(tmp_path / "subs")
    gradebook = tmp_path / "gb"
    command = _grade_command(subs, gradebook)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    run = Launched(command, tmp_path, cwd=ROOT, env=dict(os.environ, TMPDIR=str(scratch)))
    try:
        _wait_for(lambda: _stored(gradebook / ".results") and _busy(run), 300, "a stored result and busy graders")
        stopped_at = time.monotonic()
        run.signal(signum)
        code = run.returncode(GRACE + 10)
        assert code == 128 + signum, (code, run.err.read_text())
        left = run.wait_until_alone(GRACE)
        assert not left, f"processes of the run survived {signal.Signals(signum).name}: {left}"
        assert time.monotonic() - stopped_at < GRACE + 10
        assert f"stopped by {signal.Signals(signum).name}" in run.err.read_text()
        assert not list(scratch.iterdir()), "temporary files of the run were left behind"
    finally:
        run.close()
    assert not _half_written(gradebook), _half_written(gradebook)
    before = _stored(gradebook / ".results")
    assert 1 <= len(before) < 5
    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(before)} of 5 submission(s) already graded" in rerun.stderr
    after = _stored(gradebook / ".results")
    assert len(after) == 5 and all(after[p] == stamp for p, stamp in before.items())
    report = {Path(r["submission"]).name: r for r in json.loads(rerun.stdout)}
    assert all(report[f"b_correct{i}.py"]["score"] == report[f"b_correct{i}.py"]["max_score"] for i in range(4))


def test_sigkill_of_the_cli_ends_every_process_even_with_the_grader_stuck(tmp_path):
    """The grading process is busy in grader code (a stand-in that never returns) when the CLI
    is killed outright: the zygote sees its socket close and takes everything down with it."""
    subs = _batch(tmp_path / "subs", stall="grader_busy", n=2)
    command = [sys.executable, "-m", "autograder", "grade", "-a", "gmm", "-j", "2", "--only",
               "assert_recovers_parameters", "-f", "json", "--gradebook", str(tmp_path / "gb"), str(subs)]
    run = Launched(command, tmp_path, cwd=ROOT)
    try:
        _wait_for(lambda: len(_stored(tmp_path / "gb" / ".results")) >= 2 and _busy(run), 300,
                  "the correct ones graded and the stalled one busy")
        time.sleep(1.0)
        run.signal(signal.SIGKILL)
        assert run.returncode(10) == -signal.SIGKILL
        left = run.wait_until_alone(GRACE)
        assert not left, f"processes of the run survived SIGKILL: {left}"
    finally:
        run.close()
    assert not _half_written(tmp_path / "gb")


def test_sigterm_while_the_grader_itself_is_stuck(tmp_path):
    subs = _batch(tmp_path / "subs", stall="grader_busy", n=1)
    command = [sys.executable, "-m", "autograder", "grade", "-a", "gmm", "-j", "1", "--only",
               "assert_recovers_parameters", "-f", "json", "--gradebook", str(tmp_path / "gb"), str(subs)]
    run = Launched(command, tmp_path, cwd=ROOT)
    try:
        _wait_for(lambda: _busy(run), 300, "the stalled grading")
        time.sleep(2.0)         # deep inside the grader's own train_EM
        run.signal(signal.SIGTERM)
        assert run.returncode(GRACE + 10) == 128 + signal.SIGTERM, run.err.read_text()
        assert not run.wait_until_alone(GRACE)
    finally:
        run.close()
    assert not _stored(tmp_path / "gb" / ".results") and not _half_written(tmp_path / "gb")


# ------------------------------------------------------------------------------------ nbgrader
def _nbgrader_course(root: Path) -> Path:
    """A course copy with three gmm submissions: one stuck grader-side, one sleeping, a correct one."""
    import nbformat
    root.mkdir()
    shutil.copy(ROOT / "nbgrader_config.py", root)
    (root / "solutions").mkdir()
    shutil.copy(ROOT / "solutions" / "__init__.py", root / "solutions")
    shutil.copytree(ROOT / "solutions" / "gmm", root / "solutions" / "gmm",
                    ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    done = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", "gmm", "--force",
                           "--log-level=WARN"], cwd=root, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    release = nbformat.read(root / "course" / "gmm" / "gmm.ipynb", 4)
    for student, text in (("a_stuck", GRADER_BUSY), ("b_sleeping", (HOSTILE / "sleeping.py").read_text()),
                          ("c_correct", CORRECT.read_text())):
        nb = nbformat.from_dict(json.loads(json.dumps(release)))
        nb.cells.append(nbformat.v4.new_code_cell(text))   # its definitions win
        folder = root / "submitted" / student / "gmm"
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / "gmm.ipynb")
    return root


@pytest.mark.nbgrader
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL],
                         ids=lambda s: s.name)
def test_a_stopped_nbgrader_autograde_leaves_nothing_behind(tmp_path, signum):
    course = _nbgrader_course(tmp_path / "course")
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    run = Launched([sys.executable, "-m", "nbgrader", "autograde", "gmm", "--force", "--log-level=INFO"], tmp_path,
                   cwd=course, env=env)
    try:
        _wait_for(lambda: _busy(run), 300, "autograde grading the first notebook")
        time.sleep(1.0)
        run.signal(signum)
        assert run.returncode(GRACE + 10) is not None, "nbgrader did not stop"
        left = run.wait_until_alone(GRACE)
        assert not left, f"processes of nbgrader autograde survived {signal.Signals(signum).name}: {left}"
    finally:
        run.close()


# ------------------------------------------------------------------------------------ dask
def _run_processes() -> list[tuple[int, str]]:
    """Grading processes, zygotes and sandbox children below this test process."""
    from process_tree import descendants
    below = descendants(os.getpid())
    ours = set(named(below, "ag-grader")) | set(named(below, "ag-zygote"))
    return [(pid, cmd) for pid, cmd in below if pid in ours or _is_sandbox(cmd)]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_stopping_a_dask_client_run_ends_its_grading_on_the_workers(tmp_path, signum):
    distributed = pytest.importorskip("distributed")
    subs = _batch(tmp_path / "subs", stall="grader_busy", n=1)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster:
        command = [sys.executable, "-m", "autograder", "grade", "-a", "gmm", "--dask-scheduler",
                   cluster.scheduler_address, "--only", "assert_recovers_parameters", "-f", "json", str(subs)]
        run = Launched(command, tmp_path, cwd=ROOT)
        try:
            _wait_for(lambda: named(_run_processes(), "ag-grader"), 300, "grading processes on the workers")
            time.sleep(2.0)
            run.signal(signum)
            assert run.returncode(GRACE + 10) is not None
            assert not run.wait_until_alone(GRACE)
            # The cancelled tasks kill their grading processes; the workers' zygotes end when idle.
            deadline = time.monotonic() + 20
            while _run_processes() and time.monotonic() < deadline:
                time.sleep(0.2)
            assert not _run_processes(), _run_processes()
        finally:
            run.close()
