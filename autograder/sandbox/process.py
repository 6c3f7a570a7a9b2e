"""The grader's side of the sandbox: one sandbox per submission, a fresh process per call.

``Sandbox.call`` runs one of the submission's functions and returns a ``CallOutcome``. The
sandbox (``launcher`` -> ``zygote``) is started once per submission; every call (and the load
probe that lists the functions, and every source lookup) runs in a process of its own that
starts from the same pristine state, loads the submission's kept statements, answers and is
killed with everything it started. A call that hangs, crashes, exhausts its memory or floods
its channel costs that call only, and nothing it leaves behind reaches a later call.

Every read and write on the grader's side has a deadline, every message a size cap, and every
grader-side callable a call asks for (``handlers``) runs under the call's deadline.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from ..blas import environment as one_blas_thread_environment
from ..loading import Submission
from .errors import CodecError, ValueTooLarge, megabytes
from .framing import Channel, ChannelClosed, ChannelTimeout, MessageTooLarge
from .handlers import Handlers, HandlerTimeout
from .policy import IsolationPolicy, Limits, child_sys_path, layout
from .zygote import CONTROL_BYTES, FROM_CHILD_BYTES, TO_CHILD_BYTES

__all__ = ["AbortCall", "CallOutcome", "IsolationPolicy", "Limits", "Sandbox"]

_PACKAGE_DIR = Path(__file__).resolve().parents[1]
_CONTROL_SECONDS = 10.0   # a zygote answers at once; this much means it is gone
_log = logging.getLogger("autograder.sandbox")
_logged_missing: set = set()
_MAX_NAMES = 10_000      # functions a probe may list
_MAX_PROBLEMS = 50       # load problems (and isolation items) a probe may report
_MAX_TEXT = 500          # characters of each


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
    tampered: list = field(default_factory=list)   # what the submission changed of autograd before the
                                                   # answer (its derivatives there are not autograd's)

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class _Ended(Exception):
    """A job ended without its answer; ``outcome`` says how."""

    def __init__(self, outcome: CallOutcome) -> None:
        super().__init__(outcome.message)
        self.outcome = outcome


class Sandbox:
    """Runs the functions of one submission, each call in a fresh isolated process.

    ``hidden`` (paths to hide) is accepted and ignored: the child sees an allowlist, so there is
    nothing to hide by name (kept until every caller has dropped it).
    """

    def __init__(self, submission: Submission, limits: Limits = Limits(),
                 policy: IsolationPolicy = IsolationPolicy(), hidden=()) -> None:
        self.submission = submission
        self.limits = limits
        self.policy = policy
        self.isolation: dict | None = None           # what the isolation achieved (held / missing)
        self.functions: set[str] = set()
        self.load_problems: list[list] = []
        self.load_failure: str | None = None
        self._proc: subprocess.Popen | None = None
        self._control: Channel | None = None
        self._workdir: str | None = None
        self._spec: dict | None = None
        self._spent = 0.0
        self._starts = 0
        self._jobs = 0
        self._sources: dict[str, str | None] = {}
        self._unanswered: list[int] = []   # jobs whose end the zygote has not confirmed yet
        self._memory_cgroup: str | None = None   # the sandbox's (the launcher's word), and its OOM kills so far
        self._oom_kills = 0

    # ----------------------------------------------------------------------------- lifecycle
    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        """Start the sandbox and probe the submission (idempotent while it runs)."""
        if self._control is not None:
            return
        if self._starts >= self.limits.max_restarts:
            self.load_failure = "the submission crashed its sandbox too many times"
            return
        self._starts += 1
        started = time.monotonic()
        try:
            self._launch()
        except _Ended as ended:
            self._stop()
            self.load_failure = ended.outcome.message
            return
        finally:
            self._spent += time.monotonic() - started
        probe = self._job({"kind": "probe"}, self.limits.load_seconds, None)
        if probe.status != "ok":
            self.load_failure = {"timeout": f"loading your definitions took more than {self.limits.load_seconds:.0f} s "
                                            "(is there a long computation in a class body, a decorator or a "
                                            "default argument?)"}.get(probe.status,
                                f"loading your definitions crashed the Python process ({probe.message})")
            self._stop()
            return
        loaded, answer, _ = probe.value
        report = answer.get("isolation") if isinstance(answer, dict) else None
        self.load_failure = None
        # (all of it comes from a process that ran the submission's code: bounded, whatever it sent)
        self.functions = {f for f in _as_list(loaded.get("functions"))[:_MAX_NAMES]
                          if isinstance(f, str) and len(f) <= 200}
        if not self.load_problems:
            self.load_problems = [[p[0], p[1], str(p[2])[:_MAX_TEXT]] for p in _as_list(loaded.get("problems"))
                                  [:_MAX_PROBLEMS] if isinstance(p, list) and len(p) == 3
                                  and all(isinstance(n, int) and not isinstance(n, bool) for n in p[:2])]
        if isinstance(report, dict):
            self._merge_isolation(report)
        self.isolation["seconds"] = round(time.monotonic() - started, 4)
        _log_weaker_isolation(self.isolation)

    def close(self) -> None:
        if self._control is not None:
            try:
                self._control.send({"kind": "exit"}, time.monotonic() + 0.5)
            except Exception:  # noqa: BLE001
                pass
        self._stop()
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
        instead: the derivative of the student's function, for checks that it is differentiable,
        computed with autograd as the zygote loaded it before any student code ran. When the
        submission changed autograd (``autograd_guard``) that call ends in an error of type
        ``Tampered``, and every outcome lists the changes seen in ``tampered``.
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
        handlers = Handlers()
        tokens = handlers.standins(dict(standins or {}))
        wire_args = [handlers.by_reference(a, f"argument {i + 1}") for i, a in enumerate(args)]
        wire_kwargs = {k: handlers.by_reference(v, f"keyword argument `{k}`") for k, v in (kwargs or {}).items()}
        limit = min(timeout or self.limits.call_seconds, remaining)
        if self.limits.max_call_seconds > 0:
            limit = min(limit, self.limits.max_call_seconds)
        request = {"kind": "call", "fn": name, "args": wire_args, "kwargs": wire_kwargs, "standins": tokens,
                   "seed": seed}
        if differentiate is not None:
            request["differentiate"] = int(differentiate)
        outcome = self._job(request, limit, handlers)
        if outcome.status == "ok":
            return self._outcome(outcome.value[1], outcome.seconds)
        return outcome

    def source(self, name: str) -> str | None:
        """The source text of the submission's function ``name`` (None when unavailable)."""
        self.start()
        if self.load_failure or name not in self.functions:
            return None
        if name not in self._sources:
            done = self._job({"kind": "source", "fn": name}, 10.0, None)
            text = done.value[1].get("source") if done.status == "ok" and isinstance(done.value[1], dict) else None
            self._sources[name] = text[:200_000] if isinstance(text, str) else None   # (the worker's cap)
        return self._sources[name]

    # ----------------------------------------------------------------------------- one job
    def _job(self, request: dict, limit: float, handlers: Handlers | None) -> CallOutcome:
        """Run one job in a fresh call process. ``ok`` outcomes carry (loaded, answer) as value."""
        started = time.monotonic()
        try:
            if self._control is None:
                self.start()
                if self._control is None:
                    return CallOutcome("unloadable", message=self.load_failure or "the sandbox did not start")
            self._jobs += 1
            job = self._jobs
            try:
                channel = self._spawn(job)
            except _Ended as ended:
                return ended.outcome
            try:
                answer = self._converse(channel, request, limit, handlers, started)
            except _Ended as ended:
                reason = self._end(job, wait=ended.outcome.status == "crash")
                if ended.outcome.status == "crash":
                    ended.outcome.message = reason or ended.outcome.message
                    self._explain_memory(ended.outcome)
                ended.outcome.seconds = time.monotonic() - started
                return ended.outcome
            except BaseException:   # (the grader's own interruption: the job still ends first)
                self._end(job, wait=False)
                raise
            finally:
                channel.close()
            self._end(job, wait=False)
            return CallOutcome("ok", value=answer, seconds=answer[2])
        finally:
            self._spent += time.monotonic() - started

    def _spawn(self, job: int) -> Channel:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._ended(None)   # (answers about earlier jobs: read, so they never pile up)
            for sock in (ours, theirs):
                for option in (socket.SO_SNDBUF, socket.SO_RCVBUF):
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, option, 1 << 20)
                    except OSError:
                        pass
            self._control.send({"kind": "spawn", "job": job}, time.monotonic() + _CONTROL_SECONDS,
                               fds=[theirs.fileno()])
        except (ChannelClosed, ChannelTimeout, CodecError, OSError):
            ours.close()
            self._stop()
            raise _Ended(CallOutcome("crash", message="the sandbox stopped")) from None
        finally:
            theirs.close()
        return Channel(ours, max_receive=FROM_CHILD_BYTES, max_send=TO_CHILD_BYTES)

    def _converse(self, channel: Channel, request: dict, limit: float, handlers: Handlers | None,
                  started: float) -> tuple:
        load_deadline = started + self.limits.load_seconds
        try:
            try:
                channel.send(request, load_deadline + limit)
            except ValueTooLarge as exc:   # the check's own arguments: a grader problem, say so
                raise _Ended(CallOutcome("error", error_type="GraderError",
                                         message=f"the arguments of this call are {megabytes(exc.size)}, more "
                                                 f"than the sandbox accepts ({megabytes(exc.limit)})")) from None
            loaded = channel.receive(load_deadline)
            if not isinstance(loaded, dict) or loaded.get("kind") != "loaded":
                raise CodecError("unexpected message")
        except ChannelTimeout:
            raise _Ended(CallOutcome("timeout", message=f"did not start: loading your definitions took more "
                                                        f"than {self.limits.load_seconds:.0f} s")) from None
        except (ChannelClosed, CodecError) as exc:
            raise _Ended(CallOutcome("crash", message=f"the sandbox process stopped before the call ({exc})")) from None
        call_started = time.monotonic()
        deadline = call_started + limit
        try:
            while True:
                message = channel.receive(deadline)
                if not isinstance(message, dict):
                    raise CodecError("unexpected message")
                if message.get("kind") != "callback" or handlers is None:
                    return loaded, message, time.monotonic() - call_started
                reply = handlers.answer(message, deadline)
                try:
                    channel.send(reply, deadline)
                except ValueTooLarge as exc:
                    channel.send({"kind": "reply", "error": {
                        "type": "ValueError", "message": f"the grader's answer would be {megabytes(exc.size)}, more "
                                                         f"than the {megabytes(exc.limit)} allowed (were the "
                                                         f"arguments far too large?)"}}, deadline)
        except AbortCall as stop:
            raise _Ended(CallOutcome("aborted", value=stop.verdict, message=stop.reason)) from None
        except HandlerTimeout as late:
            raise _Ended(CallOutcome("timeout", message=(
                f"did not return within {limit:.0f} s: the time ran out in grader-side work it asked for "
                f"({late.what}, called with {late.call})"))) from None
        except ChannelTimeout:
            raise _Ended(CallOutcome("timeout", message=f"did not return within {limit:.0f} s")) from None
        except MessageTooLarge as exc:
            raise _Ended(CallOutcome("error", error_type="ValueTooLarge", message=(
                f"it sent the grader {megabytes(exc.size)} at once, more than the {megabytes(exc.limit)} "
                f"accepted from a function"))) from None
        except CodecError:
            raise _Ended(CallOutcome("crash", message="the sandbox process sent a malformed message")) from None
        except ChannelClosed as exc:
            raise _Ended(CallOutcome("crash", message=f"the sandbox process stopped ({exc})")) from None

    def _end(self, job: int, wait: bool) -> str:
        """Have the zygote kill the job's process. The zygote takes the next job only once this
        one is gone with everything it started (no call overlaps the next); the grader waits for
        that only when it wants to know how the job ended (``wait``): the clean-up then runs
        while the grader checks the answer. Returns how it ended, in words."""
        if self._control is None:
            return ""
        try:
            self._control.send({"kind": "end", "job": job}, time.monotonic() + _CONTROL_SECONDS)
            self._unanswered.append(job)
            if not wait:
                return ""
            return self._ended(job)
        except (ChannelClosed, ChannelTimeout, CodecError):
            self._stop()
            return ""

    def _explain_memory(self, outcome: CallOutcome) -> None:
        """A crash the kernel caused because the sandbox's memory cgroup was full says so, once
        the memory is back (a call's /tmp is freed with its mount namespace, as it ends:
        measured, the cgroup held the sandbox's own 20 MB again when the outcome was back; the
        next call must not start short of memory)."""
        if self._memory_cgroup is None:
            return
        from .isolation import memory_used, oom_kills
        kills = oom_kills(self._memory_cgroup)
        if kills is None or kills <= self._oom_kills:
            return
        self._oom_kills = kills
        limit = self.limits.sandbox_mb()
        outcome.error_type = "MemoryError"
        outcome.message = (f"it ran out of memory: the kernel stopped it when the sandbox's processes held {limit} MB "
                           f"together (files in /tmp included)")
        deadline = time.monotonic() + 2.0
        while (memory_used(self._memory_cgroup) or 0) > limit * 2**19 and time.monotonic() < deadline:
            time.sleep(0.02)

    def _ended(self, job: int | None) -> str:
        """Read the zygote's answers to ``end`` up to the one for ``job`` (None: those already
        there). A clean-up that takes too long takes the sandbox down."""
        reason = ""
        while self._unanswered:
            if job is None:
                import select
                if not select.select([self._control.fileno()], [], [], 0)[0]:
                    return ""
            answer = self._control.receive(time.monotonic() + _CONTROL_SECONDS)
            if not isinstance(answer, dict) or answer.get("kind") != "ended":
                raise CodecError("unexpected message")
            done = self._unanswered.pop(0)
            status = answer.get("status")
            reason = exit_reason(status) if isinstance(status, int) else ""
            if done == job:
                return reason
        return reason

    @staticmethod
    def _outcome(message: dict, seconds: float) -> CallOutcome:
        """The outcome a call's last message describes. Every text in it is the submission's to
        choose (its code can write the message itself): each is cut to what feedback shows."""
        kind = message.get("kind")
        text = lambda key, cap=20000: str(message.get(key, ""))[:cap]  # noqa: E731
        tampered = [str(t)[:300] for t in _as_list(message.get("tampered"))[:8]]
        if kind == "result":
            return CallOutcome("ok", value=message.get("value"), output=text("output"),
                               mutated=[str(m)[:200] for m in _as_list(message.get("mutated"))[:10]],
                               warnings=[str(w)[:500] for w in _as_list(message.get("warnings"))[:5]],
                               seconds=seconds, tampered=tampered)
        if message.get("type") == "MissingFunction":
            return CallOutcome("missing", message=text("message"), seconds=seconds)
        frames = [[str(f[0])[:200], f[1] if isinstance(f[1], int) else 0, str(f[2])[:200], str(f[3])[:300]]
                  for f in _as_list(message.get("frames"))[-6:] if isinstance(f, list) and len(f) == 4]
        return CallOutcome("error", error_type=text("type", 200), message=text("message"), frames=frames,
                           output=text("output"), seconds=seconds, tampered=tampered)

    # ----------------------------------------------------------------------------- starting
    def _launch(self) -> None:
        if self._workdir:
            shutil.rmtree(self._workdir, ignore_errors=True)
        if os.geteuid() == 0 and sys.platform.startswith("linux"):
            from . import isolation
            isolation.remove_stale_cgroups()
        self._workdir = tempfile.mkdtemp(prefix="autograder-")
        spec = self._make_spec(self._workdir)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        debug = os.environ.get("AUTOGRADER_SANDBOX_DEBUG") == "1"
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-s", "-m", "autograder.sandbox.launcher", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), cwd=self._workdir, env=_launcher_environment(self._workdir),
                stdin=subprocess.DEVNULL, stdout=None if debug else subprocess.DEVNULL,
                stderr=None if debug else subprocess.DEVNULL, start_new_session=True)
        finally:
            theirs.close()
        self._control = Channel(ours, max_receive=CONTROL_BYTES, max_send=CONTROL_BYTES, json=True)
        deadline = time.monotonic() + self.limits.load_seconds
        try:
            self._control.send({"kind": "policy", "spec": spec}, deadline)
            built = self._control.receive(deadline)
            if not isinstance(built, dict) or built.get("kind") != "isolation":
                raise CodecError("unexpected message")
            spec.update({k: v for k, v in built.get("spec", {}).items() if k in ("namespaces", "nproc")})
            self._memory_cgroup = built.get("memory_cgroup") if isinstance(built.get("memory_cgroup"), str) else None
            self._oom_kills = 0
            self.isolation = {"held": [], "missing": []}
            self._merge_isolation(built.get("isolation", {}))
            # What every call process is a copy of: nothing of the host in it it does not need
            # (not the grader's pid: with the machine's fork count it would date the sandbox).
            guest_spec = {k: v for k, v in spec.items() if k not in ("parent",)}
            if guest_spec["namespaces"]:
                guest_spec.pop("workdir", None)
            self._control.send({"kind": "load", "spec": guest_spec, "submission": self.submission.to_message()},
                               deadline)
            ready = self._control.receive(deadline)
            if not isinstance(ready, dict) or ready.get("kind") != "ready":
                raise CodecError("unexpected message")
            self._merge_isolation(ready.get("isolation", {}))
        except ChannelTimeout:
            raise _Ended(CallOutcome("unloadable", message=(
                f"the sandbox did not start within {self.limits.load_seconds:.0f} s"))) from None
        except (ChannelClosed, CodecError, OSError) as exc:
            raise _Ended(CallOutcome("unloadable", message=(
                f"the sandbox did not start ({self._exit_reason() or exc})"))) from None
        self._spec = spec

    def _make_spec(self, workdir: str) -> dict:
        policy, limits = self.policy, self.limits
        namespaces = policy.wants_namespaces() and sys.platform.startswith("linux")
        view = layout(policy)
        return {
            "namespaces": namespaces, "parent": os.getpid(), "workdir": workdir,
            "layout": view, "sys_path": view["sys_path"] if namespaces else child_sys_path(),
            "python": sys.executable, "env": _child_environment(namespaces, workdir),
            "memory_mb": limits.memory_mb, "file_mb": limits.file_mb,
            "cpu_seconds": int(limits.total_seconds + limits.load_seconds + 30),
            "processes": policy.processes, "sandbox_memory_mb": limits.sandbox_mb(),
            "seccomp": policy.seccomp,
        }

    def _merge_isolation(self, report: dict) -> None:
        """Add a report's items (the probe's comes from a process that ran the submission's code:
        at most ``_MAX_PROBLEMS`` items of ``_MAX_TEXT`` characters are kept)."""
        if self.isolation is None:
            self.isolation = {"held": [], "missing": []}
        for key in ("held", "missing"):
            for item in _as_list(report.get(key)) if isinstance(report, dict) else []:
                if isinstance(item, str) and item not in self.isolation[key] \
                        and len(self.isolation[key]) < _MAX_PROBLEMS:
                    self.isolation[key].append(item[:_MAX_TEXT])

    def _stop(self) -> None:
        self._unanswered = []
        control, self._control = self._control, None
        if control is not None:
            control.close()
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # the launcher and the zygote (and so every call)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass
        if os.geteuid() == 0 and sys.platform.startswith("linux"):   # (the launcher's cgroups: only as root)
            from . import isolation
            isolation.remove_cgroups(proc.pid)   # (not left in the grader's own cgroup until the next start)
        self._memory_cgroup = None

    def _exit_reason(self) -> str:
        if self._proc is None:
            return ""
        try:
            code = self._proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return ""
        return exit_reason(code if code >= 0 else -code, signalled=code < 0)


def _as_list(value) -> list:
    return value if isinstance(value, list) else []


def exit_reason(status: int, signalled: bool | None = None) -> str:
    """Plain words for a wait status (or, with ``signalled``, a signal number / exit code)."""
    if signalled is None:
        if os.WIFSIGNALED(status):
            signalled, status = True, os.WTERMSIG(status)
        else:
            signalled, status = False, os.WEXITSTATUS(status)
    if signalled:
        try:
            name = signal.Signals(status).name
        except ValueError:
            name = f"signal {status}"
        return {
            "SIGKILL": "the process was killed (often: it ran out of memory)",
            "SIGXCPU": "the process used up its CPU time",
            "SIGSEGV": "the process crashed with a segmentation fault",
            "SIGXFSZ": "the process wrote a file larger than allowed",
            "SIGSYS": "the process made a forbidden system call",
        }.get(name, f"the process was stopped by {name}")
    return f"the process exited with status {status} (os._exit or a crash)"


def _launcher_environment(workdir: str) -> dict:
    # Only the autograder package goes on the launcher's path (through a link), never the folder
    # that holds it: in a checkout that folder also holds the reference solutions.
    link_root = Path(workdir) / ".path"
    link_root.mkdir()
    (link_root / "autograder").symlink_to(_PACKAGE_DIR, target_is_directory=True)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(link_root), "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1", "LANG": "C.UTF-8"}


def _child_environment(namespaces: bool, workdir: str) -> dict:
    """The zygote's (and so every call's) whole environment: nothing about the grader, the
    course or the check."""
    tmp = "/tmp" if namespaces else os.path.join(workdir, "tmp")
    debug = {"AUTOGRADER_SANDBOX_DEBUG": "1"} if os.environ.get("AUTOGRADER_SANDBOX_DEBUG") == "1" else {}
    return {**debug, "PATH": "/usr/bin:/bin", "HOME": tmp, "TMPDIR": tmp, "MPLCONFIGDIR": tmp, "MPLBACKEND": "Agg",
            "LANG": "C.UTF-8", "PYTHONUTF8": "1", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONWARNINGS": "ignore", **one_blas_thread_environment()}


def _log_weaker_isolation(report: dict) -> None:
    missing = [m for m in report.get("missing", []) if isinstance(m, str)]
    new = [m for m in missing if m not in _logged_missing]
    if new:
        _logged_missing.update(new)
        _log.warning("sandbox isolation is weaker on this machine: %s", "; ".join(new))
