"""What a student sees of the package in a notebook, one audience per module.

``kernel``    where the code runs: a Jupyter kernel, Colab, whether widgets can be shown
``progress``  ``progress_bar``: a bar on the loops a student waits for (silent while checks run)
``slider``    ``iteration_slider``: stepping through saved EM states (a grid where widgets are missing)
``environment`` ``setup(assignment_id)``: the set-up cell's work (the assignment's extra, Colab's widgets)

Notebooks import these through ``autograder.interactive`` (the one public path, which the
sandbox replaces with a silent stand-in while a submission is graded). Nothing here imports
anything heavy at import time: the grader imports ``progress`` too (the gmm reference module
uses ``progress_bar``).
"""
