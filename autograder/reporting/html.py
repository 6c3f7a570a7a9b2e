"""HTML reports: rendered in Jupyter (the notebook's check()) and written as feedback files."""

from __future__ import annotations

import html

from ..engine.results import SubmissionResult

STYLE = """
<style>
.ag-report{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;font-size:14px;line-height:1.45;
  max-width:60em;border:1px solid #d0d7de;border-radius:8px;padding:10px 14px;margin:4px 0;background:#fff;color:#1f2328}
.ag-report h3{margin:0 0 6px 0;font-size:15px}
.ag-fn{margin:6px 0 2px 0;font-weight:600}
.ag-ok{color:#1a7f37}.ag-bad{color:#cf222e}.ag-skip{color:#6e7781}
.ag-check{margin:2px 0 2px 1.2em}
.ag-feedback{white-space:pre-wrap;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12.5px;
  background:#f6f8fa;border-left:3px solid #cf222e;padding:6px 8px;margin:4px 0 8px 1.2em;overflow-x:auto}
.ag-note{color:#9a6700;margin:2px 0}
.ag-score{float:right;font-weight:600}
</style>
"""


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def render_html(result: SubmissionResult, *, title: str | None = None, functions: list[str] | None = None,
                footer: str = "", images: dict[str, str] | None = None) -> str:
    """A self-contained HTML fragment. ``images`` maps a caption to a data: URI (figures in feedback)."""
    graded_score = sum(t.score for t in result.tests if t.status != "skipped"
                       and (functions is None or t.function in functions))
    graded_max = sum(t.max_score for t in result.tests if t.status != "skipped"
                     and (functions is None or t.function in functions))
    parts = [STYLE, '<div class="ag-report">']
    heading = _e(title or f"{result.assignment}: {result.submission}")
    parts.append(f'<h3>{heading}<span class="ag-score">{graded_score:g} / {graded_max:g}</span></h3>')
    if result.error:
        parts.append(f'<div class="ag-bad">✗ {_e(result.error)}</div>')
    for note in result.notes:
        parts.append(f'<div class="ag-note">! {_e(note)}</div>')
    for function, tests in result.by_function().items():
        if functions is not None and function not in functions:
            continue
        graded = [t for t in tests if t.status != "skipped"]
        ok = all(t.passed for t in graded)
        score, total = sum(t.score for t in graded), sum(t.max_score for t in graded)
        cls = "ag-ok" if ok else "ag-bad"
        parts.append(f'<div class="ag-fn {cls}">{"✓" if ok else "✗"} {_e(function)} '
                     f'<span class="ag-score">{score:g} / {total:g}</span></div>')
        previous = None
        for t in tests:
            if t.status == "skipped":
                parts.append(f'<div class="ag-check ag-skip">· {_e(t.name)} <i>({_e(t.feedback)})</i></div>')
            elif t.passed:
                note = f' <i>({_e(t.feedback)})</i>' if t.feedback else ""   # student-side: ran part of it
                parts.append(f'<div class="ag-check ag-ok">✓ {_e(t.name)}{note}</div>')
            else:
                parts.append(f'<div class="ag-check ag-bad">✗ {_e(t.name)} (0 / {t.max_score:g})</div>')
                if t.feedback != previous:
                    parts.append(f'<div class="ag-feedback">{_e(t.feedback)}</div>')
                previous = t.feedback
    for caption, uri in (images or {}).items():
        parts.append(f'<figure><img src="{uri}" style="max-width:100%"><figcaption>{_e(caption)}</figcaption></figure>')
    if footer:
        parts.append(f"<div>{footer}</div>")
    parts.append("</div>")
    return "\n".join(parts)
