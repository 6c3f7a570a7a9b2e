"""Explanations over a corpus of single-bug submissions (prankster and hard_em corpus tests).

A mutant's third header line says what its feedback must name:

    # says: <key>[, <key> ...]      keys of the assignment's ``diagnosis.EXPLANATIONS``
    # says: "<phrase>"              a phrase the failure message or explanation must contain
    # says: -                       nothing in particular (no explanation may blame anything)

The properties stated over the corpus:

* the first failing check of the broken function names the bug (its message or explanation holds
  one of the declared keys' texts or phrases);
* no feedback of the mutant shows an explanation of the registry that its header does not
  declare: an explanation appears only where its symptom is;
* every explanation of the registry is shown by some mutant, and withheld from another mutant of
  the same function.
"""

from __future__ import annotations

import re
from pathlib import Path


def says(path: Path) -> list[str]:
    """The declared keys and quoted phrases of a mutant (empty for ``-``)."""
    lines = path.read_text().splitlines()
    match = re.fullmatch(r"# says: (.+)", lines[2]) if len(lines) > 2 else None
    assert match, f"{path.name}: the third line must be '# says: <key>, ... | \"phrase\" | -'"
    text = match.group(1).strip()
    if text == "-":
        return []
    return [token.strip() for token in re.findall(r'"[^"]+"|[^,]+', text) if token.strip()]


def declared_keys(path: Path) -> set[str]:
    return {token for token in says(path) if not token.startswith('"')}


def feedback_of(test) -> str:
    return f"{test.message}\n{test.why}\n{test.feedback}"


def failed_tests(result, function: str) -> list:
    return [t for t in result.tests if t.function == function and t.status == "failed"]


def shown_keys(result, function: str, registry: dict) -> set[str]:
    """Registry keys whose explanation appears in any failed check of ``function``."""
    text = "\n".join(feedback_of(t) for t in failed_tests(result, function))
    return {key for key, explanation in registry.items() if explanation in text}


def names_the_bug(test, tokens: list[str], registry: dict) -> bool:
    text = feedback_of(test)
    for token in tokens:
        if token.startswith('"'):
            if token.strip('"') in text:
                return True
        elif registry[token] in text:
            return True
    return False


def check_declarations(paths, registry: dict) -> None:
    unknown = {p.name: declared_keys(p) - set(registry) for p in paths if declared_keys(p) - set(registry)}
    assert not unknown, f"unknown explanation keys: {unknown}"


def student_side_result(path: str, assignment_id: str, function: str):
    """The student-side checks of ``function`` (no reference) on the submission's own functions, as
    ``check("<function>", <function>)`` runs them in the student's kernel (a worker process)."""
    from autograder.assignments import get_assignment
    from autograder.engine import run_checks
    from autograder.engine.executors import InProcessExecutor

    from corpus_support import student_namespace
    assignment = get_assignment(assignment_id)
    return run_checks(assignment, InProcessExecutor(student_namespace(Path(path))), reference=None,
                      submission=Path(path).name, only=[function])


def grade_all_student_side(request, assignment_id: str, workers: int = 2):
    """Generator for a module-scoped fixture: {path: Future of student_side_result} for the mutants the
    selected tests of ``request.module`` take as their ``path`` parameter (a worker pool: the student
    side of a slow submission runs there, not in the test process)."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    from corpus_support import header
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    wanted = []
    for item in request.session.items:
        if item.module is request.module and hasattr(item, "callspec") and "path" in item.callspec.params \
                and "student_side" in getattr(item, "fixturenames", ()):
            wanted.append(item.callspec.params["path"])
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        yield {path: pool.submit(student_side_result, str(path), assignment_id, header(path)[0])
               for path in dict.fromkeys(wanted)}
