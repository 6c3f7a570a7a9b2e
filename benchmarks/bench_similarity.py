"""Similarity at class scale: precision and recall on a generated class with planted copies, and time.

For each seed, ``synthetic_class.generate`` writes N independent ``gmm`` submissions (default 300)
composed from the corpus and varied, plus planted copies of seven kinds and answer-key copies (see
``benchmarks/synthetic_class.py``). Then ``python -m autograder similarity`` runs on the folder as
an instructor would (discovery, loading, fingerprints, scores, every page written), timed from the
outside, and its ``similarity.json`` is compared with the ground truth:

* pairs: a reported pair is a true positive when it is a planted (source, copy) pair; precision
  and recall at the default threshold, recall per kind of disguise, the highest score of an
  independent pair and the lowest of a planted full copy;
* course: a submission reported as matching the course's code is a true positive when functions
  were pasted from the reference into it.

    python benchmarks/bench_similarity.py [--n 300] [--copies 6] [--seeds 1,2] [--workdir DIR]

The default threshold was chosen on seed 0; seeds 1 and 2 are held out.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

import synthetic_class  # noqa: E402


def evaluate(folder: Path, out: Path) -> dict:
    truth = json.loads((folder / "truth.json").read_text())
    found = json.loads((out / "similarity.json").read_text())
    planted = {frozenset(p[:2]): p[2].split(":")[0] for p in truth["pairs"]}
    reported = {frozenset((p["a"], p["b"])): p["score"] for p in found["pairs"]}
    tp = [pair for pair in reported if pair in planted]
    by_kind = defaultdict(lambda: [0, 0])
    for pair, kind in planted.items():
        by_kind[kind][1] += 1
        by_kind[kind][0] += pair in reported
    keyed = set(truth["course"])
    flagged = {m["student"] for m in found["course"]}
    functions_right = sum(1 for m in found["course"] if m["function"] in truth["course"].get(m["student"], ()))
    return {
        "submissions": found["submissions"], "threshold": found["threshold"],
        "planted": len(planted), "reported": len(reported), "true_positives": len(tp),
        "precision": round(len(tp) / len(reported), 3) if reported else 1.0,
        "recall": round(len(tp) / len(planted), 3) if planted else 1.0,
        "recall_by_kind": {k: f"{v[0]}/{v[1]}" for k, v in sorted(by_kind.items())},
        "course_flagged": len(flagged), "course_planted": len(keyed),
        "course_precision": round(len(flagged & keyed) / len(flagged), 3) if flagged else 1.0,
        "course_recall": round(len(flagged & keyed) / len(keyed), 3) if keyed else 1.0,
        "course_functions_reported": len(found["course"]), "course_functions_right": functions_right,
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(n: int, copies: int, seed: int, workdir: Path) -> dict:
    folder = workdir / f"class-{seed}"
    out = workdir / f"report-{seed}"
    started = time.monotonic()
    synthetic_class.generate(folder, n=n, copies=copies, seed=seed)
    generated = time.monotonic() - started
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    started, cpu = time.monotonic(), _children_cpu()
    done = subprocess.run([sys.executable, "-m", "autograder", "similarity", "-a", "gmm", "-g", str(out), str(folder)],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    seconds, cpu = time.monotonic() - started, _children_cpu() - cpu
    if done.returncode:
        raise SystemExit(f"similarity failed:\n{done.stderr[-3000:]}")
    result = evaluate(folder, out)
    result.update(seed=seed, seconds=round(seconds, 1), cpu_seconds=round(cpu, 1),
                  generation_seconds=round(generated, 1), load_average=round(os.getloadavg()[0], 1))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--copies", type=int, default=6, help="planted copies of each kind")
    parser.add_argument("--seeds", default="1,2", help="comma-separated seeds (0 was used to choose the threshold)")
    parser.add_argument("--workdir")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-similarity-"))
    print(f"cores: {os.cpu_count()}  workdir: {workdir}")
    results = [run(args.n, args.copies, int(s), workdir) for s in args.seeds.split(",")]
    for r in results:
        print(f"seed {r['seed']}: {r['submissions']} submissions, {r['planted']} planted pairs; threshold "
              f"{r['threshold']:g}: {r['reported']} reported, precision {r['precision']:.3f}, recall {r['recall']:.3f}; "
              f"{r['seconds']:.1f} s wall, {r['cpu_seconds']:.1f} s CPU for `python -m autograder similarity` "
              f"(all pages written; load average {r['load_average']})")
        print("    recall by kind: " + ", ".join(f"{k} {v}" for k, v in r["recall_by_kind"].items()))
        print(f"    answer key: {r['course_flagged']} submission(s) flagged, {r['course_planted']} planted: precision "
              f"{r['course_precision']:.3f}, recall {r['course_recall']:.3f} ({r['course_functions_right']} of "
              f"{r['course_functions_reported']} reported functions were pasted)")
    (workdir / "results.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
