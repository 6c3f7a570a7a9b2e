"""Command line: ``python -m autograder grade --assignment gmm [--format json|csv|table] [--out FILE] PATH...``.

Exit status 0 whenever grading happened, however badly the students did; 2 on a usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FORMATS = ("table", "json", "csv")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    grade = sub.add_parser("grade", help="grade submissions (notebooks, .py files, or folders of them)")
    grade.add_argument("--assignment", "-a", required=True, help="assignment id: gmm, prankster, hard_em, advi")
    grade.add_argument("--format", "-f", choices=FORMATS, default="table", help="output format (default: table)")
    grade.add_argument("--out", "-o", help="write the report to this file instead of standard output")
    grade.add_argument("--only", type=lambda text: [f for f in text.split(",") if f], metavar="F1,F2",
                       help="grade only these functions (comma-separated)")
    grade.add_argument("paths", nargs="+", metavar="PATH")
    sub.add_parser("serve", help="grade requests from stdin (used by nbgrader's hidden test cells)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "grade":
        return _grade(args)
    if args.command == "serve":
        from .service import serve
        return serve()
    return 2  # pragma: no cover - argparse rejects unknown commands


def _grade(args) -> int:
    from .assignments import get_assignment
    from .grading import ReferenceMissing, collect_paths, grade_file, reference_for
    from .reporting import gradebook, text

    try:
        assignment = get_assignment(args.assignment)
        reference = reference_for(args.assignment)
    except (KeyError, ReferenceMissing) as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.only:
        unknown = [f for f in args.only if f not in {t.name for t in assignment.tasks}]
        if unknown:
            print(f"error: {args.assignment} has no function(s) {', '.join(unknown)}", file=sys.stderr)
            return 2
    paths = collect_paths(args.paths)
    if not paths:
        print("error: no submissions found in " + " ".join(args.paths), file=sys.stderr)
        return 2
    results = [grade_file(p, args.assignment, only=args.only, reference=reference) for p in paths]
    if args.format == "json":
        report = gradebook.to_json(results)
    elif args.format == "csv":
        report = gradebook.to_csv(results)
    else:
        report = text.render_table(results) + "\n"
    if args.out:
        Path(args.out).write_text(report, encoding="utf-8")
    else:
        sys.stdout.write(report)
    return 0
