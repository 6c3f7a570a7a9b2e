"""Self-study helpers in the notebook: hints that open one at a time after a failed check, and
progress() summarising which tasks pass."""

from __future__ import annotations

import re

import pytest

import solutions.gmm as ref
from autograder import Checker


def _wrong_E_step(X, pi, mu, sigma):
    return ref.E_step(X, pi, mu, sigma) * 1.01        # rows no longer sum to 1


def _not_normalised_at_all(X, pi, mu, sigma):
    import numpy as np
    return np.full((X.shape[0], pi.shape[0]), 0.5)


def _uniform(X, pi, mu, sigma):
    import numpy as np
    return np.full((X.shape[0], pi.shape[0]), 1.0 / pi.shape[0])   # normalised, but wrong values


def _not_implemented(*args):
    raise NotImplementedError()


def _said(capsys) -> str:
    return capsys.readouterr().out.strip()


def test_hints_open_on_request_one_at_a_time_after_a_failed_check(capsys):
    checker = Checker("gmm")
    checker.hint("E_step")
    assert _said(capsys) == 'Run check("E_step", E_step) first: hints open after a check fails.'

    report = checker.check("E_step", _wrong_E_step)
    assert not report.passed
    assert _said(capsys) == repr(report)       # called from code: the report is printed, once
    assert 'hint("E_step")' in repr(report) and 'hint("E_step")' in report._repr_html_()
    hints = []
    while True:
        checker.hint("E_step")
        said = _said(capsys)
        if not said.startswith("Hint "):
            break
        hints.append(said)
    assert len(hints) >= 2
    assert [re.match(r"Hint (\d+)/(\d+)", h).groups() for h in hints] == \
        [(str(i), str(len(hints))) for i in range(1, len(hints) + 1)]
    assert said.startswith("That was the last hint for E_step")

    checker.check("E_step", ref.E_step)
    capsys.readouterr()
    checker.hint("E_step")
    assert _said(capsys) == "All the checks of E_step you ran pass: no hint needed."


def test_hints_start_again_when_something_else_fails(capsys):
    checker = Checker("gmm")
    checker.check("E_step", _wrong_E_step)
    checker.hint("E_step")
    checker.hint("E_step")
    assert _said(capsys).splitlines()[-1].startswith("Hint 2/")
    checker.check("E_step", _wrong_E_step)            # the same failures: carry on
    capsys.readouterr()
    checker.hint("E_step")
    assert _said(capsys).startswith("Hint 3/")
    checker.check("E_step", _uniform)                 # other checks fail: from the first hint
    capsys.readouterr()
    checker.hint("E_step")
    assert _said(capsys).startswith("Hint 1/")


def test_unknown_task_names_are_an_error():
    with pytest.raises(KeyError):
        Checker("gmm").hint("E_stp")


def test_check_report_shows_the_score_once_in_html_and_first_in_text():
    report = Checker("gmm").check("E_step", ref.E_step)
    assert report.passed
    assert re.match(r"E_step\(X, pi, mu, sigma\): (\d+) / \1$", repr(report).splitlines()[0])
    heading = re.search(r"<h3>(.*?)</h3>", report._repr_html_()).group(1)
    assert heading.startswith("E_step(X, pi, mu, sigma)<span") and heading.count(" / ") == 1


def test_progress_lists_every_task_as_passing_failing_or_not_there_yet():
    namespace = {name: getattr(ref, name) for name in ("np", "M_step", "compute_vlb", "log_likelihood")}
    namespace["E_step"] = _not_normalised_at_all
    namespace["E_step_diag"] = _not_implemented
    report = Checker("gmm").progress(namespace)
    rows = {name: (mark, what) for mark, name, what in report.rows()}
    assert rows["M_step"][0] == "✓" and rows["log_likelihood"][0] == "✓"
    assert rows["E_step"][0] == "✗" and "check(s) fail" in rows["E_step"][1]
    assert rows["E_step_diag"] == ("·", "not implemented yet")
    assert rows["train_EM"] == ("·", "not defined yet")
    assert list(rows) == [t.name for t in Checker("gmm").assignment.tasks]
    text = repr(report)
    assert "3 of 11 tasks pass their checks" in text and "6 not defined yet" in text
    assert 'hint("name")' in text
    html = report._repr_html_()
    assert "ag-progress" in html and html.count('class="ag-check') == 11


def test_progress_when_everything_passes():
    namespace = {name: getattr(ref, name) for name in dir(ref) if not name.startswith("_")}
    report = Checker("gmm").progress(namespace)
    assert report.passed
    assert all(mark == "✓" for mark, _, _ in report.rows())
    assert "11 of 11 tasks pass their checks." in repr(report) and "hint(" not in repr(report)
