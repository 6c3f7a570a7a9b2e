"""Course data: small shipped files and the seeded generators that wrote them.

Installed as ``autograder.datasets`` (this folder is mapped there in ``pyproject.toml``), so a
notebook anywhere, Colab included, can do::

    from autograder import datasets
    samples = datasets.load("gmm")
"""

from __future__ import annotations

import importlib
import io
import pkgutil
import zipfile

import numpy as np

def names() -> list[str]:
    """The data sets: every module or sub-package of this package (``<id>.py`` or ``<id>/``)."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load(name: str, **options):
    """The data of assignment ``name`` (see each generator module for what it returns)."""
    if name not in names():
        raise KeyError(f"no data set {name!r}; available: {', '.join(names())}")
    module = importlib.import_module(f"{__name__}.{name}")
    return module.load(**options)


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """``.npz`` bytes that depend only on the arrays (fixed key order, no timestamps)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for key in sorted(arrays):
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            payload = io.BytesIO()
            np.lib.format.write_array(payload, np.array(arrays[key], order="C"), allow_pickle=False)
            archive.writestr(info, payload.getvalue())
    return buffer.getvalue()
