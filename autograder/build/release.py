"""Source notebook -> released student notebook, with the real nbgrader.

``nbgrader generate_assignment`` removes the solutions and the hidden tests, locks the test cells
and records their checksums. It writes into a temporary folder (with its own gradebook), so a
``--check`` run compares without touching the repository.
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


def released_files(root: Path, assignment_id: str) -> dict[str, bytes]:
    """The released files of ``assignment_id``, as {relative path: content}."""
    with tempfile.TemporaryDirectory(prefix="release-") as tmp:
        cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", assignment_id, "--force",
               f"--CourseDirectory.release_directory={tmp}/release",
               f"--CourseDirectory.db_url=sqlite:///{tmp}/gradebook.db", "--log-level=ERROR"]
        done = subprocess.run(cmd, cwd=root, env=nbgrader_environment(), capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"nbgrader generate_assignment {assignment_id} failed:\n{done.stdout}\n{done.stderr}")
        out_dir = Path(tmp) / "release" / assignment_id
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
