"""What a sandbox may use: resource ``Limits``, the ``IsolationPolicy``, and the allowlist of files
(computed here, in the grader, from the Python installation it runs on).

The allowlist is what the child's Python needs and nothing else:

* the interpreter (and its symlink chain), its ELF loader, ``libpython``;
* the standard library and the site-packages folders on the child's ``sys.path`` (a virtualenv
  by its own ``pyvenv.cfg``, ``lib`` and ``bin/python``, never the folder around it), with any
  installed copy of the grader (``autograder``, its ``*.dist-info``, editable-install finders)
  and any ``solutions`` package covered, and site-packages folders the child does not use
  (the base installation's, under a virtualenv) covered entirely;
* the system library folders the loaded extension modules come from (``/usr/lib/<triplet>``);
* the guest runtime: ``/sandbox/autograder`` = the guest package (``guest/``) and this folder
  (the sandbox runtime), ``/sandbox/boot.py``;
* ``IsolationPolicy.extra_readonly``.

No ``/etc``, ``/home``, ``/srv``, ``/var``, ``/run``, ``/sys``, no course checkout: with an
allowlist there is nothing to hide by name.
"""

from __future__ import annotations

import os
import site
import stat
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

SANDBOX_DIR = Path(__file__).resolve().parent
GUEST_DIR = SANDBOX_DIR / "guest"
GUEST_ROOT = "/sandbox"
GRADER_PACKAGES = ("autograder", "solutions")   # never visible inside an installation
_SYSTEM_LIB_ROOTS = ("/lib", "/lib32", "/lib64", "/libx32", "/usr/lib", "/usr/lib32", "/usr/lib64",
                     "/usr/libx32", "/usr/local/lib")
_NOT_LIBRARIES = ("/locale", "/gconv")


@dataclass(frozen=True)
class Limits:
    """Resource limits for one submission's sandbox."""

    call_seconds: float = 20.0       # wall clock for one call (checks may ask for less or more)
    load_seconds: float = 30.0       # wall clock for loading the definitions
    total_seconds: float = 300.0     # wall clock for all calls of one submission together
    memory_mb: int = 2048            # address space of each call process
    sandbox_memory_mb: int = 0       # all of a sandbox's processes and what they hold together (a memory
                                     # cgroup, where one is usable); 0: memory_mb + 512
    file_mb: int = 16                # largest file the child may write
    max_restarts: int = 20           # fresh sandboxes per submission before giving up
    max_call_seconds: float = 0.0    # when > 0: a cap on every call, whatever a check asks for

    def sandbox_mb(self) -> int:
        """The memory cap of the whole sandbox, in MB."""
        return self.sandbox_memory_mb or self.memory_mb + 512


@dataclass(frozen=True)
class IsolationPolicy:
    """How the sandbox is isolated from the host (defaults: everything that works here).

    ``namespaces=False``, or ``AUTOGRADER_SANDBOX=plain`` in the environment, is the fallback
    (no allowlist filesystem, no network isolation...: see README "Student code is isolated").
    ``extra_readonly``: more folders or files visible read-only, at the same path (a caller
    that really needs one; nothing of a course checkout belongs here).
    """

    namespaces: bool = True
    tmp_mb: int = 64                 # the private /tmp of each call
    processes: int = 64              # tasks in the sandbox (pids cgroup, or RLIMIT_NPROC)
    extra_readonly: tuple = ()
    seccomp: bool = True             # the system-call filter of every call process
    memory_copy: bool = True         # the allowlist served from a tmpfs copy (``resident``)

    def wants_namespaces(self) -> bool:
        return self.namespaces and os.environ.get("AUTOGRADER_SANDBOX", "isolated") != "plain"


# ------------------------------------------------------------------------------------ the allowlist
_cache: dict = {}


def layout(policy: IsolationPolicy) -> dict:
    """The allowlist (see ``filesystem``), computed once per grader process and policy."""
    from .resident import shm_root
    copy = policy.memory_copy and policy.wants_namespaces() and sys.platform.startswith("linux")
    key = (tuple(policy.extra_readonly), copy, shm_root() if copy else None)
    if key not in _cache:
        _cache[key] = _compute(policy, copy)
    return dict(_cache[key], tmp_mb=policy.tmp_mb)


def child_sys_path() -> list[str]:
    """The grader's ``sys.path`` entries that belong to its Python installation (the child gets
    these after ``/sandbox``): never the working folder, a checkout or a ``PYTHONPATH`` entry."""
    roots = _installation_roots()
    entries = []
    for entry in sys.path:
        if not entry or not os.path.isabs(entry) or not os.path.isdir(entry):
            continue
        real = os.path.realpath(entry)
        if any(_is_under(real, r) for r in roots) and not _looks_like_a_course(real) and entry not in entries:
            entries.append(entry)
    return entries


def _installation_roots() -> list[str]:
    roots = {os.path.realpath(p) for p in (sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib"),
                                           sysconfig.get_path("purelib"), sysconfig.get_path("platlib")) if p}
    roots.update(os.path.realpath(p) for p in _site_dirs())
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        roots.add(os.path.realpath(os.path.join(prefix, "lib")))
    return sorted(roots)


def _site_dirs() -> list[str]:
    try:
        dirs = list(site.getsitepackages())
    except AttributeError:  # pragma: no cover - old virtualenvs
        dirs = []
    return [d for d in dirs if os.path.isdir(d)]


def _looks_like_a_course(path: str) -> bool:
    return any(os.path.exists(os.path.join(path, name)) for name in ("nbgrader_config.py", ".git"))


def _compute(policy: IsolationPolicy, copy: bool) -> dict:
    links: dict[str, str] = {}
    binds: dict[str, str] = {}

    def expose(path: str) -> None:
        if not path or not os.path.lexists(path):
            return
        real = mirror(path, links)
        if os.path.exists(real):
            binds[real] = "dir" if os.path.isdir(real) else "file"

    executable = sys.executable
    expose(executable)
    interpreter = elf_interpreter(os.path.realpath(executable))
    if interpreter:
        expose(interpreter)
    if sys.prefix != sys.base_prefix:   # a virtualenv: its own files, not the folder around it
        for name in ("pyvenv.cfg", "lib", "lib64"):
            expose(os.path.join(sys.prefix, name))
    sys_path = child_sys_path()
    for entry in sys_path:
        expose(entry)
    for folder in mapped_library_dirs():
        expose(folder)
    for extra in policy.extra_readonly:
        expose(os.path.abspath(str(extra)))
    outer = _outermost(binds)
    view = {
        "binds": [[p, binds[p]] for p in outer],
        "symlinks": sorted([p, t] for p, t in links.items() if not any(_is_under(p, b) and p != b for b in outer
                                                                       if binds[b] == "dir")),
        "hide": hidden_entries([p for p in outer if binds[p] == "dir"], sys_path),
        "runtime": runtime_entries(),
        "runtime_files": {g: Path(h).read_text() for g, h, k in runtime_entries() if k == "file"},
        "devices": list(_devices()),
        "device_numbers": {d: os.stat(d).st_rdev for d in _devices()},
        "sys_path": sys_path,
        "sources": {},
        "resident": "not used without namespaces" if policy.memory_copy else "turned off",
    }
    if copy:
        _serve_from_memory(view, interpreter, {os.path.realpath(os.path.abspath(str(e))) for e in policy.extra_readonly})
    return view


def _serve_from_memory(view: dict, interpreter: str | None, extras: set) -> None:
    """Point the binds (and the runtime folder) at a pruned copy in a tmpfs (``resident``,
    ``pruning``; ``extras``, the policy's own folders, are copied whole); ``view["resident"]`` is
    None when that worked, else why not."""
    from . import pruning, resident
    hidden = {os.path.realpath(p) for p, _ in view["hide"]}
    sites = [e for e in view["sys_path"] if os.path.basename(e) in ("site-packages", "dist-packages")]
    system = [p for p, k in view["binds"] if k == "dir" and any(_is_under(p, r) for r in _SYSTEM_LIB_ROOTS)
              and not any(_is_under(p, r) for r in _installation_roots())]
    mark = resident.fingerprint([(p, 0 if p in system else 2) for p, _ in view["binds"]]
                                + [(os.path.realpath(s), 1) for s in sites] + [(str(SANDBOX_DIR), -1)],
                                extra=repr((sorted(hidden), interpreter, sorted(extras),
                                            pruning.STUDENT_DISTRIBUTIONS)))
    known = resident.recall(mark) if os.path.isdir(resident.shm_root()) else None
    if known is not None and set(known) == {p for p, _ in view["binds"]} | {str(SANDBOX_DIR)}:
        _use_copies(view, known, None)
        return
    keep = pruning.python_keeper(sites, pruning.student_top_levels(sites), hidden, sysconfig.get_path("stdlib"))
    whole = lambda path, is_dir: path not in hidden  # noqa: E731
    entries = [resident.select(p, whole if p in extras else keep) for p, _ in view["binds"] if p not in system]
    entries.append(resident.select(str(SANDBOX_DIR), lambda path, is_dir: True))
    elves = [os.path.join(e.path, rel) if rel else e.path for e in entries for rel, st in e.files.items()
             if stat.S_ISREG(st.st_mode) and (pruning.is_shared_object(os.path.basename(rel or e.path))
                                              or not rel)]
    closure = pruning.library_closure(elves, system, [os.path.realpath(interpreter)] if interpreter else [])
    entries += [resident.select(p, lambda path, is_dir, c=closure: path in c) for p in system]
    sources, reason = resident.serve(entries)
    if reason is None:
        resident.remember(mark, sources)
    _use_copies(view, sources, reason)


def _use_copies(view: dict, sources: dict, reason: str | None) -> None:
    view["resident"] = reason
    if reason is None:
        view["sources"] = sources
        view["hide"] = []   # (the copies hold nothing of what is hidden)
        view["runtime"] = [[g, sources[h] if k == "dir" else h, k] for g, h, k in view["runtime"]]


def _devices():
    from .filesystem import DEVICES
    return [d for d in DEVICES if os.path.exists(d)]


def runtime_entries() -> list[list[str]]:
    """[guest path, host path, kind]: the guest package and the sandbox runtime under /sandbox."""
    return [[f"{GUEST_ROOT}/boot.py", str(GUEST_DIR / "boot.py"), "file"],
            [f"{GUEST_ROOT}/autograder/__init__.py", str(GUEST_DIR / "package.py"), "file"],
            [f"{GUEST_ROOT}/autograder/interactive.py", str(GUEST_DIR / "interactive.py"), "file"],
            [f"{GUEST_ROOT}/autograder/datasets.py", str(GUEST_DIR / "datasets.py"), "file"],
            [f"{GUEST_ROOT}/autograder/sandbox", str(SANDBOX_DIR), "dir"]]


def mirror(path: str, links: dict, depth: int = 0) -> str:
    """The path with every symlink along it resolved; the symlinks met are added to ``links``
    (the new root recreates them, so the same path works inside)."""
    if depth > 40:
        return os.path.realpath(path)
    parts = [p for p in os.path.abspath(path).split("/") if p]
    current = ""
    for i, part in enumerate(parts):
        step = current + "/" + part
        if os.path.islink(step):
            target = os.readlink(step)
            links[step] = target
            resolved = os.path.normpath(target if os.path.isabs(target) else os.path.join(current or "/", target))
            rest = "/".join(parts[i + 1:])
            return mirror(resolved + ("/" + rest if rest else ""), links, depth + 1)
        current = step
    return current or "/"


def elf_interpreter(executable: str) -> str | None:
    """The dynamic loader an ELF executable names (PT_INTERP), e.g. /lib64/ld-linux-x86-64.so.2."""
    import struct
    try:
        with open(executable, "rb") as f:
            head = f.read(64)
            if head[:4] != b"\x7fELF" or head[4] != 2:   # 64-bit only
                return None
            endian = "<" if head[5] == 1 else ">"
            phoff, = struct.unpack_from(endian + "Q", head, 32)
            phentsize, phnum = struct.unpack_from(endian + "HH", head, 54)
            for i in range(phnum):
                f.seek(phoff + i * phentsize)
                p_type, _, p_offset, _, _, p_filesz = struct.unpack(endian + "IIQQQQ", f.read(40))
                if p_type == 3:   # PT_INTERP
                    f.seek(p_offset)
                    return f.read(p_filesz).rstrip(b"\0").decode()
    except (OSError, struct.error, UnicodeDecodeError):
        return None
    return None


def mapped_library_dirs() -> list[str]:
    """Folders of the shared libraries this process has loaded that lie in the system's library
    folders or in the Python installation (libpython, a conda prefix's lib/)."""
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    found = set()
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                fields = line.split(maxsplit=5)
                if len(fields) < 6 or not fields[5].startswith("/"):
                    continue
                path = fields[5].strip()
                name = os.path.basename(path)
                if ".so" not in name:
                    continue
                folder = os.path.dirname(os.path.realpath(path))
                if any(bad in folder for bad in _NOT_LIBRARIES):
                    continue
                if any(_is_under(folder, r) for r in _SYSTEM_LIB_ROOTS) or any(_is_under(folder, p) for p in prefixes):
                    found.add(folder)
    except OSError:
        pass
    return sorted(found)


def hidden_entries(dirs: list[str], sys_path: list[str]) -> list[list[str]]:
    """What must stay invisible inside the bound folders: copies of the grader and of the
    reference solutions in site-packages, and site-packages folders the child does not use."""
    used = {os.path.realpath(p) for p in sys_path}
    hide: list[list[str]] = []
    for top in dirs:
        for folder in _site_folders(top):
            real = os.path.realpath(folder)
            if real not in used:
                hide.append([real, "dir"])
    for entry in sorted(used):
        hide.extend(_grader_copies(entry))
    return sorted({tuple(h): h for h in hide}.values())


def _site_folders(top: str, depth: int = 3) -> list[str]:
    found = []
    try:
        entries = list(os.scandir(top))
    except OSError:
        return found
    for entry in entries:
        if not entry.is_dir(follow_symlinks=False):
            continue
        if entry.name in ("site-packages", "dist-packages"):
            found.append(entry.path)
        elif depth > 1 and (entry.name.startswith("python") or entry.name in ("lib", "lib64", "local")):
            found.extend(_site_folders(entry.path, depth - 1))
    return found


def _grader_copies(folder: str) -> list[list[str]]:
    out = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return out
    for entry in entries:
        name = entry.name
        stem = name[:-3] if name.endswith(".py") else name
        kind = "dir" if entry.is_dir(follow_symlinks=False) else "file"
        if stem in GRADER_PACKAGES or name.startswith("__editable__") or name.endswith(".egg-link"):
            out.append([entry.path, kind])
        elif kind == "dir" and name.endswith((".dist-info", ".egg-info")) and _provides_grader(entry.path):
            out.append([entry.path, "dir"])
        elif kind == "dir" and name == "__pycache__":
            try:
                out.extend([p.path, "file"] for p in os.scandir(entry.path) if p.name.startswith("__editable__")
                           or p.name.split(".")[0] in GRADER_PACKAGES)
            except OSError:
                pass
    return out


def _provides_grader(info: str) -> bool:
    for name in ("top_level.txt", "RECORD"):
        try:
            text = Path(info, name).read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            first = line.split(",")[0].strip().split("/")[0]
            if first.split(".")[0] in GRADER_PACKAGES:
                return True
    return False


def _outermost(binds: dict) -> list[str]:
    result: list[str] = []
    for p in sorted(binds, key=lambda q: (q.count("/"), q)):
        if not any(binds[r] == "dir" and _is_under(p, r) for r in result):
            result.append(p)
    return sorted(result)


def _is_under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")
