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


def test_every_assignment_has_its_checks_and_its_source_notebook():
    """The registry (the checks packages found) and the build (the source notebooks found) agree,
    in the course's order."""
    from autograder.assignments import ASSIGNMENT_IDS, available, get_assignment
    from autograder.build.__main__ import assignments_with_sources
    course = ["gmm", "prankster", "hard_em", "advi"]         # the course's order (their ORDER)
    assert ASSIGNMENT_IDS == available() and [a for a in ASSIGNMENT_IDS if a in course] == course
    assert sorted(ASSIGNMENT_IDS) == assignments_with_sources()
    for assignment_id in ASSIGNMENT_IDS:
        assert get_assignment(assignment_id).id == assignment_id
