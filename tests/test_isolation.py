"""Operating-system isolation of the sandbox child (autograder/sandbox/isolation.py).

Student code cannot read the reference by path, write outside its private /tmp, see other
submissions or the gradebook, reach the network, signal processes outside its sandbox (not even
with kill(-1) as root), leave processes behind (double fork + setsid included), or fork without
bound. Where namespaces are unavailable the tests of what only they provide are skipped, and the
fallback is tested on its own.
"""

from __future__ import annotations

import os
import socket
import statistics
import subprocess
import time

import pytest

from autograder.engine.reference import course_root
from autograder.loading import submission_from_cells
from autograder.sandbox import Limits, Sandbox

pytestmark = pytest.mark.skipif(not os.sys.platform.startswith("linux"), reason="Linux isolation")

CODE = r'''
import os, signal, socket, subprocess, time

def read(path):
    with open(path) as f:
        return f.read()

def listing(path):
    return sorted(os.listdir(path))

def write(path):
    with open(path, "w") as f:
        f.write("written by a submission")
    return "written"

def kill_everyone():
    try:
        os.kill(-1, signal.SIGKILL)
    except OSError as exc:
        return type(exc).__name__
    return "sent"

def probe_kill(pid):
    os.kill(pid, 0)
    return "reachable"

def daemon(marker):
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execvp("sleep", ["sleep", marker])
        os._exit(0)
    os.wait()
    return "started"

def fork_bomb():
    while True:
        os.fork()

def connect(port):
    with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
        s.sendall(b"hello")
    return "connected"

def forked_answer():
    pid = os.fork()
    if pid == 0:
        return "child"
    os.waitpid(pid, 0)
    return "parent"

def double(x):
    return 2 * x
'''


@pytest.fixture(scope="module")
def box():
    with Sandbox(submission_from_cells([CODE]), Limits(call_seconds=10)) as sandbox:
        assert sandbox.call("double", (2,)).value == 4
        yield sandbox


@pytest.fixture(scope="module")
def namespaces(box):
    held = " ".join(box.isolation["held"])
    if "namespaces" not in held:
        pytest.skip("no namespaces on this machine: " + "; ".join(box.isolation["missing"]))
    return box


def _sleepers(marker: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    parts = f.read().split(b"\0")
                with open(f"/proc/{entry}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if parts[:2] == [b"sleep", marker.encode()] and state != "Z":
                found.append(int(entry))
    return found


def _wait_for(condition, seconds: float = 5.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition()


def test_isolation_reports_what_held(namespaces):
    held = " ".join(namespaces.isolation["held"])
    for what in ("namespaces", "read-only filesystem", "hidden", "private writable /tmp", "private /proc",
                 "no capabilities", "no_new_privs"):
        assert what in held, namespaces.isolation
    assert not namespaces.isolation["missing"], namespaces.isolation


def test_the_reference_cannot_be_read_by_path(namespaces):
    root = course_root()
    reference = root / "solutions" / "gmm" / "__init__.py"
    assert reference.is_file()
    outcome = namespaces.call("read", (str(reference),))
    assert outcome.status == "error" and outcome.error_type in ("FileNotFoundError", "PermissionError")
    visible = namespaces.call("listing", (str(root),)).value
    assert "solutions" not in visible and ".git" not in visible and "tests" not in visible
    assert "autograder" in visible  # what Python needs stays


def test_system_sockets_and_secrets_are_hidden(namespaces):
    if os.path.isdir("/run"):
        assert namespaces.call("listing", ("/run",)).value == []   # e.g. /run/docker.sock
    if os.path.isfile("/etc/shadow"):
        assert namespaces.call("read", ("/etc/shadow",)).value == ""


def test_files_are_read_only_outside_the_private_tmp(namespaces, tmp_path):
    package = course_root() / "autograder"
    outcome = namespaces.call("write", (str(package / "pwned.py"),))
    assert outcome.error_type == "OSError" and "Read-only" in outcome.message
    assert not (package / "pwned.py").exists()
    # The test's own tmp folder lives in the host's /tmp, which the child does not see at all.
    (tmp_path / "submission.py").write_text("original")
    assert namespaces.call("write", (str(tmp_path / "submission.py"),)).error_type == "FileNotFoundError"
    assert (tmp_path / "submission.py").read_text() == "original"
    assert namespaces.call("write", ("scratch.txt",)).value == "written"  # its own work folder


def test_hidden_paths_are_empty_and_the_rest_read_only():
    folder = f"/var/tmp/autograder-hidden-test-{os.getpid()}"
    os.makedirs(folder, exist_ok=True)
    try:
        with open(f"{folder}/gradebook.csv", "w") as f:
            f.write("alice,60\n")
        with Sandbox(submission_from_cells([CODE]), hidden=[folder]) as hidden, \
                Sandbox(submission_from_cells([CODE])) as plain:
            hidden.start()
            if "namespaces" not in " ".join(hidden.isolation["held"]):
                pytest.skip("no namespaces on this machine")
            assert hidden.call("listing", (folder,)).value == []
            assert plain.call("read", (f"{folder}/gradebook.csv",)).value == "alice,60\n"
            assert "Read-only" in plain.call("write", (f"{folder}/gradebook.csv",)).message
        with open(f"{folder}/gradebook.csv") as f:
            assert f.read() == "alice,60\n"
    finally:
        subprocess.run(["rm", "-rf", folder])


def test_kill_minus_one_reaches_only_the_sandbox(namespaces):
    bystander = subprocess.Popen(["sleep", "600"])
    try:
        outcome = namespaces.call("kill_everyone")
        assert outcome.status in ("ok", "error")
        assert outcome.value in ("sent", "ProcessLookupError") or outcome.error_type
        time.sleep(0.2)
        assert bystander.poll() is None  # alive, and so are we
        # The grader's processes are not even addressable from inside.
        assert namespaces.call("probe_kill", (os.getpid(),)).error_type == "ProcessLookupError"
        assert namespaces.call("double", (3,)).value == 6
    finally:
        bystander.kill()
        bystander.wait()


def test_double_forked_daemons_die_with_the_sandbox(namespaces):
    marker = "4243.25"
    with Sandbox(submission_from_cells([CODE])) as sandbox:
        assert sandbox.call("daemon", (marker,)).value == "started"
        _wait_for(lambda: _sleepers(marker))
    deadline = time.monotonic() + 5
    while _sleepers(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _sleepers(marker)


def test_a_fork_bomb_is_contained(namespaces):
    started = time.monotonic()
    with Sandbox(submission_from_cells([CODE]), Limits(call_seconds=20)) as sandbox:
        outcome = sandbox.call("fork_bomb")
        assert outcome.status in ("error", "crash", "timeout")
        assert sandbox.call("double", (5,)).value == 10
    assert time.monotonic() - started < 25


def test_no_network(namespaces):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    try:
        outcome = namespaces.call("connect", (server.getsockname()[1],))
        assert outcome.status == "error" and outcome.error_type in (
            "OSError", "ConnectionRefusedError", "TimeoutError"), outcome
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        server.close()


def test_forked_copies_cannot_answer_for_the_worker(box):
    assert box.call("forked_answer").value == "parent"
    assert box.call("double", (7,)).value == 14  # the protocol is still in step


def test_unseeded_generators_of_every_kind_are_repeatable():
    code = ("import numpy as np, random\n"
            "def draws():\n"
            "    return [np.random.Generator(np.random.PCG64()).random(), np.random.default_rng().random(),\n"
            "            np.random.default_rng(np.random.SeedSequence()).random(), random.Random().random(),\n"
            "            random.SystemRandom().random(), np.random.RandomState().rand(), np.random.rand(),\n"
            "            random.random()]\n")
    values = []
    for seed in (11, 11, 12):
        with Sandbox(submission_from_cells([code])) as sandbox:
            values.append(sandbox.call("draws", seed=seed).value)
    assert values[0] == values[1]
    assert all(a != b for a, b in zip(values[0], values[2]))


def test_the_fallback_without_namespaces(monkeypatch):
    monkeypatch.setenv("AUTOGRADER_SANDBOX", "plain")
    marker = "4243.75"
    with Sandbox(submission_from_cells([CODE])) as sandbox:
        assert sandbox.call("double", (4,)).value == 8
        missing = " ".join(sandbox.isolation["missing"])
        assert "namespaces" in missing and "kill(-1)" in missing
        # kill(-1) is refused (signal 0: harmless even if the guard failed)
        outcome = sandbox.call("probe_kill", (-1,))
        assert outcome.error_type == "PermissionError"
        assert sandbox.call("daemon", (marker,)).value == "started"
        _wait_for(lambda: _sleepers(marker))
    _wait_for(lambda: not _sleepers(marker))  # the nanny, a subreaper, killed the orphan


def test_isolation_costs_little(namespaces, record_property):
    seconds = []
    for _ in range(5):
        with Sandbox(submission_from_cells(["def f():\n    return 1"])) as sandbox:
            assert sandbox.call("f").value == 1
            seconds.append(sandbox.isolation["seconds"])
    median = statistics.median(seconds)
    record_property("isolation_seconds", median)
    print(f"isolation set-up per child: median {median * 1000:.1f} ms")
    assert median < 0.25


def test_an_unprivileged_grader_gets_the_same_isolation(tmp_path):
    """The user-namespace path: the grader itself runs as uid 1000 in a user namespace."""
    script = tmp_path / "grader.py"
    script.write_text(
        "import json, os\n"
        "from autograder.loading import submission_from_cells\n"
        "from autograder.sandbox import Sandbox\n"
        f"code = {CODE!r}\n"
        "with Sandbox(submission_from_cells([code])) as box:\n"
        "    result = {'uid': os.geteuid(), 'double': box.call('double', (21,)).value,\n"
        "              'reference': box.call('listing', (os.environ['COURSE'],)).value,\n"
        "              'write': box.call('write', (os.environ['PACKAGE'] + '/pwned.py',)).message,\n"
        "              'bomb': box.call('fork_bomb').status, 'after': box.call('double', (1,)).value,\n"
        "              'isolation': box.isolation}\n"
        "print(json.dumps(result))\n")
    env = dict(os.environ, COURSE=str(course_root()), PACKAGE=str(course_root() / "autograder"))
    done = subprocess.run(["unshare", "--user", "--map-user=1000", "--map-group=1000", os.sys.executable,
                           str(script)], capture_output=True, text=True, timeout=120, env=env)
    if done.returncode != 0 and ("unshare" in done.stderr and "Operation not permitted" in done.stderr
                                 or "unrecognized option" in done.stderr):
        pytest.skip("no unprivileged user namespaces here: " + done.stderr.strip()[:200])
    assert done.returncode == 0, done.stderr
    result = __import__("json").loads(done.stdout.strip().splitlines()[-1])
    assert result["uid"] == 1000 and result["double"] == 42 and result["after"] == 2
    assert "user" in " ".join(result["isolation"]["held"]) and not result["isolation"]["missing"]
    assert "solutions" not in result["reference"] and "Read-only" in result["write"]
    assert result["bomb"] in ("error", "crash", "timeout")
