"""The first process of a sandbox: ``python -m autograder.sandbox.launcher FD``, started by the
grader (``process.Sandbox``) with one end of a socket pair as FD.

It reads the policy from the socket (never from its command line or environment), puts itself
in the sandbox's cgroup, enters new mount, PID, network, IPC, UTS and cgroup namespaces (and a
user namespace when the grader is not root), and forks the zygote, PID 1 of the new PID
namespace. The zygote builds the allowlist root (``filesystem``), moves into it and executes
a fresh Python there (``/sandbox/boot.py``), so that nothing of the grader stays in its memory.
The launcher then only waits, and ends the way the zygote ended.

Where namespaces are unavailable (``AUTOGRADER_SANDBOX=plain``, or ``unshare`` refused, e.g. in
a container) the zygote runs on the host's filesystem and ``Report.missing`` lists what that
loses (``FALLBACK_LOSSES``).
"""

from __future__ import annotations

import os
import socket
import sys
import time

from . import containment, filesystem, isolation
from .framing import Channel

FALLBACK_LOSSES = (
    "allowlist filesystem: student code can read every file the grader's user can read (the reference "
    "solutions, other submissions, gradebooks) and write wherever that user can",
    "network isolation (no network namespace)",
    "process isolation: the host's processes are visible, and kill(-1) is refused only at the Python level",
    "a private /dev, /proc and /tmp, and fresh IPC namespaces per call",
    "allowlist served from memory: the host's page cache of the files a call reads outlives the call, a channel "
    "to later calls",
)
# (a call then runs as a uid of its own, but with root's file access: see isolation.become_nobody_of_its_own)
ROOT_FALLBACK_LOSS = ("the grader runs as root: files are read and written as root, the kernel log (/dev/kmsg) "
                      "included")
CONTROL_BYTES = 256 << 20


def main(argv: list[str]) -> None:
    control = Channel(socket.socket(fileno=int(argv[0])), max_receive=CONTROL_BYTES, max_send=CONTROL_BYTES,
                      json=True)
    spec = control.receive(time.monotonic() + 60)["spec"]
    isolation.die_with_parent(spec["parent"])   # a killed grader leaves nothing running
    report = isolation.Report()
    linux = sys.platform.startswith("linux")
    root = os.geteuid() == 0
    nproc = None
    cgroups = {}
    if linux and root:   # RLIMIT_NPROC does not bind uid 0: a pids cgroup does
        cgroups = isolation.join_cgroups(int(spec["processes"]), int(spec["sandbox_memory_mb"]), report)
    else:
        why = "cgroups of its own need a root grader" if linux else f"no cgroups on {sys.platform}"
        report.missing.append(isolation.MEMORY_MISSING.format(why=why))
    namespaced = False
    if not linux:
        report.missing.append(f"namespaces (not available on {sys.platform})")
    elif not spec["namespaces"]:
        report.missing.append("namespaces (turned off)")
    elif isolation.enter_namespaces(report, root=root):
        filesystem.make_private()
        namespaced = True
    if linux and not root:
        # RLIMIT_NPROC counts a user's processes: in the sandbox's own user namespace only its
        # own (the launcher, the zygote, the forker, a call and its waiter, one being torn down);
        # without one, every process of the grader's user on the machine.
        own = 8 if namespaced else containment.count_own_processes(os.geteuid())
        nproc = own + int(spec["processes"])
    launcher = os.getpid()
    zygote = os.fork()
    if zygote == 0:
        _zygote(control, spec, report, namespaced, nproc, launcher, cgroups.get("memory"))
    control.close()
    containment.mirror_exit(zygote)


def _zygote(control: Channel, spec: dict, report, namespaced: bool, nproc, launcher: int,
            memory_cgroup: str | None) -> None:
    """Build the zygote's world, report, and become the zygote (exec: never returns)."""
    try:
        # (In a new PID namespace the parent is outside it: getppid() is 0. The grader kills the
        # launcher's process group, the zygote's too, so the race this check closes is harmless.)
        isolation.die_with_parent(None if namespaced else launcher)
        if namespaced:
            try:
                isolation.set_hostname("sandbox")
                filesystem.build_root(spec["layout"], report, from_host=True, proc=True)
                boot = "/sandbox/boot.py"
            except OSError as exc:   # never go on silently: say it, and fall back
                report.missing.append(f"allowlist filesystem (building it failed: {exc})")
                namespaced = False
        if not namespaced:
            boot = _plain_runtime(spec)
            report.missing.extend(FALLBACK_LOSSES)
            if os.geteuid() == 0:
                report.missing.append(ROOT_FALLBACK_LOSS)
        control.send({"kind": "isolation", "isolation": report.as_dict(),
                      "spec": {"namespaces": namespaced, "nproc": nproc},
                      "memory_cgroup": memory_cgroup}, time.monotonic() + 30)   # (for the grader only)
        fd = control.fileno()
        if fd != 3:
            os.dup2(fd, 3)
        os.set_inheritable(3, True)
        os.set_blocking(3, True)
        os.closerange(4, 1 << 16)
        os.execve(spec["python"], [spec["python"], "-S", "-s", boot], spec["env"])
    except BaseException:   # (stderr is /dev/null unless AUTOGRADER_SANDBOX_DEBUG=1)
        import traceback
        traceback.print_exc()
    finally:
        os._exit(1)


def _plain_runtime(spec: dict) -> str:
    """The guest runtime as symlinks in the work folder (no mounts in the fallback)."""
    root = os.path.join(spec["workdir"], "runtime")
    for guest, host, _kind in spec["layout"]["runtime"]:
        target = root + guest[len("/sandbox"):]
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.lexists(target):
            os.symlink(host, target)
    os.makedirs(os.path.join(spec["workdir"], "tmp"), mode=0o700, exist_ok=True)
    return os.path.join(root, "boot.py")


if __name__ == "__main__":
    main(sys.argv[1:])
