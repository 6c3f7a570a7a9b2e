"""Can the checks of ``assert_recovers_parameters`` hand the student's assertion less data?

Run from the repository root::

    python benchmarks/bench_recovery_power.py [--seeds 300] [--config 2000x5 --config 800x5 ...]
        [--weights 0.6,0.2,0.2 ...] [--corpus [--corpus-seeds 50] [--only NAME,...]]

The checks call the student's assertion on 6 scenarios (2 correct train_EMs, 4 broken ones) with
``n_points`` x ``n_datasets`` = 2000 x 5 (``checks_debugging.N_POINTS``, ``N_DATASETS``). A student
who samples one point per ``multivariate_normal`` call pays for every point, so the check's time
is proportional to 6 x 2000 x 5 = 60 000 points (``bench_student_checks``: 3.4 s for
``a_loops_scipy``; the 2 s target leaves at most about 24 000 points with some margin). Fewer
points make the train_EM stand-in's estimates (``em_parts.Fitter``: EM on the student's own data)
noisier, and the checks' verdicts rest on that noise staying below ``tol`` = 0.15:

* in the correct scenarios every estimate's error must stay below tol, or a correct assertion
  raises (it fails "passes on a correct train_EM");
* in each broken scenario the parameters the bug does NOT touch must stay below tol, or an
  assertion that forgets to compare the broken parameter raises anyway, on noise, and earns the
  point for catching that bug (the worst defect: a wrong assertion passes).

Section ``noise`` (always): the stand-in's errors in the notebook's units (weights absolute, means
in standard deviations, covariances in s_i s_j; the largest entry, averaged over the data sets
after matching, as ``em_parts.recovery_errors``) over ``--seeds`` simulated students, for the two
truths of the scenarios (the notebook's fit: "notebook" and, scaled, "spread out"; the unequal
weights of the broken scenarios, and any ``--weights`` to compare with them), per data-size config:
median, 99th percentile, largest, and the fraction above tol.

Section ``corpus`` (``--corpus``): every corpus assertion (correct files, the
``assert_recovers_parameters`` mutants, the reference and its mutations in
``tests/test_gmm_checks.py``) called on each scenario with ``--corpus-seeds`` other seeds of the
global generators (a fixed ``default_rng(k)`` is mixed with the seed too, for this analysis only):
how often its outcome (quiet / raises) differs from the one it has at the grader's own seed, per
config. Slow (about 0.1 s of CPU per call; the per-point samplers 0.5 s).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

TOL = 0.15
# What an estimate above tol does to an assertion that compares exactly as the notebook states, per
# truth: {what goes wrong: the parameters whose error decides it}.
RISKS = {
    "notebook": {"P(a correct assertion raises on 'notebook' or 'spread out')": ("pi", "mu", "sigma")},
    "unequal": {"P(one that forgets the weights catches 'weights')": ("mu", "sigma"),
                "P(one that forgets the means raises on 'shifted')": ("pi", "sigma"),
                "P(one that forgets the covariances catches 'divided')": ("pi", "mu")},
}


def _sample(rng, truth, n: int) -> np.ndarray:
    pi, mu, sigma = truth
    labels = rng.choice(len(pi), size=n, p=pi)
    return mu[labels] + np.einsum("nij,nj->ni", np.linalg.cholesky(sigma)[labels],
                                  rng.standard_normal((n, mu.shape[1])))


def noise(configs, seeds: int, weights=()) -> None:
    from autograder.assignments.gmm import em_parts as parts
    truths = {"notebook": parts.notebook_fit(), "unequal": parts.unequal_truth()}
    for w in weights:   # candidate weights for the broken scenarios' truth, same means and covariances
        truths[f"unequal {'/'.join(f'{x:g}' for x in w)}"] = (np.array(w), *parts.unequal_truth()[1:])
    print(f"noise: the stand-in's errors over {seeds} seeds (median / 99th percentile / largest / P(> tol={TOL}))")
    for n_points, n_datasets in configs:
        for name, truth in truths.items():
            errors = []
            for seed in range(seeds):
                rng = np.random.default_rng(seed)
                fitter = parts.Fitter(truth)
                for _ in range(n_datasets):
                    fitter(_sample(rng, truth, n_points), len(truth[0]))
                errors.append(parts.recovery_errors(fitter.calls, fitter.truth))
            cells = []
            for key in ("pi", "mu", "sigma"):
                v = np.array([e[key] for e in errors])
                cells.append(f"{key} {np.median(v):.3f} / {np.quantile(v, 0.99):.3f} / {v.max():.3f} / "
                             f"{np.mean(v > TOL):.3f}")
            print(f"  {n_points}x{n_datasets} ({6 * n_points * n_datasets:6d} points) {name:<9} " + " | ".join(cells),
                  flush=True)
            above = {key: np.array([e[key] > TOL for e in errors]) for key in ("pi", "mu", "sigma")}
            risks = RISKS[name.split()[0]]
            print("      " + "; ".join(f"{what}: {np.mean(np.any([above[k] for k in keys], axis=0)):.3f}"
                                       for what, keys in risks.items()), flush=True)


# ---------------------------------------------------------------------------------- corpus
def assertions() -> dict[str, object]:
    """{label: the assert_recovers_parameters of a corpus file, the reference or one of its mutations}."""
    import corpus_support as corpus
    import test_gmm_checks as mutations
    out = {}
    for path in sorted((ROOT / "tests" / "corpora" / "gmm" / "correct").iterdir()):
        if path.suffix in (".py", ".ipynb"):
            out[f"correct/{path.stem}"] = corpus.student_namespace(path)["assert_recovers_parameters"]
    for path in sorted((ROOT / "tests" / "corpora" / "gmm" / "mutants").glob("assert_recovers_parameters__*.py")):
        out[f"mutant/{path.stem.split('__')[1]}"] = corpus.student_namespace(path)["assert_recovers_parameters"]
    sources = {"reference": mutations.SOURCE}
    sources.update({f"mutation/{m[1].replace(' ', '_')}": mutations._mutate(m[0], m[2], m[3])
                    for m in mutations.MUTATIONS if m[0] == "assert_recovers_parameters"})
    for label, source in sources.items():
        namespace = {"__name__": "__student__"}
        exec(compile(source, label, "exec"), namespace)
        out[label] = namespace["assert_recovers_parameters"]
    return out


def outcome(func, scenario, n_points: int, n_datasets: int, seed: int, grader_seed: int) -> str:
    """'.' quiet, 'F' AssertionError, 'A' stopped by the stand-in, 'E' any other error."""
    from autograder.assignments.gmm import checks_debugging as dbg
    from autograder.sandbox import AbortCall
    dbg.N_POINTS, dbg.N_DATASETS, dbg.MAX_FITS = n_points, n_datasets, 4 * n_datasets
    args, kwargs, _ = scenario.build()
    np.random.seed(seed % 2**32)
    random.seed(seed)
    original = np.random.default_rng
    if seed != grader_seed:   # other students: a fixed default_rng(k) varies with the seed too
        np.random.default_rng = lambda s=None, *a: original(None if s is None else [seed % 2**32, zlib.crc32(repr(s).encode())])
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            func(*args, **kwargs)
        return "."
    except AssertionError:
        return "F"
    except AbortCall:
        return "A"
    except Exception:  # noqa: BLE001 - the student's code may raise anything
        return "E"
    finally:
        np.random.default_rng = original


def corpus(configs, seeds: int, only: list[str] | None, out: Path | None) -> None:
    from autograder.assignments.gmm import checks_debugging as dbg
    from autograder.engine.check import Task
    saved = dbg.N_POINTS, dbg.N_DATASETS, dbg.MAX_FITS
    grader_seed = Task("assert_recovers_parameters", "()").call_seed
    scenarios = dbg.RECOVERS_CORRECT + list(dbg.RECOVERS_BUGS.values())
    results = {}
    print(f"\ncorpus: outcomes per scenario ({', '.join(s.key for s in scenarios)}); first the grader's seed, "
          f"then {seeds} others ('.' quiet, 'F' raises); flips = outcomes that differ from the grader's seed's")
    try:
        for label, func in assertions().items():
            if only and not any(o in label for o in only):
                continue
            slow = label.endswith(("a_loops_scipy", "forgets_covariances"))   # one multivariate_normal per point
            chosen = [grader_seed] + [1000 + i for i in range(max(1, seeds // 5) if slow else seeds)]
            for n_points, n_datasets in configs:
                row = {s.key: "".join(outcome(func, s, n_points, n_datasets, k, grader_seed) for k in chosen)
                       for s in scenarios}
                results.setdefault(label, {})[f"{n_points}x{n_datasets}"] = row
                flips = {key: sum(c != v[0] for c in v[1:]) for key, v in row.items()}
                print(f"  {label:<45} {n_points}x{n_datasets}: " + " ".join(
                    f"{key}={v[0]}{'' if not flips[key] else f'({flips[key]}/{len(v) - 1} flip)'}"
                    for key, v in row.items()), flush=True)
    finally:
        dbg.N_POINTS, dbg.N_DATASETS, dbg.MAX_FITS = saved
    if out:
        out.write_text(json.dumps(results, indent=1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=300)
    parser.add_argument("--config", action="append", help="n_pointsxn_datasets (repeatable; default 2000x5, "
                                                          "1000x5, 800x5, 2000x2, 1000x4)")
    parser.add_argument("--weights", action="append", default=[],
                        help="w1,w2,w3: also measure the broken scenarios' truth with these weights (repeatable)")
    parser.add_argument("--corpus", action="store_true", help="also sweep the corpus assertions (slow)")
    parser.add_argument("--corpus-seeds", type=int, default=50)
    parser.add_argument("--only", help="comma-separated parts of the corpus labels to sweep")
    parser.add_argument("--json", type=Path, help="write the corpus outcomes here")
    args = parser.parse_args()
    configs = [tuple(int(x) for x in c.split("x")) for c in (args.config or ["2000x5", "1000x5", "800x5",
                                                                             "2000x2", "1000x4"])]
    noise(configs, args.seeds, [tuple(float(x) for x in w.split(",")) for w in args.weights])
    if args.corpus:
        corpus(configs, args.corpus_seeds, args.only.split(",") if args.only else None, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
