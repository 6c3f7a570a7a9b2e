"""A student's feedback page, ``reports/<name>.html``: the HTML report of one result, its pictures.

The page names are derived from the student ids (safe file names, unique within a batch), so the
gradebook's index, the class report and the similarity report all link the same file.
"""

from __future__ import annotations

import html
import re

from ..engine.results import SubmissionResult
from .html import render_html

FOLDER = "reports"


def _safe_name(student: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", student).strip("._") or "student"
    return name[:100]


def page_names(students: list[str]) -> list[str]:
    """A file name (without ``.html``) per student id, in order, unique among them."""
    names, seen = [], set()
    for student in students:
        name = _safe_name(student)
        base, n = name, 2
        while name in seen:
            name, n = f"{base}-{n}", n + 1
        seen.add(name)
        names.append(name)
    return names


def page_path(name: str) -> str:
    """The page of ``name`` (from ``page_names``) relative to the gradebook folder."""
    return f"{FOLDER}/{name}.html"


def render_page(result: SubmissionResult, student: str, title: str, figures=()) -> str:
    """The whole page. ``figures``: [(caption, data URI or "")...]; an empty URI is a picture that
    could not be made, and its caption (which says why) is shown under the report."""
    images = {caption: uri for caption, uri in figures if uri}
    missing = [caption for caption, uri in figures if not uri]
    fragment = render_html(result, title=f"{title}: {student}", images=images,
                           footer="<br>".join(html.escape(m) for m in missing))
    return (f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(student)}: "
            f"{html.escape(title)}</title></head><body>\n{fragment}\n</body></html>\n")
