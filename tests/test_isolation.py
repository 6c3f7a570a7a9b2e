"""Operating-system isolation of the sandbox (autograder/sandbox/: launcher, zygote, filesystem,
isolation, seccomp).

Student code sees an allowlist filesystem (the Python installation read-only, a private /tmp, a
/dev of three nodes, a read-only /proc of its own), cannot import or read the grader, cannot write
outside /tmp, reach the network or a kernel interface, signal processes outside its call, keep
anything (files, shared memory, processes, counters) from one call to the next, or change a host
setting. Where namespaces are unavailable the tests of what only they provide are skipped, and
the fallback is tested on its own (it must say what it loses).
"""

from __future__ import annotations

import json
import os
import re
import socket
import statistics
import subprocess
import sys
from pathlib import Path
import textwrap
import time

import numpy as np
import pytest

from autograder.engine.reference import course_root
from autograder.loading import submission_from_cells
from autograder.sandbox import IsolationPolicy, Limits, Sandbox
from autograder.sandbox import filesystem as sandbox_filesystem
from autograder.sandbox import policy as sandbox_policy
from conftest import ROOT, remove_planted

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux isolation")

CODE = r'''
import errno, gc, os, signal, socket, subprocess, sys, time

def read(path):
    with open(path) as f:
        return f.read()

def listing(path):
    return sorted(os.listdir(path))

def write(path):
    with open(path, "w") as f:
        f.write("written by a submission")
    return "written"

def walk():
    """Every path below / (not following symlinks, /proc left out): what exists for the call."""
    found = []
    for folder, dirs, files in os.walk("/", followlinks=False):
        if folder == "/proc" or folder.startswith("/proc/"):
            dirs[:] = []
            continue
        found.append(folder)
        found.extend(os.path.join(folder, f) for f in files)
        found.extend(os.path.join(folder, d) for d in dirs if os.path.islink(os.path.join(folder, d)))
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(folder, d))]
    return found

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
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)", marker]
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv(sys.executable, sleeper)
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

def cpu_count():
    return os.cpu_count()

def oom_score_adj():
    with open("/proc/self/oom_score_adj") as f:
        return int(f.read())

def nproc():
    import resource
    return resource.getrlimit(resource.RLIMIT_NPROC)

def host_powers():
    """What a capability-less uid 0 could still do to the host (every probe harmless: files are
    opened for writing and closed unwritten, signal 0 is sent)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    found = {"uid": os.getuid()}
    for path in ("/proc/sys/kernel/hostname", "/proc/sys/kernel/pid_max", "/proc/sys/vm/drop_caches"):
        try:
            os.close(os.open(path, os.O_WRONLY))
            found[path] = "writable"
        except OSError as exc:
            found[path] = errno.errorcode.get(exc.errno, str(exc.errno))
    for name, pid in (("signal the parent", os.getppid()), ("signal pid 1", 1)):
        found[name] = "allowed" if libc.kill(pid, 0) == 0 else errno.errorcode.get(ctypes.get_errno())
    return found

def sleep_daemon(marker):
    """A double-forked daemon that is not Python (/bin/sleep: readable by every identity)."""
    import shutil
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            os.execv(shutil.which("sleep"), ["sleep", "600", marker])
        os._exit(0)
    os.wait()
    return "started"

def errno_of(fn, *args):
    try:
        fn(*args)
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return "allowed"
'''


@pytest.fixture(scope="module")
def box():
    with Sandbox(submission_from_cells([CODE]), Limits(call_seconds=10)) as sandbox:
        assert sandbox.call("double", (2,)).value == 4
        yield sandbox


@pytest.fixture(scope="module")
def namespaces(box):
    held = " ".join(box.isolation["held"])
    if "allowlist filesystem" not in held:
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
            if marker.encode() in parts[1:] and state != "Z":
                found.append(int(entry))
    return found


def _wait_for(condition, seconds: float = 5.0):
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition()


def _one_off(source: str, name: str, *args, limits: Limits = Limits(call_seconds=20), **kwargs):
    with Sandbox(submission_from_cells([textwrap.dedent(source)]), limits) as sandbox:
        return sandbox.call(name, args, **kwargs), sandbox


# ------------------------------------------------------------------------------------ what held
def test_isolation_reports_what_held(namespaces):
    held = " ".join(namespaces.isolation["held"])
    for what in ("namespaces", "allowlist filesystem", "private read-only /proc", "fresh mount, IPC and PID",
                 "(no socket in any)", "no capabilities", "no_new_privs", "system-call filter"):
        assert what in held, namespaces.isolation
    assert not namespaces.isolation["missing"], namespaces.isolation


def test_without_the_system_call_filter_every_call_has_a_network_namespace_of_its_own(namespaces):
    """The calls share the sandbox's network namespace only because none can open a socket in it;
    without the filter, sockets open, and a namespace per call keeps what one call does to its
    network from the next (its counters are not readable either: a call's /proc has no net/)."""
    with Sandbox(submission_from_cells([STATEFUL]), policy=IsolationPolicy(seccomp=False)) as sandbox:
        assert sandbox.call("in_netns_counters").error_type in ("FileNotFoundError", "PermissionError")
        held = " ".join(sandbox.isolation["held"])
    assert "fresh mount, IPC, network and PID namespaces for every call" in held, held
    assert "system-call filter" not in held, held


# ------------------------------------------------------------------------------------ the allowlist
def test_the_filesystem_is_exactly_the_allowlist(namespaces):
    view = sandbox_policy.layout(IsolationPolicy())
    roots = [p for p, _ in view["binds"]] + [g for g, _, _ in view["runtime"]] + view["devices"] + ["/tmp"]
    links = {p for p, _ in view["symlinks"]}
    hidden = [p for p, _ in view["hide"]]
    outcome = namespaces.call("walk", timeout=60)
    assert outcome.ok, outcome
    unexpected = []
    for path in outcome.value:
        inside = any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)
        ancestor = any(r.startswith(path.rstrip("/") + "/") for r in roots + sorted(links)) or path == "/"
        if not (inside or ancestor or path in links):
            unexpected.append(path)
        for h in hidden:   # covered: empty
            assert not path.startswith(h + "/"), path
    assert not unexpected, unexpected[:20]
    tops = {p.split("/")[1] for p in outcome.value if p.count("/") == 1 and p != "/"}
    assert not tops & {"etc", "home", "srv", "var", "run", "sys", "mnt", "opt", "boot", "media"}, tops


def test_nothing_of_the_checkout_is_visible(namespaces):
    root = course_root()
    assert (root / "solutions" / "gmm" / "__init__.py").is_file()
    for path in (root / "solutions" / "gmm" / "__init__.py", root / "autograder" / "assignments" / "gmm" / "theory.py",
                 root / "nbgrader_config.py", root / "autograder" / "engine" / "check.py"):
        outcome = namespaces.call("read", (str(path),))
        assert outcome.error_type == "FileNotFoundError", (path, outcome)
    listing = namespaces.call("listing", (str(root),))
    venv = os.path.realpath(sys.prefix)
    if venv.startswith(str(root) + "/"):   # the checkout's own virtualenv: only its folder, only Python
        assert listing.value == [os.path.relpath(venv, root).split("/")[0]]
        assert set(namespaces.call("listing", (venv,)).value) <= {"lib", "lib64", "pyvenv.cfg", "bin"}
    else:
        assert listing.error_type == "FileNotFoundError"


def test_dev_has_exactly_three_nodes_and_no_kernel_interface(namespaces):
    assert namespaces.call("listing", ("/dev",)).value == ["null", "random", "urandom"]
    for node in ("/dev/kmsg", "/dev/mem", "/dev/tty", "/dev/console", "/dev/shm/x", "/dev/vsock"):
        assert namespaces.call("write", (node,)).error_type in ("FileNotFoundError", "OSError"), node
    assert namespaces.call("write", ("/dev/null",)).value == "written"   # (harmless)
    assert namespaces.call("listing", ("/sys",)).error_type == "FileNotFoundError"


def test_proc_is_private_and_read_only(namespaces):
    """A call's /proc holds bound files of its own and plain files, no live folder: looking up a
    new entry of a real /proc/<pid> or /proc/sys takes a number from the kernel's machine-wide
    inode counter (tests/corpora/hostile/counts_calls_inode_numbers.py left a mark in it so)."""
    listing = namespaces.call("listing", ("/proc",)).value
    assert not [p for p in listing if p.isdigit()] and "sys" not in listing and "thread-self" not in listing
    assert sorted(namespaces.call("listing", ("/proc/self",)).value) == sorted(
        name.split("/")[1] for name in sandbox_filesystem.PROC_BOUND if name.startswith("self/"))
    for path in ("/proc/1/root", "/proc/self/fd", "/proc/self/task", "/proc/sys"):
        assert namespaces.call("listing", (path,)).error_type == "FileNotFoundError", path
    assert namespaces.call("read", ("/proc/self/status",)).value.startswith("Name:")
    for path in ("/proc/sys/kernel/pid_max", "/proc/sys/kernel/hostname", "/proc/sysrq-trigger",
                 "/proc/sys/vm/drop_caches", "/proc/self/oom_score_adj"):
        outcome = namespaces.call("write", (path,))
        assert outcome.error_type == "FileNotFoundError" or outcome.error_type in ("OSError", "PermissionError") and (
            "Read-only" in outcome.message or "Permission" in outcome.message), (path, outcome)


def test_host_wide_proc_files_are_masked(namespaces):
    """Every physical page's flags (/proc/kpageflags: which pages of the allowlist were read
    lately, readable by a capability-less uid 0), every task's scheduling and timers: empty."""
    from autograder.sandbox.filesystem import PROC_MASKED
    present = [name for name in PROC_MASKED if os.path.exists(f"/proc/{name}")]
    assert "kpageflags" in present and "vmstat" in present
    for name in present:
        outcome = namespaces.call("read", (f"/proc/{name}",))
        assert outcome.ok and outcome.value == "", (name, outcome)
        # (every mask but the first is a bind of the first: read-only by inheritance, not by a remount)
        written = namespaces.call("write", (f"/proc/{name}",))
        assert written.error_type == "OSError" and "Read-only" in written.message, (name, written)


def test_machine_wide_counters_read_zero(namespaces):
    """/proc/stat's fork count carried a bit from one call to the next (a call left it at a
    residue, the next found it 0-7 past: tests/corpora/hostile/counts_calls_fork_count.py, 4/4
    before): every number in it reads 0, its lines stay (glibc counts the CPUs by them)."""
    text = namespaces.call("read", ("/proc/stat",)).value
    host = open("/proc/stat").read()
    assert [line.split()[0] for line in text.splitlines()] == [line.split()[0] for line in host.splitlines()]
    assert {word for line in text.splitlines() for word in line.split()[1:]} == {"0"}
    assert "processes 0" in text.splitlines()
    assert namespaces.call("cpu_count").value == os.cpu_count()


def test_host_settings_do_not_change(namespaces):
    def host():
        with open("/proc/sys/kernel/pid_max") as f:
            pid_max = f.read()
        return pid_max, socket.gethostname()
    before = host()
    outcome, _ = _one_off('''
        import socket
        def tamper():
            for path, text in (("/proc/sys/kernel/pid_max", "400"), ("/proc/sys/kernel/hostname", "pwned")):
                try:
                    with open(path, "w") as f:
                        f.write(text)
                except OSError:
                    pass
            try:
                socket.sethostname("pwned")
            except OSError:
                pass
            return socket.gethostname()
    ''', "tamper")
    assert outcome.value == "sandbox"
    assert host() == before


def test_files_are_read_only_outside_the_private_tmp(namespaces, tmp_path):
    site = [p for p in sys.path if p.endswith("site-packages")][0]
    outcome = namespaces.call("write", (os.path.join(site, "pwned.py"),))
    assert outcome.error_type == "OSError" and "Read-only" in outcome.message
    assert not os.path.exists(os.path.join(site, "pwned.py"))
    (tmp_path / "submission.py").write_text("original")   # the host's /tmp does not exist inside
    assert namespaces.call("write", (str(tmp_path / "submission.py"),)).error_type == "FileNotFoundError"
    assert (tmp_path / "submission.py").read_text() == "original"
    assert namespaces.call("write", ("scratch.txt",)).value == "written"   # its own /tmp
    # ... fresh for every call (holding only the mount points of allowlisted folders below /tmp,
    # such as a checkout's .venv in /tmp/x)
    below_tmp = sorted({Path(p).relative_to("/tmp").parts[0] for p in (sys.prefix, sys.base_prefix)
                        if p.startswith("/tmp/")})
    assert namespaces.call("listing", ("/tmp",)).value == below_tmp


def test_other_courses_exchanges_and_gradebooks_do_not_exist(namespaces):
    """The allowlist: folders the grader never names are absent, not merely hidden."""
    made = []
    try:
        for folder in (f"/srv/nbgrader/exchange/course-{os.getpid()}/inbound/alice+gmm+2026",
                       f"/var/tmp/other-checkout-{os.getpid()}"):
            os.makedirs(folder, exist_ok=True)
            made.append(folder)
            with open(os.path.join(folder, "gmm.ipynb"), "w") as f:
                f.write('{"answers": 42}')
        for folder in made:
            assert namespaces.call("read", (os.path.join(folder, "gmm.ipynb"),)).error_type == "FileNotFoundError"
        # hidden= is accepted and ignored: there is nothing to hide by name
        with Sandbox(submission_from_cells([CODE]), hidden=[made[1]]) as sandbox:
            assert sandbox.call("listing", (made[1],)).error_type == "FileNotFoundError"
    finally:
        remove_planted(f"/srv/nbgrader/exchange/course-{os.getpid()}")
        remove_planted(f"/var/tmp/other-checkout-{os.getpid()}", empty_parents=False)


@pytest.mark.parametrize("memory_copy", [True, False], ids=["served-from-memory", "on-disk"])
def test_an_installed_copy_of_the_grader_is_hidden(tmp_path, monkeypatch, memory_copy):
    """A non-editable install puts autograder/ and solutions/ in site-packages: covered on disk,
    absent from the copy served from memory (which holds only the student distributions: a
    package without one is left out too)."""
    site = tmp_path / "site-packages"
    for rel, text in (("autograder/__init__.py", ""), ("autograder/assignments/gmm/theory.py", "ANSWER = 1"),
                      ("solutions/gmm/__init__.py", "ANSWER = 1"), ("solutions.py", "ANSWER = 1"),
                      ("em_vi_course-0.1.0.dist-info/RECORD", "autograder/assignments/gmm/theory.py,,\n"),
                      ("em_vi_course-0.1.0.dist-info/top_level.txt", "autograder\n"),
                      ("__editable___em_vi_course_finder.py", "MAPPING = {}"), ("harmless/__init__.py", "OK = 1")):
        (site / rel).parent.mkdir(parents=True, exist_ok=True)
        (site / rel).write_text(text)
    real = sandbox_policy.child_sys_path
    monkeypatch.setattr(sandbox_policy, "child_sys_path", lambda: real() + [str(site)])
    monkeypatch.setattr(sandbox_policy, "_cache", {})
    import autograder.sandbox.process as process
    monkeypatch.setattr(process, "child_sys_path", sandbox_policy.child_sys_path)
    code = f'''
import os
def probe():
    site = {str(site)!r}
    out = {{"listing": sorted(os.listdir(site)) if os.path.isdir(site) else None}}
    for rel in ("autograder", "solutions", "em_vi_course-0.1.0.dist-info"):
        try:
            out[rel] = sorted(os.listdir(os.path.join(site, rel)))
        except FileNotFoundError:
            out[rel] = "absent"
    for rel in ("solutions.py", "__editable___em_vi_course_finder.py"):
        try:
            out[rel] = open(os.path.join(site, rel)).read()
        except FileNotFoundError:
            out[rel] = "absent"
    results = {{}}
    for name in ("solutions", "solutions.gmm", "autograder.assignments", "autograder.assignments.gmm.theory",
                 "harmless"):
        try:
            __import__(name)
            results[name] = "imported"
        except ImportError as exc:
            results[name] = type(exc).__name__
    out["imports"] = results
    return out
'''
    with Sandbox(submission_from_cells([code]), policy=IsolationPolicy(memory_copy=memory_copy)) as sandbox:
        sandbox.start()
        if "allowlist filesystem" not in " ".join(sandbox.isolation["held"]):
            pytest.skip("no namespaces on this machine")
        value = sandbox.call("probe").value
    grader = {"solutions", "solutions.gmm", "autograder.assignments", "autograder.assignments.gmm.theory"}
    assert {value["imports"][n] for n in grader} == {"ModuleNotFoundError"}, value["imports"]
    if memory_copy:
        assert value["listing"] == []
        assert {value[rel] for rel in ("autograder", "solutions", "em_vi_course-0.1.0.dist-info", "solutions.py",
                                       "__editable___em_vi_course_finder.py")} == {"absent"}
        assert value["imports"]["harmless"] == "ModuleNotFoundError"
    else:
        assert value["autograder"] == value["solutions"] == value["em_vi_course-0.1.0.dist-info"] == []
        assert value["solutions.py"] == value["__editable___em_vi_course_finder.py"] == ""
        assert value["imports"]["harmless"] == "imported"


# ------------------------------------------------------------------------------------ processes
def test_kill_minus_one_reaches_only_the_sandbox(namespaces):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        outcome = namespaces.call("kill_everyone")
        assert outcome.status in ("ok", "error")
        time.sleep(0.2)
        assert bystander.poll() is None  # alive, and so are we
        # The grader's processes are not even addressable from inside.
        assert namespaces.call("probe_kill", (os.getpid(),)).error_type == "ProcessLookupError"
        assert namespaces.call("double", (3,)).value == 6
    finally:
        bystander.kill()
        bystander.wait()


def test_double_forked_daemons_die_with_their_call(namespaces):
    marker = f"4243.{os.getpid()}"   # (a sleeper of another run is not this one's)
    with Sandbox(submission_from_cells([CODE])) as sandbox:
        assert sandbox.call("daemon", (marker,)).value == "started"
        # The zygote starts a job only once the last one is gone with everything it started (the
        # PID namespace's init outlives none of its processes): once the next call has answered,
        # the daemon is gone, however late a loaded machine tears the namespace down.
        assert sandbox.call("double", (1,)).value == 2
        assert not _sleepers(marker)
    assert not _sleepers(marker)


def test_a_fork_bomb_is_contained(namespaces):
    started = time.monotonic()
    with Sandbox(submission_from_cells([CODE]), Limits(call_seconds=20)) as sandbox:
        outcome = sandbox.call("fork_bomb")
        assert outcome.status in ("error", "crash", "timeout")
        assert sandbox.call("double", (5,)).value == 10
    assert time.monotonic() - started < 25


def _cpu_controller_usable() -> bool:
    """A cpu controller in the grader's own cgroup (v1 or v2) that a sandbox's cgroup can be a child of."""
    from autograder.sandbox import isolation
    return "cpu" in isolation.cgroup_bases()


@pytest.mark.skipif(os.geteuid() != 0, reason="cgroups of its own need root")
def test_the_sandbox_is_one_cpu_share_whatever_it_starts():
    """60 spinning processes, each in a session (an autogroup) of its own, slowed a neighbour
    sandbox's 0.13 s call to 3.0 s (x23: a time-out for a longer one). In a cpu cgroup of its own
    the scheduler weighs a sandbox as one entity, like any other sandbox."""
    if not _cpu_controller_usable():
        pytest.skip("no usable cpu controller on this machine")
    with Sandbox(submission_from_cells([CODE])) as sandbox:
        assert sandbox.call("double", (2,)).value == 4
        assert "cpu cgroup" in " ".join(sandbox.isolation["held"]), sandbox.isolation
        with open(f"/proc/{sandbox._proc.pid}/cgroup") as f:
            lines = f.read().splitlines()
        own = [line for line in lines if "autograder-" in line.split(":", 2)[2]]
        assert any("cpu" in line.split(":")[1].split(",") or line.startswith("0::") for line in own), lines


# ------------------------------------------------------------------------------------ memory
HOLDS_MEMORY = r'''
import os

def hold(tmp_mb):
    """tmp_mb of files in the call's /tmp: memory in no process's address space, which RLIMIT_AS
    does not see (SysV segments and memfds, once the other way, are denied)."""
    held, block = 0, b"\1" * (1 << 20)
    for i in range(tmp_mb // 8):   # (8 MB files: RLIMIT_FSIZE caps each)
        with open(f"/tmp/held{i}", "wb") as f:
            for _ in range(8):
                f.write(block)
        held += 8
    return held
'''


@pytest.mark.skipif(os.geteuid() != 0, reason="cgroups of its own need root")
def test_files_in_tmp_count_against_the_sandbox_memory():
    """Without a memory cgroup one call with RLIMIT_AS 400 MB held 640 MB of SysV segments and
    memfds (ok, 640), and the host's OOM killer would have picked a neighbour; those are denied
    now, files in the call's /tmp are the memory it can still hold outside its address space. In
    the sandbox's memory cgroup (a child of the grader's own) everything its processes hold is
    charged: the call is stopped with a memory verdict, the next call runs, the cgroup goes with
    the sandbox."""
    from autograder.sandbox import isolation
    if "memory" not in isolation.cgroup_bases():
        pytest.skip("no usable memory controller on this machine")
    own = isolation.cgroup_bases()["memory"]
    with Sandbox(submission_from_cells([HOLDS_MEMORY]),
                 Limits(call_seconds=30, memory_mb=400, sandbox_memory_mb=256), IsolationPolicy(tmp_mb=1024)) as sandbox:
        assert sandbox.call("hold", (64,)).value == 64   # (it works, below the limit)
        assert "memory cgroup (at most 256 MB for all its processes together" in " ".join(sandbox.isolation["held"])
        folder = sandbox._memory_cgroup
        assert os.path.dirname(folder) == own and os.path.basename(folder) == f"autograder-{sandbox._proc.pid}"
        outcome = sandbox.call("hold", (640,))
        assert outcome.status == "crash" and outcome.error_type == "MemoryError", outcome
        assert "ran out of memory" in outcome.message and "256 MB" in outcome.message, outcome
        _wait_for(lambda: isolation.memory_used(folder) < 128 << 20, 10.0)   # (the grader waits up to 2 s)
        assert sandbox.call("hold", (64,)).value == 64
    assert not os.path.exists(folder)


def test_calls_are_the_first_the_oom_killer_picks(namespaces):
    """Never the zygote (every later call would lose its sandbox): a call's /proc is read-only,
    so its oom_score_adj is written before it becomes so."""
    outcome = namespaces.call("oom_score_adj")
    assert outcome.value == 1000, outcome


def test_without_a_memory_controller_the_report_says_so(monkeypatch, tmp_path):
    """(No cgroup is joined here: the bases are fakes, plain folders.)"""
    from autograder.sandbox import isolation
    monkeypatch.setattr(isolation, "cgroup_bases", lambda: {})
    report = isolation.Report()
    assert isolation.join_cgroups(64, 256, report) == {}
    missing = " ".join(report.missing)
    assert "a memory cgroup (no usable memory controller): a sandbox's memory is capped per process" in missing
    assert "pids cgroup (no usable pids controller)" in missing and not report.held
    # a v1 memory controller: the limit is written, swap too where it is accounted, then the process joins
    own = tmp_path / f"autograder-{os.getpid()}"
    own.mkdir()
    for name in ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "cgroup.procs"):
        (own / name).write_text("")
    monkeypatch.setattr(isolation, "cgroup_bases", lambda: {"memory": str(tmp_path)})
    report = isolation.Report()
    assert isolation.join_cgroups(64, 256, report) == {"memory": str(own)}
    assert (own / "memory.limit_in_bytes").read_text() == (own / "memory.memsw.limit_in_bytes").read_text() \
        == str(256 << 20)
    assert (own / "cgroup.procs").read_text() == str(os.getpid())
    assert any(h.startswith("memory cgroup (at most 256 MB") for h in report.held), report.held
    assert not any("memory" in m for m in report.missing), report.missing


def test_a_sandbox_cgroup_is_a_child_of_the_graders_own(monkeypatch, tmp_path):
    """v1 and v2, at a hierarchy's root or not, through a mount of a subtree: always the folder of
    the cgroup this process is in, never one it is not in, never inside a sandbox's cgroup."""
    from autograder.sandbox import isolation
    (tmp_path / "memory/process_api/abc").mkdir(parents=True)
    (tmp_path / "pids").mkdir()
    (tmp_path / "cpu/sub").mkdir(parents=True)
    (tmp_path / "unified/grader").mkdir(parents=True)
    (tmp_path / "unified/grader/cgroup.controllers").write_text("cpu memory pids\n")
    mounts = [f"35 31 0:32 / {tmp_path}/memory rw,relatime - cgroup cgroup rw,memory",
              f"39 31 0:36 / {tmp_path}/pids rw,relatime - cgroup cgroup rw,pids",
              f"32 31 0:29 /docker/x {tmp_path}/cpu rw,relatime - cgroup cgroup rw,cpu,cpuacct",
              f"41 31 0:38 / {tmp_path}/unified rw,relatime - cgroup2 cgroup2 rw"]

    def bases(*lines, mounts=mounts):
        monkeypatch.setattr(isolation, "_cgroup_lines", lambda: (list(lines), mounts))
        return isolation.cgroup_bases()

    assert bases("4:memory:/process_api/abc", "8:pids:/", "1:cpu,cpuacct:/docker/x/sub") == {
        "memory": f"{tmp_path}/memory/process_api/abc", "pids": f"{tmp_path}/pids", "cpu": f"{tmp_path}/cpu/sub"}
    assert bases("4:memory:/process_api/gone", "8:pids:/", "1:cpu,cpuacct:/elsewhere") == {"pids": f"{tmp_path}/pids"}
    assert bases("4:memory:/process_api/abc/autograder-7", "8:pids:/autograder-7") == {}
    assert bases("0::/grader", mounts=mounts[3:]) == {c: f"{tmp_path}/unified/grader" for c in ("pids", "memory", "cpu")}
    assert bases("0::/other", mounts=mounts[3:]) == {}


def test_no_network(namespaces):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    try:
        outcome = namespaces.call("connect", (server.getsockname()[1],))
        assert outcome.status == "error" and outcome.error_type in (
            "OSError", "PermissionError", "ConnectionRefusedError", "TimeoutError"), outcome
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        server.close()


def test_forked_copies_cannot_answer_for_the_call(box):
    assert box.call("forked_answer").value == "parent"
    assert box.call("double", (7,)).value == 14


def test_the_system_call_filter(namespaces):
    outcome, _ = _one_off('''
        import ctypes, errno, mmap, os, socket, stat, threading, subprocess, sys
        def result(value):
            return "allowed" if value >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
        def _check(value):
            if value < 0:
                raise OSError(ctypes.get_errno(), "denied")
        def _is_socket(fd):
            try:
                return stat.S_ISSOCK(os.fstat(fd).st_mode)
            except OSError:
                return False
        def probe():
            libc = ctypes.CDLL(None, use_errno=True)
            out = {}
            out["unshare"] = result(libc.unshare(0x10000000))
            out["mount"] = result(libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
            out["add_key"] = result(libc.syscall(248, b"user", b"counter", b"1", 1, -4))
            out["keyctl"] = result(libc.syscall(250, 0, -4, 0, 0, 0))
            out["bpf"] = result(libc.syscall(321, 0, 0, 0))
            out["perf_event_open"] = result(libc.syscall(298, 0, 0, -1, -1, 0))
            out["io_uring_setup"] = result(libc.syscall(425, 1, 0))
            out["ptrace"] = result(libc.syscall(101, 16, 1, 0, 0))
            out["statx"] = result(libc.syscall(332, -100, b"/", 0, 0x1000, ctypes.create_string_buffer(256)))
            out["pidfd_open"] = result(libc.syscall(434, os.getpid(), 0))
            out["clone_newuser"] = result(libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0))
            try:
                socket.socket(40, socket.SOCK_STREAM)   # AF_VSOCK
                out["vsock"] = "allowed"
            except OSError as exc:
                out["vsock"] = errno.errorcode.get(exc.errno, "?")
            # a pidfd's inode number counts every process and thread the machine started: no way to
            # one (tried on the call's own channel socket: it cannot make a socket)
            channel = socket.socket(fileno=os.dup(next(fd for fd in range(3, 64) if _is_socket(fd))))
            for name, call in (("SO_PEERPIDFD", lambda: channel.getsockopt(socket.SOL_SOCKET, 77)),
                               ("SO_PASSPIDFD", lambda: channel.setsockopt(socket.SOL_SOCKET, 76, 1)),
                               ("SO_COOKIE", lambda: channel.getsockopt(socket.SOL_SOCKET, 57, 8))):
                try:
                    call()
                    out[name] = "allowed"
                except OSError as exc:
                    out[name] = errno.errorcode.get(exc.errno, "?")
            out["sockopts"] = channel.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_STREAM
            channel.detach()
            # what takes a number from the machine-wide inode counter (get_next_ino)
            huge, x86 = 0x40000 | mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, os.uname().machine == "x86_64"
            libc.mmap.restype = ctypes.c_void_p
            libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t] + [ctypes.c_int] * 4
            failed = (None, 2**64 - 1)   # (MAP_FAILED)
            for name, call in (("pipe", os.pipe), ("pipe2", lambda: os.pipe2(0)), ("socket", socket.socket),
                               ("socketpair", socket.socketpair), ("unix socket", lambda: socket.socket(socket.AF_UNIX)),
                               ("vsock", lambda: socket.socket(40, socket.SOCK_STREAM)),
                               ("memfd_hugetlb", lambda: os.memfd_create("x", 4)),
                               ("shm_hugetlb", lambda: _check(libc.shmget(0, 2 << 20, 0o1600 | 0o4000))),
                               ("mmap_hugetlb", lambda: _check(-(libc.mmap(None, 2 << 20, 3, huge, -1, 0) in failed))),
                               ("mq_open", lambda: _check(libc.syscall(240 if x86 else 180, b"q", 0o102, 0o600, None))),
                               ("io_setup", lambda: _check(libc.syscall(206 if x86 else 0, 1, ctypes.byref(ctypes.c_ulong())))),
                               ("memfd_secret", lambda: _check(libc.syscall(447, 0))),
                               ("subprocess", lambda: subprocess.run([sys.executable, "-c", "print(6*7)"]))):
                try:
                    call()
                    out[name] = "allowed"
                except OSError as exc:
                    out[name] = errno.errorcode.get(exc.errno, "?")
            # what takes a number from the kernel's shmem mount (shmem_reserve_inode), and /dev/zero
            libc.mremap.restype = ctypes.c_void_p
            libc.mremap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t, ctypes.c_int]
            private = mmap.mmap(-1, 1 << 16, flags=mmap.MAP_PRIVATE)
            where = ctypes.addressof(ctypes.c_char.from_buffer(private))
            for name, call in (("memfd", lambda: os.memfd_create("x")),
                               ("shmget", lambda: _check(libc.shmget(0, 4096, 0o1600))),
                               ("shared anonymous", lambda: _check(-(libc.mmap(None, 4096, 3, 0x21, -1, 0) in failed))),
                               ("shared_validate anonymous", lambda: _check(-(libc.mmap(None, 4096, 3, 0x23, -1, 0) in failed))),
                               ("mmap.mmap(-1, n)", lambda: mmap.mmap(-1, 4096)),
                               ("mremap of size 0", lambda: _check(-(libc.mremap(where, 0, 4096, 1) in failed))),
                               ("/dev/zero", lambda: open("/dev/zero", "rb"))):
                try:
                    call()
                    out[name] = "allowed"
                except OSError as exc:
                    out[name] = errno.errorcode.get(exc.errno, "?")
            out["private mmap"] = len(private) == 1 << 16
            big = libc.mmap(None, 1 << 20, 3, 0x22, -1, 0)             # (MAP_PRIVATE | MAP_ANONYMOUS, grown by mremap:
            out["mremap"] = libc.mremap(big, 1 << 20, 4 << 20, 1) not in failed   # what realloc does)
            with open("/tmp/shared", "w+b") as f:                      # (a file of the call's own /tmp: its own numbers)
                f.truncate(4096)
                out["shared file mmap"] = len(mmap.mmap(f.fileno(), 4096, flags=mmap.MAP_SHARED)) == 4096
            out["ctypes callback"] = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: 2 * x)(21) == 42
            t = threading.Thread(target=lambda: None); t.start(); t.join()
            out["thread"] = "allowed"
            out["fork"] = "allowed" if (lambda p: p == 0 and os._exit(0) or os.waitpid(p, 0))(os.fork()) else "?"
            out["stat"] = bool(os.stat("/tmp"))
            return out
    ''', "probe", limits=Limits(call_seconds=30))
    assert outcome.ok, outcome
    value = outcome.value
    for name in ("unshare", "mount", "add_key", "keyctl", "bpf", "perf_event_open", "io_uring_setup", "ptrace",
                 "pidfd_open", "clone_newuser", "SO_PEERPIDFD", "SO_PASSPIDFD", "SO_COOKIE", "pipe", "pipe2",
                 "socket", "socketpair", "unix socket", "vsock", "memfd_hugetlb", "shm_hugetlb", "mmap_hugetlb",
                 "mq_open", "io_setup", "memfd_secret", "subprocess", "memfd", "shmget", "shared anonymous",
                 "shared_validate anonymous", "mmap.mmap(-1, n)", "mremap of size 0"):
        assert value[name] == "EPERM", (name, value)
    assert value["/dev/zero"] == "ENOENT", value
    assert value["statx"] == "ENOSYS" and value["sockopts"] is True
    assert value["private mmap"] is True and value["mremap"] is True and value["shared file mmap"] is True
    assert value["ctypes callback"] is True
    assert value["thread"] == "allowed" and value["fork"] == "allowed" and value["stat"] is True


# ------------------------------------------------------------------------------------ the page cache
PAGE_CACHE = r'''
import ctypes, errno, mmap, os, resource

def _errno(fn):
    try:
        fn()
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
    return "allowed"

def rare_file():
    """The largest module of scipy's folder that nothing imports by itself (test suites are not
    in the copy at all)."""
    import scipy
    found = []
    for folder, dirs, files in os.walk(os.path.dirname(scipy.__file__)):
        dirs.sort()
        found.extend((os.path.getsize(os.path.join(folder, f)), os.path.join(folder, f)) for f in files
                     if f.endswith(".py"))
    return max(found)[1]

def probes():
    """Every way to move or read the page cache of a file a call can read."""
    path = rare_file()
    fd = os.open(path, os.O_RDONLY)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    result = lambda value: "allowed" if value >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")
    out = {"preadv2 RWF_NOWAIT": _errno(lambda: os.preadv(fd, [bytearray(1)], 0, os.RWF_NOWAIT)),
           "preadv": _errno(lambda: os.preadv(fd, [bytearray(1)], 0)),
           "fadvise DONTNEED": _errno(lambda: os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)),
           "readahead": result(libc.readahead(fd, ctypes.c_long(0), ctypes.c_size_t(4096))),
           "cachestat": result(libc.syscall(451, fd, 0, 0, 0)),
           "process_madvise": result(libc.syscall(440, -1, 0, 0, 21, 0))}
    mapped = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
    for name, advice in (("MADV_WILLNEED", 3), ("MADV_REMOVE", 9), ("MADV_COLD", 20), ("MADV_PAGEOUT", 21),
                         ("MADV_DONTNEED", 4)):
        out[name] = _errno(lambda: mapped.madvise(advice))
    page = ctypes.c_void_p(ctypes.addressof(ctypes.c_char.from_buffer(bytearray(3 * 4096))) + 4095 & ~4095)
    out["mincore"] = result(libc.mincore(page, ctypes.c_size_t(4096), ctypes.create_string_buffer(1)))
    mapped.close()
    os.close(fd)
    return out

def residency():
    """What a call can learn about a rarely read file's pages without changing them, and after."""
    path = rare_file()
    before = os.stat(path)
    fd = os.open(path, os.O_RDONLY)
    mapped = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
    address = ctypes.addressof(ctypes.c_char.from_buffer_copy(b"x")) and None
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_majflt
    mapped[len(mapped) // 2]   # one page: fault-around maps its cached neighbours
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_majflt - faults
    rss = None
    with open("/proc/self/smaps") as f:
        lines = f.read().splitlines()
    for i, line in enumerate(lines):
        if line.endswith(" " + path):
            rss = next(l.split()[1] for l in lines[i + 1:] if l.startswith("Rss:"))
    mapped.close()
    os.close(fd)
    with open(path, "rb") as f:
        f.read()
    after = os.stat(path)
    with open("/proc/self/mountinfo") as f:
        types = sorted({line.split(" - ")[1].split()[0] for line in f})
    return {"major faults": faults, "rss kB": rss, "atime unchanged": before.st_atime_ns == after.st_atime_ns,
            "every byte allocated": before.st_blocks * 512 >= before.st_size, "filesystems": types}

def evict():
    """Everything a call might try to push a file out of memory (all refused or without effect)."""
    import gc
    path = rare_file()
    fd = os.open(path, os.O_RDONLY)
    for call in (lambda: os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED),
                 lambda: os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_NOREUSE)):
        _errno(call)
    mapped = mmap.mmap(fd, 0, prot=mmap.PROT_READ)
    for advice in (21, 20, 4, 9):
        _errno(lambda: mapped.madvise(advice))
    mapped.close()
    os.close(fd)
    return "tried"

def imports():
    import importlib.util
    return {name: importlib.util.find_spec(name) is not None
            for name in ("numpy", "scipy", "matplotlib", "autograd", "tqdm", "IPython", "ipywidgets",
                         "threadpoolctl", "sklearn", "nbgrader", "jupyterlab", "selenium", "dask", "pytest",
                         "numpy.tests", "test", "idlelib")}

def works():
    """The student packages work from the copy: plotting (fonts), scipy, autograd."""
    import io
    import autograd
    import autograd.numpy as anp
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.special import logsumexp
    from scipy.stats import multivariate_normal
    figure, axes = plt.subplots()
    axes.plot([0, 1], [1, 0], label="a line")
    axes.set_title("text needs fonts")
    axes.legend()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    grad = autograd.grad(lambda x: anp.sum(anp.exp(x)))(anp.zeros(2))
    return [len(buffer.getvalue()) > 1000, float(logsumexp([0.0, 0.0])),
            float(multivariate_normal(mean=[0, 0]).pdf([0, 0])), grad.tolist()]
'''


@pytest.fixture(scope="module")
def resident_box(namespaces):
    with Sandbox(submission_from_cells([PAGE_CACHE]), Limits(call_seconds=60)) as sandbox:
        sandbox.start()
        if "allowlist served from memory" not in " ".join(sandbox.isolation["held"]):
            pytest.fail("the allowlist is not served from memory: " + "; ".join(sandbox.isolation["missing"]))
        yield sandbox


def test_the_allowlist_is_served_from_memory(resident_box):
    from autograder.sandbox import resident
    view = sandbox_policy.layout(IsolationPolicy())
    assert view["resident"] is None and set(view["sources"]) == {p for p, _ in view["binds"]} | {
        h for _, h, k in sandbox_policy.runtime_entries() if k == "dir"}
    assert all(c.startswith(os.path.join(resident.shm_root(), resident.PREFIX)) for c in view["sources"].values())
    value = resident_box.call("residency").value
    assert value["filesystems"] == ["proc", "tmpfs"], value   # nothing of the host's disks
    assert value["every byte allocated"] and value["atime unchanged"], value
    assert value["major faults"] == 0, value


def test_page_cache_probes_are_denied(resident_box):
    value = resident_box.call("probes").value
    assert value["preadv2 RWF_NOWAIT"] in ("ENOTSUP", "EOPNOTSUPP", "ENOSYS"), value
    assert value["preadv"] == "allowed" and value["MADV_DONTNEED"] == "allowed", value
    for name in ("fadvise DONTNEED", "readahead", "cachestat", "process_madvise", "MADV_WILLNEED", "MADV_REMOVE",
                 "MADV_COLD", "MADV_PAGEOUT", "mincore"):
        assert value[name] == "EPERM", (name, value)


def test_residency_is_the_same_whatever_earlier_calls_did(resident_box):
    """The forgery's channel: what one call reads of the pages of a file (fault-around in smaps,
    major faults, atime) does not depend on what the calls before it did to them."""
    first = resident_box.call("residency").value
    assert resident_box.call("evict").value == "tried"
    assert resident_box.call("residency").value == first
    assert resident_box.call("residency").value == first


def test_the_copy_holds_what_a_submission_needs_and_nothing_else(resident_box):
    import importlib.util
    found = resident_box.call("imports").value
    for name in ("numpy", "scipy", "matplotlib", "autograd", "tqdm", "IPython", "ipywidgets", "threadpoolctl"):
        assert found[name] is (importlib.util.find_spec(name) is not None), (name, found)
    for name in ("sklearn", "nbgrader", "jupyterlab", "selenium", "dask", "pytest", "numpy.tests", "test",
                 "idlelib"):
        assert found[name] is False, (name, found)
    outcome = resident_box.call("works")
    assert outcome.ok, outcome
    assert outcome.value == [True, pytest.approx(np.log(2)), pytest.approx(1 / (2 * np.pi)), [1.0, 1.0]]


def test_the_student_distributions_are_the_projects():
    import tomllib
    from autograder.sandbox.pruning import STUDENT_DISTRIBUTIONS
    project = tomllib.loads((course_root() / "pyproject.toml").read_text())["project"]
    wanted = project["dependencies"] + project["optional-dependencies"]["interactive"] + \
        project["optional-dependencies"]["advi"]
    names = {re.split(r"[\s<>=!~;\[(]", r, maxsplit=1)[0].lower() for r in wanted}
    assert names == set(STUDENT_DISTRIBUTIONS)


def _serve_in_child(args):
    entry, root = args
    os.environ["AUTOGRADER_SANDBOX_SHM"] = root
    from autograder.sandbox import resident
    resident._held.clear()
    return resident.serve([entry])


def test_copies_are_made_once_atomically_reused_and_cleaned(tmp_path, monkeypatch):
    """Concurrent graders make one copy; a changed file gets a new one; a copy nobody holds that
    was not used for an hour is removed, a held one never."""
    import fcntl
    import multiprocessing
    from autograder.sandbox import resident
    if not os.path.isdir("/dev/shm") or not __import__("autograder.sandbox.filesystem").sandbox.filesystem.is_tmpfs("/dev/shm"):
        pytest.skip("no tmpfs at /dev/shm")
    root = f"/dev/shm/autograder-test-{os.getpid()}"
    os.makedirs(root)
    monkeypatch.setenv("AUTOGRADER_SANDBOX_SHM", root)
    monkeypatch.setattr(resident, "_held", {})
    source = tmp_path / "tree"
    (source / "pkg" / "sub").mkdir(parents=True)
    (source / "pkg" / "a.py").write_text("A = 1\n")
    with open(source / "pkg" / "sparse.bin", "wb") as f:   # a hole: a read must not allocate
        f.truncate(1 << 20)
        f.seek((1 << 20) - 1)
        f.write(b"x")
    (source / "pkg" / "link.py").symlink_to("a.py")
    (source / "pkg" / "sub" / "b.py").write_text("B = 2\n")
    try:
        entry = resident.select(str(source), lambda path, is_dir: True)
        with multiprocessing.get_context("fork").Pool(4) as pool:
            answers = pool.map(_serve_in_child, [(entry, root)] * 4)
        assert len({json.dumps(a, sort_keys=True) for a in answers}) == 1 and answers[0][1] is None, answers
        copy = answers[0][0][str(source)]
        name = os.path.basename(os.path.dirname(copy))
        assert sorted(os.listdir(root)) == [name, name + ".build", name + ".lock"]   # one copy, nothing half-made
        assert (Path(copy) / "pkg" / "sub" / "b.py").read_text() == "B = 2\n"
        assert os.readlink(Path(copy) / "pkg" / "link.py") == "a.py"
        sparse = os.stat(Path(copy) / "pkg" / "sparse.bin")
        assert sparse.st_blocks * 512 >= sparse.st_size
        assert os.stat(Path(copy) / "pkg" / "a.py").st_mtime_ns == os.stat(source / "pkg" / "a.py").st_mtime_ns
        assert resident.serve([entry]) == ({str(source): copy}, None)   # reused
        (source / "pkg" / "a.py").write_text("A = 3\n")
        changed = resident.serve([resident.select(str(source), lambda path, is_dir: True)])[0][str(source)]
        assert changed != copy and (Path(changed) / "pkg" / "a.py").read_text() == "A = 3\n"
        # Nobody holds the first copy any more (this process lets it go), last used two hours ago:
        old_key = os.path.basename(os.path.dirname(copy))[len(resident.PREFIX):]
        os.close(resident._held.pop(old_key))
        lock = os.path.join(root, resident.PREFIX + old_key + ".lock")
        holder = os.open(lock, os.O_RDONLY)          # ... except another grader
        fcntl.flock(holder, fcntl.LOCK_SH)
        os.utime(lock, (time.time() - 7200, time.time() - 7200))
        assert resident.clean(root, keep=set()) == [] and os.path.isdir(copy)
        os.close(holder)
        assert resident.clean(root, keep=set()) == [old_key]
        assert not os.path.exists(os.path.dirname(copy)) and not os.path.exists(lock)
        assert not os.path.exists(os.path.dirname(copy) + ".build")
        assert os.path.isdir(changed)   # held by this process: kept, however old
        os.utime(os.path.join(root, os.path.basename(os.path.dirname(changed)) + ".lock"), (0, 0))
        assert resident.clean(root, keep=set()) == [] and os.path.isdir(changed)
    finally:
        for fd in resident._held.values():
            os.close(fd)
        subprocess.run(["rm", "-rf", root])


def test_the_index_names_the_copies_until_the_folders_change(tmp_path, monkeypatch):
    """A grader process finds its copies by a cheap fingerprint of the folders (not 16,000 stats);
    a new entry changes the fingerprint, and a removed copy is never named."""
    from autograder.sandbox import resident
    root = f"/dev/shm/autograder-test-index-{os.getpid()}"
    os.makedirs(root)
    monkeypatch.setenv("AUTOGRADER_SANDBOX_SHM", root)
    monkeypatch.setattr(resident, "_held", {})
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("A = 1\n")
    try:
        mark = resident.fingerprint([(str(tmp_path), 2)])
        assert resident.recall(mark) is None
        sources, reason = resident.serve([resident.select(str(tmp_path), lambda path, is_dir: True)])
        assert reason is None
        resident.remember(mark, sources)
        assert resident.recall(mark) == sources
        assert resident.fingerprint([(str(tmp_path), 2)]) == mark
        (tmp_path / "pkg" / "b.py").write_text("B = 1\n")
        assert resident.fingerprint([(str(tmp_path), 2)]) != mark
        subprocess.run(["rm", "-rf", os.path.dirname(sources[str(tmp_path)])])
        assert resident.recall(mark) is None
    finally:
        for fd in resident._held.values():
            os.close(fd)
        subprocess.run(["rm", "-rf", root])


def test_without_a_tmpfs_the_report_says_the_page_cache_is_shared(tmp_path, monkeypatch, namespaces):
    from autograder.sandbox.filesystem import is_tmpfs
    if is_tmpfs(str(tmp_path)):
        pytest.skip("the test's folder is a tmpfs")
    monkeypatch.setenv("AUTOGRADER_SANDBOX_SHM", str(tmp_path))
    with Sandbox(submission_from_cells([CODE])) as sandbox:
        assert sandbox.call("double", (4,)).value == 8
        missing = " ".join(sandbox.isolation["missing"])
    assert f"allowlist served from memory ({tmp_path} is not a tmpfs)" in missing, missing
    assert "page cache" in missing
    assert not os.listdir(tmp_path)


# ------------------------------------------------------------------------------------ nothing survives a call
STATEFUL = r'''
import ctypes, glob, os, socket, sys, time
COUNT = [0]

def in_globals():
    COUNT[0] += 1
    return COUNT[0]

def in_tmp():
    path = "/tmp/counter"
    n = int(open(path).read()) + 1 if os.path.exists(path) else 1
    with open(path, "w") as f:
        f.write(str(n))
    return n

def in_sysv_shm():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmat.restype = ctypes.c_void_p
    shmid = libc.shmget(4242, 4096, 0o1666)   # IPC_CREAT
    if shmid < 0:
        return -1   # (denied now: the filter; the IPC namespace per call would reset it anyway)
    address = libc.shmat(shmid, None, 0)
    counter = ctypes.c_int.from_address(address)
    counter.value += 1
    return counter.value

def in_mqueue():
    rt = ctypes.CDLL("librt.so.1", use_errno=True)
    queue = rt.mq_open(b"/counter", 0o102, 0o600, None)   # O_RDWR | O_CREAT
    if queue < 0:
        return -ctypes.get_errno()
    rt.mq_send(queue, b"x", 1, 0)
    attr = (ctypes.c_long * 8)()
    rt.mq_getattr(queue, attr)
    return attr[3]   # messages waiting

def in_a_daemon():
    """A daemon that keeps counting: the next call asks it over an abstract socket."""
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect("\0counter")
        return int(s.recv(16)) + 1
    except OSError:
        pass
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            server.bind("\0counter")
            server.listen(5)
            n = 1
            while True:
                conn, _ = server.accept()
                conn.send(str(n).encode())
                conn.close()
                n += 1
        os._exit(0)
    os.wait()
    time.sleep(0.2)
    return 1

def in_netns_counters():
    """A network namespace's counters only grow: a datagram with no route counts in OutNoRoutes
    (a namespace shared by the calls would count them)."""
    lines = [line.split() for line in open("/proc/net/snmp") if line.startswith("Ip:")]
    seen = dict(zip(lines[0][1:], map(int, lines[1][1:])))["OutNoRoutes"]
    try:
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 9))
    except OSError:
        pass
    return seen

def pid_and_clock():
    return os.getpid(), os.getppid()
'''


@pytest.mark.parametrize("name", ["in_globals", "in_tmp", "in_sysv_shm", "in_mqueue", "in_a_daemon", "in_netns_counters"])
def test_no_state_survives_from_one_call_to_the_next(namespaces, name):
    with Sandbox(submission_from_cells([STATEFUL])) as sandbox:
        values = [sandbox.call(name).value for _ in range(3)]
    assert values[0] == values[1] == values[2], values


def test_every_call_starts_from_the_same_state(namespaces):
    """What a call could count with: pids, gc counters, allocator state, object addresses, the
    times and numbers of what it can see, namespace ids, mount ids."""
    code = r'''
import gc, os, sys
def fingerprint():
    with open("/proc/self/mountinfo") as f:
        mounts = [line.split()[:3] for line in f]
    seen = {}
    for path in ("/", "/tmp", "/dev", "/sandbox", "/sandbox/autograder", "/proc", "/usr/lib"):
        st = os.stat(path)   # (what is made for the call has the call's ctime: "now", no history)
        seen[path] = [st.st_ino, st.st_mode] + ([] if path in ("/tmp", "/proc") else [st.st_mtime_ns])
    return {"pid": [os.getpid(), os.getppid()], "gc": [list(gc.get_count()), [dict(s) for s in gc.get_stats()],
            gc.get_freeze_count()], "blocks": sys.getallocatedblocks(), "id": id(object()),
            "refs": [sys.getrefcount(None), sys.getrefcount(0)], "mounts": mounts, "stat": seen,
            "ns": os.path.exists("/proc/self/ns"),   # (namespace ids: no /proc/self/ns, no NS_GET_* ioctl)
            "cgroup": open("/proc/self/cgroup").read(), "hostname": os.uname().nodename}
'''
    with Sandbox(submission_from_cells([code])) as sandbox:
        prints = [sandbox.call("fingerprint").value for _ in range(5)]
    for key in prints[0]:
        values = [json.dumps(p[key], sort_keys=True) for p in prints]
        if key in ("ns", "mounts"):   # kernel ids are reused, not counted: the same or recycled
            continue
        assert len(set(values)) == 1, (key, values)
    assert prints[0]["pid"] == [1, 0] and prints[0]["cgroup"].strip().endswith("::/")


def _writable_memory(pid: int) -> dict:
    regions = {}
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split()
            if fields[1].startswith("rw") and (len(fields) < 6 or fields[5] not in ("[vvar]", "[vdso]", "[vsyscall]")):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                regions[start] = end
    out = {}
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for start, end in regions.items():
            try:
                mem.seek(start)
                out[start] = mem.read(end - start)
            except OSError:
                pass
    return out


@pytest.mark.skipif(os.uname().machine != "x86_64" or os.geteuid() != 0, reason="the native forker; reading its memory")
def test_every_call_is_copied_from_the_same_memory(namespaces):
    """The forker (F), which every call process is a copy of, does not change from one job to the
    next: no pid, exit status, message or counter of an earlier call ends up in a later one. (Its
    stack below the loop is cleared before every fork: only that part may differ meanwhile. One
    word of library state, a flag, is seen to flip now and then: never a count.)"""
    from autograder.sandbox.containment import own_children
    with Sandbox(submission_from_cells(["import numpy as np\ndef f(x):\n    return x + 1"])) as sandbox:
        assert sandbox.call("f", (1,)).value == 2
        zygote = own_children(sandbox._proc.pid)[0]
        forker = own_children(zygote)[0]
        snapshots, stack_pointers = [], []
        for i in range(7):
            sandbox._ended(sandbox._unanswered[-1])   # the zygote has the last job's end
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:        # and F waits for the next one
                with open(f"/proc/{forker}/syscall") as f:
                    fields = f.read().split()
                if fields[0] == "47":                 # recvmsg
                    break
                time.sleep(0.01)
            stack_pointers.append(int(fields[-2], 16))
            snapshots.append(_writable_memory(forker))
            sandbox.call("f", (i,)) if i % 2 else sandbox.call("f", ("not a number",))
    low = min(stack_pointers) - 16384
    high = max(stack_pointers) + 4096
    assert all(s.keys() == snapshots[0].keys() for s in snapshots)
    values: dict[int, set] = {}
    for start, data in snapshots[0].items():
        for snapshot in snapshots[1:]:
            if snapshot[start] == data:
                continue
            for i in range(0, len(data), 8):
                if not low <= start + i < high and snapshot[start][i:i + 8] != data[i:i + 8]:
                    values[start + i] = {s[start][i:i + 8] for s in snapshots}
    assert len(values) <= 1 and all(len(v) <= 2 for v in values.values()), {hex(a): v for a, v in values.items()}


def test_no_timestamp_of_the_sandbox_start_is_visible(namespaces):
    """Nothing a call can see carries the time the sandbox started (it would tell a call how long
    grading has been going, i.e. which check runs): not file times, not values in its memory.

    The grader and its sandbox run in a time namespace whose monotonic clock is 2**31 s ahead
    (where one can be made): on a machine booted minutes ago that clock in nanoseconds is about
    2**40, and memory is full of such words that are no time (int32 pairs like (-1, 201), a
    dict's int16 index entries, four letters and a small byte, the DWARF bytes that fill a
    library's data page beyond its .bss): the window around the start caught one in about one
    run in four (a 270 s window there: ~140 words per run; around 2**61 ns: none in 8 runs)."""
    code = r'''
import os, numpy as np
SHIFT = 12345678.0   # the window arrives shifted: the call's own arguments are not in it
def scan(lo, hi, mono_lo, mono_hi):
    """Times in [lo, hi] - SHIFT (seconds since the epoch) in file metadata, and times in either
    window (wall clock, monotonic clock) in writable memory."""
    hits = []
    for folder, dirs, files in os.walk("/", followlinks=False):
        if folder.startswith("/proc"):
            dirs[:] = []
            continue
        for name in [folder] + [os.path.join(folder, f) for f in files]:
            try:
                st = os.lstat(name)
            except OSError:
                continue
            for t in (st.st_atime, st.st_mtime, st.st_ctime):
                if lo <= t + SHIFT <= hi:
                    hits.append(["file", name])
    regions = []
    for line in open("/proc/self/maps"):
        fields = line.split()
        if fields[1].startswith("rw") and (len(fields) < 6 or fields[5] not in ("[vvar]", "[vdso]")):
            start, end = (int(x, 16) for x in fields[0].split("-"))
            regions.append((start, end, fields[5] if len(fields) > 5 else ""))
    with open("/proc/self/mem", "rb", buffering=0) as mem:
        for start, end, name in regions:
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except OSError:
                continue
            words = np.frombuffer(data[: len(data) // 8 * 8], dtype=np.int64)
            doubles = words.view(np.float64)
            # (An int like (k << 32) + small is a pair of small fields, not a time: skipped.)
            plausible = (words & 0xFFFFFFFF) >= (1 << 26)
            for a, b, scales in ((lo, hi, (1, 1000, 10**6, 10**9)), (mono_lo, mono_hi, (10**9,))):
                for scale in scales:
                    shifted = words + np.int64(int(SHIFT) * scale)
                    found = np.flatnonzero((shifted >= int(a * scale)) & (shifted <= int(b * scale))
                                           & (plausible | (scale == 1)))
                    hits += [["int", name, hex(start + 8 * int(i)), scale] for i in found[:5]]
                with np.errstate(all="ignore"):
                    found = np.flatnonzero(((doubles + SHIFT) >= a) & ((doubles + SHIFT) <= b))
                hits += [["double", name, hex(start + 8 * int(i))] for i in found[:5]]
    return hits[:40]
'''
    timens = ["unshare", "--time", "--monotonic", str(2**31), "--boottime", str(2**31)]
    try:
        made = subprocess.run(timens + ["true"], capture_output=True).returncode == 0
    except OSError:   # (no unshare(1) on this machine)
        made = False
    if not made:
        timens = []   # (no time namespace here: the machine's own clock)
    done = subprocess.run(timens + [sys.executable, "-c", _START_AND_SCAN, code], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    ok, value = json.loads(done.stdout.splitlines()[-1])
    assert ok, value
    assert value == [], value


_START_AND_SCAN = r'''
import json, sys, time
from autograder.loading import submission_from_cells
from autograder.sandbox import Limits, Sandbox
lo, mono_lo = time.time() - 0.2, time.monotonic() - 0.2
with Sandbox(submission_from_cells([sys.argv[1]]), Limits(call_seconds=60)) as sandbox:
    sandbox.start()
    hi, mono_hi = time.time() + 0.2, time.monotonic() + 0.2
    time.sleep(1.5)   # calls start well after the windows: their own times are outside them
    shift = 12345678.0
    outcome = sandbox.call("scan", (lo + shift, hi + shift, mono_lo + shift, mono_hi + shift), timeout=60)
print(json.dumps([outcome.ok, outcome.value if outcome.ok else repr(outcome)]))
'''


# ------------------------------------------------------------------------------------ fallback
def test_the_fallback_without_namespaces_says_what_it_loses(monkeypatch, caplog):
    monkeypatch.setenv("AUTOGRADER_SANDBOX", "plain")
    marker = f"4243.75{os.getpid()}"
    with Sandbox(submission_from_cells([CODE])) as sandbox:
        assert sandbox.call("double", (4,)).value == 8
        missing = " ".join(sandbox.isolation["missing"])
        for lost in ("namespaces (turned off)", "allowlist filesystem", "network isolation", "process isolation",
                     "kill(-1)", "allowlist served from memory"):
            assert lost in missing, missing
        assert "fresh" not in " ".join(sandbox.isolation["held"])
        # kill(-1) is refused (signal 0: harmless even if the guard failed)
        assert sandbox.call("probe_kill", (-1,)).error_type == "PermissionError"
        assert sandbox.call("daemon", (marker,)).value == "started"
        # The call's subreaper kills the orphan and waits for its end before the zygote takes the
        # next job (seen: a killed process took over 3 s to exit on a machine at load 1, and over
        # 15 s in a full suite; a fixed wait was a race, this order is not).
        assert sandbox.call("double", (5,)).value == 10   # and the sandbox goes on
        assert not _sleepers(marker)
    with Sandbox(submission_from_cells([CODE]), policy=IsolationPolicy(namespaces=False)) as sandbox:
        assert sandbox.call("double", (6,)).value == 12
        assert "namespaces (turned off)" in sandbox.isolation["missing"]


@pytest.mark.skipif(os.geteuid() != 0, reason="the grader runs as root")
def test_the_fallback_as_root_runs_calls_as_an_identity_of_their_own(monkeypatch):
    """Without namespaces a capability-less uid 0 could still write the host's sysctls, signal
    (and prlimit) every root process, the grader and other sandboxes included, and no
    RLIMIT_NPROC binds uid 0: calls run as a uid of their sandbox's own (files still as root)."""
    monkeypatch.setenv("AUTOGRADER_SANDBOX", "plain")
    uids = []
    for _ in range(2):
        with Sandbox(submission_from_cells([CODE])) as sandbox:
            powers = sandbox.call("host_powers").value
            assert powers is not None, sandbox.call("host_powers")
            uids.append(powers.pop("uid"))
            assert set(powers.values()) <= {"EACCES", "EPERM"}, powers
            assert sandbox.call("nproc").value == (64, 64)
            assert "unprivileged identity" in " ".join(sandbox.isolation["held"])
            assert "kernel log" in " ".join(sandbox.isolation["missing"])
            marker = f"4244.{os.getpid()}{len(uids)}"   # (a sleeper of another run is not this one's)
            assert sandbox.call("sleep_daemon", (marker,)).value == "started"
            assert sandbox.call("double", (5,)).value == 10
            assert not _sleepers(marker)   # (gone before the next job started: as in the test above)
        assert not _sleepers(marker)
    assert uids[0] != uids[1] and min(uids) > 0   # (one sandbox cannot signal another's calls)


def test_the_fallback_is_logged_once(monkeypatch, caplog):
    monkeypatch.setenv("AUTOGRADER_SANDBOX", "plain")
    import autograder.sandbox.process as process
    monkeypatch.setattr(process, "_logged_missing", set())
    with caplog.at_level("WARNING", logger="autograder.sandbox"):
        for _ in range(2):
            with Sandbox(submission_from_cells(["def f():\n    return 1"])) as sandbox:
                assert sandbox.call("f").value == 1
    warnings = [r for r in caplog.records if "weaker" in r.getMessage()]
    assert len(warnings) == 1 and "allowlist filesystem" in warnings[0].getMessage()


# ------------------------------------------------------------------------------------ cost, other users
def test_isolation_costs_little(namespaces, record_property):
    seconds = []
    with Sandbox(submission_from_cells(["import numpy as np\ndef f():\n    return 1"])) as sandbox:
        sandbox.start()
        for _ in range(7):
            started = time.monotonic()
            assert sandbox.call("f").value == 1
            seconds.append(time.monotonic() - started)
    median = statistics.median(seconds)
    record_property("call_seconds", median)
    print(f"one call in a fresh isolated process: median {median * 1000:.1f} ms")
    assert median < 0.5


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
        "              'write': box.call('write', (os.environ['SITE'] + '/pwned.py',)).message,\n"
        "              'dev': box.call('listing', ('/dev',)).value,\n"
        "              'nproc': box.call('nproc').value, 'after': box.call('double', (1,)).value,\n"
        "              'isolation': box.isolation}\n"
        "print(json.dumps(result))\n")
    site = [p for p in sys.path if p.endswith("site-packages")][0]
    env = dict(os.environ, COURSE=str(course_root()), SITE=site)
    done = subprocess.run(["unshare", "--user", "--map-user=1000", "--map-group=1000", sys.executable,
                           str(script)], capture_output=True, text=True, timeout=180, env=env)
    if done.returncode != 0 and ("unshare" in done.stderr and "Operation not permitted" in done.stderr
                                 or "unrecognized option" in done.stderr):
        pytest.skip("no unprivileged user namespaces here: " + done.stderr.strip()[:200])
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["uid"] == 1000 and result["double"] == 42 and result["after"] == 2
    held = " ".join(result["isolation"]["held"])
    assert "user" in held and "allowlist filesystem" in held, result["isolation"]
    missing = result["isolation"]["missing"]   # (cgroups of its own need root: memory is capped per process)
    assert len(missing) == 1 and missing[0].startswith("a memory cgroup (cgroups of its own need a root grader)"), \
        result["isolation"]
    assert "solutions" not in (result["reference"] or []) and "Read-only" in result["write"]
    assert result["dev"] == ["null", "random", "urandom"]
    # RLIMIT_NPROC caps the processes (here the test's uid 1000 is the host's root, for which the
    # kernel does not apply it: no fork bomb on a shared machine, only the limit is checked)
    assert result["nproc"][0] == result["nproc"][1] and 64 <= result["nproc"][0] < 100
