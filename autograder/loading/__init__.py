"""Turning a submission file into the code the grader may run.

A submission is a notebook or a ``.py`` file. Only its *definitions* are kept: imports, function
and class definitions and simple constant assignments. Training loops, plots, data loading and
shell commands are never run by the grader.
"""

from .submission import Problem, Statement, Submission, load_submission, load_submission_bytes, submission_from_cells

__all__ = ["Problem", "Statement", "Submission", "load_submission", "load_submission_bytes", "submission_from_cells"]
