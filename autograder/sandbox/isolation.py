"""Kernel-level isolation primitives for the sandbox (Linux): namespaces, capabilities, cgroups.

Used by the launcher (before the zygote exists), the zygote (once) and every call process (before
any student code). What each step achieved goes into a ``Report`` (``held`` / ``missing``), which
the grader logs once when something is missing. Nothing here ever changes a host-wide setting:
limits come from a cgroup of the sandbox's own and from per-process rlimits.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from dataclasses import dataclass, field

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_SECUREBITS_ALL_LOCKED = 0x2F  # NOROOT, NO_SETUID_FIXUP, KEEP_CAPS: set and locked
_CAPABILITY_VERSION_3 = 0x20080522

CGROUP_PREFIX = "autograder-"

_libc = None


def libc():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                                ctypes.c_char_p]
        _libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        _libc.unshare.argtypes = [ctypes.c_int]
        _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        _libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
    return _libc


def check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def unshare(flags: int) -> None:
    check(libc().unshare(flags), "unshare")


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    check(libc().prctl(option, arg2, arg3, 0, 0), f"prctl {option}")


@dataclass
class Report:
    """What held and what did not (the grader receives it with the probe's answer)."""

    held: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    namespaces: bool = False
    user_namespace: bool = False

    def as_dict(self) -> dict:
        return {"held": list(self.held), "missing": list(self.missing), "namespaces": self.namespaces}



# ------------------------------------------------------------------------------------ processes
def die_with_parent(parent: int | None) -> None:
    """SIGKILL this process when its parent dies (checked against ``parent`` to close the race)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        return
    if parent and os.getppid() != parent:
        os._exit(1)


def enter_namespaces(report: Report, *, root: bool) -> int:
    """The launcher's namespaces: mount, PID, network, IPC, UTS, cgroup (and user when not root).

    Returns the flags that held (0 when unshare was refused: the fallback)."""
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP
    uid, gid = os.geteuid(), os.getegid()
    if not root:
        flags |= CLONE_NEWUSER
    try:
        unshare(flags)
    except OSError as exc:
        report.missing.append(f"namespaces (unshare: {exc.strerror})")
        return 0
    report.namespaces = True
    report.user_namespace = not root
    report.held.append("namespaces: mount, pid, net, ipc, uts, cgroup" + ("" if root else ", user"))
    if not root:
        try:
            for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
        except OSError as exc:
            report.missing.append(f"user namespace id maps ({exc.strerror})")
    return flags


def set_hostname(name: str = "sandbox") -> None:
    data = name.encode()
    check(libc().sethostname(data, len(data)), "sethostname")


class _CapHeader(ctypes.Structure):   # (made once, at import: a call process only fills them)
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_privileges(report: Report) -> None:
    """Every capability (bounding, ambient, effective, permitted, inheritable), securebits locked,
    and ``no_new_privs``: nothing student code executes can gain a privilege back."""
    lib = libc()
    for cap in range(64):
        if lib.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:  # EINVAL: no such cap
            break
    lib.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    lib.prctl(PR_SET_SECUREBITS, _SECUREBITS_ALL_LOCKED, 0, 0, 0)
    header, data = _CapHeader(_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    capset_ok = lib.capset(ctypes.byref(header), ctypes.byref(data)) == 0
    nnp_ok = lib.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    if capset_ok and effective_capabilities() == 0:
        report.held.append("no capabilities")
    else:
        report.missing.append("dropping capabilities")
    (report.held if nnp_ok else report.missing).append("no_new_privs")


SECBIT_NO_SETUID_FIXUP = 1 << 2
FALLBACK_UID_BASE = 2_000_000_000   # + the sandbox's session id: an identity no one else has


def become_nobody_of_its_own(uid: int, report: Report) -> None:
    """Fallback as root (no user namespace to be root in): run the call as ``uid``, an identity of
    this sandbox's own, keeping only the file access of root (fsuid/fsgid 0: the installation may
    sit under /root, and the fallback reads files as the grader's user anyway).

    Without it a capability-less uid 0 still passes every check made by uid rather than by
    capability: it writes host sysctls (/proc/sys/kernel/hostname, pid_max...), signals and
    re-limits (prlimit, setpriority) every root process (the grader, other sandboxes), and no
    RLIMIT_NPROC binds it. Call before ``drop_privileges`` (it needs CAP_SETUID/SETGID/SETPCAP)."""
    lib = libc()
    try:
        prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP)   # (keep the capabilities until dropped)
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        lib.setfsuid(0)
        lib.setfsgid(0)
    except OSError as exc:
        report.missing.append(f"an unprivileged identity for the call ({exc.strerror})")
        return
    if os.getresuid() == (uid, uid, uid) and lib.setfsuid(-1) == 0:
        report.held.append("calls run as an unprivileged identity of their own (files read as root)")
    else:
        report.missing.append("an unprivileged identity for the call")


def effective_capabilities() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return -1


# ------------------------------------------------------------------------------------ cgroups
def _cgroup_lines() -> tuple[list[str], list[str]]:
    with open("/proc/self/cgroup") as f:
        lines = f.read().splitlines()
    with open("/proc/self/mountinfo") as f:
        mounts = f.read().splitlines()
    return lines, mounts


CONTROLLERS = ("pids", "memory", "cpu")


def cgroup_bases() -> dict[str, str]:
    """Writable cgroup folders of this process, by controller ("pids", "memory", "cpu"), v1 or v2.

    A v1 controller is used only where this process sits at the hierarchy's root (a sandbox must
    not nest cgroups under a cgroup that somebody else manages)."""
    try:
        lines, mounts = _cgroup_lines()
    except OSError:
        return {}
    found: dict[str, str] = {}
    for line in mounts:
        fields = line.split(" - ")
        if len(fields) != 2:
            continue
        left, right = fields[0].split(), fields[1].split()
        mount_point = _unescape(left[4])
        fstype = right[0]
        options = right[2].split(",") if len(right) > 2 else []
        if fstype == "cgroup2":
            rel = next((ln.split(":", 2)[2] for ln in lines if ln.startswith("0::")), None)
            if rel is None:
                continue
            base = os.path.join(mount_point, rel.lstrip("/"))
            try:
                with open(os.path.join(base, "cgroup.controllers")) as f:
                    available = f.read().split()
            except OSError:
                continue
            for controller in CONTROLLERS:
                if controller in available and controller not in found and os.access(base, os.W_OK):
                    found[controller] = base
        elif fstype == "cgroup":
            for controller in CONTROLLERS:
                if controller not in options or controller in found:
                    continue
                rel = next((ln.split(":", 2)[2] for ln in lines if ln.split(":")[1:2]
                            and controller in ln.split(":")[1].split(",")), None)
                if rel == "/" and os.access(mount_point, os.W_OK):
                    found[controller] = mount_point
    return found


def join_cgroups(processes: int, memory_mb: int, report: Report) -> None:
    """Put this process (and so the whole sandbox) in a cgroup of its own: at most ``processes``
    tasks, at most ``memory_mb`` of memory in total (where a memory controller is usable), and one
    share of the CPU (where a cpu controller is usable): the scheduler then weighs the sandbox as
    one, however many processes (or sessions, each an autogroup of its own) its code starts, so
    64 spinning processes cannot slow a neighbour's calls down past their time limits."""
    bases = cgroup_bases()
    name = f"{CGROUP_PREFIX}{os.getpid()}"
    settings = {"pids": [("pids.max", str(processes))],
                "cpu": [("cpu.weight", "100"), ("cpu.shares", "1024")]}   # (v2, v1: the defaults)
    if memory_mb:
        limit = str(memory_mb * 2**20)
        settings["memory"] = [("memory.max", limit), ("memory.swap.max", "0"),
                              ("memory.limit_in_bytes", limit)]
    joined = set()
    for controller, writes in settings.items():
        base = bases.get(controller)
        if base is None:   # (no memory controller: RLIMIT_AS per process still holds)
            if controller == "pids":
                report.missing.append("pids cgroup (no usable pids controller)")
            continue
        path = os.path.join(base, name)
        try:
            os.makedirs(path, exist_ok=True)
            wrote = False
            for filename, value in writes:
                target = os.path.join(path, filename)
                if os.path.exists(target):
                    with open(target, "w") as f:
                        f.write(value)
                    wrote = True
            if not wrote:
                raise OSError(95, "no limit file")
            if path not in joined:
                with open(os.path.join(path, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
                joined.add(path)
        except OSError as exc:
            if controller == "pids":
                report.missing.append(f"pids cgroup ({exc.strerror})")
            continue
        what = {"pids": f"at most {processes} processes", "memory": f"at most {memory_mb} MB in total",
                "cpu": "one share of the CPU for all its processes"}[controller]
        report.held.append(f"{controller} cgroup ({what})")


def remove_stale_cgroups() -> None:
    """Remove the cgroups of sandboxes that are gone (called by the grader)."""
    for base in set(cgroup_bases().values()):
        try:
            names = [n for n in os.listdir(base) if n.startswith(CGROUP_PREFIX)]
        except OSError:
            continue
        for name in names:
            try:
                pid = int(name[len(CGROUP_PREFIX):])
            except ValueError:
                continue
            try:
                os.kill(pid, 0)
                continue  # still running
            except ProcessLookupError:
                pass
            except PermissionError:
                continue
            try:
                os.rmdir(os.path.join(base, name))
            except OSError:
                pass


def _unescape(text: str) -> str:
    return text.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
