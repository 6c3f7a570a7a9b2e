"""Which IPython shell the code runs under, if any: read in one place for every layer.

``echo`` (where a ``check()`` report goes) and ``notebook.kernel`` (whether bars and widgets can
be shown) both ask; this module sits below both, so that neither imports the other's layer. It
imports nothing of IPython: a process that never loaded IPython is no IPython shell.
"""

from __future__ import annotations

import sys

__all__ = ["ipython_shell", "in_kernel"]


def ipython_shell():
    """The running IPython shell (a terminal IPython or a Jupyter kernel), or None."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:  # noqa: BLE001 - a half-initialised IPython is no shell
        return None


def in_kernel() -> bool:
    """True inside a Jupyter kernel (notebook, JupyterLab, Colab, VS Code), not a plain script
    or a terminal IPython."""
    return getattr(ipython_shell(), "kernel", None) is not None
