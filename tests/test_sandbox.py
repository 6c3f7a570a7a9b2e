"""The sandbox: a safe codec, limits that hold, and a child that cannot take the grader down."""

import os
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
    p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "317.25"])
    return p.pid
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
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _sleepers("317.25"):
            time.sleep(0.05)
        assert not _sleepers("317.25")          # gone with the call, before the next one
        assert sandbox.call("strange").ok


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
