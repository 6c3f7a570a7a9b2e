"""Noticing when a function changes its arguments in place."""

from __future__ import annotations

import inspect

import numpy as np


def snapshot(value):
    """A copy of ``value`` deep enough to compare with after a call."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (list, tuple)):
        return type(value)(snapshot(v) for v in value) if type(value) in (list, tuple) else value
    if isinstance(value, dict):
        return {k: snapshot(v) for k, v in value.items()}
    return value


def same(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return (isinstance(b, np.ndarray) and a.shape == b.shape and a.dtype == b.dtype
                and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")))
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return True  # numbers and strings cannot change in place


def mutated_arguments(func, before: tuple, args: tuple, kwargs: dict) -> list[str]:
    """Names of the arguments of ``func`` that differ from ``before = (args, kwargs)`` snapshots."""
    old_args, old_kwargs = before
    changed = [i for i, (old, new) in enumerate(zip(old_args, args)) if not same(old, new)]
    params = []
    if changed:   # (the signature only to name them: most calls change nothing)
        try:
            params = list(inspect.signature(func).parameters)
        except (TypeError, ValueError):
            pass
    names = [params[i] if i < len(params) else f"argument {i + 1}" for i in changed]
    names += [k for k in kwargs if k in old_kwargs and not same(old_kwargs[k], kwargs[k])]
    return names
