"""The batch grader: discovery and student ids, the gradebook (CSV, JSON, HTML with pictures), the
progress bar, resuming an interrupted batch, a killed grading process (by someone else; for its
own memory), Dask, the same grade on every run, and a corpus of hostile submissions that must
never stop the batch."""

from __future__ import annotations

import csv
import json
import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autograder import batch
from autograder.assignments import get_assignment
from conftest import CORPORA, ROOT, remove_planted
from process_tree import Launched, named, oom_killer

GMM = get_assignment("gmm")
CORRECT = CORPORA / "gmm" / "correct" / "b_vectorised.py"
MUTANTS = CORPORA / "gmm" / "mutants"
HOSTILE = CORPORA / "hostile"
# The gmm submissions of the hostile corpus (the advi ones are graded by tests/test_autograd_guard.py).
HOSTILE_GMM = sorted(p for p in HOSTILE.iterdir() if not p.read_bytes().startswith(b"# hostile (advi):"))


def _cli(*args, cwd=ROOT, env=None, timeout=900):
    return subprocess.run([sys.executable, "-m", "autograder", "grade", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _small_batch(folder: Path, n: int = 4) -> Path:
    """n distinct submissions: the correct one and E_step / M_step mutants, each a little different."""
    folder.mkdir(parents=True, exist_ok=True)
    sources = [CORRECT, MUTANTS / "E_step__no_max_trick.py", MUTANTS / "M_step__means_divided_by_N.py",
               MUTANTS / "E_step__transposed.py", MUTANTS / "M_step__unbiased_covariance.py"]
    for i in range(n):
        (folder / f"student{i}.py").write_text(sources[i % len(sources)].read_text() + f"\n# copy {i}\n")
    return folder


def _stored(store: Path) -> dict[Path, tuple]:
    """The finished results in a store (a killed batch may also leave a .tmp-*.part file)."""
    return {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in store.rglob("*.json") if not p.name.startswith(".")}


# ------------------------------------------------------------------------------------ discovery
def test_student_ids_from_an_nbgrader_tree_and_from_files(tmp_path):
    tree = tmp_path / "course" / "submitted"
    for student in ("alice", "bob"):
        (tree / student / "gmm").mkdir(parents=True)
        (tree / student / "gmm" / "gmm.ipynb").write_text("{}")
    (tree / "alice" / "gmm" / "scratch.ipynb").write_text("{}")        # ignored: gmm.ipynb is there
    (tree / "carol" / "gmm").mkdir(parents=True)
    (tree / "carol" / "gmm" / "my_em.py").write_text("")               # no gmm.ipynb: graded
    (tree / "dave" / "other_assignment").mkdir(parents=True)
    (tree / "dave" / "other_assignment" / "x.py").write_text("")       # another assignment: ignored
    entries = batch.discover([tree], "gmm")
    assert [(e.student, e.path.name) for e in entries if "dave" not in str(e.path)] == [
        ("alice", "gmm.ipynb"), ("bob", "gmm.ipynb"), ("carol", "my_em.py")]
    loose = tmp_path / "loose"
    for name in ("x/gmm.ipynb", "y/gmm.ipynb", "zoe.py"):
        (loose / name).parent.mkdir(parents=True, exist_ok=True)
        (loose / name).write_text("")
    assert [e.student for e in batch.discover([loose], "gmm")] == ["x/gmm", "y/gmm", "zoe"]


# ------------------------------------------------------------------------------------ one grading path
def test_a_grading_process_grades_exactly_like_the_grading_function(tmp_path):
    """``supervisor.grade_one`` (what every adapter uses) is ``grading.grade_submission`` in a
    process of its own: the same result, check by check, whether it gets a file, bytes or cells."""
    from autograder.grading import grade_submission
    from autograder.loading.reading import read_code_cells
    from autograder.supervisor import Request, grade_one
    only = ("E_step", "log_likelihood")
    direct = grade_submission(CORRECT, "gmm", only=only, label="x").result.to_dict()
    from_bytes = grade_one(Request("gmm", "x", data=CORRECT.read_bytes(), suffix=".py", only=only))
    from_cells = grade_one(Request("gmm", "x", cells=tuple(read_code_cells(CORRECT)), only=only))
    for record in (from_bytes, from_cells):
        assert {k: v for k, v in record["result"].items() if k != "notes"} == direct
        assert record["process"]["attempts"] == 1 and not record["process"]["deaths"]
        assert 0 < record["process"]["peak_mb"] < 2048


# ------------------------------------------------------------------------------------ gradebook
@pytest.mark.slow
def test_gradebook_csv_json_and_html_reports_with_pictures(tmp_path):
    subs = _small_batch(tmp_path / "subs", 3)
    gradebook = tmp_path / "gb"
    done = _cli("-a", "gmm", "-j", "2", "--only", "E_step,M_step", "-f", "json", "--gradebook", gradebook, subs)
    assert done.returncode == 0, done.stderr
    assert "\r[" not in done.stderr  # no progress bar when not on a terminal
    report = json.loads(done.stdout)
    assert json.loads((gradebook / "gradebook.json").read_text()) == report  # the CLI's JSON contract
    with open(gradebook / "gradebook.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["student"] for r in rows] == ["student0", "student1", "student2"]
    assert list(rows[0])[:2] == ["student", "submission"] and {"E_step", "M_step", "total"} <= set(rows[0])
    assert rows[0]["total"] == "20" and float(rows[1]["E_step"]) < 10 and float(rows[2]["M_step"]) < 10
    for row in rows:
        page = (gradebook / "reports" / f"{row['student']}.html").read_text()
        assert "<img src=\"data:image/png;base64," in page and "Clusters after" in page
        assert row["student"] in page
    assert "✗ E_step" in (gradebook / "reports" / "student1.html").read_text()
    assert "reports/student2.html" in (gradebook / "index.html").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ["prankster", "hard_em"])
def test_reports_show_the_students_face_next_to_the_reference(tmp_path, assignment):
    correct = sorted((CORPORA / assignment / "correct").glob("*.py"))[0]
    broken = CORPORA / "prankster" / "mutants" / "run_m_step__face_divided_by_positions.py"
    subs = tmp_path / "subs"
    subs.mkdir()
    shutil.copy(correct, subs / "good.py")
    if assignment == "prankster":
        shutil.copy(broken, subs / "bad.py")
    done = _cli("-a", assignment, "-j", "1", "--only", "run_e_step", "-f", "json", "--gradebook", tmp_path / "gb", subs)
    assert done.returncode == 0, done.stderr
    for name in ("good", "bad") if assignment == "prankster" else ("good",):
        page = (tmp_path / "gb" / "reports" / f"{name}.html").read_text()
        assert "<img src=\"data:image/png;base64," in page and "Face F and background B" in page, name
        assert ("hard-EM iterations" in page) == (assignment == "hard_em")


@pytest.mark.slow
def test_progress_bar_only_on_a_terminal(tmp_path):
    subs = _small_batch(tmp_path / "subs", 2)
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "autograder", "grade", "-a", "gmm", "-j", "1", "--only",
                                "E_step", "-f", "csv", str(subs)], cwd=ROOT, stdout=slave, stderr=slave)
    os.close(slave)
    output = b""
    while True:
        ready, _, _ = select.select([master], [], [], 120)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    process.wait(timeout=60)
    os.close(master)
    text = output.decode(errors="replace")
    assert re.search(r"\r\[#+\.*\] 2/2", text), text
    assert "student0" in text


# ------------------------------------------------------------------------------------ resuming
@pytest.mark.slow
def test_an_interrupted_batch_resumes_without_regrading(tmp_path):
    subs = _small_batch(tmp_path / "subs", 6)
    gradebook = tmp_path / "gb"
    command = [sys.executable, "-m", "autograder", "grade", "-a", "gmm", "-j", "1", "--only", "E_step",
               "-f", "json", "--gradebook", str(gradebook), str(subs)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 300
    while len(_stored(gradebook / ".results")) < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the whole batch dies at once, mid-submission
    process.wait()
    before = _stored(gradebook / ".results")
    assert 2 <= len(before) < 6, len(before)
    assert not (gradebook / "gradebook.json").exists()
    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(before)} of 6 submission(s) already graded" in rerun.stderr
    after = _stored(gradebook / ".results")
    assert len(after) == 6
    for path, stamp in before.items():
        assert after[path] == stamp  # not graded again, not rewritten
    report = json.loads(rerun.stdout)
    assert len(report) == 6 and all(r["error"] is None for r in report)
    fresh = _cli("-a", "gmm", "-j", "2", "--only", "E_step", "-f", "json", subs)
    assert json.loads(fresh.stdout) == report  # resumed = graded in one go
    # A third run grades nothing: every result is reused.
    third = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert "6 of 6 submission(s) already graded" in third.stderr and json.loads(third.stdout) == report


@pytest.mark.slow
def test_a_killed_grading_process_loses_nothing(tmp_path):
    """A grading process killed from outside (an administrator, the OOM killer picking the wrong
    process) is not its submission's fault: its checks go on in a fresh process."""
    subs = _small_batch(tmp_path / "subs", 6)
    gradebook = tmp_path / "gb"
    run = Launched([sys.executable, "-m", "autograder", "grade", "-a", "gmm", "-j", "2", "--only", "E_step,M_step",
                    "-f", "json", "--gradebook", str(gradebook), str(subs)], tmp_path, cwd=ROOT)
    try:
        deadline = time.monotonic() + 300
        while not _stored(gradebook / ".results") and time.monotonic() < deadline:
            time.sleep(0.02)
        graders = []
        while not graders and time.monotonic() < deadline:   # one busy with the rest of the batch
            graders = named(run.descendants(), "ag-grader")
        assert graders, "no grading process found"
        os.kill(graders[0], signal.SIGKILL)
        assert run.returncode(600) == 0, run.err.read_text()
    finally:
        run.close()
    assert "the grading process died" in run.err.read_text()
    report = json.loads(run.out.read_text())
    assert len(report) == 6 and all(r["error"] is None for r in report), [r["error"] for r in report]
    assert report[0]["score"] == report[0]["max_score"] == 20
    assert len(_stored(gradebook / ".results")) == 6


def _grader_side_oom(folder: Path) -> Path:
    """A correct submission whose assert_m_step_maximises makes the grader build 1 GB of covariances."""
    source = CORRECT.read_text().replace(
        "def assert_m_step_maximises(X, gamma, M_step, compute_vlb, n_trials=20, scale=0.05, seed=0):\n",
        "def assert_m_step_maximises(X, gamma, M_step, compute_vlb, n_trials=20, scale=0.05, seed=0):\n"
        "    M_step(np.ones((200, 3500)), np.full((200, 10), 0.1))\n", 1)
    assert "3500" in source
    (folder / "a_culprit.py").write_text(source)
    return folder / "a_culprit.py"


@pytest.mark.slow
def test_a_grading_process_killed_for_its_memory_costs_only_its_own_submission(tmp_path):
    """Finding 7, in a memory-limited run (the OOM killer emulated for this test's processes): the
    culprit's grading process dies twice on its first check of assert_m_step_maximises, which fails;
    so do its other checks that kill it; every neighbour keeps every point, the culprit keeps the
    rest of its points, and the report says what happened."""
    subs = _small_batch(tmp_path / "subs", 3)
    _grader_side_oom(subs)
    with oom_killer() as kills:
        done = _cli("-a", "gmm", "-j", "2", "--only", "M_step,assert_m_step_maximises,assert_bound_is_tight",
                    "-f", "json", "--gradebook", tmp_path / "gb", subs)
    assert done.returncode == 0, done.stderr
    assert len(kills) >= 2, kills
    report = {Path(r["submission"]).name: r for r in json.loads(done.stdout)}
    culprit = report.pop("a_culprit.py")
    for name, entry in report.items():
        assert entry["error"] is None and "died" not in json.dumps(entry), name
    assert report["student0.py"]["score"] == report["student0.py"]["max_score"]
    lost = {t["function"] for t in culprit["tests"] if not t["passed"]}
    assert lost == {"assert_m_step_maximises"}, lost
    assert all("grader's process running it died" in t["feedback"] for t in culprit["tests"] if not t["passed"])
    assert "the grading process died while running assert_m_step_maximises" in done.stderr


# ------------------------------------------------------------------------------------ dask
@pytest.mark.slow
def test_dask_cluster_gives_identical_results(tmp_path):
    distributed = pytest.importorskip("distributed")
    subs = _small_batch(tmp_path / "subs", 3)
    local = _cli("-a", "gmm", "-j", "2", "--only", "E_step,M_step", "-f", "json", subs)
    assert local.returncode == 0, local.stderr
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster:
        remote = _cli("-a", "gmm", "--dask-scheduler", cluster.scheduler_address, "--only", "E_step,M_step",
                      "-f", "json", "--gradebook", tmp_path / "gb", subs)
    assert remote.returncode == 0, remote.stderr
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    assert len(list((tmp_path / "gb" / ".results").rglob("*.json"))) == 3


# ------------------------------------------------------------------------------------ determinism
@pytest.mark.slow
def test_same_submission_same_grade_whatever_seeds_it_sets(tmp_path):
    """The submission reseeds from the clock and uses unseeded generators of every kind."""
    submission = HOSTILE / "sets_global_seeds.py"
    first = _cli("-a", "gmm", "--only", "train_EM", "-f", "json", submission)
    env = dict(os.environ, PYTHONHASHSEED="12345", TMPDIR=str(tmp_path))
    other = tmp_path / "elsewhere"
    other.mkdir()
    shutil.copy(submission, other / submission.name)
    second = _cli("-a", "gmm", "--only", "train_EM", "-f", "json", other / submission.name, env=env)
    assert first.returncode == second.returncode == 0, second.stderr
    a, b = json.loads(first.stdout)[0], json.loads(second.stdout)[0]
    assert a["tests"] == b["tests"] and a["score"] == b["score"] == GMM.points("train_EM")


# ------------------------------------------------------------------------------------ hostile input
def _expectations(path: Path) -> tuple[set, set]:
    head = path.read_bytes()[:4000].decode("utf-8", "replace")
    loses = re.search(r"# loses: ([\w, ]+)", head).group(1).strip()
    may = re.search(r"# may lose: ([\w, ]+)", head)
    functions = {t.name for t in GMM.tasks}
    lost = functions if loses == "all" else set() if loses == "nothing" else {f.strip() for f in loses.split(",")}
    assert lost <= functions, path
    return lost, {f.strip() for f in may.group(1).split(",")} if may else set()


def _marked_processes(marker: bytes) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker in f.read().split(b"\0"):
                        found.append(int(entry))
            except OSError:
                pass
    return found


# A course of this run's own: other tests (and other suites on the machine) plant theirs at once.
CLASSMATE = f"/srv/nbgrader/exchange/course-{os.getpid()}/inbound/alice+gmm+2026-11-20 10:00:00.000000 UTC"
OTHER_CHECKOUT = f"/var/tmp/autograder-test-other-checkout-{os.getpid()}"


def _host_state() -> dict:
    """What no submission may change on the host (and a marker it tries to write to the kernel log)."""
    def read(path):
        try:
            with open(path) as f:
                return f.read()
        except OSError:
            return None
    kmsg = subprocess.run(["dmesg"], capture_output=True, text=True).stdout if shutil.which("dmesg") else ""
    return {"pid_max": read("/proc/sys/kernel/pid_max"), "hostname": read("/proc/sys/kernel/hostname"),
            "marker_in_kernel_log": "autograder-hostile-7731" in kmsg,
            "shm": sorted(p for p in os.listdir("/dev/shm") if "autograder-hostile" in p) if os.path.isdir("/dev/shm") else []}


@pytest.fixture(scope="module")
def hostile_batch(tmp_path_factory):
    from autograder.loading import submission_from_cells
    from autograder.sandbox import Sandbox
    with Sandbox(submission_from_cells(["def f():\n    return 1"])) as probe:
        probe.start()
        held = " ".join(probe.isolation["held"])
    if "allowlist filesystem" not in held or "pids cgroup" not in held and os.geteuid() == 0:
        pytest.skip("the hostile corpus (fork bombs, kill(-1), reading the disk) needs the namespace sandbox")
    tmp = tmp_path_factory.mktemp("hostile")
    # What a classmate's notebook in nbgrader's exchange and another checkout of the course look
    # like: reads_exchange.py would copy its E_step from them if it could see them.
    correct_e_step = (CORRECT.read_text().split("def E_step", 1)[1].split("\ndef ", 1)[0])
    helper = CORRECT.read_text().split("def log_gaussians", 1)[1].split("\ndef ", 1)[0]
    source = "import numpy as np\nLOG_2PI = np.log(2 * np.pi)\ndef log_gaussians" + helper + "\ndef E_step" + correct_e_step
    os.makedirs(CLASSMATE, exist_ok=True)
    Path(CLASSMATE, "gmm.ipynb").write_text(json.dumps({"cells": [{"cell_type": "code", "source": source}],
                                                        "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    os.makedirs(f"{OTHER_CHECKOUT}/solutions/gmm", exist_ok=True)
    Path(OTHER_CHECKOUT, "solutions", "gmm", "__init__.py").write_text(source)
    planted = (f"{CLASSMATE}/gmm.ipynb", f"{OTHER_CHECKOUT}/solutions/gmm/__init__.py")
    planted_before = {p: Path(p).read_bytes() for p in planted}
    host = _host_state()
    before = {p.name: p.read_bytes() for p in HOSTILE.iterdir()}
    started = time.monotonic()
    try:
        done = _cli("-a", "gmm", "-j", "2", "--max-call-seconds", "8", "--max-submission-seconds", "60",
                    "--no-figures", "-f", "json", "--gradebook", tmp / "gb", *HOSTILE_GMM, timeout=1200)
        planted_after = {p: Path(p).read_bytes() for p in planted}
    finally:
        remove_planted(CLASSMATE.split("/inbound/")[0])
        shutil.rmtree(OTHER_CHECKOUT, ignore_errors=True)
    return {"done": done, "before": before, "gradebook": tmp / "gb", "seconds": time.monotonic() - started,
            "host": host, "host_after": _host_state(), "planted": (planted_before, planted_after)}


@pytest.mark.slow
def test_the_hostile_corpus_never_stops_the_batch(hostile_batch):
    done = hostile_batch["done"]
    assert done.returncode == 0, done.stderr
    report = {Path(r["submission"]).name: r for r in json.loads(done.stdout)}
    assert set(report) == {p.name for p in HOSTILE_GMM}
    problems = []
    for name, entry in sorted(report.items()):
        lost, may = _expectations(HOSTILE / name)
        scores = {}
        for test in entry["tests"]:
            s, m = scores.get(test["function"], (0.0, 0.0))
            scores[test["function"]] = (s + test["score"], m + test["max_score"])
        assert entry["max_score"] == GMM.points(), name
        for function, (score, maximum) in scores.items():
            if function in lost and score >= maximum:
                problems.append(f"{name}: {function} kept {score}/{maximum}")
            if function not in lost | may and score < maximum:
                problems.append(f"{name}: {function} lost points: {score}/{maximum}")
        for test in entry["tests"]:  # every failure says what happened, in a bounded text
            if not test["passed"]:
                assert test["feedback"].strip(), (name, test["name"])
            assert len(test["feedback"]) < 50_000, (name, test["name"], len(test["feedback"]))
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_hostile_submissions_change_nothing_outside_their_sandbox(hostile_batch):
    assert {p.name: p.read_bytes() for p in HOSTILE.iterdir()} == hostile_batch["before"]
    assert hostile_batch["host_after"] == hostile_batch["host"]   # pid_max, hostname, kernel log, /dev/shm
    assert not hostile_batch["host_after"]["marker_in_kernel_log"]
    assert hostile_batch["planted"][0] == hostile_batch["planted"][1]   # the classmate's files are untouched
    assert not (ROOT / "autograder" / "pwned.py").exists()
    assert not _marked_processes(b"4242.5"), "background processes outlived their sandbox"
    gradebook = hostile_batch["gradebook"]
    stored = [json.loads(p.read_text()) for p in (gradebook / ".results").rglob("*.json")]
    assert len(stored) == len(HOSTILE_GMM)
    assert all(set(r) >= {"key", "result"} and r["result"]["max_score"] == GMM.points() for r in stored)
    # On time: no grading outlived its budget (60 s of calls + 30 s to load + 30 s of slack).
    assert max(r["seconds"] for r in stored) <= 120 + 10, sorted(r["seconds"] for r in stored)[-3:]
    with open(gradebook / "gradebook.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == len(HOSTILE_GMM)
    print(f"hostile corpus: {len(stored)} submissions in {hostile_batch['seconds']:.0f} s")


def test_store_writes_are_atomic_and_reads_are_defensive(tmp_path):
    store = batch.ResultStore(tmp_path)
    assert store.get("ab" * 20) is None
    store.put({"key": "ab" * 20, "result": {"score": 1}})
    assert store.get("ab" * 20)["result"] == {"score": 1}
    store.path("cd" * 20).parent.mkdir(parents=True, exist_ok=True)
    store.path("cd" * 20).write_text('{"key": "cd')            # a half-written file from a crash
    assert store.get("cd" * 20) is None
    assert not list(tmp_path.rglob(".tmp-*"))
    # What a batch killed in the middle of a write leaves behind is never read as a result.
    (store.path("ef" * 20).parent / ".tmp-x.part").parent.mkdir(parents=True, exist_ok=True)
    (store.path("ef" * 20).parent / ".tmp-x.part").write_text('{"key": "' + "ef" * 20 + '", "result": {}}')
    assert store.get("ef" * 20) is None


def test_the_fingerprint_covers_everything_a_grade_depends_on():
    from autograder.batch import graded_files
    names = {name for name, _ in graded_files()}
    for needed in ("autograder/sandbox/guest/boot.py", "autograder/sandbox/worker.py",
                   "autograder/engine/runner.py", "autograder/assignments/prankster/__init__.py",
                   "datasets/prankster/camera.py", "datasets/gmm/samples.npz", "solutions/prankster/__init__.py"):
        assert needed in names, needed   # (hard_em grades with prankster's checks, data and reference)
    assert not [n for n in names if "__pycache__" in n or n.startswith("/")]
