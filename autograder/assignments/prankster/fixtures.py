"""The notebook's visible fixtures, their expected values, and realistic camera shots for the checks.

The visible inputs are the tiny integer arrays every notebook cell can print (``tX``, ``tF``, ...);
integers on purpose: code that updates its inputs in place as floats breaks on them. The expected
values were computed by the reference and stored in ``visible.npz`` by ``make build``, so a
student's machine can check them without the reference.

Realistic shots come from the data generator (``autograder.datasets.prankster.generate``) with
seeds of their own: full-size images whose log-probabilities are of order -1e5, where
exponentiating without care underflows.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

VISIBLE_PATH = Path(__file__).with_name("visible.npz")

tH, tW, tw, tK = 2, 3, 1, 2
EM_MAX_ITER = 3            # the visible run_EM call: run_EM(tX, tw, max_iter=3)
REALISTIC_SEED = 2024      # realistic shots for the checks (not the assignment's data)
SMALL = {"height": 30, "width": 60, "face_width": 22}
# Hidden random problems (H, W, w, K), smallest first: the first failure is the smallest failing input.
HIDDEN_SIZES = [(1, 3, 1, 2), (2, 5, 2, 3), (3, 8, 3, 6), (4, 12, 12, 5), (6, 20, 7, 30), (12, 40, 15, 60)]


def visible_inputs() -> dict:
    """Fresh copies of the notebook's fixtures, exactly as its fixture cell defines them."""
    tX = np.arange(tH * tW * tK).reshape(tH, tW, tK)
    tF = np.arange(tH * tw).reshape(tH, tw)
    tB = np.arange(tH * tW).reshape(tH, tW)
    ts = 0.1
    ta = np.arange(1, (tW - tw + 1) + 1)
    ta = ta / ta.sum()
    tq = np.arange(1, (tW - tw + 1) * tK + 1).reshape(tW - tw + 1, tK)
    tq = tq / tq.sum(axis=0)[np.newaxis, :]
    return {"tX": tX, "tF": tF, "tB": tB, "ts": ts, "ta": ta, "tq": tq, "tw": tw}


def visible_expectations(ref) -> dict[str, np.ndarray]:
    """What the notebook's graded functions must return on the fixtures, computed with ``ref``."""
    v = visible_inputs()
    tX, tF, tB, ts, ta, tq = (v[k] for k in ("tX", "tF", "tB", "ts", "ta", "tq"))
    out = {
        "ll": ref.calculate_log_probability(tX, tF, tB, ts),
        "bound": np.array(ref.calculate_lower_bound(tX, tF, tB, ts, ta, tq)),
        "q": ref.run_e_step(tX, tF, tB, ts, ta),
    }
    out["F"], out["B"], s, out["a"] = ref.run_m_step(tX, tq, tw)
    out["s"] = np.array(s)
    out["em_F"], out["em_B"], em_s, out["em_a"], out["em_LL"] = ref.run_EM(tX, tw, max_iter=EM_MAX_ITER)
    out["em_s"] = np.array(em_s)
    return {k: np.asarray(val, dtype=float) for k, val in out.items()}


@lru_cache(maxsize=1)
def visible() -> dict[str, np.ndarray]:
    with np.load(VISIBLE_PATH) as npz:
        return {k: npz[k] for k in npz.files}


# ----------------------------------------------------------------------------- realistic shots
@lru_cache(maxsize=4)
def _shots(K: int, seed: int, small: bool):
    from ...datasets import prankster
    sizes = SMALL if small else {}
    X, truth = prankster.generate(K, seed, **sizes)
    return X, truth


def realistic(K: int = 8, seed: int = REALISTIC_SEED, small: bool = False) -> dict:
    """Camera shots like the assignment's (100 x 200, w = 73, noise 200; or the small variant).

    Returns fresh arrays: ``X`` (H, W, K), the true ``face``, ``background``, ``prior``,
    ``offsets`` and ``w``.
    """
    X, truth = _shots(K, seed, small)
    out = {k: np.array(v) for k, v in truth.items() if k != "noise_sd"}
    out["X"] = X.copy()
    out["w"] = out["face"].shape[1]
    return out
