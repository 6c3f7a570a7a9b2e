"""The assignment's data sets (:data:`FULL_SIZE`, :data:`SMALL_SIZE`), cached on disk.

Generated once and kept as compressed ``uint8`` in ``$COURSE_DATA_CACHE`` or
``~/.cache/em-vi-course/``; a missing or corrupt cache file is simply regenerated.
"""

import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from .camera import DEFAULT_SEED, NOISE_SD, VERSION, generate_uint8, truth_of

FULL_SIZE = {"height": 100, "width": 200, "face_width": 73, "n_images": 1000}
"""Sizes of the assignment's data set: images (100, 200), face width 73, 1000 images."""

SMALL_SIZE = {"height": 30, "width": 60, "face_width": 22, "n_images": 200}
"""Sizes of the small variant for tests: the images and the face scaled by 0.3, 200 images.

Same noise as the full set; EM on it takes a few hundredths of a second and still finds the
face (with 120 images it sometimes stops at a blurry one)."""


def cache_dir():
    """Folder of the cached data sets: ``$COURSE_DATA_CACHE`` or ``~/.cache/em-vi-course``."""
    configured = os.environ.get("COURSE_DATA_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "em-vi-course"


def _sizes(small):
    return dict(SMALL_SIZE if small else FULL_SIZE)


def _cache_path(seed, height, width, face_width, n_images, noise_sd):
    key = (f"prankster-v{VERSION}-seed{int(seed)}-{height}x{width}x{n_images}-w{face_width}"
           f"-sd{float(noise_sd):g}")
    return cache_dir() / f"{key}.npz"


def _read_cache(path, shape):
    """The cached shots, or None when the file is absent, unreadable or not what is expected."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            images = archive["X"]
            digest = str(archive["sha256"])
    except Exception:  # absent, truncated, not a zip, missing key...: regenerate
        return None
    if images.dtype != np.uint8 or images.shape != shape:
        return None
    if hashlib.sha256(images.tobytes()).hexdigest() != digest:
        return None
    return images


def _write_cache(path, images):
    """Write atomically (temporary file, then rename) so a concurrent reader never sees half."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(handle, "wb") as stream:
            np.savez_compressed(stream, X=images,
                                sha256=np.array(hashlib.sha256(images.tobytes()).hexdigest()))
        os.replace(temporary, path)
    except OSError:
        pass  # a read-only home is no reason to fail: the data is just not cached


def _cached_uint8(seed, height, width, face_width, n_images, noise_sd):
    path = _cache_path(seed, height, width, face_width, n_images, noise_sd)
    images = _read_cache(path, (height, width, n_images))
    if images is None:
        images, _ = generate_uint8(seed, height, width, face_width, n_images, noise_sd)
        _write_cache(path, images)
    return images


def load(small=False, seed=DEFAULT_SEED):
    """The camera shots of the assignment, from the on-disk cache (generated on first use).

    Parameters
    ----------
    small : bool, default False
        False: the assignment's data, ``H, W, w, K = 100, 200, 73, 1000``
        (:data:`FULL_SIZE`); True: the small variant for tests, ``30, 60, 22, 200``
        (:data:`SMALL_SIZE`), drawn the same way.
    seed : int, default DEFAULT_SEED

    Returns
    -------
    dict
        ``X`` : ndarray, shape (H, W, K)
            The shots, whole numbers in ``[0, 255]`` as float64.
        ``w`` : int
            Width of the face.
    """
    sizes = _sizes(small)
    images = _cached_uint8(seed, sizes["height"], sizes["width"], sizes["face_width"],
                           sizes["n_images"], NOISE_SD)
    return {"X": images.astype(np.float64), "w": sizes["face_width"]}


def ground_truth(small=False, seed=DEFAULT_SEED):
    """What generated :func:`load`'s data, for tests and grading only (no noise is drawn).

    Parameters
    ----------
    small : bool, default False
    seed : int, default DEFAULT_SEED

    Returns
    -------
    dict
        ``face`` (H, w), ``background`` (H, W), ``offsets`` (K,) int, ``prior`` (W - w + 1,)
        and ``noise_sd`` float; see :func:`generate`.
    """
    sizes = _sizes(small)
    truth, _ = truth_of(seed, sizes["height"], sizes["width"], sizes["face_width"],
                      sizes["n_images"], NOISE_SD)
    return truth
