"""How long a student waits for ``check(...)`` in the notebook, per function and per assignment.

Run from the repository root::

    python benchmarks/bench_student_checks.py [--repeats 5] [--assignment gmm ...]

Every task's student-side check (``Checker.check``: the visible fixtures and the properties that
need no reference, in the student's kernel) is timed on correct implementations: the reference
module (``solutions.<id>``) and, where the issue asks for it, a slow but correct submission from
the corpus (one loop per position for the prankster and hard-EM assignments). Each time is the
median of ``--repeats`` runs; every check must pass.

Targets (2 cores, one BLAS thread):

* ``gmm``: median over the functions under 0.5 s;
* ``prankster``, ``hard_em``: every function under 2 s, the loop-per-position submission included;
* ``advi``: all the notebook's checks together under 5 s.

The exit status is 1 when a target is missed or a correct implementation fails its check.
"""

from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import importlib  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / "tests" / "corpora"
# Slow but correct submissions a check must still answer quickly.
SLOW_CORRECT = {"prankster": CORPORA / "prankster" / "correct" / "a_loop_per_position.py",
                "hard_em": CORPORA / "hard_em" / "correct" / "a_loops.py"}


def implementations(assignment_id: str) -> dict[str, dict]:
    """{label: namespace of functions}: the reference and the assignment's slow correct submission."""
    sys.path.insert(0, str(ROOT))
    out = {"reference": vars(importlib.import_module(f"solutions.{assignment_id}"))}
    slow = SLOW_CORRECT.get(assignment_id)
    if slow is not None:
        namespace = {"__name__": f"submission_{slow.stem}"}
        exec(compile(slow.read_text(), str(slow), "exec"), namespace)
        out[slow.name] = namespace
    return out


def check_times(assignment_id: str, namespace: dict, repeats: int = 5) -> dict[str, float]:
    """{task: median seconds of ``check(task, namespace[task])``}; raises when a check fails."""
    from autograder import Checker
    checker = Checker(assignment_id)
    medians = {}
    for task in checker.assignment.tasks:
        func = namespace[task.name]
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            report = checker.check(task.name, func)
            times.append(time.perf_counter() - started)
            if not report.passed:
                raise AssertionError(f"{assignment_id}.{task.name} fails its own check:\n{report!r}")
        medians[task.name] = statistics.median(times)
    return medians


def verdict(assignment_id: str, medians: dict[str, float]) -> tuple[str, bool]:
    """(what the target is and the figure, whether it is met)."""
    if assignment_id == "gmm":
        value = statistics.median(medians.values())
        return f"median over functions {value:.3f} s (target < 0.5 s)", value < 0.5
    if assignment_id in ("prankster", "hard_em"):
        value = max(medians.values())
        return f"slowest function {value:.3f} s (target < 2 s)", value < 2.0
    if assignment_id == "advi":
        value = sum(medians.values())
        return f"all checks together {value:.3f} s (target < 5 s)", value < 5.0
    return f"total {sum(medians.values()):.3f} s", True


def main() -> int:
    from autograder.assignments import ASSIGNMENT_IDS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--assignment", action="append", choices=ASSIGNMENT_IDS,
                        help="only this assignment (repeatable; default: all)")
    args = parser.parse_args()
    ok = True
    for assignment_id in args.assignment or ASSIGNMENT_IDS:
        for label, namespace in implementations(assignment_id).items():
            medians = check_times(assignment_id, namespace, args.repeats)
            text, met = verdict(assignment_id, medians)
            ok &= met
            print(f"{assignment_id} ({label}): {text}{'' if met else '  MISSED'}")
            for name, seconds in medians.items():
                print(f"    {name:<30} {seconds * 1000:8.1f} ms")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
