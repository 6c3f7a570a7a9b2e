"""The sandbox's filesystem: a new root that holds only an allowlist, built with mounts (Linux).

``build_root(layout, ...)`` mounts a small tmpfs, creates in it the folders and symlinks of the
allowlist, bind-mounts read-only what is listed (the Python installation, the system libraries
its extension modules need, the guest runtime under ``/sandbox``), covers what must stay out of
sight inside those folders (an installed copy of the grader, ``solutions``), adds a ``/dev`` of
exactly three nodes, a private ``/tmp`` and a ``/proc`` of the caller's PID namespace (a call's: of
bound files only, see ``_bound_proc``), then
``pivot_root``s into it and detaches the old root. Afterwards nothing else exists for the
process: not through ``..``, ``/proc/1/root``, ``/proc/self/cwd`` or open descriptors (the
caller opens none).

The zygote builds it once from the host's filesystem; every call process builds it again from
the zygote's (same paths), so that everything a call can see is either the host's own (with the
host's timestamps) or made for this call: nothing carries the time or the order of earlier calls.

``layout`` (computed by the grader, ``policy.py``)::

    {"binds": [[path, "dir"|"file"], ...],       read-only, at the same path
     "symlinks": [[path, target], ...],           e.g. /lib -> usr/lib, as on the host
     "hide": [[path, "dir"|"file"], ...],         inside binds: empty
     "runtime": [[guest path, host path, kind]],  the guest package (/sandbox/...)
     "devices": ["/dev/null", ...], "tmp_mb": IsolationPolicy.tmp_mb}
"""

from __future__ import annotations

import os
import stat

from .containment import set_oom_score
from .isolation import check, libc

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_RELATIME = 1 << 21
MNT_DETACH = 2
_ST_TO_MS = ((os.ST_NOSUID, MS_NOSUID), (os.ST_NODEV, MS_NODEV), (os.ST_NOEXEC, MS_NOEXEC),
             (getattr(os, "ST_NOATIME", 1024), MS_NOATIME), (getattr(os, "ST_NODIRATIME", 2048), MS_NODIRATIME),
             (getattr(os, "ST_RELATIME", 4096), MS_RELATIME))
_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}
STAGING = "/tmp"
TMPFS_MAGIC = 0x01021994
PROC_MASKED = ("kpageflags", "kpagecount", "kpagecgroup", "kcore", "sched_debug", "timer_list", "keys",
               "key-users", "latency_stats",
               # machine-wide counters and allocator state a call can advance and a later one read
               "vmstat", "interrupts", "softirqs", "diskstats", "schedstat", "zoneinfo", "pagetypeinfo",
               "buddyinfo", "slabinfo", "vmallocinfo")
PROC_ZEROED = ("stat",)   # the same, but its lines are kept (glibc counts CPUs by /proc/stat's cpuN lines)
# What a call's /proc holds of the real one (files only; see _bound_proc): glibc's
# pthread_getattr_np reads self/maps, the rest is what a program may look at about itself.
PROC_BOUND = ("self/maps", "self/smaps", "self/status", "self/stat", "self/statm", "self/mountinfo", "self/mounts",
              "self/cgroup", "self/limits", "self/oom_score_adj", "self/oom_score", "self/cmdline", "self/comm",
              "self/environ", "self/io", "self/mem", "self/clear_refs", "meminfo", "cpuinfo", "uptime", "loadavg",
              "version")
# (no /dev/zero: a shared mapping of it is a new inode of the kernel's shmem mount, whose numbers are a
# machine-wide counter a filter cannot tell from a file's mapping: see seccomp)
DEVICES = ("/dev/null", "/dev/random", "/dev/urandom")


def mount(source, target, fstype, flags, data=None) -> None:
    enc = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    check(libc().mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def make_private() -> None:
    """Nothing mounted from here on propagates to the host (or back)."""
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def build_root(layout: dict, report, *, from_host: bool, proc: bool = True,
               oom_score_adj: int | None = None) -> None:
    """Build the allowlist root and move into it (see the module docstring). ``from_host``: the
    runtime comes from the real package (the zygote); else from ``/sandbox`` (a call process).
    ``oom_score_adj`` is written through the new ``/proc`` before it becomes read-only (raising
    it needs no privilege, only a writable ``/proc``, which the process never has again)."""
    # Everything is opened before anything is mounted on top of it. A call process opens only
    # the zygote's binds of the host's folders: what it makes (files, device nodes) it makes from
    # the layout, never from the zygote's own files (their times are the sandbox's start).
    sources, files, devices, made = {}, {}, {}, set()
    copies = layout.get("sources", {}) if from_host else {}   # (a call binds the zygote's: the same copies)
    wanted = [(p, copies.get(p, p), k) for p, k in layout["binds"]]
    wanted += [(g, h if from_host else g, k) for g, h, k in layout["runtime"] if from_host or k == "dir"]
    wanted += [(d, d, "file") for d in layout["devices"] if from_host]
    missing = []
    for target, source, kind in wanted:
        try:
            sources[target] = (os.open(source, os.O_PATH | os.O_CLOEXEC), kind)
        except OSError:
            missing.append(target)
    if not from_host:
        files = {g: layout["runtime_files"][g].encode() for g, _, k in layout["runtime"] if k == "file"}
        devices = dict(layout["device_numbers"])
    if missing:
        report.missing.append("allowlist entries not found: " + ", ".join(missing))
    new = STAGING
    tmp_mb = int(layout["tmp_mb"])   # (policy.layout always sets it: the one default is IsolationPolicy's)
    skeleton: list[str] = []
    try:
        # (not nodev: the three device nodes may be made in it; it is read-only once built)
        mount("tmpfs", new, "tmpfs", MS_NOSUID, "size=1m,nr_inodes=4096,mode=0755")
        # The private /tmp first: allowlisted folders and symlinks below /tmp (a checkout and its
        # virtualenv in /tmp/x) get their mount points and links in it, not under it.
        _mkdirs(new, "/tmp", skeleton, made)
        mount("tmpfs", new + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
              f"size={tmp_mb}m,nr_inodes=16384,mode=1777")
        for path, target in layout["symlinks"]:
            _mkdirs(new, os.path.dirname(path), skeleton, made)
            if not os.path.lexists(new + path):
                os.symlink(target, new + path)
            made.add(path)
        for target, (fd, kind) in sources.items():
            _mount_point(new, target, kind, skeleton, made)
            mount(f"/proc/self/fd/{fd}", new + target, None, MS_BIND)
            _make_read_only(new + target, device=target in layout["devices"])
        for guest, data in files.items():
            _mkdirs(new, os.path.dirname(guest), skeleton, made)
            fd = os.open(new + guest, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
            try:   # (os-level, as open(..., "wb") but without its file objects)
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.utime(fd, (0, 0))
            finally:
                os.close(fd)
        for device, rdev in devices.items():
            _mkdirs(new, os.path.dirname(device), skeleton, made)
            try:   # a node of its own (root); in a user namespace the zygote's, bind-mounted
                os.mknod(new + device, 0o666 | stat.S_IFCHR, rdev)
                os.chmod(new + device, 0o666)
            except OSError:
                fd = os.open(device, os.O_PATH | os.O_CLOEXEC)
                try:
                    _mount_point(new, device, "file", skeleton, made)
                    mount(f"/proc/self/fd/{fd}", new + device, None, MS_BIND)
                    _make_read_only(new + device, device=True)
                finally:
                    os.close(fd)
        _hide(new, layout.get("hide", []))
        if from_host:
            _report_residence(new, layout, report)
        if proc:
            _mkdirs(new, "/proc", skeleton, made)
            # Read-only per mount, not per superblock: in a user namespace the kernel refuses a
            # writable /proc (a call's, to write its oom_score_adj) next to a read-only superblock.
            flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
            mount("proc", new + "/proc", "proc", flags)
            if oom_score_adj is not None:
                _adjust_oom_score(new + "/proc", oom_score_adj, report)
            mount(None, new + "/proc", None, MS_REMOUNT | MS_BIND | MS_RDONLY | flags)
            if os.statvfs(new + "/proc").f_flag & os.ST_RDONLY:
                report.held.append("private read-only /proc")
            else:  # never go on silently with a writable /proc
                report.missing.append("read-only /proc (the proc mount is writable)")
            if not from_host:   # (not the zygote's: a user namespace refuses a new /proc next to a masked one)
                _bound_proc(new, report)
    finally:
        for fd, _ in sources.values():
            os.close(fd)
    os.mkdir(new + "/.old")
    pivot_root(new, new + "/.old")
    os.chdir("/")
    # From here on there is no way back to a fallback: what fails is reported, loudly.
    try:
        check(libc().umount2(b"/.old", MNT_DETACH), "umount the old root")
        os.rmdir("/.old")
    except OSError as exc:
        report.missing.append(f"detaching the old root ({exc})")
    mounted = set(sources) | {"/tmp", "/proc"} | set(devices)
    for folder in sorted(set(skeleton) - mounted, key=len, reverse=True) + ["/"]:
        try:
            os.utime(folder, (0, 0))   # the same folders look the same in every sandbox and call
        except OSError:
            pass
    try:
        _make_read_only("/", device=True)   # (dev: its three nodes are in it)
    except OSError as exc:
        report.missing.append(f"read-only root ({exc})")
    writable = [p for p, _ in layout["binds"] if os.path.exists(p) and not os.statvfs(p).f_flag & os.ST_RDONLY]
    if not os.statvfs("/").f_flag & os.ST_RDONLY:
        writable.append("/")
    if writable:
        report.missing.append("read-only allowlist (still writable: " + ", ".join(writable) + ")")
    else:
        report.held.append(f"allowlist filesystem ({len(layout['binds'])} read-only folders and files, "
                           f"/dev with {len(layout['devices'])} nodes, private {tmp_mb} MB /tmp)")


def _adjust_oom_score(proc: str, value: int, report) -> None:
    try:
        set_oom_score(value, proc)
        report.held.append(f"calls are the first the kernel stops when memory runs out (oom_score_adj {value})")
    except OSError as exc:
        report.missing.append(f"oom_score_adj {value} for calls ({exc.strerror})")


def _bound_proc(new: str, report) -> None:
    """A call's ``/proc``: a small read-only tmpfs on top of the real one (which no path reaches
    again), holding bind mounts of the files in ``PROC_BOUND`` and plain files for the others.

    No folder of the real ``/proc`` is reachable: every inode of a ``/proc/<pid>`` or ``/proc/sys``
    folder gets its number from the kernel's machine-wide counter (``get_next_ino``, in batches of
    1024 per CPU) when first looked up, so a call that could look up new entries (its fd numbers,
    its threads' folders) could move that counter and read it, leaving a mark for a later call. A
    bound file is looked up once, here. The host-wide files a call could read other calls' state
    in (``PROC_MASKED``: the flags of every physical page, every CPU's timers, the forks since
    boot...) are empty files; ``/proc/stat`` keeps its lines with every number 0 (glibc counts the
    CPUs by its ``cpuN`` lines)."""
    static = new + "/.proc"
    try:
        os.mkdir(static)
        mount("tmpfs", static, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=256k,nr_inodes=256,mode=0755")
        os.mkdir(static + "/self")
        for name in PROC_MASKED:
            open(f"{static}/{name}", "wb").close()
        for name in PROC_ZEROED:
            with open(f"{new}/proc/{name}", "rb") as f:
                text = zeroed(f.read())
            with open(f"{static}/{name}", "wb") as f:
                f.write(text)
        for name in PROC_BOUND:
            if os.path.exists(f"{new}/proc/{name}"):
                open(f"{static}/{name}", "wb").close()
                mount(f"{new}/proc/{name}", f"{static}/{name}", None, MS_BIND)   # (read-only: the proc mount is)
        os.symlink("self/mounts", static + "/mounts")
        mount(None, static, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC)
        # Moved, not the real one unmounted: an unmount waits for the kernel's RCU (tens of ms here).
        mount(static, new + "/proc", None, MS_MOVE)
        os.rmdir(static)
    except OSError as exc:
        report.missing.append(f"a /proc of bound files only ({exc})")


def zeroed(text: bytes) -> bytes:
    """Every line's first word, its other fields 0 (``cpu0 0 0 0 ...``, ``processes 0``)."""
    lines = []
    for line in text.splitlines():
        words = line.split()
        if words:
            lines.append(b" ".join([words[0]] + [b"0"] * (len(words) - 1)))
    return b"\n".join(lines) + b"\n"


def _report_residence(new: str, layout: dict, report) -> None:
    """Whether every allowlisted file is served from memory (see ``resident``)."""
    reason = layout.get("resident", "no copy was made")
    if reason is None:
        on_disk = [p for p, _ in layout["binds"] if not is_tmpfs(new + p)]
        reason = "not on a tmpfs: " + ", ".join(on_disk) if on_disk else None
    if reason is None:
        report.held.append("allowlist served from memory (a pruned tmpfs copy: no page cache, inode or dentry "
                           "state of the host's files to read or change)")
    else:
        report.missing.append(f"allowlist served from memory ({reason}): the host's page cache of the allowlisted "
                              "files outlives a call, a channel to later calls")


def is_tmpfs(path: str) -> bool:
    """Whether ``path`` is on a tmpfs (statfs's f_type, the first field of struct statfs)."""
    import ctypes
    buffer = ctypes.create_string_buffer(256)
    if libc().statfs(os.fsencode(path), buffer) != 0:
        return False
    return ctypes.c_long.from_buffer(buffer).value == TMPFS_MAGIC


def pivot_root(new: str, old: str) -> None:
    number = _SYS_PIVOT_ROOT.get(os.uname().machine)
    if number is None:
        raise OSError(38, f"pivot_root: unknown system call number on {os.uname().machine}")
    check(libc().syscall(number, os.fsencode(new), os.fsencode(old)), "pivot_root")


def _mkdirs(new: str, path: str, skeleton: list, made: set) -> None:
    """Make the folders of ``path`` in the new root (``made``: the paths known to exist there)."""
    parts = [p for p in path.split("/") if p]
    current = ""
    for part in parts:
        current += "/" + part
        if current in made:
            continue
        if not os.path.lexists(new + current):
            os.mkdir(new + current, 0o755)
            skeleton.append(current)
        made.add(current)


def _mount_point(new: str, target: str, kind: str, skeleton: list, made: set) -> None:
    _mkdirs(new, os.path.dirname(target), skeleton, made)
    if kind == "dir":
        _mkdirs(new, target, skeleton, made)
    elif not os.path.lexists(new + target):
        with open(new + target, "w"):
            pass


def _make_read_only(path: str, *, device: bool = False) -> None:
    current = os.statvfs(path).f_flag
    wanted = os.ST_RDONLY | (0 if device else os.ST_NOSUID | os.ST_NODEV)
    if current & wanted == wanted:
        return   # (a bind of a read-only mount is read-only already: a call process's case)
    flags = MS_REMOUNT | MS_BIND | MS_RDONLY | (0 if device else MS_NOSUID | MS_NODEV)
    for st, ms in _ST_TO_MS:   # keep the flags the source mount had (a user namespace locks them)
        if current & st:
            flags |= ms
    mount(None, path, None, flags)


def _hide(new: str, hide: list) -> None:
    """Folders: an empty read-only tmpfs on top. Files: an empty read-only file on top."""
    empty = None
    for path, kind in hide:
        target = new + path
        if not os.path.lexists(target) or os.path.islink(target):
            continue
        if kind == "dir" and os.path.isdir(target):
            mount("tmpfs", target, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                  "size=4k,nr_inodes=16,mode=0755")
        elif kind == "file" and os.path.isfile(target):
            if empty is None:
                empty = new + "/.empty"
                with open(empty, "w"):
                    pass
            mount(empty, target, None, MS_BIND)
            _make_read_only(target)
    if empty is not None:
        os.unlink(empty)   # (the mounts keep the inode)
