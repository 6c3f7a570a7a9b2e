"""Length-prefixed messages over a stream socket, with a deadline on every read and write and a
cap on the size of what is read and written.

A message is ``u64 length`` + body (``codec`` for values, JSON for the control channel). Writes
are non-blocking: a peer that never reads makes ``send`` raise ``ChannelTimeout`` at the deadline
instead of blocking the writer (a full socket buffer is all it costs). A body longer than
``max_receive`` is refused from its length alone, before any of it is read, and a body is read
into one buffer of exactly its size (an anonymous mapping for large ones: pages that never
arrive cost nothing), so a forged length or a flood costs the reader at most the cap.
"""

from __future__ import annotations

import array
import json
import mmap
import os
import select
import socket
import struct

from .errors import CodecError, ValueTooLarge

_LENGTH = struct.Struct("<Q")
_MAP_ABOVE = 1 << 16          # bodies larger than this are read into an anonymous mapping
_CHUNK = 1 << 20
MAX_FDS = 4                   # file descriptors one message may carry (SCM_RIGHTS)


class ChannelClosed(Exception):
    """The other end went away (the process died or closed its socket)."""


class ChannelTimeout(Exception):
    """The deadline passed before a whole message could be read or written."""


class MessageTooLarge(CodecError):
    """The peer announced a message longer than this side accepts."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"a message of {size} bytes exceeds the limit of {limit}")
        self.size = size
        self.limit = limit


def _values():
    from . import codec
    return codec.encode_parts, codec.decode


def _json_parts(value, describe=None):
    data = json.dumps(value, separators=(",", ":")).encode()
    return [data], len(data)


def _json_decode(data):
    try:
        return json.loads(bytes(data))
    except (ValueError, RecursionError) as exc:
        raise CodecError(f"malformed control message: {type(exc).__name__}") from None


class Channel:
    """Sends and receives messages over one end of a ``socket.socketpair()``.

    ``json=True``: bodies are JSON (the control channel, no numpy needed); otherwise ``codec``.
    Deadlines are ``time.monotonic()`` values; None waits as long as it takes.
    """

    def __init__(self, sock: socket.socket, *, max_receive: int, max_send: int, json: bool = False) -> None:
        self.sock = sock
        self.max_receive = max_receive
        self.max_send = max_send
        self._encode, self._decode = (_json_parts, _json_decode) if json else _values()
        sock.setblocking(False)
        self._poll = select.poll()
        self._poll.register(sock.fileno(), select.POLLIN)

    def fileno(self) -> int:
        return self.sock.fileno()

    # ----------------------------------------------------------------------------- sending
    def send(self, value: object, deadline: float | None = None, describe=repr, fds=()) -> None:
        """Send ``value`` (and ``fds`` with it). Raises ValueTooLarge before sending anything
        when the message would exceed ``max_send``."""
        parts, total = self._encode(value, describe)
        if total > self.max_send:
            raise ValueTooLarge(total, self.max_send)
        chunks = [_LENGTH.pack(total)] + parts
        ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
        for chunk in chunks:
            view = memoryview(chunk).cast("B")
            while view:
                try:
                    if ancillary:
                        sent = self.sock.sendmsg([view[:_CHUNK]], ancillary)
                        ancillary = []
                    else:
                        sent = self.sock.send(view[:_CHUNK])
                except (BlockingIOError, InterruptedError):
                    self._wait(select.POLLOUT, deadline)
                    continue
                except OSError as exc:
                    raise ChannelClosed(str(exc)) from None
                view = view[sent:]

    # ----------------------------------------------------------------------------- receiving
    def receive(self, deadline: float | None = None) -> object:
        value, fds = self.receive_with_fds(deadline, accept_fds=False)
        return value

    def receive_with_fds(self, deadline: float | None = None, accept_fds: bool = True) -> tuple[object, list]:
        """A whole message and the file descriptors that came with it (closed when not accepted)."""
        fds: list[int] = []
        head = bytearray(_LENGTH.size)
        self._read_into(memoryview(head), deadline, fds)
        if fds and not accept_fds:
            _close_all(fds)
            fds = []
        size = _LENGTH.unpack(head)[0]
        if size > self.max_receive:
            _close_all(fds)
            raise MessageTooLarge(size, self.max_receive)
        body = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE) if size > _MAP_ABOVE else bytearray(size)
        try:
            self._read_into(memoryview(body), deadline, None)
            return self._decode(body), fds
        except BaseException:
            _close_all(fds)
            raise

    def _read_into(self, view: memoryview, deadline, fds: list | None) -> None:
        while view:
            try:
                if fds is not None:
                    data, ancillary, _, _ = self.sock.recvmsg(len(view), socket.CMSG_SPACE(4 * MAX_FDS),
                                                              socket.MSG_CMSG_CLOEXEC)
                    fds.extend(_fds_in(ancillary))
                    n = len(data)
                    view[:n] = data
                else:
                    n = self.sock.recv_into(view, min(len(view), _CHUNK))
            except (BlockingIOError, InterruptedError):
                self._wait(select.POLLIN, deadline)
                continue
            except OSError as exc:
                raise ChannelClosed(str(exc)) from None
            if n == 0:
                raise ChannelClosed("end of stream")
            view = view[n:]

    def _wait(self, event: int, deadline: float | None) -> None:
        if deadline is None:
            timeout = None
        else:
            import time
            left = deadline - time.monotonic()
            if left <= 0:
                raise ChannelTimeout()
            timeout = max(1, int(left * 1000) + 1)
        self._poll.modify(self.sock.fileno(), event)
        ready = self._poll.poll(timeout)
        if not ready:
            raise ChannelTimeout()
        if ready[0][1] & (select.POLLHUP | select.POLLERR | select.POLLNVAL) and not ready[0][1] & event:
            raise ChannelClosed("the other end closed the connection")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def _fds_in(ancillary) -> list[int]:
    fds = []
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(data) - len(data) % 4
            fds.extend(array.array("i", data[:usable]))
    return fds


def _close_all(fds) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass
