"""The notebook API: ``check``, ``grade``, ``hint`` and ``progress``.

In a notebook::

    from autograder import Checker
    checker = Checker("gmm")
    check, grade, hint, progress = checker.check, checker.grade, checker.hint, checker.progress

    check("E_step", E_step)      # student-side checks, right now, in this kernel
    hint("E_step")               # one more hint about what failed
    progress()                   # which tasks pass so far

``check``, ``progress`` and ``hint`` work the same in Jupyter, Colab, a terminal IPython and a
plain ``python script.py``: each shows its result once (HTML in a notebook, text elsewhere; see
``autograder.echo``) and returns it, so ``report.passed`` or ``str(hint(...))`` stay usable.

``progress()`` remembers each task's results under a key of its function's code (its source,
bytecode, constants, defaults, closure and the globals it uses, helpers included, recursively;
see ``autograder.code_key``) and reruns only the tasks whose key changed; ``check()`` always runs,
and what it finds is remembered too. A result with a time-out is never remembered (it depends on
how busy the machine was).

``grade`` (in the source notebooks' hidden tests) is the instructor's preview of the full
grading; it never decides a grade: ``nbgrader autograde`` and ``python -m autograder grade``
grade the saved notebook in the sandbox and do not run its cells (see ``autograder.autograde``).
"""

from __future__ import annotations

import sys
from collections import ChainMap
from types import FrameType
from typing import Callable, Mapping

from .assignments import get_assignment
from .code_key import code_key
from .echo import Echo, Said, present
from .engine import SubmissionResult, run_checks
from .engine.check import Task
from .engine.executors import InProcessExecutor
from .reporting import render_html, render_text


class Report(Echo):
    """A result that renders as HTML in Jupyter and as text elsewhere."""

    def __init__(self, result: SubmissionResult, functions: list[str] | None, title: str, footer: str = "",
                 html_title: str | None = None):
        self.result = result
        self.functions = functions
        self.title = title
        self.footer = footer
        self.html_title = html_title or title  # the HTML report shows the score on its own

    @property
    def passed(self) -> bool:
        return all(t.passed for t in self.result.tests if t.status != "skipped")

    def _repr_html_(self) -> str:
        return render_html(self.result, title=self.html_title, functions=self.functions,
                           footer=self.footer.replace("\n", "<br>"))

    def __repr__(self) -> str:
        body = render_text(self.result, functions=self.functions, passed_details=True)
        return f"{self.title}\n{body}" + (f"\n{self.footer}" if self.footer else "")


class ProgressReport(Report):
    """progress()'s result: one line per task (passes, fails, not defined yet), no details."""

    def __init__(self, result: SubmissionResult, tasks: list[str], title: str, footer: str,
                 rerun: tuple[str, ...] = ()):
        super().__init__(result, None, title, footer)
        self.tasks = tasks
        self.rerun = rerun   # the tasks whose checks ran this time (the others were remembered)

    def rows(self) -> list[tuple[str, str, str]]:
        """(mark, task, what) per task: mark is ✓ (passes), ✗ (fails) or · (not defined yet)."""
        by_function = self.result.by_function()
        rows = []
        for name in self.tasks:
            tests = by_function.get(name)
            if not tests:
                rows.append(("·", name, "not defined yet"))
                continue
            graded = [t for t in tests if t.status != "skipped"]
            hidden = len(tests) - len(graded)
            score, total = sum(t.score for t in graded), sum(t.max_score for t in graded)
            failed = sum(not t.passed for t in graded)
            if any("not implemented yet" in t.feedback for t in graded):
                rows.append(("·", name, "not implemented yet"))
                continue
            what = f"{score:g} / {total:g}" + (f", {failed} check(s) fail" if failed else "")
            if hidden:
                what += f" ({hidden} more when graded)"
            rows.append(("✓" if not failed else "✗", name, what))
        return rows

    def _repr_html_(self) -> str:
        import html
        from .reporting.html import STYLE
        cls = {"✓": "ag-ok", "✗": "ag-bad", "·": "ag-skip"}
        lines = [f'<div class="ag-check {cls[m]}">{m} <b>{html.escape(n)}</b> {html.escape(w)}</div>'
                 for m, n, w in self.rows()]
        return (f'{STYLE}<div class="ag-report ag-progress"><h3>{html.escape(self.title)}</h3>'
                + "\n".join(lines) + f"<div>{html.escape(self.footer)}</div></div>")

    def __repr__(self) -> str:
        width = max(len(n) for _, n, _ in self.rows())
        body = "\n".join(f"{m} {n.ljust(width)}  {w}" for m, n, w in self.rows())
        return f"{self.title}\n{body}\n{self.footer}"


class Score(Report):
    """grade()'s result: its plain-text form is just the score (nbgrader's partial credit)."""

    def __init__(self, result: SubmissionResult, functions: list[str] | None, title: str, score: float):
        super().__init__(result, functions, title)
        self.score = score

    def __repr__(self) -> str:
        return f"{self.score:g}"

    def __float__(self) -> float:
        return float(self.score)


class Notice:
    """What ``grade()`` says where it cannot grade (a student's machine): never a score."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_html_(self) -> str:
        import html
        from .reporting.html import STYLE
        return f'{STYLE}<div class="ag-report"><div class="ag-check ag-skip">{html.escape(self.text)}</div></div>'

    def __repr__(self) -> str:
        return self.text


class Checker:
    """The autograder's handle in an assignment notebook."""

    def __init__(self, assignment_id: str) -> None:
        self.assignment = get_assignment(assignment_id)
        self._results: dict[str, SubmissionResult] = {}   # the last result of each task (for hints)
        self._remembered: dict[str, tuple[str, SubmissionResult]] = {}   # task -> (code key, result)
        self._checked: dict[str, Callable] = {}   # the function check() was last given, per task
        self._hints_shown: dict[str, int] = {}
        self._failing: dict[str, tuple] = {}   # the checks of each task that failed last time

    # ------------------------------------------------------------------------------- check
    def check(self, name: str, func=None) -> Report:
        """Run the student-side checks of ``name`` (visible fixtures and properties) now.

        ``func`` defaults to the caller's variable called ``name``. The report is shown (see the
        module docstring) and returned.
        """
        caller = sys._getframe(1)
        task = self.assignment.task(name)
        if func is None:
            func = _visible_names(caller).get(name)
        if callable(func):
            self._checked[name] = func
            namespace = ChainMap({name: func}, getattr(func, "__globals__", {}))
            result = self._run(task, namespace)
        else:
            result = run_checks(self.assignment, InProcessExecutor({}), reference=None,
                                submission="this notebook", only=[name])
            self._record(name, result, key=None)
        graded = [t for t in result.tests if t.status != "skipped"]
        hidden = len(result.tests) - len(graded)
        footer = []
        if hidden:
            footer.append(f"{hidden} more check(s) run when your work is graded.")
        if any(not t.passed for t in graded) and any(t.hints for t in graded):
            footer.append(f'Stuck? hint("{name}") shows a hint.')
        title = f"{task.name}{task.signature}: {sum(t.score for t in graded):g} / {sum(t.max_score for t in graded):g}"
        report = Report(result, [name], title, "\n".join(footer), html_title=f"{task.name}{task.signature}")
        return present(report, caller)

    def _key(self, task: Task, namespace: Mapping) -> str | None:
        """The code key of the task's function in ``namespace``, with the functions its checks
        may combine it with (the task's ``isolated_from``: student-side, the student's own)."""
        related = {name: namespace.get(name) for name in task.isolated_from}
        return code_key(namespace[task.name], related)

    def _run(self, task: Task, namespace: Mapping, key: str | None = None) -> SubmissionResult:
        """Run the student-side checks of ``task`` on ``namespace[task.name]`` and remember them."""
        if key is None:
            key = self._key(task, namespace)   # before running: a run may change the globals
        result = run_checks(self.assignment, InProcessExecutor(namespace), reference=None,
                            submission="this notebook", only=[task.name])
        self._record(task.name, result, key)
        return result

    def _record(self, name: str, result: SubmissionResult, key: str | None) -> None:
        self._results[name] = result
        self._note_failures(name, result)
        if key is not None and not any(t.timed_out for t in result.tests):
            self._remembered[name] = (key, result)
        else:
            self._remembered.pop(name, None)

    # ------------------------------------------------------------------------------- hints
    def _note_failures(self, name: str, result: SubmissionResult) -> None:
        """Hints start again from the first one when a different set of checks fails."""
        failing = tuple(t.name for t in result.tests if t.status == "failed")
        if self._failing.get(name) != failing:
            self._failing[name] = failing
            self._hints_shown[name] = 0

    def hint(self, name: str) -> Said:
        """Show the next hint for the failed checks of ``name`` (one more per call) and return it."""
        caller = sys._getframe(1)
        return present(Said(self._next_hint(name)), caller)

    def _next_hint(self, name: str) -> str:
        self.assignment.task(name)
        result = self._results.get(name)
        if result is None:
            return f'Run check("{name}", {name}) first: hints open after a check fails.'
        failed = [t for t in result.tests if t.status == "failed"]
        if not failed:
            return f"All the checks of {name} you ran pass: no hint needed."
        hints = []
        for t in failed:
            for h in t.hints:
                if h not in hints:
                    hints.append(h)
        if not hints:
            return ("No hint is stored for these checks; read the failure message above: it says what "
                    "broke and why.")
        level = self._hints_shown.get(name, 0)
        if level >= len(hints):
            return (f"That was the last hint for {name}. Re-read the failing check's message, and test "
                    "your function on a tiny input you can compute by hand.")
        self._hints_shown[name] = level + 1
        return f"Hint {level + 1}/{len(hints)} for {name}: {hints[level]}"

    # ------------------------------------------------------------------------------- progress
    def progress(self, namespace: Mapping | None = None) -> Report:
        """Summarise the student-side checks of every task defined so far.

        A task's function is the caller's variable of its name (or ``namespace[name]``), else
        the function ``check()`` was last given for it. Tasks whose code did not change since
        their checks last ran are not run again (see the module docstring).
        """
        caller = sys._getframe(1)
        namespace = namespace if namespace is not None else _visible_names(caller)
        result = SubmissionResult("this notebook", self.assignment.id)
        rerun = []
        for task in self.assignment.tasks:
            func = namespace.get(task.name)
            if not callable(func):
                func = self._checked.get(task.name)
            if not callable(func):
                continue
            scope = ChainMap({task.name: func}, namespace)
            key = self._key(task, scope)
            remembered = self._remembered.get(task.name)
            if key is not None and remembered is not None and remembered[0] == key:
                part = remembered[1]
            else:
                part = self._run(task, scope, key)
                rerun.append(task.name)
            result.tests.extend(part.tests)
        done = [fn for fn, ts in result.by_function().items()
                if all(t.passed for t in ts if t.status != "skipped")]
        missing = [t.name for t in self.assignment.tasks if t.name not in result.by_function()]
        footer = f"{len(done)} of {len(self.assignment.tasks)} tasks pass their checks."
        if missing:
            footer += f" {len(missing)} not defined yet (run their cells)."
        if len(done) < len(self.assignment.tasks) - len(missing):
            footer += ' Details: run the check cell of a failing task; hint("name") gives a hint.'
        report = ProgressReport(result, [t.name for t in self.assignment.tasks],
                                f"Progress on {self.assignment.title}", footer, tuple(rerun))
        return present(report, caller)

    # ------------------------------------------------------------------------------- grade
    def grade(self, name: str):
        """The instructor's preview: the full grading of ``name`` (hidden checks included).

        It never decides a grade: graders grade the saved notebook in the sandbox and do not run
        its cells. With the reference solutions (the instructor's course checkout) it grades the
        code cells run so far in this kernel, exactly as the graders grade a notebook (in a
        grading process, the student's code in the sandbox), and shows the result, whose plain
        text is the score. Elsewhere it says what it is and points to ``check()``.
        """
        from .engine.reference import load_reference
        self.assignment.task(name)
        if load_reference(self.assignment.id) is None:
            return Notice(f"grade(\"{name}\") is the instructor's tool and shows no score here: your work is "
                          "graded after you hand it in, from the saved notebook, in a sandbox, with more "
                          f"checks on inputs you do not see. To test {name} now, run check(\"{name}\", {name}).")
        from .supervisor import Request, grade_one
        record = grade_one(Request(self.assignment.id, "this notebook", cells=tuple(executed_cells()),
                                   only=(name,)))
        result = SubmissionResult.from_dict(record["result"])
        score = sum(t.score for t in result.tests)
        total = sum(t.max_score for t in result.tests)
        return Score(result, [name], f"Graded {name}: {score:g} / {total:g}", score)


def _visible_names(frame: FrameType) -> Mapping:
    """The names code in ``frame`` sees: its locals (inside a function), then its module's globals."""
    if frame.f_locals is frame.f_globals:
        return frame.f_globals
    return ChainMap(dict(frame.f_locals), frame.f_globals)


def executed_cells() -> list[str]:
    """The raw source of every cell run so far in this IPython kernel, in order."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        get_ipython = None
    shell = get_ipython() if get_ipython else None
    if shell is None:
        raise RuntimeError("grade() runs inside a Jupyter/IPython kernel; elsewhere use "
                           "`python -m autograder grade --assignment ID FILE`")
    return [cell for cell in shell.history_manager.input_hist_raw if cell.strip()]
