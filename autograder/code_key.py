"""A key that changes whenever what a student's function computes may have changed.

``progress()`` remembers the results of each task's checks under this key and reruns only the
tasks whose key changed. The key is a digest of everything the function's behaviour depends on
that this process can see:

* its code: bytecode, constants, names, line numbers and file (a traceback in a report quotes
  them), and its source text (some checks read it), nested functions and lambdas included;
* its defaults and keyword defaults, and the contents of its closure;
* every global name its code mentions (its code and nested code), resolved in its module's
  globals: a function there (a helper) is keyed the same way, recursively, so redefining a
  helper changes the key of every function that calls it; a constant by its value (arrays by
  dtype, shape and bytes); a class defined next to it by its methods and attributes; a name not
  defined (yet) is recorded as missing, so defining it later changes the key;
* modules by name; a module outside the Python installation (the student's own ``.py`` file)
  also by its file's size and modification time.

It errs on the side of rerunning: a value it cannot read (an object that does not pickle) makes
the key None, which matches nothing. What it cannot see: files the function reads, the clock,
attributes patched into library modules (``np.exp = ...``).
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import inspect
import os
import pickle
import sys
import sysconfig
import types
from typing import Callable, Mapping

import numpy as np

__all__ = ["code_key"]


class _Unkeyable(Exception):
    """A value the key cannot be computed from."""


def code_key(func: Callable, related: Mapping[str, object] | None = None) -> str | None:
    """The key of ``func`` (see the module docstring), or None when part of it cannot be read.

    Parameters
    ----------
    func : callable
        The student's function.
    related : mapping of str to object, optional
        Other values the result depends on although the code does not name them (the functions
        a check combines it with), keyed by name; None values are recorded as missing.
    """
    hasher = _Hasher()
    try:
        hasher.value(func)
        for name in sorted(related or {}):
            hasher.feed(b"related", name.encode())
            hasher.value(related[name])
    except (_Unkeyable, RecursionError):
        return None
    return hasher.digest()


_LIBRARY_PREFIXES = tuple(sorted({os.path.realpath(p) + os.sep for p in (
    sys.prefix, sys.base_prefix, sys.exec_prefix, sysconfig.get_paths().get("purelib", sys.prefix),
    sysconfig.get_paths().get("platlib", sys.prefix), os.path.dirname(os.__file__))}))
_PACKAGE = __name__.partition(".")[0]    # autograder (an editable install lives outside the prefix)
_SCALARS = (type(None), bool, int, float, complex, str, bytes)


class _Hasher:
    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._active: dict[int, int] = {}   # id -> position, for recursive functions and containers
        self._alive: list = []               # keeps hashed objects alive so ids stay unique

    def digest(self) -> str:
        return self._sha.hexdigest()

    def feed(self, tag: bytes, data: bytes = b"") -> None:
        self._sha.update(tag + b":" + str(len(data)).encode() + b":" + data + b";")

    # ------------------------------------------------------------------------------ values
    def value(self, obj) -> None:
        if isinstance(obj, _SCALARS):
            self.feed(b"scalar", f"{type(obj).__name__}:{obj!r}".encode())
            return
        if isinstance(obj, np.generic):
            self.feed(b"np.generic", obj.dtype.str.encode() + b":" + obj.tobytes())
            return
        if isinstance(obj, np.ndarray) and obj.dtype != object:
            self.feed(b"ndarray", f"{obj.dtype.str}{obj.shape}".encode())
            self.feed(b"bytes", np.ascontiguousarray(obj).tobytes())
            return
        if isinstance(obj, types.ModuleType):
            self._module(obj)
            return
        key = id(obj)
        if key in self._active:                 # a cycle: refer to where we met it
            self.feed(b"cycle", str(self._active[key]).encode())
            return
        self._active[key] = len(self._active)
        self._alive.append(obj)
        try:
            self._compound(obj)
        finally:
            del self._active[key]

    def _compound(self, obj) -> None:
        if isinstance(obj, types.FunctionType):
            self._function(obj)
        elif isinstance(obj, types.MethodType):
            self.feed(b"method")
            self.value(obj.__func__)
            self.value(obj.__self__)
        elif isinstance(obj, functools.partial):
            self.feed(b"partial")
            self.value(obj.func)
            self.value(obj.args)
            self.value(obj.keywords)
        elif isinstance(obj, (types.BuiltinFunctionType, np.ufunc)):
            self.feed(b"builtin", f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', obj.__name__)}"
                                  .encode())
        elif isinstance(obj, type):
            self._class(obj)
        elif isinstance(obj, (tuple, list)):
            self.feed(type(obj).__name__.encode(), str(len(obj)).encode())
            for item in obj:
                self.value(item)
        elif isinstance(obj, dict):
            self.feed(b"dict", str(len(obj)).encode())
            for k, v in obj.items():
                self.value(k)
                self.value(v)
        elif isinstance(obj, (set, frozenset)):
            parts = []
            for item in obj:
                sub = _Hasher()
                sub.value(item)
                parts.append(sub.digest())
            self.feed(b"set", "".join(sorted(parts)).encode())
        elif isinstance(obj, types.CodeType):
            self._code(obj)
        else:
            try:
                data = pickle.dumps(obj, protocol=4)
            except Exception as exc:  # noqa: BLE001 - anything unpicklable: no key
                raise _Unkeyable(type(obj).__name__) from exc
            self.feed(b"pickle", f"{type(obj).__module__}.{type(obj).__qualname__}".encode())
            self.feed(b"bytes", data)

    # --------------------------------------------------------------------------- functions
    def _function(self, func: types.FunctionType) -> None:
        module = sys.modules.get(getattr(func, "__module__", None) or "")
        if module is not None and _is_library(module):   # scipy's logsumexp, progress_bar...: by name
            self.feed(b"library-function", f"{module.__name__}.{func.__qualname__}".encode())
            return
        self.feed(b"function")
        self._code(func.__code__)
        try:
            source = inspect.getsource(func)
        except (OSError, TypeError):
            source = ""
        self.feed(b"source", source.encode())
        self.value(func.__defaults__)
        self.value(func.__kwdefaults__)
        for cell in func.__closure__ or ():
            try:
                self.value(cell.cell_contents)
            except ValueError:  # an empty cell
                self.feed(b"empty-cell")
        module_globals = func.__globals__
        for name in sorted(_global_names(func.__code__)):
            self.feed(b"global", name.encode())
            if name in module_globals:
                self.value(module_globals[name])
            elif hasattr(builtins, name):
                self.feed(b"builtin-name")
            else:
                self.feed(b"missing")

    def _code(self, code: types.CodeType) -> None:
        self.feed(b"code", code.co_code)
        for attr in ("co_names", "co_varnames", "co_freevars", "co_cellvars"):
            self.feed(attr.encode(), repr(getattr(code, attr)).encode())
        self.feed(b"shape", repr((code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount,
                                  code.co_flags, code.co_filename, code.co_firstlineno)).encode())
        for attr in ("co_linetable", "co_exceptiontable", "co_lnotab"):
            data = getattr(code, attr, None)
            if isinstance(data, bytes):
                self.feed(attr.encode(), data)
        self.feed(b"consts", str(len(code.co_consts)).encode())
        for const in code.co_consts:
            self.value(const)

    def _class(self, cls: type) -> None:
        module = getattr(cls, "__module__", "")
        self.feed(b"class", f"{module}.{cls.__qualname__}".encode())
        if module in sys.modules and _is_library(sys.modules[module]):
            return                      # numpy's, scipy's...: by name
        for name, attr in vars(cls).items():
            if name in ("__dict__", "__weakref__", "__module__", "__doc__"):
                continue
            self.feed(b"attr", name.encode())
            if isinstance(attr, (staticmethod, classmethod)):
                attr = attr.__func__
            elif isinstance(attr, property):
                attr = (attr.fget, attr.fset, attr.fdel)
            elif isinstance(attr, (types.MemberDescriptorType, types.GetSetDescriptorType)):
                continue                # __slots__: the name says it all
            self.value(attr)

    def _module(self, module: types.ModuleType) -> None:
        self.feed(b"module", module.__name__.encode())
        if not _is_library(module):
            path = getattr(module, "__file__", None)
            try:
                stat = os.stat(path)
                self.feed(b"file", f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
            except (TypeError, OSError):
                self.feed(b"file", str(path).encode())


def _global_names(code: types.CodeType) -> set[str]:
    """Every name the code (and the code nested in it) may look up as a global or an attribute."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _is_library(module: types.ModuleType) -> bool:
    """A module of the Python installation (stdlib, site-packages), built in, or this package:
    code that does not change while a notebook runs, unlike the student's own. A module without
    a file that is not built in (a notebook's ``__main__``, code made by exec) is the student's."""
    name = module.__name__
    if name == _PACKAGE or name.startswith(_PACKAGE + ".") or name in sys.builtin_module_names:
        return True
    path = getattr(module, "__file__", None)
    if path is None:
        paths = list(getattr(module, "__path__", None) or ())   # a namespace package
        return bool(paths) and all(os.path.realpath(p).startswith(_LIBRARY_PREFIXES) for p in paths)
    return os.path.realpath(path).startswith(_LIBRARY_PREFIXES)
