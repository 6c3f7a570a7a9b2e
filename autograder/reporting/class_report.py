"""The instructor's view of a class: per function and check, misconceptions, checks to review,
students to follow up with. Pure functions from graded results to one plain-data report, which
``class_html`` renders and :func:`to_csv` flattens (``DIR/class.html``, ``class.json``, ``class-*.csv``).

Classifications (per student and function):

* **error**: the submission could not be graded at all (unreadable, not loadable, grader error);
* **not attempted**: every check of the function failed because it is missing or still raises
  ``NotImplementedError`` (the released skeleton);
* **passed** (full marks), **failed** (no points), **partial** (in between).

A **misconception** is a group of failures with the same diagnosed cause: the explanation the
student got (``why``), with the numbers and values inside it blanked so that they do not split
groups; a failure without an explanation falls back to the first line of its message, normalised
the same way. A student counts once per group, however many checks showed it.
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections import defaultdict

from ..engine.results import SubmissionResult

# The messages the engine gives for a function that is missing or still the skeleton
# (``engine.context.explain_outcome``; tests/test_class_report.py ties them together).
_NOT_ATTEMPTED = (re.compile(r"^(\w+) is not defined in your submission"),
                  re.compile(r"^(\w+) is not implemented yet \(it raises NotImplementedError\)"))
_CONSEQUENCE = re.compile(r"^not run: ")     # "not run: f already timed out twice": not a cause of its own
_CRASH = re.compile(r"crashed the Python process")
_INTERNAL = "internal error in the grader"

# Numbers (1, -2.5e-3, 0x1f), then what quotes or brackets hold: values that differ between students.
_NUMBER = re.compile(r"(?<![A-Za-z_])[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z_])")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_ARRAY = re.compile(r"\[[^\[\]]*#[^\[\]]*\]|\([#,\s]+\)")
_SPACE = re.compile(r"\s+")

BROKEN_SHARE = 0.8        # "almost everyone fails it"
PERFECT_SHARE = 0.5       # fails at least this share of the students perfect on every other check
MIN_STUDENTS = 3


def normalise_cause(text: str, *, quoted: bool = False) -> str:
    """``text`` with numbers (and quoted values when ``quoted``) blanked and spaces collapsed."""
    text = _QUOTED.sub("'…'", text) if quoted else text
    text = _NUMBER.sub("#", text)
    for _ in range(3):
        text = _ARRAY.sub("#", text)
    return _SPACE.sub(" ", text).strip()


def not_attempted(test) -> bool:
    return any(p.match(test.message or test.feedback or "") for p in _NOT_ATTEMPTED)


def _graded(tests):
    return [t for t in tests if t.status != "skipped"]


def classify(result: SubmissionResult) -> dict[str, str]:
    """{function: "passed" | "partial" | "failed" | "not attempted" | "error"} for one submission."""
    out = {}
    for function, tests in result.by_function().items():
        graded = _graded(tests)
        score, total = sum(t.score for t in graded), sum(t.max_score for t in graded)
        if result.error or any((t.message or "").startswith(_INTERNAL) for t in graded):
            out[function] = "error"
        elif graded and all(not t.passed and not_attempted(t) for t in graded):
            out[function] = "not attempted"
        elif total and score >= total - 1e-9:
            out[function] = "passed"
        elif score <= 1e-9:
            out[function] = "failed"
        else:
            out[function] = "partial"
    return out


def cause_of(test) -> tuple[str, str] | None:
    """(kind, key) that groups a failed check by its diagnosed cause, or None when it is no cause
    of its own (not attempted, a consequence of an earlier time-out, a grader error)."""
    message = (test.message or test.feedback or "").strip()
    if test.passed or test.status == "skipped" or not_attempted(test) or _CONSEQUENCE.match(message) \
            or message.startswith(_INTERNAL):
        return None
    if test.why.strip():
        return "explanation", normalise_cause(test.why)
    first = message.splitlines()[0] if message else "(no message)"
    return "message", normalise_cause(first, quoted=True)


def _anonymous(message: str, lines: int = 6) -> str:
    """What broke, without the student's own code line or printed output (which may name them)."""
    kept = [line for line in message.splitlines()
            if not line.strip().startswith(("at cell", "at <cell", "it printed:"))]
    return "\n".join(kept[:lines])


def _case_size(case: str) -> tuple[int, int]:
    """Smaller is simpler: fewer lines, then fewer characters (an empty case is the largest)."""
    return (len(case.splitlines()), len(case)) if case.strip() else (10 ** 9, 10 ** 9)


def build(results: list[SubmissionResult], students: list[str], *, assignment=None, title: str = "") -> dict:
    """The class report (plain data) of ``results``; ``students[i]`` names ``results[i]``.

    ``assignment`` (an ``engine.Assignment``) gives the checks' order, points and hints.
    """
    functions = _function_order(results, assignment)
    hints = _hints(assignment)
    classes = [classify(r) for r in results]
    n = len(results)
    report = {"assignment": results[0].assignment if results else (assignment.id if assignment else ""),
              "title": title or (assignment.title if assignment else ""), "students": n}
    report["functions"] = [_function_row(f, results, classes) for f in functions]
    report["checks"] = _check_rows(functions, results, classes, hints)
    totals = [r.score for r in results]
    report["max_score"] = max((r.max_score for r in results), default=0.0)
    report["total"] = _summary(totals, report["max_score"])
    report["misconceptions"] = _misconceptions(results, students, classes, hints, functions)
    report["checks_to_review"] = _checks_to_review(results, students, classes, functions)
    report["follow_up"] = _follow_up(results, students, classes)
    return report


def _function_order(results, assignment) -> list[str]:
    seen: list[str] = []
    if assignment is not None:
        seen = [t.name for t in assignment.tasks]
    present = {t.function for r in results for t in r.tests}
    return [f for f in seen if f in present] + sorted(present - set(seen))


def _hints(assignment) -> dict[tuple[str, str], tuple]:
    if assignment is None:
        return {}
    return {(c.task, c.name): tuple(c.hints) for t in assignment.tasks for c in assignment.checks_for(t.name)}


def _summary(values: list[float], maximum: float) -> dict:
    return {"max_score": maximum, "mean": round(statistics.fmean(values), 2) if values else 0.0,
            "median": round(statistics.median(values), 2) if values else 0.0,
            "scores": [round(v, 3) for v in values]}


def _function_row(function, results, classes) -> dict:
    counts = defaultdict(int)
    scores, maximum = [], 0.0
    for result, cls in zip(results, classes):
        if function not in cls:
            continue
        counts[cls[function]] += 1
        graded = _graded(result.by_function()[function])
        scores.append(sum(t.score for t in graded))
        maximum = max(maximum, sum(t.max_score for t in graded))
    row = {"function": function, "passed": counts["passed"], "partial": counts["partial"],
           "failed": counts["failed"], "not_attempted": counts["not attempted"], "errors": counts["error"]}
    row.update(_summary(scores, maximum))
    return row


def _check_rows(functions, results, classes, hints) -> list[dict]:
    rows: dict[tuple[str, str], dict] = {}
    for result, cls in zip(results, classes):
        for t in result.tests:
            if t.status == "skipped":
                continue
            row = rows.setdefault((t.function, t.name), {
                "function": t.function, "check": t.name, "points": t.max_score, "passed": 0, "failed": 0,
                "not_attempted": 0, "errors": 0, "timed_out": 0, "hints": list(hints.get((t.function, t.name), ()))})
            state = cls.get(t.function)
            if state == "error":
                row["errors"] += 1
            elif state == "not attempted":
                row["not_attempted"] += 1
            elif t.passed:
                row["passed"] += 1
            else:
                row["failed"] += 1
                row["timed_out"] += bool(t.timed_out)
    order = {f: i for i, f in enumerate(functions)}
    out = sorted(rows.values(), key=lambda r: order.get(r["function"], len(order)))   # stable: check order kept
    for row in out:
        attempted = row["passed"] + row["failed"]
        row["pass_rate"] = round(row["passed"] / attempted, 3) if attempted else None
    return out


def _misconceptions(results, students, classes, hints, functions) -> list[dict]:
    groups: dict[tuple[str, str], dict] = {}
    for result, student, cls in zip(results, students, classes):
        for t in result.tests:
            if cls.get(t.function) in ("error", "not attempted"):
                continue
            cause = cause_of(t)
            if cause is None:
                continue
            kind, key = cause
            group = groups.setdefault((t.function, key), {
                "function": t.function, "kind": kind, "key": key, "students": set(), "checks": [],
                "points_lost": defaultdict(float), "example": None, "hints": []})
            group["students"].add(student)
            if t.name not in group["checks"]:
                group["checks"].append(t.name)
            group["points_lost"][student] += t.max_score - t.score
            for h in hints.get((t.function, t.name), ()):
                if h not in group["hints"]:
                    group["hints"].append(h)
            example = {"case": t.case, "message": _anonymous(t.message or t.feedback), "why": t.why,
                       "check": t.name}
            if group["example"] is None or _case_size(t.case) < _case_size(group["example"]["case"]):
                group["example"] = example
    n = len(results)
    order = {f: i for i, f in enumerate(functions)}
    out = []
    for group in groups.values():
        attempted = sum(1 for cls in classes if cls.get(group["function"]) in ("passed", "partial", "failed"))
        count = len(group["students"])
        cause = group["example"]["why"] or (group["example"]["message"].splitlines() or [""])[0]
        out.append({"function": group["function"], "cause": cause,
                    "kind": group["kind"], "key": group["key"], "students": count,
                    "share_of_class": round(count / n, 3) if n else 0.0,
                    "share_of_attempts": round(count / attempted, 3) if attempted else 0.0,
                    "checks": group["checks"],
                    "mean_points_lost": round(statistics.fmean(group["points_lost"].values()), 2),
                    "example": group["example"], "hints": group["hints"],
                    "who": sorted(group["students"])})
    out.sort(key=lambda g: (-g["students"], order.get(g["function"], len(order)), g["key"]))
    return out


def _checks_to_review(results, students, classes, functions) -> list[dict]:
    """Checks that look broken: almost everyone who attempted the function fails it while passing
    its other checks; or it fails most of the students who pass every other check."""
    flagged = []
    keys = []
    for r in results:
        for t in r.tests:
            if t.status != "skipped" and (t.function, t.name) not in keys:
                keys.append((t.function, t.name))
    for function, name in keys:
        attempted, fails, rest_ok, perfect, perfect_fail = 0, 0, 0, 0, []
        for result, student, cls in zip(results, students, classes):
            if cls.get(function) not in ("passed", "partial", "failed"):
                continue
            graded = _graded(result.tests)
            this = next((t for t in graded if t.function == function and t.name == name), None)
            if this is None:
                continue
            attempted += 1
            others = [t for t in graded if t is not this]
            same = [t for t in others if t.function == function]
            if not this.passed:
                fails += 1
                rest_ok += all(t.passed for t in same)
            if others and all(t.passed for t in others):
                perfect += 1
                if not this.passed:
                    perfect_fail.append(student)
        reasons = []
        if attempted >= MIN_STUDENTS and fails >= BROKEN_SHARE * attempted and rest_ok >= 0.5 * fails:
            reasons.append(f"{fails} of the {attempted} students who attempted {function} fail it, "
                           f"{rest_ok} of them while passing every other check of {function}")
        elif attempted >= MIN_STUDENTS and fails == attempted:
            reasons.append(f"nobody passes it ({attempted} attempts)")
        if perfect >= MIN_STUDENTS and len(perfect_fail) >= PERFECT_SHARE * perfect:
            reasons.append(f"it fails {len(perfect_fail)} of the {perfect} students who pass every other check")
        if reasons:
            flagged.append({"function": function, "check": name, "attempted": attempted, "failed": fails,
                            "failed_rest_perfect": rest_ok, "perfect_elsewhere": perfect,
                            "failed_perfect_elsewhere": len(perfect_fail), "reasons": reasons,
                            "who": perfect_fail[:20]})
    return flagged


def _follow_up(results, students, classes) -> list[dict]:
    out = []
    for result, student, cls in zip(results, students, classes):
        reasons = []
        severity = 9
        if result.error:
            reasons.append("not graded: " + result.error.splitlines()[0])
            severity = 0
        else:
            untouched = [f for f, state in cls.items() if state == "not attempted"]
            broken = [f for f, state in cls.items() if state == "error"]
            if broken:
                reasons.append("grader error on " + ", ".join(broken))
                severity = min(severity, 0)
            if untouched and len(untouched) == len(cls):
                reasons.append("nothing attempted")
                severity = min(severity, 1)
            elif untouched:
                reasons.append("not attempted: " + ", ".join(untouched))
                severity = min(severity, 4)
            crashed = sorted({t.function for t in result.tests if _CRASH.search(t.message or "")})
            if crashed:
                reasons.append("crashed: " + ", ".join(crashed))
                severity = min(severity, 2)
            slow = sorted({t.function for t in result.tests if t.timed_out}, key=list(cls).index)
            if slow:
                reasons.append("timed out: " + ", ".join(slow))
                severity = min(severity, 3)
            if result.max_score and result.score <= 0 and "nothing attempted" not in reasons:
                reasons.append("all zero")
                severity = min(severity, 1)
        if result.notes:
            reasons.append("problems in the file: " + "; ".join(n.splitlines()[0] for n in result.notes[:2]))
            severity = min(severity, 5)
        if reasons:
            out.append({"student": student, "score": result.score, "max_score": result.max_score,
                        "reasons": reasons, "severity": severity})
    out.sort(key=lambda r: (r["severity"], r["score"], r["student"]))
    return out


# ------------------------------------------------------------------------------------ CSV
def to_csv(report: dict) -> dict[str, str]:
    """{file name: CSV text}: functions, checks, misconceptions, follow-up (for a spreadsheet)."""
    def table(header, rows) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return buffer.getvalue()

    return {
        "class-functions.csv": table(
            ["function", "max_score", "passed", "partial", "failed", "not_attempted", "errors", "mean", "median"],
            [[f["function"], f"{f['max_score']:g}", f["passed"], f["partial"], f["failed"], f["not_attempted"],
              f["errors"], f["mean"], f["median"]] for f in report["functions"]]
            + [["total", f"{report['max_score']:g}", "", "", "", "", "", report["total"]["mean"],
                report["total"]["median"]]]),
        "class-checks.csv": table(
            ["function", "check", "points", "passed", "failed", "not_attempted", "errors", "timed_out", "pass_rate"],
            [[c["function"], c["check"], f"{c['points']:g}", c["passed"], c["failed"], c["not_attempted"],
              c["errors"], c["timed_out"], "" if c["pass_rate"] is None else c["pass_rate"]]
             for c in report["checks"]]),
        "class-misconceptions.csv": table(
            ["rank", "function", "students", "share_of_class", "cause", "checks", "example_case", "example_message",
             "hints"],
            [[i, m["function"], m["students"], m["share_of_class"], m["cause"], "; ".join(m["checks"]),
              m["example"]["case"], m["example"]["message"], " | ".join(m["hints"])]
             for i, m in enumerate(report["misconceptions"], 1)]),
        "class-follow-up.csv": table(
            ["student", "score", "max_score", "reasons"],
            [[r["student"], f"{r['score']:g}", f"{r['max_score']:g}", "; ".join(r["reasons"])]
             for r in report["follow_up"]]),
    }
