"""The notebook's visible fixtures and their expected values.

The inputs are the shipped sample (``autograder.datasets.gmm``); the expected values were
computed by the reference and stored in ``visible.npz`` by ``make build``, so a student's
machine can check them without the reference.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

VISIBLE_PATH = Path(__file__).with_name("visible.npz")


@lru_cache(maxsize=1)
def sample() -> dict[str, np.ndarray]:
    from ...datasets import gmm
    return gmm.load()


def diagonal(sigma: np.ndarray) -> np.ndarray:
    """The diagonals of a stack of matrices, shape (C, d)."""
    return np.diagonal(sigma, axis1=1, axis2=2).copy()


def visible_expectations(ref) -> dict[str, np.ndarray]:
    """What the notebook's graded cells must produce, computed with the reference module ``ref``."""
    s = sample()
    X, pi0, mu0, sigma0 = s["data"], s["pi0"], s["mu0"], s["sigma0"]
    gamma0 = ref.E_step(X, pi0, mu0, sigma0)
    pi1, mu1, sigma1 = ref.M_step(X, gamma0)
    log_gamma_diag0 = ref.E_step_diag(X, pi0, mu0, diagonal(sigma0))
    pi_d, mu_d, var_d = ref.M_step_diag(X, np.exp(log_gamma_diag0))
    return {
        "gamma0": gamma0, "pi1": pi1, "mu1": mu1, "sigma1": sigma1,
        "vlb1": np.array(ref.compute_vlb(X, pi1, mu1, sigma1, gamma0)),
        "ll0": np.array(ref.log_likelihood(X, pi0, mu0, sigma0)),
        "log_gamma_diag0": log_gamma_diag0, "pi_diag1": pi_d, "mu_diag1": mu_d, "var_diag1": var_d,
    }


@lru_cache(maxsize=1)
def visible() -> dict[str, np.ndarray]:
    with np.load(VISIBLE_PATH) as npz:
        return {k: npz[k] for k in npz.files}
