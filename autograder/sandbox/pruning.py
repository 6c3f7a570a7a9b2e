"""What of the allowlisted folders a call gets when they are served from memory (``resident``):
what a submission can need, nothing else.

* In the site-packages folders on the child's path: the distributions a student's code may use
  (``STUDENT_DISTRIBUTIONS``, the project's student dependencies, and what they require), with
  their ``.dist-info``; not the instructor's and the test suite's tools (nbgrader, Jupyter,
  scikit-learn, selenium, dask...), which compute answers or are of no use to a submission.
* Nowhere: test suites (folders named ``tests`` or ``test``, the standard library's ``test``
  package included), type stubs (``.pyi``), static libraries (``.a``), optimised bytecode
  (``.opt-1.pyc``, ``.opt-2.pyc``: the child runs without ``-O``), the standard library's IDLE,
  turtle demos and ``ensurepip``. Plain ``.pyc`` files are kept: without them every call would
  compile what it imports (the allowlist is read-only, nothing is ever written back).
* In the system library folders: the shared libraries the kept extension modules, the
  interpreter and ``libpython`` need (their ``DT_NEEDED``, transitively), the ELF loader, and
  ``libgcc_s`` (glibc loads it for thread cancellation and unwinding).
"""

from __future__ import annotations

import os
import re
import struct

STUDENT_DISTRIBUTIONS = ("numpy", "scipy", "matplotlib", "threadpoolctl", "autograd", "tqdm", "ipywidgets")
PRUNED_FOLDERS = ("tests", "test")
PRUNED_STDLIB = ("idlelib", "turtledemo", "ensurepip")
PRUNED_SUFFIXES = (".pyi", ".a", ".opt-1.pyc", ".opt-2.pyc")
ALWAYS_LIBRARIES = ("libgcc_s.so.1",)


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def student_top_levels(site_dirs: list[str]) -> set[str]:
    """Top-level names (packages, modules, ``.libs`` folders, ``.dist-info``) in ``site_dirs`` of
    the student distributions and of everything they require (markers evaluated here). Read from
    each ``.dist-info``'s METADATA and RECORD (``importlib.metadata`` takes seconds for this)."""
    try:
        from packaging.markers import Marker
    except ImportError:   # pragma: no cover - without packaging every marked requirement is kept
        Marker = None
    infos: dict = {}
    for folder in site_dirs:
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info"):
                infos.setdefault(_normal(name[:-len(".dist-info")].split("-")[0]), os.path.join(folder, name))
    seen: dict = {}
    todo = list(STUDENT_DISTRIBUTIONS)
    while todo:
        name = _normal(todo.pop())
        if name in seen or name not in infos:
            continue
        seen[name] = infos[name]
        for requirement in _requires(infos[name]):
            head, _, marker = requirement.partition(";")
            if marker and ("extra" in marker or (Marker is not None and not _holds(Marker, marker))):
                continue
            todo.append(re.split(r"[\s<>=!~;\[(,]", head.strip(), maxsplit=1)[0])
    tops: set[str] = set()
    for info in seen.values():
        tops.add(os.path.basename(info))
        try:
            with open(os.path.join(info, "RECORD"), encoding="utf-8", errors="replace") as f:
                for line in f:
                    first = line.split(",", 1)[0].split("/", 1)[0].strip('"')
                    if first and first != "..":
                        tops.add(first)
        except OSError:
            continue
    return tops


def _requires(info: str) -> list[str]:
    out = []
    try:
        with open(os.path.join(info, "METADATA"), encoding="utf-8", errors="replace") as f:
            for line in f:
                if line in ("\n", "\r\n"):
                    break   # (the headers end at the first empty line; a blank continuation line is indented)
                if line.startswith("Requires-Dist:"):
                    out.append(line[len("Requires-Dist:"):].strip())
    except OSError:
        pass
    return out


def _holds(Marker, text: str) -> bool:
    try:
        return bool(Marker(text).evaluate())
    except Exception:  # noqa: BLE001 - an unreadable marker: keep the requirement
        return True


def python_keeper(site_dirs: list[str], tops: set[str], hidden: set[str], stdlib: str | None):
    """``keep(path, is_dir)`` for the folders of the Python installation."""
    # (the paths walked are real paths already: the binds are, and no symlink is followed)
    sites = {os.path.realpath(d) for d in site_dirs}
    caches = {os.path.join(d, "__pycache__") for d in sites}
    modules = {t[:-3] if t.endswith(".py") else t for t in tops}
    stdlib = os.path.realpath(stdlib) if stdlib else None

    def keep(path: str, is_dir: bool) -> bool:
        if path in hidden:
            return False
        parent, name = os.path.split(path)
        if parent in sites:
            return name in tops or name == "__pycache__"
        if parent in caches:
            return name.split(".")[0] in modules
        if is_dir:
            return name not in PRUNED_FOLDERS and not (parent == stdlib and name in PRUNED_STDLIB)
        return not name.endswith(PRUNED_SUFFIXES)

    return keep


def is_shared_object(name: str) -> bool:
    return name.endswith(".so") or ".so." in name


def elf_needed(path: str) -> list[str]:
    """The ``DT_NEEDED`` names of a 64-bit ELF file (empty when it is none)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2:
                return []
            e = "<" if head[5] == 1 else ">"
            shoff, = struct.unpack_from(e + "Q", head, 40)
            shentsize, shnum = struct.unpack_from(e + "HH", head, 58)
            if not shoff or shentsize < 64 or shnum > 4096:
                return []
            f.seek(shoff)
            table = f.read(shentsize * shnum)
            sections = [struct.unpack_from(e + "IIQQQQIIQQ", table, i * shentsize) for i in range(shnum)]
            out = []
            for _name, kind, _flags, _addr, offset, size, link, _info, _align, entsize in sections:
                if kind != 6 or link >= len(sections) or not entsize:   # SHT_DYNAMIC
                    continue
                f.seek(offset)
                dynamic = f.read(size)
                strtab = sections[link]
                f.seek(strtab[4])
                strings = f.read(strtab[5])
                for i in range(0, len(dynamic) - 15, 16):
                    tag, value = struct.unpack_from(e + "qQ", dynamic, i)
                    if tag == 0:
                        break
                    if tag == 1 and value < len(strings):   # DT_NEEDED
                        out.append(strings[value:strings.index(b"\0", value)].decode(errors="replace"))
            return out
    except (OSError, struct.error, ValueError):
        return []


def library_closure(elf_files: list[str], library_dirs: list[str], extra: list[str] = ()) -> set[str]:
    """The files of ``library_dirs`` (symlinks and their targets) that ``elf_files`` need,
    transitively, plus ``extra`` (paths) and ``ALWAYS_LIBRARIES``."""
    found: set[str] = set()
    todo = list(elf_files)
    scanned: set[str] = set()

    def add(path: str) -> None:
        while os.path.islink(path) and path not in found:
            found.add(path)
            path = os.path.join(os.path.dirname(path), os.readlink(path))
        path = os.path.normpath(path)
        if os.path.isfile(path) and path not in found:
            found.add(path)
            todo.append(path)

    for path in list(extra):
        add(path)
    for name in ALWAYS_LIBRARIES:
        for folder in library_dirs:
            if os.path.lexists(os.path.join(folder, name)):
                add(os.path.join(folder, name))
                break
    while todo:
        path = todo.pop()
        if path in scanned:
            continue
        scanned.add(path)
        for name in elf_needed(path):
            for folder in library_dirs:
                candidate = os.path.join(folder, name)
                if os.path.lexists(candidate):
                    add(candidate)
                    break
    return found
