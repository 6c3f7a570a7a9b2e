"""This repository is an nbgrader course.

Source notebooks (with solutions and hidden tests) live in solutions/<assignment>/, released
student notebooks in course/<assignment>/. `nbgrader autograde` does not run the notebooks: it
grades their code in the autograder's sandbox, with the same function as
`python -m autograder grade`, so both give the same points (see autograder/autograde.py).
"""

c = get_config()  # noqa: F821 - provided by nbgrader

c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "course"
# The reference modules generated next to each source notebook must never be released.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "__init__.py", "_*.py"]
# Commands that still run notebooks in a kernel (`nbgrader validate`, ...): a stuck cell fails after this.
c.ExecutePreprocessor.timeout = 600
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}

# Autograde: nbgrader's Execute step (the student's notebook in a kernel with the instructor's
# rights, the score read from what the notebook displays) is replaced by grading the code in the
# sandbox; every test cell is restored from the release first and gets an explicit score.
from autograder.autograde import configure  # noqa: E402

configure(c)

# Feedback returned to students shows each test cell's output (what failed and why) but never the
# hidden test code: nbgrader's default feedback would print the cells as autograded, hidden tests
# included, so the hidden regions are cleared first.
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import ClearHiddenTests, GetGrades  # noqa: E402

c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
