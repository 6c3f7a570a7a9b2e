"""Shared test set-up: one BLAS thread per process, the virtualenv's bin/ on PATH, paths."""

import os
import sys
from pathlib import Path

# Before numpy is imported anywhere: multi-threaded BLAS makes the many small linear-algebra
# calls of the checks an order of magnitude slower on a 2-core machine.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
# nbgrader runs `alembic`, and notebooks start kernels: both need this interpreter's bin/ on PATH.
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")

import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / "tests" / "corpora"
def grader_side_stall(points: int = 20000) -> str:
    """Grader-side work without end, as lines of a debugging assertion's body (``train_EM``, ``mu``
    are its arguments): the grader's own train_EM (each call bounded; it ignores loop counts a
    submission asks for) called again and again on ``points`` points, until the call's deadline
    (or the stand-in's limit on fits) cuts it off."""
    return f"while True:\n    train_EM(np.random.randn({points}, mu.shape[1]), mu.shape[0])"


GRADER_SIDE_STALL = grader_side_stall()


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


def remove_planted(folder: str, *, empty_parents: bool = True) -> None:
    """Remove a folder a test planted on the host, and its parents as far as they are empty
    (``/srv/nbgrader/exchange/course-<pid>``: another test may hold a course of its own there).
    ``empty_parents=False`` for a folder planted in a host folder that must stay, however empty
    (``/var/tmp/<name>``)."""
    import shutil
    shutil.rmtree(folder, ignore_errors=True)
    if not empty_parents:
        return
    try:
        os.removedirs(os.path.dirname(folder))
    except OSError:
        pass
