"""Where the code runs: a Jupyter kernel or not, Colab or not, whether ipywidgets can be shown."""

from __future__ import annotations

import importlib.util
import sys


def in_kernel() -> bool:
    """True inside a Jupyter kernel (notebook, JupyterLab, Colab, VS Code), not a plain script."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:  # noqa: BLE001
        return False
    return getattr(shell, "kernel", None) is not None


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
