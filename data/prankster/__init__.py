"""Data for the ``prankster`` assignment: who hid the games for game night?

A security camera pointed at a wall of the games room took ``K`` shots while the prankster walked
past it. Every shot shows the same background ``B`` (H, W) with the prankster's face ``F`` (H, w)
pasted at an unknown column offset ``d_k``, drawn from a prior ``a`` over the ``W - w + 1``
possible offsets, plus heavy Gaussian pixel noise with standard deviation ``noise_sd``; the
result is rounded to integers and clipped to ``[0, 255]`` like a real 8-bit camera::

    clean_k    = B with F pasted over its columns d_k .. d_k + w - 1
    X[:, :, k] = clip(round(clean_k + noise_sd * N(0, I)), 0, 255)

The noise is so strong that no single shot shows a face, yet EM on all the shots does.

The face is one of the :data:`SUSPECTS` of a lineup. Every portrait and the background are drawn
procedurally with numpy (no photograph of anybody is involved) and every suspect is fictional.
The culprit is picked from the seed by a hash, so who it is appears in plain text nowhere: not in
the data, not in this file, not in anything the notebook prints. :func:`identify` names the
suspect that a recovered face looks like and :func:`is_culprit` checks an accusation.

Reproducibility: everything random comes from ``numpy.random.default_rng(seed)`` (PCG64) through
the ``random`` and ``standard_normal`` methods, whose streams numpy keeps stable; the drawings
use only the four basic operations and comparisons on whole-number grey levels, which IEEE 754
rounds identically on every machine. So a seed gives the same bytes everywhere. Generated data
sets are cached on disk (``$COURSE_DATA_CACHE`` or ``~/.cache/em-vi-course/``) as compressed
``uint8``; a missing or corrupt cache file is simply regenerated.

One module per job, all of them importable from here (``from autograder.datasets import
prankster``; ``prankster.load()``, ``prankster.identify(F)``, ...):

``canvas``     the supersampled drawing surface every picture is drawn on
``portraits``  the lineup: :data:`SUSPECTS` and their procedurally drawn portraits
``scene``      the games-room wall the camera sees (the background)
``camera``     the camera shots: the culprit, the prior over positions, the noisy images
``cache``      the assignment's data sets, generated once and cached on disk
``mystery``    solving it: which suspect a recovered face looks like, checking an accusation
"""

from .cache import FULL_SIZE, SMALL_SIZE, cache_dir, ground_truth, load
from .camera import DEFAULT_SEED, NOISE_SD, VERSION, compose_images, generate
from .mystery import identify, is_culprit, match_scores
from .portraits import SUSPECT_NAMES, SUSPECTS, Suspect, draw_portrait, lineup
from .scene import draw_background

__all__ = ["DEFAULT_SEED", "FULL_SIZE", "NOISE_SD", "SMALL_SIZE", "SUSPECTS", "SUSPECT_NAMES", "Suspect",
           "VERSION", "cache_dir", "compose_images", "draw_background", "draw_portrait", "generate",
           "ground_truth", "identify", "is_culprit", "lineup", "load", "match_scores"]
