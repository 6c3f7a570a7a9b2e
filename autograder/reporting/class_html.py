"""``class.html``: the class report (``class_report.build``) as one self-contained page.

No JavaScript and nothing fetched: charts are inline SVG (``plots``), details fold with HTML's own
``<details>``. The misconceptions section names no student, so it can be shown to the class.
"""

from __future__ import annotations

import html

from . import plots

STATES = ("passed", "partial", "failed", "not attempted", "error")

STYLE = """
<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;font-size:14px;line-height:1.45;color:#1f2328;
  margin:18px auto;max-width:1180px;padding:0 14px}
h1{font-size:22px;margin:0 0 2px 0}h2{font-size:17px;margin:26px 0 6px 0;border-bottom:1px solid #d0d7de;padding-bottom:3px}
.sub{color:#57606a;margin:0 0 10px 0}
table{border-collapse:collapse;margin:4px 0}td,th{padding:3px 9px;text-align:left;vertical-align:middle}
th{font-weight:600;border-bottom:1px solid #d0d7de;font-size:13px}tr:nth-child(even) td{background:#f6f8fa}
td.n{text-align:right;font-variant-numeric:tabular-nums}
.legend span{display:inline-block;margin-right:12px;font-size:12px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:-1px}
ol.mis{padding-left:2.2em}ol.mis>li{margin:3px 0}
.count{font-weight:600;white-space:nowrap}.fn{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;
  background:#eff2f5;border-radius:4px;padding:0 4px;font-size:12.5px}
details>summary{cursor:pointer}details .body{margin:4px 0 10px 1.2em}
pre{white-space:pre-wrap;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px;background:#f6f8fa;
  border-left:3px solid #d0d7de;padding:5px 8px;margin:3px 0;max-height:16em;overflow:auto}
.review{border-left:3px solid #bf8700;background:#fff8c5;padding:5px 10px;margin:5px 0}
.none{color:#57606a;font-style:italic}.muted{color:#57606a;font-size:12.5px}
nav a{margin-right:14px}td.rate{white-space:nowrap}
</style>
"""


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def render(report: dict, *, similarity: dict | None = None, csv_files=(), index: str = "index.html") -> str:
    """The page. ``similarity``: the summary of ``similarity.json`` (linked when given)."""
    n = report["students"]
    total = report["total"]
    parts = ["<!DOCTYPE html>", "<html><head><meta charset='utf-8'>",
             f"<title>Class report: {_e(report['title'] or report['assignment'])}</title>", STYLE, "</head><body>"]
    nav = [f"<a href='{_e(index)}'>← gradebook</a>", "<a href='class.json'>class.json</a>"]
    nav += [f"<a href='{_e(name)}'>{_e(name)}</a>" for name in csv_files]
    if similarity is not None:
        nav.append(f"<a href='similarity.html'>similarity ({similarity.get('pairs', 0)} pair(s), "
                   f"{similarity.get('course', 0)} from the course's code)</a>")
    parts.append("<nav>" + "".join(nav) + "</nav>")
    parts.append(f"<h1>Class report: {_e(report['title'] or report['assignment'])}</h1>")
    parts.append(f"<p class='sub'>{n} submission(s) · total: mean {total['mean']:g}, median {total['median']:g} "
                 f"of {report['max_score']:g} points</p>")
    parts += _functions(report)
    parts += _misconceptions(report)
    parts += _review(report)
    parts += _follow_up(report)
    parts += _checks(report)
    parts.append("</body></html>\n")
    return "\n".join(parts)


def _legend() -> str:
    return "<div class='legend'>" + "".join(
        f"<span><i style='background:{plots.COLORS[s]}'></i>{_e(s)}</span>" for s in STATES) + "</div>"


def _functions(report) -> list[str]:
    out = ["<h2 id='functions'>Per function</h2>", _legend(),
           "<table><tr><th>function</th><th>points</th><th>students</th><th class='n'>passed</th>"
           "<th class='n'>partial</th><th class='n'>failed</th><th class='n'>not attempted</th>"
           "<th class='n'>mean</th><th>score distribution</th></tr>"]
    for f in report["functions"]:
        bar = plots.stacked_bar([("passed", f["passed"]), ("partial", f["partial"]), ("failed", f["failed"]),
                                 ("not attempted", f["not_attempted"]), ("error", f["errors"])])
        out.append(f"<tr><td><span class='fn'>{_e(f['function'])}</span></td><td class='n'>{f['max_score']:g}</td>"
                   f"<td>{bar}</td><td class='n'>{f['passed']}</td><td class='n'>{f['partial']}</td>"
                   f"<td class='n'>{f['failed']}</td><td class='n'>{f['not_attempted']}</td>"
                   f"<td class='n'>{f['mean']:g}</td>"
                   f"<td>{plots.histogram(f['scores'], f['max_score'], width=200, height=46, label=f['function'])}</td></tr>")
    total = report["total"]
    out.append(f"<tr><td><b>total</b></td><td class='n'>{report['max_score']:g}</td><td></td><td></td><td></td>"
               f"<td></td><td></td><td class='n'><b>{total['mean']:g}</b></td>"
               f"<td>{plots.histogram(total['scores'], report['max_score'], width=200, height=46, label='total')}</td></tr>")
    out.append("</table>")
    out.append("<details><summary>Total score distribution, larger</summary><div class='body'>"
               + plots.histogram(total["scores"], report["max_score"], width=640, height=170, label="total")
               + "</div></details>")
    return out


def _misconceptions(report) -> list[str]:
    items = report["misconceptions"]
    out = ["<h2 id='misconceptions'>Misconceptions</h2>",
           "<p class='muted'>Failures grouped by the explanation the students got (numbers and values inside it "
           "do not split groups), most shared first. One line per cause; open it for the smallest failing "
           "input and the hints. No student is named here.</p>"]
    if not items:
        return out + ["<p class='none'>No failures with a diagnosed cause.</p>"]
    out.append("<ol class='mis'>")
    for m in items:
        share = f"{100 * m['share_of_class']:.0f}% of the class" if report["students"] else ""
        example = m["example"]
        body = [f"<div class='muted'>seen in: {_e('; '.join(m['checks']))} · "
                f"{m['mean_points_lost']:g} point(s) lost on average</div>"]
        if example["case"].strip():
            body.append("<div>Smallest failing input:</div><pre>" + _e(example["case"].strip()) + "</pre>")
        if example["message"].strip():
            body.append("<div>What broke:</div><pre>" + _e(example["message"].strip()) + "</pre>")
        if m["kind"] == "explanation":
            body.append(f"<div>Explanation given: {_e(m['cause'])}</div>")
        if m["hints"]:
            body.append("<div>Hints given:</div><ul>" + "".join(f"<li>{_e(h)}</li>" for h in m["hints"]) + "</ul>")
        out.append(f"<li><details><summary><span class='count'>{m['students']} student(s)</span> "
                   f"<span class='muted'>({share})</span> · <span class='fn'>{_e(m['function'])}</span> · "
                   f"{_e(_one_line(m['cause']))}</summary><div class='body'>{''.join(body)}</div></details></li>")
    out.append("</ol>")
    return out


def _one_line(text: str, limit: int = 220) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def _review(report) -> list[str]:
    out = ["<h2 id='review'>Checks to review</h2>",
           "<p class='muted'>A check that almost everyone fails while passing the function's other checks, or "
           "that fails most of the students who pass every other check, may be wrong itself.</p>"]
    if not report["checks_to_review"]:
        return out + ["<p class='none'>None: no check looks broken.</p>"]
    for c in report["checks_to_review"]:
        out.append(f"<div class='review'><span class='fn'>{_e(c['function'])}</span> / {_e(c['check'])}: "
                   + "; ".join(_e(r) for r in c["reasons"]) + "</div>")
    return out


def _follow_up(report) -> list[str]:
    rows = report["follow_up"]
    links = report.get("reports", {})
    out = ["<h2 id='follow-up'>Students to follow up with</h2>"]
    if not rows:
        return out + ["<p class='none'>Nobody: every submission was graded and attempted every function.</p>"]
    out.append("<table><tr><th>student</th><th class='n'>score</th><th>why</th></tr>")
    for r in rows:
        name = _e(r["student"])
        if r["student"] in links:
            name = f"<a href='{_e(links[r['student']])}'>{name}</a>"
        out.append(f"<tr><td>{name}</td><td class='n'>{r['score']:g} / {r['max_score']:g}</td>"
                   f"<td>{_e('; '.join(r['reasons']))}</td></tr>")
    out.append("</table>")
    return out


def _checks(report) -> list[str]:
    out = ["<h2 id='checks'>Per check</h2>", "<details open><summary>every check, in the grader's order</summary>",
           "<table><tr><th>function</th><th>check</th><th class='n'>points</th><th>pass rate</th>"
           "<th class='n'>passed</th><th class='n'>failed</th><th class='n'>not attempted</th>"
           "<th class='n'>timed out</th></tr>"]
    for c in report["checks"]:
        rate = c["pass_rate"]
        shown = "" if rate is None else f"{plots.share_bar(rate)} {100 * rate:.0f}%"
        out.append(f"<tr><td><span class='fn'>{_e(c['function'])}</span></td><td>{_e(c['check'])}</td>"
                   f"<td class='n'>{c['points']:g}</td><td class='rate'>{shown}</td><td class='n'>{c['passed']}</td>"
                   f"<td class='n'>{c['failed']}</td><td class='n'>{c['not_attempted']}</td>"
                   f"<td class='n'>{c['timed_out']}</td></tr>")
    out.append("</table></details>")
    return out
