"""Starts the sandbox's zygote (``python -S -s /sandbox/boot.py``): the guest runtime comes first
on the path, then the rest of the path the grader sends (see autograder.sandbox.zygote)."""

if __name__ == "__main__":
    import os
    import sys

    sys.path[0] = os.path.dirname(os.path.abspath(__file__))   # (not the target of a symlink)
    from autograder.sandbox.zygote import main

    main()
