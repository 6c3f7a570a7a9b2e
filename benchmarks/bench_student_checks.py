"""How long a student waits for ``check(...)``: on correct, loop-based, wrong and never-stopping code.

Run from the repository root::

    python benchmarks/bench_student_checks.py [--repeats 3] [--assignment gmm ...]
        [--sections reference,correct,mutants,slow] [--busy 1] [--blas] [--json FILE]

For every assignment the student-side check of a function (``Checker.check``: the visible
fixtures and the properties that need no reference, in the student's own process, as in their
kernel) is timed on

(a) ``reference``: the reference module ``solutions.<id>``, every function, median of ``--repeats``;
(b) ``correct``: every correct submission of the corpus (``tests/corpora/<id>/correct/``: loops,
    vectorised, scipy, notebooks), every function, median of ``--repeats``;
(c) ``mutants``: every mutant of the corpus (``tests/corpora/<id>/mutants/``), the check of the
    function it breaks, once;
(d) ``slow``: the slow and never-stopping loops of ``benchmarks/slow_loops/<id>/`` (a train_EM
    that ignores rtol, a loop over every data point...), the check of the function each
    replaces, once;
(e) ``progress``: ``progress()`` on the reference's functions in a fresh Checker (every check
    runs), again (nothing changed: nothing reruns), and after the first task's function is
    replaced by a new one (it and what depends on it rerun). No target; the issue measured
    6-23 s for a progress() that reran everything.

Targets (issue 12, "Fast answers"; 2 cores with other work running): every check under 2 s on a
correct implementation, (a) and (b), and under 10 s on any wrong one, (c) and (d); correct
implementations pass their checks. Besides, on the reference: ``gmm``'s median over functions
under 0.5 s, ``advi``'s checks together under 5 s. The report gives the slowest check of each
section per assignment and lists every violation; the exit status is 1 when there is one.

BLAS: by default BLAS keeps its own thread count (one per core, like a student's kernel; the
checks limit it to one thread themselves). ``--blas-threads N`` sets ``OPENBLAS_NUM_THREADS``
and friends instead. ``--busy N`` keeps N cores busy (a tight Python loop per core) during the
run. ``--blas`` measures what the one-thread limit buys: section (a) runs in child processes
with BLAS's default threads, next to one process keeping a core busy, with and without the
limit (``autograder.engine.runner.one_blas_thread``), alternating, and the report compares the
slowest and the total check time per assignment.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPORA = ROOT / "tests" / "corpora"
SLOW_LOOPS = Path(__file__).resolve().parent / "slow_loops"
BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
SECTIONS = ("reference", "correct", "mutants", "slow", "progress")
CORRECT_LIMIT, WRONG_LIMIT = 2.0, 10.0


@dataclass
class Timing:
    assignment: str
    section: str        # reference, correct, mutants, slow
    source: str         # the file (or "solutions.<id>")
    function: str
    seconds: float
    passed: bool        # the student-side check passed

    @property
    def limit(self) -> float:
        return CORRECT_LIMIT if self.section in ("reference", "correct") else WRONG_LIMIT

    @property
    def problem(self) -> str | None:
        if self.section == "progress":     # no target: the figure is the point
            return None
        if self.seconds >= self.limit:
            return f"took {self.seconds:.1f} s (target < {self.limit:g} s)"
        if self.section in ("reference", "correct") and not self.passed:
            return "a correct implementation fails its check"
        return None


# ---------------------------------------------------------------------------------- the code
def _header(path: Path, field: str) -> str | None:
    for line in path.read_text().splitlines()[:4]:
        if line.startswith(f"# {field}: "):
            return line.split(": ", 1)[1].strip()
    return None


def namespace_of(path: Path, namespace: dict | None = None) -> dict:
    """The globals a student's kernel would have after running ``path`` (a .py file or a notebook's
    definitions)."""
    from autograder.loading import load_submission
    namespace = namespace if namespace is not None else {"__name__": f"submission_{path.stem}"}
    with contextlib.redirect_stdout(io.StringIO()):
        if path.suffix == ".py":
            exec(compile(path.read_text(), str(path), "exec"), namespace)
        else:
            submission = load_submission(path)
            if submission.error:
                raise RuntimeError(f"{path}: {submission.error}")
            for statement in submission.statements:
                exec(compile(statement.source, statement.filename, "exec"), namespace)
    return namespace


def reference_namespace(assignment_id: str) -> dict:
    import importlib
    sys.path.insert(0, str(ROOT))
    return vars(importlib.import_module(f"solutions.{assignment_id}"))


def corpus(assignment_id: str, kind: str) -> list[Path]:
    folder = CORPORA / assignment_id / kind
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".py", ".ipynb"))


def slow_loops(assignment_id: str) -> list[Path]:
    folder = SLOW_LOOPS / assignment_id
    return sorted(folder.glob("*.py")) if folder.is_dir() else []


# ---------------------------------------------------------------------------------- timing
def time_check(checker, name: str, func, repeats: int) -> tuple[float, bool]:
    """(median seconds of ``checker.check(name, func)``, whether it passed). The report it prints
    (as in a script) is part of what is timed, and swallowed."""
    times, passed = [], True
    for _ in range(repeats):
        with contextlib.redirect_stdout(io.StringIO()):
            started = time.perf_counter()
            report = checker.check(name, func)
            times.append(time.perf_counter() - started)
        passed &= report.passed
    return statistics.median(times), passed


def implementations(assignment_id: str) -> dict[str, dict]:
    """{label: namespace}: the reference and every correct corpus submission (bench_grading uses it)."""
    out = {"reference": reference_namespace(assignment_id)}
    out.update({path.name: namespace_of(path) for path in corpus(assignment_id, "correct")})
    return out


def check_times(assignment_id: str, namespace: dict, repeats: int = 5) -> dict[str, float]:
    """{task: median seconds of ``check(task, namespace[task])``}; raises when a check fails."""
    from autograder import Checker
    checker = Checker(assignment_id)
    medians = {}
    for task in checker.assignment.tasks:
        medians[task.name], passed = time_check(checker, task.name, namespace[task.name], repeats)
        if not passed:
            raise AssertionError(f"{assignment_id}.{task.name} fails its own check")
    return medians


def run_assignment(assignment_id: str, sections: tuple[str, ...], repeats: int, progress=print) -> list[Timing]:
    from autograder import Checker
    checker = Checker(assignment_id)
    tasks = [t.name for t in checker.assignment.tasks]
    timings: list[Timing] = []

    def complete(section: str, source: str, namespace: dict) -> None:
        for name in tasks:
            seconds, passed = time_check(checker, name, namespace.get(name), repeats)
            timings.append(Timing(assignment_id, section, source, name, seconds, passed))

    def one(section: str, source: str, namespace: dict, name: str) -> None:
        seconds, passed = time_check(checker, name, namespace.get(name), 1)
        timings.append(Timing(assignment_id, section, source, name, seconds, passed))
        progress(f"  {section:<8} {source:<58} {name:<28} {seconds:7.2f} s {'passes' if passed else 'fails'}")

    if "reference" in sections:
        complete("reference", f"solutions.{assignment_id}", reference_namespace(assignment_id))
    if "correct" in sections:
        for path in corpus(assignment_id, "correct"):
            complete("correct", path.name, namespace_of(path))
    if "mutants" in sections:
        for path in corpus(assignment_id, "mutants"):
            one("mutants", path.name, namespace_of(path), _header(path, "breaks"))
    if "slow" in sections:
        for path in slow_loops(assignment_id):
            namespace = namespace_of(ROOT / _header(path, "base"))
            namespace_of(path, namespace)
            one("slow", path.name, namespace, _header(path, "breaks"))
    if "progress" in sections:
        for label, seconds, rerun in time_progress(assignment_id):
            progress(f"  progress {label:<58} {len(rerun):2d} task(s) run {seconds:7.2f} s")
            timings.append(Timing(assignment_id, "progress", label, ",".join(rerun), seconds, True))
    return timings


def time_progress(assignment_id: str) -> list[tuple[str, float, tuple[str, ...]]]:
    """[(what, seconds, tasks run)] for progress() first, again, and after a function changed."""
    import functools

    from autograder import Checker
    checker = Checker(assignment_id)
    namespace = dict(reference_namespace(assignment_id))
    out = []

    def timed(label: str) -> None:
        with contextlib.redirect_stdout(io.StringIO()):
            started = time.perf_counter()
            summary = checker.progress(namespace)
            out.append((label, time.perf_counter() - started, summary.rerun))

    timed("first call (every task)")
    timed("again, nothing changed")
    first = checker.assignment.tasks[0].name
    original = namespace[first]
    namespace[first] = functools.wraps(original)(lambda *args, **kwargs: original(*args, **kwargs))
    timed(f"after a new {first}")
    return out


# ---------------------------------------------------------------------------------- report
def verdicts(assignment_id: str, timings: list[Timing]) -> list[tuple[str, bool]]:
    """(line, met) per target of one assignment: the per-check limits, and the reference's own."""
    lines = []
    for section in SECTIONS[:4]:
        rows = [t for t in timings if t.section == section]
        if not rows:
            continue
        slowest = max(rows, key=lambda t: t.seconds)
        bad = [t for t in rows if t.problem]
        lines.append((f"{section:<9} {len(rows):3d} checks, slowest {slowest.seconds:6.2f} s "
                      f"({slowest.source}: {slowest.function}, {'passes' if slowest.passed else 'fails'}); "
                      f"target < {slowest.limit:g} s: {len(bad)} violation(s)", not bad))
    reference = {t.function: t.seconds for t in timings if t.section == "reference"}
    if reference and assignment_id == "gmm":
        value = statistics.median(reference.values())
        lines.append((f"reference median over functions {value:.3f} s (target < 0.5 s)", value < 0.5))
    if reference and assignment_id == "advi":
        value = sum(reference.values())
        lines.append((f"reference, all checks together {value:.3f} s (target < 5 s)", value < 5.0))
    return lines


def report(timings: list[Timing]) -> bool:
    ok = True
    for assignment_id in dict.fromkeys(t.assignment for t in timings):
        rows = [t for t in timings if t.assignment == assignment_id]
        print(f"\n{assignment_id}")
        for line, met in verdicts(assignment_id, rows):
            ok &= met
            print(f"  {line}{'' if met else '  MISSED'}")
        for t in (t for t in rows if t.section == "progress"):
            print(f"  progress() {t.source}: {t.seconds:.2f} s, {len(t.function.split(',')) if t.function else 0} "
                  f"task(s) run{': ' + t.function.replace(',', ', ') if t.function and t.source.startswith('after') else ''}")
        reference = [t for t in rows if t.section == "reference"]
        if reference:
            print("  reference, per function: " + ", ".join(f"{t.function} {t.seconds * 1000:.0f} ms" for t in reference))
        bad = sorted((t for t in rows if t.problem), key=lambda t: -t.seconds)
        for t in bad:
            print(f"  VIOLATION {t.section}: {t.source} / {t.function}: {t.problem}"
                  f" ({'passes' if t.passed else 'fails'})")
    return ok


# ---------------------------------------------------------------------------------- load
@contextlib.contextmanager
def busy_cores(count: int):
    """``count`` processes that each keep a core busy, for the duration (ended by their pid)."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True:\n    pass"]) for _ in range(count)]
    try:
        time.sleep(0.5 if hogs else 0)
        yield
    finally:
        for hog in hogs:
            hog.terminate()
        for hog in hogs:
            hog.wait()


def blas_comparison(assignments: list[str], repeats: int, rounds: int = 3) -> None:
    """Section (a) in child processes with BLAS's default threads and a busy core, with and without
    the one-thread limit, alternating; prints the slowest and the total check time."""
    env = {k: v for k, v in os.environ.items() if k not in BLAS_VARIABLES}
    results: dict[tuple[str, str], list[list[dict]]] = {}
    with busy_cores(1):
        for _ in range(rounds):
            for mode in ("unlimited", "one thread"):
                for assignment_id in assignments:
                    done = subprocess.run([sys.executable, __file__, "--child", mode, "--assignment", assignment_id,
                                           "--repeats", str(repeats), "--sections", "reference"],
                                          env=env, capture_output=True, text=True)
                    if done.returncode != 0:
                        raise RuntimeError(done.stderr[-2000:])
                    results.setdefault((assignment_id, mode), []).append(json.loads(done.stdout.splitlines()[-1]))
    print(f"\nOne BLAS thread inside checks (--blas): BLAS default threads ({os.cpu_count()} cores), one core kept "
          f"busy, {rounds} alternating rounds, median of {repeats} per check")
    for assignment_id in assignments:
        line = []
        for mode in ("unlimited", "one thread"):
            runs = results[(assignment_id, mode)]
            slowest = statistics.median(max(t["seconds"] for t in run) for run in runs)
            total = statistics.median(sum(t["seconds"] for t in run) for run in runs)
            line.append(f"{mode}: slowest {slowest:.2f} s, total {total:.2f} s")
        print(f"  {assignment_id:<10} " + "; ".join(line))


def _child(mode: str, assignments: list[str], sections: tuple[str, ...], repeats: int) -> None:
    import autograder.engine.runner as runner
    from threadpoolctl import threadpool_info
    if mode == "unlimited":
        runner.one_blas_thread = contextlib.nullcontext
    threads = max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"), default=0)
    timings = []
    for assignment_id in assignments:
        timings += run_assignment(assignment_id, sections, repeats, progress=lambda *_: None)
    print(f"BLAS threads outside checks: {threads}", file=sys.stderr)
    print(json.dumps([asdict(t) for t in timings]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--assignment", action="append", help="only this assignment (repeatable; default: all)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help="comma-separated: " + ", ".join(SECTIONS))
    parser.add_argument("--busy", type=int, default=0, help="keep this many cores busy during the run")
    parser.add_argument("--blas", action="store_true", help="also compare checks with and without one BLAS thread")
    parser.add_argument("--blas-threads", help="set OPENBLAS_NUM_THREADS (and OMP, MKL) to this")
    parser.add_argument("--json", help="also write every timing to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for variable in BLAS_VARIABLES:
        if args.blas_threads:
            os.environ[variable] = args.blas_threads
        elif not args.child:
            os.environ.pop(variable, None)   # BLAS's own default, as in a student's kernel
    sys.path.insert(0, str(ROOT))
    from autograder.assignments import ASSIGNMENT_IDS
    assignments = args.assignment or list(ASSIGNMENT_IDS)
    sections = tuple(s for s in args.sections.split(",") if s)
    if unknown := set(sections) - set(SECTIONS) or set(assignments) - set(ASSIGNMENT_IDS):
        parser.error(f"unknown: {', '.join(sorted(unknown))}")
    if args.child:
        _child(args.child, assignments, sections, args.repeats)
        return 0

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores); "
          f"busy cores added: {args.busy}; BLAS threads: {os.environ.get('OPENBLAS_NUM_THREADS', 'default')}")
    started = time.perf_counter()
    timings: list[Timing] = []
    with busy_cores(args.busy):
        for assignment_id in assignments:
            print(f"{assignment_id}:")
            timings += run_assignment(assignment_id, sections, args.repeats)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{len(timings)} checks timed in {time.perf_counter() - started:.0f} s")
    ok = report(timings)
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(t) | {"problem": t.problem} for t in timings], indent=1))
    if args.blas:
        blas_comparison(assignments, args.repeats)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
