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
    """This process's ``/proc/self/cgroup`` and ``/proc/self/mountinfo`` lines."""
    with open("/proc/self/cgroup") as f:
        lines = f.read().splitlines()
    with open("/proc/self/mountinfo") as f:
        mounts = f.read().splitlines()
    return lines, mounts


CONTROLLERS = ("pids", "memory", "cpu")


def cgroup_bases() -> dict[str, str]:
    """Writable cgroup folders of this process, by controller ("pids", "memory", "cpu"), v1 or v2:
    the cgroup this process is in, where its mount shows it and it is writable (a sandbox's
    cgroup is made as a child of it).

    Only ever our own cgroup: its children's limits are hierarchical, so they bound what runs
    in them and change nothing for the cgroup's other members, its siblings or the host. The
    same for every controller and either version (v1 used to be refused below a hierarchy's
    root; as a child of our own cgroup nothing outside is touched, and a grader placed in a
    memory cgroup of its own, as here, gets a memory limit per sandbox at last)."""
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
        if len(left) < 5 or not right:
            continue
        mount_root, mount_point = _unescape(left[3]), _unescape(left[4])
        fstype = right[0]
        options = right[2].split(",") if len(right) > 2 else []
        if fstype == "cgroup2":
            rel = next((ln.split(":", 2)[2] for ln in lines if ln.startswith("0::")), None)
            base = _own_folder(mount_root, mount_point, rel)
            try:
                with open(os.path.join(base, "cgroup.controllers")) as f:
                    available = f.read().split()
            except (OSError, TypeError):
                continue
            for controller in CONTROLLERS:
                if controller in available and controller not in found and os.access(base, os.W_OK):
                    found[controller] = base
        elif fstype == "cgroup":
            for controller in CONTROLLERS:
                if controller not in options or controller in found:
                    continue
                rel = next((ln.split(":", 2)[2] for ln in lines if len(ln.split(":", 2)) == 3
                            and controller in ln.split(":")[1].split(",")), None)
                base = _own_folder(mount_root, mount_point, rel)
                if base and os.path.isdir(base) and os.access(base, os.W_OK):
                    found[controller] = base
    return found


def _own_folder(mount_root: str, mount_point: str, rel: str | None) -> str | None:
    """Where the cgroup ``rel`` (as /proc/self/cgroup names it) is under a mount of the
    hierarchy's ``mount_root`` (None when that mount does not show it)."""
    if rel is None or not rel.startswith("/"):
        return None
    root = mount_root.rstrip("/")
    if rel != root and not rel.startswith(root + "/"):
        return None
    inner = rel[len(root):].strip("/")
    if inner.split("/")[-1].startswith(CGROUP_PREFIX):
        return None   # (inside a sandbox's own cgroup: never nest a sandbox there)
    return os.path.join(mount_point, inner) if inner else mount_point


_WHAT = {"pids": "at most {processes} processes",
         "memory": "at most {memory_mb} MB for all its processes together, files in /tmp included",
         "cpu": "one share of the CPU for all its processes"}
MEMORY_MISSING = ("a memory cgroup ({why}): a sandbox's memory is capped per process (RLIMIT_AS) only, and "
                  "files in /tmp escape that cap")


def join_cgroups(processes: int, memory_mb: int, report: Report) -> dict[str, str]:
    """Put this process (and so the whole sandbox) in a cgroup of its own, a child of this
    process's (``cgroup_bases``): at most ``processes`` tasks, at most ``memory_mb`` of memory
    in total, every page the sandbox's processes own or leave behind (tmpfs files) charged to it, and one share of the CPU: the scheduler then weighs the
    sandbox as one, however many processes (or sessions, each an autogroup of its own) its code
    starts, so 64 spinning processes cannot slow a neighbour's calls down past their time limits.

    Returns {controller: folder joined}; what could not be had goes into ``report.missing``
    (the pids and memory controllers: without a cpu one the CPU share is only the scheduler's)."""
    bases = cgroup_bases()
    name = f"{CGROUP_PREFIX}{os.getpid()}"
    # (file, value, needed): v2's and v1's names; swap, where it is accounted, is not a way past the limit
    settings = {"pids": [("pids.max", str(processes), True)],
                "cpu": [("cpu.weight", "100", True), ("cpu.shares", "1024", True)]}   # (the defaults)
    if memory_mb:
        limit = str(memory_mb * 2**20)
        settings["memory"] = [("memory.max", limit, True), ("memory.swap.max", "0", False),
                              ("memory.limit_in_bytes", limit, True), ("memory.memsw.limit_in_bytes", limit, False)]
    joined: dict[str, str] = {}
    for controller, writes in settings.items():
        base = bases.get(controller)
        if base is None:
            _missing(report, controller, f"no usable {controller} controller")
            continue
        path = os.path.join(base, name)
        try:
            os.makedirs(path, exist_ok=True)
            wrote = False
            for filename, value, needed in writes:
                target = os.path.join(path, filename)
                if not os.path.exists(target):
                    continue
                try:
                    with open(target, "w") as f:
                        f.write(value)
                except OSError:
                    if needed:
                        raise
                    continue
                wrote = wrote or needed
            if not wrote:
                raise OSError(95, "no limit file")
            if path not in joined.values():
                with open(os.path.join(path, "cgroup.procs"), "w") as f:
                    f.write(str(os.getpid()))
            joined[controller] = path
        except OSError as exc:
            _missing(report, controller, exc.strerror or str(exc))
            continue
        report.held.append(f"{controller} cgroup ({_WHAT[controller].format(processes=processes, memory_mb=memory_mb)})")
    return joined


def _missing(report: Report, controller: str, why: str) -> None:
    if controller == "pids":
        report.missing.append(f"pids cgroup ({why})")
    elif controller == "memory":
        report.missing.append(MEMORY_MISSING.format(why=why))


def oom_kills(folder: str) -> int | None:
    """How many processes the kernel killed in the memory cgroup ``folder`` for want of memory
    (v2 ``memory.events``, v1 ``memory.oom_control``); None when unknown."""
    for filename in ("memory.events", "memory.oom_control"):
        try:
            with open(os.path.join(folder, filename)) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return None


def memory_used(folder: str) -> int | None:
    """Bytes charged to the memory cgroup ``folder`` now (v2 ``memory.current``, v1
    ``memory.usage_in_bytes``); None when unknown."""
    for filename in ("memory.current", "memory.usage_in_bytes"):
        try:
            with open(os.path.join(folder, filename)) as f:
                return int(f.read())
        except (OSError, ValueError):
            continue
    return None


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


def remove_cgroups(pid: int, seconds: float = 0.5) -> None:
    """Remove the cgroups of the sandbox whose launcher was ``pid`` (it is gone; its processes
    may still be exiting: retried for up to ``seconds``, then left to ``remove_stale_cgroups``)."""
    import time
    deadline = time.monotonic() + seconds
    for path in {os.path.join(base, f"{CGROUP_PREFIX}{pid}") for base in cgroup_bases().values()}:
        while os.path.isdir(path):
            try:
                os.rmdir(path)
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)


def _unescape(text: str) -> str:
    return text.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
