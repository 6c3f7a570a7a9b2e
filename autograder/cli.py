"""Command line: ``python -m autograder grade --assignment gmm [--format json|csv|table] [--out FILE] PATH...``.

Batch options: ``--jobs N`` (local processes), ``--gradebook DIR`` (gradebook.csv, gradebook.json,
reports/<student>.html, and a result store that makes a rerun resume), ``--dask-scheduler ADDRESS``.
``python -m autograder gradescope --assignment gmm [--out DIR]`` writes a Gradescope autograder zip.

Exit status 0 whenever grading happened, however badly the students did; 2 on a usage error;
128 + the signal's number when stopped by SIGINT (130), SIGTERM (143) or SIGHUP (129): every
process the run started is ended first, and finished results are kept (run the same command
again to continue).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from . import similarity_cli
from .assignments import available

FORMATS = ("table", "json", "csv")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    grade = sub.add_parser("grade", help="grade submissions (notebooks, .py files, or folders of them)")
    grade.add_argument("--assignment", "-a", required=True, help=f"assignment id: {', '.join(available())}")
    grade.add_argument("--format", "-f", choices=FORMATS, default="table", help="output format (default: table)")
    grade.add_argument("--out", "-o", help="write the report to this file instead of standard output")
    grade.add_argument("--only", type=lambda text: [f for f in text.split(",") if f], metavar="F1,F2",
                       help="grade only these functions (comma-separated)")
    grade.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                       help="grade N submissions at a time in local processes (default: one per CPU)")
    grade.add_argument("--gradebook", "-g", metavar="DIR",
                       help="write DIR/gradebook.csv, DIR/gradebook.json, DIR/reports/<student>.html; "
                            "finished results are kept in DIR/.results so that a rerun resumes")
    grade.add_argument("--store", metavar="DIR", help="keep finished results here (default: DIR/.results "
                                                      "with --gradebook, none otherwise)")
    grade.add_argument("--no-resume", action="store_true", help="grade everything again, ignoring stored results")
    grade.add_argument("--dask-scheduler", metavar="ADDRESS", help="grade on this Dask distributed cluster")
    grade.add_argument("--no-figures", action="store_true", help="no pictures in the HTML reports")
    grade.add_argument("--no-progress", action="store_true", help="no progress bar, even on a terminal")
    grade.add_argument("--max-call-seconds", type=float, default=0.0, metavar="S",
                       help="stop any call of a student's function after S seconds (default: each check's own limit)")
    similarity_cli.add_grade_options(grade)
    grade.add_argument("--max-submission-seconds", type=float, default=0.0, metavar="S",
                       help="time for all calls of one submission together (default: 300); its whole grading is "
                            "stopped after S plus 30 s to load and 30 s of slack")
    grade.add_argument("paths", nargs="+", metavar="PATH")
    gradescope = sub.add_parser("gradescope", help="write a Gradescope autograder zip for an assignment")
    gradescope.add_argument("--assignment", "-a", required=True, help=f"assignment id: {', '.join(available())}")
    gradescope.add_argument("--out", "-o", default=".", help="folder for the zip (default: .)")
    similarity_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "grade":
        return _grade(args)
    if args.command == "similarity":
        return similarity_cli.main(args)
    if args.command == "gradescope":
        from .gradescope import main as gradescope_main
        return gradescope_main(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


def _grade(args) -> int:
    from .assignments import get_assignment
    from .grading import ReferenceMissing, reference_for
    from .reporting import gradebook, pages, text

    try:
        assignment = get_assignment(args.assignment)
        reference_for(args.assignment)
    except (KeyError, ReferenceMissing) as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    if args.only:
        unknown = [f for f in args.only if f not in {t.name for t in assignment.tasks}]
        if unknown:
            print(f"error: {args.assignment} has no function(s) {', '.join(unknown)}", file=sys.stderr)
            return 2
    from . import batch
    entries = batch.discover(args.paths, args.assignment)
    if not entries:
        print("error: no submissions found in " + " ".join(args.paths), file=sys.stderr)
        return 2
    if args.similarity and not args.gradebook:
        print("error: --similarity writes DIR/similarity.html: it needs --gradebook DIR", file=sys.stderr)
        return 2
    if args.jobs is not None and args.jobs < 1:
        print("error: --jobs must be at least 1", file=sys.stderr)
        return 2
    store_dir = args.store or (str(Path(args.gradebook) / batch.STORE_FOLDER) if args.gradebook else None)
    hidden = _submission_folders(entries, args.assignment)
    hidden += [p for p in (args.gradebook, store_dir) if p]
    figures = bool(args.gradebook) and not args.no_figures
    limits = {}
    if args.max_call_seconds > 0:
        limits["max_call_seconds"] = args.max_call_seconds
    if args.max_submission_seconds > 0:
        limits["total_seconds"] = args.max_submission_seconds
    jobs = batch.make_jobs(entries, args.assignment, only=args.only, figures=figures, hidden=hidden, limits=limits)
    store = batch.ResultStore(store_dir, reuse=not args.no_resume) if store_dir else None
    show = not args.no_progress and sys.stderr.isatty() and (sys.stdout.isatty() or bool(args.out))
    progress = batch.Progress(len(jobs), show)
    workers = args.jobs if args.jobs is not None else max(1, min(os.cpu_count() or 1, len(jobs)))
    log = lambda text: print(("\n" if show else "") + text, file=sys.stderr)  # noqa: E731
    try:
        with stop_on_signals():   # until the gradebook is written: no half-written file either
            records = batch.run(jobs, workers=workers, store=store, scheduler=args.dask_scheduler,
                                progress=progress, log=log)
            progress.close()
            results = batch.results_of(jobs, records)
            if args.gradebook:
                pages.write_gradebook(args.gradebook, results, [job.student for job in jobs],
                                      figures=[record.get("figures", []) for record in records],
                                      title=assignment.title, assignment=assignment)
                if args.similarity:
                    similarity_cli.after_grade(args, jobs)
    except KeyboardInterrupt as exc:
        progress.close()
        signum = getattr(exc, "signum", None) or signal.SIGINT
        done = "" if store is None else f"; the {progress.done - progress.reused} finished result(s) are kept in {store.folder}"
        print(f"stopped by {signal.Signals(signum).name} after {progress.done} of {len(jobs)} submission(s){done}. "
              "Run the same command again to continue.", file=sys.stderr)
        return 128 + signum
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


class stop_on_signals:
    """SIGINT, SIGTERM and SIGHUP raise ``supervisor.Stopped`` in the main thread (the run then
    ends every process it started); further signals wait until that is done."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __enter__(self):
        from .supervisor import Stopped

        def stop(signum, frame):
            for sig in self.SIGNALS:
                signal.signal(sig, signal.SIG_IGN)
            raise Stopped(signum)

        self.previous = {sig: signal.signal(sig, stop) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def _submission_folders(entries, assignment_id: str) -> list[str]:
    """Folders holding the submissions (hidden from every sandbox child: other students' work)."""
    from .batch import nbgrader_student
    folders = set()
    for entry in entries:
        path = entry.path.resolve()
        if nbgrader_student(path, assignment_id) is not None:
            folders.add(str(path.parents[2]))   # .../submitted
        else:
            folders.add(str(path.parent))
    return sorted(folders)
