"""This repository is an nbgrader course.

Source notebooks (with solutions and hidden tests) live in solutions/<assignment>/, released
student notebooks in course/<assignment>/. Hidden test cells call the autograder package, so
nbgrader and `python -m autograder grade` give the same points.
"""

c = get_config()  # noqa: F821 - provided by nbgrader

c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "course"
# The reference modules generated next to each source notebook must never be released.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "__init__.py", "_*.py"]
# A notebook cell may take a while (EM on 1000 images); a stuck cell fails after this.
c.ExecutePreprocessor.timeout = 600
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
# Feedback returned to students shows each test cell's output (what failed and why) but never the
# hidden test code: nbgrader's default feedback would print the cells as autograded, hidden tests
# included, so the hidden regions are cleared first.
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import ClearHiddenTests, GetGrades  # noqa: E402

c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
