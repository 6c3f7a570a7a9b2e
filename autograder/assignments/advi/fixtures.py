"""The notebook's visible fixtures and their expected values.

The inputs are fixed arrays (drawn once from seeded generators) at which the student-side checks
evaluate a submission; the expected values were computed by the reference and stored in
``visible.npz`` by ``make build``, so a student's machine can check them without the reference.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from . import theory

VISIBLE_PATH = Path(__file__).with_name("visible.npz")

# Probe points: near the posterior but not at the optimum, so that every gradient is far from 0
# and the reparameterisation noise is small next to the entropy's share of the gradient.
MU_PROBE = np.array([5.43, -3.48, 0.94])
OMEGA_PROBE = np.array([-1.6, -2.9, -2.8])
L_PROBE = np.array([[0.47, 0.0, 0.0],
                    [-0.116, 0.043, 0.0],
                    [0.01, -0.005, 0.047]])
# The same Gaussian q with a negative diagonal entry (a column of L flipped: L L^T is unchanged), as
# ADVI's updates can produce: the entropy must use log|L_ii|.
L_FLIPPED = L_PROBE * np.array([1.0, -1.0, 1.0])
STEP_LEARNING_RATE = 0.3


@lru_cache(maxsize=1)
def sample() -> dict:
    from ...datasets import advi
    return advi.load()


@lru_cache(maxsize=1)
def inputs() -> dict:
    """The visible inputs (a fresh dict of fresh arrays is returned by :func:`visible_inputs`)."""
    rng = np.random.default_rng(20170301)
    zeta = np.vstack([np.array([5.33, -3.46, 0.885]) + 0.4 * rng.standard_normal((4, 3)),
                      [0.0, 0.0, 0.0]])                     # the paper's starting point: sigma = 1
    eta = rng.standard_normal((10, 3))
    # A gradient sequence of mixed sizes, with a zero and sign changes.
    grads = np.array([[3.0, -40.0, 0.5], [2.0, 10.0, -0.25], [0.0, 5.0, 1.0],
                      [-1.5, -2.0, 0.0], [0.1, 0.2, 4.0], [7.0, -0.01, 0.3]])
    return {"zeta": zeta, "theta": theory.inverse_transform(zeta), "eta": eta, "grads": grads}


def visible_inputs() -> dict:
    return {k: v.copy() for k, v in inputs().items()}


def visible_expectations(ref) -> dict[str, np.ndarray]:
    """What the notebook's graded functions must return on the visible inputs, computed with ``ref``."""
    s, v = sample(), visible_inputs()
    x, y = s["x"], s["y"]
    out = {
        "theta": ref.inverse_transform(v["zeta"]),
        "log_det": ref.log_det_jacobian(v["zeta"]),
        "log_joint": ref.log_joint(v["theta"], x, y),
        "log_joint_zeta": ref.log_joint_zeta(v["zeta"], x, y),
        "grad_log_joint_zeta": ref.grad_log_joint_zeta(v["zeta"], x, y),
        "elbo_mf": np.array(ref.elbo_mean_field(MU_PROBE, OMEGA_PROBE, v["eta"], x, y)),
        "elbo_fr": np.array(ref.elbo_full_rank(MU_PROBE, L_PROBE, v["eta"], x, y)),
        "elbo_fr_flipped": np.array(ref.elbo_full_rank(MU_PROBE, L_FLIPPED, v["eta"], x, y)),
    }
    out["grad_mu_mf"], out["grad_omega_mf"] = ref.grad_elbo_mean_field(MU_PROBE, OMEGA_PROBE, v["eta"], x, y)
    out["grad_mu_fr"], out["grad_L_fr"] = ref.grad_elbo_full_rank(MU_PROBE, L_PROBE, v["eta"], x, y)
    rhos, ss, s_prev = [], [], None
    for k, g in enumerate(v["grads"], start=1):
        rho, s_prev = ref.step_size(g, s_prev, k, STEP_LEARNING_RATE)
        rhos.append(rho)
        ss.append(s_prev)
    out["step_rho"], out["step_s"] = np.array(rhos), np.array(ss)
    return {k: np.asarray(val, dtype=float) for k, val in out.items()}


@lru_cache(maxsize=1)
def visible() -> dict[str, np.ndarray]:
    with np.load(VISIBLE_PATH) as npz:
        return {k: npz[k] for k in npz.files}
