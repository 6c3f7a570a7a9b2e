"""The course package as a graded submission sees it: only what a submission's definitions may
import.

``from autograder import Checker, datasets, interactive`` (the notebook's set-up cell) works;
progress bars are silent and the slider does nothing. The checks, the reference solutions, the
data and the grader itself are not here: grading happens outside this process.
"""

from . import datasets, interactive

__all__ = ["Checker", "datasets", "interactive"]


class Checker:
    """The notebook's ``Checker``: not available while your work is being graded."""

    def __init__(self, *args, **kwargs) -> None:
        raise RuntimeError("autograder.Checker is not available while your work is being graded "
                           "(check(), grade(), hint() and progress() work in your notebook only)")
