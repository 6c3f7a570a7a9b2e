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

import multiprocessing
import os
import re
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
    return _strict(grade_file, path, assignment_id)


def student_side(path: str, assignment_id: str):
    """The student-side checks of every task (``check()`` in the student's kernel), in this process."""
    from autograder.assignments import get_assignment

    def run():
        return run_checks(get_assignment(assignment_id), InProcessExecutor(student_namespace(Path(path))),
                          reference=None, submission=Path(path).name)
    return _strict(run)


def grade_all(request, assignment_id: str, workers: int = 2, strict: bool = False, student: bool = False):
    """Generator for a module-scoped fixture: {path: Future of grade_file(path)} for the files the
    selected tests of ``request.module`` take as their ``path`` parameter.

    ``strict``: RuntimeWarnings raised in the grader's code are errors (see :func:`_strict`).
    ``student``: the values are pairs (Future of grade_file, Future of :func:`student_side`)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # inherited by the workers
    wanted = []
    for item in request.session.items:
        if item.module is request.module and hasattr(item, "callspec") and "path" in item.callspec.params:
            wanted.append(item.callspec.params["path"])
    grade = grade_strictly if strict else grade_file
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {}
        for path in dict.fromkeys(wanted):
            graded = pool.submit(grade, str(path), assignment_id)
            futures[path] = (graded, pool.submit(student_side, str(path), assignment_id)) if student else graded
        yield futures


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
    result = run_checks(assignment, InProcessExecutor(student_namespace(path)), reference=None,
                        submission=path.name)
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
