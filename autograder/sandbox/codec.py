"""A safe encoding for values that cross the sandbox boundary.

Pickle would let a hostile submission run code in the grader when its results are unpickled, so
values travel as a JSON tree plus raw array buffers. Only plain data survives the trip: None,
bools, numbers, strings, lists, tuples, dicts, numeric numpy arrays and scalars, and references
to functions (``FunctionRef``) that the other side turns into callables. Anything else arrives as
an ``Opaque`` placeholder that says what it was, so a check can tell the student "your function
returned a generator".

A message is ``u32 header length, u32 buffer count, JSON header, u64 size per buffer, buffers``,
every buffer starting at a multiple of ``ALIGN`` bytes, so that decoding makes arrays that are
views of the received bytes (no copy) and a hostile message cannot make the reader allocate much
more than the message itself: the JSON part is capped (``MAX_HEADER_BYTES``) and so is the
number of values in it (``MAX_NODES``), arrays cost exactly their bytes.
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

import numpy as np

from .errors import CodecError, ValueTooLarge, megabytes  # noqa: F401 - re-exported

ALIGN = 64
MAX_HEADER_BYTES = 8 << 20      # the JSON part of one message (legitimate ones: under 20 KB)
MAX_NODES = 250_000             # values in the JSON part (each costs ~100 bytes once decoded)
_MAX_DEPTH = 32
_ARRAY_KINDS = "biufc"  # bool, int, uint, float, complex


@dataclass(frozen=True)
class FunctionRef:
    """Stands for a function that lives on the other side of the boundary."""

    name: str


@dataclass(frozen=True)
class Opaque:
    """Stands for a value that cannot cross the boundary (a generator, a custom object...)."""

    type_name: str
    summary: str

    def __repr__(self) -> str:
        return f"<{self.type_name}: {self.summary}>"


# ------------------------------------------------------------------------------------ encoding
def encode_parts(value: object, describe=repr) -> tuple[list, int]:
    """``value`` as a list of byte chunks (array buffers are not copied) and their total size."""
    buffers: list = []
    tree = _encode(value, buffers, describe, 0)
    header = json.dumps(tree, separators=(",", ":"), allow_nan=False).encode()
    prefix = bytearray(struct.pack("<II", len(header), len(buffers)))
    prefix += header
    prefix += bytes(_pad(len(prefix), 8))
    for buffer in buffers:
        prefix += struct.pack("<Q", buffer.nbytes)
    prefix += bytes(_pad(len(prefix), ALIGN))
    parts, total = [bytes(prefix)], len(prefix)
    for buffer in buffers:
        parts.append(buffer)
        total += buffer.nbytes
        padding = _pad(buffer.nbytes, ALIGN)
        if padding:
            parts.append(bytes(padding))
            total += padding
    return parts, total


def encode(value: object, describe=repr) -> bytes:
    """Serialise ``value``. ``describe`` summarises values that cannot be encoded."""
    parts, _ = encode_parts(value, describe)
    return b"".join(bytes(p) for p in parts)


def _pad(n: int, to: int) -> int:
    return -n % to


def _encode(value, buffers, describe, depth):
    if depth > _MAX_DEPTH:
        return {"$o": ["deep structure", "nested more than 32 levels"]}
    if value is None or type(value) in (bool, str):
        return value
    if isinstance(value, (np.ndarray, np.generic)):
        # Before float/int: np.float64 is a float subclass, and it must arrive as np.float64
        # (a student's loop divides by it; 1.0 / np.float64(0) is inf, 1.0 / 0.0 raises).
        arr = np.asarray(value)
        if arr.dtype.kind not in _ARRAY_KINDS or arr.dtype.fields is not None:
            return {"$o": [f"numpy array of dtype {arr.dtype}", f"shape {arr.shape}"]}
        arr = arr.astype(arr.dtype.newbyteorder("<"), order="C", copy=False)   # (0-d stays 0-d)
        buffers.append(memoryview(arr.reshape(-1).view(np.uint8)))   # no copy
        return {"$a": len(buffers) - 1, "dtype": arr.dtype.str, "shape": list(arr.shape),
                "scalar": isinstance(value, np.generic)}
    if isinstance(value, str):   # a subclass arrives as a plain str (its methods are not called)
        return str.__str__(value)
    if isinstance(value, int) and not isinstance(value, bool):
        value = int.__index__(value)   # (an int subclass arrives as an int; its methods are not called)
        return value if abs(value) < 2**63 else {"$o": ["int", f"an integer with {value.bit_length()} bits"]}
    if isinstance(value, float):
        value = float.__float__(value)
        if math.isfinite(value):
            return float(value)
        return {"$f": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
    if isinstance(value, complex):
        return {"$c": [_encode(value.real, buffers, describe, depth + 1),
                       _encode(value.imag, buffers, describe, depth + 1)]}
    if isinstance(value, FunctionRef):
        return {"$fn": value.name}
    if isinstance(value, Opaque):
        return {"$o": [value.type_name, value.summary]}
    if isinstance(value, tuple) and type(value) in (tuple,) or _is_namedtuple(value):
        return {"$t": [_encode(v, buffers, describe, depth + 1) for v in value]}
    if type(value) is list:
        return [_encode(v, buffers, describe, depth + 1) for v in value]
    if type(value) is dict and all(isinstance(k, (str, int)) and not isinstance(k, bool) for k in value):
        return {"$d": [[k, _encode(v, buffers, describe, depth + 1)] for k, v in value.items()]}
    return {"$o": [_type_name(value), _safe_describe(value, describe)]}


def _is_namedtuple(value) -> bool:
    return isinstance(value, tuple) and hasattr(type(value), "_fields")


def _type_name(value) -> str:
    cls = type(value)
    module = getattr(cls, "__module__", "") or ""
    return cls.__qualname__ if module in ("builtins", "__main__") else f"{module}.{cls.__qualname__}"


def _safe_describe(value, describe) -> str:
    try:
        text = str(describe(value))
    except BaseException:  # a hostile __repr__ must not break the encoder
        text = "(no description)"
    return text[:200]


# ------------------------------------------------------------------------------------ decoding
def decode(data) -> object:
    """Rebuild a value from ``encode``'s bytes. Raises CodecError on anything malformed.

    ``data`` (bytes, bytearray, mmap, memoryview) is kept alive by the arrays, which are views
    of it: writable when ``data`` is.
    """
    view = memoryview(data).cast("B") if not isinstance(data, memoryview) else data.cast("B")
    try:
        header_len, n_buffers = struct.unpack_from("<II", view, 0)
        if header_len > MAX_HEADER_BYTES:
            raise CodecError(f"message header of {header_len} bytes exceeds the limit")
        offset = 8
        header = bytes(view[offset:offset + header_len])
        if len(header) != header_len:
            raise CodecError("truncated message")
        offset += header_len + _pad(offset + header_len, 8)
        if n_buffers > MAX_NODES or offset + 8 * n_buffers > len(view):
            raise CodecError("bad buffer table")
        sizes = struct.unpack_from(f"<{n_buffers}Q", view, offset)
        offset += 8 * n_buffers
        offset += _pad(offset, ALIGN)
        buffers = []
        for size in sizes:
            if offset + size > len(view):
                raise CodecError("truncated message")
            buffers.append((offset, size))
            offset += size + _pad(size, ALIGN)
        if header.count(b",") + header.count(b"[") + header.count(b"{") > MAX_NODES:
            raise CodecError(f"message has more than {MAX_NODES} values")
        tree = json.loads(header)
    except (struct.error, ValueError, UnicodeDecodeError, RecursionError) as exc:
        if isinstance(exc, CodecError):
            raise
        raise CodecError(f"malformed message: {type(exc).__name__}") from None
    return _decode(tree, (view, buffers), 0)


def _decode(tree, buffers, depth):
    if depth > _MAX_DEPTH:
        raise CodecError("structure nested too deeply")
    if tree is None or isinstance(tree, (bool, int, float, str)):
        return tree
    if isinstance(tree, list):
        return [_decode(v, buffers, depth + 1) for v in tree]
    if not isinstance(tree, dict) or len(tree) == 0:
        raise CodecError("unexpected node")
    if "$a" in tree:
        return _decode_array(tree, buffers)
    if "$t" in tree:
        return tuple(_decode(v, buffers, depth + 1) for v in _as_list(tree["$t"]))
    if "$d" in tree:
        out = {}
        for item in _as_list(tree["$d"]):
            if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], (str, int))):
                raise CodecError("bad dict entry")
            out[item[0]] = _decode(item[1], buffers, depth + 1)
        return out
    if "$f" in tree:
        if tree["$f"] not in ("nan", "inf", "-inf"):
            raise CodecError("bad float")
        return float(tree["$f"])
    if "$c" in tree:
        parts = _as_list(tree["$c"])
        if len(parts) != 2:
            raise CodecError("bad complex")
        re_, im = (_decode(v, buffers, depth + 1) for v in parts)
        try:
            return complex(float(re_), float(im))
        except (TypeError, ValueError):
            raise CodecError("bad complex") from None
    if "$fn" in tree and isinstance(tree["$fn"], str):
        return FunctionRef(tree["$fn"][:200])
    if "$o" in tree:
        type_name, summary = ([str(x)[:300] for x in _as_list(tree["$o"])[:2]] + ["", ""])[:2]
        return Opaque(type_name, summary)
    raise CodecError("unknown node")


def _as_list(x):
    if not isinstance(x, list):
        raise CodecError("expected a list")
    return x


def _decode_array(tree, buffers):
    view, table = buffers
    try:
        dtype = np.dtype(str(tree["dtype"]))
        shape = tuple(int(n) for n in tree["shape"])
        offset, size = table[int(tree["$a"])]
    except (KeyError, TypeError, ValueError, IndexError, OverflowError):
        raise CodecError("bad array header") from None
    if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.hasobject or dtype.itemsize == 0:
        raise CodecError(f"dtype {dtype} not allowed")
    if any(n < 0 for n in shape) or len(shape) > 32:
        raise CodecError("bad array shape")
    if math.prod(shape) * dtype.itemsize != size:
        raise CodecError("array size does not match its buffer")
    if size == 0:
        try:   # (an empty array may still name dimensions numpy refuses: [0, 2**62])
            arr = np.empty(shape, dtype=dtype.newbyteorder("="))
        except (ValueError, OverflowError, MemoryError):
            raise CodecError("bad array shape") from None
    else:
        arr = np.frombuffer(view, dtype=dtype, count=size // dtype.itemsize, offset=offset).reshape(shape)
        if not dtype.isnative:
            arr = arr.astype(dtype.newbyteorder("="))
        elif view.readonly:   # (the framing hands over writable buffers: no copy there)
            arr = arr.copy()
    return arr[()] if tree.get("scalar") else arr
