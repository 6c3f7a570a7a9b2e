"""``index.html``: the gradebook's front page, a row per student linking their feedback page."""

from __future__ import annotations

import html

from ..engine.results import SubmissionResult


def render(title: str, rows: list[tuple[str, str, SubmissionResult]]) -> str:
    """The page; ``rows``: (student, their page relative to the folder, their result)."""
    lines = [f"<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:system-ui,sans-serif}td,th{padding:2px 10px;text-align:left}"
             "tr:nth-child(even){background:#f6f8fa}</style></head><body>",
             f"<h2>{html.escape(title)}</h2><p><a href='class.html'>Class report</a></p>",
             "<table><tr><th>student</th><th>score</th><th>error</th></tr>"]
    for student, page, result in rows:
        lines.append(f"<tr><td><a href='{html.escape(page)}'>{html.escape(student)}</a></td>"
                     f"<td>{result.score:g} / {result.max_score:g}</td>"
                     f"<td>{html.escape((result.error or '').splitlines()[0] if result.error else '')}</td></tr>")
    lines.append("</table></body></html>\n")
    return "\n".join(lines)
