"""A system-call filter for the call processes (seccomp-bpf through ctypes; x86_64 and aarch64).

Installed in every call process after its namespaces, filesystem and privileges are in place,
before any student code. Without capabilities most of what it denies would fail anyway; the
filter also closes what needs no capability and is useless to a submission:

* new namespaces and mounts (``unshare``, ``setns``, ``clone``/``clone3`` with namespace flags,
  the mount API): nothing can be rearranged from inside;
* other processes' memory and kernel objects that outlive a process or span the machine:
  ``ptrace``, ``process_vm_*``, ``kcmp``, keyrings (``add_key``, ``keyctl``, ``request_key``),
  ``bpf``, ``perf_event_open``, ``io_uring_*``, ``userfaultfd``, ``fanotify_*``;
* global counters that would let a call count the calls before it: ``statx`` (unique mount
  ids), ``statmount``/``listmount``, ``name_to_handle_at``, namespace and pidfd ioctls, the
  socket and network-namespace cookies, and every way to a pidfd (``pidfd_open``,
  ``CLONE_PIDFD``, ``SO_PEERPIDFD``, ``SO_PASSPIDFD``'s ``SCM_PIDFD``): a pidfd's inode number
  is the pidfs number of its process, one machine-wide count of every process and thread ever
  started, which a call moves by starting threads;
* every system call that takes a number from the kernel's machine-wide inode counter
  (``get_next_ino``, handed to each CPU in batches of 1024): ``pipe``, ``pipe2``, ``socket``,
  ``socketpair``, ``accept``, ``accept4`` (pipefs, sockfs), ``mq_open`` (mqueue), ``io_setup``
  (aio), ``memfd_secret``, ``mmap`` with ``MAP_HUGETLB`` (hugetlbfs: a number even when no
  huge page is free), as ``io_uring_setup`` and ``userfaultfd`` above: a call that could take
  numbers could leave its CPU's batch at a chosen place for a later call to find (``/proc``,
  the other taker, is a folder of bound files only: see ``filesystem``);
* every way to a new inode of the kernel's internal shmem mount, whose numbers are a second
  machine-wide counter handed out the same way (``shmem_reserve_inode``, batches of 1024 per
  CPU) and shown by ``fstat`` and ``/proc/self/maps``: ``memfd_create``, ``shmget``, ``mmap``
  with ``MAP_SHARED`` (or ``MAP_SHARED_VALIDATE``) and ``MAP_ANONYMOUS`` (``shmem_zero_setup``;
  a shared mapping of ``/dev/zero`` does the same, so a call's ``/dev`` has no ``zero``), and
  ``mremap`` with an old size of 0 (a second mapping of a shared one). Memory a call holds
  outside its address space is then only files in its ``/tmp`` (charged to the sandbox's
  memory cgroup). No sockets at all (the call's network
  namespace is empty anyway; ``AF_VSOCK`` would reach a VM's host), so no ``subprocess`` or
  ``multiprocessing`` either: they fail at once with PermissionError;
* modules, kexec, reboot, swap, accounting, quotas, syslog;
* what moves the page cache of the allowlisted files or probes it (state shared with later
  calls: see ``resident``): ``fadvise64``, ``readahead``, ``mincore``, ``cachestat``,
  ``process_madvise``, ``madvise`` with ``MADV_WILLNEED``/``MADV_REMOVE``/``MADV_COLD``/
  ``MADV_PAGEOUT``, and ``preadv2``/``pwritev2`` (``RWF_NOWAIT`` says whether a page is cached).

Denied calls fail with EPERM (``statx``, ``clone3``, ``preadv2``, ``pwritev2``: ENOSYS, so that
libraries fall back to ``fstatat`` / ``clone`` / ``preadv``); a system call of another
architecture kills the process.
"""

from __future__ import annotations

import ctypes
import os
import struct

_ARCH = {"x86_64": 0xC000003E, "aarch64": 0xC00000B7}
_SYSCALLS = {
    "x86_64": {
        "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161,
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "bpf": 321,
        "perf_event_open": 298, "userfaultfd": 323, "keyctl": 250, "add_key": 248, "request_key": 249,
        "kexec_load": 246, "kexec_file_load": 320, "init_module": 175, "finit_module": 313,
        "delete_module": 176, "reboot": 169, "swapon": 167, "swapoff": 168, "acct": 163, "syslog": 103,
        "quotactl": 179, "open_by_handle_at": 304, "name_to_handle_at": 303, "fanotify_init": 300,
        "fanotify_mark": 301, "lookup_dcookie": 212, "uselib": 134, "iopl": 172, "ioperm": 173,
        "clone": 56, "clone3": 435, "ioctl": 16, "getsockopt": 55, "setsockopt": 54, "socket": 41, "socketpair": 53,
        "statx": 332, "fadvise64": 221, "readahead": 187, "mincore": 27, "preadv2": 327, "pwritev2": 328,
        "madvise": 28, "pipe": 22, "pipe2": 293, "accept": 43, "accept4": 288, "mq_open": 240, "io_setup": 206,
        "mmap": 9, "mremap": 25, "memfd_create": 319, "shmget": 29,
    },
    "aarch64": {
        "unshare": 97, "setns": 268, "mount": 40, "umount2": 39, "pivot_root": 41, "chroot": 51,
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "kcmp": 272, "bpf": 280,
        "perf_event_open": 241, "userfaultfd": 282, "keyctl": 219, "add_key": 217, "request_key": 218,
        "kexec_load": 104, "kexec_file_load": 294, "init_module": 105, "finit_module": 273,
        "delete_module": 106, "reboot": 142, "swapon": 224, "swapoff": 225, "acct": 89, "syslog": 116,
        "quotactl": 60, "open_by_handle_at": 265, "name_to_handle_at": 264, "fanotify_init": 262,
        "fanotify_mark": 263, "lookup_dcookie": 18, "clone": 220, "clone3": 435, "ioctl": 29,
        "getsockopt": 209, "setsockopt": 208, "socket": 198, "socketpair": 199, "statx": 291, "fadvise64": 223,
        "readahead": 213,
        "mincore": 232, "preadv2": 286, "pwritev2": 287, "madvise": 233, "pipe2": 59, "accept": 202,
        "accept4": 242, "mq_open": 180, "io_setup": 0, "mmap": 222, "mremap": 216, "memfd_create": 279, "shmget": 194,
    },
}
# The same numbers on every architecture (the "generic" table): io_uring, the new mount API,
# pidfds, statmount/listmount, open_tree_attr, quotactl_fd.
_GENERIC = {"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428,
            "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
            "pidfd_open": 434, "pidfd_getfd": 438, "mount_setattr": 442, "quotactl_fd": 443,
            "statmount": 457, "listmount": 458, "open_tree_attr": 467, "process_madvise": 440,
            "cachestat": 451, "memfd_secret": 447}
_SPECIAL = ("clone", "clone3", "ioctl", "getsockopt", "setsockopt", "statx", "preadv2", "pwritev2", "madvise",
            "mmap", "mremap")
_NAMESPACE_FLAGS = 0x7E020080 | 0x00001000   # CLONE_NEW* (ns, cgroup, uts, ipc, user, pid, net, time), CLONE_PIDFD
_MAP_SHARED, _MAP_ANONYMOUS, _MAP_HUGETLB = 0x01, 0x20, 0x40000   # (MAP_SHARED_VALIDATE is 0x03: bit 0x01 too)
_DENIED_IOCTL_TYPES = (0xB7, 0xFF)           # namespace (NSIO) and pidfd ioctls
_SOL_SOCKET = 1
_DENIED_GETSOCKOPTS = (57, 71, 77)           # SO_COOKIE, SO_NETNS_COOKIE, SO_PEERPIDFD
_DENIED_SETSOCKOPTS = (76,)                  # SO_PASSPIDFD (a pidfd of each sender: SCM_PIDFD)
_DENIED_ADVICE = (3, 9, 20, 21)              # MADV_WILLNEED, MADV_REMOVE, MADV_COLD, MADV_PAGEOUT

_RET_KILL_PROCESS = 0x80000000
_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_EPERM, _ENOSYS = 1, 38
_LD, _JEQ, _JGE, _JSET, _AND, _RET = 0x20, 0x15, 0x35, 0x45, 0x54, 0x06
_X32_BIT = 0x40000000
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


def supported() -> bool:
    return os.uname().machine in _ARCH


def program(machine: str | None = None) -> list[tuple[int, int, int, int]]:
    """The BPF instructions (code, jt, jf, k)."""
    machine = machine or os.uname().machine
    numbers = dict(_SYSCALLS[machine], **_GENERIC)
    code: list = []
    deny = "deny"

    def emit(op, k=0, jt=0, jf=0):
        code.append([op, jt, jf, k])

    emit(_LD, 4)                                    # arch
    emit(_JEQ, _ARCH[machine], jt=1)
    emit(_RET, _RET_KILL_PROCESS)
    emit(_LD, 0)                                    # syscall number
    if machine == "x86_64":
        emit(_JGE, _X32_BIT, jt=deny)
    plain = sorted(n for name, n in numbers.items() if name not in _SPECIAL)
    for number in plain:
        emit(_JEQ, number, jt=deny)
    emit(_JEQ, numbers["statx"], jt="nosys")
    emit(_JEQ, numbers["clone3"], jt="nosys")
    emit(_JEQ, numbers["preadv2"], jt="nosys")
    emit(_JEQ, numbers["pwritev2"], jt="nosys")
    emit(_JEQ, numbers["madvise"], jt="madvise")
    emit(_JEQ, numbers["clone"], jt="clone")
    emit(_JEQ, numbers["ioctl"], jt="ioctl")
    emit(_JEQ, numbers["getsockopt"], jt="getsockopt")
    emit(_JEQ, numbers["setsockopt"], jt="setsockopt")
    emit(_JEQ, numbers["mmap"], jt="mmap")
    emit(_JEQ, numbers["mremap"], jt="mremap")
    emit(_RET, _RET_ALLOW)
    labels = {}
    labels["clone"] = len(code)
    emit(_LD, 16)                                   # args[0] (low half): the flags
    emit(_JSET, _NAMESPACE_FLAGS, jt=deny)
    emit(_RET, _RET_ALLOW)
    labels["ioctl"] = len(code)
    emit(_LD, 24)                                   # args[1] (low half): the request
    emit(_AND, 0xFF00)
    for kind in _DENIED_IOCTL_TYPES:
        emit(_JEQ, kind << 8, jt=deny)
    emit(_RET, _RET_ALLOW)
    for which, options in (("getsockopt", _DENIED_GETSOCKOPTS), ("setsockopt", _DENIED_SETSOCKOPTS)):
        labels[which] = len(code)
        emit(_LD, 24)                               # args[1] (low half): the level
        emit(_JEQ, _SOL_SOCKET, jt=1)
        emit(_RET, _RET_ALLOW)
        emit(_LD, 32)                               # args[2] (low half): the option
        for option in options:
            emit(_JEQ, option, jt=deny)
        emit(_RET, _RET_ALLOW)
    labels["madvise"] = len(code)
    emit(_LD, 32)                                   # args[2] (low half): the advice
    for advice in _DENIED_ADVICE:
        emit(_JEQ, advice, jt=deny)
    emit(_RET, _RET_ALLOW)
    labels["mmap"] = len(code)
    emit(_LD, 40)                                   # args[3] (low half): the flags
    emit(_JSET, _MAP_HUGETLB, jt=deny)
    emit(_AND, _MAP_SHARED | _MAP_ANONYMOUS)
    emit(_JEQ, _MAP_SHARED | _MAP_ANONYMOUS, jt=deny)
    emit(_RET, _RET_ALLOW)
    labels["mremap"] = len(code)
    emit(_LD, 24)                                   # args[1]: the old size (0: a new mapping of a shared one)
    emit(_JEQ, 0, jt=1)
    emit(_RET, _RET_ALLOW)
    emit(_LD, 28)
    emit(_JEQ, 0, jt=deny)
    emit(_RET, _RET_ALLOW)
    labels["nosys"] = len(code)
    emit(_RET, _RET_ERRNO | _ENOSYS)
    labels[deny] = len(code)
    emit(_RET, _RET_ERRNO | _EPERM)
    out = []
    for i, (op, jt, jf, k) in enumerate(code):
        jt = labels[jt] - i - 1 if isinstance(jt, str) else jt
        jf = labels[jf] - i - 1 if isinstance(jf, str) else jf
        if not (0 <= jt < 256 and 0 <= jf < 256):
            raise ValueError("seccomp program too long for its jumps")
        out.append((op, jt, jf, k))
    return out


def compiled() -> bytes:
    """The filter as the kernel wants it (computed once, installed in every call process)."""
    return b"".join(struct.pack("HBBI", *ins) for ins in program())


_ready: dict = {}   # blob -> a ready prctl call (made in the zygote: a call process only makes it)


def prepare(blob: bytes):
    """The filter as a ready ``prctl(PR_SET_SECCOMP)`` (the ctypes structures and the library
    handle made once, so that installing it in a call process is one system call)."""
    if blob in _ready:
        return _ready[blob]
    buffer = ctypes.create_string_buffer(blob, len(blob))

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = Program(len(blob) // 8, ctypes.addressof(buffer))
    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_void_p, ctypes.c_ulong, ctypes.c_ulong]
    pointer = ctypes.byref(prog)

    def apply() -> None:
        if prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, pointer, 0, 0) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"seccomp: {os.strerror(err)}")

    apply.keep = (buffer, prog)   # (alive as long as the call)
    _ready[blob] = apply
    return apply


def install(blob: bytes | None = None) -> None:
    """Apply the filter to this process and everything it starts (needs no_new_privs first)."""
    prepare(blob or compiled())()
