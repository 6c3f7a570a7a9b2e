"""The sandbox child: loads a submission's definitions and runs its functions on request.

Started by ``autograder.sandbox.process.Sandbox`` as ``python -m autograder.sandbox.child R W``
where R and W are the pipe descriptors to the grader. It never imports the reference solutions:
when a check wants a reference function inside student code, the child installs a stand-in that
forwards the call to the grader.

Messages (dicts) from the grader: ``load``, ``call``, ``reply`` (answer to a stand-in callback).
Messages to the grader: ``loaded``, ``result``, ``error``, ``callback``.
"""

from __future__ import annotations

import builtins
import importlib.abc
import importlib.util
import io
import linecache
import os
import random
import sys
import traceback
import types
import warnings

import numpy as np

from .codec import FunctionRef
from .framing import Channel
from .mutation import mutated_arguments, snapshot

_ORIGINAL_RANDOM = random.Random   # (random.Random is replaced by a repeatable subclass)
_OUTPUT_CAP = 8000          # characters of printed output kept per call
_BLOCKED_PACKAGES = ("solutions",)


class _BlockSolutions(importlib.abc.MetaPathFinder):
    """Submissions may not import the reference solutions."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in _BLOCKED_PACKAGES:
            raise ImportError("the reference solutions are not available to submissions")
        return None


class _CappedStream(io.TextIOBase):
    """A stdout/stderr replacement that keeps the first characters and counts the rest."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text) -> int:
        text = str(text)
        room = _OUTPUT_CAP - self.kept
        if room > 0:
            self.parts.append(text[:room])
            self.kept += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def text(self) -> str:
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n... ({self.dropped} more characters not shown)"
        return out


class _DeterministicEntropy:
    """Makes unseeded generators (``default_rng()``, ``random.seed()``) repeatable per call."""

    def __init__(self) -> None:
        self._stream = np.random.Generator(np.random.PCG64(0))

    def reset(self, seed: int) -> None:
        self._stream = np.random.Generator(np.random.PCG64(seed))

    def next_seed(self) -> int:
        return int(self._stream.integers(0, 2**63 - 1))

    def install(self) -> None:
        entropy = self
        original_default_rng = np.random.default_rng
        original_random_state = np.random.RandomState
        original_random_seed = random.seed

        def default_rng(seed=None):
            return original_default_rng(entropy.next_seed() if seed is None else seed)

        class RandomState(original_random_state):
            def __init__(self, seed=None):
                super().__init__(entropy.next_seed() % 2**32 if seed is None else seed)

            def seed(self, seed=None):
                super().seed(entropy.next_seed() % 2**32 if seed is None else seed)

        def legacy_seed(seed=None):
            np.random.mtrand._rand.seed(entropy.next_seed() % 2**32 if seed is None else seed)

        def random_seed(a=None, version=2):
            original_random_seed(entropy.next_seed() if a is None else a, version)

        np.random.default_rng = default_rng
        np.random.RandomState = RandomState
        np.random.seed = legacy_seed
        random.seed = random_seed
        # Bit generators and seed sequences built without a seed (``Generator(PCG64())``), and
        # ``random.Random()`` instances (``SystemRandom`` too): repeatable, like the rest.
        for name in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64", "SeedSequence"):
            original = getattr(np.random, name, None)
            if original is not None:
                setattr(np.random, name, _seeded_subclass(original, entropy))

        class Random(random.Random):
            def seed(self, a=None, version=2):
                super().seed(entropy.next_seed() if a is None else a, version)

        random.Random = Random
        random.SystemRandom = Random


def _seeded_subclass(original, entropy):
    """``original`` with a first argument (seed / entropy) of None replaced by a repeatable one."""

    class Seeded(original):
        def __init__(self, seed=None, *args, **kwargs):
            super().__init__(entropy.next_seed() if seed is None else seed, *args, **kwargs)

    Seeded.__name__ = Seeded.__qualname__ = original.__name__
    Seeded.__module__ = original.__module__
    return Seeded


class _LazyModule(types.ModuleType):
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


# Imported eagerly anyway (cheap or already loaded); everything else behind `import x` is lazy.
_EAGER = {"numpy", "math", "random", "itertools", "functools", "collections", "time", "warnings"}


class Child:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.namespace: dict = {"__name__": "__main__", "__builtins__": builtins}
        self.entropy = _DeterministicEntropy()
        self.owner = os.getpid()

    # ----------------------------------------------------------------------------- loading
    def load(self, message: dict) -> dict:
        for number, text in message.get("cells", {}).items():
            name = f"<cell {number}>"
            linecache.cache[name] = (len(text), None, text.splitlines(True), name)
        problems = []
        for cell, line, source in message.get("statements", []):
            try:
                self._run_statement(cell, line, source)
            except BaseException as exc:  # a broken statement costs only what it defines
                if isinstance(exc, SystemExit):
                    msg = "calls sys.exit() / exit() at the top level; the statement was skipped"
                else:
                    msg = f"{type(exc).__name__}: {_short(exc)} (the statement was skipped)"
                problems.append([cell, line, msg])
        functions = sorted(k for k, v in self.namespace.items()
                           if callable(v) and not isinstance(v, type(np)) and not k.startswith("__"))
        return {"kind": "loaded", "functions": functions, "problems": problems,
                "isolation": getattr(self, "isolation", None)}

    def _run_statement(self, cell: int, line: int, source: str) -> None:
        import ast
        tree = ast.parse(source)
        ast.increment_lineno(tree, line - 1)
        for node in tree.body:
            if isinstance(node, ast.Import) and all(a.name.split(".")[0] not in _EAGER for a in node.names):
                self._lazy_import(node)
                continue
            code = compile(ast.Module(body=[node], type_ignores=[]), f"<cell {cell}>", "exec")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                exec(code, self.namespace)

    def _lazy_import(self, node) -> None:
        for alias in node.names:
            if importlib.util.find_spec(alias.name.split(".")[0]) is None:
                raise ModuleNotFoundError(f"No module named '{alias.name.split('.')[0]}'")
            if alias.asname:
                self.namespace[alias.asname] = _LazyModule(alias.name)
            else:
                top = alias.name.split(".")[0]
                self.namespace[top] = _LazyModule(top)

    # ----------------------------------------------------------------------------- calling
    def call(self, message: dict) -> dict:
        name = message["fn"]
        func = self.namespace.get(name)
        if not callable(func):
            return {"kind": "error", "type": "MissingFunction",
                    "message": f"no function named {name} is defined", "frames": []}
        target = func
        if message.get("differentiate") is not None:
            target = _differentiated(func, message["differentiate"])
        args = [self._live(a) for a in message.get("args", [])]
        kwargs = {k: self._live(v) for k, v in message.get("kwargs", {}).items()}
        before = snapshot(tuple(args)), snapshot(kwargs)
        saved = {}
        for stand_in in message.get("standins", []):
            saved[stand_in] = self.namespace.get(stand_in, _MISSING)
            self.namespace[stand_in] = self._stub(stand_in)
        seed = int(message.get("seed", 0))
        np.random.mtrand._rand.seed(seed % 2**32)
        _ORIGINAL_RANDOM.seed(random._inst, seed)
        self.entropy.reset(seed)
        out = _CappedStream()
        real_out, real_err = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = out
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                value = target(*args, **kwargs)
        except BaseException as exc:
            return self._error(exc, out, saved)
        finally:
            sys.stdout, sys.stderr = real_out, real_err
            for stand_in, original in saved.items():
                if original is _MISSING:
                    self.namespace.pop(stand_in, None)
                else:
                    self.namespace[stand_in] = original
        mutated = mutated_arguments(func, before, tuple(args), kwargs)
        return {"kind": "result", "value": value, "output": out.text(), "mutated": mutated,
                "warnings": _warning_texts(caught)}

    def _error(self, exc: BaseException, out: _CappedStream, saved: dict) -> dict:
        kind = type(exc).__name__
        if isinstance(exc, SystemExit):
            kind, text = "SystemExit", "the function called sys.exit() / exit()"
        else:
            text = _short(exc)
        frames = [[f.filename, f.lineno, f.name, f.line or ""]
                  for f in traceback.extract_tb(exc.__traceback__) if f.filename.startswith("<cell")]
        return {"kind": "error", "type": kind, "message": text, "frames": frames[-6:],
                "output": out.text(), "linalg": isinstance(exc, np.linalg.LinAlgError)}

    def _live(self, value):
        """Turn FunctionRefs (anywhere in an argument) into stand-ins."""
        if isinstance(value, FunctionRef):
            return self._stub(value.name)
        if isinstance(value, list):
            return [self._live(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self._live(v) for v in value)
        if isinstance(value, dict):
            return {k: self._live(v) for k, v in value.items()}
        return value

    def _stub(self, name: str):
        child = self

        def stand_in(*args, **kwargs):
            child.channel.send({"kind": "callback", "fn": name, "args": list(args), "kwargs": kwargs},
                               describe=_describe)
            reply = child.channel.receive()
            if "error" in reply:
                error = reply["error"]
                cls = _RAISABLE.get(error.get("type"), RuntimeError)
                raise cls(error.get("message", ""))
            return reply.get("value")

        stand_in.__name__ = stand_in.__qualname__ = name
        stand_in.__doc__ = f"The grader's {name} (stands in for yours while another function is checked)."
        return stand_in

    def source(self, name: str) -> str | None:
        import inspect
        func = self.namespace.get(name)
        try:
            return inspect.getsource(func)[:200_000]
        except (OSError, TypeError):
            return None

    # ----------------------------------------------------------------------------- main loop
    def serve(self) -> None:
        while True:
            message = self.channel.receive()
            kind = message.get("kind") if isinstance(message, dict) else None
            if kind == "load":
                reply = self.load(message)
            elif kind == "call":
                reply = self.call(message)
            elif kind == "source":
                reply = {"kind": "source", "source": self.source(str(message.get("fn")))}
            elif kind == "exit":
                return
            else:
                reply = {"kind": "error", "type": "ProtocolError", "message": f"unexpected {kind!r}",
                         "frames": []}
            if os.getpid() != self.owner:  # a copy the student forked: it must not answer
                os._exit(0)
            self.channel.send(reply, describe=_describe)


def _differentiated(func, argnum):
    """``func``'s derivative by autograd with respect to argument ``argnum`` (elementwise_grad: the
    gradient of the sum of its outputs), so a check can ask whether autograd differentiates it."""
    from autograd import elementwise_grad
    return elementwise_grad(func, int(argnum))


_MISSING = object()
_RAISABLE = {
    "LinAlgError": np.linalg.LinAlgError, "ValueError": ValueError, "TypeError": TypeError,
    "FloatingPointError": FloatingPointError, "ZeroDivisionError": ZeroDivisionError,
    "IndexError": IndexError, "KeyError": KeyError, "RuntimeError": RuntimeError,
}


def _short(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException:
        text = "(unprintable message)"
    return text if len(text) <= 1500 else text[:1500] + " ..."


def _describe(value) -> str:
    if callable(value):
        return f"function {getattr(value, '__name__', '?')}"
    try:
        return repr(value)[:200]
    except BaseException:
        return "(no description)"


def _warning_texts(caught) -> list[str]:
    texts = []
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in texts:
            texts.append(text)
    return texts[:5]


def _apply_limits(memory_mb: int, cpu_seconds: int, file_mb: int) -> None:
    import resource
    limits = [(resource.RLIMIT_CORE, 0)]
    if memory_mb:
        limits.append((resource.RLIMIT_AS, memory_mb * 2**20))
    if cpu_seconds:
        limits.append((resource.RLIMIT_CPU, cpu_seconds))
    if file_mb:
        limits.append((resource.RLIMIT_FSIZE, file_mb * 2**20))
    for which, value in limits:
        try:
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            pass


def _stay_behind_a_nanny(report=None) -> None:
    """Fork: the submission runs in the grandchild, whose parent is this small waiting process.

    So `os.kill(os.getppid(), SIGKILL)` in student code kills the nanny, not the grader. The nanny
    mirrors how the worker ended (exit status or signal) so the grader can explain it. With a
    new PID namespace (see ``isolation``) the worker is its PID 1: when it ends, the kernel kills
    whatever it started. Without one, the nanny is a subreaper and kills the orphans it inherits.
    """
    namespaces = report is not None and report.namespaces
    if not namespaces:
        try:
            from .isolation import PR_SET_CHILD_SUBREAPER, prctl
            prctl(PR_SET_CHILD_SUBREAPER, 1)
        except (OSError, AttributeError):
            pass
    pid = os.fork()
    if pid == 0:
        return
    if namespaces:
        os.close(report.death_pipe)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            os._exit(0)
        except InterruptedError:  # pragma: no cover
            continue
    if not namespaces:
        _kill_orphans()
    if os.WIFSIGNALED(status):
        import signal
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def _kill_orphans() -> None:
    """Kill and reap the processes the worker left behind (they were re-parented to the nanny)."""
    import signal
    me = os.getpid()
    for _ in range(100):
        try:
            with open(f"/proc/{me}/task/{me}/children") as f:
                children = [int(p) for p in f.read().split()]
        except (OSError, ValueError):
            children = []
        if not children:
            break
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
            except OSError:
                pass
        for _child in children:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                break


def main(argv: list[str]) -> None:
    import json

    from . import isolation
    read_fd, write_fd = int(argv[0]), int(argv[1])
    memory_mb, cpu_seconds, file_mb = (int(x) for x in argv[2:5])
    policy = json.loads(argv[5]) if len(argv) > 5 else {"namespaces": False}
    import time
    started = time.perf_counter()
    isolation.die_with_parent(policy.get("parent"))  # a killed grader leaves nothing running
    try:
        report = isolation.prepare(policy)
    except Exception as exc:  # never grade without saying why the isolation is weaker
        report = isolation.Report(missing=[f"isolation set-up failed: {type(exc).__name__}: {exc}"])
    nanny = os.getpid()
    _stay_behind_a_nanny(report)
    if not report.namespaces:
        isolation.die_with_parent(nanny)
    try:
        if report.namespaces:
            isolation.enter_worker(report, policy)
        else:
            isolation.fallback(report, policy)
    except Exception as exc:
        report.missing.append(f"isolation of the worker failed: {type(exc).__name__}: {exc}")
    report.seconds = time.perf_counter() - started
    _apply_limits(memory_mb, cpu_seconds, file_mb)
    sys.meta_path.insert(0, _BlockSolutions())
    for name in list(sys.modules):
        if name.split(".")[0] in _BLOCKED_PACKAGES:
            del sys.modules[name]
    channel = Channel(read_fd, write_fd)
    # A process the student forks must never speak for the worker on the grader's pipe.
    os.register_at_fork(after_in_child=channel.close)
    child = Child(channel)
    child.isolation = report.as_dict()
    child.entropy.install()
    try:
        child.serve()
    except Exception:
        pass  # the grader went away or sent garbage: nothing useful left to do
    finally:
        os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
