"""The hard_em notebook's visible fixtures and their expected values.

The prankster fixtures (``tX``, ``tF``, ... in ``autograder.assignments.prankster.fixtures``) are
shared: their soft-EM expected values live in the prankster assignment's ``visible.npz``; this
module stores what hard EM must give on them, and what the spherical mixture and k-means must
give on the ``gmm`` assignment's sample (``datasets.load("gmm")``) from its starting means.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..prankster.fixtures import EM_MAX_ITER, visible_inputs

VISIBLE_PATH = Path(__file__).with_name("visible.npz")
S2_VISIBLE = 2.0            # the shared variance of the visible spherical-mixture E-step
# The visible M-step is also run on the sample shifted this far from the origin (its s2 must not
# change): E[x^2] - mu^2 loses about 4 of its 16 digits there, the centred formula none.
FAR_SHIFT = np.array([3e6, -2e6])


@lru_cache(maxsize=1)
def _gmm_sample() -> dict:
    from ...datasets import gmm
    return gmm.load()


def gmm_sample() -> dict:
    """The gmm assignment's sample: ``data`` (300, 2), ``pi0`` (3,), ``mu0`` (3, 2) (fresh copies)."""
    return {k: np.array(v) for k, v in _gmm_sample().items()}


def visible_expectations(ref) -> dict[str, np.ndarray]:
    """What the notebook's graded functions must return on the fixtures, computed with ``ref``."""
    v = visible_inputs()
    tX, tF, tB, ts, ta, tw = (v[k] for k in ("tX", "tF", "tB", "ts", "ta", "tw"))
    out = {"hard_q": ref.run_e_step(tX, tF, tB, ts, ta, hard_EM=True)}
    out["hard_F"], out["hard_B"], hard_s, out["hard_a"] = ref.run_m_step(tX, out["hard_q"], tw, hard_EM=True)
    out["hard_s"] = np.array(hard_s)
    out["hard_bound"] = np.array(ref.calculate_lower_bound(tX, out["hard_F"], out["hard_B"], hard_s, out["hard_a"],
                                                           out["hard_q"], hard_EM=True))
    (out["hard_em_F"], out["hard_em_B"], hard_em_s, out["hard_em_a"],
     out["hard_em_LL"]) = ref.run_EM(tX, tw, max_iter=EM_MAX_ITER, hard_EM=True)
    out["hard_em_s"] = np.array(hard_em_s)
    g = gmm_sample()
    X, pi0, mu0 = g["data"], g["pi0"], g["mu0"]
    out["gamma_soft"] = ref.e_step_spherical(X, pi0, mu0, S2_VISIBLE)
    out["gamma_hard"] = ref.e_step_spherical(X, pi0, mu0, S2_VISIBLE, hard_EM=True)
    out["pi1"], out["mu1"], s2_1 = ref.m_step_spherical(X, out["gamma_soft"])
    out["s2_1"] = np.array(s2_1)
    out["kmeans_mu"], out["kmeans_labels"] = ref.kmeans(X, mu0)
    return {k: np.asarray(val, dtype=float) for k, val in out.items()}


@lru_cache(maxsize=1)
def visible() -> dict[str, np.ndarray]:
    with np.load(VISIBLE_PATH) as npz:
        return {k: npz[k] for k in npz.files}
