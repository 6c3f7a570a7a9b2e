"""The check engine: expectations that do not hide bugs, a runner that never crashes."""

import numpy as np
import pytest

from autograder.engine import Assignment, Failed, Task, expect, run_checks
from autograder.engine.executors import InProcessExecutor, SandboxExecutor
from autograder.loading import submission_from_cells
from autograder.sandbox.codec import Opaque


def test_close_does_not_wave_through_a_factor_of_ten_on_small_numbers():
    with pytest.raises(Failed):
        expect.close(np.array([1e-8]), np.array([1e-9]), "x", rtol=1e-6, atol=1e-12)
    expect.close(np.array([1e-9 * (1 + 1e-9)]), np.array([1e-9]), "x", rtol=1e-6, atol=1e-12)


def test_close_requires_explicit_tolerances():
    with pytest.raises(TypeError):
        expect.close(1.0, 1.0, "x")  # no default tolerance exists


def test_close_reports_the_worst_entries_and_nan():
    with pytest.raises(Failed) as info:
        expect.close(np.array([[1.0, np.nan], [3.0, 4.5]]), np.array([[1.0, 2.0], [3.0, 4.0]]), "m",
                     rtol=1e-9, atol=0)
    assert "2 of 4 entries" in info.value.message and "(0, 1)" in info.value.message


@pytest.mark.parametrize("value, message", [
    (None, "is None"), (Opaque("generator", "g"), "generator"), ([[1, 2], [3]], "numpy array"),
    (np.zeros((3, 2)), "looks transposed"), (np.array([1.0, np.inf]), "non-finite"),
])
def test_array_validation_messages(value, message):
    with pytest.raises(Failed) as info:
        expect.array(value, "gamma", shape=(2, 3) if message == "looks transposed" else None)
    assert message in info.value.render()


def test_scalar_accepts_numpy_scalars_and_size_one_arrays():
    assert expect.scalar(np.float64(2.5), "v") == 2.5
    assert expect.scalar(np.array([3.0]), "v") == 3.0
    with pytest.raises(Failed):
        expect.scalar(np.array([1.0, 2.0]), "v")


def _toy_assignment():
    toy = Assignment("toy", "Toy", [Task("double", "(x)"), Task("triple", "(x)")])

    @toy.check("double", "doubles", 2)
    def doubles(ctx):
        expect.close(expect.scalar(ctx.run(3.0), "double(3)"), 6.0, "double(3)", rtol=0, atol=0)

    @toy.check("double", "needs the answer key", 1, needs_reference=True)
    def hidden(ctx):
        expect.close(ctx.run(2.0), ctx.reference("double")(2.0), "double(2)", rtol=0, atol=0)

    @toy.check("triple", "triples", 1)
    def triples(ctx):
        expect.close(expect.scalar(ctx.run(1.0), "triple(1)"), 3.0, "triple(1)", rtol=0, atol=0)

    @toy.check("triple", "grader bug", 1)
    def buggy(ctx):
        raise ZeroDivisionError("oops")

    return toy


class _Ref:
    @staticmethod
    def double(x):
        return 2 * x


def test_runner_scores_and_skips_reference_checks_without_a_reference():
    ns = {"double": lambda x: 2 * x, "triple": lambda x: 3 * x}
    result = run_checks(_toy_assignment(), InProcessExecutor(ns))
    statuses = {t.name: t.status for t in result.tests}
    assert statuses["needs the answer key"] == "skipped"
    assert result.score == 3 and result.max_score == 4  # the grader bug scores 0, loudly
    assert "internal error" in next(t.feedback for t in result.tests if t.name == "grader bug")


def test_a_missing_function_fails_only_its_own_checks():
    sub = submission_from_cells(["def double(x):\n    return 2 * x", "def triple(:\n  pass"])
    with SandboxExecutor(sub) as executor:
        result = run_checks(_toy_assignment(), executor, reference=_Ref)
    scores = result.function_scores()
    assert scores["double"] == (3.0, 3.0) and scores["triple"][0] == 0
    feedback = next(t.feedback for t in result.tests if t.function == "triple")
    assert "not defined" in feedback and "SyntaxError" in feedback


def test_not_implemented_is_explained():
    ns = {"double": lambda x: (_ for _ in ()).throw(NotImplementedError()), "triple": lambda x: 3 * x}
    result = run_checks(_toy_assignment(), InProcessExecutor(ns), only=["double"])
    assert "not implemented yet" in result.tests[0].feedback


def test_an_assignment_reuses_another_assignments_check_through_the_engine():
    source = _toy_assignment()
    other = Assignment("other", "Other", [Task("double", "(x)")])
    reused = other.reuse(source, "double", "needs the answer key", 3, as_name="hidden, again")
    original = source.find("double", "needs the answer key")
    assert (reused.run, reused.needs_reference, reused.timeout, reused.hints) == \
        (original.run, original.needs_reference, original.timeout, original.hints)
    assert (reused.task, reused.name, reused.points) == ("double", "hidden, again", 3)
    assert reused.seed != original.seed and other.points("double") == 3
    with pytest.raises(KeyError, match="'doubles'"):
        other.reuse(source, "double", "no such check", 1)
    with pytest.raises(KeyError, match="no task 'triple'"):
        other.reuse(source, "triple", "triples", 1)
    ns = {"double": lambda x: 2 * x}
    result = run_checks(other, InProcessExecutor(ns), reference=type("Ref", (), {"double": staticmethod(ns["double"])}))
    assert [(t.name, t.status, t.score) for t in result.tests] == [("hidden, again", "passed", 3.0)]


def test_reports_never_pass_terminal_control_characters_through():
    """A student's error message, printed output or file name is printed to the instructor's
    terminal: escape sequences (clear the screen, then a forged score table; OSC 52 writes the
    clipboard) and bidirectional overrides are shown as escapes, in text and CSV reports."""
    from autograder.engine.results import CheckResult, SubmissionResult
    from autograder.reporting import gradebook, text
    hostile = "\x1b[2J\x1b[H\x1b]52;c;ZWNobyBwd25lZA==\x07all good: 69 / 69\r\u202e"
    result = SubmissionResult(f"alice{hostile}.py", "gmm", notes=[f"code cell 1: {hostile}"], tests=[
        CheckResult("E_step", "visible fixture", False, 0.0, 1.0, feedback=f"E_step raised ValueError: {hostile}",
                    status="failed")], error=None)
    for report in (text.render_text(result), text.render_table([result]), gradebook.to_csv([result])):
        assert not any(ch in report for ch in "\x1b\x07\r\u202e"), report
        assert "\\x1b[2J" in report
    assert "\n" in text.render_text(result) and "\t" in text.printable("a\tb")


def test_in_process_calls_copy_the_arrays_but_pass_the_graders_callables_by_reference():
    """A grader-side stand-in passed as an argument (an object that records its calls, or a bound
    method) is the grader's own object inside the call, as in the sandbox, so what it records is
    there afterwards; the arrays are still the student's own copies."""
    class Recorder:
        def __init__(self):
            self.calls = []

        def __call__(self, x):
            self.calls.append(x)
            return 2 * x

        def method(self, x):
            return self(x)

    ns = {}
    exec("def use(f, g, x):\n    x[0] = 99.0\n    return f(1.0) + g(2.0)\n", ns)
    executor = InProcessExecutor(ns)
    executor.start()
    recorder, data = Recorder(), np.zeros(3)
    outcome = executor.call("use", (recorder, recorder.method, data), {}, standins={}, seed=0, timeout=10)
    assert outcome.ok and outcome.value == 6.0
    assert recorder.calls == [1.0, 2.0]
    assert data[0] == 0.0 and outcome.mutated


GARBAGE_UNTIL_STOPPED = '''
import weakref

class Thing:
    def __del__(self):
        sum(range(300))

def churn():
    kept = []
    while True:   # every object dies at once, in a __del__ and a weakref callback of its own
        thing = Thing()
        kept.append(weakref.ref(thing, lambda ref: sum(range(300))))
        del thing
'''


def test_an_in_process_time_out_ends_the_call_silently_wherever_it_fires(capfd):
    """The time limit fires wherever the code is, __del__ and weakref callbacks included, where
    Python cannot raise it and would print "Exception ignored" on stderr (in a student's kernel, or
    as pytest's unraisable warning): nothing is printed, and the call still ends as a time-out."""
    namespace = {}
    exec(compile(GARBAGE_UNTIL_STOPPED, "<churn>", "exec"), namespace)
    executor = InProcessExecutor(namespace)
    import signal
    handler = signal.getsignal(signal.SIGALRM)
    for _ in range(3):
        outcome = executor.call("churn", (), {}, standins={}, seed=0, timeout=0.3)
        assert outcome.status == "timeout", outcome
        # Lifted whatever it interrupted: once, the re-armed limit fired inside the clean-up, stayed
        # installed and later raised in pytest-xdist's own thread wait (the worker died).
        assert signal.getitimer(signal.ITIMER_REAL)[0] == 0 and signal.getsignal(signal.SIGALRM) is handler
    assert "Exception ignored" not in capfd.readouterr().err
