"""Processes in tests: finding every process a command started; an emulated OOM killer.

Finding every process a command started, even after it died: run it under a subreaper.

``Launched(cmd)`` starts a small launcher process that makes itself a child subreaper
(``PR_SET_CHILD_SUBREAPER``) and starts ``cmd``: whatever ``cmd`` starts, however it detaches
(double forks, ``setsid``, new PID namespaces), stays a descendant of the launcher when its own
parent dies. ``descendants()`` lists them (zombies excluded); the launcher reaps them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time

_LAUNCHER = r"""
import ctypes, os, signal, subprocess, sys, threading
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)      # PR_SET_CHILD_SUBREAPER
def default_signals():
    # The command gets the stopping signals as a terminal or a scheduler would send them: a suite
    # started under nohup (SIGHUP ignored, inherited across exec) must not make SIGHUP a no-op.
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=open(os.environ["LAUNCH_OUT"], "wb"),
                         stderr=open(os.environ["LAUNCH_ERR"], "wb"), preexec_fn=default_signals)
print(child.pid, flush=True)
def reap():
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            threading.Event().wait(0.05)
            continue
        if pid == child.pid:
            with open(os.environ["LAUNCH_RC"], "w") as f:
                f.write(str(os.waitstatus_to_exitcode(status)))
threading.Thread(target=reap, daemon=True).start()
sys.stdin.read()       # until the test is done
"""


class Launched:
    """``cmd`` started under a subreaper launcher (see the module docstring)."""

    def __init__(self, cmd: list[str], folder, cwd=None, env=None) -> None:
        self.out, self.err, self.rc_file = (folder / "launch.out", folder / "launch.err", folder / "launch.rc")
        environment = dict(env or os.environ, LAUNCH_OUT=str(self.out), LAUNCH_ERR=str(self.err),
                           LAUNCH_RC=str(self.rc_file))
        self.launcher = subprocess.Popen([sys.executable, "-c", _LAUNCHER, *map(str, cmd)], cwd=cwd, env=environment,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.pid = int(self.launcher.stdout.readline())

    def signal(self, signum: int) -> None:
        os.kill(self.pid, signum)

    def returncode(self, timeout: float) -> int | None:
        """The command's exit code (negative: killed by that signal), waiting at most ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.rc_file.exists() and self.rc_file.read_text():
                return int(self.rc_file.read_text())
            time.sleep(0.05)
        return None

    def descendants(self) -> list[tuple[int, str]]:
        """(pid, command line) of every living process below the launcher."""
        return descendants(self.launcher.pid)

    def wait_until_alone(self, timeout: float) -> list[tuple[int, str]]:
        """Wait until no process is left below the launcher; returns the survivors (empty: none)."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.descendants()
            if not left or time.monotonic() > deadline:
                return left
            time.sleep(0.1)

    def close(self) -> None:
        for pid, _ in self.descendants():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            self.launcher.stdin.close()
        except OSError:
            pass
        self.launcher.wait(timeout=30)


def _parents() -> dict[int, tuple[int, str, str]]:
    """{pid: (parent pid, state, command line)} of every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):
            continue
        table[int(entry)] = (int(fields[1]), fields[0], cmdline)
    return table


def descendants(root: int) -> list[tuple[int, str]]:
    table = _parents()
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, state, cmdline) in table.items():
            if ppid == parent:
                frontier.append(pid)
                if state != "Z":
                    found.append((pid, cmdline[:200]))
    return found


def named(pids: list[tuple[int, str]], comm: str) -> list[int]:
    """The pids among ``pids`` whose /proc/<pid>/comm is ``comm``."""
    out = []
    for pid, _ in pids:
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == comm:
                    out.append(pid)
        except OSError:
            pass
    return out


@contextlib.contextmanager
def oom_killer(threshold_mb: int = 700):
    """The kernel's OOM killer in a memory-limited run, emulated for the test's own processes:
    SIGKILL to any grading process (``ag-grader``) whose resident memory exceeds ``threshold_mb``
    (real gradings stay below 300 MB). Yields the list of the pids it killed."""
    stop, kills = threading.Event(), []
    page = os.sysconf("SC_PAGE_SIZE")

    def watch():
        while not stop.is_set():
            for entry in os.listdir("/proc"):
                try:
                    with open(f"/proc/{entry}/comm") as f:
                        if f.read().strip() != "ag-grader":
                            continue
                    with open(f"/proc/{entry}/statm") as f:
                        resident = int(f.read().split()[1]) * page
                    if resident > threshold_mb * 2**20:
                        os.kill(int(entry), signal.SIGKILL)
                        kills.append(int(entry))
                except (OSError, ValueError):
                    continue
            time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield kills
    finally:
        stop.set()
        thread.join()
