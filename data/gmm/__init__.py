"""The Gaussian-mixture data of the `gmm` assignment, written by a seeded generator.

``samples.npz`` holds a 2-D sample from a 3-component mixture whose clusters are well separated
but overlap, plus the initial parameters the notebook's graded cells start from. Regenerate with
``python -m autograder.datasets`` (``make data``); the bytes are identical on every machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import npz_bytes

SEED = 20261126
N_POINTS = 300
PATH = Path(__file__).resolve().parent / "samples.npz"

# The mixture the sample is drawn from (the notebook never shows these: students estimate them).
TRUE_PI = np.array([0.45, 0.33, 0.22])
TRUE_MU = np.array([[0.0, 0.0], [4.0, 1.5], [1.0, 4.5]])
TRUE_SIGMA = np.array([
    [[1.5, 0.6], [0.6, 0.8]],
    [[0.7, -0.3], [-0.3, 1.2]],
    [[1.0, 0.4], [0.4, 0.6]],
])


def sample_mixture(n: int, pi: np.ndarray, mu: np.ndarray, sigma: np.ndarray,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` points from a Gaussian mixture.

    Parameters
    ----------
    n : int
        Number of points.
    pi : array, shape (C,)
        Mixture weights (sum to 1).
    mu : array, shape (C, d)
        Component means.
    sigma : array, shape (C, d, d)
        Component covariance matrices (symmetric positive definite).
    rng : numpy.random.Generator

    Returns
    -------
    X : array, shape (n, d)
        The points, in random order.
    labels : array of int, shape (n,)
        The component each point was drawn from.
    """
    labels = rng.choice(len(pi), size=n, p=pi)
    chol = np.linalg.cholesky(sigma)                      # (C, d, d)
    noise = rng.standard_normal((n, mu.shape[1]))         # (n, d)
    X = mu[labels] + np.einsum("nij,nj->ni", chol[labels], noise)
    return X, labels


def initial_parameters(X: np.ndarray, C: int, rng: np.random.Generator):
    """The starting point of the graded cells: random weights, means near the data, and random
    covariances of the data's scale (not the identity, so determinants and solves are exercised).

    Returns
    -------
    pi0 : array, shape (C,)
    mu0 : array, shape (C, d)
    sigma0 : array, shape (C, d, d)
    """
    d = X.shape[1]
    pi0 = rng.dirichlet(np.full(C, 5.0))
    mu0 = X.mean(axis=0) + rng.standard_normal((C, d)) * X.std(axis=0)
    A = rng.standard_normal((C, d, d)) * X.std(axis=0)[None, :, None]
    sigma0 = A @ np.swapaxes(A, 1, 2) / d + np.diag(X.var(axis=0))[None] / 2
    return pi0, mu0, sigma0


def generate(seed: int = SEED, n: int = N_POINTS) -> dict[str, np.ndarray]:
    """The assignment's data: ``data`` (n, 2), ``pi0`` (3,), ``mu0`` (3, 2), ``sigma0`` (3, 2, 2)."""
    rng = np.random.default_rng(seed)
    X, _ = sample_mixture(n, TRUE_PI, TRUE_MU, TRUE_SIGMA, rng)
    pi0, mu0, sigma0 = initial_parameters(X, len(TRUE_PI), rng)
    return {"data": X, "pi0": pi0, "mu0": mu0, "sigma0": sigma0}


def write(path: Path = PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(npz_bytes(generate()))
    return path


def load() -> dict[str, np.ndarray]:
    """The shipped sample as a dict of arrays (generated on the fly if the file is missing)."""
    if PATH.is_file():
        with np.load(PATH) as npz:
            return {k: npz[k] for k in npz.files}
    return generate()
