"""``grade()`` in a notebook never decides a grade; where it cannot grade it says what it is.

Graders do not run notebooks (tests/test_nbgrader_workflow.py); ``grade()`` is the instructor's
preview (tests/test_notebooks.py runs it in the source notebooks). On a machine without the
reference solutions (a student's) it must show no score and point to ``check()``.
"""

from __future__ import annotations

import re

from autograder import Checker
from autograder.engine import reference


def test_grade_on_a_students_machine_shows_no_score_and_points_to_check(monkeypatch):
    monkeypatch.setattr(reference, "course_root", lambda: None)
    shown = Checker("gmm").grade("E_step")
    text, page = repr(shown), shown._repr_html_()
    assert 'check("E_step", E_step)' in text and "instructor" in text
    assert not re.search(r"\d", text), text          # no score, no "0 / 0"
    assert "check(&quot;E_step&quot;, E_step)" in page or 'check("E_step", E_step)' in page
    assert not hasattr(shown, "__float__")
