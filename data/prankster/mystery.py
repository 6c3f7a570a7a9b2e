"""Solving the mystery: which suspect a recovered face looks like, and checking an accusation.

The culprit's name is compared only as a salted hash, so it is printed and stored nowhere.
"""

import hashlib

import numpy as np

from .camera import DEFAULT_SEED, culprit_index
from .portraits import SUSPECT_NAMES, SUSPECTS, lineup_stack

_ACCUSATION_SALT = b"em-vi-course/prankster/accusation"


def _correlation(a, b):
    """Pearson correlation of two arrays of the same shape (0 when one of them is constant)."""
    a = np.asarray(a, dtype=float).ravel() - np.mean(a)
    b = np.asarray(b, dtype=float).ravel() - np.mean(b)
    norms = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(np.dot(a, b) / norms) if norms > 0 else 0.0


def match_scores(F):
    """How much a face looks like each suspect.

    Parameters
    ----------
    F : array_like, shape (h, w)
        A face, e.g. the one EM recovered; the portraits are drawn at its size.

    Returns
    -------
    dict
        ``{name: correlation}`` in lineup order: Pearson correlation between ``F`` and the
        suspect's portrait, in ``[-1, 1]``.
    """
    F = np.asarray(F, dtype=float)
    if F.ndim != 2 or min(F.shape) < 1 or not np.all(np.isfinite(F)):
        raise ValueError(f"F must be a finite 2-d array, got shape {F.shape}")
    faces = lineup_stack(F.shape)
    return {name: _correlation(F, face) for name, face in zip(SUSPECT_NAMES, faces)}


def identify(F):
    """The suspect whose portrait correlates best with the face ``F`` (h, w)."""
    scores = match_scores(F)
    return max(scores, key=scores.get)


def _normalise_name(name):
    return " ".join(str(name).lower().split())


def _accusation_digest(name, seed):
    text = f"{int(seed)}:{_normalise_name(name)}".encode()
    return hashlib.sha256(_ACCUSATION_SALT + text).hexdigest()


def is_culprit(name, seed=DEFAULT_SEED):
    """Check an accusation without revealing the answer.

    Parameters
    ----------
    name : str
        Full name of a suspect (case and extra spaces do not matter), e.g. ``identify(F)``.
    seed : int, default DEFAULT_SEED
        Seed of the data set the accusation is about.

    Returns
    -------
    bool
        True when ``name`` is the culprit of that data set. Only salted hashes of the names are
        compared, so nothing printed or stored contains the culprit's name.
    """
    culprit = SUSPECTS[culprit_index(seed)].name
    return _accusation_digest(name, seed) == _accusation_digest(culprit, seed)
