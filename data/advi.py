"""Data for the ADVI assignment: a simple linear regression with Gaussian noise.

The observations follow

    y_n = b0 + b1 * x_n + sigma * e_n,    e_n ~ N(0, 1) independent,

with ``x_n`` drawn uniformly on ``[X_LOW, X_HIGH)``. The inputs are deliberately not centred
(their mean is far from zero compared with their spread), so the posterior of the intercept
``b0`` and the slope ``b1`` is strongly negatively correlated: a mean-field approximation
visibly misses it, a full-rank one does not.

Everything is drawn from ``numpy.random.default_rng(seed)`` (PCG64) with the ``uniform`` and
``standard_normal`` methods only, whose streams numpy keeps stable, so a given seed gives the
same numbers on any machine.
"""

import numpy as np

TRUE_B = (5.0, -3.5)
"""True regression coefficients ``(b0, b1)``: intercept and slope."""

TRUE_SIGMA = 2.5
"""True standard deviation of the noise."""

X_LOW, X_HIGH = 1.0, 6.0
"""The inputs are drawn uniformly on ``[X_LOW, X_HIGH)``."""

DEFAULT_SEED = 2017
"""Seed of the data set used in the assignment (:func:`load`)."""

DEFAULT_N = 80
"""Number of observations of the data set used in the assignment (:func:`load`)."""


def generate(seed=DEFAULT_SEED, n=DEFAULT_N):
    """Draw a synthetic linear-regression data set.

    Parameters
    ----------
    seed : int, default DEFAULT_SEED
        Seed of ``numpy.random.default_rng``; the same seed always gives the same data.
    n : int, default DEFAULT_N
        Number of observations ``N`` (at least 1).

    Returns
    -------
    dict
        ``x`` : ndarray, shape (N,)
            Inputs, uniform on ``[X_LOW, X_HIGH)``.
        ``y`` : ndarray, shape (N,)
            Outputs ``b0 + b1 * x + sigma * noise``.
        ``true_b`` : ndarray, shape (2,)
            The coefficients ``(b0, b1)`` used to generate ``y``.
        ``true_sigma`` : float
            The noise standard deviation used to generate ``y``.
    """
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    # Draw the inputs first and the noise second, each as one block, so the inputs of a data set
    # do not depend on how the noise is drawn.
    x = rng.uniform(X_LOW, X_HIGH, size=n)
    noise = rng.standard_normal(n)
    true_b = np.array(TRUE_B, dtype=float)
    y = true_b[0] + true_b[1] * x + TRUE_SIGMA * noise
    return {"x": x, "y": y, "true_b": true_b, "true_sigma": float(TRUE_SIGMA)}


def load():
    """Return the data set of the assignment: ``generate(DEFAULT_SEED, DEFAULT_N)``.

    Returns
    -------
    dict
        ``x`` (N,), ``y`` (N,), ``true_b`` (2,), ``true_sigma`` (float) with ``N = DEFAULT_N``;
        see :func:`generate`.
    """
    return generate(seed=DEFAULT_SEED, n=DEFAULT_N)
