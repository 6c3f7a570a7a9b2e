"""What one sandbox call costs: wall time and CPU time per call through ``Sandbox.call``, this tree
against another revision, side by side in one run, and where the time goes (``--profile``).

Workloads (each a sandbox of its own, started once, then called N times):

* ``trivial``: ``f(x) = x + 1`` of a numpy + scipy submission (the fixed cost of a call);
* ``E_step``: a correct gmm ``E_step`` (tests/corpora/gmm/correct/b_vectorised.py) on 500 points,
  3 components in 2-D (what most checks' calls look like);
* ``standin``: that file's ``log_likelihood`` with ``log_gaussians`` replaced by a grader-side
  stand-in (one callback over the channel per call, as the ``isolated_from`` checks do).

Every variant (this tree; ``--against REV``: that revision, exported with ``git archive`` to a
temporary folder) runs in a driver process of its own, in a ``cpuacct`` cgroup of its own where
one can be made (root), so that its CPU time counts everything it started: the grader side, the
launcher, the zygote, the forker and every call process (kernel work deferred to kworkers is
not in it: see ``--profile``). Batches alternate between the variants (the order flips every
round), so the machine's load hits both alike; the load average is printed with the results.

``--grade FILE`` also times ``python -m autograder grade --assignment ID FILE`` (default advi)
in each variant, alternating, ``--grades`` times each.

``--profile`` records ``perf record -a -g`` while this tree's driver makes the trivial calls
and prints the CPU time per call by process (grader, launcher, zygote, forker, call processes,
kernel threads) and by what it was doing (fork, page faults, namespaces, mounts, exit...).

    python benchmarks/bench_sandbox_calls.py [--calls 200] [--batch 20] [--against REV]
        [--workloads trivial,E_step,standin] [--grade FILE [--assignment advi] [--grades 3]]
        [--profile [--profile-calls 300]]   (with --against: that revision's profile first)
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GMM_FILE = ROOT / "tests" / "corpora" / "gmm" / "correct" / "b_vectorised.py"
TRIVIAL = "import numpy as np\nfrom scipy.special import logsumexp\ndef f(x):\n    return x + 1\n"
WORKLOADS = ("trivial", "E_step", "standin")


# ------------------------------------------------------------------------------------ the driver
def driver() -> None:
    """One variant's side (run in its tree): reads {"workload", "calls"} lines, answers timings."""
    import numpy as np

    from autograder.loading import submission_from_cells
    from autograder.sandbox import Sandbox

    gmm_source = GMM_FILE.read_text()
    grader_side: dict = {}
    exec(compile(gmm_source, str(GMM_FILE), "exec"), grader_side)   # (the stand-in's reference)
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(c, 0.7, size=(167, 2)) for c in (-2.0, 0.0, 2.0)])[:500]
    pi = np.array([0.3, 0.3, 0.4])
    mu = np.array([[-2.0, 0.0], [0.0, 0.0], [2.0, 0.0]])
    sigma = np.repeat(np.eye(2)[None], 3, axis=0)
    calls = {
        "trivial": (TRIVIAL, lambda box, i: box.call("f", (i,))),
        "E_step": (gmm_source, lambda box, i: box.call("E_step", (X, pi, mu, sigma))),
        "standin": (gmm_source, lambda box, i: box.call("log_likelihood", (X, pi, mu, sigma),
                                                         standins={"log_gaussians": grader_side["log_gaussians"]})),
    }
    boxes: dict = {}
    print(json.dumps({"ready": os.getpid(), "package": __import__("autograder").__file__}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("quit"):
            break
        name = request["workload"]
        source, call = calls[name]
        if name not in boxes:
            boxes[name] = Sandbox(submission_from_cells([source]))
            boxes[name].start()
            assert not boxes[name].load_failure, boxes[name].load_failure
            call(boxes[name], 0)   # (first call: nothing cold in the numbers)
        walls = []
        own = os.times()
        for i in range(int(request["calls"])):
            started = time.perf_counter()
            outcome = call(boxes[name], i)
            walls.append(time.perf_counter() - started)
            assert outcome.ok, outcome
        after = os.times()
        print(json.dumps({"wall": walls, "grader_user": after.user - own.user,
                          "grader_sys": after.system - own.system}), flush=True)
    for box in boxes.values():
        box.close()


# ------------------------------------------------------------------------------------ CPU accounting
class CpuGroup:
    """A cpuacct (v1) or cpu.stat (v2) cgroup of our own for one driver; None values when none
    can be made (not root, no such hierarchy)."""

    def __init__(self, name: str) -> None:
        self.path = None
        self.v2 = False
        base = _cpu_accounting_base()
        if base is None:
            return
        path, v2 = base
        try:
            os.mkdir(os.path.join(path, name))
            self.path, self.v2 = os.path.join(path, name), v2
        except OSError:
            pass

    def add(self, pid: int) -> None:
        if self.path:
            with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
                f.write(str(pid))

    def read(self) -> tuple[float, float, float] | None:
        """(total, user, system) seconds used so far by everything in the group (v1: user and
        system are tick-based, the total is exact)."""
        if not self.path:
            return None
        if self.v2:
            stat = dict(line.split() for line in open(os.path.join(self.path, "cpu.stat")))
            return int(stat["usage_usec"]) / 1e6, int(stat["user_usec"]) / 1e6, int(stat["system_usec"]) / 1e6
        return tuple(int(open(os.path.join(self.path, f"cpuacct.{name}")).read()) / 1e9
                     for name in ("usage", "usage_user", "usage_sys"))

    def remove(self) -> None:
        if self.path:
            for _ in range(50):
                try:
                    os.rmdir(self.path)
                    return
                except OSError:
                    time.sleep(0.1)


def _cpu_accounting_base() -> tuple[str, bool] | None:
    if os.geteuid() != 0:
        return None
    try:
        groups = open("/proc/self/cgroup").read().splitlines()
        mounts = open("/proc/self/mountinfo").read().splitlines()
    except OSError:
        return None
    for line in mounts:
        left, _, right = line.partition(" - ")
        fields, kind = left.split(), right.split()
        if not kind:
            continue
        options = kind[2].split(",") if len(kind) > 2 else []
        if kind[0] == "cgroup" and "cpuacct" in options:
            rel = next((g.split(":", 2)[2] for g in groups if "cpuacct" in g.split(":")[1].split(",")), None)
        elif kind[0] == "cgroup2" and not any(g.split(":")[1] == "cpuacct" for g in groups if g.count(":") >= 2):
            rel = next((g.split(":", 2)[2] for g in groups if g.startswith("0::")), None)
        else:
            continue
        if rel is not None:
            path = os.path.join(fields[4], rel.lstrip("/"))
            if os.access(path, os.W_OK):
                return path, kind[0] == "cgroup2"
    return None


# ------------------------------------------------------------------------------------ variants
class Variant:
    def __init__(self, name: str, tree: Path) -> None:
        self.name, self.tree = name, tree
        self.group = CpuGroup(f"bench-sandbox-calls-{os.getpid()}-{name}")
        env = dict(os.environ, PYTHONPATH=str(tree))
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--driver"], cwd=tree, env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.group.add(self.proc.pid)
        hello = json.loads(self.proc.stdout.readline())
        assert Path(hello["package"]).resolve().is_relative_to(tree.resolve()), hello
        self.pid = hello["ready"]
        self.results: dict = collections.defaultdict(lambda: {"wall": [], "cpu": [], "grader": []})

    def batch(self, workload: str, calls: int) -> None:
        before = self.group.read()
        self.proc.stdin.write(json.dumps({"workload": workload, "calls": calls}) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        after = self.group.read()
        record = self.results[workload]
        record["wall"] += answer["wall"]
        record["grader"].append((answer["grader_user"] + answer["grader_sys"]) / calls)
        if before and after:
            total, user, system = (a - b for a, b in zip(after, before))
            share = user / (user + system) if user + system > 0 else 0.5
            record["cpu"].append((total * share / calls, total * (1 - share) / calls))

    def warm(self, workload: str) -> None:
        self.batch(workload, 1)
        self.results[workload] = {"wall": [], "cpu": [], "grader": []}

    def close(self) -> None:
        try:
            self.proc.stdin.write(json.dumps({"quit": True}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        self.group.remove()


def export(rev: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bench-sandbox-calls-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def summary(variants: list[Variant], workloads: list[str]) -> None:
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f} {os.getloadavg()[2]:.1f}, "
          f"{os.cpu_count()} CPUs")
    print(f"{'workload':9s} {'variant':10s} {'median ms':>9s} {'mean ms':>8s} {'p90 ms':>7s} "
          f"{'CPU ms/call (user+sys)':>24s} {'grader ms':>9s}")
    for workload in workloads:
        for v in variants:
            r = v.results[workload]
            walls = sorted(r["wall"])
            p90 = walls[int(0.9 * (len(walls) - 1))]
            cpu = "n/a"
            if r["cpu"]:
                user = statistics.median(c[0] for c in r["cpu"]) * 1e3
                system = statistics.median(c[1] for c in r["cpu"]) * 1e3
                cpu = f"{user + system:6.2f} ({user:5.2f}+{system:5.2f})"
            print(f"{workload:9s} {v.name:10s} {statistics.median(walls) * 1e3:9.2f} {statistics.mean(walls) * 1e3:8.2f} "
                  f"{p90 * 1e3:7.2f} {cpu:>24s} {statistics.median(r['grader']) * 1e3:9.2f}   n={len(walls)}")
    if len(variants) == 2:
        for workload in workloads:
            a, b = (statistics.median(v.results[workload]["wall"]) for v in variants)
            print(f"{workload}: {variants[0].name} / {variants[1].name} median wall = {a / b:.2f}")


def grade(variants: list[Variant], path: Path, assignment: str, times: int) -> None:
    walls = collections.defaultdict(list)
    cpus = collections.defaultdict(list)
    for i in range(times):
        for v in variants if i % 2 == 0 else variants[::-1]:
            group = CpuGroup(f"bench-sandbox-grade-{os.getpid()}-{v.name}-{i}")
            env = dict(os.environ, PYTHONPATH=str(v.tree))
            started = time.perf_counter()
            proc = subprocess.Popen([sys.executable, "-c", "import os, sys; sys.stdin.readline(); "
                                     "os.execv(sys.executable, [sys.executable] + sys.argv[1:])",
                                     "-m", "autograder", "grade", "--assignment", assignment, "--format", "json",
                                     "--no-progress", str(path.resolve())],
                                    cwd=v.tree, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            group.add(proc.pid)
            out, _ = proc.communicate("go\n")
            walls[v.name].append(time.perf_counter() - started)
            used = group.read()
            if used:
                cpus[v.name].append(used[0])
            group.remove()
            result = json.loads(out)
            result = result[0] if isinstance(result, list) else result
            print(f"  grade {v.name}: {walls[v.name][-1]:.1f} s, score {result['score']}/{result['max_score']}"
                  + (f", CPU {cpus[v.name][-1]:.1f} s" if used else ""), flush=True)
    for v in variants:
        print(f"grade {path.name} ({assignment}) {v.name}: median wall {statistics.median(walls[v.name]):.1f} s"
              + (f", median CPU {statistics.median(cpus[v.name]):.1f} s" if cpus[v.name] else "")
              + f" {[round(w, 1) for w in walls[v.name]]}")


# ------------------------------------------------------------------------------------ the profile
# Kernel frames that say what a sample was doing, most specific first (the first one met walking
# from the leaf to the root wins).
CATEGORIES = (
    ("fork: copy the page tables", ("copy_page_range", "dup_mmap")),
    ("fork: the rest", ("copy_process", "kernel_clone")),
    ("exit: unmap the memory", ("exit_mmap", "__mmput")),
    ("exit: namespaces and files", ("exit_task_namespaces", "free_nsproxy", "exit_files", "put_mnt_ns",
                                    "do_exit", "release_task", "zap_pid_ns_processes")),
    ("page fault: copy on write", ("do_wp_page", "wp_page_copy")),
    ("page fault: file pages", ("filemap_map_pages", "do_read_fault", "do_fault", "filemap_fault")),
    ("page fault: new pages", ("do_anonymous_page",)),
    ("page fault: other", ("exc_page_fault",)),
    ("unshare: network namespace", ("copy_net_ns",)),
    ("unshare: mount namespace", ("copy_mnt_ns",)),
    ("unshare: the rest", ("ksys_unshare", "__x64_sys_setns")),
    ("network namespace clean-up", ("cleanup_net",)),
    ("mounts: pivot_root / umount", ("__x64_sys_pivot_root", "__x64_sys_umount", "namespace_unlock",
                                      "umount_tree")),
    ("mounts: mount", ("__x64_sys_mount", "path_mount")),
    ("mounts: deferred mntput", ("delayed_mntput", "cleanup_mnt", "__cleanup_mnt", "deactivate_super")),
    ("seccomp: filtering", ("__seccomp_filter", "seccomp_run_filters")),
    ("seccomp/prctl: set-up", ("__x64_sys_prctl", "__x64_sys_seccomp", "__x64_sys_capset")),
    ("execve", ("__x64_sys_execve", "bprm_execve")),
    ("RCU callbacks", ("rcu_core", "rcu_do_batch")),
    ("scheduler", ("__schedule", "schedule_idle", "finish_task_switch.isra.0")),
)


def profile(tree: Path, calls: int) -> None:
    if not shutil.which("perf"):
        print("--profile needs perf")
        return
    variant = Variant("profile", tree)
    variant.warm("trivial")
    data = Path(tempfile.mkdtemp(prefix="bench-sandbox-perf-")) / "perf.data"
    recorder = subprocess.Popen(["perf", "record", "-a", "-g", "-F", "4000", "-o", str(data)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    started = time.perf_counter()
    variant.batch("trivial", calls)
    seconds = time.perf_counter() - started
    recorder.send_signal(2)
    recorder.wait()
    grader = variant.pid
    variant.close()
    print(f"profile: {calls} trivial calls in {seconds:.2f} s ({seconds / calls * 1e3:.2f} ms each), "
          f"load {os.getloadavg()[0]:.1f}")
    report_profile(data, grader, calls)
    shutil.rmtree(data.parent, ignore_errors=True)


def report_profile(data: Path, grader: int, calls: int) -> None:
    text = subprocess.run(["perf", "script", "-i", str(data), "--show-task-events", "-F", "comm,pid,tid,period,ip,sym,dso"],
                          capture_output=True, text=True, errors="replace").stdout
    parent: dict[int, int] = {}
    samples = []   # (pid, comm, frames [(sym, dso)] leaf first)
    current = None
    for line in text.splitlines():
        if "PERF_RECORD_FORK" in line:
            m = re.search(r"PERF_RECORD_FORK\((\d+):(\d+)\):\((\d+):(\d+)\)", line)
            if m and m.group(1) == m.group(2):
                parent[int(m.group(1))] = int(m.group(3))
            continue
        if "PERF_RECORD" in line:
            continue
        if line and not line[0].isspace():
            m = re.match(r"\s*(.*?)\s+(\d+)/(\d+)\s+(\d+)", line)
            if m:
                current = (int(m.group(2)), m.group(1), [])
                samples.append(current)
            continue
        if current is not None and line.strip():
            parts = line.strip().split(None, 1)
            if len(parts) == 2:
                sym, _, dso = parts[1].rpartition(" (")
                current[2].append((sym, dso.rstrip(")")))
    children = collections.defaultdict(list)
    for child, par in parent.items():
        children[par].append(child)
    roles: dict[int, str] = {grader: "grader"}

    def assign(pid: int, depth: int) -> None:
        for child in children.get(pid, []):
            if depth == 0:
                roles[child] = "launcher"
            elif depth == 1:
                roles[child] = "zygote"
            elif depth == 2:
                roles[child] = "forker" if child == min(children[pid]) else "call processes"
            else:
                roles[child] = "call processes"
            assign(child, depth + 1)

    assign(grader, 0)
    # The sandbox was started before the recording: its launcher, zygote and forker are found by
    # the call processes' parents (the forker forks them all).
    forks = collections.Counter(parent[p] for p in parent)
    forker = max(forks, key=forks.get) if forks else None
    if forker is not None and forker not in roles:
        roles[forker] = "forker"
        for child in children[forker]:
            roles.setdefault(child, "call processes")
            assign(child, 3)
        if forker in parent:
            roles.setdefault(parent[forker], "zygote")
    per = 1.0 / 4000 / calls * 1e3   # ms of CPU per sample per call
    by_role = collections.Counter()
    by_category = collections.Counter()
    by_role_category = collections.Counter()
    user_kernel = collections.Counter()
    for pid, comm, frames in samples:
        role = roles.get(pid)
        if role is None:
            if comm.startswith(("kworker", "ksoftirqd", "rcu")):
                names = {s for s, _ in frames}
                interesting = any(n in names for _, group in CATEGORIES for n in group
                                  if n not in ("__schedule", "schedule_idle"))
                if not interesting:
                    continue
                role = "kernel threads"
            else:
                continue
        kernel = bool(frames) and frames[0][1] == "[kernel.kallsyms]"
        category = "user: " + (os.path.basename(frames[0][1]) if frames else "?")
        if kernel:
            category = "kernel: other"
            for sym, dso in frames:
                hit = next((name for name, group in CATEGORIES if sym in group), None)
                if hit:
                    category = hit
                    break
            else:
                syscall = next((s for s, _ in frames if s.startswith("__x64_sys_") or s.startswith("__do_sys_")), None)
                if syscall:
                    category = "syscall " + syscall.replace("__x64_sys_", "").replace("__do_sys_", "")
        by_role[role] += 1
        by_category[category] += 1
        by_role_category[(role, category)] += 1
        user_kernel[(role, "kernel" if kernel else "user")] += 1
    total = sum(by_role.values())
    print(f"CPU per call, all CPUs (perf samples at 4 kHz; {total} samples): {total * per:.2f} ms")
    print("by process: " + ", ".join(f"{role} {n * per:.2f} ms (user {user_kernel[(role, 'user')] * per:.2f}, "
                                     f"kernel {user_kernel[(role, 'kernel')] * per:.2f})"
                                     for role, n in by_role.most_common()))
    print("by activity (ms per call, and where):")
    for category, n in by_category.most_common(30):
        where = ", ".join(f"{role} {by_role_category[(role, category)] * per:.2f}" for role in by_role
                          if by_role_category[(role, category)] * per >= 0.01)
        print(f"  {n * per:6.2f}  {category:38s} {where}")


# ------------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=200, help="calls per workload and variant")
    parser.add_argument("--batch", type=int, default=20, help="calls per batch (batches alternate)")
    parser.add_argument("--against", help="a git revision to compare with (exported to a temporary folder)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--grade", type=Path, help="also time `python -m autograder grade` of this file")
    parser.add_argument("--assignment", default="advi")
    parser.add_argument("--grades", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="perf profile of this tree's trivial calls")
    parser.add_argument("--profile-calls", type=int, default=300)
    args = parser.parse_args()
    if args.driver:
        driver()
        return
    if args.profile:
        baseline = export(args.against) if args.against else None
        try:
            for name, tree in ([(args.against, baseline)] if baseline else []) + [("this tree", ROOT)]:
                print(f"--- {name}")
                profile(tree, args.profile_calls)
        finally:
            if baseline:
                shutil.rmtree(baseline, ignore_errors=True)
        return
    workloads = [w for w in args.workloads.split(",") if w]
    baseline = export(args.against) if args.against else None
    variants: list[Variant] = []
    try:
        variants.append(Variant("this tree", ROOT))
        if baseline:
            variants.append(Variant(args.against[:10], baseline))
        for workload in workloads:
            for v in variants:
                v.warm(workload)
        rounds = max(1, args.calls // args.batch)
        for r in range(rounds):
            for workload in workloads:
                for v in variants if r % 2 == 0 else variants[::-1]:
                    v.batch(workload, args.batch)
        summary(variants, workloads)
        if variants[0].group.path is None:
            print("(CPU per call: n/a, no cgroup of our own could be made: run as root)")
        for v in variants:
            v.close()
        if args.grade:
            grade(variants, args.grade, args.assignment, args.grades)
    finally:
        for v in variants:
            if v.proc.poll() is None:
                v.proc.kill()
            v.group.remove()
        if baseline:
            shutil.rmtree(baseline, ignore_errors=True)


if __name__ == "__main__":
    main()
