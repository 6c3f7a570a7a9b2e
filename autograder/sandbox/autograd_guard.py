"""Autograd as it was before the student's code ran, and the derivative the grader asks for.

``Sandbox.call(differentiate=i)`` asks whether autograd differentiates a student's function; the
answer is computed in the call process, after the submission's statements loaded there, so the
student's code could have changed autograd first (a class body that makes ``grad`` a finite
difference, a VJP registry entry replaced, an ``autograd.numpy`` wrapper rebound, ``sys.modules``
pointing at a fake). So:

* **Snapshot** (``take``, in the zygote, which never runs student code, before any call process
  is forked): every object of autograd's modules and what it is made of (module and class
  dictionaries, functions' code, defaults and closure cells, the registries' entries), the
  callables of numpy's modules (autograd's wrappers and VJPs call them) with their code, the
  builtins, ``sys.modules``' entries for those modules and the import machinery. The snapshot
  holds the objects themselves, so an identity can never be reused by a replacement.
* **Comparison** (``changes``): after the submission loads and after every call the call process
  reports what differs (``tampered``); a derivative is computed only when nothing differs, before
  and after it, with the machinery captured in the snapshot (``derivative``), no other thread, no
  trace or profile hook and no signal handler able to run in between.
* What autograd's public API adds stays allowed: a new primitive (``autograd.extend.primitive``)
  and its VJP/JVP (``defvjp``/``defjvp``), a new box or vector-space type. What it changes of
  autograd's own objects is tampering: a new VJP for one of autograd's primitives, a primitive of
  autograd's marked untraced.

This is a bar, not a wall: the student's code runs in the same process with the same rights, so
code aimed at this module itself (found through ``sys.modules`` or ``gc``), changes undone before
the comparison by code the student runs during the derivative (their own primitives' VJPs,
finalizers), or ``ctypes`` writing memory are not seen (see tests/corpora/hostile_open/README.md).

Part of the sandbox runtime: imports only the standard library and, when the submission uses it,
numpy and autograd.
"""

from __future__ import annotations

import builtins
import functools
import importlib.util
import signal
import sys
import threading
import types
from itertools import repeat as itertools_repeat

_MISSING = object()
_MAX_REPORTED = 8
# Containers of autograd that its public API fills: they may gain entries (see ``_fresh``).
_GROWING = (("autograd.core", "primitive_vjps"), ("autograd.core", "primitive_jvps"),
            ("autograd.tracer", "notrace_primitives"), ("autograd.tracer", "trace_primitives_map"),
            ("autograd.tracer", "Box.type_mappings"), ("autograd.tracer", "Box.types"),
            ("autograd.core", "VSpace.mappings"))
# Autograd's modules the course's code uses, imported before the snapshot whatever the submission
# imports at its top level (``autograd.scipy.special`` needs scipy: only when the submission names it).
_CORE = ("autograd", "autograd.numpy", "autograd.extend", "autograd.core", "autograd.tracer",
         "autograd.builtins", "autograd.differential_operators", "autograd.wrap_util", "autograd.util")

_snapshot: "_Snapshot | None" = None
_imports: tuple = ()   # the import machinery in the zygote (also without a snapshot)


class _Snapshot:
    """What autograd was (``facts``), the modules concerned, and the machinery the derivative uses."""

    def __init__(self) -> None:
        self.facts: list = []          # (label, kind, holder, key, expected, growing)
        self.owned: dict = {}          # id -> object: everything the facts name (kept alive)
        self.modules: dict = {}        # name -> module
        self.machinery: dict = {}      # what ``derivative`` calls, captured here
        self.seen: set = set()
        self.growing: set = set()      # ids of the containers of _GROWING
        self.fast: tuple | None = None


# ----------------------------------------------------------------------------------- snapshot
def wanted(statements) -> bool:
    """Whether the submission's kept statements mention autograd (then it is snapshotted)."""
    return any("autograd" in source for _cell, _line, source in statements)


def take(statements, force: bool = False) -> None:
    """Import autograd's core (when the submission mentions it) and snapshot it. In the zygote."""
    global _snapshot, _imports
    _imports = _import_machinery()
    if not (force or wanted(statements)) or importlib.util.find_spec("autograd") is None:
        return
    try:
        for name in _CORE:
            __import__(name)
    except Exception:  # noqa: BLE001 - a broken autograd is the calls' to report
        return
    import autograd.core
    import autograd.tracer
    for node in (autograd.core.VJPNode, autograd.core.JVPNode):   # (the lookup every trace makes first:
        autograd.tracer.notrace_primitives[node]                  # so that it is no change in a call)
    snap = _Snapshot()
    autograd_modules = {name: module for name, module in sorted(sys.modules.items())
                        if isinstance(module, types.ModuleType) and name.split(".")[0] == "autograd"}
    # numpy's modules that autograd's wrappers and VJPs reach (numpy, numpy.linalg, numpy.fft, ...)
    numpy_modules = {value.__name__: value for module in autograd_modules.values() for value in vars(module).values()
                     if isinstance(value, types.ModuleType) and value.__name__.split(".")[0] == "numpy"}
    for name, module in {**autograd_modules, **dict(sorted(numpy_modules.items()))}.items():
        snap.modules[name] = module
        _fact(snap, f"sys.modules[{name!r}]", "item", sys.modules, name, module)
    for module_name, path in _GROWING:
        value = sys.modules.get(module_name)
        for part in path.split("."):
            value = getattr(value, part, None)
        if value is not None:
            snap.growing.add(id(value))
    for name, module in snap.modules.items():
        _module(snap, name, module, everything=name.split(".")[0] == "autograd")
    _module(snap, "builtins", builtins, everything=False)
    for label, holder in (("sys.meta_path", sys.meta_path), ("sys.path_hooks", sys.path_hooks)):
        _container(snap, label, holder, growing=False)
    _fact(snap, "builtins.__import__", "item", vars(builtins), "__import__", builtins.__import__)
    import autograd.differential_operators
    snap.machinery = {"elementwise_grad": autograd.differential_operators.elementwise_grad}
    snap.seen = set()
    snap.fast = _compile(snap)   # (here, once: every call process inherits it)
    _snapshot = snap


def _fact(snap: _Snapshot, label: str, kind: str, holder, key, expected, growing: bool = False) -> None:
    snap.facts.append((label, kind, holder, key, expected, growing))
    snap.owned[id(expected)] = expected


def _module(snap: _Snapshot, name: str, module, everything: bool) -> None:
    """Facts about a module's dictionary: every entry (autograd) or its callables (numpy, builtins)."""
    namespace = vars(module)
    for key, value in list(namespace.items()):
        if key in ("__builtins__", "__loader__", "__spec__", "__cached__", "__file__", "__doc__"):
            continue
        if not everything and not callable(value):
            continue
        if isinstance(value, types.ModuleType):
            _fact(snap, f"{name}.{key}", "item", namespace, key, value)
            continue
        _fact(snap, f"{name}.{key}", "item", namespace, key, value)
        _inside(snap, f"{name}.{key}", value, deep=everything)


def _inside(snap: _Snapshot, label: str, value, deep: bool, depth: int = 0) -> None:
    """Facts about what ``value`` is made of (its code, closure, defaults, a class's members, a
    container's entries). ``deep``: autograd's own objects, followed further."""
    if id(value) in snap.seen or depth > 6:
        return
    snap.seen.add(id(value))
    snap.owned[id(value)] = value
    if isinstance(value, types.FunctionType):
        _function(snap, label, value, deep, depth)
    elif not deep:
        for attribute in ("__wrapped__", "_implementation", "__func__"):
            inner = getattr(value, attribute, None)
            if isinstance(inner, types.FunctionType):
                _function(snap, f"{label}.{attribute}", inner, False, depth)
    elif isinstance(value, type):
        if value.__module__.split(".")[0] != "autograd":
            return
        members = vars(value)
        snap.facts.append((f"{label} (its members)", "keys", value, None, set(members), False))
        for key, member in list(members.items()):
            if key in ("__dict__", "__weakref__", "__doc__", "__module__"):
                continue
            _fact(snap, f"{label}.{key}", "member", value, key, member)
            _inside(snap, f"{label}.{key}", member, True, depth + 1)
    elif isinstance(value, (dict, set, list)):
        _container(snap, label, value, id(value) in snap.growing)
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for key, item in list(items):
            _inside(snap, f"{label}[{key!r}]"[:200], item, True, depth + 1)
    elif isinstance(value, (staticmethod, classmethod)):
        _inside(snap, label, value.__func__, True, depth + 1)
    elif isinstance(value, property):
        for part in (value.fget, value.fset, value.fdel):
            if part is not None:
                _inside(snap, label, part, True, depth + 1)
    elif isinstance(value, functools.partial):
        _inside(snap, label, value.func, True, depth + 1)
        _inside(snap, label, value.args, True, depth + 1)
    elif isinstance(value, tuple):
        for i, item in enumerate(value):
            _inside(snap, f"{label}[{i}]", item, True, depth + 1)
    elif type(value).__module__.split(".")[0] == "autograd" and hasattr(value, "__dict__"):
        for key, item in list(vars(value).items()):   # (instances; not counters: trace_stack.top stays
            if type(item) is not int:                   # raised after an exception inside a trace)
                _fact(snap, f"{label}.{key}", "item", vars(value), key, item)


def _function(snap: _Snapshot, label: str, func, deep: bool, depth: int) -> None:
    for attribute in ("__code__", "__defaults__", "__kwdefaults__"):
        _fact(snap, f"{label}.{attribute}", "attr", func, attribute, getattr(func, attribute))
        if deep and attribute != "__code__":
            _inside(snap, f"{label}.{attribute}", getattr(func, attribute), True, depth + 1)
    for key, item in list(vars(func).items()):
        _fact(snap, f"{label}.{key}", "item", vars(func), key, item)
        if deep:
            _inside(snap, f"{label}.{key}", item, True, depth + 1)
    for i, cell in enumerate(func.__closure__ or ()):
        try:
            content = cell.cell_contents
        except ValueError:
            content = _MISSING
        _fact(snap, f"{label} (closure {func.__code__.co_freevars[i]})", "cell", cell, None, content)
        if deep and content is not _MISSING:
            _inside(snap, f"{label} (closure {func.__code__.co_freevars[i]})", content, True, depth + 1)


def _container(snap: _Snapshot, label: str, value, growing: bool) -> None:
    snap.facts.append((label, "contents", value, type(value), _copy(value), growing))
    snap.owned[id(value)] = value


def _copy(value):
    return dict(value) if isinstance(value, dict) else set(value) if isinstance(value, set) else list(value)


def _import_machinery() -> tuple:
    return tuple(sys.meta_path), tuple(sys.path_hooks), builtins.__import__


def _signals():
    return [s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP)]


# ----------------------------------------------------------------------------------- comparison
def active() -> bool:
    """Whether autograd was snapshotted before the student's code ran."""
    return _snapshot is not None


def changes() -> list[str]:
    """What of the snapshot differs now (at most a few items; empty when nothing does, or when
    there is no snapshot and autograd was never imported). 1-2 ms when nothing does."""
    snap = _snapshot
    if snap is None:
        return ["autograd was imported in a way the grader does not follow"] if "autograd" in sys.modules else []
    if snap.fast is None:
        snap.fast = _compile(snap)
    if _unchanged(snap.fast):
        return []
    found = []
    for label, kind, holder, key, expected, growing in snap.facts:
        if kind == "item":
            current = holder.get(key, _MISSING)
        elif kind == "member":
            current = vars(holder).get(key, _MISSING)
        elif kind == "attr":
            current = getattr(holder, key, _MISSING)
        elif kind == "cell":
            current = _contents(holder)
        elif kind == "keys":
            added = set(vars(holder)) - expected
            if added:
                found.append(f"{label}: {', '.join(sorted(added))[:100]} added")
            continue
        else:
            problem = _compare(snap, holder, expected, growing)
            if problem:
                found.append(f"{label}: {problem}")
            continue
        if current is not expected:
            found.append(f"{label} was {'removed' if current is _MISSING else 'replaced'}")
        if len(found) >= _MAX_REPORTED:
            break
    if not found:   # only what autograd's public API may add was added: the new normal
        snap.facts = [fact if fact[1] != "contents" or not fact[5] else fact[:4] + (_copy(fact[2]), True)
                      for fact in snap.facts]
        snap.fast = None
    return found[:_MAX_REPORTED]


def _contents(cell):
    try:
        return cell.cell_contents
    except ValueError:
        return _MISSING


def _compile(snap: _Snapshot) -> tuple:
    """The facts as a few long sequences, compared with C-level loops (``_unchanged``)."""
    lookups, attributes, cells, containers, classes = ([], []), {}, ([], []), [], ([], [])
    for _label, kind, holder, key, expected, growing in snap.facts:
        if kind == "keys":
            classes[0].append(holder)
            classes[1].append(len(expected))
        elif kind in ("item", "member"):
            lookups[0].append((vars(holder) if kind == "member" else holder, key))
            lookups[1].append(expected)
        elif kind == "attr":
            attributes.setdefault(key, ([], []))
            attributes[key][0].append(holder)
            attributes[key][1].append(expected)
        elif kind == "cell":
            cells[0].append(holder)
            cells[1].append(expected)
        else:
            containers.append((holder, expected, growing))
    return lookups, attributes, cells, containers, classes


def _unchanged(fast: tuple) -> bool:
    import operator
    lookups, attributes, cells, containers, classes = fast
    same = operator.is_
    if not all(map(operator.eq, map(len, map(vars, classes[0])), classes[1])):
        return False
    if not all(map(same, (holder.get(key, _MISSING) for holder, key in lookups[0]), lookups[1])):
        return False
    for name, (holders, expected) in attributes.items():
        if not all(map(same, map(operator.attrgetter(name), holders), expected)):
            return False
    if not all(map(same, map(_contents, cells[0]), cells[1])):
        return False
    for current, expected, _growing in containers:
        if len(current) != len(expected):
            return False
        if isinstance(expected, list):
            if not all(map(same, current, expected)):
                return False
        elif isinstance(expected, set):
            if not expected <= current:
                return False
        elif not all(map(same, map(current.get, expected, itertools_repeat(_MISSING)), expected.values())):
            return False
    return True


def _compare(snap: _Snapshot, current, expected, growing: bool) -> str:
    if isinstance(expected, list):
        if len(current) != len(expected) or any(a is not b for a, b in zip(current, expected)):
            return "its entries changed"
        return ""
    if isinstance(expected, set):
        if not expected <= current:
            return "an entry was removed"
        extra = current - expected
        if extra and (not growing or any(id(e) in snap.owned for e in extra)):
            return "an entry was added"
        return ""
    for key, value in expected.items():
        now = current.get(key, _MISSING)
        if now is value:
            continue
        if now is _MISSING:
            return f"the entry for {_name(key)} was removed"
        if not (growing and _fresh(snap, key, now, replacing=True)):
            return f"the entry for {_name(key)} was replaced"
    if len(current) != len(expected):
        for key in current.keys() - expected.keys():
            if not (growing and _fresh(snap, key, current[key], replacing=False)):
                return f"an entry for {_name(key)} was added"
    return ""


def _fresh(snap: _Snapshot, key, value, replacing: bool) -> bool:
    """An entry autograd's public API may add: for the student's own primitive or type (not one of
    autograd's objects), or an empty one (a defaultdict's lookup). Replacing an existing entry is
    allowed only with the student's own primitive (``trace_primitives_map``: ``primitive(np.exp)``)."""
    if isinstance(value, (set, dict, list)) and not value:
        return not replacing
    if replacing:
        return callable(value) and id(value) not in snap.owned and getattr(value, "_is_autograd_primitive", False)
    return id(key) not in snap.owned


def _name(key) -> str:
    name = getattr(key, "__name__", None)
    return name if isinstance(name, str) else type(key).__name__


# ----------------------------------------------------------------------------------- derivative
class Tampered(Exception):
    """The student's code changed autograd: its derivative in this process is not autograd's."""


def derivative(func, argnum: int):
    """``elementwise_grad(func, argnum)`` with the machinery snapshotted before the student's code
    ran, refused (``Tampered``) when anything of the snapshot differs before or after it, when
    another thread or a trace or profile hook could run meanwhile. Signals are blocked while it runs
    (a student's handler cannot interleave) and the collector is off (no finalizer runs from it)."""
    if _snapshot is None:
        # The submission never names autograd: it is imported now, from the disk, unless the
        # student's code got it some other way or changed how modules are imported.
        if "autograd" in sys.modules or _import_machinery() != _imports:
            raise Tampered("autograd was imported, or the import machinery changed, in a way the grader "
                           "does not follow")
        take((), force=True)
        if _snapshot is None:
            raise ModuleNotFoundError("No module named 'autograd'")
    elementwise_grad = _snapshot.machinery["elementwise_grad"]

    def derived(*args, **kwargs):
        _refuse_if_changed("before the derivative")
        import gc
        collecting = gc.isenabled()
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _signals())
        gc.disable()
        try:
            try:
                value = elementwise_grad(func, argnum)(*args, **kwargs)
            except BaseException as failed:   # (a crash after a change: the change is the verdict)
                _refuse_if_changed("while autograd differentiated it", failed)
                raise
            # (before a pending signal's handler or a collected finalizer can undo anything)
            _refuse_if_changed("while autograd differentiated it")
        finally:
            if collecting:
                gc.enable()
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        return value

    derived.__name__ = getattr(func, "__name__", "derivative")
    return derived


def _refuse_if_changed(when: str, cause: BaseException | None = None) -> None:
    found = changes()
    if threading.active_count() != 1:
        found.append("another thread runs")
    if sys.gettrace() is not None or sys.getprofile() is not None:
        found.append("a trace or profile hook is set")
    if found:
        raise Tampered(f"your code changed autograd ({when}): " + "; ".join(found[:_MAX_REPORTED])) from cause
