"""The Submission: the kept statements of a file, ready to be sent to a sandbox."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

from .extract import Scope, kept_statements
from .magics import strip_ipython_syntax
from .reading import UnreadableSubmission, code_cells_from_bytes, read_code_cells


@dataclass(frozen=True)
class Problem:
    """Something wrong with the submission that is not fatal (reported to the student)."""

    cell: int       # 1-based index among code cells
    line: int       # 1-based line within the cell, 0 when unknown
    message: str

    def describe(self) -> str:
        where = f"code cell {self.cell}" + (f", line {self.line}" if self.line else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class Statement:
    """One kept top-level statement, with where it came from."""

    cell: int
    line: int       # line of the statement's first line within its cell (1-based)
    source: str     # the statement's text, starting at column 0
    defines: tuple[str, ...]

    @property
    def filename(self) -> str:
        return f"<cell {self.cell}>"


@dataclass
class Submission:
    """What the grader knows about one submission before running anything.

    ``error`` is set when the file cannot be read at all; then there are no statements.
    ``cells`` keeps the full text of each code cell so tracebacks can show the student's lines.
    """

    path: str
    statements: list[Statement] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    cells: dict[int, str] = field(default_factory=dict)
    error: str | None = None

    def to_message(self) -> dict:
        """A plain-data form of the submission for the sandbox child."""
        return {
            "statements": [[s.cell, s.line, s.source] for s in self.statements],
            "cells": {str(k): v for k, v in self.cells.items()},
        }


def load_submission(path: str | Path) -> Submission:
    """Read ``path`` (``.ipynb`` or ``.py``) and keep its definitions. Never raises."""
    try:
        cells = read_code_cells(Path(path))
    except UnreadableSubmission as exc:
        return Submission(path=str(path), error=f"cannot read the submission: {exc}")
    except Exception as exc:  # pragma: no cover - defensive: a grader must never crash on a file
        return Submission(path=str(path), error=f"cannot read the submission: {type(exc).__name__}: {exc}")
    return submission_from_cells(cells, path=str(path))


def load_submission_bytes(raw: bytes, suffix: str, path: str) -> Submission:
    """``load_submission`` for a file's content read earlier (``path`` only labels it). Never raises."""
    try:
        cells = code_cells_from_bytes(raw, suffix)
    except UnreadableSubmission as exc:
        return Submission(path=path, error=f"cannot read the submission: {exc}")
    except Exception as exc:  # pragma: no cover - defensive: a grader must never crash on a file
        return Submission(path=path, error=f"cannot read the submission: {type(exc).__name__}: {exc}")
    return submission_from_cells(cells, path=path)


def submission_from_cells(cells: list[str], path: str = "<cells>") -> Submission:
    """Build a Submission from the sources of code cells (1-based cell numbers)."""
    submission = Submission(path=path)
    scope = Scope()
    for number, source in enumerate(cells, start=1):
        _add_cell(submission, number, source, scope)
    return submission


def _add_cell(submission: Submission, number: int, source: str, scope: Scope) -> None:
    try:
        _add_parsed_cell(submission, number, source, scope)
    except (RecursionError, MemoryError):   # (`x = 1+1+...+1` with 2000 terms: too deep to read)
        submission.statements = [s for s in submission.statements if s.cell != number]
        submission.cells.pop(number, None)
        submission.problems.append(Problem(number, 0, "the cell is nested too deeply to be read (a very long "
                                                      "expression?); it was skipped"))


def _add_parsed_cell(submission: Submission, number: int, source: str, scope: Scope) -> None:
    tree = _parse(source)
    if tree is None:
        cleaned = strip_ipython_syntax(source)
        if cleaned is None:
            return  # a %%bash / %%html cell: not Python, nothing to keep
        tree = _parse(cleaned)
        if tree is None:
            submission.problems.append(_syntax_problem(number, source, cleaned))
            return
        source = cleaned
    submission.cells[number] = source
    lines = source.splitlines(keepends=True)
    for node in kept_statements(tree, scope):
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        start_col = 0 if first != node.lineno else node.col_offset
        text = "".join(lines[first - 1:node.end_lineno])
        # Cut what shares the first/last line with other statements (`import a; plot()`).
        end_cut = len(lines[node.end_lineno - 1]) - node.end_col_offset
        if end_cut > 0 and lines[node.end_lineno - 1].endswith("\n"):
            end_cut -= 1
        text = text[start_col:len(text) - end_cut if end_cut > 0 else None]
        submission.statements.append(Statement(number, first, text.rstrip() + "\n", _defines(node)))


def _parse(source: str) -> ast.Module | None:
    try:
        return ast.parse(source)
    except (SyntaxError, ValueError):  # ValueError: null bytes
        return None


def _syntax_problem(number: int, original: str, cleaned: str) -> Problem:
    try:
        ast.parse(cleaned)
    except SyntaxError as exc:
        text = (exc.text or "").strip()
        detail = f"{exc.msg}" + (f" in `{text}`" if text else "")
        return Problem(number, exc.lineno or 0,
                       f"SyntaxError: {detail}. The whole cell was skipped, so nothing it defines "
                       "can be graded; fix the syntax and run the cell again.")
    except ValueError as exc:
        return Problem(number, 0, f"the cell cannot be parsed ({exc}); it was skipped")
    return Problem(number, 0, "the cell cannot be parsed; it was skipped")  # pragma: no cover


def _defines(node: ast.stmt) -> tuple[str, ...]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return (node.name,)
    if isinstance(node, ast.Import):
        return tuple(a.asname or a.name.split(".")[0] for a in node.names)
    if isinstance(node, ast.ImportFrom):
        return tuple(a.asname or a.name for a in node.names)
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names = []
    for t in targets:
        names.extend(e.id for e in (t.elts if isinstance(t, (ast.Tuple, ast.List)) else [t])
                     if isinstance(e, ast.Name))
    return tuple(names)
