"""Gradescope: an autograder zip per assignment, and the runner it calls inside Gradescope's image.

``python -m autograder gradescope --assignment gmm --out DIR`` writes ``DIR/gradescope-gmm.zip``::

    setup.sh            installs Python and the package's dependencies (numpy, scipy, matplotlib,
                        plus the assignment's extra, e.g. autograd for advi) in the image
    run_autograder      grades /autograder/submission, writes /autograder/results/results.json
    requirements.txt
    lib/autograder/     a copy of this package (checks, sandbox, data): no install step, no network
    course/             what the grader needs of the course: nbgrader_config.py (a marker) and the
                        reference module solutions/<id>/ (never the source notebook, never the
                        other assignments' references)

The zip is uploaded by the instructor and is never shown to students. Inside the image the
student's code runs in the same sandbox as everywhere else: ``/autograder/source`` (the
reference), ``/autograder/results`` and ``/autograder/submission`` are hidden from it, and its
filesystem is read-only. ``$GRADESCOPE_ROOT`` (default ``/autograder``) and ``$GRADESCOPE_PYTHON``
(default ``python3``) let the test-suite run ``run_autograder`` in a temporary folder laid out like
Gradescope's.

results.json follows Gradescope's specification: one test per check (``name``, ``number``,
``score``, ``max_score``, ``status``, ``output`` = the feedback, ``visibility``), the total ``score``,
and an ``output`` summary (load problems, errors).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zipfile
from pathlib import Path

from . import blas, extras

VISIBILITY = "visible"   # Gradescope: visible, hidden, after_due_date, after_published

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image.
set -euo pipefail
if ! command -v python3 > /dev/null || ! python3 -m pip --version > /dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-pip > /dev/null
fi
python3 -m pip install --quiet --upgrade pip
python3 -m pip install --quiet -r /autograder/source/requirements.txt
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission. GRADESCOPE_ROOT / GRADESCOPE_PYTHON: for local tests.
ROOT="${{GRADESCOPE_ROOT:-/autograder}}"
PYTHON="${{GRADESCOPE_PYTHON:-python3}}"
export PYTHONPATH="$ROOT/source/lib"
export AUTOGRADER_COURSE_ROOT="$ROOT/source/course"
export {blas} PYTHONDONTWRITEBYTECODE=1
cd "$ROOT/source"
exec "$PYTHON" -m autograder.gradescope run --assignment {assignment} --root "$ROOT"
"""


# ------------------------------------------------------------------------------------ the zip
def build_zip(assignment_id: str, out_dir: str | Path) -> Path:
    """Write ``out_dir/gradescope-<assignment>.zip`` and return its path."""
    import importlib

    from .assignments import get_assignment
    from .grading import reference_for

    get_assignment(assignment_id)                     # KeyError for an unknown assignment
    reference = reference_for(assignment_id)          # ReferenceMissing outside the course checkout
    package = Path(importlib.import_module("autograder").__file__).resolve().parent
    datasets = Path(importlib.import_module("autograder.datasets").__file__).resolve().parent
    reference_dir = Path(reference.__file__).resolve().parent
    out = Path(out_dir) / f"gradescope-{assignment_id}.zip"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        _add_text(zf, "setup.sh", SETUP_SH, executable=True)
        _add_text(zf, "run_autograder", RUN_AUTOGRADER.format(assignment=assignment_id, blas=blas.shell_exports()), executable=True)
        _add_text(zf, "requirements.txt", "\n".join(requirements(assignment_id)) + "\n")
        for path in _files(package, skip=("build",)):
            rel = path.relative_to(package)
            if rel.parts[0] == "datasets":
                continue  # added from its real location below
            _add_file(zf, f"lib/autograder/{rel.as_posix()}", path)
        for path in _files(datasets):
            _add_file(zf, f"lib/autograder/datasets/{path.relative_to(datasets).as_posix()}", path)
        _add_text(zf, "course/nbgrader_config.py", "# marks this folder as the course root for the grader\n")
        _add_text(zf, "course/solutions/__init__.py", '"""Reference solutions (grader only)."""\n')
        for path in _files(reference_dir):
            if path.suffix == ".ipynb":
                continue  # the source notebook holds the hidden tests: never shipped
            _add_file(zf, f"course/solutions/{assignment_id}/{path.relative_to(reference_dir).as_posix()}", path)
    os.replace(tmp, out)
    return out


def requirements(assignment_id: str) -> list[str]:
    """The package's requirements plus the extra named after the assignment (e.g. autograd for advi)."""
    lines = extras.requires()
    if lines is None:
        raise RuntimeError(f"cannot read the requirements of {extras.DISTRIBUTION}: build the zip from the "
                           "course checkout or with the package installed")
    return extras.base(lines) + extras.of_extra(lines, assignment_id)


def _files(folder: Path, skip: tuple = ()):
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if not path.is_file() or "__pycache__" in rel.parts or ".ipynb_checkpoints" in rel.parts \
                or (rel.parts and rel.parts[0] in skip) or path.suffix == ".pyc":
            continue
        yield path


def _add_text(zf: zipfile.ZipFile, name: str, text: str, executable: bool = False) -> None:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o755 if executable else 0o644) << 16
    zf.writestr(info, text)


def _add_file(zf: zipfile.ZipFile, name: str, path: Path) -> None:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, path.read_bytes())


# ------------------------------------------------------------------------------------ the runner
def find_submission(folder: Path, assignment_id: str) -> Path | None:
    """The file to grade among what the student uploaded."""
    if not folder.is_dir():
        return None
    files = [p for p in sorted(folder.rglob("*")) if p.is_file() and ".ipynb_checkpoints" not in p.parts
             and "__MACOSX" not in p.parts]
    for candidates in ([p for p in files if p.name == f"{assignment_id}.ipynb"],
                       [p for p in files if p.suffix == ".ipynb"],
                       [p for p in files if p.name == f"{assignment_id}.py"],
                       [p for p in files if p.suffix == ".py"]):
        if candidates:
            return candidates[0]
    return None


def results_json(result, *, output: str = "", seconds: float = 0.0) -> dict:
    tests = []
    numbers: dict[str, int] = {}
    functions = list(dict.fromkeys(t.function for t in result.tests))
    for t in result.tests:
        numbers[t.function] = numbers.get(t.function, 0) + 1
        tests.append({
            "name": f"{t.function}: {t.name}", "number": f"{functions.index(t.function) + 1}.{numbers[t.function]}",
            "score": float(t.score), "max_score": float(t.max_score),
            "status": "passed" if t.passed else "failed", "output": t.feedback, "visibility": VISIBILITY,
        })
    lines = [output] if output else []
    if result.error:
        lines.append(result.error)
    lines += [f"! {note}" for note in result.notes]
    lines.append(f"Total: {result.score:g} / {result.max_score:g}")
    return {"score": float(result.score), "execution_time": round(seconds, 2), "output": "\n".join(lines),
            "visibility": VISIBILITY, "stdout_visibility": "hidden", "tests": tests}


def run(assignment_id: str, root: Path) -> dict:
    """Grade the submission in ``root/submission``; write ``root/results/results.json``."""
    from .engine import SubmissionResult
    from .supervisor import Request, grade_one

    started = time.monotonic()
    results_dir = root / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    try:
        path = find_submission(root / "submission", assignment_id)
        if path is None:
            result = SubmissionResult("submission", assignment_id,
                                      error=f"no notebook (.ipynb) or Python file (.py) was found in the "
                                            f"submission: upload {assignment_id}.ipynb")
            from .assignments import get_assignment
            from .engine.runner import _failed
            result.tests = [_failed(c, result.error) for c in get_assignment(assignment_id).checks]
        else:
            hidden = (str(root / "source"), str(root / "results"), str(root / "submission"))
            from .loading.reading import UnreadableSubmission, read_submission_bytes
            try:   # (never a symbolic link: a repository can carry one to /autograder/source)
                data, unreadable = read_submission_bytes(path), None
            except UnreadableSubmission as exc:
                data, unreadable = None, str(exc)
            record = grade_one(Request(assignment_id, path.name, data=data, suffix=path.suffix,
                                       unreadable=unreadable, hidden=hidden))
            result = SubmissionResult.from_dict(dict(record["result"], submission=path.name))
        payload = results_json(result, seconds=time.monotonic() - started,
                               output=f"Graded {path.name}." if path is not None else "")
    except Exception as exc:  # noqa: BLE001 - Gradescope must always get a results.json
        payload = {"score": 0.0, "output": f"The autograder failed: {type(exc).__name__}: {exc}. "
                                           "Please tell your instructor.", "tests": [],
                   "visibility": VISIBILITY, "execution_time": round(time.monotonic() - started, 2)}
    target = results_dir / "results.json"
    tmp = results_dir / ".results.json.tmp"
    tmp.write_text(json.dumps(payload, indent=1), encoding="utf-8")
    os.replace(tmp, target)
    return payload


def main(args) -> int:
    """``python -m autograder gradescope --assignment A --out DIR`` (from the CLI)."""
    from .grading import ReferenceMissing
    try:
        path = build_zip(args.assignment, args.out)
    except (KeyError, ReferenceMissing) as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    print(path)
    return 0


def _runner_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder.gradescope")
    sub = parser.add_subparsers(dest="command", required=True)
    runner = sub.add_parser("run", help="grade /autograder/submission (inside Gradescope's image)")
    runner.add_argument("--assignment", "-a", required=True)
    runner.add_argument("--root", default=os.environ.get("GRADESCOPE_ROOT", "/autograder"))
    args = parser.parse_args(argv)
    payload = run(args.assignment, Path(args.root))
    print(payload.get("output", ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(_runner_main())
