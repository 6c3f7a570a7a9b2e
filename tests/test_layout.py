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


# The layers, lowest first: a module may import the package's modules of its own layer or below,
# and the helpers every layer shares (BASE); never a layer above (the engine never imports the
# notebook UI, the reporting never the batch that feeds it).
LAYERS = ["loading", "sandbox", "engine", "assignments", "reporting"]
BASE = {"blas", "quiet", "shell", "datasets", "__init__"}


def _imported_modules(path, package: str) -> set[str]:
    """The first component below ``autograder`` of everything ``path`` imports from the package."""
    import ast
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = package.split(".")
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = here[:len(here) - node.level + 1] if node.level else []
            module = base + (node.module.split(".") if node.module else [])
            names = [".".join(module + ([alias.name] if not node.module else [])) for alias in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "autograder" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_the_layers_point_one_way():
    from conftest import ROOT
    order = {layer: i for i, layer in enumerate(LAYERS)}
    wrong = []
    for layer in LAYERS:
        for path in sorted((ROOT / "autograder" / layer).rglob("*.py")):
            rel = path.relative_to(ROOT / "autograder")
            if rel.parts[:2] == ("sandbox", "guest"):
                continue   # the sandbox's stand-in for the package: its imports are its own
            package = ".".join(("autograder",) + rel.parts[:-1])
            for target in _imported_modules(path, package) - BASE:
                if order.get(target, len(LAYERS)) > order[layer]:
                    wrong.append(f"{rel.as_posix()} imports autograder.{target}")
    assert not wrong, "a lower layer imports a higher one:\n" + "\n".join(wrong)
