"""The allowlist served from memory: a pruned copy of its files in a tmpfs, shared by every sandbox
of a machine, so that what one call does to the host's page cache cannot be seen by a later one.

Why: the host's page cache (and its inode and dentry caches) of the files a call can read outlives
the call. One rarely read file is one bit (reading it sets it, ``posix_fadvise(DONTNEED)`` clears
it, ``preadv2(RWF_NOWAIT)``, ``mincore``, fault-around in ``/proc/self/smaps``, ``ru_majflt`` or
timing read it), enough to remember across calls what the grader's first, correct, call answered
(``tests/corpora/hostile/counts_calls_page_cache.py``). A tmpfs file has no copy on disk: its
pages, inodes and dentries are always in memory, whatever earlier calls did, and the system-call
filter (``seccomp``) denies what could move them out (``fadvise64``, ``readahead``, ``madvise``
``MADV_PAGEOUT``/``MADV_COLD``...) or probe them (``mincore``, ``cachestat``, ``preadv2``).

How: ``serve(entries)`` copies each entry (a folder or a file of the allowlist, with what the
child does not need pruned: ``pruning``, chosen in ``policy``) to ``<shm>/autograder-allowlist-<key>/data``, where
``<shm>`` is ``/dev/shm`` (``AUTOGRADER_SANDBOX_SHM`` for another tmpfs) and ``key`` a hash of
the entry's path and of every kept file's path, size, mode and mtime: a changed virtualenv gets
a new copy, an unchanged one is reused by every grader process of the machine (pytest-xdist
workers, batch pool workers, other checkouts of the same interpreter). A copy is built by one
grader at a time (an exclusive lock on ``<key>.build``; the others wait and reuse it) under a
temporary name and renamed into place, so no grader ever sees half of one. An index (``recall``,
``remember``) names the copies of a cheap fingerprint of the folders, so that later grader
processes skip the selection. Every grader
process that may use a copy holds a shared ``flock`` on ``<key>.lock`` for its lifetime; whoever
builds a copy first removes the copies nobody holds that were last used more than
``STALE_SECONDS`` ago (any unused copy when ``/dev/shm`` is short of room). Nothing host-wide is
changed: files in an existing tmpfs, nothing mounted on the host.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import stat
import time
from dataclasses import dataclass

PREFIX = "autograder-allowlist-"
FORMAT = "1"                 # (a change of what a copy holds gets new keys)
STALE_SECONDS = 3600.0
_held: dict = {}             # key -> open lock file (held for the life of this process)


def shm_root() -> str:
    return os.environ.get("AUTOGRADER_SANDBOX_SHM", "/dev/shm")


@dataclass(frozen=True)
class Entry:
    """One allowlisted path and what of it to copy: ``files`` maps relative paths (``""``: the
    path itself) to their ``os.lstat``; folders are made as needed, symlinks are recreated."""

    path: str
    files: dict

    def key(self) -> str:
        digest = hashlib.sha256(f"{FORMAT}\0{self.path}\0".encode())
        for rel in sorted(self.files):
            st = self.files[rel]
            link = os.readlink(os.path.join(self.path, rel)) if stat.S_ISLNK(st.st_mode) else ""
            digest.update(f"{rel}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0{link}\n".encode())
        return digest.hexdigest()[:24]

    def size(self) -> int:
        return sum(st.st_size for st in self.files.values() if stat.S_ISREG(st.st_mode))


def select(path: str, keep) -> Entry:
    """The files below ``path`` (a folder or a file) that ``keep(path, is_dir)`` accepts (a folder
    it refuses is not entered)."""
    files: dict = {}
    top = os.lstat(path)
    if not stat.S_ISDIR(top.st_mode):
        return Entry(path, {"": top})

    def walk(folder: str, rel: str) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            sub = f"{rel}/{entry.name}" if rel else entry.name
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            is_dir = stat.S_ISDIR(st.st_mode)
            if not keep(entry.path, is_dir):
                continue
            if is_dir:
                files[sub] = st
                walk(entry.path, sub)
            elif stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
                files[sub] = st

    files[""] = top
    walk(path, "")
    return Entry(path, files)


def serve(entries: list[Entry]) -> tuple[dict, str | None]:
    """Make (or reuse) the copies of ``entries``: ({host path: copy path}, None), or ({}, why not)."""
    from .filesystem import is_tmpfs
    root = shm_root()
    if not os.path.isdir(root) or not is_tmpfs(root):
        return {}, f"{root} is not a tmpfs"
    keyed = [(entry, entry.key()) for entry in entries]
    sources: dict = {}
    try:
        for entry, key in keyed:
            sources[entry.path] = _copy(root, entry, key)
    except OSError as exc:
        return {}, f"copying the allowlist to {root} failed ({exc.strerror or exc})"
    return sources, None


# ------------------------------------------------------------------------------------ the index
# Selecting the files and hashing them (some 16,000 stats) costs about half a second; every grader
# process would pay it before its first sandbox. A cheap fingerprint of the same folders (their
# roots and top levels, every site-packages entry, the whole sandbox runtime, whose modules hold
# the pruning rules) names what that selection gave last time. pip and apt replace files (a new
# entry, a new folder time), so they change the fingerprint; an edit in place deep inside an
# installed package does not (until the copy is remade: remove <shm>/autograder-allowlist-*).
def fingerprint(paths: list[tuple[str, int]], extra: str = "") -> str:
    """A hash of ``os.lstat`` of each path and of its entries ``depth`` levels down (-1: all)."""
    digest = hashlib.sha256(f"{FORMAT}\0{extra}\n".encode())

    def visit(path: str, depth: int) -> None:
        try:
            st = os.lstat(path)
        except OSError:
            digest.update(f"{path}\0-\n".encode())
            return
        digest.update(f"{path}\0{st.st_mode}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\n".encode())
        if depth != 0 and stat.S_ISDIR(st.st_mode):
            try:
                names = sorted(os.listdir(path))
            except OSError:
                return
            for name in names:
                visit(os.path.join(path, name), depth - 1)

    for path, depth in sorted(paths):
        visit(path, depth)
    return digest.hexdigest()[:24]


def recall(mark: str) -> dict | None:
    """The copies the selection named by ``mark`` gave, when they all still exist (held from now on)."""
    import json
    root = shm_root()
    index = os.path.join(root, f"{PREFIX}index-{mark}.json")
    try:
        with open(index) as f:
            sources = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(sources, dict):
        return None
    for copy in sources.values():
        name = os.path.basename(os.path.dirname(str(copy)))
        if not name.startswith(PREFIX) or os.path.dirname(os.path.dirname(str(copy))) != root:
            return None
        _hold(root, name[len(PREFIX):])
        if not os.path.lexists(copy):
            return None
    try:
        os.utime(index)
    except OSError:
        pass
    return sources


def remember(mark: str, sources: dict) -> None:
    import json
    root = shm_root()
    index = os.path.join(root, f"{PREFIX}index-{mark}.json")
    part = f"{index}.part-{os.getpid()}-{os.urandom(4).hex()}"
    try:
        with open(part, "w") as f:
            json.dump(sources, f)
        os.chmod(part, 0o644)
        os.rename(part, index)
    except OSError:
        try:
            os.unlink(part)
        except OSError:
            pass


def _copy(root: str, entry: Entry, key: str) -> str:
    final = os.path.join(root, PREFIX + key)
    _hold(root, key)
    data = os.path.join(final, "data")
    if os.path.lexists(data):
        return data
    # One builder at a time per key (the others wait, then use its copy): an exclusive lock on
    # a file of its own (the lock file is held shared by every user of the copy).
    builder = os.open(os.path.join(root, PREFIX + key + ".build"), os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(builder, fcntl.LOCK_EX)
        if os.path.lexists(data):
            return data
        return _build(root, entry, key, final, data)
    finally:
        os.close(builder)


def _build(root: str, entry: Entry, key: str, final: str, data: str) -> str:
    need = entry.size()
    room = os.statvfs(root)
    if room.f_bavail * room.f_frsize < 2 * need + (64 << 20):
        clean(root, keep={key}, max_age=0.0)
        room = os.statvfs(root)
        if room.f_bavail * room.f_frsize < 2 * need + (64 << 20):
            raise OSError(28, f"not enough room for {need >> 20} MB")
    else:
        clean(root, keep=set(_held))
    part = f"{final}.part-{os.getpid()}-{os.urandom(4).hex()}"
    os.mkdir(part, 0o755)
    try:
        _write(entry, os.path.join(part, "data"))
        os.chmod(part, 0o755)
        try:
            os.rename(part, final)
        except OSError:   # another grader made it first: use theirs
            if not os.path.lexists(data):
                raise
    finally:
        shutil.rmtree(part, ignore_errors=True)
    return data


def _write(entry: Entry, dest: str) -> None:
    """Copy the selected files (every byte written: no holes, so nothing is allocated on a read),
    keeping modes and times; folders' times are set once everything is in them."""
    folders = []
    for rel in sorted(entry.files):
        st = entry.files[rel]
        source = os.path.join(entry.path, rel) if rel else entry.path
        target = os.path.join(dest, rel) if rel else dest
        if stat.S_ISDIR(st.st_mode):
            os.makedirs(target, exist_ok=True)
            folders.append((target, st))
        elif stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(source), target)
        else:
            shutil.copyfile(source, target)
            os.chmod(target, stat.S_IMODE(st.st_mode))
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    for target, st in reversed(folders):
        os.chmod(target, stat.S_IMODE(st.st_mode))
        os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))


def _hold(root: str, key: str) -> None:
    """A shared lock on the copy's lock file for the life of this process (no cleaner removes a
    copy while a lock is held); its mtime says when the copy was last used."""
    if key in _held:
        return
    path = os.path.join(root, PREFIX + key + ".lock")
    while True:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_SH)
        try:   # (a cleaner may have removed the file between our open and our lock)
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            try:
                os.utime(fd)
            except OSError:   # (another user's copy: its owner's last use counts)
                pass
            _held[key] = fd
            return
        os.close(fd)


def clean(root: str, keep: set, max_age: float = STALE_SECONDS) -> list[str]:
    """Remove the copies (and half-built ones) that no process holds and that were last used more
    than ``max_age`` seconds ago; returns their keys."""
    removed = []
    try:
        names = os.listdir(root)
    except OSError:
        return removed
    now = time.time()
    for name in names:
        if name.startswith("." + PREFIX) and ".trash-" in name and not _alive(name.rsplit("-", 1)[-1]):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)   # (its remover died)
        if name.startswith(PREFIX + "index-"):
            try:
                if now - os.lstat(os.path.join(root, name)).st_mtime > max(max_age, 60.0):
                    os.unlink(os.path.join(root, name))
            except OSError:
                pass
            continue
        if not (name.startswith(PREFIX) and name.endswith(".lock")):
            continue
        key = name[len(PREFIX):-len(".lock")]
        if key in keep:
            continue
        lock = os.path.join(root, name)
        try:
            fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                continue   # in use
            if now - os.fstat(fd).st_mtime < max_age:
                continue
            for other in names:
                if other == PREFIX + key or other.startswith(PREFIX + key + ".part-") \
                        or other == PREFIX + key + ".build":
                    trash = os.path.join(root, f".{other}.trash-{os.getpid()}")
                    try:
                        os.rename(os.path.join(root, other), trash)
                    except OSError:
                        continue
                    shutil.rmtree(trash, ignore_errors=True)
            os.unlink(lock)
            removed.append(key)
        finally:
            os.close(fd)
    return removed


def _alive(pid: str) -> bool:
    try:
        os.kill(int(pid), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        pass
    return True
