"""One BLAS thread: the setting every process of the grader uses, written once.

The checks make many small linear-algebra calls: a second BLAS thread buys little, and on a busy
machine (another process on the other core) a multi-threaded BLAS call waits for that core, so a
0.2 s check takes seconds; parallelism comes from processes instead. A process gets one thread
either from its environment, read when numpy loads (``VARIABLES``: set them before importing
numpy, and in the environment of a process started from here), or, once numpy is loaded, from
threadpoolctl (``one_blas_thread``). Forking a process whose BLAS has started threads is not
safe, which is another reason the grader's zygotes set them before numpy. Imports nothing heavy.
"""

from __future__ import annotations

import contextlib
import os
from typing import MutableMapping

VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def environment() -> dict[str, str]:
    """``{variable: "1"}`` for every BLAS/OpenMP thread variable (for a child's environment)."""
    return {var: "1" for var in VARIABLES}


def default_to_one_thread(environ: MutableMapping[str, str] = os.environ) -> None:
    """One thread unless the environment already chooses (a user's explicit setting is kept)."""
    for var in VARIABLES:
        environ.setdefault(var, "1")


def force_one_thread(environ: MutableMapping[str, str] = os.environ) -> None:
    """One thread, whatever the environment said."""
    environ.update(environment())


def shell_exports() -> str:
    """``OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 ...`` for a shell script's ``export`` line."""
    return " ".join(f"{var}=1" for var in VARIABLES)


def one_blas_thread():
    """A context in which BLAS and OpenMP thread pools use one thread (threadpoolctl).

    It limits the libraries loaded when it starts, in this process: the student's kernel
    (``check()``, ``progress()``) and the grader; the sandbox's processes get ``environment()``.
    Without threadpoolctl (a dependency, so only an old installation) nothing is limited.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1)
