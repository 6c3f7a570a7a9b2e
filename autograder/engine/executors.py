"""Where the student's functions run.

Two executors share one interface, ``Executor`` (``call`` returning a ``CallOutcome``):

* ``SandboxExecutor``: a child process per submission (the CLI, nbgrader's hidden cells).
* ``InProcessExecutor``: the student's own kernel (the notebook's ``check()``), where isolation
  would buy nothing: it is the student's own process.
"""

from __future__ import annotations

import contextlib
import copy
import signal
import sys
import threading
from typing import Callable, Mapping, Protocol, runtime_checkable

from ..loading import Submission
from ..sandbox import AbortCall, CallOutcome, IsolationPolicy, Limits, Sandbox
from ..sandbox.calling import CALL_FRAME, map_callables, perform


@runtime_checkable
class Executor(Protocol):
    """Where a check's calls of the student's functions run: what ``Context`` and ``run_checks`` use.

    ``in_process`` is True when the student's functions live in this process (``own_function``
    returns them); ``load_failure`` and ``problems`` say what went wrong loading the submission.
    """

    in_process: bool

    @property
    def load_failure(self) -> str | None: ...

    @property
    def problems(self) -> list[str]: ...

    def start(self) -> None: ...

    def close(self) -> None: ...

    def defines(self, name: str) -> bool:
        """True when the submission defines a function ``name``."""

    def own_function(self, name: str) -> Callable | None:
        """The student's function itself when it lives in this process, else None."""

    def source(self, name: str) -> str | None:
        """The source text of the student's ``name``, None when unavailable."""

    def definitions(self) -> list[str] | None:
        """The submission's kept top-level statements in order, None when unavailable."""

    def call(self, name: str, args: tuple, kwargs: Mapping, *, standins: Mapping[str, Callable],
             seed: int, timeout: float, differentiate: int | None = None) -> CallOutcome:
        """Call the student's ``name`` with ``standins`` replacing its globals, seeded by ``seed``."""


class SandboxExecutor:
    """Runs a loaded submission in a child process (see ``autograder.sandbox``)."""

    in_process = False

    def __init__(self, submission: Submission, limits: Limits = Limits(), hidden=(),
                 policy: IsolationPolicy | None = None) -> None:
        self.submission = submission   # (``hidden`` is accepted and ignored: see Sandbox)
        self.sandbox = Sandbox(submission, limits, policy or IsolationPolicy(), hidden=hidden)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.sandbox.close()

    def start(self) -> None:
        self.sandbox.start()

    @property
    def load_failure(self) -> str | None:
        return self.submission.error or self.sandbox.load_failure

    @property
    def problems(self) -> list[str]:
        notes = [p.describe() for p in self.submission.problems]
        notes += [f"code cell {c}, line {line}: {msg}" for c, line, msg in self.sandbox.load_problems]
        return notes

    def defines(self, name: str) -> bool:
        self.sandbox.start()
        return name in self.sandbox.functions

    def own_function(self, name: str) -> Callable | None:
        return None  # the student's functions live in another process

    def source(self, name: str) -> str | None:
        return self.sandbox.source(name)

    def definitions(self) -> list[str] | None:
        """The submission's kept top-level statements (its imports and definitions), in order."""
        if self.submission.error:
            return None
        return [s.source for s in self.submission.statements]

    def call(self, name: str, args: tuple, kwargs: Mapping, *, standins: Mapping[str, Callable],
             seed: int, timeout: float, differentiate: int | None = None) -> CallOutcome:
        if self.submission.error:
            return CallOutcome("unloadable", message=self.submission.error)
        extra = {} if differentiate is None else {"differentiate": differentiate}
        return self.sandbox.call(name, args, kwargs, standins=standins, seed=seed, timeout=timeout, **extra)


class InProcessExecutor:
    """Calls functions that live in this process's namespace (a notebook's globals)."""

    in_process = True
    load_failure = None
    problems: list[str] = []

    def __init__(self, namespace: Mapping[str, object]) -> None:
        self.namespace = namespace

    def close(self) -> None:
        pass

    def start(self) -> None:
        pass

    def defines(self, name: str) -> bool:
        return callable(self.namespace.get(name))

    def own_function(self, name: str) -> Callable | None:
        func = self.namespace.get(name)
        return func if callable(func) else None

    def source(self, name: str) -> str | None:
        import inspect
        try:
            return inspect.getsource(self.namespace[name])
        except (KeyError, OSError, TypeError):
            return None

    def definitions(self) -> list[str] | None:
        """The top-level statements the grader would keep from the code that defined this namespace.

        In IPython the kernel's input history (every cell run, in order: the last definition of a
        name wins, as in the kernel); elsewhere the source files of the namespace's functions and
        classes. None when neither is available.
        """
        from ..loading import submission_from_cells
        history = self.namespace.get("_ih")
        if isinstance(history, list) and all(isinstance(cell, str) for cell in history):
            cells = [cell for cell in history if cell.strip()]
        else:
            cells = [text for text in _source_files(self.namespace)]
        if not cells:
            return None
        return [s.source for s in submission_from_cells(cells).statements]

    def call(self, name: str, args: tuple, kwargs: Mapping, *, standins: Mapping[str, Callable],
             seed: int, timeout: float, differentiate: int | None = None) -> CallOutcome:
        func = self.own_function(name)
        if func is None:
            return CallOutcome("missing", message=f"no function named {name} is defined")
        # The arrays are the student's own copies; the grader's callables stay themselves (passed by
        # reference, as the sandbox passes them), so a stand-in that records its calls sees them.
        keep = _callables_memo((args, kwargs))
        args, kwargs = copy.deepcopy(tuple(args), dict(keep)), copy.deepcopy(dict(kwargs), dict(keep))
        # A stand-in that stops the call (AbortCall) keeps stopping it, even when the student's
        # code catches BaseException: the first reason is reported.
        stops: list[AbortCall] = []
        sticky = lambda value: _sticky(value, stops)  # noqa: E731
        args = tuple(map_callables(a, sticky) for a in args)
        kwargs = {k: map_callables(v, sticky) for k, v in kwargs.items()}
        done = perform(func, args, kwargs, seed=seed, standins={k: sticky(v) for k, v in standins.items()},
                       differentiate=differentiate, guard=lambda: _time_limit(timeout))
        if isinstance(done.error, KeyboardInterrupt):
            raise done.error
        if stops:
            return _aborted(stops[0], done.seconds)
        if isinstance(done.error, AbortCall):
            return _aborted(done.error, done.seconds)
        if isinstance(done.error, _TimeLimit):
            return CallOutcome("timeout", message=f"did not return within {timeout:.0f} s", seconds=done.seconds)
        report = done.message()
        if done.error is not None:
            return CallOutcome("error", error_type=report["type"], message=report["message"],
                               frames=report["frames"], output=done.output, seconds=done.seconds)
        return CallOutcome("ok", value=done.value, output=done.output, mutated=done.mutated,
                           warnings=done.warnings, seconds=done.seconds)


def _source_files(namespace: Mapping[str, object]) -> list[str]:
    """The text of every source file (or cached cell) that defined a function or class in ``namespace``."""
    import inspect
    import linecache
    files: dict[str, None] = {}
    for value in list(namespace.values()):
        funcs = [value] if inspect.isfunction(value) else []
        if inspect.isclass(value) and getattr(value, "__module__", None) == namespace.get("__name__"):
            funcs = [f for f in vars(value).values() if inspect.isfunction(f)]
        for func in funcs:
            filename = func.__code__.co_filename
            if func.__globals__ is not getattr(namespace, "maps", [namespace])[-1] and \
                    func.__globals__.get("__name__") != namespace.get("__name__"):
                continue  # a library's function imported into the namespace
            files.setdefault(filename)
    texts = []
    for filename in sorted(files):
        lines = linecache.getlines(filename)
        if lines:
            texts.append("".join(lines))
    return texts


def _callables_memo(value, memo: dict | None = None) -> dict:
    """A ``copy.deepcopy`` memo that maps every callable in ``value`` (in lists, tuples and dicts)
    to itself, so deep-copying ``value`` copies its data but not its functions."""
    memo = {} if memo is None else memo
    if callable(value) and not isinstance(value, type):
        memo[id(value)] = value
    elif isinstance(value, (list, tuple)):
        for item in value:
            _callables_memo(item, memo)
    elif isinstance(value, dict):
        for item in value.values():
            _callables_memo(item, memo)
    return memo


def _sticky(value, stops: list):
    """``value``, or for a callable a wrapper that remembers an AbortCall and raises it again."""
    if not callable(value) or isinstance(value, type):
        return value

    def wrapper(*args, **kwargs):
        if stops:
            raise stops[0]
        try:
            return value(*args, **kwargs)
        except AbortCall as stop:
            stops.append(stop)
            _expire_soon()   # in case the student's code catches it and carries on
            raise

    for attr in ("__name__", "__qualname__", "__doc__"):
        try:
            setattr(wrapper, attr, getattr(value, attr))
        except (AttributeError, TypeError):
            pass
    return wrapper


def _expire_soon() -> None:
    """End the current in-process call now (when ``_time_limit`` is watching it)."""
    if (threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
            and getattr(signal.getsignal(signal.SIGALRM), "autograder_time_limit", False)):
        signal.setitimer(signal.ITIMER_REAL, 0.001)


def _aborted(stop: AbortCall, seconds: float) -> CallOutcome:
    return CallOutcome("aborted", value=stop.verdict, message=stop.reason, seconds=seconds)


class _TimeLimit(BaseException):
    pass


def _in_the_call(frame) -> bool:
    """Whether ``frame`` runs below the student's call (``calling.call_within``), not in the
    grader's code around it (before the limit is lifted, it may fire once the call is over)."""
    while frame is not None:
        if frame.f_code is CALL_FRAME:
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def _time_limit(seconds: float):
    """A wall-clock limit using SIGALRM (only possible in the main thread, e.g. a kernel)."""
    usable = (threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
              and signal.getitimer(signal.ITIMER_REAL)[0] == 0)
    if not usable:
        yield
        return

    delegating = []   # (non-empty while the previous unraisable hook runs: never interrupt it)
    previous_hook = sys.unraisablehook

    finished = []   # (non-empty once the call is over: never fire again, wherever we are)

    def expire(signum, frame):
        if finished:
            return
        # Again and again until the call is over: code that catches BaseException and loops on
        # is interrupted somewhere outside its try.
        signal.setitimer(signal.ITIMER_REAL, 0.002)
        if not delegating and _in_the_call(frame):
            raise _TimeLimit()

    def unraisable(info):
        # The limit may fire inside a weakref callback or a __del__, where Python cannot raise it
        # into the call and reports it as "Exception ignored" on stderr: it is ours, and it fires
        # again 2 ms later inside the call, so it is dropped silently.
        if isinstance(info.exc_value, _TimeLimit) or isinstance(getattr(info.exc_value, "__cause__", None),
                                                                  _TimeLimit):
            return
        delegating.append(True)
        try:
            previous_hook(info)
        finally:
            delegating.pop()

    expire.autograder_time_limit = True
    previous = signal.signal(signal.SIGALRM, expire)
    sys.unraisablehook = unraisable
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        # Outside the call the limit never raises (``_in_the_call``), but a pending one may still
        # run here: the flag first, so that it cannot re-arm the timer behind the restored handler.
        finished.append(True)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        sys.unraisablehook = previous_hook
