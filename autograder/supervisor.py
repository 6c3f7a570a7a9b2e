"""Grading processes: one per submission, started from a preloaded zygote, supervised.

Every grading (CLI batch, Dask task, nbgrader's autograde step, the Gradescope runner, the
instructor's ``grade()``) runs ``grading.grade_submission`` in a process of its own::

    supervisor (this process)             runs up to ``jobs`` gradings at once, one budget each
      └─ zygote                           python with the grader preloaded, single-threaded;
           │                              exits (killing its children) when the supervisor goes
           └─ grading process             fork of the zygote, one per submission: the checks on
                └─ sandbox children       its main thread, RLIMIT_AS, dies with the zygote

The grading process streams every finished check's result to the supervisor. When it dies (its
wall-clock budget used up, the host's OOM killer, a crash) the finished checks keep their points
and the supervisor decides what happens to the rest:

* budget used up: the checks not finished are reported as not run, with the reason;
* any other death concerns the check that was running, and nothing else: the first time it may
  have been external (the OOM killer picks the largest process, not the guilty one; an
  administrator), so the remaining checks go on in a fresh process, that check included. A check
  during which the grading process dies twice fails with the reason; from then on the submission
  has shown that it kills its grading process, and a death during any other of its checks fails
  that check at once. The other checks go on in a fresh process each time; after ``MAX_DEATHS``
  deaths the remaining checks are reported as not run.

A death is charged only to its own submission: every other one has a process of its own. The
zygote itself runs no submission's code; if it dies, the gradings in flight are restarted in a
new one without charging them.

Stopping: ``Supervisor.close()`` (called on every way out of ``run``) kills the grading processes
and ends the zygote; a supervisor that is killed outright closes the zygote's socket, which
ends it and, through the parent-death signal, every grading process and its sandboxes.
"""

from __future__ import annotations

import atexit
import collections
import ctypes
import importlib
import json
import os
import pickle
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Callable

from . import blas

MAX_DEATHS = 10              # grading-process deaths per submission before the rest is not run
EXIT_WAIT_SECONDS = 5.0      # how long an ended grading process's exit status may take to arrive
ZYGOTE_RESTARTS = 5          # zygotes that died under a supervisor before it gives up
_FRAME = struct.Struct(">I")
_MAX_FRAME = 256 * 2**20     # a record with pictures is well below 1 MiB
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
GRADER_NAME = b"ag-grader"   # /proc/<pid>/comm of grading processes (tests find them by it)
ZYGOTE_NAME = b"ag-zygote"


@dataclass(frozen=True)
class Request:
    """One submission to grade (everything a grading process needs; no paths to read)."""

    assignment: str
    label: str
    data: bytes | None = None             # the file's content; None: ``cells`` or ``unreadable``
    suffix: str = ".ipynb"
    cells: tuple | None = None            # or the code cells' sources
    unreadable: str | None = None         # why the file could not be read (then nothing is graded)
    only: tuple | None = None
    figures: bool = False
    hidden: tuple = ()
    limits: dict = field(default_factory=dict)


class Stopped(KeyboardInterrupt):
    """The run was asked to stop (a signal, a cancelled Dask task)."""

    def __init__(self, signum: int | None = None, reason: str = "") -> None:
        super().__init__(reason or (signal.Signals(signum).name if signum else "stopped"))
        self.signum = signum


# ------------------------------------------------------------------------------------ framing
def _frame(message: dict) -> bytes:
    body = json.dumps(message).encode()
    return _FRAME.pack(len(body)) + body


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _prctl(option: int, value) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


# ------------------------------------------------------------------------------------ the grading process
def _grading_process(zygote: int, request_fd: int, result_fd: int) -> None:
    """Body of a grading process (a fork of the zygote). Never returns."""
    code = 1
    try:
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
            signal.signal(sig, signal.SIG_DFL if sig != signal.SIGPIPE else signal.SIG_IGN)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != zygote:      # the zygote is gone already: so is everyone who wanted this
            os._exit(1)
        _prctl(PR_SET_NAME, GRADER_NAME)
        with os.fdopen(request_fd, "rb") as f:
            request: Request = pickle.load(f)
            skip = pickle.load(f)
            scratch = pickle.load(f)
        # Its temporary files (the sandboxes' work folders) in a folder its supervisor removes
        # when it ends, however it ends.
        tempfile.tempdir = scratch
        os.environ["TMPDIR"] = scratch
        from .grading import Limits, grade_submission
        limits = Limits.from_dict(request.limits)
        _limit_memory(limits.grader_memory_mb)

        def send(message: dict) -> None:
            _write_all(result_fd, _frame(message))

        def loaded(error, notes) -> None:
            send({"kind": "loaded", "error": error, "notes": notes})

        def finished(test) -> None:
            send({"kind": "result", "test": test.to_dict()})

        source = request.cells if request.cells is not None else request.data
        if request.unreadable is not None or source is None:
            from .loading import Submission
            source = Submission(path=request.label, error=f"cannot read the submission: {request.unreadable}")
        graded = grade_submission(source, request.assignment, suffix=request.suffix, label=request.label,
                                  only=request.only, limits=limits, figures=request.figures,
                                  hidden=request.hidden, skip={tuple(k) for k in skip},
                                  on_loaded=loaded, on_result=finished)
        payload = graded.result.to_dict()
        payload["notes"] = list(graded.result.notes)
        send({"kind": "done", "result": payload, "figures": graded.figures, "isolation": graded.isolation,
              "internal_error": graded.internal_error, "peak_mb": _peak_mb()})
        code = 0
    except BrokenPipeError:
        pass                            # the supervisor is gone
    except BaseException as exc:        # noqa: BLE001 - e.g. no reference here: say so, then end
        try:
            _write_all(result_fd, _frame({"kind": "failed", "error": f"{type(exc).__name__}: {exc}",
                                          "traceback": traceback.format_exc(limit=8)}))
        except OSError:
            pass
    finally:
        os._exit(code)


def _limit_memory(megabytes: int) -> None:
    """RLIMIT_AS on the grading process (the soft limit: the sandbox children it starts set their own)."""
    if not megabytes:
        return
    import resource
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        soft = megabytes * 2**20
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    except (ValueError, OSError):
        pass


def _peak_mb() -> float | None:
    """The grading process's peak address space (what RLIMIT_AS limits), in MB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmPeak:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except (OSError, ValueError):
        pass
    return None


# ------------------------------------------------------------------------------------ the zygote
def zygote_main(sock_fd: int, preload: list[str], idle_seconds: float | None) -> None:
    """The zygote: preload the grader, then fork a grading process per request."""
    _prctl(PR_SET_NAME, ZYGOTE_NAME)
    blas.force_one_thread()   # before numpy: forks of a multi-threaded BLAS are not safe
    os.environ.setdefault("MPLBACKEND", "Agg")
    _preload(preload)
    sock = socket.socket(fileno=sock_fd)
    sig_r, sig_w = os.pipe()
    os.set_blocking(sig_r, False)
    os.set_blocking(sig_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(sig_w)
    children: set[int] = set()
    idle_since = time.monotonic()

    def send(message: dict) -> None:
        try:
            sock.sendall(_frame(message))
        except OSError:
            pass

    while True:
        timeout = None
        if idle_seconds and not children:
            timeout = max(0.0, idle_since + idle_seconds - time.monotonic())
            if timeout == 0:
                break
        ready, _, _ = select.select([sock, sig_r], [], [], timeout)
        if sig_r in ready:
            try:
                os.read(sig_r, 4096)
            except BlockingIOError:
                pass
            while children:
                try:
                    pid, status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    break
                if pid == 0:
                    break
                children.discard(pid)
                send({"op": "exited", "pid": pid, "code": os.waitstatus_to_exitcode(status)})
                if not children:
                    idle_since = time.monotonic()
        if sock in ready:
            try:
                data, fds, _, _ = socket.recv_fds(sock, 65536, 4)
            except OSError:
                data, fds = b"", []
            if not data:
                break           # the supervisor is gone
            message = json.loads(data[_FRAME.size:])
            if message["op"] == "fork":
                request_fd, result_fd = fds
                pid = os.fork()
                if pid == 0:
                    sock.close()
                    signal.set_wakeup_fd(-1)
                    os.close(sig_r)
                    os.close(sig_w)
                    _grading_process(os.getppid(), request_fd, result_fd)
                os.close(request_fd)
                os.close(result_fd)
                children.add(pid)
                send({"op": "forked", "id": message["id"], "pid": pid})
            elif message["op"] == "kill" and message["pid"] in children:
                try:
                    os.kill(message["pid"], signal.SIGKILL)
                except ProcessLookupError:
                    pass
            else:
                for fd in fds:
                    os.close(fd)
    for pid in list(children):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for pid in list(children):
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
    os._exit(0)


def _preload(names: list[str]) -> None:
    """Import what every grading process needs, once (a fork then starts in milliseconds)."""
    import numpy  # noqa: F401
    import scipy.linalg  # noqa: F401
    import scipy.special  # noqa: F401
    from . import grading  # noqa: F401
    from .engine import runner  # noqa: F401
    from .engine.executors import SandboxExecutor  # noqa: F401
    for name in names:
        if name == "figures":
            try:
                import matplotlib.backends.backend_agg  # noqa: F401
                import matplotlib.figure  # noqa: F401
                from .reporting import figures  # noqa: F401
            except ImportError:
                pass
            continue
        try:
            from .assignments import get_assignment
            get_assignment(name)
            grading.reference_for(name)
            import importlib.util
            if importlib.util.find_spec(f"autograder.assignments.{name}.figures") is not None:
                importlib.import_module(f"autograder.assignments.{name}.figures")
        except Exception:  # noqa: BLE001 - the grading process reports what is missing
            pass


# ------------------------------------------------------------------------------------ the supervisor
@dataclass
class _Attempt:
    """One grading process of a grading."""

    id: int
    result_r: int
    pid: int | None = None
    buffer: bytearray = field(default_factory=bytearray)
    eof_at: float | None = None
    code: int | None = None          # exit code (negative: killed by that signal); None: not known yet
    killed_for: str | None = None    # "budget" when the supervisor killed it
    kill_wanted: bool = False
    kill_sent: bool = False
    exited_at: float | None = None
    done: dict | None = None
    failed: dict | None = None
    scratch: str | None = None       # its temporary folder (removed when it has ended)


class _Grading:
    """The state of one submission's grading, across its grading processes."""

    def __init__(self, index: int, request: Request, expected: list[tuple[str, str]], budget: float) -> None:
        self.index, self.request, self.expected, self.budget = index, request, expected, budget
        self.results: dict[tuple, dict] = {}
        self.charged: dict[tuple, str] = {}
        self.deaths: list[dict] = []
        self.load: dict | None = None
        self.deadline: float | None = None
        self.started: float | None = None
        self.attempts = 0
        self.peak_mb = None
        self.guilty = False       # a check of this submission killed its grading process twice

    def skip(self) -> list[tuple]:
        return list(self.results) + list(self.charged)

    def next_check(self) -> tuple | None:
        done = set(self.results) | set(self.charged)
        return next((key for key in self.expected if key not in done), None)


def expected_checks(assignment_id: str, only) -> list[tuple[str, str]]:
    """(function, check) in the order the runner reports them."""
    from .assignments import get_assignment
    assignment = get_assignment(assignment_id)
    return [(c.task, c.name) for task in assignment.tasks if not only or task.name in only
            for c in assignment.checks_for(task.name)]


class Supervisor:
    """Runs gradings in grading processes forked from one zygote (see the module docstring)."""

    def __init__(self, *, preload=(), idle_seconds: float | None = None, log: Callable = None) -> None:
        self.preload = list(preload)
        self.idle_seconds = idle_seconds
        self.log = log or (lambda text: None)
        self._zygote: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._next_id = 0
        self._zygote_deaths = 0

    # ----------------------------------------------------------------------------- the zygote
    def _start_zygote(self) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ, **blas.environment(), MPLBACKEND="Agg")
        code = ("import sys, json; sys.path[:] = json.loads(sys.argv[1]); "
                "from autograder.supervisor import zygote_main; "
                "zygote_main(int(sys.argv[2]), json.loads(sys.argv[3]), json.loads(sys.argv[4]))")
        paths = [p or os.getcwd() for p in sys.path]
        self._zygote = subprocess.Popen(
            [sys.executable, "-c", code, json.dumps(paths), str(child.fileno()), json.dumps(self.preload),
             json.dumps(self.idle_seconds)], pass_fds=(child.fileno(),), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, env=env, start_new_session=True)
        child.close()
        self._sock = parent

    def _ensure_zygote(self) -> None:
        if self._sock is not None and self._zygote is not None and self._zygote.poll() is not None:
            self._zygote_gone()         # it ended on its own (idle): not a death
        if self._sock is None:
            self._start_zygote()

    def _zygote_gone(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._zygote is not None:
            try:
                self._zygote.wait(timeout=EXIT_WAIT_SECONDS)
            except subprocess.TimeoutExpired:
                self._zygote.kill()
                self._zygote.wait()
            self._zygote = None

    def close(self) -> None:
        """End the zygote (it kills the grading processes it still has)."""
        self._zygote_gone()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ----------------------------------------------------------------------------- one grading process
    def _fork(self, grading: _Grading) -> _Attempt:
        self._ensure_zygote()
        result_r, result_w = os.pipe()
        os.set_blocking(result_r, False)
        scratch = tempfile.mkdtemp(prefix="ag-grading-")
        with tempfile.TemporaryFile() as request_file:
            pickle.dump(grading.request, request_file)
            pickle.dump(grading.skip(), request_file)
            pickle.dump(scratch, request_file)
            request_file.flush()
            request_file.seek(0)
            self._next_id += 1
            attempt = _Attempt(self._next_id, result_r, scratch=scratch)
            try:
                socket.send_fds(self._sock, [_frame({"op": "fork", "id": attempt.id})],
                                [request_file.fileno(), result_w])
            except OSError:
                pass        # the zygote died: seen by the loop, the grading is started again
            finally:
                os.close(result_w)
        grading.attempts += 1
        return attempt

    def _kill(self, attempt: _Attempt) -> None:
        """Ask the zygote to kill it (again after the zygote has told its pid, if need be)."""
        attempt.kill_wanted = True
        if attempt.pid is not None and self._sock is not None and attempt.code is None and not attempt.kill_sent:
            try:
                self._sock.sendall(_frame({"op": "kill", "pid": attempt.pid}))
                attempt.kill_sent = True
            except OSError:
                pass

    # ----------------------------------------------------------------------------- the loop
    def run(self, requests: list[Request], *, jobs: int = 1, on_done: Callable[[int, dict], None] = None,
            should_stop: Callable[[], bool] | None = None) -> list[dict]:
        """Grade ``requests``, ``jobs`` at a time; ``on_done(index, record)`` as each one ends.

        Returns the records in request order. Raises ``Stopped``/``KeyboardInterrupt`` (after
        killing every grading process) when stopped.
        """
        from .grading import Limits
        records: list[dict | None] = [None] * len(requests)
        queue = collections.deque(
            _Grading(i, r, expected_checks(r.assignment, r.only), Limits.from_dict(r.limits).budget_seconds)
            for i, r in enumerate(requests))
        active: dict[int, tuple[_Grading, _Attempt]] = {}
        try:
            while queue or active:
                while queue and len(active) < max(1, jobs):
                    grading = queue.popleft()
                    now = time.monotonic()
                    if grading.started is None:
                        grading.started, grading.deadline = now, now + grading.budget
                    attempt = self._fork(grading)
                    active[attempt.id] = (grading, attempt)
                self._wait(active, should_stop)
                for attempt_id, (grading, attempt) in list(active.items()):
                    if not self._ended(attempt):
                        continue
                    del active[attempt_id]
                    _release(attempt)
                    record = self._after(grading, attempt)
                    if record is None:
                        queue.appendleft(grading)       # graded again in a fresh process
                        continue
                    records[grading.index] = record
                    if on_done is not None:
                        on_done(grading.index, record)
        finally:
            if active:
                for grading, attempt in active.values():
                    self._kill(attempt)
                deadline = time.monotonic() + EXIT_WAIT_SECONDS
                while any(a.code is None for _, a in active.values()) and time.monotonic() < deadline \
                        and self._sock is not None:
                    self._read_zygote(0.2, active)
                self.close()
                for grading, attempt in active.values():
                    _release(attempt)
        return records

    def _wait(self, active: dict, should_stop) -> None:
        now = time.monotonic()
        deadlines = [g.deadline for g, a in active.values() if a.killed_for is None]
        timeout = min([0.5] + [max(0.0, d - now) for d in deadlines])
        fds = [a.result_r for _, a in active.values() if a.eof_at is None]
        self._read_zygote(timeout, active, fds)
        now = time.monotonic()
        for grading, attempt in active.values():
            if attempt.killed_for is None and now >= grading.deadline:
                attempt.killed_for = "budget"
            if attempt.killed_for is not None or attempt.kill_wanted:
                self._kill(attempt)
        if should_stop is not None and should_stop():
            raise Stopped(reason="the run was cancelled")

    def _read_zygote(self, timeout: float, active: dict, fds=()) -> None:
        watched = list(fds) + ([self._sock] if self._sock is not None else [])
        try:
            ready, _, _ = select.select(watched, [], [], timeout)
        except InterruptedError:  # pragma: no cover - retried by the caller's loop
            return
        by_fd = {a.result_r: (g, a) for g, a in active.values()}
        for fd in ready:
            if fd is self._sock:
                self._zygote_messages(active)
            else:
                self._read_results(*by_fd[fd])

    def _zygote_messages(self, active: dict) -> None:
        while self._sock is not None:
            try:
                data = self._sock.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._zygote_died(active)
                return
            message = json.loads(data[_FRAME.size:])
            attempts = {a.id: a for _, a in active.values()}
            if message["op"] == "forked" and message["id"] in attempts:
                attempts[message["id"]].pid = message["pid"]
            elif message["op"] == "exited":
                for _, attempt in active.values():
                    if attempt.pid == message["pid"]:
                        attempt.code, attempt.exited_at = message["code"], time.monotonic()

    def _zygote_died(self, active: dict) -> None:
        """The zygote is gone (and with it every grading process): start the gradings again."""
        self._zygote_gone()
        self._zygote_deaths += 1
        for grading, attempt in active.values():
            if attempt.code is None:
                attempt.code = "zygote"
            attempt.eof_at = attempt.eof_at or time.monotonic()
        if self._zygote_deaths > ZYGOTE_RESTARTS:
            raise RuntimeError(f"the grading processes' zygote died {self._zygote_deaths} times")
        self.log("the process that starts grading processes died; starting it again")

    def _read_results(self, grading: _Grading, attempt: _Attempt) -> None:
        try:
            chunk = os.read(attempt.result_r, 1 << 20)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            attempt.eof_at = time.monotonic()
            return
        attempt.buffer += chunk
        while len(attempt.buffer) >= _FRAME.size:
            (size,) = _FRAME.unpack_from(attempt.buffer)
            if size > _MAX_FRAME:
                attempt.buffer.clear()
                return
            if len(attempt.buffer) < _FRAME.size + size:
                return
            body = bytes(attempt.buffer[_FRAME.size:_FRAME.size + size])
            del attempt.buffer[:_FRAME.size + size]
            self._message(grading, attempt, json.loads(body))

    @staticmethod
    def _message(grading: _Grading, attempt: _Attempt, message: dict) -> None:
        kind = message.get("kind")
        if kind == "loaded":
            grading.load = grading.load or {"error": message.get("error"), "notes": message.get("notes") or []}
        elif kind == "result":
            test = message["test"]
            grading.results[(test["function"], test["name"])] = test
        elif kind == "done":
            attempt.done = message
            grading.peak_mb = message.get("peak_mb")
        elif kind == "failed":
            attempt.failed = message

    @staticmethod
    def _ended(attempt: _Attempt) -> bool:
        """Its pipe is closed and its exit status known (or one of them is overdue)."""
        now = time.monotonic()
        if attempt.eof_at is None:
            # A process it forked (not exec'd) may still hold the pipe: do not wait for it forever.
            return attempt.exited_at is not None and now - attempt.exited_at > EXIT_WAIT_SECONDS
        return attempt.code is not None or now - attempt.eof_at > EXIT_WAIT_SECONDS

    # ----------------------------------------------------------------------------- after a process ended
    def _after(self, grading: _Grading, attempt: _Attempt) -> dict | None:
        """The record of a grading whose grading process ended, or None to go on in a fresh one."""
        if attempt.code == "zygote":
            grading.attempts -= 1       # not the submission's doing: not counted
            return None
        if attempt.done is not None and not grading.deaths:
            return self._record(grading, attempt.done, attempt.done["result"])
        if attempt.done is not None:
            return self._merged(grading, attempt.done)
        if attempt.failed is not None:
            return self._failed_record(grading, attempt.failed)
        check = grading.next_check()
        if attempt.killed_for == "budget" or time.monotonic() >= grading.deadline:
            budget = f"grading this submission took longer than its time budget of {grading.budget:.0f} s"
            grading.deaths.append({"check": _name(check), "kind": "budget",
                                   "reason": f"its time budget of {grading.budget:.0f} s was used up"})
            self.log(f"{grading.request.label}: stopped at {_name(check) or 'the end'}: {budget}")
            if check is not None:
                grading.charged[check] = (f"stopped while this check was running: {budget}. Something it "
                                          "ran never finished (a loop that does not end, here or in a "
                                          "function it called)")
            return self._merged(grading, None, not_run=f"not run: {budget}")
        reason = _death_reason(attempt.code)
        grading.deaths.append({"check": _name(check), "kind": "death", "reason": reason})
        where = f"while running {_name(check)}" if check else "after its checks"
        self.log(f"{grading.request.label}: the grading process died {where} ({reason})")
        if check is None:       # died after the checks (the pictures): keep the grade, no pictures
            return self._merged(grading, None)
        here = sum(1 for d in grading.deaths if d["check"] == _name(check))
        if here >= 2 or grading.guilty:
            # Twice on the same check, or a submission that has already done so: its own doing.
            grading.guilty = True
            grading.charged[check] = (
                f"this check could not be completed: the grader's process running it died ({reason})"
                + (" twice" if here >= 2 else "") + ". That happens when a function makes the grader's side "
                "use far too much memory or time (for example a reference function it calls with huge "
                "sizes); the check counts as failed")
        if len(grading.deaths) >= MAX_DEATHS:
            return self._merged(grading, None, not_run=f"not run: the grading process died {len(grading.deaths)} "
                                                       f"times on this submission ({reason})")
        if grading.next_check() is None:
            return self._merged(grading, None)
        return None

    def _record(self, grading: _Grading, done: dict | None, result: dict) -> dict:
        notes = list(result.get("notes") or [])
        for death in grading.deaths:
            where = f" while running {death['check']}" if death["check"] else ""
            if death["kind"] == "budget":
                notes.append(f"grading was stopped{where}: {death['reason']}")
            else:
                notes.append(f"the grading process died{where} ({death['reason']})")
        result = dict(result, notes=notes)
        return {"result": result, "figures": (done or {}).get("figures") or [],
                "isolation": (done or {}).get("isolation"),
                "internal_error": bool((done or {}).get("internal_error")),
                "seconds": round(time.monotonic() - grading.started, 3), "graded_at": time.time(),
                "process": {"attempts": grading.attempts, "deaths": list(grading.deaths),
                            "peak_mb": grading.peak_mb}}

    def _merged(self, grading: _Grading, done: dict | None, not_run: str | None = None) -> dict:
        """A result from the checks streamed by every attempt, the charged ones and the rest."""
        from .assignments import get_assignment
        from .engine import CheckResult, SubmissionResult
        assignment = get_assignment(grading.request.assignment)
        points = {(c.task, c.name): float(c.points) for c in assignment.checks}
        tests = []
        for key in grading.expected:
            if key in grading.results:
                tests.append(CheckResult(**_check_fields(grading.results[key])))
            else:
                text = grading.charged.get(key) or not_run or "not run"
                tests.append(CheckResult(key[0], key[1], False, 0.0, points[key], feedback=text,
                                         status="failed", message=text.split("\n", 1)[0]))
        load = grading.load or {}
        base = (done or {}).get("result") or {}
        result = SubmissionResult(grading.request.label, grading.request.assignment, tests,
                                  error=base.get("error", load.get("error")),
                                  notes=list(base.get("notes") or load.get("notes") or []))
        payload = result.to_dict()
        payload["notes"] = result.notes
        return self._record(grading, done, payload)

    def _failed_record(self, grading: _Grading, failed: dict) -> dict:
        from .engine import SubmissionResult
        error = failed.get("error", "")
        if error.startswith("ReferenceMissing"):
            message = error.split(": ", 1)[-1]
        else:
            message = "internal error in the grader:\n" + failed.get("traceback", error)
        result = SubmissionResult(grading.request.label, grading.request.assignment, error=message).to_dict()
        result["notes"] = []
        record = self._record(grading, None, result)
        record["internal_error"] = True
        return record


def _release(attempt: _Attempt) -> None:
    """What an ended grading process leaves: its pipe, its temporary folder."""
    os.close(attempt.result_r)
    if attempt.scratch:
        shutil.rmtree(attempt.scratch, ignore_errors=True)


def _check_fields(test: dict) -> dict:
    return {"function": test["function"], "name": test["name"], "passed": test["passed"],
            "score": test["score"], "max_score": test["max_score"], "feedback": test.get("feedback", ""),
            "status": test.get("status", ""), "timed_out": bool(test.get("timed_out")),
            "message": test.get("message", ""), "why": test.get("why", ""), "case": test.get("case", "")}


def _name(check: tuple | None) -> str:
    return f"{check[0]} / '{check[1]}'" if check else ""


def _death_reason(code) -> str:
    if isinstance(code, int) and code < 0:
        name = signal.Signals(-code).name
        return {
            "SIGKILL": "killed by SIGKILL: usually the machine ran out of memory (the kernel's OOM killer)",
            "SIGSEGV": "it crashed with a segmentation fault",
            "SIGBUS": "it crashed (SIGBUS)",
            "SIGABRT": "it aborted (SIGABRT)",
        }.get(name, f"stopped by {name}")
    if code is None:
        return "it ended without a word"
    return f"it exited with status {code}"


# ------------------------------------------------------------------------------------ one submission
_local = threading.local()


def default_supervisor(preload=()) -> Supervisor:
    """This thread's supervisor (its zygote stays for the next grading; see ``grade_one``)."""
    supervisor = getattr(_local, "supervisor", None)
    if supervisor is None or not set(preload) <= set(supervisor.preload):
        if supervisor is not None:
            supervisor.close()
            atexit.unregister(supervisor.close)
        merged = sorted(set(preload) | set(supervisor.preload if supervisor is not None else []))
        supervisor = _local.supervisor = Supervisor(preload=merged)
        atexit.register(supervisor.close)
    return supervisor


def grade_one(request: Request, *, should_stop=None, idle_seconds: float | None = None) -> dict:
    """Grade one request in a grading process of its own; returns its record."""
    preload = [request.assignment] + (["figures"] if request.figures else [])
    supervisor = default_supervisor(preload)
    if idle_seconds is not None:
        supervisor.idle_seconds = idle_seconds
    return supervisor.run([request], jobs=1, should_stop=should_stop)[0]
