"""The camera shots: the seed picks the culprit and the face positions, the noise hides the face.

Everything random comes from ``numpy.random.default_rng(seed)`` (PCG64) through its ``random``
and ``standard_normal`` methods, whose streams numpy keeps stable.
"""

import hashlib

import numpy as np

from .portraits import SUSPECTS, draw_portrait
from .scene import draw_background

VERSION = 1
"""Version of the generator; part of the cache key, bump it whenever the output changes."""

DEFAULT_SEED = 1806
"""Seed of the data sets used in the assignment (:func:`load`)."""

NOISE_SD = 200.0
"""Standard deviation of the camera noise, in grey levels (pixel values span 0..255)."""

_CULPRIT_SALT = b"em-vi-course/prankster/culprit"


def culprit_index(seed):
    """Index in :data:`SUSPECTS` of the culprit for ``seed``: a hash, not the name, decides."""
    digest = hashlib.sha256(_CULPRIT_SALT + str(int(seed)).encode()).digest()
    return int.from_bytes(digest[:8], "little") % len(SUSPECTS)


def _position_prior(n_positions, rng):
    """A non-uniform prior over face positions: two bumps of seeded place and size on a floor.

    The prankster lingers at two places of the wall (where the games were hidden...) and passes
    quickly elsewhere. Each bump is the smooth polynomial ``(1 - t^2)^2`` so no transcendental
    function (whose last bit may differ between machines) is involved.

    Parameters
    ----------
    n_positions : int
        Number of possible face positions, ``W - w + 1``.
    rng : numpy.random.Generator
        Source of the bumps' centres and widths (3 numbers each are drawn).

    Returns
    -------
    prior : ndarray, shape (n_positions,)
        Positive probabilities that sum to 1.
    """
    positions = np.arange(n_positions) / max(n_positions - 1, 1)  # in [0, 1]
    prior = np.full(n_positions, 0.15)
    for weight, start in ((1.0, 0.1), (0.6, 0.55)):  # one bump in each half of the wall
        centre, half_width, height = rng.random(3)
        t = (positions - (start + 0.35 * centre)) / (0.08 + 0.12 * half_width)
        prior += weight * (0.5 + height) * np.clip(1.0 - t * t, 0.0, None) ** 2
    return prior / prior.sum()


def _draw_offsets(prior, n_images, rng):
    """Face positions ``d_k`` drawn from ``prior`` by inverting its CDF, shape (K,)."""
    cdf = np.cumsum(prior)
    offsets = np.searchsorted(cdf, rng.random(n_images) * cdf[-1], side="right")
    return np.minimum(offsets, len(prior) - 1)


def compose_images(face, background, offsets):
    """Noise-free shots: the background with the face pasted at each offset.

    Parameters
    ----------
    face : ndarray, shape (H, w)
    background : ndarray, shape (H, W)
    offsets : ndarray of int, shape (K,)
        Column of the image where the face's first column lands, in ``0 .. W - w``.

    Returns
    -------
    images : ndarray, shape (H, W, K)
    """
    face_width = face.shape[1]
    width = background.shape[1]
    # Face column seen at image column j in image k (outside 0..w-1: background there).
    face_column = np.arange(width)[:, None] - np.asarray(offsets)[None, :]  # (W, K)
    in_face = (face_column >= 0) & (face_column < face_width)
    pasted = face[:, np.clip(face_column, 0, face_width - 1)]  # (H, W, K)
    return np.where(in_face, pasted, background[:, :, None])


def truth_of(seed, height, width, face_width, n_images, noise_sd):
    """Everything but the noise, and the generator positioned to draw the noise."""
    rng = np.random.default_rng(seed)
    face = draw_portrait(SUSPECTS[culprit_index(seed)], (height, face_width))
    background = draw_background((height, width))
    prior = _position_prior(width - face_width + 1, rng)
    offsets = _draw_offsets(prior, n_images, rng)
    truth = {"face": face, "background": background, "offsets": offsets, "prior": prior,
             "noise_sd": float(noise_sd)}
    return truth, rng


def _check_sizes(height, width, face_width, n_images, noise_sd):
    if not 1 <= face_width <= width or height < 1 or n_images < 1:
        raise ValueError(f"need 1 <= face_width <= width, height >= 1 and n_images >= 1; got "
                         f"height={height}, width={width}, face_width={face_width}, "
                         f"n_images={n_images}")
    if not noise_sd >= 0:
        raise ValueError(f"noise_sd must be >= 0, got {noise_sd}")


def generate_uint8(seed, height, width, face_width, n_images, noise_sd):
    truth, rng = truth_of(seed, height, width, face_width, n_images, noise_sd)
    clean = compose_images(truth["face"], truth["background"], truth["offsets"])
    # The noise is drawn as one block in C order; in-place updates keep the peak memory at two
    # (H, W, K) arrays.
    shots = rng.standard_normal(clean.shape)
    shots *= noise_sd
    shots += clean
    np.round(shots, out=shots)
    np.clip(shots, 0, 255, out=shots)
    return shots.astype(np.uint8), truth


def generate(K=1000, seed=DEFAULT_SEED, *, height=100, width=200, face_width=73,
             noise_sd=NOISE_SD):
    """Draw the camera shots (no cache; see :func:`load` for the cached data sets).

    Parameters
    ----------
    K : int, default 1000
        Number of shots.
    seed : int, default DEFAULT_SEED
        Seed of ``numpy.random.default_rng``; it also decides who the culprit is.
    height, width : int, default 100, 200
        ``H`` and ``W``: size of a shot.
    face_width : int, default 73
        ``w``: width of the face, at most ``W``; the face has the shot's height.
    noise_sd : float, default NOISE_SD
        Standard deviation of the Gaussian noise, in grey levels.

    Returns
    -------
    X : ndarray, shape (H, W, K)
        The shots, whole numbers in ``[0, 255]`` stored as float64 (so that students can
        subtract them safely).
    truth : dict
        Ground truth, for tests and grading only:
        ``face`` (H, w), ``background`` (H, W), ``offsets`` (K,) int (column of the face's
        first column in each shot), ``prior`` (W - w + 1,) (the distribution of the offsets),
        ``noise_sd`` float.
    """
    _check_sizes(height, width, face_width, K, noise_sd)
    images, truth = generate_uint8(seed, height, width, face_width, K, noise_sd)
    return images.astype(np.float64), truth
