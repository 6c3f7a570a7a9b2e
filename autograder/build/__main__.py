"""``python -m autograder.build [--check] [ASSIGNMENT ...]``: regenerate (or verify) generated files.

For each assignment with a source notebook ``solutions/<id>/<id>.ipynb``:
  1. clean the source notebook (no outputs, stable JSON) and write its set-up cell from the
     template in ``setup_cell.py``;
  2. export the reference module ``solutions/<id>/__init__.py``;
  3. compute the visible fixtures' expected values (``autograder/assignments/<id>/visible.npz``,
     when the assignment's ``fixtures.py`` defines ``visible_expectations``);
  4. release the student notebook into ``course/<id>/`` with nbgrader.
With --check nothing is written; the exit status is 1 when a generated file is out of date.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from pathlib import Path

from . import notebooks, reference_module, release, setup_cell

ROOT = Path(__file__).resolve().parents[2]


def source_content(assignment_id: str) -> bytes:
    """The source notebook as committed: clean, its first code cell the generated set-up cell, and
    each test cell worth the points of its function's checks."""
    source = ROOT / "solutions" / assignment_id / f"{assignment_id}.ipynb"
    nb = setup_cell.with_setup_cell(notebooks.clean(notebooks.read(source)), assignment_id)
    return notebooks.dumps(notebooks.sync_points(nb, _assignment_points(assignment_id))).encode()


def generated_files(assignment_id: str, released: dict[str, bytes] | None = None) -> dict[Path, bytes]:
    """Every file generated for ``assignment_id``, as {absolute path: content}, computed in memory
    (``released``: its released files, when nbgrader has already released it)."""
    source = ROOT / "solutions" / assignment_id / f"{assignment_id}.ipynb"
    out: dict[Path, bytes] = {}
    out[source] = source_content(assignment_id)
    module_path = source.with_name("__init__.py")
    out[module_path] = reference_module.module_source(source, assignment_id).encode()
    fixtures = _fixtures(assignment_id)
    if hasattr(fixtures, "visible_expectations"):
        reference = _module_from_source(f"solutions.{assignment_id}", out[module_path].decode(), module_path)
        from ..datasets import npz_bytes
        out[fixtures.VISIBLE_PATH] = npz_bytes(fixtures.visible_expectations(reference))
    if released is None:
        released = release.released_files(ROOT, [assignment_id])[assignment_id]
    for rel, content in released.items():
        out[ROOT / "course" / assignment_id / rel] = content
    return out


def _fixtures(assignment_id: str):
    """The assignment's ``fixtures`` module (its visible fixtures), None when it has none."""
    name = f"autograder.assignments.{assignment_id}.fixtures"
    return importlib.import_module(name) if importlib.util.find_spec(name) is not None else None


def _assignment_points(assignment_id: str) -> dict[str, float]:
    from ..assignments import get_assignment
    spec = get_assignment(assignment_id)
    return {f"test_{task.name}": spec.points(task.name) for task in spec.tasks}


def _module_from_source(name: str, source: str, path: Path):
    """Import the freshly generated module text without writing it (for --check)."""
    import types
    module = types.ModuleType(name)
    module.__file__ = str(path)
    exec(compile(source, str(path), "exec"), module.__dict__)
    return module


# Expected values of the visible fixtures are computed with the machine's BLAS: another CPU or
# library build may round the last bit differently. That is not drift (the visible checks compare
# with tolerances many orders of magnitude looser), so .npz files are compared by value.
NPZ_RTOL = 1e-12


def _same_numbers(path: Path, current: bytes, content: bytes) -> bool:
    """True when two .npz files hold the same arrays up to NPZ_RTOL (relative, per element)."""
    if path.suffix != ".npz":
        return False
    import io

    import numpy as np
    try:
        old, new = np.load(io.BytesIO(current)), np.load(io.BytesIO(content))
    except (OSError, ValueError):
        return False
    if sorted(old.files) != sorted(new.files):
        return False
    for key in new.files:
        a, b = old[key], new[key]
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype.kind in "fc":
            if not np.allclose(a, b, rtol=NPZ_RTOL, atol=0.0, equal_nan=True):
                return False
        elif not np.array_equal(a, b):
            return False
    return True


def assignments_with_sources() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "solutions").glob("*/*.ipynb") if p.stem == p.parent.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.build", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify instead of writing")
    parser.add_argument("assignments", nargs="*", help="default: every assignment with a source notebook")
    args = parser.parse_args(argv)
    stale = []
    assignment_ids = args.assignments or assignments_with_sources()
    for assignment_id in assignment_ids:
        source = ROOT / "solutions" / assignment_id / f"{assignment_id}.ipynb"
        if not args.check and source.read_bytes() != source_content(assignment_id):
            source.write_bytes(source_content(assignment_id))  # first: nbgrader releases from this file
            stale.append(source)
    releases = release.released_files(ROOT, assignment_ids)
    for assignment_id in assignment_ids:
        files = generated_files(assignment_id, releases[assignment_id])
        released = ROOT / "course" / assignment_id
        for extra in sorted(released.rglob("*")) if released.exists() else []:
            if extra.is_file() and extra not in files:
                stale.append(extra)
                if not args.check:
                    extra.unlink()
        for path, content in files.items():
            current = path.read_bytes() if path.exists() else None
            if current == content or (current is not None and _same_numbers(path, current, content)):
                continue
            stale.append(path)
            if not args.check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(content)
    for path in stale:
        print(("out of date: " if args.check else "updated ") + str(path.relative_to(ROOT)))
    if args.check and stale:
        print("run `make build` and commit the result", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
