"""Where the code runs: a Jupyter kernel or not, Colab or not, whether ipywidgets can be shown."""

from __future__ import annotations

import importlib.util
import sys

from ..shell import in_kernel

__all__ = ["in_kernel", "in_colab", "widgets_available", "find_spec"]


def in_colab() -> bool:
    return "google.colab" in sys.modules or find_spec("google.colab") is not None


def widgets_available() -> bool:
    """ipywidgets can be shown: a Jupyter kernel with ipywidgets installed."""
    return in_kernel() and find_spec("ipywidgets") is not None


def find_spec(name: str):
    """``importlib.util.find_spec`` that answers None (not an error) when a parent package is missing."""
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
