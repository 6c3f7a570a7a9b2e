"""Expectations: validate what a student's function returned and explain any mismatch.

Every comparison takes explicit ``rtol`` and ``atol``: there are no defaults, so no check can
inherit a tolerance that waves through a value off by a factor of ten on a small number.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..sandbox.codec import Opaque
from .failures import Failed


def describe_value(value) -> str:
    if value is None:
        return "None"
    if isinstance(value, Opaque):
        return f"a {value.type_name} ({value.summary})"
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"a {type(value).__name__} ({_short_repr(value)})"


def array(value, what: str, *, shape: tuple | None = None, finite: bool = True,
          why_nonfinite: str = "") -> np.ndarray:
    """``value`` as a float (or complex) array of ``shape``; Failed with a clear message otherwise.

    ``shape`` may contain None for "any size".
    """
    if value is None:
        raise Failed(f"{what} is None", why="the function probably lacks a `return` statement")
    if isinstance(value, Opaque):
        raise Failed(f"{what} should be a numpy array but is {describe_value(value)}")
    try:
        arr = np.asarray(value)
    except Exception:  # ragged lists and friends
        raise Failed(f"{what} should be a numpy array but is {describe_value(value)}") from None
    if arr.dtype == object or arr.dtype.kind not in "biufc":
        raise Failed(f"{what} should be a numeric array but is {describe_value(value)}")
    if shape is not None:
        check_shape(arr, what, shape)
    if finite and arr.dtype.kind in "fc" and not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))
        first = tuple(int(i) for i in bad[0]) if arr.ndim else ()
        raise Failed(f"{what} contains {len(bad)} non-finite value(s) (first: {arr[first]!r} at index {first})",
                     why=why_nonfinite or "inf or NaN usually comes from exp overflowing, log(0), or 0/0")
    return arr.astype(np.complex128 if arr.dtype.kind == "c" else np.float64, copy=False)


def check_shape(arr: np.ndarray, what: str, shape: tuple) -> None:
    if len(arr.shape) == len(shape) and all(s is None or a == s for a, s in zip(arr.shape, shape)):
        return
    expected = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
    why = ""
    if len(arr.shape) == len(shape) == 2 and arr.shape == tuple(reversed(shape)):
        why = "it looks transposed: check which axis is which"
    elif arr.size == np.prod([s for s in shape if s is not None]) and None not in shape:
        why = "it has the right number of entries but the wrong layout: check your reshape / axis order"
    elif len(arr.shape) < len(shape):
        why = "an axis is missing: did a sum or mean run over the wrong axis?"
    raise Failed(f"{what} has shape {arr.shape}, expected {expected}", why=why)


def scalar(value, what: str, *, finite: bool = True, why_nonfinite: str = "") -> float:
    """``value`` as a Python float (accepts numpy scalars and size-1 arrays)."""
    if isinstance(value, Opaque) or value is None or isinstance(value, (str, bytes)):
        raise Failed(f"{what} should be a number but is {describe_value(value)}")
    if isinstance(value, numbers.Number) and not isinstance(value, bool):
        out = complex(value) if isinstance(value, complex) else float(value)
    else:
        try:
            arr = np.asarray(value)
        except Exception:
            raise Failed(f"{what} should be a number but is {describe_value(value)}") from None
        if arr.dtype.kind not in "biuf" or arr.size != 1:
            raise Failed(f"{what} should be a single number but is {describe_value(value)}")
        out = float(arr.reshape(()))
    if isinstance(out, complex):
        raise Failed(f"{what} is complex ({out}); it should be real",
                     why="a complex number usually means the square root or log of a negative value")
    if finite and not np.isfinite(out):
        raise Failed(f"{what} is {out}", why=why_nonfinite or "inf or NaN usually comes from exp overflowing or log(0)")
    return out


def close(got, expected, what: str, *, rtol: float, atol: float, why: str = "", case: str = "") -> None:
    """Elementwise ``|got - expected| <= atol + rtol * |expected|``; explain the worst entries."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        check_shape(got, what, expected.shape)
    error = np.abs(got - expected)
    allowed = atol + rtol * np.abs(expected)
    bad = ~(error <= allowed)  # NaN counts as bad
    if not bad.any():
        return
    if got.ndim == 0:
        raise Failed(f"{what} is {_num(got)}, expected {_num(expected)} "
                     f"(difference {_num(got - expected)}, tolerance {_num(allowed)})", why=why, case=case)
    # Worst first: NaN (or inf) entries before any finite mismatch.
    with np.errstate(invalid="ignore", over="ignore"):
        severity = np.where(np.isfinite(error), error / np.maximum(allowed, 1e-300), np.inf)
    order = np.argsort(-np.where(bad, severity, -1.0), axis=None, kind="stable")
    lines = []
    for flat in order[:3]:
        idx = np.unravel_index(flat, got.shape)
        if not bad[idx]:
            break
        lines.append(f"  at {tuple(int(i) for i in idx)}: got {_num(got[idx])}, expected {_num(expected[idx])}")
    count = int(bad.sum())
    raise Failed(f"{what} differs from the expected value in {count} of {got.size} entries:\n" + "\n".join(lines),
                 why=why, case=case)


def format_case(**values) -> str:
    """A compact, readable rendering of a (small) failing input."""
    parts = []
    for name, value in values.items():
        if isinstance(value, np.ndarray):
            body = np.array2string(value, precision=4, suppress_small=False, threshold=60, edgeitems=3,
                                   max_line_width=100)
            parts.append(f"{name} (shape {value.shape}) =\n{_indent(body)}")
        else:
            parts.append(f"{name} = {_short_repr(value)}")
    return "\n" + "\n".join(parts)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


def _num(x) -> str:
    x = float(np.asarray(x))
    return f"{x:.10g}"


def _short_repr(value) -> str:
    try:
        text = repr(value)
    except Exception:
        text = "?"
    return text if len(text) <= 120 else text[:117] + "..."


def python_loops(source: str, name: str | None = None) -> list[str]:
    """Descriptions of the Python-level loops one definition (``source``) runs, helpers of its own
    file included (see ``autograder.engine.loops``)."""
    from .loops import find_loops
    import ast
    import textwrap

    if name is None:
        tree = ast.parse(textwrap.dedent(source))
        defs = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
        if not defs:
            return []
        name = defs[-1]
    return [loop.describe() for loop in find_loops([textwrap.dedent(source)], name) or []]


VECTORISE_WHY = ("the task asks for array operations only: broadcast X[:, None, :] against mu[None, :, :], "
                 "or expand the square into matrix products; np.vectorize, apply_along_axis, map and "
                 "comprehensions still run Python once per point")


def no_python_loops(statements: list[str], function: str) -> None:
    """Fail when ``function``, or anything of the submission it can reach, loops in Python.

    ``statements`` are the submission's kept top-level statements (``Context.definitions()``).
    """
    from .loops import find_loops

    loops = find_loops(statements, function)
    if loops is None:
        raise Failed(f"the definition of {function} could not be found in your code",
                     why="define it with `def` at the top level of a cell")
    if not loops:
        return
    loop = loops[0]
    route = f", reached through {' -> '.join(loop.path)}" if len(loop.path) > 1 else ""
    if loop.suspicious:
        why = ("the grader must be able to read what your function runs: code built or looked up at run "
               "time (eval, exec, globals(), getattr with a computed name, ...) cannot be checked for "
               "loops; write it with plain array operations")
    elif loop.kind.startswith("recursion"):
        why = "a function that calls itself is a loop too; " + VECTORISE_WHY
    else:
        why = VECTORISE_WHY
    raise Failed(f"{function} uses {loop.describe()}{route}", why=why)
