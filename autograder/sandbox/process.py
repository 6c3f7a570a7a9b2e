"""The grader's side of the sandbox: a child process per submission, with limits.

``Sandbox.call`` runs one of the submission's functions in the child and returns a
``CallOutcome``. A call that hangs, crashes the child, exhausts its memory or floods the pipe
costs that call only: the child's whole process group is killed and the next call starts a fresh
child that reloads the submission.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from ..loading import Submission
from .codec import CodecError, FunctionRef
from .framing import Channel, ChannelClosed, ChannelTimeout

_PACKAGE_DIR = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Limits:
    """Resource limits for one submission's child process."""

    call_seconds: float = 20.0       # wall clock for one call (checks may ask for less or more)
    load_seconds: float = 30.0       # wall clock for loading the definitions
    total_seconds: float = 300.0     # wall clock for all calls of one submission together
    memory_mb: int = 2048            # address space of the child
    file_mb: int = 16                # largest file the child may write
    max_restarts: int = 20           # fresh children per submission before giving up
    max_call_seconds: float = 0.0    # when > 0: a cap on every call, whatever a check asks for


class AbortCall(BaseException):
    """Raised by a grader-side stand-in to stop the student's call at once: the check already has
    its verdict (a loop ran past max_iter, a restart went on after it should have stopped).

    A ``BaseException``, so that the student's ``except Exception`` cannot swallow it in-process;
    in the sandbox the student's code never sees it: the call is ended from outside.
    ``verdict`` is anything the check wants back in ``CallOutcome.value``.
    """

    def __init__(self, reason: str, verdict: object = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.verdict = verdict


@dataclass
class CallOutcome:
    """What happened when a student's function was called."""

    status: str                      # "ok", "error", "timeout", "crash", "missing", "budget", "unloadable",
                                     # "aborted" (a stand-in raised AbortCall: see its reason in message)
    value: object = None
    error_type: str = ""
    message: str = ""
    frames: list = field(default_factory=list)   # [filename, line, function, source line]
    output: str = ""
    mutated: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Sandbox:
    """Runs the functions of one submission in an isolated child process."""

    def __init__(self, submission: Submission, limits: Limits = Limits(), hidden: Sequence[str] = ()) -> None:
        self.submission = submission
        self.limits = limits
        self.hidden = tuple(str(h) for h in hidden)   # more paths to hide from the child (see isolation)
        self.isolation: dict | None = None           # what the child's isolation achieved
        self.functions: set[str] = set()
        self.load_problems: list[list] = []
        self.load_failure: str | None = None
        self._proc: subprocess.Popen | None = None
        self._channel: Channel | None = None
        self._workdir: str | None = None
        self._spent = 0.0
        self._starts = 0

    # ----------------------------------------------------------------------------- lifecycle
    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Start the child and load the submission (idempotent while the child lives)."""
        if self._proc is not None:
            return
        if self._starts >= self.limits.max_restarts:
            self.load_failure = "the submission crashed its sandbox too many times"
            return
        self._starts += 1
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
        _sweep_cgroups()
        self._workdir = tempfile.mkdtemp(prefix="autograder-")
        to_child_r, to_child_w = os.pipe()
        from_child_r, from_child_w = os.pipe()
        limits = self.limits
        cpu = int(limits.total_seconds + limits.load_seconds + 30)
        cmd = [sys.executable, "-m", "autograder.sandbox.child", str(to_child_r), str(from_child_w),
               str(limits.memory_mb), str(cpu), str(limits.file_mb),
               json.dumps(isolation_policy(self._workdir, self.hidden))]
        self._proc = subprocess.Popen(
            cmd, pass_fds=(to_child_r, from_child_w), cwd=self._workdir, env=_child_environment(self._workdir),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        os.close(to_child_r)
        os.close(from_child_w)
        self._channel = Channel(from_child_r, to_child_w)
        started = time.monotonic()
        try:
            self._channel.send({"kind": "load", **self.submission.to_message()})
            reply = self._channel.receive(time.monotonic() + limits.load_seconds)
        except ChannelTimeout:
            self._kill()
            self.load_failure = (f"loading your definitions took more than {limits.load_seconds:.0f} s "
                                 "(is there a long computation in a class body, a decorator or a default argument?)")
            return
        except (ChannelClosed, CodecError) as exc:
            self._kill()
            self.load_failure = f"loading your definitions crashed the Python process ({self._exit_reason() or exc})"
            return
        finally:
            self._spent += time.monotonic() - started
        if not isinstance(reply, dict) or reply.get("kind") != "loaded":
            self._kill()
            self.load_failure = "loading your definitions did not complete"
            return
        self.load_failure = None
        self.functions = {f for f in reply.get("functions", []) if isinstance(f, str)}
        if isinstance(reply.get("isolation"), dict):
            self.isolation = reply["isolation"]
            _log_weaker_isolation(self.isolation)
        if not self.load_problems:
            self.load_problems = [p for p in reply.get("problems", []) if isinstance(p, list) and len(p) == 3]

    def close(self) -> None:
        if self._proc is not None:
            try:
                self._channel.send({"kind": "exit"})
                self._proc.wait(timeout=0.5)  # let the nanny clean up after the worker
            except Exception:
                pass
            self._kill()
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    # ----------------------------------------------------------------------------- calls
    def call(self, name: str, args: tuple = (), kwargs: Mapping | None = None, *,
             standins: Mapping[str, Callable] | None = None, seed: int = 0,
             timeout: float | None = None, differentiate: int | None = None) -> CallOutcome:
        """Call the submission's ``name`` with ``args``.

        ``standins`` maps names of the submission's globals to callables of the grader's that
        replace them during the call. Callables inside ``args`` are passed by reference too.
        With ``differentiate=i`` the child returns autograd's ``elementwise_grad(name, i)(*args)``
        instead: the derivative of the student's function, for checks that it is differentiable.
        """
        remaining = self.limits.total_seconds - self._spent
        if remaining <= 0:
            return CallOutcome("budget", message=f"the submission used up its total time budget "
                                                 f"of {self.limits.total_seconds:.0f} s")
        self.start()
        if self.load_failure:
            return CallOutcome("unloadable", message=self.load_failure)
        if name not in self.functions:
            return CallOutcome("missing", message=f"no function named {name} is defined")
        handlers: dict[str, Callable] = dict(standins or {})
        wire_args = [_by_reference(a, handlers) for a in args]
        wire_kwargs = {k: _by_reference(v, handlers) for k, v in (kwargs or {}).items()}
        limit = min(timeout or self.limits.call_seconds, remaining)
        if self.limits.max_call_seconds > 0:
            limit = min(limit, self.limits.max_call_seconds)
        started = time.monotonic()
        deadline = started + limit
        try:
            request = {"kind": "call", "fn": name, "args": wire_args, "kwargs": wire_kwargs,
                       "standins": sorted(standins or {}), "seed": seed}
            if differentiate is not None:
                request["differentiate"] = int(differentiate)
            self._channel.send(request)
            while True:
                message = self._channel.receive(deadline)
                if not isinstance(message, dict):
                    raise CodecError("unexpected message")
                if message.get("kind") == "callback":
                    self._answer_callback(message, handlers)
                    continue
                return self._outcome(message, time.monotonic() - started)
        except AbortCall as stop:
            self._kill()
            return CallOutcome("aborted", value=stop.verdict, message=stop.reason,
                               seconds=time.monotonic() - started)
        except ChannelTimeout:
            self._kill()
            return CallOutcome("timeout", message=f"did not return within {limit:.0f} s",
                               seconds=time.monotonic() - started)
        except (ChannelClosed, CodecError) as exc:
            reason = self._exit_reason()
            self._kill()
            return CallOutcome("crash", message=reason or f"the sandbox process stopped ({exc})",
                               seconds=time.monotonic() - started)
        finally:
            self._spent += time.monotonic() - started

    def source(self, name: str) -> str | None:
        """The source text of the submission's function ``name`` (None when unavailable)."""
        self.start()
        if self.load_failure or name not in self.functions:
            return None
        try:
            self._channel.send({"kind": "source", "fn": name})
            reply = self._channel.receive(time.monotonic() + 10)
        except (ChannelTimeout, ChannelClosed, CodecError):
            self._kill()
            return None
        text = reply.get("source") if isinstance(reply, dict) else None
        return text if isinstance(text, str) else None

    def _answer_callback(self, message: dict, handlers: Mapping[str, Callable]) -> None:
        name = message.get("fn")
        handler = handlers.get(name)
        args = message.get("args") if isinstance(message.get("args"), list) else []
        kwargs = message.get("kwargs") if isinstance(message.get("kwargs"), dict) else {}
        if handler is None:
            self._channel.send({"kind": "reply", "error": {
                "type": "RuntimeError", "message": f"{name} is not available here"}})
            return
        try:
            value = handler(*args, **kwargs)
        except Exception as exc:  # the stand-in's error is raised inside the student's code
            self._channel.send({"kind": "reply", "error": {"type": type(exc).__name__, "message": str(exc)[:1000]}})
            return
        self._channel.send({"kind": "reply", "value": value})

    @staticmethod
    def _outcome(message: dict, seconds: float) -> CallOutcome:
        kind = message.get("kind")
        text = lambda key: str(message.get(key, ""))[:20000]  # noqa: E731
        if kind == "result":
            return CallOutcome("ok", value=message.get("value"), output=text("output"),
                               mutated=[str(m) for m in message.get("mutated", [])][:10],
                               warnings=[str(w) for w in message.get("warnings", [])][:5], seconds=seconds)
        if message.get("type") == "MissingFunction":
            return CallOutcome("missing", message=text("message"), seconds=seconds)
        frames = [f for f in message.get("frames", []) if isinstance(f, list) and len(f) == 4]
        return CallOutcome("error", error_type=text("type"), message=text("message"), frames=frames,
                           output=text("output"), seconds=seconds)

    # ----------------------------------------------------------------------------- internals
    def _exit_reason(self) -> str:
        if self._proc is None:
            return ""
        try:
            code = self._proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return ""
        if code < 0:
            sig = signal.Signals(-code).name
            return {
                "SIGKILL": "the process was killed (often: it ran out of memory)",
                "SIGXCPU": "the process used up its CPU time",
                "SIGSEGV": "the process crashed with a segmentation fault",
                "SIGXFSZ": "the process wrote a file larger than allowed",
            }.get(sig, f"the process was stopped by {sig}")
        return f"the process exited with status {code} (os._exit or a crash)"

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if self._channel is not None:
            self._channel.close()
            self._channel = None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the child and anything it started
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass


def _by_reference(value, handlers: dict):
    """Replace callables in an argument by FunctionRefs the child can call back."""
    if callable(value) and not isinstance(value, type):
        name = f"argument:{len(handlers)}:{getattr(value, '__name__', 'function')}"
        handlers[name] = value
        return FunctionRef(name)
    if isinstance(value, list):
        return [_by_reference(v, handlers) for v in value]
    if isinstance(value, tuple):
        return tuple(_by_reference(v, handlers) for v in value)
    if isinstance(value, dict):
        return {k: _by_reference(v, handlers) for k, v in value.items()}
    return value


def _child_environment(workdir: str) -> dict:
    # Only the autograder package goes on the child's path (through a link), never the folder
    # that holds it: in a checkout that folder also holds the reference solutions.
    link_root = Path(workdir) / ".path"
    link_root.mkdir()
    (link_root / "autograder").symlink_to(_PACKAGE_DIR, target_is_directory=True)
    keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "VIRTUAL_ENV")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update({
        "HOME": workdir, "TMPDIR": workdir, "MPLCONFIGDIR": workdir, "MPLBACKEND": "Agg",
        "PYTHONPATH": str(link_root), "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
        "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
        "PYTHONWARNINGS": "ignore",
    })
    return env


# --------------------------------------------------------------------------------- isolation policy
_log = logging.getLogger("autograder.sandbox")
_logged_missing: set = set()
_cgroup_base: list = []


def hidden_by_default() -> list[str]:
    """Paths no submission may see: the course checkout (its reference ``solutions/``, hidden
    tests, corpora, git history, nbgrader's gradebook and submissions), every loaded reference
    module's folder, the grader's home, and ``$AUTOGRADER_HIDE`` (``os.pathsep``-separated).
    What Python needs below them (its prefix, the autograder package) stays visible."""
    hidden = []
    try:
        from ..engine.reference import course_root
        root = course_root()
    except Exception:  # pragma: no cover - a broken checkout must not stop grading
        root = None
    if root is not None:
        hidden.append(str(root))
    solutions = sys.modules.get("solutions")
    hidden.extend(str(Path(p).parent) for p in getattr(solutions, "__path__", []))
    home = os.path.expanduser("~")
    if home and home != "/":
        hidden.append(home)
    hidden.extend(p for p in os.environ.get("AUTOGRADER_HIDE", "").split(os.pathsep) if p)
    return hidden


def isolation_policy(workdir: str, hidden: Sequence[str] = ()) -> dict:
    """What the child's ``isolation.prepare`` is asked to do. ``AUTOGRADER_SANDBOX=plain`` turns
    the namespaces off (debugging; weaker: see isolation.fallback)."""
    hide = hidden_by_default() + [str(h) for h in hidden]
    return {
        "namespaces": os.environ.get("AUTOGRADER_SANDBOX", "isolated") != "plain",
        "workdir": workdir, "package": str(_PACKAGE_DIR), "scratch": tempfile.gettempdir(),
        "hide": sorted(set(hide)), "readonly": [str(_PACKAGE_DIR), os.getcwd()],
        "pids": 64, "tmp_mb": 64, "parent": os.getpid(),
    }


def _log_weaker_isolation(report: dict) -> None:
    missing = [m for m in report.get("missing", []) if isinstance(m, str)]
    new = [m for m in missing if m not in _logged_missing]
    if new:
        _logged_missing.update(new)
        _log.warning("sandbox isolation is weaker on this machine: %s", "; ".join(new))


def _sweep_cgroups() -> None:
    """Remove the pids cgroups of sandbox children that have exited (see isolation)."""
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        return
    from . import isolation
    if not _cgroup_base:
        _cgroup_base.append(isolation.pids_cgroup_base())
    if _cgroup_base[0]:
        isolation.remove_stale_cgroups(_cgroup_base[0])
