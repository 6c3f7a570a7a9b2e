"""The sandbox: a safe codec, limits that hold, a child that cannot take the grader down or stall
it, stand-ins that reveal nothing, and nothing of the grader visible to the submission."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
import time

import numpy as np
import pytest

from autograder.loading import submission_from_cells
from autograder.sandbox import Limits, Sandbox
from autograder.sandbox.codec import CodecError, FunctionRef, Opaque, decode, encode

HOSTILE = '''
import numpy as np
import os, sys, time, subprocess
def spin():
    while True:
        pass
def sleepy():
    time.sleep(60)
def die():
    os._exit(3)
def leave():
    sys.exit(0)
def hog():
    return np.ones((60_000, 60_000))
def chatter():
    for _ in range(10**6):
        print("spam " * 20)
    return 1
def cheat():
    import solutions
    return 1
def rng():
    return np.random.default_rng().normal(size=2), np.random.rand(2), np.random.RandomState().rand(2)
def strange():
    return (i for i in range(3))
def grow(x):
    x *= 2
    return x
def fails(a):
    b = a + 1
    return b.shape[7]
def background():
    pid = os.fork()   # (not subprocess: a call has no pipes)
    if pid == 0:
        try:
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)", "317.25"])
        finally:
            os._exit(1)
    return pid
def uses(x):
    return helper(x) + 1
def kill_parent():
    import signal
    os.kill(os.getppid(), signal.SIGKILL)
    return 1
'''


@pytest.fixture(scope="module")
def box():
    with Sandbox(submission_from_cells([HOSTILE]), Limits(call_seconds=3, memory_mb=1024)) as sandbox:
        yield sandbox


def test_codec_round_trip():
    value = {"a": [1, 2.5, None, True, "s", float("nan")], "b": (np.arange(6.0).reshape(2, 3), np.int64(4)),
             "c": np.array([1 + 2j]), "d": FunctionRef("E_step"), 3: Opaque("gen", "x")}
    back = decode(encode(value))
    assert back["a"][:5] == [1, 2.5, None, True, "s"] and np.isnan(back["a"][5])
    np.testing.assert_array_equal(back["b"][0], value["b"][0])
    assert back["b"][1] == 4 and back["d"] == FunctionRef("E_step") and back[3] == Opaque("gen", "x")


def test_codec_never_unpickles_and_rejects_garbage():
    assert isinstance(decode(encode(object())), Opaque)
    assert isinstance(decode(encode(np.array([object()], dtype=object))), Opaque)
    for junk in (b"", b"\x00" * 7, b"\x05\x00\x00\x00\x00\x00\x00\x00{]", os.urandom(64)):
        with pytest.raises(CodecError):
            decode(junk)


def test_codec_refuses_empty_arrays_with_impossible_dimensions():
    """A forged empty array whose other dimensions numpy refuses ([0, 2**62]) is a malformed
    message (CodecError: the call is a crash), never a ValueError out of the grader's own code
    (which a check reports as an internal error of the grader)."""
    import struct
    for shape in ([0, 2**62], [0, 10**30], [0, 2**40, 2**40]):
        header = json.dumps({"$a": 0, "dtype": "<f8", "shape": shape, "scalar": False}).encode()
        data = struct.pack("<II", len(header), 1) + header
        data += bytes(-len(data) % 8) + struct.pack("<Q", 0)
        data += bytes(-len(data) % 64)
        with pytest.raises(CodecError):
            decode(data)


def test_a_normal_call_and_its_printed_output():
    sub = submission_from_cells(["def f(x):\n    print('hi')\n    return x * 2"])
    with Sandbox(sub) as sandbox:
        outcome = sandbox.call("f", (np.arange(3.0),))
    assert outcome.ok and outcome.output.strip() == "hi"
    np.testing.assert_array_equal(outcome.value, [0, 2, 4])


@pytest.mark.parametrize("name, status", [("spin", "timeout"), ("sleepy", "timeout"), ("die", "crash")])
def test_hangs_and_crashes_cost_one_call(box, name, status):
    started = time.monotonic()
    assert box.call(name).status == status
    assert time.monotonic() - started < 10
    assert box.call("strange").ok  # a fresh child took over


def test_exit_memory_and_output_floods(box):
    assert box.call("leave").error_type == "SystemExit"
    assert box.call("hog").error_type == "MemoryError"
    flood = box.call("chatter", timeout=30)
    assert flood.ok and len(flood.output) < 10_000 and "more characters" in flood.output


def test_solutions_cannot_be_imported(box):
    outcome = box.call("cheat")
    assert outcome.status == "error" and outcome.error_type == "ModuleNotFoundError"


def test_unseeded_randomness_is_repeatable(box):
    first, second = box.call("rng", seed=5).value, box.call("rng", seed=5).value
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(box.call("rng", seed=6).value[0], first[0])


def test_unsupported_values_arrive_as_opaque(box):
    value = box.call("strange").value
    assert isinstance(value, Opaque) and value.type_name == "generator"


def test_mutated_arguments_are_reported(box):
    assert box.call("grow", (np.ones(3),)).mutated == ["x"]


def test_errors_point_at_the_students_line(box):
    outcome = box.call("fails", (np.zeros(2),))
    assert outcome.error_type == "IndexError"
    assert outcome.frames[-1][0] == "<cell 1>" and "b.shape[7]" in outcome.frames[-1][3]


def test_stand_ins_run_in_the_grader_and_their_errors_propagate(box):
    assert box.call("uses", (2.0,), standins={"helper": lambda x: x * 10}).value == 21.0

    def singular(x):
        raise np.linalg.LinAlgError("Matrix is not positive definite")
    outcome = box.call("uses", (2.0,), standins={"helper": singular})
    assert outcome.error_type == "LinAlgError"


def test_background_processes_die_with_their_call():
    with Sandbox(submission_from_cells([HOSTILE])) as sandbox:
        assert sandbox.call("background").ok   # it started one, and returned
        # Gone with the call, before the next one starts: checked once the next call answered, not
        # after a fixed wait (a killed process can take seconds to exit on a loaded machine: a
        # 5-s wait failed in a full suite; see test_isolation's daemon tests).
        assert sandbox.call("strange").ok
        assert not _sleepers("317.25")


def _sleepers(marker: str) -> list[int]:
    """Host pids of running (not zombie) processes with the argument ``marker``."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if marker.encode() in f.read().split(b"\0")[1:] and _running(int(entry)):
                        found.append(int(entry))
            except OSError:
                pass
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_killing_its_parent_does_not_kill_the_grader():
    sub = submission_from_cells([HOSTILE])
    with Sandbox(sub) as sandbox:
        outcome = sandbox.call("kill_parent")
    assert outcome.status in ("ok", "crash", "error")
    assert os.getpid()  # we are still here


def test_total_time_budget():
    sub = submission_from_cells(["import time\ndef slow():\n    time.sleep(0.6)\n    return 1"])
    with Sandbox(sub, Limits(total_seconds=1.0)) as sandbox:
        statuses = [sandbox.call("slow").status for _ in range(3)]
    assert statuses[0] == "ok" and statuses[-1] in ("budget", "timeout")


def test_load_problems_are_reported():
    sub = submission_from_cells(["import not_a_real_module_xyz\ndef f(): return 1", "raise_here = 1/0"])
    with Sandbox(sub) as sandbox:
        assert sandbox.call("f").ok
        assert any("not_a_real_module_xyz" in p[2] for p in sandbox.load_problems)


def test_codec_non_finite_numpy_scalars():
    back = decode(encode([np.float64("nan"), np.float64("-inf"), float("inf"), np.float32(np.inf)]))
    assert np.isnan(back[0]) and back[1] == -np.inf and back[2] == np.inf and back[3] == np.inf


def test_codec_keeps_shapes_and_scalar_types():
    back = decode(encode([np.array(2.5), np.int64(3), np.float32(1.5), np.zeros((0, 3))]))
    assert back[0].shape == () and back[1] == 3 and isinstance(back[1], np.integer)
    assert back[2] == 1.5 and back[3].shape == (0, 3)


# ------------------------------------------------------------------------------------ stand-ins
SPY = r'''
import inspect, os, sys
def describe(f):
    out = {"name": f.__name__, "qualname": f.__qualname__, "doc": f.__doc__, "repr": repr(f),
           "module": f.__module__, "signature": str(inspect.signature(f)),
           "closure": [repr(c.cell_contents)[:80] for c in (f.__closure__ or ())]}
    for key, args in (("error", (1, 2, 3, 4, 5, 6, 7, 8, 9)), ("error1", (1,))):
        try:
            f(*args)
        except Exception as exc:
            out[key] = f"{type(exc).__name__}: {exc}"
    return out

def spy(a, b):
    return {"a": describe(a), "b": describe(b), "global": describe(helper)}
'''


def correct_E_step(X):   # names a grader might use: none of them may reach the child
    return X


def m_step_doubling_covariances(X):
    raise ValueError("m_step_doubling_covariances failed in /work/course/autograder/assignments/gmm/theory.py")


def test_stand_ins_carry_nothing_of_the_grader():
    with Sandbox(submission_from_cells([SPY])) as sandbox:
        first = sandbox.call("spy", (correct_E_step, m_step_doubling_covariances),
                             standins={"helper": m_step_doubling_covariances})
        second = sandbox.call("spy", (m_step_doubling_covariances, correct_E_step),
                              standins={"helper": correct_E_step})
    assert first.ok, first
    text = repr(first.value) + repr(second.value)
    for secret in ("correct", "doubling", "m_step", "E_step", "theory", "assignments", "/work", "argument:"):
        assert secret not in text, (secret, first.value)
    assert first.value["a"]["name"] == "function" and first.value["global"]["name"] == "helper"
    # the same place, the same stand-in, whatever the grader put there (except what it does)
    strip = lambda v: {k: {n: x for n, x in d.items() if n != "error1"} for k, d in v.items()}  # noqa: E731
    assert strip(first.value) == strip(second.value)
    assert first.value["b"]["error"] == "TypeError: function() takes 1 positional argument but 9 were given"
    assert first.value["b"]["error1"] == "ValueError: function failed in <path>"


def test_a_slow_stand_in_is_interrupted_at_the_call_deadline():
    code = "def train(fit):\n    return fit(2, rtol=-1, max_iter=10**12)\n"

    def endless(C, rtol=1e-4, max_iter=200):
        while True:
            pass

    with Sandbox(submission_from_cells([code])) as sandbox:
        started = time.monotonic()
        outcome = sandbox.call("train", (endless,), timeout=2)
        assert time.monotonic() - started < 5
        assert sandbox.call("train", (lambda C, **kw: C * 2,)).value == 4   # the sandbox goes on
    assert outcome.status == "timeout"
    assert "grader-side work" in outcome.message and "argument 1" in outcome.message
    assert "max_iter=1000000000000" in outcome.message and "endless" not in outcome.message


def test_the_deadline_guard_gives_an_outer_alarm_back():
    import signal
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *a: fired.append(1))
    signal.setitimer(signal.ITIMER_REAL, 30.0)
    try:
        code = "def call(f):\n    return f()\n"
        with Sandbox(submission_from_cells([code])) as sandbox:
            assert sandbox.call("call", (lambda: time.sleep(10),), timeout=1).status == "timeout"
        left = signal.getitimer(signal.ITIMER_REAL)[0]
        assert 20 < left < 30 and not fired
        assert signal.getsignal(signal.SIGALRM) is not None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_abort_call_ends_the_call():
    from autograder.sandbox import AbortCall

    def stop(*args):
        raise AbortCall("ran past max_iter", verdict=7)

    with Sandbox(submission_from_cells(["def loop(f):\n    while True:\n        try:\n            f()\n"
                                        "        except BaseException:\n            pass\n"])) as sandbox:
        outcome = sandbox.call("loop", (stop,))
    assert outcome.status == "aborted" and outcome.value == 7 and "max_iter" in outcome.message


# ------------------------------------------------------------------------------------ the channel
FORGER = r'''
import os, stat, struct, time
from autograder.sandbox import codec

def _socket():
    return next(fd for fd in range(3, 64) if _is_socket(fd))

def _is_socket(fd):
    try:
        return stat.S_ISSOCK(os.fstat(fd).st_mode)
    except OSError:
        return False

def _frame(value):
    body = codec.encode(value)
    return struct.pack("<Q", len(body)) + body

def _write(data):
    fd = _socket()
    os.set_blocking(fd, True)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]

def huge_name_never_reads():
    _write(_frame({"kind": "callback", "fn": "x" * 2**20, "args": [], "kwargs": {}}))
    time.sleep(600)

def big_answer_never_read(f):
    _write(_frame({"kind": "callback", "fn": "a0", "args": [], "kwargs": {}}))
    time.sleep(600)

def announces_a_gigabyte():
    _write(struct.pack("<Q", 2**30) + b"x" * 4096)
    time.sleep(600)

def garbage():
    _write(struct.pack("<Q", 100) + os.urandom(100))
    time.sleep(600)

def floods():
    chunk = b"\xff" * 65536
    while True:
        _write(chunk)

def returns(n_mb):
    import numpy as np
    return np.zeros(int(n_mb * 2**20 // 8))
'''


@pytest.mark.parametrize("name, args, status", [
    ("huge_name_never_reads", (), "timeout"),
    ("big_answer_never_read", (lambda: np.zeros(50 * 2**20 // 8),), "timeout"),
    ("announces_a_gigabyte", (), "error"),
    ("garbage", (), "crash"),
    ("floods", (), "error"),
])
def test_a_hostile_child_cannot_stall_or_flood_the_grader(name, args, status):
    with Sandbox(submission_from_cells([FORGER])) as sandbox:
        started = time.monotonic()
        outcome = sandbox.call(name, args, timeout=3)
        assert time.monotonic() - started < 8, outcome
        assert outcome.status == status, outcome
        assert sandbox.call("returns", (0.001,)).ok   # the next call is fine
    if status == "error":
        assert outcome.error_type == "ValueTooLarge" and "MB" in outcome.message


def test_a_forged_probe_answer_is_bounded():
    """The probe's answer (functions, load problems, the isolation report) comes from a process
    that ran the submission's code: a class body that answers the probe itself with 12 MB of
    'problems' and isolation items must not put them into the grader's notes, logs and records."""
    forge = FORGER + r'''
import sys

class _Answer:
    # (runs while the definitions load, in the probe as in every call)
    _write(_frame({"kind": "loaded", "functions": ["f"] + ["x" * 150] * 30000,
                   "problems": [[1, 1, "p" * 1000]] * 2000 + [[True, "a", "b"]]}))
    _write(_frame({"kind": "report", "isolation": {"held": ["h" * 10**6] * 5, "missing": ["m%d" % i for i in range(10**4)]}}))
    os._exit(0)

def f():
    return 1
'''
    with Sandbox(submission_from_cells([forge])) as box:
        box.start()
        assert box.load_failure is None
        assert len(box.functions) <= 10_000 and "f" in box.functions
        assert len(box.load_problems) <= 50 and all(len(p[2]) <= 500 for p in box.load_problems)
        for key in ("held", "missing"):
            assert len(box.isolation[key]) <= 50 and all(len(item) <= 500 for item in box.isolation[key])


def test_forged_outcome_texts_are_cut_to_what_feedback_shows():
    """A call can write its own error or result message: 3 MB 'frames' became a 6 MB feedback
    message in every check (the record, the store, the HTML report); now every text is cut."""
    forge = FORGER + r'''
def error_with_huge_frames():
    _write(_frame({"kind": "error", "type": "E" * 10**5, "message": "m", "output": "",
                   "frames": [["<cell 1>", 1, "f" * 3 * 2**20, "t" * 3 * 2**20]] * 1 + [["<cell 1>", "x", "g", "h"]] * 50}))
    os._exit(0)

def result_with_huge_names():
    _write(_frame({"kind": "result", "value": 1, "output": "",
                   "mutated": ["X" * 2**20] * 3 + ["y"] * 20, "warnings": ["w" * 2**20] * 3 + ["z"] * 20}))
    os._exit(0)
'''
    with Sandbox(submission_from_cells([forge])) as box:
        error = box.call("error_with_huge_frames")
        assert error.status == "error" and len(error.error_type) <= 200
        assert len(error.frames) <= 6 and all(len(str(x)) <= 300 for frame in error.frames for x in frame)
        result = box.call("result_with_huge_names")
        assert result.status == "ok" and result.value == 1
        assert len(result.mutated) <= 10 and all(len(m) <= 200 for m in result.mutated)
        assert len(result.warnings) <= 5 and all(len(w) <= 500 for w in result.warnings)


def test_a_value_over_the_cap_tells_the_student_its_size():
    with Sandbox(submission_from_cells([FORGER]), Limits(memory_mb=3072)) as sandbox:
        outcome = sandbox.call("returns", (1024,), timeout=30)
        assert sandbox.call("returns", (40,)).ok        # real data: well under the cap
    assert outcome.status == "error" and outcome.error_type == "ValueTooLarge"
    assert "1024 MB" in outcome.message and "64 MB" in outcome.message


def test_decoding_a_hostile_message_costs_the_grader_little_memory(tmp_path):
    """A forged message at the cap: the grader's peak memory grows by about the cap, not more."""
    bombs = r"""
def header_bomb():
    body = struct.pack("<II", 8 * 2**20 - 64, 0) + b"[" + b"[]," * ((8 * 2**20 - 80) // 3) + b"[]]"
    _write(struct.pack("<Q", len(body)) + body)
    time.sleep(600)

def deep():
    body = b"[" * (4 * 2**20) + b"]" * (4 * 2**20)
    body = struct.pack("<II", len(body), 0) + body
    _write(struct.pack("<Q", len(body)) + body)
    time.sleep(600)
"""
    script = tmp_path / "grader.py"
    script.write_text(textwrap.dedent('''
        import json, sys
        from autograder.loading import submission_from_cells
        from autograder.sandbox import Sandbox

        def status(key):
            with open("/proc/self/status") as f:
                return next(int(line.split()[1]) for line in f if line.startswith(key))

        results = {}
        with Sandbox(submission_from_cells([sys.argv[1]])) as box:
            box.start()
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")   # (resets the peak: VmHWM)
            base = status("VmRSS:")
            for name, args in (("announces_a_gigabyte", ()), ("header_bomb", ()), ("deep", ()),
                               ("returns", (1024,)), ("returns", (60,))):
                outcome = box.call(name, args, timeout=20)
                results[name + str(args)] = [outcome.status, outcome.error_type]
                if name == "returns" and args == (1024,):
                    forged = status("VmHWM:")
            peak = status("VmHWM:")
        print(json.dumps({"forged_mb": (forged - base) / 1024, "grew_mb": (peak - base) / 1024,
                          "results": results}))
    '''))
    done = subprocess.run([sys.executable, str(script), FORGER + bombs], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(result)
    assert result["results"]["returns(60,)"] == ["ok", ""]
    assert result["results"]["announces_a_gigabyte()"] == ["error", "ValueTooLarge"]
    assert result["results"]["header_bomb()"][0] == result["results"]["deep()"][0] == "crash"
    assert result["forged_mb"] < 24, result   # forged lengths, 1 GiB values: nothing; header bombs: 2 x 8 MB
    assert result["grew_mb"] < 100, result    # a real 60 MB array arrives without a copy


# ------------------------------------------------------------------------------------ what the child sees
def test_nothing_the_child_sees_reveals_the_course_or_the_check():
    code = r'''
import os, sys
def seen():
    with open("/proc/self/cmdline", "rb") as f:
        cmdline = f.read().decode(errors="replace")
    with open("/proc/self/environ", "rb") as f:
        environ = f.read().decode(errors="replace")
    return {"cmdline": cmdline, "environ": environ, "env": dict(os.environ), "cwd": os.getcwd(),
            "argv": sys.argv, "orig_argv": getattr(sys, "orig_argv", []), "path": sys.path,
            "files": sorted(os.listdir(".")), "fds": [fd for fd in range(256) if _is_open(fd)]}

def _is_open(fd):   # (a call's /proc has no fd folder)
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False
'''
    with Sandbox(submission_from_cells([code])) as sandbox:
        sandbox.start()
        seen = sandbox.call("seen", seed=12345).value
        workdir = sandbox._workdir
    # The interpreter's own folders are shared on purpose (at their host paths); their names are the
    # machine's (a CI checkout in /check/...), not the course's or the check's.
    text = json.dumps(seen)
    for shared in sorted({sys.prefix, sys.base_prefix, os.path.dirname(sys.executable)}, key=len, reverse=True):
        text = text.replace(json.dumps(shared)[1:-1], "<interpreter>")
    for secret in ("autograder-", os.path.basename(workdir), "solutions", "nbgrader", "gmm", "E_step", "check",
                   "AUTOGRADER", "VIRTUAL_ENV", "12345", str(os.getpid())):
        assert secret not in text, (secret, seen)
    assert seen["cwd"] == "/tmp" or not sandbox.isolation or "allowlist" not in " ".join(sandbox.isolation["held"])


def test_the_grader_cannot_be_imported_or_found_in_memory():
    code = r'''
import gc, sys
def probe():
    out = {}
    for name in ("autograder.assignments", "autograder.assignments.gmm.theory", "autograder.engine",
                 "autograder.reporting", "autograder.student", "autograder.batch", "autograder.grading",
                 "autograder.loading", "autograder.sandbox.process", "solutions", "solutions.gmm"):
        try:
            __import__(name)
            out[name] = "imported"
        except ImportError as exc:
            out[name] = type(exc).__name__
    from autograder import Checker, datasets, interactive
    from autograder.interactive import iteration_slider, progress_bar
    out["bar"] = sum(progress_bar(range(4), desc="x"))
    out["slider"] = iteration_slider([1, 2], lambda f, fig: None)
    for what, call in (("checker", lambda: Checker("gmm")), ("load", lambda: datasets.load("gmm"))):
        try:
            call()
        except RuntimeError as exc:
            out[what] = str(exc)
    out["modules"] = sorted(m for m in sys.modules if m.split(".")[0] in ("autograder", "solutions"))
    out["files"] = sorted({getattr(o, "__file__", None) or "" for o in gc.get_objects()
                           if type(o) is type(sys) and o.__name__.split(".")[0] in ("autograder", "solutions")})
    return out
'''
    with Sandbox(submission_from_cells([code])) as sandbox:
        value = sandbox.call("probe").value
    for name in ("autograder.assignments", "autograder.assignments.gmm.theory", "autograder.engine",
                 "autograder.reporting", "autograder.student", "autograder.batch", "autograder.grading",
                 "autograder.loading", "solutions", "solutions.gmm"):
        assert value[name] == "ModuleNotFoundError", (name, value[name])
    assert value["autograder.sandbox.process"] == "ModuleNotFoundError"   # (it needs autograder.loading)
    assert value["bar"] == 6 and value["slider"] is None
    assert "not available" in value["checker"] and "not available" in value["load"]
    allowed = {"autograder", "autograder.interactive", "autograder.datasets"}
    assert all(m in allowed or m.startswith("autograder.sandbox") for m in value["modules"]), value["modules"]
    assert all(f.startswith("/sandbox/") for f in value["files"] if f), value["files"]


def test_caching_what_a_stand_in_returned_is_useless():
    """A later call cannot return what the grader's function answered in an earlier one."""
    code = r'''
import os
CACHE = {}
def remember(f, x):
    if "answer" not in CACHE and os.path.exists("/tmp/answer"):
        CACHE["answer"] = float(open("/tmp/answer").read())
    if "answer" in CACHE:
        return CACHE["answer"]
    CACHE["answer"] = f(x)
    with open("/tmp/answer", "w") as out:
        out.write(repr(CACHE["answer"]))
    return CACHE["answer"]
'''
    with Sandbox(submission_from_cells([code])) as sandbox:
        first = sandbox.call("remember", (lambda x: x * 10.0, 1.0)).value
        second = sandbox.call("remember", (lambda x: x * 10.0, 2.0)).value
    assert (first, second) == (10.0, 20.0)


def test_an_alarm_of_the_grading_process_is_not_swallowed():
    """A grading process's own alarm that goes off inside a stand-in propagates, whatever it raises."""
    import signal

    class Budget(Exception):
        pass

    def over_budget(*args):
        raise Budget()

    previous = signal.signal(signal.SIGALRM, over_budget)
    try:
        code = "def call(f):\n    return f()\n"
        with Sandbox(submission_from_cells([code])) as sandbox:
            sandbox.start()
            signal.setitimer(signal.ITIMER_REAL, 0.5)
            with pytest.raises(Budget):
                sandbox.call("call", (lambda: time.sleep(5),), timeout=10)
            assert sandbox.call("call", (lambda: 3,)).value == 3
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def test_a_virtualenv_below_tmp_runs_the_sandbox(tmp_path):
    """A checkout cloned to /tmp/x with its .venv there (the README's fresh-clone check): the
    interpreter's links below /tmp must be made inside the private /tmp, not hidden under it."""
    assert str(tmp_path).startswith("/tmp/")
    base = Path(sys.base_prefix) / "bin" / "python3"
    if subprocess.run([str(base), "-c", "import numpy"], capture_output=True).returncode != 0:
        pytest.skip("the base interpreter has no numpy for a bare virtualenv")
    venv = tmp_path / "venv"
    subprocess.run([str(base), "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    code = textwrap.dedent("""
        from autograder.loading import submission_from_cells
        from autograder.sandbox import Limits, Sandbox
        box = Sandbox(submission_from_cells(["def f(x):\\n    return x + 1\\n"]), Limits())
        try:
            outcome = box.call("f", (41,))
            print(box.load_failure, outcome.status, outcome.value)
        finally:
            box.close()
    """)
    root = Path(__file__).resolve().parents[1]    # the grader from this checkout, not an installed one
    done = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=120,
                          cwd=root)
    assert done.stdout.split() == ["None", "ok", "42"], done.stdout + done.stderr
