"""The guest side of the sandbox: the files student code sees as the ``autograder`` package.

Inside the sandbox ``/sandbox/autograder/__init__.py`` is ``package.py``, ``interactive.py`` and
``datasets.py`` are this folder's, and ``autograder.sandbox`` is the sandbox runtime itself;
``/sandbox/boot.py`` starts the zygote. Nothing else of the grader exists there: importing
``autograder.assignments``, ``autograder.engine``, ... fails with ModuleNotFoundError.
"""
