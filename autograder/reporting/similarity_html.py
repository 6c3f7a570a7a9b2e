"""Similarity pages: ``similarity.html`` (the ranked pairs, code matching the course's own) and one
side-by-side page per pair / match under ``similarity/``. Self-contained, no JavaScript. Also the
report's data files, ``similarity.json`` (``to_json``) and ``similarity.csv`` (``to_csv``), which
name those pages."""

from __future__ import annotations

import csv
import html
import io

from . import plots
from .similarity import Analysis, Code, CourseMatch, Pair, Region

STYLE = """
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;font-size:14px;line-height:1.45;color:#1f2328;
  margin:18px auto;max-width:1400px;padding:0 14px}
h1{font-size:22px;margin:0 0 4px 0}h2{font-size:17px;margin:24px 0 6px 0;border-bottom:1px solid #d0d7de;padding-bottom:3px}
table{border-collapse:collapse}td,th{padding:3px 9px;text-align:left;vertical-align:top}
th{font-weight:600;border-bottom:1px solid #d0d7de;font-size:13px}tr:nth-child(even) td{background:#f6f8fa}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.fn{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;background:#eff2f5;border-radius:4px;padding:0 4px;font-size:12.5px}
.read{background:#ddf4ff;border-left:3px solid #0969da;padding:6px 12px;margin:8px 0}
.none{color:#57606a;font-style:italic}.muted{color:#57606a;font-size:12.5px}
.sides{display:grid;grid-template-columns:1fr 1fr;gap:14px}
.sides h3{font-size:15px;margin:4px 0}.unit{margin:8px 0}.unit .name{font-size:12.5px;color:#57606a}
pre{white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px;
  background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:6px 8px;margin:2px 0}
mark.rare{background:#ffd33d;color:inherit;border-radius:2px}mark.common{background:#e1e4e8;color:inherit}
nav a{margin-right:14px}.key mark{padding:0 4px}
</style>
"""

HOW_TO_READ = (
    "<div class='read'><b>How to read a score.</b> The score counts the stretches of normalised code "
    "(names, comments and formatting removed) that two submissions share and few others have: roughly the "
    "number of tokens of uncommon code in common. Code every student received (the released notebook) and the "
    "course's own code count nothing; a stretch shared by <i>n</i> students counts 1/(<i>n</i>−1); one that "
    "many students wrote the same way (a textbook formula) counts nothing, so short standard solutions do not "
    "score. Pairs at or above the threshold are listed. A high score is <b>evidence to look at, never proof</b>: "
    "open the side-by-side view, and remember that students may have worked together legitimately, used the "
    "same tutorial, or written a short function the one obvious way.</div>")


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def page(title: str, body: list[str], back: str = "") -> str:
    nav = f"<nav>{back}</nav>" if back else ""
    return "\n".join(["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>", f"<title>{_e(title)}</title>",
                      STYLE, "</head><body>", nav, *body, "</body></html>\n"])


def pair_file(rank: int) -> str:
    return f"similarity/pair-{rank:03d}.html"


def course_file(rank: int) -> str:
    return f"similarity/course-{rank:03d}.html"


def render_index(analysis: Analysis, title: str, links: dict[str, str] | None = None) -> str:
    codes = analysis.codes
    links = links or {}
    body = [f"<h1>Similarity: {_e(title)}</h1>",
            f"<p class='muted'>{len(codes)} submission(s) compared · threshold {analysis.threshold:g} · "
            f"{analysis.k} tokens per fingerprint · a stretch shared by more than {analysis.common_limit} "
            "students counts as common</p>", HOW_TO_READ]
    body.append(f"<h2>Pairs at or above {analysis.threshold:g}</h2>")
    if analysis.pairs:
        body.append("<table><tr><th class='n'>#</th><th class='n'>score</th><th>student</th><th>student</th>"
                    "<th>where</th><th>shared uncommon code</th><th></th></tr>")
        for rank, pair in enumerate(analysis.pairs, 1):
            a, b = codes[pair.a].student, codes[pair.b].student
            where = ", ".join(f"{x}" if x == y else f"{x} ~ {y}" for x, y, _ in pair.functions[:4])
            body.append(f"<tr><td class='n'>{rank}</td><td class='n'><b>{pair.score:g}</b></td>"
                        f"<td>{_student(a, links)}</td><td>{_student(b, links)}</td><td>{_e(where)}</td>"
                        f"<td class='muted'>{100 * pair.overlap[0]:.0f}% of {_e(a)}'s code, "
                        f"{100 * pair.overlap[1]:.0f}% of {_e(b)}'s</td>"
                        f"<td><a href='{pair_file(rank)}'>side by side</a></td></tr>")
        body.append("</table>")
    else:
        body.append("<p class='none'>No pair reaches the threshold.</p>")
    body.append("<h2>Code that matches the course's own</h2>"
                "<p class='muted'>Functions most of whose code (after removing the skeleton) is found in the "
                "reference solutions or the package's theory and check modules: an answer key copied from the "
                "installed package or the repository.</p>")
    if analysis.course:
        body.append("<table><tr><th>student</th><th>functions (each side by side with the course's code)</th></tr>")
        by_student: dict[int, list[tuple[int, CourseMatch]]] = {}
        for rank, m in enumerate(analysis.course, 1):
            by_student.setdefault(m.student, []).append((rank, m))
        for student, matches in sorted(by_student.items(), key=lambda item: (-len(item[1]), codes[item[0]].student)):
            cells = ", ".join(f"<a href='{course_file(rank)}' title='{_e(m.source)}'><span class='fn'>{_e(m.unit)}"
                              f"</span></a> {100 * m.share:.0f}%" for rank, m in matches)
            body.append(f"<tr><td>{_student(codes[student].student, links)}</td><td>{cells}</td></tr>")
        body.append("</table>")
    else:
        body.append("<p class='none'>None.</p>")
    body.append("<h2>Every student's highest pair score</h2>")
    top = max([analysis.threshold * 2, *analysis.scores]) if analysis.scores else analysis.threshold * 2
    body.append(plots.histogram(analysis.scores, float(round(top)), width=640, height=150, label="best pair score"))
    above = sum(1 for score in analysis.scores if score >= analysis.threshold)
    body.append(f"<p class='muted'>{above} of {len(analysis.scores)} student(s) have a pair at or above the "
                f"threshold ({analysis.threshold:g}).</p>")
    problems = [(c.student, c.problem) for c in codes if c.problem]
    if problems:
        body.append("<h2>Not compared</h2><ul>" + "".join(f"<li>{_e(s)}: {_e(p)}</li>" for s, p in problems) + "</ul>")
    return page(f"Similarity: {title}", body, "<a href='index.html'>← gradebook</a><a href='class.html'>class report</a>"
                "<a href='similarity.json'>similarity.json</a><a href='similarity.csv'>similarity.csv</a>")


def _student(name: str, links: dict[str, str], prefix: str = "") -> str:
    if name in links:
        return f"<a href='{_e(prefix + links[name])}'>{_e(name)}</a>"
    return _e(name)


def highlight(source: str, regions: list[Region]) -> str:
    """``source`` as HTML with the shared regions marked (uncommon: yellow; common: grey)."""
    level = [0] * len(source)
    for r in regions:
        value = 2 if r.rare else 1
        for i in range(max(r.start, 0), min(r.end, len(source))):
            level[i] = max(level[i], value)
    out, i = [], 0
    while i < len(source):
        j = i
        while j < len(source) and level[j] == level[i]:
            j += 1
        text = _e(source[i:j])
        out.append(text if level[i] == 0 else f"<mark class='{'rare' if level[i] == 2 else 'common'}'>{text}</mark>")
        i = j
    return "".join(out)


def _unit_html(code: Code, u: int | None, regions: list[Region]) -> str:
    if u is None:
        return "<div class='unit'></div>"
    unit = code.units[u]
    kind = "graded function" if unit.graded else "helper"
    return (f"<div class='unit'><div class='name'>{_e(unit.name)} ({kind})</div>"
            f"<pre>{highlight(unit.source, [r for r in regions if r.unit == u])}</pre></div>")


def aligned_units(pair: Pair, a: Code, b: Code, order: list[str]) -> list[tuple[int | None, int | None]]:
    """Rows of (unit of a, unit of b): same-named units side by side, then the units the evidence
    pairs up (a renamed helper), then the rest; graded functions in the assignment's order."""
    rank = {name: i for i, name in enumerate(order)}
    by_name_b = {unit.name: j for j, unit in enumerate(b.units)}
    evidence = {}
    for x, y, e in pair.functions:
        evidence.setdefault(x, (y, e))
    rows, used = [], set()
    for i in sorted(range(len(a.units)), key=lambda i: (rank.get(a.units[i].name, len(rank)), i)):
        name = a.units[i].name
        j = by_name_b.get(name)
        if (j is None or j in used) and name in evidence:
            j = by_name_b.get(evidence[name][0])
        if j is not None and j in used:
            j = None
        if j is not None:
            used.add(j)
        rows.append((i, j))
    rows += [(None, j) for j in range(len(b.units)) if j not in used]
    shared = {r.unit for r in pair.regions[0]}, {r.unit for r in pair.regions[1]}
    # rows with shared code first, so the evidence is on the first screen
    return sorted(rows, key=lambda row: not (row[0] in shared[0] or row[1] in shared[1]))


def render_pair(analysis: Analysis, pair: Pair, rank: int, order: list[str], title: str) -> str:
    a, b = analysis.codes[pair.a], analysis.codes[pair.b]
    rows = "".join(f"<tr><td><span class='fn'>{_e(x)}</span></td><td><span class='fn'>{_e(y)}</span></td>"
                   f"<td class='n'>{e:g}</td></tr>" for x, y, e in pair.functions[:12])
    body = [f"<h1>#{rank}: {_e(a.student)} and {_e(b.student)}, score {pair.score:g}</h1>",
            f"<p class='muted'>{_e(title)} · {pair.shared_tokens['a']} / {pair.shared_tokens['b']} tokens of uncommon "
            f"code in common ({100 * pair.overlap[0]:.0f}% / {100 * pair.overlap[1]:.0f}% of each side)</p>",
            "<p class='key'><mark class='rare'>shared, uncommon</mark> <mark class='common'>shared, but common "
            "(written so by many students, or in the course's own code)</mark> unmarked: not shared, or given in "
            "the released notebook</p>",
            f"<table><tr><th>{_e(a.student)}</th><th>{_e(b.student)}</th><th class='n'>evidence</th></tr>{rows}</table>",
            f"<div class='sides'><h3>{_e(a.student)}</h3><h3>{_e(b.student)}</h3></div>",
            *(f"<div class='sides'>{_unit_html(a, i, pair.regions[0])}{_unit_html(b, j, pair.regions[1])}</div>"
              for i, j in aligned_units(pair, a, b, order)),
            "<p class='muted'>Evidence, never proof: see how to read a score on the similarity page.</p>"]
    return page(f"Similarity #{rank}", body, "<a href='../similarity.html'>← similarity</a>")


def render_course(analysis: Analysis, match: CourseMatch, rank: int, course_source: str, title: str) -> str:
    code = analysis.codes[match.student]
    unit = next(u for u in code.units if u.name == match.unit)
    body = [f"<h1>{_e(code.student)}: {_e(match.unit)} matches {_e(match.source)}</h1>",
            f"<p class='muted'>{_e(title)} · {100 * match.share:.0f}% of the function's fingerprints "
            f"(of {match.fingerprints}) are in the course's code</p>",
            "<div class='sides'>",
            f"<div class='side'><h3>{_e(code.student)}</h3><pre>{highlight(unit.source, match.regions)}</pre></div>",
            f"<div class='side'><h3>{_e(match.source)}</h3><pre>{_e(course_source)}</pre></div>", "</div>"]
    return page(f"Course code: {code.student}", body, "<a href='../similarity.html'>← similarity</a>")


# ------------------------------------------------------------------------------------ data files
def to_json(analysis: Analysis) -> dict:
    """The content of similarity.json: the ranked pairs and course matches, with their pages."""
    codes = analysis.codes
    return {
        "threshold": analysis.threshold, "k": analysis.k, "common_limit": analysis.common_limit,
        "submissions": len(codes),
        "pairs": [{"rank": i, "a": codes[p.a].student, "b": codes[p.b].student, "score": p.score,
                   "overlap": list(p.overlap), "shared_tokens": [p.shared_tokens["a"], p.shared_tokens["b"]],
                   "functions": [list(f) for f in p.functions], "page": pair_file(i)}
                  for i, p in enumerate(analysis.pairs, 1)],
        "course": [{"rank": i, "student": codes[m.student].student, "function": m.unit, "share": m.share,
                    "matches": m.source, "page": course_file(i)}
                   for i, m in enumerate(analysis.course, 1)],
        "best_score": {c.student: s for c, s in zip(codes, analysis.scores)},
        "not_compared": {c.student: c.problem for c in codes if c.problem},
    }


def to_csv(data: dict) -> str:
    """similarity.csv from ``to_json``'s data: one row per pair, then one per course match."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rank", "score", "a", "b", "overlap_a", "overlap_b", "functions", "page"])
    writer.writerows([[p["rank"], p["score"], p["a"], p["b"], p["overlap"][0], p["overlap"][1],
                       "; ".join(f"{x}~{y}:{e:g}" for x, y, e in p["functions"]), p["page"]] for p in data["pairs"]]
                     + [[f"course-{m['rank']}", "", m["student"], m["matches"], m["share"], "", m["function"], m["page"]]
                        for m in data["course"]])
    return buffer.getvalue()
