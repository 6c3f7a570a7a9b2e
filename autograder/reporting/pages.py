"""Writing a gradebook folder: every file of ``python -m autograder grade --gradebook DIR``.

``write_gradebook``: ``gradebook.csv``/``gradebook.json`` (``gradebook``), a feedback page per
student ``reports/<name>.html`` (``feedback``), ``index.html`` (``index_html``) and the class
pages; ``write_class``: ``class.html``/``class.json``/``class-*.csv``; ``write_similarity``:
``similarity.html``/``similarity.json``/``similarity.csv`` with ``similarity/*.html``. The other
modules of ``reporting`` render (text in, text out); only this one writes.

Every file is written atomically (``files.write_atomic``: a reader never sees half a page).
``class.html`` links the similarity page when ``similarity.json`` is there: writing the
similarity report re-renders it from ``class.json``, so either can be written first.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import class_html, class_report, feedback, gradebook, index_html, similarity, similarity_html
from .files import write_atomic

CLASS_JSON, CLASS_HTML = "class.json", "class.html"
SIMILARITY_JSON, SIMILARITY_HTML = "similarity.json", "similarity.html"


# ------------------------------------------------------------------------------------ gradebook
def write_gradebook(folder: str | Path, results, students: list[str], *, figures=None, title: str = "",
                    assignment=None) -> dict[str, Path]:
    """gradebook.csv, gradebook.json, reports/<student>.html, index.html and the class pages.

    ``results[i]`` (a ``SubmissionResult`` labelled with its file) is the work of ``students[i]``;
    ``figures[i]``: its pictures, [(caption, data URI or "")...]; ``assignment``: an
    ``engine.Assignment`` or its id (the class report's order of checks, points, hints).
    """
    folder = Path(folder)
    (folder / feedback.FOLDER).mkdir(parents=True, exist_ok=True)
    figures = list(figures) if figures is not None else [[] for _ in results]
    student_of = {result.submission: student for result, student in zip(results, students)}
    written = {
        "csv": write_atomic(folder / "gradebook.csv",
                            gradebook.to_csv(results, student_of=lambda label: student_of.get(label, label))),
        "json": write_atomic(folder / "gradebook.json", gradebook.to_json(results)),
    }
    pages = [feedback.page_path(name) for name in feedback.page_names(students)]
    for result, student, page, pictures in zip(results, students, pages, figures):
        write_atomic(folder / page, feedback.render_page(result, student, title, pictures))
    written["index"] = write_atomic(folder / "index.html",
                                    index_html.render(title, list(zip(students, pages, results))))
    written.update(write_class(folder, results, list(students), title=title, assignment=assignment,
                               links=dict(zip(students, pages))))
    return written


# ------------------------------------------------------------------------------------ class report
def write_class(folder: str | Path, results, students: list[str], *, assignment=None, title: str = "",
                links: dict[str, str] | None = None) -> dict[str, Path]:
    """class.json, class-*.csv and class.html for graded ``results`` (``students[i]`` names ``results[i]``).

    ``assignment``: an ``engine.Assignment`` or its id (checks' order, points, hints); ``links``:
    {student: their report's path relative to ``folder``}.
    """
    folder = Path(folder)
    if isinstance(assignment, str):
        from ..assignments import get_assignment
        assignment = get_assignment(assignment)
    report = class_report.build(results, students, assignment=assignment, title=title)
    report["reports"] = dict(links or {})
    written = {"class_json": write_atomic(folder / CLASS_JSON, json.dumps(report, indent=1, ensure_ascii=False) + "\n")}
    for name, text in class_report.to_csv(report).items():
        written[name] = write_atomic(folder / name, text)
    written["class_html"] = refresh_class(folder, report)
    return written


def refresh_class(folder: str | Path, report: dict | None = None) -> Path | None:
    """(Re)render class.html from class.json, linking the similarity report when there is one."""
    folder = Path(folder)
    if report is None:
        try:
            report = json.loads((folder / CLASS_JSON).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    summary = None
    try:
        data = json.loads((folder / SIMILARITY_JSON).read_text(encoding="utf-8"))
        summary = {"pairs": len(data.get("pairs", [])), "course": len(data.get("course", []))}
    except (OSError, ValueError):
        pass
    csv_files = [name for name in class_report.to_csv(report)]
    return write_atomic(folder / CLASS_HTML, class_html.render(report, similarity=summary, csv_files=csv_files))


# ------------------------------------------------------------------------------------ similarity
def write_similarity(folder: str | Path, analysis: similarity.Analysis, *, title: str = "",
                     order: list[str] = (), links: dict[str, str] | None = None) -> dict[str, Path]:
    """similarity.html/.json/.csv and one side-by-side page per reported pair and course match."""
    folder = Path(folder)
    data = similarity_html.to_json(analysis)
    written = {"similarity_json": write_atomic(folder / SIMILARITY_JSON, json.dumps(data, indent=1) + "\n")}
    written["similarity_csv"] = write_atomic(folder / "similarity.csv", similarity_html.to_csv(data))
    old = folder / "similarity"
    if old.is_dir():   # pages of an earlier run: their ranks no longer mean anything
        for stale in old.glob("*.html"):
            stale.unlink()
    for rank, pair in enumerate(analysis.pairs, 1):
        write_atomic(folder / similarity_html.pair_file(rank),
                     similarity_html.render_pair(analysis, pair, rank, list(order), title))
    for rank, match in enumerate(analysis.course, 1):
        write_atomic(folder / similarity_html.course_file(rank),
                     similarity_html.render_course(analysis, match, rank, match.course_source, title))
    written["similarity_html"] = write_atomic(folder / SIMILARITY_HTML,
                                              similarity_html.render_index(analysis, title, links))
    refresh_class(folder)
    return written
