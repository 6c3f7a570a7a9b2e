"""The course build: source notebooks -> reference modules, released notebooks, visible fixtures.

Run ``python -m autograder.build`` (``make build``) after editing a source notebook, and
``python -m autograder.build --check`` (run by the test-suite) to prove nothing drifted.
Each step is a small function with one job, like nbgrader's preprocessors.
"""
