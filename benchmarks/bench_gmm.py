"""The reference GMM EM iteration against scikit-learn's GaussianMixture, side by side.

Same data (N = 100 000, d = 8, C = 5), same starting parameters, 20 EM iterations each (plus
the final E-step both need to report the final log-likelihood). Runs alternate between the two
implementations and the median of the repeats is reported, so machine noise hits both alike.

    python benchmarks/bench_gmm.py [--repeats 5] [--threads 1]

Target: the reference takes at most half of scikit-learn's time, with identical final bounds.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", default="1", help="BLAS threads for both (default 1)")
    parser.add_argument("--n", type=int, default=100_000)
    args = parser.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = args.threads
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    import solutions.gmm as ref
    from autograder.assignments.gmm import theory

    N, d, C, iterations = args.n, 8, 5, 20
    rng = np.random.default_rng(2026)
    X = theory.sample(rng, N, *theory.random_parameters(rng, C, d))
    pi0 = np.full(C, 1.0 / C)
    mu0 = X[rng.choice(N, C, replace=False)]
    sigma0 = np.repeat(np.cov(X, rowvar=False)[None], C, axis=0)

    def run_reference():
        pi, mu, sigma = pi0, mu0, sigma0
        for _ in range(iterations):
            gamma = ref.E_step(X, pi, mu, sigma)
            pi, mu, sigma = ref.M_step(X, gamma)
        gamma = ref.E_step(X, pi, mu, sigma)  # the final E-step: the bound is now the log-likelihood
        return ref.compute_vlb(X, pi, mu, sigma, gamma)

    def run_sklearn():
        model = GaussianMixture(C, covariance_type="full", max_iter=iterations, tol=0.0, reg_covar=0.0,
                                weights_init=pi0, means_init=mu0, precisions_init=np.linalg.inv(sigma0),
                                init_params="random_from_data")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0: it always runs all iterations
            model.fit(X)
        return model.score(X) * N  # mean log-likelihood per point at the final parameters

    times = {"reference": [], "scikit-learn": []}
    bounds = {}
    for _ in range(args.repeats):
        for name, run in (("reference", run_reference), ("scikit-learn", run_sklearn)):
            start = time.perf_counter()
            bounds[name] = run()
            times[name].append(time.perf_counter() - start)
    med = {k: float(np.median(v)) for k, v in times.items()}
    ratio = med["scikit-learn"] / med["reference"]
    agree = np.isclose(bounds["reference"], bounds["scikit-learn"], rtol=1e-9, atol=0)
    print(f"GMM EM, N={N}, d={d}, C={C}, {iterations} iterations, {args.threads} BLAS thread(s), "
          f"median of {args.repeats}")
    print(f"  reference    : {med['reference']:.3f} s   final bound {bounds['reference']:.6f}")
    print(f"  scikit-learn : {med['scikit-learn']:.3f} s   final bound {bounds['scikit-learn']:.6f}")
    print(f"  ratio        : scikit-learn / reference = {ratio:.2f}  (target >= 2)")
    print(f"  bounds agree : {bool(agree)}")
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())
