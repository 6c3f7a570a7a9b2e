"""What serving the allowlist from memory costs: the allowlist on disk (``memory_copy=False``, the
old way) against the tmpfs copy (``autograder/sandbox/resident.py``), side by side in one process.

Both sandboxes are alive at once and their calls alternate, so that the machine's load hits both
alike; the starts alternate too. Prints the layout's cost (the first in a process: selection,
index, copy when none exists yet), the sandbox start and the per-call time (a trivial function of
a numpy + scipy submission), and the size of the copies.

    python benchmarks/bench_sandbox_residency.py [--calls 40] [--starts 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time

from autograder.loading import submission_from_cells
from autograder.sandbox import IsolationPolicy, Sandbox
from autograder.sandbox.policy import layout

SOURCE = "import numpy as np\nfrom scipy.special import logsumexp\ndef f(x):\n    return x + 1\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--starts", type=int, default=4)
    args = parser.parse_args()
    policies = {"disk": IsolationPolicy(memory_copy=False), "memory": IsolationPolicy()}
    for name, policy in policies.items():
        started = time.perf_counter()
        view = layout(policy)
        print(f"layout ({name}): {time.perf_counter() - started:.3f} s; served from memory: "
              f"{view['resident'] is None}{'' if view['resident'] is None else ' (' + view['resident'] + ')'}")
    copies = sorted({os.path.dirname(c) for c in layout(policies["memory"])["sources"].values()})
    if copies:
        sizes = subprocess.run(["du", "-sch", *copies], capture_output=True, text=True).stdout.splitlines()
        print("copies:", "; ".join(line.replace("\t", " ") for line in sizes))
    starts = {name: [] for name in policies}
    calls = {name: [] for name in policies}
    for rep in range(args.starts):
        boxes = {}
        for name in (list(policies) if rep % 2 == 0 else list(policies)[::-1]):
            box = Sandbox(submission_from_cells([SOURCE]), policy=policies[name])
            started = time.perf_counter()
            box.start()
            starts[name].append(time.perf_counter() - started)
            assert not box.load_failure, box.load_failure
            boxes[name] = box
        for i in range(args.calls):
            for name, box in (list(boxes.items()) if i % 2 == 0 else list(boxes.items())[::-1]):
                started = time.perf_counter()
                outcome = box.call("f", (i,))
                calls[name].append(time.perf_counter() - started)
                assert outcome.ok and outcome.value == i + 1, outcome
        for box in boxes.values():
            box.close()
    for name in policies:
        print(f"{name:7s} start: median {statistics.median(starts[name]):.3f} s {[round(s, 2) for s in starts[name]]};"
              f" call: median {statistics.median(calls[name]) * 1000:.1f} ms, mean "
              f"{statistics.mean(calls[name]) * 1000:.1f} ms (n={len(calls[name])})")


if __name__ == "__main__":
    main()
