"""Reference implementations (instructors only; not part of the distributed package).

``solutions.<assignment>`` modules are generated from the solution notebooks
``solutions/<assignment>/<assignment>.ipynb`` by ``make build``: edit the notebooks, not them.
"""
