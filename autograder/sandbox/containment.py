"""Keeping the sandbox's processes in their box: resource limits, exit mirroring, and the clean-up
that the fallback (no PID namespace) needs instead of a namespace's death.
"""

from __future__ import annotations

import os
import resource
import signal


def apply_limits(*, memory_mb: int, cpu_seconds: int, file_mb: int, files: int = 256,
                 processes: int | None = None) -> list[str]:
    """Per-process limits of a call process; returns what could not be set."""
    limits = [(resource.RLIMIT_CORE, 0), (resource.RLIMIT_NOFILE, files), (resource.RLIMIT_MSGQUEUE, 0)]
    if memory_mb:
        limits.append((resource.RLIMIT_AS, memory_mb * 2**20))
    if cpu_seconds:
        limits.append((resource.RLIMIT_CPU, cpu_seconds))
    if file_mb:
        limits.append((resource.RLIMIT_FSIZE, file_mb * 2**20))
    if processes:
        limits.append((resource.RLIMIT_NPROC, processes))
    failed = []
    for which, value in limits:
        try:
            soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY:
                value = min(value, hard)
            resource.setrlimit(which, (value, value))
        except (ValueError, OSError):
            failed.append(str(which))
    return failed


OOM_FIRST = 1000   # the oom_score_adj of every call: the OOM killer picks a call, never the zygote


def set_oom_score(value: int = OOM_FIRST, proc: str = "/proc") -> None:
    """Write this process's oom_score_adj through ``proc`` (the one way it is set: by
    :func:`oom_first`, and by ``filesystem.build_root`` through a call's new /proc before it
    becomes read-only). Raises OSError when it cannot."""
    # (os-level: a call process pays for every object and page a text file touches)
    fd = os.open(proc + "/self/oom_score_adj", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def oom_first() -> None:
    """Make this process (and what it starts) the first the OOM killer picks (the fallback: a
    call with namespaces has a read-only /proc, ``filesystem.build_root`` writes it there)."""
    try:
        set_oom_score()
    except OSError:
        pass


def count_own_processes(uid: int) -> int:
    count = 0
    try:
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    if entry.stat().st_uid == uid:
                        count += 1
                except OSError:
                    pass
    except OSError:
        return 1000
    return count


def mirror_exit(pid: int) -> None:
    """Wait for ``pid`` and end this process the same way (exit status or signal)."""
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            os._exit(0)
        except InterruptedError:  # pragma: no cover
            continue
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1)


def reap_all() -> dict[int, int]:
    """Reap every finished child (without waiting); {pid: wait status}."""
    done = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done[pid] = status


def kill_children_until_none(rounds: int = 200) -> None:
    """Fallback clean-up (this process is a subreaper): kill and reap its children until there
    are none, however often what is left forks or re-parents to it."""
    me = os.getpid()
    for _ in range(rounds):
        children = own_children(me)
        if not children:
            reap_all()
            return
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


def own_children(pid: int) -> list[int]:
    found = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.extend(int(p) for p in f.read().split())
        except (OSError, ValueError):
            pass
    return found


def guard_kill() -> None:
    """Fallback only: refuse os.kill/os.killpg outside the call's own processes (Python level)."""
    own = os.getpid()
    real_kill, real_killpg = os.kill, os.killpg

    def kill(pid, sig):
        if pid <= 0 or (pid != own and not _is_descendant(pid, own)):
            raise PermissionError(1, "the sandbox may only signal its own processes")
        return real_kill(pid, sig)

    def killpg(pgid, sig):
        if pgid != os.getpgid(0):
            raise PermissionError(1, "the sandbox may only signal its own processes")
        return real_killpg(pgid, sig)

    os.kill, os.killpg = kill, killpg


def _is_descendant(pid: int, ancestor: int) -> bool:
    for _ in range(64):
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
    return False
