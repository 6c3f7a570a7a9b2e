"""The package's declared extension points hold (interfaces that several classes implement)."""

from __future__ import annotations

import inspect

import pytest

from autograder.engine.executors import Executor, InProcessExecutor, SandboxExecutor

PROTOCOL_METHODS = ["start", "close", "defines", "own_function", "source", "definitions", "call"]


@pytest.mark.parametrize("executor", [InProcessExecutor, SandboxExecutor])
def test_every_executor_implements_the_executor_protocol(executor):
    for name in PROTOCOL_METHODS:
        assert inspect.signature(getattr(executor, name)) == inspect.signature(getattr(Executor, name)), \
            f"{executor.__name__}.{name} differs from Executor.{name}"
    for name in ("in_process", "load_failure", "problems"):
        assert hasattr(executor, name), f"{executor.__name__} has no {name}"
    assert isinstance(InProcessExecutor({}), Executor)


def test_the_blas_thread_setting_is_written_in_one_place():
    from conftest import ROOT
    holders = sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("autograder/**/*.py")
                     if "NUM_THREADS" in p.read_text(encoding="utf-8") or "threadpool_limits" in p.read_text(encoding="utf-8"))
    assert holders == ["autograder/blas.py"]
