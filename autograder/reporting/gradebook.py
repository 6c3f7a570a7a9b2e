"""Gradebooks: the CLI's JSON contract and a CSV with one row per submission."""

from __future__ import annotations

import csv
import io
import json

from ..engine.results import SubmissionResult
from .text import printable


def to_json(results: list[SubmissionResult]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False) + "\n"


def to_csv(results: list[SubmissionResult], student_of=None) -> str:
    """One row per submission: a column per function's score, then total, max_score and error.

    With ``student_of`` (submission label -> student id) the first column is the student.
    """
    functions: list[str] = []
    for r in results:
        for fn in r.function_scores():
            if fn not in functions:
                functions.append(fn)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    header = (["student"] if student_of else []) + ["submission"] + functions + ["total", "max_score", "error"]
    writer.writerow(header)
    for r in results:
        scores = r.function_scores()
        row = ([student_of(r.submission)] if student_of else []) + [r.submission]
        row += [f"{scores[f][0]:g}" if f in scores else "" for f in functions]
        row += [f"{r.score:g}", f"{r.max_score:g}", r.error or ""]
        writer.writerow([printable(str(cell)) for cell in row])   # (a terminal may show the file)
    return buffer.getvalue()
