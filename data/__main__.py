"""Rewrite the shipped data files from their seeded generators: ``python -m autograder.datasets``."""

import importlib
import sys

from . import names

# Generators whose output is committed define ``write()``; the others generate and cache on demand.
modules = [importlib.import_module(f"autograder.datasets.{name}") for name in sys.argv[1:] or names()]
for module in modules:
    if hasattr(module, "write") or sys.argv[1:]:
        print(f"wrote {module.write()}")
