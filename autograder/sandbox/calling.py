"""One call of a student's function: the mechanics shared by the sandbox's call process
(``worker``) and the in-process executor (``autograder.engine.executors.InProcessExecutor``).

``perform`` does, in this order: stand-ins installed in the function's namespace, arguments
snapshotted, the global generators seeded by the call's seed (``Task.call_seed``), printed output
captured (capped), warnings recorded, the call made (or autograd's derivative of it), arguments
compared with their snapshot, stand-ins removed again. It never lets an exception out: what the
call raised is in ``Finished.error`` and each caller decides what it means (the worker reports it
over its channel; in-process, ``AbortCall`` and the time limit are the executor's).

Where the callables a call needs come from is the caller's part: in the sandbox, stubs that call
back to the grader (``worker``); in-process, the grader's callables themselves.
``map_callables`` walks an argument the same way for both.

This module is part of the sandbox runtime (imported inside the sandbox): it imports only the
standard library, numpy and its sibling modules, never the grader.
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Callable, ContextManager, Mapping

from .determinism import Entropy, seed_call
from .mutation import mutated_arguments, snapshot

OUTPUT_CAP = 8000          # characters of printed output kept per call
MESSAGE_CAP = 1500         # characters of an exception's message kept
FRAMES_KEPT = 6            # innermost traceback frames kept
_MISSING = object()


class CappedStream(io.TextIOBase):
    """A stdout/stderr replacement that keeps the first characters and counts the rest."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.kept = 0
        self.dropped = 0

    def writable(self) -> bool:
        return True

    def write(self, text) -> int:
        text = str(text)
        room = OUTPUT_CAP - self.kept
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


@dataclass
class Finished:
    """What one call did. ``error`` is what it raised (None when it returned ``value``)."""

    value: object = None
    error: BaseException | None = None
    output: str = ""
    warnings: list[str] = field(default_factory=list)
    mutated: list[str] = field(default_factory=list)   # names of arguments changed in place
    seconds: float = 0.0
    frames: list = field(default_factory=list)         # [file, line, function, source line], innermost last

    def message(self) -> dict:
        """The call's answer as the worker sends it: ``result`` or ``error``."""
        if self.error is None:
            return {"kind": "result", "value": self.value, "output": self.output, "mutated": self.mutated,
                    "warnings": self.warnings}
        import numpy as np
        kind, text = error_text(self.error)
        return {"kind": "error", "type": kind, "message": text, "frames": self.frames, "output": self.output,
                "linalg": isinstance(self.error, np.linalg.LinAlgError)}


def perform(func: Callable, args: tuple, kwargs: Mapping, *, seed: int, entropy: Entropy | None = None,
            namespace: dict | None = None, standins: Mapping[str, Callable] | None = None,
            differentiate: int | None = None, guard: Callable[[], ContextManager] | None = None,
            keep_frame: Callable[[traceback.FrameSummary], bool] | None = None,
            derive: Callable[[Callable, int], Callable] | None = None) -> Finished:
    """Call ``func(*args, **kwargs)`` once, as every call of a student's function is made.

    Parameters
    ----------
    func : callable
        The student's function.
    args, kwargs
        Its arguments, as the student's code will see them (callables already replaced).
    seed : int
        Seeds numpy's and Python's global generators (``Task.call_seed``).
    entropy : Entropy, optional
        The sandbox's stream for unseeded generators, restarted from ``seed`` too.
    namespace : dict, optional
        Where ``standins`` are installed for the call (default ``func.__globals__``); the names
        are restored afterwards.
    standins : mapping of str to callable, optional
        Globals of the student's code replaced during the call.
    differentiate : int, optional
        Call autograd's ``elementwise_grad(func, differentiate)`` instead.
    guard : callable, optional
        A context manager around exactly the call (the in-process time limit).
    keep_frame : callable, optional
        Which traceback frames of an error are reported (default: all below this function).
    derive : callable, optional
        ``derive(func, argnum)`` makes the derivative (default :func:`differentiated`; the sandbox's
        worker passes ``autograd_guard.derivative``, which trusts nothing the student's code loaded).

    Returns
    -------
    Finished
    """
    # (autograd missing is the grader's problem, never the student's: it is raised, not reported)
    target = func if differentiate is None else (derive or differentiated)(func, int(differentiate))
    if namespace is None:
        namespace = getattr(func, "__globals__", {})
    standins = dict(standins or {})
    saved = {name: namespace.get(name, _MISSING) for name in standins}
    namespace.update(standins)
    started = time.monotonic()
    out = CappedStream()
    caught: list = []
    done = Finished()
    try:
        before = snapshot(tuple(args)), snapshot(dict(kwargs))
        seed_call(entropy, seed)
        with captured(out), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with guard() if guard is not None else contextlib.nullcontext():
                done.value = call_within(target, args, kwargs)
    except BaseException as exc:  # noqa: BLE001 - whatever the student's code raises is reported
        done.error = exc
        done.frames = error_frames(exc, keep_frame)
    finally:
        for name, value in saved.items():
            if value is _MISSING:
                namespace.pop(name, None)
            else:
                namespace[name] = value
    done.seconds = time.monotonic() - started
    done.output = out.text()
    if done.error is None:
        done.warnings = warning_texts(caught)
        done.mutated = mutated_arguments(func, before, tuple(args), dict(kwargs))
    return done


def call_within(target: Callable, args: tuple, kwargs: Mapping):
    """``target(*args, **kwargs)``: its frame is on the stack exactly while the student's call runs
    (an in-process time limit raises only below it, never in the grader's code after the call)."""
    return target(*args, **kwargs)


CALL_FRAME = call_within.__code__


def map_callables(value, replace: Callable[[object], object]):
    """``value`` with ``replace(leaf)`` for every leaf of its lists, tuples and dicts."""
    if isinstance(value, list):
        return [map_callables(v, replace) for v in value]
    if isinstance(value, tuple):
        return tuple(map_callables(v, replace) for v in value)
    if isinstance(value, dict):
        return {k: map_callables(v, replace) for k, v in value.items()}
    return replace(value)


class captured:
    """``sys.stdout`` and ``sys.stderr`` both written to ``stream`` inside the block."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def __enter__(self):
        self.saved = sys.stdout, sys.stderr
        sys.stdout = sys.stderr = self.stream
        return self.stream

    def __exit__(self, *exc) -> None:
        sys.stdout, sys.stderr = self.saved


def differentiated(func: Callable, argnum) -> Callable:
    """``func``'s derivative by autograd with respect to argument ``argnum`` (elementwise_grad: the
    gradient of the sum of its outputs), so a check can ask whether autograd differentiates it."""
    from autograd import elementwise_grad
    return elementwise_grad(func, int(argnum))


def error_frames(exc: BaseException, keep: Callable | None = None) -> list:
    """The innermost frames of ``exc``'s traceback below ``perform``: [file, line, function, line text]."""
    frames = traceback.extract_tb(exc.__traceback__)[1:]   # (perform's own frame)
    if frames and frames[0].name == call_within.__name__ and frames[0].filename == __file__:
        frames = frames[1:]
    return [[f.filename, f.lineno, f.name, f.line or ""] for f in frames
            if keep is None or keep(f)][-FRAMES_KEPT:]


def error_text(exc: BaseException) -> tuple[str, str]:
    """(type name, message) of what a call raised."""
    if isinstance(exc, SystemExit):
        return "SystemExit", "the function called sys.exit() / exit()"
    return type(exc).__name__, short(exc)


def short(exc: BaseException) -> str:
    """``str(exc)``, cut to MESSAGE_CAP characters (and never raising)."""
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001 - the student's exception may not even print
        text = "(unprintable message)"
    return text if len(text) <= MESSAGE_CAP else text[:MESSAGE_CAP] + " ..."


def warning_texts(caught) -> list[str]:
    """The first five distinct warnings of a call, ``Category: message``."""
    texts = []
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in texts:
            texts.append(text)
    return texts[:5]
