"""``python -m autograder similarity`` and ``grade --similarity``: the similarity report of a batch.

``similarity --assignment A --gradebook DIR PATH...`` compares the same inputs ``grade`` takes
(found the same way: notebooks, ``.py`` files, folders, nbgrader's ``submitted/`` tree) without
grading them, and writes ``DIR/similarity.html`` (linked from ``DIR/class.html`` when the batch
was graded into the same folder). ``grade --similarity --gradebook DIR`` does it after grading,
on the bytes that were graded.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def add_grade_options(parser) -> None:
    parser.add_argument("--similarity", action="store_true",
                        help="also write DIR/similarity.html: pairs of submissions with suspiciously similar code "
                             "(needs --gradebook)")
    parser.add_argument("--similarity-threshold", type=float, default=None, metavar="S",
                        help="report pairs scoring at least S (default: %(default)s = the built-in threshold)")


def add_parser(sub) -> None:
    parser = sub.add_parser("similarity", help="compare the code of submissions (no grading): DIR/similarity.html")
    parser.add_argument("--assignment", "-a", required=True)
    parser.add_argument("--gradebook", "-g", required=True, metavar="DIR",
                        help="write DIR/similarity.html, similarity.json, similarity.csv and similarity/*.html")
    parser.add_argument("--similarity-threshold", "--threshold", type=float, default=None, metavar="S",
                        help="report pairs scoring at least S")
    parser.add_argument("paths", nargs="+", metavar="PATH")


def _write(folder: Path, assignment, files, threshold, links) -> int:
    from .reporting import pages, similarity
    analysis = similarity.analyse_files(files, assignment, threshold=threshold)
    pages.write_similarity(folder, analysis, title=assignment.title, order=[t.name for t in assignment.tasks],
                           links=links)
    print(f"similarity: {len(analysis.pairs)} pair(s) at or above {analysis.threshold:g}, "
          f"{len(analysis.course)} function(s) matching the course's code: {folder / pages.SIMILARITY_HTML}",
          file=sys.stderr)
    return 0


def after_grade(args, jobs) -> int:
    """``grade --similarity``: compare the graded bytes of ``jobs`` (batch.Job)."""
    from .assignments import get_assignment
    from .reporting import feedback
    students = [job.student for job in jobs]
    links = {student: feedback.page_path(name) for student, name in zip(students, feedback.page_names(students))}
    files = [(job.student, job.data, job.suffix) for job in jobs]
    return _write(Path(args.gradebook), get_assignment(args.assignment), files, args.similarity_threshold, links)


def main(args) -> int:
    from . import batch
    from .assignments import get_assignment
    try:
        assignment = get_assignment(args.assignment)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    entries = batch.discover(args.paths, args.assignment)
    if not entries:
        print("error: no submissions found in " + " ".join(args.paths), file=sys.stderr)
        return 2
    from .loading.reading import UnreadableSubmission, read_submission_bytes
    files = []
    for entry in entries:
        try:   # (never a symbolic link, never more than the size cap)
            files.append((entry.student, read_submission_bytes(entry.path), entry.path.suffix))
        except UnreadableSubmission:
            files.append((entry.student, None, entry.path.suffix))
    folder = Path(args.gradebook)
    links = {}
    try:
        links = json.loads((folder / "class.json").read_text(encoding="utf-8")).get("reports", {})
    except (OSError, ValueError):
        pass
    return _write(folder, assignment, files, args.similarity_threshold, links)
