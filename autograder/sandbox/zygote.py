"""The sandbox's zygote: PID 1 of the sandbox's PID namespace, started (``guest/boot.py``) inside
the allowlist root with nothing of the grader in memory. It never runs student code.

Two processes, so that every call starts from the same memory and sees nothing of the calls
before it:

* **Z**, the zygote proper: loads the trusted heavy modules the submission imports (numpy,
  scipy..., from an allowlist) and the sandbox runtime, installs the determinism patches,
  compiles the submission's kept statements, then talks to the grader: ``spawn`` (with a fresh
  socket for the job: SCM_RIGHTS) and ``end`` (kill the job's process, wait until it is gone with
  all it started, say how it ended).
* **F**, the forker, forked from Z once, before any job: per job it receives two descriptors
  (the job's socket, a pipe to Z), puts its next child in a PID namespace of its own, forks the
  call process C, tells Z its pid, waits for it and tells Z how it ended. On x86_64 this loop is
  a few instructions of machine code, so F's memory is byte for byte the same before every fork
  (no message, pid, exit status, interpreter counter of an earlier job is ever in it): the call
  processes, which are copies of it, are identical whatever ran before them. Elsewhere (and in
  the fallback) F is a Python loop that forks a **W** per job, which forks C and waits for it.

C (``_call_process``) enters fresh mount, IPC and network namespaces, builds its own allowlist
root (fresh ``/tmp``, ``/proc`` of its own PID namespace, where it is PID 1), sets its rlimits,
drops every capability, installs the system-call filter and then runs the job (``worker``).
When it ends, the kernel kills everything it started. Without namespaces W is a subreaper that
kills what C leaves behind.
"""

from __future__ import annotations

import ast
import gc
import os
import signal
import socket
import struct
import sys
from dataclasses import dataclass

from . import isolation
from .framing import Channel

CONTROL_FD = 3
CONTROL_BYTES = 256 << 20
FROM_CHILD_BYTES = 64 << 20     # a call's result or a callback's arguments (largest real: 2.8 MB)
TO_CHILD_BYTES = 256 << 20      # a call's arguments or a callback's result (largest real: 6.1 MB)
# Trusted modules imported in Z when the submission imports them (so calls do not re-import).
PRELOAD_PACKAGES = ("numpy", "scipy", "autograd", "matplotlib")
PRELOAD_STDLIB = {"math", "random", "itertools", "functools", "collections", "time", "warnings", "statistics",
                  "typing", "dataclasses", "operator", "copy", "heapq", "bisect", "numbers", "fractions",
                  "decimal", "abc", "enum", "string", "re", "inspect", "contextlib", "cmath"}
NEVER_PRELOAD = ("matplotlib.pyplot", "matplotlib.pylab", "pylab")   # (a font cache per sandbox)
_PID = struct.Struct("<q")
_DEBUG = os.environ.get("AUTOGRADER_SANDBOX_DEBUG") == "1"
_STATUS = struct.Struct("<qi")


def main() -> None:
    control = Channel(socket.socket(fileno=CONTROL_FD), max_receive=CONTROL_BYTES, max_send=CONTROL_BYTES,
                      json=True)
    message = control.receive()
    # The spec is the message ``Sandbox._make_spec`` builds from the frozen IsolationPolicy and
    # Limits (plus the launcher's "namespaces"/"nproc"): every key is always there, so it is read
    # without defaults of its own; the policy's defaults live in policy.py only.
    spec, submission = message["spec"], message["submission"]
    for entry in spec["sys_path"]:
        if entry not in sys.path:
            sys.path.append(entry)
    import site
    site.setquit()   # exit() and quit() (python -S leaves them out)
    sys.meta_path.insert(0, _Unimportable())
    report = isolation.Report(namespaces=bool(spec["namespaces"]))
    entropy = _prepare(submission, report)
    from . import autograd_guard
    autograd_guard.take(submission.get("statements", []))   # (before any student code runs anywhere)
    # The runtime every call process needs, loaded here once (a call would compile it again).
    from . import codec, containment, filesystem, seccomp, worker  # noqa: F401
    from .worker import compile_submission
    isolation.libc()   # (the library handle and its prototypes too)
    program = compile_submission(submission.get("statements", []))
    if spec["seccomp"]:
        from . import seccomp
        spec["seccomp_filter"] = seccomp.compiled() if seccomp.supported() else None
        if spec["seccomp_filter"]:
            seccomp.prepare(spec["seccomp_filter"])   # (every call process then only installs it)
    _forget_the_clock()
    control.send({"kind": "ready", "isolation": report.as_dict()})
    _serve(control, _Pristine(spec, submission, program, entropy))


# ------------------------------------------------------------------------------------ Z
class _Unimportable:
    """``solutions`` does not exist here, even where a hidden (empty) folder of that name is on
    the path (an empty folder would import as a namespace package)."""

    @staticmethod
    def find_spec(fullname, path=None, target=None):
        if fullname.split(".")[0] == "solutions":
            raise ModuleNotFoundError(f"No module named {fullname.split('.')[0]!r}", name=fullname)
        return None


def _prepare(submission: dict, report) -> object:
    import numpy  # noqa: F401 - the determinism patches need it, every submission uses it
    from .determinism import Entropy
    entropy = Entropy()
    entropy.install()
    failed = []
    for name in preloads(submission.get("statements", [])):
        try:
            __import__(name)
        except Exception as exc:  # noqa: BLE001 - a failing import is the call's to report
            failed.append(f"{name} ({type(exc).__name__})")
    if failed:
        report.missing.append("preloading " + ", ".join(failed))
    return entropy


def preloads(statements) -> list[str]:
    """The allowlisted modules the kept statements import (``from x import y`` and, for the
    numerical packages, ``import x``), in order."""
    names: list[str] = []
    for _cell, _line, source in statements:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                candidates = [node.module] + [f"{node.module}.{a.name}" for a in node.names if a.name != "*"]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names if a.name.split(".")[0] in PRELOAD_PACKAGES[:3]]
            else:
                continue
            for name in candidates:
                top = name.split(".")[0]
                if (top in PRELOAD_PACKAGES or name in PRELOAD_STDLIB) and not name.startswith(NEVER_PRELOAD) \
                        and name not in names and _is_module(name):
                    names.append(name)
    return names


def _is_module(name: str) -> bool:
    import importlib.util
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError, AttributeError):
        return False


def _forget_the_clock() -> None:
    """No time of the sandbox's start may stay visible to the calls (it would tell a call how
    long the grader has been at work, i.e. roughly which check runs): module-level timestamps
    that libraries take at import time are reset, and freed objects are cleared away."""
    logging = sys.modules.get("logging")
    if logging is not None and isinstance(getattr(logging, "_startTime", None), float):
        _overwrite_float(logging._startTime)
        logging._startTime = 0.0
    gc.collect()


def _overwrite_float(value: float) -> None:
    """Zero a float object's value in place (it is about to be dropped)."""
    import ctypes
    if sys.getrefcount(value) <= 4 and type(value) is float:
        ctypes.c_double.from_address(id(value) + object().__sizeof__()).value = 0.0


@dataclass(frozen=True)
class _Pristine:
    """What every call process starts from (made once in Z, before any job)."""

    spec: dict
    submission: dict
    program: list
    entropy: object


def _serve(control: Channel, state: _Pristine) -> None:
    forker_sock, z_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    gc.collect()
    gc.freeze()
    gc.disable()
    forker = os.fork()
    if forker == 0:
        z_sock.close()
        control.close()
        _forker(forker_sock, state)
    forker_sock.close()
    jobs: dict = {}   # job id -> (status pipe, call pid or None)
    while True:
        try:
            message, fds = control.receive_with_fds()
        except Exception:   # the grader went away: take everything down with us
            os._exit(0)
        kind = message.get("kind") if isinstance(message, dict) else None
        if kind == "spawn" and len(fds) == 1:
            status_r, status_w = os.pipe()
            try:
                socket.send_fds(z_sock, [b"j"], [fds[0], status_w])
            finally:
                os.close(fds[0])
                os.close(status_w)
            jobs[message.get("job")] = [status_r, None]
        elif kind == "end":
            job = jobs.pop(message.get("job"), None)
            status = _end(job)   # (waits until the call and all it started are gone)
            control.send({"kind": "ended", "status": status})
        elif kind == "exit":
            os._exit(0)
        else:
            for fd in fds:
                os.close(fd)
        try:   # a forker that died takes the sandbox with it (the grader starts a new one)
            if os.waitpid(forker, os.WNOHANG)[0]:
                os._exit(1)
        except ChildProcessError:
            os._exit(1)


def _end(job) -> int | None:
    """Kill the job's call process, wait until it is gone with everything it started, and return
    its wait status (None when unknown)."""
    if job is None:
        return None
    status_r, _ = job
    try:
        head = _read(status_r, _PID.size)
        pid = _PID.unpack(head)[0] if head else 0
        if pid > 0:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        tail = _read(status_r, _STATUS.size)
        return _STATUS.unpack(tail)[1] if tail else None
    finally:
        os.close(status_r)


def _read(fd: int, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            return b""
        data += chunk
    return data


# ------------------------------------------------------------------------------------ F
# F's loop, in machine code (x86_64), so that no bytecode, allocation, pid or status of the
# interpreter changes between two forks: ``long forker(struct params *p)`` where p holds, 8 bytes
# each: recvmsg, fork, close, msghdr *, int fds[2] (call socket, status pipe: in the control
# buffer), the control length, &msg_controllen, the socket, unshare, setns, this PID namespace's
# fd, write, waitpid, a 16-byte scratch buffer, __errno_location, the stack's lowest address.
# Per job:
#
#  1: msg_controllen = length; if (recvmsg(sock, msg, 0) != 1) return -1    ; Z is gone
#     unshare(CLONE_NEWPID)                          ; the call: PID 1 of a namespace of its own
#     clear the stack from its lowest page to rsp-256 ; (no residue of the zygote or of a job)
#     if ((pid = fork()) == 0) return 0              ; the call process
#     setns(pidns, CLONE_NEWPID); close(fds[0])
#     scratch = pid; write(fds[1], scratch, 8); scratch = 0
#     while (waitpid(pid, scratch + 8, 0) == -1 && errno == EINTR) {}
#     write(fds[1], scratch, 12); scratch = 0; close(fds[1]); pid = 0; goto 1
#
# (push rbx..r15; mov rbx, rdi; mov r12, [rbx+32]; mov r14, [rbx+104] ... see
# tests/test_isolation.py::test_every_call_is_copied_from_the_same_memory.)
_FORKER_X86_64 = bytes.fromhex(
    "5341544155415641574889fb4c8b63204c8b7368488b4330488b4b284889088b7b38488b731831d2ff134883f8010f"
    "85ba000000bf00000020ff5340488b7b784889e14881e9000100004829f948c1e90331c0f348abff530885c00f8489"
    "0000004189c58b7b50be00000020ff5348418b3c24ff53104963c5498906418b7c24044c89f6ba08000000ff535849"
    "c706000000004489ef498d760831d2ff536083f8ff7510ff537083380474e741c74608ffffffff49c7060000000041"
    "8b7c24044c89f6ba0c000000ff535849c7060000000049c7460800000000418b7c2404ff53104531ede92affffff31"
    "c0eb0748c7c0ffffffff415f415e415d415c5bc3")


def _forker(sock: socket.socket, state: _Pristine) -> None:
    """Fork one process per job; nothing else (see the module docstring). With namespaces on
    x86_64 the loop runs in machine code, forks the call process itself, waits for it and
    reports its end (this function returns in each call process); elsewhere a Python loop forks a
    W per job."""
    if state.spec["namespaces"] and os.uname().machine == "x86_64":
        received = _native_forker(sock)
        if received is not None:
            call_fd, status_w = received
            os.close(status_w)
            sock.close()
            _call_process(call_fd, state)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)   # the W's are reaped by the kernel
    call_fd, status_w = _python_forker(sock)
    sock.close()
    _waiter(call_fd, status_w, state)


def _native_forker(sock: socket.socket):
    """Run the machine-code loop; in the call process it forked: (call fd, status fd)."""
    import ctypes
    import mmap
    try:
        code = mmap.mmap(-1, mmap.PAGESIZE, flags=mmap.MAP_PRIVATE,   # (a shared one takes a shmem number)
                         prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        pidns = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    code.write(_FORKER_X86_64)
    libc = ctypes.CDLL(None, use_errno=True)

    class MsgHdr(ctypes.Structure):
        _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.c_void_p),
                    ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                    ("flags", ctypes.c_int)]

    data = ctypes.create_string_buffer(1)
    iov = (ctypes.c_void_p * 2)(ctypes.addressof(data), 1)
    length = socket.CMSG_SPACE(8)
    control = ctypes.create_string_buffer(length)
    scratch = ctypes.create_string_buffer(16)
    msg = MsgHdr(None, 0, ctypes.addressof(iov), 1, ctypes.addressof(control), length, 0)
    header = socket.CMSG_LEN(0)
    address = lambda fn: ctypes.cast(fn, ctypes.c_void_p).value  # noqa: E731
    with open("/proc/self/maps") as maps:
        stack_low = next(int(line.split("-")[0], 16) for line in maps if line.rstrip().endswith("[stack]"))
    params = (ctypes.c_uint64 * 16)(
        address(libc.recvmsg), address(libc.fork), address(libc.close), ctypes.addressof(msg),
        ctypes.addressof(control) + header, length, ctypes.addressof(msg) + MsgHdr.controllen.offset,
        sock.fileno(), address(libc.unshare), address(libc.setns), pidns, address(libc.write),
        address(libc.waitpid), ctypes.addressof(scratch), address(libc.__errno_location), stack_low)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    loop = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_void_p)(ctypes.addressof(ctypes.c_char.from_buffer(code)))
    if loop(ctypes.addressof(params)) != 0:
        os._exit(0)   # Z is gone
    # The call process, copied from F at the fork: the same memory for every job.
    ctypes.pythonapi.PyOS_AfterFork_Child()
    os.close(pidns)
    level, kind = struct.unpack_from("<ii", control.raw, 8)
    if (level, kind) != (socket.SOL_SOCKET, socket.SCM_RIGHTS) or msg.controllen < socket.CMSG_LEN(8):
        os._exit(1)
    return struct.unpack_from("<ii", control.raw, header)


def _python_forker(sock: socket.socket):
    """The same loop in Python (not x86_64): the interpreter's own state (its adaptive bytecode
    counters, allocator free lists) may then differ a little from one job to the next."""
    buffer = bytearray(1)
    ancillary = socket.CMSG_SPACE(2 * 4)
    fd_pair = struct.Struct("<ii")
    while True:
        try:
            _, anc, _, _ = sock.recvmsg_into([buffer], ancillary)
        except OSError:
            os._exit(0)   # Z is gone
        if not anc or len(anc[0][2]) != fd_pair.size:
            for _, _, data in anc:
                for fd in struct.unpack(f"<{len(data) // 4}i", data[: len(data) // 4 * 4]):
                    os.close(fd)
            continue
        call_fd, status_w = fd_pair.unpack(anc[0][2])
        del anc
        pid = os.fork()
        if pid == 0:
            return call_fd, status_w
        os.close(call_fd)
        os.close(status_w)
        _zero_int(pid)
        del pid


def _zero_int(value: int) -> None:
    """Overwrite a freshly made int's digits before dropping it, so the pid of an earlier job is
    not left in the memory every later call process copies (small ints are shared: untouched)."""
    if type(value) is int and value > 256 and sys.getrefcount(value) <= 3 and sys.getsizeof(value) == 28:
        import ctypes
        ctypes.memset(id(value) + 24, 0, 4)


# ------------------------------------------------------------------------------------ W
def _waiter(call_fd: int, status_w: int, state: _Pristine) -> None:
    spec = state.spec
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        namespaces = bool(spec["namespaces"])
        if namespaces:
            isolation.unshare(isolation.CLONE_NEWPID)   # the call is PID 1 of a namespace of its own
        else:
            isolation.prctl(isolation.PR_SET_CHILD_SUBREAPER, 1)
        pid = os.fork()
        if pid == 0:
            os.close(status_w)
            _call_process(call_fd, state)
        os.close(call_fd)
        os.write(status_w, _PID.pack(pid))
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:  # pragma: no cover
                continue
        if not namespaces:
            from .containment import kill_children_until_none
            kill_children_until_none()
        os.write(status_w, _STATUS.pack(0, status))
    finally:
        os._exit(0)


# ------------------------------------------------------------------------------------ C
def _call_process(call_fd: int, state: _Pristine) -> None:
    """Isolate this process, then run the job (never returns)."""
    spec = state.spec
    try:
        os.closerange(CONTROL_FD, call_fd)
        os.closerange(call_fd + 1, 1 << 16)
        report = isolation.Report(namespaces=bool(spec["namespaces"]))
        _isolate_call(spec, report)
        from .worker import Worker
        channel = Channel(socket.socket(fileno=call_fd), max_receive=TO_CHILD_BYTES, max_send=FROM_CHILD_BYTES)
        os.register_at_fork(after_in_child=channel.close)   # a copy the student forks never speaks for us
        gc.enable()
        gc.collect(0)   # (counters start the same in every call)
        Worker(channel, state.submission, state.program, state.entropy).serve(report.as_dict())
    except BaseException:  # noqa: BLE001 - the grader sees the end of the stream
        if _DEBUG:
            import traceback
            traceback.print_exc()
    finally:
        os._exit(0)


def _isolate_call(spec: dict, report) -> None:
    from . import containment, filesystem
    if spec["namespaces"]:
        os.setsid()
        # A network namespace per call costs ~2 ms of its ~15 (its set-up and the kernel's clean-up);
        # where the system-call filter denies every socket, the sandbox's own namespace (no
        # interface but a down loopback, nothing a call can open) serves every call as well.
        own_net = not (spec["seccomp"] and spec["seccomp_filter"])
        isolation.unshare(isolation.CLONE_NEWNS | isolation.CLONE_NEWIPC | (isolation.CLONE_NEWNET if own_net else 0))
        report.held.append("fresh mount, IPC, network and PID namespaces for every call" if own_net else
                           "fresh mount, IPC and PID namespaces for every call (no socket in any)")
        if os.getpid() != 1:
            report.missing.append("a PID namespace of its own for the call")
        filesystem.build_root(spec["layout"], report, from_host=False, proc=True,
                              oom_score_adj=containment.OOM_FIRST)
        os.chdir("/tmp")
    else:
        session = os.getsid(0)   # (the launcher's: one per sandbox)
        os.setsid()
        scratch = os.path.join(spec["workdir"], "tmp")
        import shutil
        shutil.rmtree(scratch, ignore_errors=True)
        os.makedirs(scratch, mode=0o700, exist_ok=True)
        os.chdir(scratch)
        os.environ.update(TMPDIR=scratch, HOME=scratch, MPLCONFIGDIR=scratch)
        containment.oom_first()
    processes = spec["nproc"]
    if not spec["namespaces"] and os.geteuid() == 0:
        isolation.become_nobody_of_its_own(isolation.FALLBACK_UID_BASE + session, report)
        processes = processes or spec["processes"]   # (RLIMIT_NPROC binds a uid of its own)
    failed = containment.apply_limits(memory_mb=spec["memory_mb"], cpu_seconds=spec["cpu_seconds"],
                                      file_mb=spec["file_mb"], processes=processes)
    if failed:
        report.missing.append("resource limits " + ", ".join(failed))
    isolation.drop_privileges(report)
    if not spec["namespaces"]:
        try:
            isolation.prctl(isolation.PR_SET_DUMPABLE, 0)   # other sandboxes of this user cannot read it
        except OSError:
            pass
        containment.guard_kill()
        report.missing.append("kill(-1) contained only at the Python level")
    if spec["seccomp"]:
        from . import seccomp
        if spec["seccomp_filter"]:
            try:
                seccomp.install(spec["seccomp_filter"])
                report.held.append("system-call filter (seccomp)")
            except OSError as exc:
                report.missing.append(f"system-call filter ({exc.strerror})")
        else:
            report.missing.append(f"system-call filter (not available on {os.uname().machine})")
