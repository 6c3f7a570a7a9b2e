"""``python -m autograder``: see autograder.cli."""

from . import blas

# One BLAS thread per grading process (see autograder.blas), set before anything imports numpy.
blas.default_to_one_thread()

from .cli import main  # noqa: E402

raise SystemExit(main())
