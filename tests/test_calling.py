"""The call mechanics are written once (``autograder.sandbox.calling``): a call of a student's
function in the sandbox and in the student's kernel gives the same outcome (value, printed output,
warnings, arguments changed in place, errors and where they were raised, seeding, stand-ins,
callables passed as arguments, a stand-in that stops the call)."""

import numpy as np
import pytest

from autograder.engine import Task
from autograder.engine.executors import InProcessExecutor, SandboxExecutor
from autograder.loading import submission_from_cells
from autograder.sandbox import AbortCall
from autograder.sandbox.calling import OUTPUT_CAP

CODE = '''
import random
import sys
import warnings
import numpy as np

def noisy(x):
    print("working on", x)
    warnings.warn("careful")
    warnings.warn("careful")
    warnings.warn("other", RuntimeWarning)
    return 2 * x

def chatty():
    print("a" * 10000)
    return 1

def drawn():
    return np.concatenate([np.random.rand(3), [random.random()], np.random.default_rng(1).random(1)])

def scales(x, y):
    x *= 2
    return x.sum()

def helper(x):
    raise ValueError(f"bad value {x}")

def fails(x):
    return helper(x) + 1

def exits():
    sys.exit(3)

def uses_helper(x):
    return helper(x)

def applies(fs, x, g=None):
    return fs[0](x) + fs[1](x) + g(x)

def stubborn(f):
    for _ in range(1000):
        try:
            f()
        except BaseException:
            pass
    return "went on"
'''


@pytest.fixture(scope="module")
def executors():
    namespace = {"__name__": "__student__"}
    exec(compile(CODE, "<cell 1>", "exec"), namespace)
    with SandboxExecutor(submission_from_cells([CODE])) as sandboxed:
        yield {"sandbox": sandboxed, "in-process": InProcessExecutor(namespace)}


def both(executors, name, *args, standins=None, **kwargs):
    found = {where: executor.call(name, args, kwargs, standins=standins or {}, seed=Task(name, "()").call_seed,
                                  timeout=20)
             for where, executor in executors.items()}
    return found["sandbox"], found["in-process"]


def same_fields(a, b, *fields):
    for name in fields:
        assert getattr(a, name) == getattr(b, name), name


def test_value_output_and_warnings(executors):
    a, b = both(executors, "noisy", 3.0)
    assert a.status == b.status == "ok" and a.value == b.value == 6.0
    same_fields(a, b, "output", "warnings", "mutated")
    assert a.output == "working on 3.0\n" and a.warnings == ["UserWarning: careful", "RuntimeWarning: other"]


def test_output_is_capped_the_same_way(executors):
    a, b = both(executors, "chatty")
    same_fields(a, b, "status", "output")
    assert a.output.startswith("a" * OUTPUT_CAP) and "more characters not shown" in a.output


def test_calls_are_seeded_by_the_function(executors):
    a, b = both(executors, "drawn")
    assert a.ok and b.ok
    np.testing.assert_array_equal(a.value[:4], b.value[:4])   # the global generators, seeded by call_seed
    np.testing.assert_array_equal(a.value[4:], b.value[4:])   # an explicitly seeded generator


def test_arguments_changed_in_place_are_named(executors):
    x = np.ones(3)
    a, b = both(executors, "scales", x, y=np.zeros(2))
    same_fields(a, b, "status", "value", "mutated")
    assert a.mutated == ["x"] and np.array_equal(x, np.ones(3))   # the check's own array is untouched


def test_errors_say_what_and_where(executors):
    a, b = both(executors, "fails", 1.5)
    same_fields(a, b, "status", "error_type", "message")
    assert a.error_type == "ValueError" and a.message == "bad value 1.5"
    assert [f[:3] for f in a.frames] == [f[:3] for f in b.frames]
    assert [f[2] for f in a.frames] == ["fails", "helper"]


def test_sys_exit_is_an_error_of_the_function(executors):
    a, b = both(executors, "exits")
    same_fields(a, b, "status", "error_type", "message")
    assert a.error_type == "SystemExit"


def test_standins_replace_globals_for_the_call_only(executors):
    a, b = both(executors, "uses_helper", 2.0, standins={"helper": lambda x: x + 100})
    assert a.value == b.value == 102.0
    namespace = executors["in-process"].namespace
    assert namespace["helper"].__name__ == "helper" and namespace["helper"].__module__ != __name__


def test_callables_inside_arguments_reach_the_student(executors):
    a, b = both(executors, "applies", [lambda x: x + 1, lambda x: 10 * x], 2.0, g=lambda x: -x)
    assert a.value == b.value == 21.0


def test_a_standin_that_stops_the_call_stops_it_everywhere(executors):
    def stop():
        raise AbortCall("ran past max_iter", verdict=[7])

    a, b = both(executors, "stubborn", stop)
    assert a.status == b.status == "aborted"
    assert a.value == b.value == [7] and a.message == b.message == "ran past max_iter"
