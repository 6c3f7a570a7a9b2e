"""What the corpus tests share (tests/test_<assignment>_corpus.py).

A corpus is a folder ``tests/corpora/<assignment>/`` with

* ``correct/``: complete, correct submissions (``.py`` or ``.ipynb``) written independently of the
  reference: each must get full marks and pass every student-side check;
* ``mutants/``: copies with exactly one realistic bug in one function, named on the first two
  lines (``# breaks: <function>`` / ``# bug: <what is wrong>``): each must lose points on that
  function only, with feedback that names the function or the quantity it got wrong.

Grading is the slow part (one sandboxed process per submission), so a module's files are graded
up front in worker processes (``spawn``: fresh interpreters with the CLI's default warning
filters) and each test waits for its own file's result: see :func:`grade_all`.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import re
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from autograder.engine import run_checks
from autograder.engine.executors import InProcessExecutor
from autograder.grading import grade_file
from autograder.loading import load_submission


def corpus_files(corpus: Path) -> tuple[list[Path], list[Path]]:
    """(correct submissions, mutants) of a corpus folder, sorted."""
    correct = sorted(p for p in (corpus / "correct").iterdir() if p.suffix in (".py", ".ipynb"))
    mutants = sorted((corpus / "mutants").glob("*.py"))
    return correct, mutants


def generic_corpora(root: Path) -> list[str]:
    """The corpora ``tests/corpora/<id>/`` (with a ``correct/`` folder) of ``root`` that have no test
    module of their own (``tests/test_<id>_corpus.py``): tests/test_corpora.py grades them."""
    corpora = root / "tests" / "corpora"
    return sorted(p.name for p in corpora.iterdir() if (p / "correct").is_dir()
                  and not (root / "tests" / f"test_{p.name}_corpus.py").exists())


def header(path: Path) -> tuple[str, str]:
    """(function, bug) from a mutant's first two lines."""
    lines = path.read_text().splitlines()
    breaks = re.fullmatch(r"# breaks: (\w+)", lines[0])
    bug = re.fullmatch(r"# bug: (.+)", lines[1])
    assert breaks and bug, f"{path.name}: the first two lines must be '# breaks: <function>' and '# bug: <...>'"
    return breaks.group(1), bug.group(1)


def header_fields(path: Path) -> dict[str, str]:
    """The ``# key: value`` lines of a file's leading comment block (``breaks``, ``bug``, ``why``, ...)."""
    fields = {}
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        found = re.fullmatch(r"# (\w[\w-]*): (.+)", line)
        if found:
            fields.setdefault(found.group(1), found.group(2).strip())
    return fields


def _strict(function, *args):
    """``function(*args)`` with RuntimeWarnings raised as errors, as the test-suite runs (a warning in a
    check's own code then shows as an internal error of the grader; the student's code's warnings are
    captured by the executors and never reach this filter)."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        return function(*args)


def grade_strictly(path: str, assignment_id: str):
    """The CLI's grading of one file, warnings raised as errors."""
    return _strict(grade_file, path, assignment_id)


def in_process(path: Path, assignment_id: str, *, reference=None, only=None):
    """The checks run by the engine in this process on the submission's namespace: the student's
    ``check()`` without a reference, the grader's checks with one."""
    from autograder.assignments import get_assignment
    return run_checks(get_assignment(assignment_id), InProcessExecutor(student_namespace(path)),
                      reference=reference, submission=path.name, only=None if only is None else list(only))


def student_side(path: str, assignment_id: str):
    """The student-side checks of every task (``check()`` in the student's kernel), in this process."""
    return _strict(in_process, Path(path), assignment_id)


def grade_all(request, assignment_id: str, workers: int = 2, strict: bool = False, student: bool = False,
              sandboxed=(), paths=None):
    """Generator for a module-scoped fixture: {path: Future of grade_file(path)} for the files the
    selected tests of ``request.module`` take as their ``path`` parameter (or for ``paths``).

    Correct submissions are graded in full. A mutant is graded in full only where it differs from
    the correct submission it was made from (see :func:`delta`): the tasks whose code it changed
    are graded in it, and every other task's results are its base's (the same code, the same seeds:
    the same results), so the suite pays for the broken function, not for all of them again.
    Those changed tasks are graded as the CLI grades them (in the sandbox) for the mutants of
    :func:`in_sandbox` (a quarter of them, chosen by name, and those named in ``sandboxed``), and
    by the same engine in a worker process for the others: the sandbox costs three times the
    grading's own time, and its path is covered by the correct files, that quarter, the hostile
    corpus and the batch, nbgrader and Gradescope tests.

    ``strict``: RuntimeWarnings raised in the grader's code are errors (see :func:`_strict`).
    ``student``: the values are pairs (Future of the grading, Future of :func:`student_side`)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # inherited by the workers
    wanted = [Path(p) for p in paths] if paths is not None else []
    for item in request.session.items if paths is None else ():
        if item.module is request.module and hasattr(item, "callspec") and "path" in item.callspec.params:
            wanted.append(Path(item.callspec.params["path"]))
    from autograder.assignments import get_assignment
    tasks = [t.name for t in get_assignment(assignment_id).tasks]
    plans = {path: delta(path, tasks) if path.parent.name == "mutants" else None for path in dict.fromkeys(wanted)}
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        full = {}

        def graded_in_full(path: Path):
            if path not in full:
                full[path] = pool.submit(_grade, str(path), assignment_id, None, strict)
            return full[path]

        partial = {}
        for path, plan in plans.items():
            if plan is not None:
                base, changed = plan
                # Debugging assertions are handed the grader's functions: their checks follow those
                # calls through the sandbox's callbacks, so their mutants are always graded there.
                sandbox = in_sandbox(path, sandboxed) or any(t.startswith("assert_") for t in changed)
                how = _grade if sandbox else _grade_in_process
                partial[path] = _Merged(graded_in_full(base),
                                        pool.submit(how, str(path), assignment_id, tuple(changed), strict), changed)
        futures = {}
        for path, plan in plans.items():
            graded = partial[path] if plan is not None else graded_in_full(path)
            futures[path] = (graded, pool.submit(student_side, str(path), assignment_id)) if student else graded
        yield futures


def in_sandbox(path: Path, sandboxed=()) -> bool:
    """Whether a mutant's changed tasks are graded in the sandbox (see :func:`grade_all`)."""
    return path.stem in sandboxed or zlib.crc32(path.stem.encode()) % 4 == 0


def _grade_in_process(path: str, assignment_id: str, only, strict: bool):
    from autograder.grading import reference_for

    def run():
        return in_process(Path(path), assignment_id, reference=reference_for(assignment_id), only=only)
    return _strict(run) if strict else run()


def _grade(path: str, assignment_id: str, only, strict: bool):
    def run():
        return grade_file(path, assignment_id, only=only)
    return _strict(run) if strict else run()


class _Merged:
    """The result of a mutant graded on its changed tasks, its other tasks' results from its base."""

    def __init__(self, base, part, changed) -> None:
        self.base, self.part, self.changed = base, part, set(changed)

    def result(self):
        base, part = self.base.result(), self.part.result()
        if part.error is not None:
            return part
        own = part.by_function()
        tests = []
        for function, results in base.by_function().items():
            tests.extend(own.get(function, []) if function in self.changed else results)
        part.tests = tests
        return part


# Code the static reading below cannot follow: such a mutant is graded in full.
_UNFOLLOWABLE = re.compile(r"\b(eval|exec|compile|globals|locals|vars|getattr|setattr|delattr|__dict__|__globals__"
                           r"|importlib|__import__|sys\.modules|inspect)\b")


def delta(path: Path, tasks: list[str]):
    """(base submission, tasks whose code the mutant changed), or None to grade it in full.

    The base is the correct file named on a ``# (mutant of correct/NAME)`` line. A task's code is
    every top-level definition it reaches by name or attribute (helpers, aliases, classes and
    their members, imports), transitively; a task is changed when any of that differs from the
    base, in the mutant's or the base's reading. Anything else that differs (statements that
    define nothing, code the reading cannot follow) grades the mutant in full."""
    mine = _definitions(path)
    if mine is None:
        return None
    found = re.search(r"^# \(mutant of correct/([^)]+)\)", path.read_text(), re.M)
    if found:
        base = path.parent.parent / "correct" / found.group(1)
    else:   # the correct file it differs least from
        base = min(corpus_files(path.parent.parent)[0], key=lambda p: _distance(mine, _definitions(p)))
    theirs = _definitions(base) if base.exists() else None
    if theirs is None:
        return None
    different = _differing(mine, theirs)
    if "" in different:
        return None
    reach_mine, reach_theirs = _reach(tasks, mine), _reach(tasks, theirs)
    changed = [t for t in tasks if (reach_mine[t] | reach_theirs[t]) & different]
    function, _ = header(path)
    if function not in changed:
        return None      # the reading missed the bug: grade everything
    return base, changed


def _differing(mine: dict, theirs: dict) -> set[str]:
    """The names whose binding statements differ between two readings (see :func:`_definitions`)."""
    return {n for n in set(mine) | set(theirs) if [d for d, _ in mine.get(n, [])] != [d for d, _ in theirs.get(n, [])]}


def _distance(mine: dict, theirs: dict | None) -> int:
    return 1 << 30 if theirs is None else len(_differing(mine, theirs))


@functools.lru_cache(maxsize=None)
def _definitions(path: Path):
    """{name: [(AST dump, AST) of each kept statement binding it, in order]}; key "" for statements
    that bind nothing. None when the submission cannot be read or has code the reading cannot follow."""
    import ast
    submission = load_submission(path)
    if submission.error is not None:
        return None
    found: dict[str, list] = {}
    for statement in submission.statements:
        if _UNFOLLOWABLE.search(statement.source):
            return None
        tree = ast.parse(statement.source)
        for name in statement.defines or ("",):
            found.setdefault(name, []).append((ast.dump(tree), tree))
    return found


def _reach(tasks: list[str], definitions: dict) -> dict[str, set[str]]:
    """{task: the top-level names its code reaches (itself included)}."""
    import ast
    trees = {name: [tree for _, tree in entries] for name, entries in definitions.items()}
    members: dict[str, set[str]] = {}      # attribute name -> classes defining it
    for name, nodes in trees.items():
        for tree in nodes:
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    for item in ast.walk(node):
                        for member in _bound_names(item):
                            members.setdefault(member, set()).add(name)

    def reach(task: str) -> set[str]:
        seen, todo = set(), [task]
        while todo:
            name = todo.pop()
            if name in seen or name not in definitions:
                continue
            seen.add(name)
            for tree in trees[name]:
                for node in ast.walk(tree):
                    if isinstance(node, ast.Name):
                        todo.append(node.id)
                    elif isinstance(node, ast.Attribute):
                        todo.append(node.attr)
                        todo.extend(members.get(node.attr, ()))
        return seen
    return {task: reach(task) for task in tasks}


def _bound_names(node) -> list[str]:
    import ast
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return []


def failures(result, functions=None) -> str:
    return "\n".join(f"  {t.function} / {t.name}: {t.feedback[:400]}" for t in result.tests
                     if not t.passed and (functions is None or t.function in functions))


def student_namespace(path: Path) -> dict:
    """The submission's globals as the student's kernel would have them (its definitions, for notebooks)."""
    namespace = {"__name__": "__student__"}
    if path.suffix == ".py":
        exec(compile(path.read_text(), str(path), "exec"), namespace)
    else:
        submission = load_submission(path)
        assert submission.error is None, submission.error
        for statement in submission.statements:
            exec(compile(statement.source, statement.filename, "exec"), namespace)
    return namespace


# ----------------------------------------------------------------------------------- assertions
def assert_corpus_complete(correct, mutants, functions, min_correct: int, min_mutants: int) -> None:
    assert len(correct) >= min_correct and len(mutants) >= min_mutants
    targets = {header(path)[0] for path in mutants}
    assert targets <= set(functions), f"mutants of unknown functions: {targets - set(functions)}"
    assert targets == set(functions), f"functions without a mutant: {set(functions) - targets}"


def assert_full_marks(result, path: Path, functions, full_marks: float) -> None:
    assert result.error is None, result.error
    assert set(result.function_scores()) == set(functions)
    assert result.max_score == full_marks
    assert result.score == full_marks, f"{path.name} lost points:\n{failures(result)}"


def assert_student_side_passes(assignment, path: Path) -> None:
    functions = [t.name for t in assignment.tasks]
    result = in_process(path, assignment.id)
    ran = [t for t in result.tests if t.status != "skipped"]
    assert {t.function for t in ran} == set(functions)
    failed = [t for t in ran if not t.passed]
    assert not failed, f"{path.name} fails student-side checks:\n" + "\n".join(
        f"  {t.function} / {t.name}: {t.feedback[:400]}" for t in failed)


def assert_loses_points_on_its_function_only(result, path: Path, functions, quantities: dict) -> None:
    function, bug = header(path)
    assert result.error is None, result.error
    scores = result.function_scores()
    assert set(scores) == set(functions)
    got, full = scores[function]
    assert got < full, f"the grader gives {function} full marks although {bug}"
    collateral = {f: s for f, s in scores.items() if f != function and s[0] < s[1]}
    assert not collateral, f"points lost outside {function}: {collateral}\n{failures(result, collateral)}"
    words = (function,) + tuple(quantities.get(function, ()))
    failing = [t for t in result.tests if t.function == function and not t.passed]
    assert any(t.feedback.strip() and any(re.search(rf"\b{re.escape(w)}\b", t.feedback) for w in words)
               for t in failing), f"no failing check of {function} explains itself:\n{failures(result, [function])}"
