"""The errors of the sandbox's wire (no numpy here: the launcher and the zygote's control channel
use them before numpy is imported)."""

from __future__ import annotations


class CodecError(ValueError):
    """The bytes are not a valid message (corrupt, hostile, or too large)."""


class ValueTooLarge(CodecError):
    """A value whose encoding exceeds what the receiving side accepts."""

    def __init__(self, size: int, limit: int, what: str = "the value") -> None:
        super().__init__(f"{what} is {megabytes(size)}, more than the {megabytes(limit)} allowed")
        self.size = size
        self.limit = limit


def megabytes(n: int) -> str:
    return f"{n / 2**20:.1f} MB" if n < 10 * 2**20 else f"{n / 2**20:.0f} MB"
