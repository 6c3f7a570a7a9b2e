"""Source notebook -> released student notebook, with the real nbgrader.

``nbgrader generate_assignment`` removes the solutions and the hidden tests, locks the test cells
and records their checksums. It writes into a temporary folder (with its own gradebook), so a
``--check`` run compares without touching the repository. Every assignment is released by one
nbgrader process (``python -m autograder.build.release``): nbgrader's start-up and the gradebook's
creation (alembic) cost several times one release, so four processes took 28 s of CPU and one
takes 8 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from . import notebooks


def nbgrader_environment() -> dict:
    """nbgrader runs `alembic` as a subprocess: the interpreter's bin/ must be on PATH."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def released_files(root: Path, assignment_ids: list[str]) -> dict[str, dict[str, bytes]]:
    """The released files of each assignment, as {assignment id: {relative path: content}}."""
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        cmd = [sys.executable, "-m", "autograder.build.release", tmp, *assignment_ids]
        done = subprocess.run(cmd, cwd=root, env=nbgrader_environment(), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"nbgrader generate_assignment failed:\n{done.stdout}\n{done.stderr}")
        return {assignment_id: _read_release(Path(tmp) / "release" / assignment_id)
                for assignment_id in assignment_ids}


def _read_release(out_dir: Path) -> dict[str, bytes]:
    files = {}
    for path in sorted(out_dir.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(out_dir).as_posix()
        if path.suffix == ".ipynb":
            files[rel] = notebooks.dumps(notebooks.clean(notebooks.read(path))).encode()
        else:
            files[rel] = path.read_bytes()
    return files


def _generate(tmp: str, assignment_ids: list[str]) -> int:
    """``nbgrader generate_assignment ID --force`` for each id, in this process (run in the course
    root, so nbgrader reads its ``nbgrader_config.py``)."""
    from nbgrader.apps import GenerateAssignmentApp
    for assignment_id in assignment_ids:
        app = GenerateAssignmentApp()
        app.initialize([assignment_id, "--force", f"--CourseDirectory.release_directory={tmp}/release",
                        f"--CourseDirectory.db_url=sqlite:///{tmp}/gradebook.db", "--log-level=ERROR"])
        try:
            app.start()
        except BaseException as exc:   # nbgrader reports through its log and exits; say which one failed
            print(f"{assignment_id}: {exc!r}", file=sys.stderr)
            return 1
        if not (Path(tmp) / "release" / assignment_id).is_dir():
            print(f"{assignment_id}: nothing was released (see nbgrader's log above)", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_generate(sys.argv[1], sys.argv[2:]))
