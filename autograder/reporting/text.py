"""Plain-text reports (terminals, logs, nbgrader's plain output)."""

from __future__ import annotations

import re
import textwrap

from ..engine.results import SubmissionResult

PASS, FAIL, SKIP = "✓", "✗", "·"
# Control characters (but newline and tab) and bidirectional overrides: a student's error message,
# printed output or file name must not drive the instructor's terminal (clear the screen and
# print a forged score table, set the clipboard through OSC 52) or reorder what it shows.
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\x1b``), newlines and tabs kept."""
    return _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def _points(x: float) -> str:
    return f"{x:g}"


def render_text(result: SubmissionResult, *, functions: list[str] | None = None, passed_details: bool = False,
                width: int = 100) -> str:
    """A report of one submission: a line per function, and what failed and why."""
    lines = []
    if result.error:
        lines.append(f"{FAIL} {result.error}")
    for note in result.notes:
        lines.append(f"! {note}")
    for function, tests in result.by_function().items():
        if functions is not None and function not in functions:
            continue
        graded = [t for t in tests if t.status != "skipped"]
        score = sum(t.score for t in graded)
        total = sum(t.max_score for t in graded)
        mark = PASS if all(t.passed for t in graded) else FAIL
        lines.append(f"{mark} {function}: {_points(score)} / {_points(total)}")
        previous = None
        for t in tests:
            if t.status == "skipped":
                lines.append(f"    {SKIP} {t.name} ({t.feedback})")
            elif not t.passed:
                lines.append(f"    {FAIL} {t.name} (0 / {_points(t.max_score)})")
                if t.feedback == previous:
                    lines.append("        (same as above)")
                    continue
                previous = t.feedback
                for para in t.feedback.splitlines():
                    lines.extend(textwrap.wrap(para, width=width - 8, initial_indent="        ",
                                               subsequent_indent="        ", replace_whitespace=False,
                                               drop_whitespace=False) or [""])
            elif passed_details:
                lines.append(f"    {PASS} {t.name} ({_points(t.score)})")
                for para in t.feedback.splitlines():   # a passed check's note (student-side: ran part of it)
                    lines.extend(textwrap.wrap(para, width=width - 8, initial_indent="        ",
                                               subsequent_indent="        ") or [""])
    return printable("\n".join(lines))


def render_table(results: list[SubmissionResult], *, with_feedback: bool = True) -> str:
    """A score table (one row per submission, one column per function) and, below, the feedback."""
    functions: list[str] = []
    for r in results:
        for fn in r.function_scores():
            if fn not in functions:
                functions.append(fn)
    headers = ["submission"] + functions + ["total"]
    rows = []
    for r in results:
        scores = r.function_scores()
        row = [_short_path(r.submission)]
        row += [f"{_points(scores[f][0])}/{_points(scores[f][1])}" if f in scores else "-" for f in functions]
        row.append(f"{_points(r.score)}/{_points(r.max_score)}" + (" (error)" if r.error else ""))
        rows.append(row)
    widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(headers)]
    out = [" ".join(h.ljust(w) for h, w in zip(headers, widths)),
           " ".join("-" * w for w in widths)]
    out += [" ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    if with_feedback:
        for r in results:
            report = render_text(r)
            if r.error or r.notes or any(not t.passed for t in r.tests):
                out += ["", f"== {r.submission}: {_points(r.score)} / {_points(r.max_score)}", report]
    return printable("\n".join(out))


def _short_path(path: str, limit: int = 48) -> str:
    return path if len(path) <= limit else "..." + path[-(limit - 3):]
