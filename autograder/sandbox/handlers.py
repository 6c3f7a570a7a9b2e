"""The grader-side work a call asks for: the stand-ins and callable arguments that a student's
function calls back while it runs in the sandbox.

* **Opaque.** The child knows a handler only by a per-call token (``g0``, ``a1``...) assigned
  by position, never by what the handler is; its stub is named after what it replaces. An
  error a handler raises reaches the student's code with the type and a message from which
  the grader's names and paths are removed.
* **Bounded.** A handler runs under the call's deadline: its time counts against the call's
  limit, and when the deadline passes while it runs, it is interrupted (SIGALRM, on the main
  thread; elsewhere it runs to its end and the call is a timeout as soon as it returns). The
  call then ends as a timeout that names the grader-side work and the arguments it was given.
"""

from __future__ import annotations

import contextlib
import re
import signal
import threading
import time
from typing import Callable, Mapping

from .codec import FunctionRef

RAISABLE = ("LinAlgError", "ValueError", "TypeError", "FloatingPointError", "ZeroDivisionError", "IndexError",
            "KeyError", "RuntimeError", "MemoryError")


class HandlerTimeout(BaseException):
    """The call's deadline passed while grader-side work it asked for was running."""

    def __init__(self, what: str, call: str) -> None:
        super().__init__(what)
        self.what = what
        self.call = call


class _Expired(BaseException):
    pass


class Handlers:
    """The grader-side callables of one call, by neutral token."""

    def __init__(self) -> None:
        self._handlers: dict[str, Callable] = {}
        self._what: dict[str, str] = {}

    def standins(self, standins: Mapping[str, Callable]) -> dict[str, str]:
        """{global name: token} for the stand-ins (tokens by sorted name, not by handler)."""
        tokens = {}
        for i, name in enumerate(sorted(standins)):
            token = f"g{i}"
            self._handlers[token] = standins[name]
            self._what[token] = f"the grader's {name}"
            tokens[name] = token
        return tokens

    def by_reference(self, value, where: str):
        """``value`` with every callable in it replaced by a FunctionRef."""
        if callable(value) and not isinstance(value, type):
            token = f"a{len(self._handlers)}"
            self._handlers[token] = value
            self._what[token] = f"the function the grader passed as {where}"
            return FunctionRef(token)
        if isinstance(value, list):
            return [self.by_reference(v, f"an element of {where}") for v in value]
        if isinstance(value, tuple):
            return tuple(self.by_reference(v, f"an element of {where}") for v in value)
        if isinstance(value, dict):
            return {k: self.by_reference(v, f"an element of {where}") for k, v in value.items()}
        return value

    def answer(self, message: dict, deadline: float) -> dict:
        """The reply to a callback. Raises AbortCall (from the handler) and HandlerTimeout."""
        token = message.get("fn")
        handler = self._handlers.get(token) if isinstance(token, str) else None
        args = message.get("args") if isinstance(message.get("args"), list) else []
        kwargs = message.get("kwargs") if isinstance(message.get("kwargs"), dict) else {}
        if handler is None:
            return {"kind": "reply", "error": {"type": "RuntimeError", "message": "this function is not available"}}
        guard = _Guard()
        try:
            with deadline_guard(deadline, guard):
                value = handler(*args, **kwargs)
        except _Expired:
            raise HandlerTimeout(self._what[token], describe_call(args, kwargs)) from None
        except Exception as exc:  # raised inside the student's code, with neutral text
            if guard.outer_fired():
                raise   # (the grading process's own alarm, whatever it raises, is not the student's)
            return {"kind": "reply", "error": neutral_error(exc, handler)}
        return {"kind": "reply", "value": value}


class _Guard:
    """Whether an alarm armed before the handler (not ours) went off while it ran."""

    def __init__(self) -> None:
        self.outer = False

    def outer_fired(self) -> bool:
        return self.outer and signal.getitimer(signal.ITIMER_REAL)[0] == 0


@contextlib.contextmanager
def deadline_guard(deadline: float, guard: _Guard | None = None):
    """Interrupt the block (``_Expired``) when ``time.monotonic()`` passes ``deadline``.

    Uses ITIMER_REAL/SIGALRM on the main thread, and gives an alarm that was already armed (a
    grading process's own budget) back afterwards, with the time that passed taken off; when
    that alarm is due first it is left alone. Off the main thread the block is not interrupted:
    it is checked when it returns."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _Expired()
    usable = threading.current_thread() is threading.main_thread() and hasattr(signal, "setitimer")
    outer_delay, outer_interval = signal.getitimer(signal.ITIMER_REAL) if usable else (0.0, 0.0)
    if not usable or (outer_delay and outer_delay <= remaining):
        if guard is not None:
            guard.outer = bool(outer_delay)
        yield
        if time.monotonic() > deadline:
            raise _Expired()
        return
    started = time.monotonic()

    def expire(signum, frame):
        # Again and again until the block is left: code that catches BaseException and goes on
        # is interrupted somewhere outside its try.
        signal.setitimer(signal.ITIMER_REAL, 0.005)
        raise _Expired()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, remaining)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer_delay:
            left = outer_delay - (time.monotonic() - started)
            signal.setitimer(signal.ITIMER_REAL, max(left, 1e-6), outer_interval)


def neutral_error(exc: BaseException, handler: Callable) -> dict:
    """An error for the student's code: its type (one of RAISABLE, else RuntimeError) and its
    message without the grader's function names, module names or file paths."""
    kind = type(exc).__name__
    try:
        text = str(exc)[:2000]
    except Exception:  # noqa: BLE001
        text = ""
    names = _names_of(handler)
    tb = exc.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        names.update({code.co_name, getattr(code, "co_qualname", code.co_name)})
        module = tb.tb_frame.f_globals.get("__name__", "")
        if isinstance(module, str):
            names.update(module.split("."))
        tb = tb.tb_next
    for name in sorted((n for n in names if isinstance(n, str) and len(n) >= 3 and not n.startswith("<")),
                       key=len, reverse=True):
        text = re.sub(rf"(?<![\w.]){re.escape(name)}(?!\w)", "function", text)
    text = re.sub(r"(?:[A-Za-z]:)?(?:/[\w.\-]+){2,}", "<path>", text)
    return {"type": kind if kind in RAISABLE else "RuntimeError", "message": text[:300]}


def _names_of(handler, depth: int = 0) -> set:
    names: set = set()
    if handler is None or depth > 4:
        return names
    for attr in ("__name__", "__qualname__", "name"):
        value = getattr(handler, attr, None)
        if isinstance(value, str):
            names.update(value.split("."))
    module = getattr(handler, "__module__", None)
    if isinstance(module, str):
        names.update(module.split("."))
    names.add(type(handler).__name__)
    for attr in ("target", "func", "__wrapped__", "__func__"):
        inner = getattr(handler, attr, None)
        if inner is not None and inner is not handler:
            names |= _names_of(inner, depth + 1)
    return names - {"function", "method", "builtin_function_or_method", "partial"}


def describe_call(args, kwargs) -> str:
    """``(array 1000x2, 2, rtol=-1, max_iter=1000000000000)``: what a handler was asked."""
    parts = [_short(a) for a in args[:8]] + [f"{k}={_short(v)}" for k, v in list(kwargs.items())[:8]]
    if len(args) > 8 or len(kwargs) > 8:
        parts.append("...")
    return "(" + ", ".join(parts) + ")"


def _short(value) -> str:
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and hasattr(value, "dtype"):
        return "array " + "x".join(str(n) for n in shape) if shape else repr(value.item())[:40]
    if isinstance(value, (list, tuple, dict)):
        return f"{type(value).__name__} of {len(value)}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
