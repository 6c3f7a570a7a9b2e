"""A safe encoding for values that cross the sandbox boundary.

Pickle would let a hostile submission run code in the grader when its results are unpickled, so
values travel as a JSON tree plus raw array buffers. Only plain data survives the trip: None,
bools, numbers, strings, lists, tuples, dicts, numeric numpy arrays and scalars, and references
to functions (``FunctionRef``) that the other side turns into callables. Anything else arrives as
an ``Opaque`` placeholder that says what it was, so a check can tell the student "your function
returned a generator".
"""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass

import numpy as np

MAX_MESSAGE_BYTES = 1 << 30
_MAX_DEPTH = 32
_ARRAY_KINDS = "biufc"  # bool, int, uint, float, complex


class CodecError(ValueError):
    """The bytes are not a valid message (corrupt, hostile, or too large)."""


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


def encode(value: object, describe=repr) -> bytes:
    """Serialise ``value``. ``describe`` summarises values that cannot be encoded."""
    buffers: list[bytes] = []
    tree = _encode(value, buffers, describe, 0)
    header = json.dumps(tree, separators=(",", ":"), allow_nan=False).encode()
    parts = [struct.pack("<II", len(header), len(buffers)), header]
    parts.extend(struct.pack("<Q", len(b)) for b in buffers)
    parts.extend(buffers)
    return b"".join(parts)


def decode(data: bytes) -> object:
    """Rebuild a value from ``encode``'s bytes. Raises CodecError on anything malformed."""
    try:
        header_len, n_buffers = struct.unpack_from("<II", data, 0)
        offset = 8
        header = data[offset:offset + header_len]
        offset += header_len
        sizes = struct.unpack_from(f"<{n_buffers}Q", data, offset)
        offset += 8 * n_buffers
        buffers = []
        for size in sizes:
            if offset + size > len(data):
                raise CodecError("truncated message")
            buffers.append(memoryview(data)[offset:offset + size])
            offset += size
        tree = json.loads(header)
    except (struct.error, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CodecError(f"malformed message: {exc}") from None
    return _decode(tree, buffers, 0)


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
        arr = arr.astype(arr.dtype.newbyteorder("<"), order="C", copy=False)  # keeps 0-d arrays 0-d
        buffers.append(arr.tobytes())
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
        re_, im = (_decode(v, buffers, depth + 1) for v in _as_list(tree["$c"]))
        return complex(float(re_), float(im))
    if "$fn" in tree and isinstance(tree["$fn"], str):
        return FunctionRef(tree["$fn"])
    if "$o" in tree:
        type_name, summary = (str(x)[:300] for x in _as_list(tree["$o"])[:2])
        return Opaque(type_name, summary)
    raise CodecError("unknown node")


def _as_list(x):
    if not isinstance(x, list):
        raise CodecError("expected a list")
    return x


def _decode_array(tree, buffers):
    try:
        dtype = np.dtype(str(tree["dtype"]))
        shape = tuple(int(n) for n in tree["shape"])
        buf = buffers[int(tree["$a"])]
    except (KeyError, TypeError, ValueError, IndexError):
        raise CodecError("bad array header") from None
    if dtype.kind not in _ARRAY_KINDS or dtype.fields is not None or dtype.hasobject:
        raise CodecError(f"dtype {dtype} not allowed")
    if any(n < 0 for n in shape) or len(shape) > 32:
        raise CodecError("bad array shape")
    if math.prod(shape) * dtype.itemsize != len(buf):
        raise CodecError("array size does not match its buffer")
    arr = np.frombuffer(buf, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=True)
    return arr[()] if tree.get("scalar") else arr
