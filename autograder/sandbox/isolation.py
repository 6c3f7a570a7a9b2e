"""Operating-system isolation of the sandbox child (Linux): namespaces, a read-only filesystem
with the answer key hidden, no privileges, a cap on processes.

The child calls ``prepare`` before it forks its nanny and ``enter_worker`` in the worker (the
process that will run student code), both before any student code is loaded:

* ``prepare`` (in the child, before the fork): ``unshare`` a mount, PID, network, IPC and UTS
  namespace (plus a user namespace when not root, so an unprivileged grader can do the same);
  join a ``pids`` cgroup capped at ``pids`` processes (root only: RLIMIT_NPROC does not apply
  to uid 0); make every mount private and read-only; cover the paths to hide (the reference
  ``solutions/``, the course checkout, the grader's home, the gradebook, the other submissions)
  with empty read-only tmpfs, re-exposing only what Python needs below them (its prefix, the
  ``sys.path`` folders, the ``autograder`` package and its data), and hide ``SYSTEM_HIDDEN``
  (``/run``'s sockets, which a read-only mount does not stop, logs, ``/etc/shadow``...); give
  ``/tmp`` (which holds the private work folder) and ``/dev/shm`` fresh, small, writable tmpfs.
* ``enter_worker`` (in the worker, which is PID 1 of the new PID namespace): own session, die
  with the nanny (``PR_SET_PDEATHSIG``), a private ``/proc`` showing only the sandbox's own
  processes, ``pid_max`` of the namespace lowered, every capability dropped (bounding set,
  securebits, ``capset``), ``no_new_privs``, RLIMIT_NPROC when not root.

When the worker ends, the kernel kills everything left in its PID namespace: grandchildren that
double-forked or called ``setsid`` die too. ``kill(-1, SIGKILL)`` reaches only the sandbox's own
processes, the network namespace has no interface but a down loopback, and files outside the
private tmp are read-only whatever the student's uid.

Where namespaces are unavailable (not Linux, a container whose seccomp policy forbids
``unshare``, ``AUTOGRADER_SANDBOX=plain``) the child falls back to the weaker protections of
``fallback``: a process-group kill, a subreaper nanny that kills what is left, the pids cgroup
(root) or RLIMIT_NPROC (others), and a Python-level guard on ``os.kill``. ``Report.missing`` says what did not
hold; the grader logs it once per process.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from dataclasses import dataclass, field

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
_OPTION_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
                 "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME, "strictatime": MS_STRICTATIME}

PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_SET_SECUREBITS = 28
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
_SECUREBITS_ALL_LOCKED = 0x2F  # NOROOT, NO_SETUID_FIXUP, KEEP_CAPS: set and locked
_CAPABILITY_VERSION_3 = 0x20080522

CGROUP_PREFIX = "autograder-"
PID_MAX = 400                  # per-namespace pid_max (Linux >= 6.14): at most ~100 processes
# Never covered, whatever a caller asks: the system the sandbox itself runs on.
_NEVER_COVER = {"/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/proc",
                "/sbin", "/sys", "/usr", "/var"}
# Hidden on every machine: sockets a read-only filesystem does not stop (/run/docker.sock...),
# logs, and the host's secrets a capability-less uid 0 could still read as the files' owner.
SYSTEM_HIDDEN = ("/run", "/var/run", "/var/log", "/var/spool", "/var/lib/docker", "/etc/shadow", "/etc/gshadow",
                 "/etc/ssh", "/etc/sudoers", "/etc/sudoers.d")

_libc = None


def _lib():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                                ctypes.c_char_p]
        _libc.unshare.argtypes = [ctypes.c_int]
        _libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    return _libc


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _b(text):
    return None if text is None else os.fsencode(text)


def mount(source, target, fstype, flags, data=None) -> None:
    _check(_lib().mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {target}")


def prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    _check(_lib().prctl(option, arg2, arg3, 0, 0), f"prctl {option}")


@dataclass
class Report:
    """What held and what did not (sent to the grader with the ``loaded`` message)."""

    held: list = field(default_factory=list)
    missing: list = field(default_factory=list)
    namespaces: bool = False
    user_namespace: bool = False
    nproc: int | None = None    # RLIMIT_NPROC to set in the worker (non-root graders)
    death_pipe: int = -1        # read end: EOF when the nanny is gone
    death_pipe_w: int = -1      # write end, held by the nanny
    seconds: float = 0.0        # time spent setting the isolation up

    def as_dict(self) -> dict:
        return {"held": list(self.held), "missing": list(self.missing), "seconds": round(self.seconds, 4)}


# ------------------------------------------------------------------------------------ policy
def _is_under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _depth(path: str) -> int:
    return len([p for p in path.split("/") if p])


def python_needs() -> list[str]:
    """Folders the worker's Python must still see: its prefixes, sys.path, the autograder package."""
    needs = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    for entry in sys.path:
        if entry and os.path.isdir(entry):
            needs.add(os.path.realpath(entry))
    for name in ("autograder", "autograder.datasets"):
        try:
            import importlib.util
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        for location in (spec.submodule_search_locations or []) if spec else []:
            needs.add(os.path.realpath(location))
    return sorted(n for n in needs if n and os.path.isdir(n))


def _outermost(paths) -> list[str]:
    result = []
    for p in sorted(set(paths), key=lambda q: (_depth(q), q)):
        if not any(_is_under(p, r) for r in result):
            result.append(p)
    return result


# ------------------------------------------------------------------------------------ before the fork
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


def prepare(policy: dict) -> Report:
    """Namespaces, cgroup and filesystem (in the child, before the nanny fork)."""
    report = Report()
    if not sys.platform.startswith("linux"):
        report.missing.append(f"namespaces (not available on {sys.platform})")
        return report
    root = os.geteuid() == 0
    uid, gid = os.geteuid(), os.getegid()
    if root:  # RLIMIT_NPROC does not bind uid 0: a pids cgroup does (joined before /sys turns read-only)
        _join_pids_cgroup(int(policy.get("pids", 64)), report)
    if not policy.get("namespaces", True):
        report.missing.append("namespaces (turned off)")
        return report
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    if not root:
        flags |= CLONE_NEWUSER
        nproc_now = _count_own_processes(uid)
    try:
        _check(_lib().unshare(flags), "unshare")
    except OSError as exc:
        report.missing.append(f"namespaces (unshare: {exc.strerror})")
        return report
    report.namespaces = True
    report.user_namespace = not root
    report.held.append("namespaces: mount, pid, net, ipc, uts" + ("" if root else ", user"))
    if not root:
        try:
            for name, text in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
                with open(f"/proc/self/{name}", "w") as f:
                    f.write(text)
        except OSError as exc:
            report.missing.append(f"user namespace id maps ({exc.strerror})")
        policy = dict(policy, nproc=nproc_now + int(policy.get("pids", 64)))
    try:
        _build_filesystem(policy, report)
    except OSError as exc:
        report.missing.append(f"private filesystem ({exc})")
    report.nproc = policy.get("nproc")
    report.death_pipe, report.death_pipe_w = os.pipe()
    return report


def _count_own_processes(uid: int) -> int:
    count = 0
    try:
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    if entry.stat().st_uid == uid:
                        count += 1
                except OSError:
                    pass
    except OSError:
        return 1000
    return count


def pids_cgroup_base() -> str | None:
    """The folder of this process's cgroup in the ``pids`` hierarchy (v1 or v2), if writable."""
    try:
        with open("/proc/self/cgroup") as f:
            lines = f.read().splitlines()
        with open("/proc/self/mountinfo") as f:
            mounts = f.read().splitlines()
    except OSError:
        return None
    for line in mounts:
        fields = line.split(" - ")
        if len(fields) != 2:
            continue
        left, right = fields[0].split(), fields[1].split()
        mount_point = _unescape(left[4])
        fstype, options = right[0], right[2].split(",") if len(right) > 2 else []
        if fstype == "cgroup" and "pids" in options:
            rel = next((ln.split(":", 2)[2] for ln in lines if ln.split(":")[1:2] and
                        "pids" in ln.split(":")[1].split(",")), None)
        elif fstype == "cgroup2":
            rel = next((ln.split(":", 2)[2] for ln in lines if ln.startswith("0::")), None)
            try:
                with open(os.path.join(mount_point, "cgroup.controllers")) as f:
                    if "pids" not in f.read().split():
                        continue
            except OSError:
                continue
        else:
            continue
        if rel is None:
            continue
        base = os.path.join(mount_point, rel.lstrip("/"))
        if os.access(base, os.W_OK):
            return base
    return None


def _join_pids_cgroup(limit: int, report: Report) -> None:
    base = pids_cgroup_base()
    if base is None:
        report.missing.append("pids cgroup (no writable pids controller)")
        return
    path = os.path.join(base, f"{CGROUP_PREFIX}{os.getpid()}")
    try:
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "pids.max"), "w") as f:
            f.write(str(limit))
        with open(os.path.join(path, "cgroup.procs"), "w") as f:
            f.write(str(os.getpid()))
    except OSError as exc:
        report.missing.append(f"pids cgroup ({exc.strerror})")
        try:
            os.rmdir(path)
        except OSError:
            pass
        return
    report.held.append(f"pids cgroup (at most {limit} processes)")


def remove_stale_cgroups(base: str | None = None) -> None:
    """Remove the cgroups of sandbox children that are gone (called by the grader)."""
    base = base or pids_cgroup_base()
    if not base:
        return
    try:
        names = [n for n in os.listdir(base) if n.startswith(CGROUP_PREFIX)]
    except OSError:
        return
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


def _mountinfo() -> list[tuple[int, str, set]]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left = line.split(" - ")[0].split()
            out.append((int(left[0]), _unescape(left[4]), set(left[5].split(","))))
    return out


def _cover(path: str, keep: list[str], *, size: str, mode: str) -> None:
    """Mount an empty tmpfs over ``path``, then bind back the ``keep`` folders found below it."""
    inside = [k for k in _outermost(keep) if _is_under(k, path) and k != path]
    fds = [(k, os.open(k, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)) for k in inside]
    try:
        mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode={mode}")
        for k, fd in fds:
            os.makedirs(k, exist_ok=True)
            mount(f"/proc/self/fd/{fd}", k, None, MS_BIND | MS_REC)
    finally:
        for _, fd in fds:
            os.close(fd)


def _build_filesystem(policy: dict, report: Report) -> None:
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    workdir = os.path.realpath(policy["workdir"])
    keep = python_needs() + [os.path.realpath(p) for p in policy.get("keep", []) if os.path.isdir(p)]
    keep = [k for k in keep if not _is_under(k, workdir)]   # the work folder is re-created empty
    package = policy.get("package")
    # Scratch space: fresh, small, writable. Hides other sandboxes' work folders and whatever else
    # lives in /tmp (other submissions, pytest's folders).
    scratch = sorted({"/tmp", os.path.realpath(policy.get("scratch") or "/tmp")}, key=_depth)
    scratch = [s for s in _outermost(scratch) if os.path.isdir(s)]
    tmp_size = f"{int(policy.get('tmp_mb', 64))}m"
    writable_points = []
    for s in scratch:
        _cover(s, keep, size=tmp_size, mode="1777")
        writable_points.append(s)
    if not any(_is_under(workdir, s) for s in scratch):
        _cover(workdir, [], size=tmp_size, mode="0700")
        writable_points.append(workdir)
    os.makedirs(workdir, mode=0o700, exist_ok=True)
    if package:
        link_root = os.path.join(workdir, ".path")
        os.makedirs(link_root, exist_ok=True)
        link = os.path.join(link_root, "autograder")
        if not os.path.lexists(link):
            os.symlink(package, link)
    os.chdir(workdir)
    if os.path.isdir("/dev/shm"):
        try:
            mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=16m,mode=1777")
            writable_points.append("/dev/shm")
        except OSError:
            pass
    report.held.append("private writable /tmp (" + tmp_size + "B)")
    # Hidden: empty and read-only, except the folders Python needs below them.
    hidden_ok, hidden_failed = [], []
    hide = list(policy.get("hide", [])) + list(SYSTEM_HIDDEN)
    for path in sorted({os.path.realpath(p) for p in hide if p}, key=lambda p: (_depth(p), p)):
        if path in _NEVER_COVER or _depth(path) < 1 or any(_is_under(w, path) for w in writable_points):
            continue
        if any(_is_under(path, s) for s in scratch):
            hidden_ok.append(path)      # already gone with the old /tmp
            continue
        if not os.path.lexists(path) or path in keep:
            continue
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                _cover(path, keep, size="1m", mode="0755")
            elif os.path.isfile(path):
                mount("/dev/null", path, None, MS_BIND)
            hidden_ok.append(path)
        except OSError as exc:
            hidden_failed.append(f"{path} ({exc.strerror})")
    if hidden_ok:
        report.held.append(f"{len(hidden_ok)} path(s) hidden")
    if hidden_failed:
        report.missing.append("hiding " + ", ".join(hidden_failed))
    # Everything but the scratch space read-only.
    mounts = _mountinfo()
    top = {}
    for mount_id, point, options in mounts:
        top[point] = (mount_id, options)       # later entries are mounted on top of earlier ones
    keep_writable = {top[p][0] for p in writable_points if p in top}
    failures = []
    for mount_id, point, options in mounts:
        if mount_id in keep_writable or "ro" in options or top[point][0] != mount_id:
            continue  # (a remount by path reaches only the mount on top at that point)
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        for option in options:
            flags |= _OPTION_FLAGS.get(option, 0)
        try:
            mount(None, point, None, flags)
        except OSError as exc:
            failures.append((point, exc.strerror))
    must = [p for p in policy.get("readonly", []) + ["/"] if os.path.exists(p)]
    writable = [p for p in must if not any(_is_under(p, w) for w in writable_points)
                and not os.statvfs(p).f_flag & os.ST_RDONLY]
    if writable:
        report.missing.append("read-only filesystem (still writable: " + ", ".join(writable) + ")")
    else:
        report.held.append("read-only filesystem outside the private /tmp")


# ------------------------------------------------------------------------------------ the worker
def after_fork_in_nanny(report: Report) -> None:
    if report.death_pipe >= 0:
        os.close(report.death_pipe)


def enter_worker(report: Report, policy: dict) -> None:
    """In the worker, before student code: session, death signal, /proc, privileges."""
    if not report.namespaces:
        return
    os.close(report.death_pipe_w)
    os.setsid()  # kill(0, ...) from student code reaches only the sandbox's own group
    try:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        report.missing.append("death signal")
    import select
    if select.select([report.death_pipe], [], [], 0)[0]:
        os._exit(1)  # the nanny died before the death signal was armed
    try:
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        report.held.append("private /proc")
        try:
            with open("/proc/sys/kernel/pid_max", "w") as f:
                f.write(str(PID_MAX))
            report.held.append(f"pid_max {PID_MAX} in the PID namespace")
        except OSError:
            pass
        try:
            mount(None, "/proc", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
        except OSError:
            pass
    except OSError as exc:
        report.missing.append(f"private /proc ({exc.strerror}); the host's is visible read-only")
    _drop_privileges(report)
    nproc = report.nproc
    if nproc:
        import resource
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
            report.held.append("RLIMIT_NPROC")
        except (ValueError, OSError):
            report.missing.append("RLIMIT_NPROC")


def _drop_privileges(report: Report) -> None:
    lib = _lib()
    for cap in range(64):
        if lib.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:  # EINVAL: no such cap
            break
    lib.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    lib.prctl(PR_SET_SECUREBITS, _SECUREBITS_ALL_LOCKED, 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header, data = Header(_CAPABILITY_VERSION_3, 0), (Data * 2)()
    capset_ok = lib.capset(ctypes.byref(header), ctypes.byref(data)) == 0
    nnp_ok = lib.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0
    if capset_ok and _effective_caps() == 0:
        report.held.append("no capabilities")
    else:
        report.missing.append("dropping capabilities")
    (report.held if nnp_ok else report.missing).append("no_new_privs")


def _effective_caps() -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except OSError:
        pass
    return -1


# ------------------------------------------------------------------------------------ fallback
def fallback(report: Report, policy: dict) -> None:
    """Weaker protections when there are no namespaces (in the worker)."""
    import resource
    if os.geteuid() != 0:
        limit = _count_own_processes(os.geteuid()) + int(policy.get("pids", 64))
        try:
            resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
            report.held.append("RLIMIT_NPROC")
        except (ValueError, OSError):
            report.missing.append("RLIMIT_NPROC")
    elif not any("pids cgroup" in held for held in report.held):
        report.missing.append("process cap (RLIMIT_NPROC does not apply to root)")
    report.missing.append("hidden paths and read-only files (no mount namespace)")
    report.missing.append("network isolation (no network namespace)")
    _guard_kill(report)
    try:
        prctl(PR_SET_NO_NEW_PRIVS, 1)
        report.held.append("no_new_privs")
    except OSError:
        pass


def _guard_kill(report: Report) -> None:
    """Refuse os.kill/os.killpg outside the sandbox's own processes (Python level only)."""
    own = os.getpid()
    real_kill, real_killpg = os.kill, os.killpg

    def kill(pid, sig):
        if pid <= 0 or (pid != own and not _is_descendant(pid, own)):
            raise PermissionError(1, "the sandbox may only signal its own processes")
        return real_kill(pid, sig)

    def killpg(pgid, sig):
        if pgid != os.getpgid(0):
            raise PermissionError(1, "the sandbox may only signal its own processes")
        return real_killpg(pgid, sig)

    os.kill, os.killpg = kill, killpg
    report.missing.append("kill(-1) contained only at the Python level")


def _is_descendant(pid: int, ancestor: int) -> bool:
    for _ in range(64):
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
    return False
