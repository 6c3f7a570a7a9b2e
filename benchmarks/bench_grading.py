"""Batch grading at scale: the CLI against ``nbgrader autograde``, the same notebooks, one run each.

Builds N ``gmm`` notebook submissions (default 300) deterministically: the released notebook with
its solution cells filled in from the corpus (``tests/corpora/gmm/correct`` and ``mutants``: a mix
of correct and single-bug submissions) plus the example notebooks ``examples/gmm/correct`` and
``partly_wrong``, each made unique by a comment naming its student. They go into
``submitted/<student>/gmm/gmm.ipynb`` of a temporary copy of the course, then:

* ``nbgrader autograde gmm`` grades them all, one after the other (it no longer runs the notebooks:
  each one's code is graded in the sandbox, see autograder/autograde.py);
* ``python -m autograder grade --assignment gmm --jobs J submitted/`` grades the same tree, J at a
  time.

Both verdicts are compared per student and function, and submissions per minute are printed for
both. Then the student-side check
of every function (``Checker.check`` in-process, on the reference) is timed (target: median under
0.5 s).

    python benchmarks/bench_grading.py [--n 300] [--jobs 2] [--skip-nbgrader] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = "gmm"
HIDDEN = re.compile(r"^[ \t]*### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS[ \t]*\n?", re.S | re.M)


def _sources() -> list[tuple[str, object]]:
    """(name, source) pairs: corpus .py files (text) and example notebooks (NotebookNode)."""
    import nbformat
    corpus = ROOT / "tests" / "corpora" / ASSIGNMENT
    out = [(p.stem, p.read_text()) for p in sorted((corpus / "correct").glob("*.py"))]
    out += [(p.stem, p.read_text()) for p in sorted((corpus / "mutants").glob("*.py"))]
    out += [(f"example_{p.stem}", nbformat.read(p, 4))
            for p in (ROOT / "examples" / ASSIGNMENT / "correct.ipynb", ROOT / "examples" / ASSIGNMENT / "partly_wrong.ipynb")]
    return out


def notebook_from_module(release, source: str, tasks: set[str]):
    """The release notebook with each task's solution cell replaced by the module's definition,
    and the module's other top-level code (imports, helpers, constants) in the imports cell."""
    import copy
    nb = copy.deepcopy(release)
    tree = ast.parse(source)
    definitions, other = {}, []
    for node in tree.body:
        segment = ast.get_source_segment(source, node, padded=False)
        start = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        segment = "\n".join(source.splitlines()[start - 1:node.end_lineno])
        if isinstance(node, ast.FunctionDef) and node.name in tasks:
            definitions[node.name] = segment
        else:
            other.append(segment)
    imports_cell = next(c for c in nb.cells if c.cell_type == "code" and "export" in c.metadata.get("tags", [])
                        and not c.metadata.get("nbgrader", {}).get("solution"))
    imports_cell.source = imports_cell.source + "\n\n" + "\n\n".join(other)
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in definitions:
            cell.source = definitions[grade_id]
        elif cell.metadata.get("nbgrader", {}).get("solution") and grade_id in tasks:
            cell.source = f"# {grade_id}: not written\n"
    return nb


def build_course(workdir: Path, n: int) -> dict[str, str]:
    """A course copy with n submissions; returns {student: source name}."""
    import nbformat
    from autograder.assignments import get_assignment
    tasks = {t.name for t in get_assignment(ASSIGNMENT).tasks}
    shutil.copy(ROOT / "nbgrader_config.py", workdir)
    (workdir / "solutions").mkdir()
    shutil.copy(ROOT / "solutions" / "__init__.py", workdir / "solutions")
    shutil.copytree(ROOT / "solutions" / ASSIGNMENT, workdir / "solutions" / ASSIGNMENT,
                    ignore=shutil.ignore_patterns("__pycache__"))
    _run([sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force", "--log-level=ERROR"], workdir)
    release = nbformat.read(workdir / "course" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    sources = _sources()
    students = {}
    for i in range(n):
        name, source = sources[i % len(sources)]
        student = f"student{i:03d}"
        nb = notebook_from_module(release, source, tasks) if isinstance(source, str) else source
        nb = nbformat.from_dict(json.loads(json.dumps(nb)))
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(f"{student} ({name})"))
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.source = HIDDEN.sub("", cell.source)
        folder = workdir / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, folder / f"{ASSIGNMENT}.ipynb")
        students[student] = name
    return students


def _run(cmd, cwd, **kwargs):
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        print(f"warning: {' '.join(map(str, cmd[:5]))} exited {done.returncode}\n{done.stderr[-2000:]}", file=sys.stderr)
    return done


def run_nbgrader(workdir: Path) -> tuple[float, dict]:
    from nbgrader.api import Gradebook, MissingEntry
    started = time.monotonic()
    _run([sys.executable, "-m", "nbgrader", "autograde", ASSIGNMENT, "--force", "--log-level=ERROR"], workdir)
    seconds = time.monotonic() - started
    points = {}
    with Gradebook(f"sqlite:///{workdir / 'gradebook.db'}") as gradebook:
        for student in sorted(p.name for p in (workdir / "submitted").iterdir()):
            try:
                notebook = gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
            except MissingEntry:
                continue
            points[student] = {g.name.removeprefix("test_"): (g.score, g.max_score) for g in notebook.grades}
    return seconds, points


def run_cli(workdir: Path, jobs: int) -> tuple[float, dict]:
    started = time.monotonic()
    done = _run([sys.executable, "-m", "autograder", "grade", "-a", ASSIGNMENT, "-j", str(jobs), "-f", "json",
                 "--out", str(workdir / "cli.json"), str(workdir / "submitted")], ROOT)
    seconds = time.monotonic() - started
    points = {}
    if done.returncode == 0:
        for entry in json.loads((workdir / "cli.json").read_text()):
            student = entry["submission"].split("/submitted/")[1].split("/")[0]
            per = {}
            for t in entry["tests"]:
                s, m = per.get(t["function"], (0.0, 0.0))
                per[t["function"]] = (s + t["score"], m + t["max_score"])
            points[student] = per
    return seconds, points


def student_side_check_times(repeats: int = 5) -> dict[str, float]:
    """{function: median seconds of the notebook's ``check``} on the reference (bench_student_checks)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_student_checks import check_times, implementations
    return check_times(ASSIGNMENT, implementations(ASSIGNMENT)["reference"], repeats)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="number of submissions (default 300)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="CLI processes (default: CPUs)")
    parser.add_argument("--skip-nbgrader", action="store_true", help="only the CLI and the student-side checks")
    parser.add_argument("--workdir", help="keep the course copy here (default: a temporary folder)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
    sys.path.insert(0, str(ROOT))

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-grading-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"building {args.n} submissions in {workdir} ...", flush=True)
    students = build_course(workdir, args.n)
    print(f"CLI: grading {len(students)} notebooks with {args.jobs} process(es) ...", flush=True)
    cli_seconds, cli = run_cli(workdir, args.jobs)
    figures = {"n": len(students), "jobs": args.jobs, "cli_seconds": round(cli_seconds, 1),
               "cli_per_minute": round(len(cli) / cli_seconds * 60, 1)}
    print(f"  {len(cli)} graded in {cli_seconds:.1f} s: {figures['cli_per_minute']:.1f} submissions/minute"
          f" (load average {os.getloadavg()[1]:.1f})", flush=True)
    if not args.skip_nbgrader:
        print(f"nbgrader autograde: {len(students)} notebooks ...", flush=True)
        nb_seconds, nbg = run_nbgrader(workdir)
        figures.update(nbgrader_seconds=round(nb_seconds, 1), nbgrader_per_minute=round(len(nbg) / nb_seconds * 60, 2))
        figures["ratio"] = round(figures["cli_per_minute"] / figures["nbgrader_per_minute"], 1)
        print(f"  {len(nbg)} graded in {nb_seconds:.1f} s: {figures['nbgrader_per_minute']:.2f} submissions/minute"
              f" (load average {os.getloadavg()[2]:.1f})", flush=True)
        agree, differ = 0, []
        for student in sorted(students):
            a, b = cli.get(student), nbg.get(student)
            if a is not None and b is not None and a.keys() == b.keys() and all(
                    abs(a[f][0] - b[f][0]) < 1e-9 and a[f][1] == b[f][1] for f in a):
                agree += 1
            else:
                differ.append((student, students[student], a, b))
        figures.update(agree=agree, differ=len(differ))
        print(f"verdicts agree for {agree} of {len(students)} students", flush=True)
        for student, name, a, b in differ[:10]:
            diffs = {f: (a.get(f) if a else None, b.get(f) if b else None) for f in sorted(set(a or {}) | set(b or {}))
                     if (a or {}).get(f) != (b or {}).get(f)}
            print(f"  {student} ({name}): cli vs nbgrader {diffs}")
        print(f"throughput: CLI {figures['ratio']:.1f}x nbgrader ({figures['nbgrader_seconds'] / len(nbg):.1f} s per "
              "notebook in autograde)")
    print("student-side check() per function (median of 5, in-process):")
    medians = student_side_check_times()
    for name, seconds in medians.items():
        print(f"  {name:<30} {seconds * 1000:7.1f} ms")
    figures["check_median_seconds"] = {k: round(v, 4) for k, v in medians.items()}
    figures["check_median_overall"] = round(statistics.median(medians.values()), 4)
    figures["check_median_max"] = round(max(medians.values()), 4)
    print(f"  median over functions {figures['check_median_overall'] * 1000:.1f} ms, "
          f"slowest {figures['check_median_max'] * 1000:.1f} ms (target: < 500 ms)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
