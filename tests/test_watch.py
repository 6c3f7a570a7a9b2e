"""The engine's loop follower (``autograder.engine.watch``): spies bound by the tasks' signatures,
``before`` hooks that see the earlier calls, a verdict that ends the student's loop at once and is
what the check raises, in the sandbox and in the student's kernel alike."""

import numpy as np
import pytest

from autograder.engine import Assignment, Failed, Task, Watch, run_checks
from autograder.engine.executors import InProcessExecutor, SandboxExecutor
from autograder.loading import submission_from_cells

CODE = '''
import numpy as np

def step(theta, k):
    return theta + 1.0

def run(theta, n_iter):
    for k in range(1, 10**9):          # never stops by itself; swallows every exception
        try:
            theta = step(theta, k=k)
        except BaseException:
            pass
    return theta

def run_in_place(theta, n_iter):
    theta = theta.copy()
    for k in range(n_iter):
        theta += step(theta, k)        # updates its parameter in place after the call
    return theta

def run_keywords(theta, n_iter):
    for k in range(n_iter):
        theta = step(k=k, theta=theta)
    return theta

def run_badly(theta, n_iter):
    return step(theta)                 # misses an argument
'''

SEEN: dict = {}


def _assignment():
    toy = Assignment("toy", "Toy", [Task("step", "(theta, k)"), Task("run", "(theta, n_iter)"),
                                    Task("run_in_place", "(theta, n_iter)"), Task("run_keywords", "(theta, n_iter)"),
                                    Task("run_badly", "(theta, n_iter)")])

    def follow(ctx, name, n_iter, **options):
        watch = ctx.watch(**options)

        def before(call):
            SEEN.setdefault(name, []).append(len(spy.calls))
            if len(spy.calls) >= n_iter:
                watch.stop(f"{name} called step more than {n_iter} times", why="stop after n_iter")
                watch.stop("a second verdict is never the one kept")

        spy = watch.spy("step", lambda theta, k: np.asarray(theta) + 1.0, before=before)
        value = ctx.run(np.zeros(2), n_iter, standins=watch.standins())
        return value, spy

    @toy.check("run", "stopped at its verdict", 1)
    def stopped(ctx):
        follow(ctx, "run", 3)

    @toy.check("run_in_place", "copies", 1)
    def copies(ctx):
        _, spy = follow(ctx, "run_in_place", 5, copies=True)
        thetas = [c.arguments["theta"].tolist() for c in spy.calls]
        if thetas != [[0.0, 0.0], [1.0, 1.0], [3.0, 3.0], [7.0, 7.0], [15.0, 15.0]]:
            raise Failed(f"recorded {thetas}")

    @toy.check("run_keywords", "bound by name", 1)
    def bound(ctx):
        value, spy = follow(ctx, "run_keywords", 5)
        if [c.arguments["k"] for c in spy.calls] != [0, 1, 2, 3, 4] or not np.array_equal(value, [5.0, 5.0]):
            raise Failed(f"calls {[c.arguments for c in spy.calls]}, value {value}")

    @toy.check("run_badly", "unbound calls", 1)
    def unbound(ctx):
        follow(ctx, "run_badly", 5)

    return toy


def _executors():
    namespace = {"__name__": "__student__"}
    exec(compile(CODE, "<cell 1>", "exec"), namespace)
    yield "in-process", InProcessExecutor(namespace)
    with SandboxExecutor(submission_from_cells([CODE])) as sandboxed:
        yield "sandbox", sandboxed


@pytest.mark.parametrize("where", ["in-process", "sandbox"])
def test_a_watch_ends_the_loop_with_its_verdict(where):
    SEEN.clear()
    executors = _executors()
    for name, executor in executors:
        if name == where:
            result = run_checks(_assignment(), executor, only=["run", "run_in_place", "run_keywords", "run_badly"])
            break
    executors.close()
    tests = {t.function: t for t in result.tests}
    assert tests["run"].status == "failed"
    assert tests["run"].message == "run called step more than 3 times" and tests["run"].why == "stop after n_iter"
    assert SEEN["run"] == [0, 1, 2, 3]             # before sees the earlier calls only; then the loop is over
    assert tests["run_in_place"].status == "passed", tests["run_in_place"].feedback
    assert tests["run_keywords"].status == "passed", tests["run_keywords"].feedback
    assert "TypeError" in tests["run_badly"].feedback and SEEN["run_badly"] == [0]


def test_nested_calls_pass_through_an_outermost_watch():
    watch = Watch(outermost=True)
    inner = watch.spy("inner", lambda x: x + 1)
    outer_spy = watch.spy("outer", lambda x: standins["inner"](x) * 2)
    standins = watch.standins()
    assert standins["outer"](1) == 4 and standins["inner"](1) == 2
    assert [c.args for c in outer_spy.calls] == [(1,)] and [c.args for c in inner.calls] == [(1,)]
