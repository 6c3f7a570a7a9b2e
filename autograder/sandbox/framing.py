"""Length-prefixed messages over a pair of pipes."""

from __future__ import annotations

import os
import select
import struct
import time

from .codec import MAX_MESSAGE_BYTES, CodecError, decode, encode


class ChannelClosed(Exception):
    """The other end went away (the child died or closed its pipe)."""


class ChannelTimeout(Exception):
    """No complete message arrived before the deadline."""


class Channel:
    """Sends and receives encoded values over raw file descriptors."""

    def __init__(self, read_fd: int, write_fd: int) -> None:
        self.read_fd = read_fd
        self.write_fd = write_fd

    def send(self, value: object, describe=repr) -> None:
        payload = encode(value, describe)
        data = struct.pack("<Q", len(payload)) + payload
        view = memoryview(data)
        while view:
            try:
                written = os.write(self.write_fd, view)
            except (BrokenPipeError, OSError) as exc:
                raise ChannelClosed(str(exc)) from None
            view = view[written:]

    def receive(self, deadline: float | None = None) -> object:
        """Block until a whole message arrives; ``deadline`` is a ``time.monotonic()`` value."""
        size = struct.unpack("<Q", self._read_exactly(8, deadline))[0]
        if size > MAX_MESSAGE_BYTES:
            raise CodecError(f"message of {size} bytes exceeds the limit")
        return decode(self._read_exactly(size, deadline))

    def _read_exactly(self, n: int, deadline: float | None) -> bytes:
        chunks, remaining = [], n
        while remaining:
            if deadline is not None:
                wait = deadline - time.monotonic()
                if wait <= 0 or not select.select([self.read_fd], [], [], wait)[0]:
                    raise ChannelTimeout()
            chunk = os.read(self.read_fd, min(remaining, 1 << 20))
            if not chunk:
                raise ChannelClosed("end of stream")
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        for fd in {self.read_fd, self.write_fd}:
            try:
                os.close(fd)
            except OSError:
                pass
