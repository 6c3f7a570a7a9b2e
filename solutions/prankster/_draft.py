"""Prankster assignment, phase 1 draft: vectorised reference implementation of the skeletons.

Model (data from ``data/prankster.py``). ``K`` grey-level images ``X[:, :, k]`` of size
``H x W`` each show a background ``B`` (H, W) with a face ``F`` (H, w) pasted at an unknown
column offset ``d_k`` in ``0 .. W - w``, plus independent Gaussian pixel noise::

    d_k ~ Categorical(a),                                a : (W - w + 1,)
    X[i, j, k] | d_k ~ N(F[i, j - d_k], s^2)   if d_k <= j < d_k + w   (the face area)
                       N(B[i, j], s^2)         otherwise.

EM alternates the posterior over positions ``q[d, k] = p(d_k = d | X_k, F, B, s, a)``
(E-step) with the parameters maximising the expected complete log-likelihood (M-step).
Hard EM replaces ``q[:, k]`` by a point mass at its most probable position.

How the position-dependent sums are vectorised. With ``model_d`` (H, W) the background with the
face pasted at offset ``d``, the squared error of image ``k`` at position ``d`` is::

    ||X_k - model_d||^2 = ||X_k||^2 - 2 <model_d, X_k> + ||model_d||^2,

so all ``(W - w + 1) x K`` inner products come from one matrix product over the ``H * W``
pixels. The M-step's sums over images ``sum_k q[d, k] X[:, :, k]`` are one matrix product over
``K``; a face column ``m`` at offset ``d`` is image column ``m + d``, which is gathered with an
index array; window sums along the width are products with the (W, W - w + 1) face-area mask.
Pixel values are bounded (0..255) and the noise is large, so expanding the squares loses no
accuracy that matters (relative error ~1e-15 on these data).

Each function below is pasted verbatim into a notebook cell: it only uses ``numpy as np`` and
the functions defined before it in this file. Students write the part between the
``### BEGIN SOLUTION`` / ``### END SOLUTION`` markers.
"""

import numpy as np


def calculate_log_probability(X, F, B, s):
    """
    Log-likelihood of every image for every position of the face.

    Parameters
    ----------
    X : array, shape (H, W, K)
        K images of size H x W.
    F : array, shape (H, w)
        Estimate of the prankster's face.
    B : array, shape (H, W)
        Estimate of the background.
    s : float
        Estimate of the standard deviation of the Gaussian noise (s > 0).

    Returns
    -------
    ll : array, shape (W-w+1, K)
        ll[d, k] = log p(X_k | d_k = d, F, B, s): log-likelihood of image X_k when the face's
        first column is at column d of the image.
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=float)  # integer images would make integer products
    H, W, K = X.shape
    w = F.shape[1]
    n_positions = W - w + 1
    # face_column[j, d]: column of the face seen at image column j when the face starts at d.
    face_column = np.arange(W)[:, None] - np.arange(n_positions)[None, :]
    in_face = (face_column >= 0) & (face_column < w)
    # models[:, :, d]: the background with the face pasted over columns d .. d + w - 1.
    models = np.where(in_face, F[:, np.clip(face_column, 0, w - 1)], B[:, :, None])
    # Squared distance of every image to every model, ||x||^2 - 2 <x, m> + ||m||^2: the inner
    # products of all models with all images are one matrix product over the H * W pixels.
    cross = models.reshape(H * W, n_positions).T @ X.reshape(H * W, K)
    squared_error = (np.einsum("ijk,ijk->k", X, X)[None, :] - 2.0 * cross
                     + np.einsum("ijd,ijd->d", models, models)[:, None])
    # Each pixel adds log N(x | mean, s^2) = -log s - log(2 pi) / 2 - (x - mean)^2 / (2 s^2).
    return -H * W * (np.log(s) + 0.5 * np.log(2.0 * np.pi)) - squared_error / (2.0 * s * s)
    ### END SOLUTION


def calculate_lower_bound(X, F, B, s, a, q, hard_EM=False):
    """
    The lower bound L(q, F, B, s, a) of the log-likelihood of the images.

    Parameters
    ----------
    X : array, shape (H, W, K)
        K images of size H x W.
    F : array, shape (H, w)
        Estimate of the prankster's face.
    B : array, shape (H, W)
        Estimate of the background.
    s : float
        Estimate of the standard deviation of the Gaussian noise.
    a : array, shape (W-w+1,)
        Estimate of the prior over the face's position in any image.
    q : array, shape (W-w+1, K)
        q[d, k]: estimate of the posterior probability that the face is at position d in
        image X_k; every column sums to 1.
    hard_EM : bool, optional
        If True, q is a point mass (one 1 per column), whose entropy is 0: the bound is the
        log joint probability at the chosen positions.

    Returns
    -------
    L : float
        sum_k E_q[log p(X_k | d_k, F, B, s) + log a[d_k]] - E_q[log q(d_k)].
    """
    ### BEGIN SOLUTION
    a = np.asarray(a, dtype=float)
    q = np.asarray(q, dtype=float)
    log_a = np.log(a, out=np.full(a.shape, -np.inf), where=a > 0)  # no warning for a = 0
    log_joint = calculate_log_probability(X, F, B, s) + log_a[:, None]
    # Positions with q = 0 contribute nothing (0 * log 0 = 0), even where log a = -inf.
    possible = q > 0
    if hard_EM:
        log_q = np.zeros(q.shape)
    else:
        log_q = np.log(q, out=np.zeros(q.shape), where=possible)
    return float(np.sum(q * np.where(possible, log_joint - log_q, 0.0)))
    ### END SOLUTION


def run_e_step(X, F, B, s, a, hard_EM=False):
    """
    Posterior over the face's position in every image, given the parameters.

    Parameters
    ----------
    X : array, shape (H, W, K)
        K images of size H x W.
    F : array, shape (H, w)
        Estimate of the prankster's face.
    B : array, shape (H, W)
        Estimate of the background.
    s : float
        Estimate of the standard deviation of the Gaussian noise.
    a : array, shape (W-w+1,)
        Estimate of the prior over the face's position in any image.
    hard_EM : bool, optional
        If True, return a point mass at the most probable position of each image.

    Returns
    -------
    q : array, shape (W-w+1, K)
        q[d, k] = p(d_k = d | X_k, F, B, s, a); every column sums to 1.
    """
    ### BEGIN SOLUTION
    a = np.asarray(a, dtype=float)
    log_a = np.log(a, out=np.full(a.shape, -np.inf), where=a > 0)  # no warning for a = 0
    log_joint = calculate_log_probability(X, F, B, s) + log_a[:, None]
    if hard_EM:
        q = np.zeros(log_joint.shape)
        q[np.argmax(log_joint, axis=0), np.arange(log_joint.shape[1])] = 1.0
        return q
    # Subtracting each column's maximum makes the largest term exp(0) = 1: no overflow, and the
    # normalising sum is at least 1 however small the likelihoods (exp(-1e5) underflows to 0).
    joint = np.exp(log_joint - log_joint.max(axis=0, keepdims=True))
    q = joint / joint.sum(axis=0, keepdims=True)
    # Flush subnormal probabilities (< 2.2e-308) to 0: the M-step's a = q.sum(axis=1) / K
    # could round them to a = 0, making the bound -inf (q log a) where q > 0.
    q[q < np.finfo(float).tiny] = 0.0
    return q
    ### END SOLUTION


def run_m_step(X, q, w, hard_EM=False):
    """
    Parameters maximising the lower bound for a fixed posterior q.

    They are updated in the order a, F, B, s, each new value being used by the next ones.

    Parameters
    ----------
    X : array, shape (H, W, K)
        K images of size H x W.
    q : array, shape (W-w+1, K)
        q[d, k]: estimate of the posterior probability that the face is at position d in
        image X_k.
    w : int
        Width of the face.
    hard_EM : bool, optional
        If True, q is a point mass; the same formulas then average over the chosen positions.

    Returns
    -------
    F : array, shape (H, w)
        Estimate of the prankster's face.
    B : array, shape (H, W)
        Estimate of the background. A background pixel that the face hides in every image
        (where q > 0) does not affect the bound, so any value is optimal there: it gets the
        plain average of the images at that pixel, which is what the camera shows there.
    s : float
        Estimate of the standard deviation of the Gaussian noise.
    a : array, shape (W-w+1,)
        Estimate of the prior over the face's position in any image.
    """
    ### BEGIN SOLUTION
    X = np.asarray(X, dtype=float)
    q = np.asarray(q, dtype=float)
    H, W, K = X.shape
    n_positions = W - w + 1
    positions = np.arange(n_positions)

    # a: expected share of the images with the face at each position.
    images_per_position = q.sum(axis=1)
    total = images_per_position.sum()  # K, since every column of q sums to 1
    a = images_per_position / total

    # F: q-weighted average of the image columns under each face column. The sums over the
    # images for all positions are one matrix product: summed[i, j, d] = sum_k q[d, k] X[i, j, k].
    summed = (X.reshape(H * W, K) @ q.T).reshape(H, W, n_positions)
    image_column = np.arange(w)[:, None] + positions[None, :]  # face column m at d: m + d
    F = summed[:, image_column, positions].sum(axis=2) / total

    # B: q-weighted average over the images and positions where column j shows the background.
    face_column = np.arange(W)[:, None] - positions[None, :]
    in_face = (face_column >= 0) & (face_column < w)  # (W, W-w+1)
    shows_background = (~in_face).astype(float) @ q  # (W, K): P(column j of X_k is background)
    background_weight = shows_background.sum(axis=1)  # (W,)
    B = X.mean(axis=2)  # kept where the weight is 0 (see Returns)
    np.divide(np.einsum("ijk,jk->ij", X, shows_background), background_weight, out=B,
              where=background_weight > 0)

    # s: root of the q-expected squared error per pixel, with the new F and B. Expanding the
    # squares as in calculate_log_probability, sum_{d,k} q[d, k] ||X_k - model_d||^2 is
    # sum_k c_k ||X_k||^2 - 2 sum_d <model_d, summed_d> + sum_d n_d ||model_d||^2, with
    # c_k = sum_d q[d, k] (1 for a posterior), n_d = images_per_position and summed from above.
    models = np.where(in_face, F[:, np.clip(face_column, 0, w - 1)], B[:, :, None])
    expected_error = (np.einsum("ijk,ijk->k", X, X) @ q.sum(axis=0)
                      - 2.0 * np.einsum("ijd,ijd->", models, summed)
                      + np.einsum("ijd,ijd->d", models, models) @ images_per_position)
    # Rounding can make the error of an exact fit slightly negative.
    s = float(np.sqrt(max(expected_error, 0.0) / (H * W * total)))
    return F, B, s, a
    ### END SOLUTION


def run_EM(X, w, F=None, B=None, s=None, a=None, tolerance=0.001, max_iter=50, hard_EM=False):
    """
    Run EM from the given (or a default) initial guess until the lower bound stops improving.

    Parameters
    ----------
    X : array, shape (H, W, K)
        K images of size H x W.
    w : int
        Width of the face.
    F : array, shape (H, w), optional
        Initial estimate of the prankster's face; default: the average over all positions of
        the average image's (H, w) windows, i.e. the face the M-step would estimate if every
        position were equally likely. This deterministic start is much more robust than random
        grey levels, from which EM often settles on a piece of the background.
    B : array, shape (H, W), optional
        Initial estimate of the background; default: the average image, in which the moving
        face is blurred away.
    s : float, optional
        Initial estimate of the standard deviation of the noise; default: the standard
        deviation of the images around the average image, large enough that the first
        posteriors are not overconfident.
    a : array, shape (W-w+1,), optional
        Initial estimate of the prior over the face's position; default: uniform.
    tolerance : float, optional
        Stop when the bound improves by less than ``tolerance`` times its absolute value.
    max_iter : int, optional
        Maximum number of iterations.
    hard_EM : bool, optional
        If True, run hard EM: the E-step keeps only the most probable position of each image.

    Returns
    -------
    F : array, shape (H, w)
    B : array, shape (H, W)
    s : float
    a : array, shape (W-w+1,)
        The trained parameters.
    LL : array, shape (number_of_iters + 2,)
        The lower bound at the initial guess, after each iteration's M-step and after the final
        E-step; number_of_iters is the number of iterations done.
    """
    H, W, K = X.shape
    mean_image = np.mean(X, axis=2)
    if F is None:
        # Average of the mean image's windows over all positions.
        F = np.lib.stride_tricks.sliding_window_view(mean_image, w, axis=1).mean(axis=1)
    if B is None:
        B = mean_image
    if a is None:
        a = np.full(W - w + 1, 1.0 / (W - w + 1))
    if s is None:
        s = float(np.sqrt(np.mean((X - mean_image[:, :, None]) ** 2)))
    ### BEGIN SOLUTION
    q = run_e_step(X, F, B, s, a, hard_EM)
    LL = [calculate_lower_bound(X, F, B, s, a, q, hard_EM)]
    for _ in range(max_iter):
        F, B, s, a = run_m_step(X, q, w, hard_EM)
        LL.append(calculate_lower_bound(X, F, B, s, a, q, hard_EM))
        q = run_e_step(X, F, B, s, a, hard_EM)
        if LL[-1] - LL[-2] < tolerance * abs(LL[-2]):
            break
    LL.append(calculate_lower_bound(X, F, B, s, a, q, hard_EM))
    return F, B, s, a, np.array(LL)
    ### END SOLUTION
