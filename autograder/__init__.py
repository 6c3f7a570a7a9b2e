"""Autograder for the EM & variational inference course.

Students use ``Checker`` in their notebooks; instructors use ``python -m autograder``.
Imports are lazy so that the sandbox child, which imports ``autograder.sandbox``, stays light.
"""

__version__ = "0.1.0"

__all__ = ["Checker", "__version__"]


def __getattr__(name):
    if name == "Checker":
        from .student import Checker
        return Checker
    raise AttributeError(name)
