"""The class report: counts per function and check, misconceptions grouped by the explanation,
checks that look broken, students to follow up with, and the page (offline, no student named in
the misconceptions). Results come from the real engine where the engine decides (a skeleton, a
missing function, the corpus' mutants) and are written by hand where only the grouping matters."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from autograder.assignments import get_assignment
from autograder.engine import CheckResult, SubmissionResult, run_checks
from autograder.engine.executors import InProcessExecutor
from autograder.grading import reference_for
from autograder.reporting import class_html, class_report, pages
from conftest import CORPORA, ROOT
from corpus_support import student_namespace

GMM = get_assignment("gmm")


def _check(function, name, passed, points=2.0, *, message="", why="", case="", timed_out=False):
    return CheckResult(function, name, passed, points if passed else 0.0, points, status="passed" if passed else "failed",
                       feedback="" if passed else message + (f"\nWhy: {why}" if why else ""),
                       message="" if passed else message, why="" if passed else why, case="" if passed else case,
                       timed_out=timed_out)


def _student(label, *tests, error=None):
    return SubmissionResult(label, "gmm", tests=list(tests), error=error)


FORGOT_PRIOR = "the E-step must weight each density by its prior pi_c: gamma is proportional to pi_c N(x | mu_c, sigma_c)"


def _class():
    """Five students: three forget the prior (different numbers in the text), one is right, one
    divides by N in the M-step; every one of them fails 'big inputs', a check that looks broken."""
    results = []
    for i, (n, d) in enumerate([(4, 1), (3, 2), (12, 5)]):
        results.append(_student(f"s{i}",
            _check("E_step", "visible fixture", False, message=f"gamma differs in {n * d} of {n * 3} entries",
                   why=FORGOT_PRIOR + f" (the first {n} rows are off by {0.1 * (i + 1):.3f})",
                   case="X (shape (%d, %d)) =\n" % (n, d) + "\n".join(["[1.0]"] * n)),
            _check("E_step", "hidden random inputs", False, message=f"gamma differs at ({i}, 0)",
                   why=FORGOT_PRIOR + f" (the first {n} rows are off by {0.2 * (i + 1):.3f})", case="X = [[0.5]]"),
            _check("E_step", "big inputs", False, message="too far"),
            _check("M_step", "visible fixture", True), _check("M_step", "big inputs", False, message="too far")))
    results.append(_student("s3", _check("E_step", "visible fixture", True), _check("E_step", "hidden random inputs", True),
                            _check("E_step", "big inputs", False, message="too far"),
                            _check("M_step", "visible fixture", True), _check("M_step", "big inputs", False, message="too far")))
    results.append(_student("s4", _check("E_step", "visible fixture", True), _check("E_step", "hidden random inputs", True),
                            _check("E_step", "big inputs", False, message="too far"),
                            _check("M_step", "visible fixture", False, message="sigma off by 12.5",
                                   why="it looks divided by N instead of N_c"),
                            _check("M_step", "big inputs", False, message="too far")))
    return results, [r.submission for r in results]


def test_a_misconception_shared_by_three_students_is_one_line_whatever_its_numbers():
    results, students = _class()
    report = class_report.build(results, students, assignment=GMM)
    first = next(m for m in report["misconceptions"] if m["key"].startswith("the E-step must weight"))
    assert first["function"] == "E_step" and first["students"] == 3 and first["share_of_class"] == 0.6
    assert first["checks"] == ["visible fixture", "hidden random inputs"]
    assert first["kind"] == "explanation" and first["cause"].startswith(FORGOT_PRIOR)
    assert first["example"]["case"] == "X = [[0.5]]"            # the smallest failing input
    assert sorted(first["who"]) == ["s0", "s1", "s2"]
    assert sum(1 for m in report["misconceptions"] if m["key"].startswith("the E-step must weight")) == 1
    # the broken-looking check has no explanation: it groups by its (normalised) message, once
    too_far = [m for m in report["misconceptions"] if m["kind"] == "message"]
    assert {(m["function"], m["students"]) for m in too_far} == {("E_step", 5), ("M_step", 5)}
    assert [m["students"] for m in report["misconceptions"]] == sorted((m["students"] for m in report["misconceptions"]),
                                                                       reverse=True)


def test_normalised_causes_ignore_numbers_arrays_and_quoted_values():
    assert class_report.normalise_cause("off by 0.125 at (3, 4) in [1.5 2e-3 -7]") == \
        class_report.normalise_cause("off by 12 at (0, 1) in [0.1 0.2 0.3]")
    assert class_report.normalise_cause("name 'foo' is not defined", quoted=True) == \
        class_report.normalise_cause("name 'bar' is not defined", quoted=True)
    assert class_report.normalise_cause("log_2pi missing") != class_report.normalise_cause("log_pi missing")
    assert "E_step" in class_report.normalise_cause("E_step returned 3 values")   # names keep their digits' place


def test_counts_per_function_and_check():
    results, students = _class()
    report = class_report.build(results, students, assignment=GMM)
    e_step = next(f for f in report["functions"] if f["function"] == "E_step")
    m_step = next(f for f in report["functions"] if f["function"] == "M_step")
    assert (e_step["passed"], e_step["partial"], e_step["failed"], e_step["not_attempted"]) == (0, 2, 3, 0)
    assert (m_step["passed"], m_step["partial"], m_step["failed"]) == (0, 4, 1)
    assert e_step["max_score"] == 6 and e_step["scores"] == [0, 0, 0, 4, 4]
    visible = next(c for c in report["checks"] if (c["function"], c["check"]) == ("E_step", "visible fixture"))
    assert (visible["passed"], visible["failed"], visible["pass_rate"]) == (2, 3, 0.4)
    assert report["total"]["scores"] == [2, 2, 2, 6, 4]


def test_a_check_that_everyone_fails_while_passing_the_rest_is_flagged_and_a_good_one_is_not():
    results, students = _class()
    review = class_report.build(results, students, assignment=GMM)["checks_to_review"]
    flagged = {(c["function"], c["check"]) for c in review}
    assert ("M_step", "big inputs") in flagged and ("E_step", "big inputs") in flagged
    assert ("E_step", "visible fixture") not in flagged and ("M_step", "visible fixture") not in flagged
    m = next(c for c in review if (c["function"], c["check"]) == ("M_step", "big inputs"))
    assert "5 of the 5 students who attempted M_step fail it" in m["reasons"][0]


def test_a_check_failing_students_who_are_perfect_elsewhere_is_flagged():
    results = [_student(f"s{i}", _check("E_step", "a", True), _check("E_step", "b", True),
                        _check("M_step", "c", True), _check("M_step", "subtle", i % 3 == 0, message="no")) for i in range(6)]
    results += [_student(f"t{i}", _check("E_step", "a", False, message="x"), _check("E_step", "b", True),
                         _check("M_step", "c", False, message="y"), _check("M_step", "subtle", True)) for i in range(6)]
    review = class_report.build(results, [r.submission for r in results])["checks_to_review"]
    assert [(c["function"], c["check"]) for c in review] == [("M_step", "subtle")]
    assert "it fails 4 of the 6 students who pass every other check" in review[0]["reasons"]


def _skeleton_results():
    """The released notebook's definitions, run through the real checks (every function is the skeleton)."""
    from autograder.loading import load_submission
    namespace = {"__name__": "__student__"}
    for statement in load_submission(ROOT / "course" / "gmm" / "gmm.ipynb").statements:
        if "autograder" in statement.source or "datasets" in statement.source:
            continue
        exec(compile(statement.source, statement.filename, "exec"), namespace)
    return run_checks(GMM, InProcessExecutor(namespace), reference=reference_for("gmm"), only=["E_step", "M_step"])


def test_the_released_skeleton_and_a_missing_function_are_not_attempted():
    skeleton = _skeleton_results()
    assert skeleton.tests and all(not t.passed for t in skeleton.tests)
    assert set(class_report.classify(skeleton).values()) == {"not attempted"}
    namespace = student_namespace(CORPORA / "gmm" / "correct" / "b_vectorised.py")
    del namespace["M_step"]
    partial = run_checks(GMM, InProcessExecutor(namespace), reference=reference_for("gmm"), only=["E_step", "M_step"])
    assert class_report.classify(partial) == {"E_step": "passed", "M_step": "not attempted"}
    report = class_report.build([skeleton, partial], ["skel", "half"], assignment=GMM)
    assert report["misconceptions"] == []                       # not attempting is not a misconception
    assert {r["student"]: r["reasons"] for r in report["follow_up"]} == {
        "skel": ["nothing attempted"], "half": ["not attempted: M_step"]}


def test_follow_up_lists_errors_crashes_time_outs_and_all_zero():
    results = [
        _student("unreadable", error="cannot read the submission: not JSON"),
        _student("hangs", _check("E_step", "a", False, message="E_step did not return within 20 s",
                                 why="an infinite loop", timed_out=True), _check("E_step", "b", True)),
        _student("crashes", _check("E_step", "a", False, message="E_step crashed the Python process running it: "
                                   "killed by signal 9"), _check("E_step", "b", True)),
        _student("zero", _check("E_step", "a", False, message="wrong"), _check("E_step", "b", False, message="wrong")),
        _student("fine", _check("E_step", "a", True), _check("E_step", "b", True)),
    ]
    rows = {r["student"]: r["reasons"] for r in class_report.build(results, [r.submission for r in results])["follow_up"]}
    assert rows == {"unreadable": ["not graded: cannot read the submission: not JSON"], "hangs": ["timed out: E_step"],
                    "crashes": ["crashed: E_step"], "zero": ["all zero"]}


@pytest.mark.parametrize("mutant", ["E_step__no_max_trick.py", "M_step__means_divided_by_N.py"])
def test_mutants_of_the_corpus_give_one_misconception_per_bug(mutant):
    """The real checks on a real bug: two students with it form one group per diagnosed cause."""
    namespace = student_namespace(CORPORA / "gmm" / "mutants" / mutant)
    function = mutant.split("__")[0]
    result = run_checks(GMM, InProcessExecutor(namespace), reference=reference_for("gmm"), only=[function])
    report = class_report.build([result, result], ["a", "b"], assignment=GMM)
    assert report["misconceptions"] and all(m["students"] == 2 for m in report["misconceptions"])
    causes = {m["key"] for m in report["misconceptions"]}
    assert len(causes) == len(report["misconceptions"]) <= len(result.tests)
    assert {m["function"] for m in report["misconceptions"]} == {function}
    assert any(m["hints"] for m in report["misconceptions"])          # the checks' hints come along


def test_csv_json_and_page(tmp_path):
    results, students = _class()
    written = pages.write_class(tmp_path, results, students, assignment="gmm", title="EM", links={"s0": "reports/s0.html"})
    report = json.loads((tmp_path / "class.json").read_text())
    assert report["misconceptions"][2]["students"] == 3 and report["reports"] == {"s0": "reports/s0.html"}
    rows = list(csv.DictReader(io.StringIO((tmp_path / "class-checks.csv").read_text())))
    assert {r["check"] for r in rows} == {"visible fixture", "hidden random inputs", "big inputs"}
    functions = list(csv.DictReader(io.StringIO((tmp_path / "class-functions.csv").read_text())))
    assert [r["function"] for r in functions] == ["E_step", "M_step", "total"]
    mis = list(csv.DictReader(io.StringIO((tmp_path / "class-misconceptions.csv").read_text())))
    assert mis[2]["students"] == "3" and mis[2]["example_case"] == "X = [[0.5]]"
    page = written["class_html"].read_text()
    assert "<script" not in page and not re.search(r"(src|href)=['\"]https?:", page)   # offline, no JavaScript
    assert page.count("<svg") >= 2 * len(report["functions"])                            # plots embedded
    section = page[page.index("id='misconceptions'"):page.index("id='review'")]
    assert "3 student(s)" in section and not re.search(r"\bs[0-4]\b", section)          # nobody named
    assert "similarity.html" not in page
    (tmp_path / "similarity.json").write_text(json.dumps({"pairs": [{}], "course": []}))
    pages.refresh_class(tmp_path)
    assert "similarity.html" in (tmp_path / "class.html").read_text()


def test_html_escapes_what_students_control():
    results = [_student("<b>x</b>", _check("E_step", "a", False, message="<script>alert(1)</script>",
                                           case="<img src=x onerror=alert(1)>"))]
    page = class_html.render(class_report.build(results, ["<b>x</b>"]))
    assert "<script>alert" not in page and "<img src=x" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
