"""The call process's work: load the submission's kept statements, answer one request, exit.

Runs in a process the zygote forks for one job (the load probe, one call, or one source lookup),
after ``isolation``, ``filesystem`` and ``seccomp`` have done their part. It never imports the
grader: a reference function the check wants inside student code is a stub that calls back to
the grader over the job's channel.

Channel messages (one job):
  to the grader:   ``loaded`` (functions, load problems) first, then ``report`` (probe), ``source``,
                   ``result`` / ``error`` (call), with ``callback`` messages during a call;
  from the grader: the request (``probe``, ``call``, ``source``), ``reply`` to each callback.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import importlib.util
import io
import linecache
import sys
import threading
import traceback
import types
import warnings

from . import autograd_guard
from .calling import map_callables, perform, short
from .codec import FunctionRef
from .errors import ValueTooLarge, megabytes

# Imported eagerly anyway (cheap or already loaded); everything else behind `import x` is lazy.
_EAGER = {"numpy", "math", "random", "itertools", "functools", "collections", "time", "warnings"}
STUB_DOC = "A function of the grader's (it runs outside the sandbox and returns its result here)."


class LazyModule(types.ModuleType):
    """A module imported on first use, so plotting imports cost nothing unless used."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.__dict__["_lazy_target"] = name

    def _load(self):
        module = importlib.import_module(self.__dict__["_lazy_target"])
        self.__dict__.update(module.__dict__)
        return module

    def __getattr__(self, attr):
        return getattr(self._load(), attr)


def compile_submission(statements) -> list:
    """The kept statements as code objects, compiled once (in the zygote: compiling runs nothing):
    [(cell, line, [("code", code) | ("lazy", [(name, asname)]) | ("error", exception)])]."""
    program = []
    for cell, line, source in statements:
        steps: list = []
        try:
            tree = ast.parse(source)
            ast.increment_lineno(tree, line - 1)
            for node in tree.body:
                if isinstance(node, ast.Import) and all(a.name.split(".")[0] not in _EAGER for a in node.names):
                    steps.append(("lazy", [(a.name, a.asname) for a in node.names]))
                    continue
                steps.append(("code", compile(ast.Module(body=[node], type_ignores=[]), f"<cell {cell}>", "exec")))
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:   # (in the zygote: never fatal)
            steps.append(("error", exc))
        program.append((cell, line, steps))
    return program


class Worker:
    def __init__(self, channel, submission: dict, program: list, entropy) -> None:
        self.channel = channel
        self.submission = submission
        self.program = program
        self.entropy = entropy
        self.namespace: dict = {"__name__": "__main__", "__builtins__": builtins}
        self._lock = threading.Lock()
        self.tampered: list[str] = []   # what the load changed of autograd (autograd_guard)

    # ----------------------------------------------------------------------------- loading
    def load(self) -> dict:
        for number, text in self.submission.get("cells", {}).items():
            name = f"<cell {number}>"
            linecache.cache[name] = (len(text), None, text.splitlines(True), name)
        problems = []
        for cell, line, steps in self.program:
            try:
                for kind, step in steps:
                    if kind == "error":
                        raise step
                    if kind == "lazy":
                        self._lazy_import(step)
                        continue
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        exec(step, self.namespace)
            except BaseException as exc:  # a broken statement costs only what it defines
                if isinstance(exc, SystemExit):
                    msg = "calls sys.exit() / exit() at the top level; the statement was skipped"
                else:
                    msg = f"{type(exc).__name__}: {short(exc)} (the statement was skipped)"
                problems.append([cell, line, msg])
        self.tampered = autograd_guard.changes()
        functions = sorted(k for k, v in self.namespace.items()
                           if callable(v) and not isinstance(v, types.ModuleType) and not k.startswith("__"))
        return {"kind": "loaded", "functions": functions, "problems": problems}

    def _lazy_import(self, names) -> None:
        for name, asname in names:
            if importlib.util.find_spec(name.split(".")[0]) is None:
                raise ModuleNotFoundError(f"No module named '{name.split('.')[0]}'")
            if asname:
                self.namespace[asname] = LazyModule(name)
            else:
                top = name.split(".")[0]
                self.namespace[top] = LazyModule(top)

    # ----------------------------------------------------------------------------- one job
    def serve(self, report: dict) -> None:
        self.send(self.load())
        request = self.channel.receive()
        kind = request.get("kind") if isinstance(request, dict) else None
        if kind == "probe":
            self.send({"kind": "report", "isolation": report})
        elif kind == "call":
            self.send(self.call(request))
        elif kind == "source":
            self.send({"kind": "source", "source": self.source(str(request.get("fn")))})

    def send(self, message: dict) -> None:
        try:
            self.channel.send(message, describe=describe)
        except ValueTooLarge as exc:
            self.channel.send({"kind": "error", "type": "ValueTooLarge", "frames": [], "output": "",
                               "message": f"the value it returned is {megabytes(exc.size)}, more than the "
                                          f"{megabytes(exc.limit)} the grader accepts from a function"})

    # ----------------------------------------------------------------------------- calling
    def call(self, message: dict) -> dict:
        name = message["fn"]
        func = self.namespace.get(name)
        if not callable(func):
            return {"kind": "error", "type": "MissingFunction",
                    "message": f"no function named {name} is defined", "frames": []}
        live = lambda value: self._stub(value.name, "function") if isinstance(value, FunctionRef) else value  # noqa: E731
        args = tuple(map_callables(a, live) for a in message.get("args", []))
        kwargs = {k: map_callables(v, live) for k, v in message.get("kwargs", {}).items()}
        standins = {str(g): self._stub(str(token), str(g)) for g, token in dict(message.get("standins", {})).items()}
        done = perform(func, args, kwargs, seed=int(message.get("seed", 0)), entropy=self.entropy,
                       namespace=self.namespace, standins=standins, differentiate=message.get("differentiate"),
                       keep_frame=lambda frame: frame.filename.startswith("<cell"),
                       derive=autograd_guard.derivative)
        answer = done.message()
        # What the load or the call changed of autograd: the grader must not trust what autograd
        # computed here (a gradient function that "differentiates" through a patched grad).
        tampered = self.tampered + [c for c in autograd_guard.changes() if c not in self.tampered]
        if tampered:
            answer["tampered"] = tampered[:8]
        return answer

    def _stub(self, token: str, name: str):
        """A function that calls the grader's ``token``: named after what it replaces, nothing
        about which of the grader's functions it is (the token is a per-call number)."""
        channel, lock = self.channel, self._lock

        def stand_in(*args, **kwargs):
            with lock:
                try:
                    channel.send({"kind": "callback", "fn": token, "args": list(args), "kwargs": kwargs},
                                 describe=describe)
                except ValueTooLarge as exc:
                    raise ValueError(f"the arguments are {megabytes(exc.size)}, more than the "
                                     f"{megabytes(exc.limit)} a function of the grader accepts") from None
                reply = channel.receive()
            if not isinstance(reply, dict):
                raise RuntimeError("the grader sent an unexpected answer")
            if "error" in reply:
                error = reply["error"] if isinstance(reply["error"], dict) else {}
                raise raisable(error.get("type"))(str(error.get("message", "")))
            return reply.get("value")

        stand_in.__name__ = stand_in.__qualname__ = name
        stand_in.__doc__ = STUB_DOC
        stand_in.__module__ = "autograder.sandbox"
        return stand_in

    def source(self, name: str) -> str | None:
        import inspect
        func = self.namespace.get(name)
        try:
            return inspect.getsource(func)[:200_000]
        except (OSError, TypeError):
            return None


def raisable(type_name) -> type:
    import numpy as np
    return {"LinAlgError": np.linalg.LinAlgError, "ValueError": ValueError, "TypeError": TypeError,
            "FloatingPointError": FloatingPointError, "ZeroDivisionError": ZeroDivisionError,
            "IndexError": IndexError, "KeyError": KeyError, "RuntimeError": RuntimeError,
            "MemoryError": MemoryError}.get(type_name, RuntimeError)


def describe(value) -> str:
    if callable(value):
        return f"function {getattr(value, '__name__', '?')}"
    try:
        return repr(value)[:200]
    except BaseException:
        return "(no description)"
