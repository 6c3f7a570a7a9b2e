"""Code similarity between the submissions of a class: normalised token k-grams weighted by rarity.

What is compared is each submission's *definitions* (the functions and classes the grader keeps,
``autograder.loading``), one unit per definition, so that the order of functions, the cells they
sit in, comments, docstrings, blank lines and line breaks change nothing. Each unit becomes a
stream of normalised tokens (``tokenize``):

* every name the student chooses (variables, parameters, their own functions and constants) is
  ``V``; names bound by the submission's imports are spelt out (``np.exp`` and ``from numpy
  import exp; exp`` are both ``numpy . exp``); attributes, keyword-argument names, builtins and
  keywords are kept (renaming a variable does not change ``.sum(axis=1)``);
* a message string is ``S``, a short word-like one is kept (an einsum spec is code);
  docstrings, comments, formatting and grouping parentheses disappear; statements, indentation
  and operators stay.

A fingerprint is the hash (BLAKE2b, the same on every machine and run) of ``K`` consecutive
tokens of one unit. All fingerprints are kept (documents are a few thousand tokens: winnowing's
reduction is not needed at this size), so every shared run of at least ``K`` normalised tokens
is found. What every student received is no evidence: a token inside a run of ``GIVEN_K``
tokens that the released notebook has too (a signature, a skeleton line, a given function) is
given, and a fingerprint mostly made of given tokens is dropped. Fingerprints of the course's own
public code (reference solutions, the package's theory and check modules) are no evidence between
two students either: a definition mostly made of them is reported on its own (``Analysis.course``:
an answer key copied from the repository or the installed package).

**Evidence.** A fingerprint held by ``n`` submissions counts ``1 / (n - 1)`` for each pair that
shares it (1 when only the pair has it); one held by more than ``max(MIN_COMMON, common_share *
class size)`` counts nothing (a textbook formula, the way most of the class writes a line). A
pair's *score* is the sum over the fingerprints it shares: roughly the number of tokens of
uncommon code the two have in common. A short, standard solution (a 3-line M-step written the
way many others wrote it) shares only common fingerprints and scores little, however similar it
looks; a copy shares the details that nobody else wrote. A score is evidence for a human to look
at, never proof.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import io
import itertools
import keyword
import os
import re
import tokenize
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import NamedTuple

K = 20                  # tokens per fingerprint
THRESHOLD = 40.0        # default score at or above which a pair is reported
MIN_COMMON = 6          # a fingerprint held by more than max(MIN_COMMON, common_share * N) counts nothing
COMMON_SHARE = 0.05
COURSE_SHARE = 0.8      # a unit is "from the course's code" when this share of its fingerprints is there
COURSE_MIN_FINGERPRINTS = 25   # ... and it has at least this many (after removing the skeleton)
MAX_SOURCE_CHARS = 400_000     # a submission's definitions beyond this are not compared (say so)


GIVEN_K = 8             # a run of this many tokens found in the released notebook is given code
GIVEN_SHARE = 0.5       # a fingerprint with more given tokens than this share is not evidence

_BUILTINS = frozenset(dir(builtins))
_CODE_STRING = re.compile(r"[\w,.\->]{1,30}")


# ------------------------------------------------------------------------------------ units
class Token(NamedTuple):     # (a tuple: hundreds of thousands of them cross process boundaries cheaply)
    text: str           # the normalised token
    start: int          # character offsets of the original token in the unit's source
    end: int


@dataclass(frozen=True)
class Unit:
    """One definition: its name, its original source and its normalised tokens."""

    name: str
    source: str
    graded: bool
    tokens: tuple[Token, ...]
    label: str = ""     # where course code comes from ("solutions/gmm", "theory.py")


@dataclass
class Code:
    """What is compared of one submission."""

    student: str
    units: list[Unit] = field(default_factory=list)
    problem: str = ""   # why some or all of it could not be compared


def aliases_of(sources: list[str]) -> dict[str, str]:
    """{name bound by an import: the dotted name it stands for} for top-level import statements."""
    out: dict[str, str] = {}
    for source in sources:
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        out[a.asname] = a.name
                    else:
                        root = a.name.split(".")[0]
                        out[root] = root
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for a in node.names:
                    if a.name != "*":
                        out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _bound_names_and_docstrings(tree: ast.AST) -> tuple[set[str], set[int]]:
    """Names a definition binds itself (parameters, assignments, loop variables, ...), and the
    lines of its docstrings (one walk over the tree)."""
    names: set[str] = set()
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if not isinstance(node.ctx, ast.Load):
                names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)):
            if not isinstance(node, ast.Module):
                names.add(node.name)
            first = node.body[0] if node.body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) \
                    and isinstance(first.value.value, str):
                lines.update(range(first.lineno, first.end_lineno + 1))
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            names.update(node.names)
    return names, lines


def normalise(source: str, aliases: dict[str, str]) -> tuple[Token, ...]:
    """The normalised tokens of one definition (see the module's docstring). Never raises."""
    try:
        tree = ast.parse(source)
        bound, docstrings = _bound_names_and_docstrings(tree)
        raw = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (SyntaxError, ValueError, RecursionError, MemoryError, tokenize.TokenError, IndentationError):
        return ()
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))

    def offset(row: int, col: int) -> int:
        return starts[row - 1] + col if row - 1 < len(starts) else len(source)

    out: list[Token] = []
    depth = 0
    previous, previous_kind = "", None
    parens: list[bool] = []          # for each open "(": is it a call's?
    for i, tok in enumerate(raw):
        kind, text = tok.type, tok.string
        start, end = offset(*tok.start), offset(*tok.end)
        if kind in (tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER):
            continue
        if kind == tokenize.STRING and tok.start[0] in docstrings:
            continue
        if kind == tokenize.NEWLINE:
            if out and out[-1].text not in (";", "{", "}"):   # (a skipped docstring leaves nothing)
                out.append(Token(";", start, start))
            previous, previous_kind = ";", tokenize.OP
            continue
        if kind == tokenize.INDENT:
            out.append(Token("{", start, start))
            continue
        if kind == tokenize.DEDENT:
            out.append(Token("}", start, start))
            continue
        if kind == tokenize.OP:
            depth += text in "([{"
            depth -= text in ")]}"
            if text == "(":
                # grouping and tuple parentheses are formatting ((a @ b) / c, return (x, y)): dropped;
                # the parentheses of a call or a definition stay
                calls = previous_kind in (tokenize.NAME, tokenize.STRING) and not keyword.iskeyword(previous) \
                    or previous in (")", "]")
                parens.append(calls)
                if not calls:
                    previous, previous_kind = text, kind
                    continue
            elif text == ")" and parens and not parens.pop():
                previous, previous_kind = text, kind
                continue
            out.append(Token(text, start, end))
        elif kind == tokenize.STRING:
            # a short word-like string is code ("nc,cnd->cd" for einsum, "fro", "C"); a message is not
            body = text.lstrip("rbuRBU").strip("'\"")
            out.append(Token(f"'{body}'" if _CODE_STRING.fullmatch(body) else "S", start, end))
        elif kind == tokenize.NAME:
            following = raw[i + 1].string if i + 1 < len(raw) else ""
            if keyword.iskeyword(text) or (previous == "." and previous_kind == tokenize.OP):
                out.append(Token(text, start, end))
            elif depth > 0 and following == "=":          # a keyword argument's name
                out.append(Token(text, start, end))
            elif text in aliases and text not in bound:
                parts = aliases[text].split(".")
                for j, part in enumerate(parts):
                    if j:
                        out.append(Token(".", start, end))
                    out.append(Token(part, start, end))
            elif text in _BUILTINS and text not in bound:
                out.append(Token(text, start, end))
            else:
                out.append(Token("V", start, end))
        else:                                             # NUMBER, ERRORTOKEN, ...
            out.append(Token(text, start, end))
        previous, previous_kind = text, kind
    return tuple(out)


def units_from_submission(submission, tasks: set[str], student: str = "") -> Code:
    """The units of a loaded ``autograder.loading.Submission`` (the last definition of a name wins,
    as when the notebook runs top to bottom)."""
    code = Code(student or submission.path)
    if submission.error:
        code.problem = submission.error
        return code
    sources = [s.source for s in submission.statements]
    if sum(map(len, sources)) > MAX_SOURCE_CHARS:
        code.problem = f"more than {MAX_SOURCE_CHARS} characters of definitions: not compared"
        return code
    aliases = aliases_of([s.source for s in submission.statements if s.source.startswith(("import", "from"))])
    latest: dict[str, str] = {}
    for statement in submission.statements:
        if statement.source.startswith(("def ", "async def ", "class ", "@")) and len(statement.defines) == 1:
            latest.pop(statement.defines[0], None)
            latest[statement.defines[0]] = statement.source
    for name, source in latest.items():
        code.units.append(Unit(name, source, name in tasks, normalise(source, aliases)))
    return code


def units_from_module(source: str, label: str) -> list[Unit]:
    """Every function (at any depth) of a module's source, e.g. the course's public code."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    aliases = aliases_of([source])
    lines = source.splitlines(keepends=True)
    units = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            text = "".join(lines[first - 1:node.end_lineno])
            indent = len(text) - len(text.lstrip(" "))
            text = "".join(line[indent:] if line[:indent].isspace() else line
                           for line in text.splitlines(keepends=True))
            units.append(Unit(node.name, text, False, normalise(text, aliases), label))
    return units


# ------------------------------------------------------------------------------------ fingerprints
def _hash(texts) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(texts).encode(), digest_size=8).digest(), "big")


def fingerprints(unit: Unit, k: int = K) -> dict[int, list[int]]:
    """{fingerprint: [first token index, ...]} of a unit's k-grams (nothing when it is shorter)."""
    texts = [t.text for t in unit.tokens]
    out: dict[int, list[int]] = defaultdict(list)
    for i in range(len(texts) - k + 1):
        out[_hash(texts[i:i + k])].append(i)
    return out


def own_fingerprints(unit: Unit, given: set[int], k: int = K) -> dict[int, list[int]]:
    """``fingerprints`` without the k-grams that touch given code: a token is given when it lies
    in a run of ``GIVEN_K`` tokens that the released notebook has too (its signature, a skeleton
    line), so a fingerprint is evidence only of what the student wrote."""
    texts = [t.text for t in unit.tokens]
    covered = [0] * (len(texts) + 1)            # prefix counts of given tokens
    marks = [False] * len(texts)
    for i in range(len(texts) - GIVEN_K + 1):
        if _hash(texts[i:i + GIVEN_K]) in given:
            marks[i:i + GIVEN_K] = [True] * GIVEN_K
    for i, mark in enumerate(marks):
        covered[i + 1] = covered[i] + mark
    out: dict[int, list[int]] = defaultdict(list)
    for i in range(len(texts) - k + 1):
        if covered[i + k] - covered[i] <= GIVEN_SHARE * k:
            out[_hash(texts[i:i + k])].append(i)
    return out


def fingerprint_set(units: list[Unit], k: int = K) -> set[int]:
    out: set[int] = set()
    for unit in units:
        out.update(fingerprints(unit, k))
    return out


# ------------------------------------------------------------------------------------ analysis
@dataclass
class Region:
    """A maximal run of tokens of one unit covered by shared fingerprints."""

    unit: int           # index into Code.units
    start: int          # character offsets in the unit's source
    end: int
    rare: bool          # covered by fingerprints that count (False: only common ones)


@dataclass
class Pair:
    a: int              # indices into the codes
    b: int
    score: float
    shared_tokens: dict[str, int]        # per side ("a"/"b"): tokens covered by counting fingerprints
    overlap: tuple[float, float]         # share of each side's compared tokens covered by them
    functions: list[tuple[str, str, float]] = field(default_factory=list)   # (unit a, unit b, evidence)
    regions: tuple[list[Region], list[Region]] = field(default_factory=lambda: ([], []))


@dataclass
class CourseMatch:
    student: int
    unit: str
    share: float        # of the unit's fingerprints found in the course's code
    source: str         # the course unit it matches best ("solutions/gmm: E_step")
    fingerprints: int
    regions: list[Region] = field(default_factory=list)
    course_source: str = ""   # the text of the course unit it matches best


@dataclass
class Analysis:
    codes: list[Code]
    pairs: list[Pair]                 # reported pairs (score >= threshold), best first
    course: list[CourseMatch]         # units copied from the course's own code, best first
    threshold: float
    k: int
    common_limit: int
    scores: list[float] = field(default_factory=list)   # every student's best pair score (histogram)
    pair_scores: dict = field(default_factory=dict)     # {(a, b): score} of every pair with any evidence


def analyse(codes: list[Code], skeleton: list[Unit], course: list[Unit], *, k: int = K,
            threshold: float = THRESHOLD, common_share: float = COMMON_SHARE) -> Analysis:
    """Pairs of submissions sharing uncommon code, and units that match the course's code."""
    given = fingerprint_set(skeleton, GIVEN_K)
    course_prints: dict[int, set[str]] = defaultdict(set)
    course_text = {f"{unit.label}: {unit.name}": unit.source for unit in course}
    for unit in course:
        for h in own_fingerprints(unit, given, k):
            course_prints[h].add(f"{unit.label}: {unit.name}")
    per_code: list[dict[int, list[tuple[int, int]]]] = []   # fingerprint -> [(unit, token index)]
    for code in codes:
        prints: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for u, unit in enumerate(code.units):
            for h, where in own_fingerprints(unit, given, k).items():
                prints[h].extend((u, i) for i in where)
        per_code.append(prints)
    holders: dict[int, list[int]] = defaultdict(list)
    for c, prints in enumerate(per_code):
        for h in prints:
            if h not in course_prints:
                holders[h].append(c)
    limit = max(MIN_COMMON, int(common_share * len(codes)))
    totals: dict[tuple[int, int], float] = defaultdict(float)
    for h, who in holders.items():
        if 2 <= len(who) <= limit:
            weight = 1.0 / (len(who) - 1)
            for a, b in itertools.combinations(who, 2):
                totals[a, b] += weight
    best = [0.0] * len(codes)
    for (a, b), score in totals.items():
        best[a], best[b] = max(best[a], score), max(best[b], score)
    pairs = [_pair(a, b, score, codes, per_code, holders, limit, k)
             for (a, b), score in totals.items() if score >= threshold]
    pairs.sort(key=lambda p: (-p.score, codes[p.a].student, codes[p.b].student))
    matches = _course_matches(codes, per_code, course_prints, course_text, k)
    return Analysis(codes, pairs, matches, threshold, k, limit, [round(s, 1) for s in best], dict(totals))


def _pair(a: int, b: int, score: float, codes, per_code, holders, limit: int, k: int) -> Pair:
    shared = per_code[a].keys() & per_code[b].keys()
    counting = {h for h in shared if h in holders and len(holders[h]) <= limit}
    common = shared - counting
    sides = []
    for side in (a, b):
        rare = _regions(codes[side], per_code[side], counting, k)
        faint = [replace(r, rare=False) for r in _regions(codes[side], per_code[side], common, k)]
        sides.append((rare, faint))
    evidence: dict[tuple[str, str], float] = defaultdict(float)
    for h in counting:
        weight = 1.0 / (len(holders[h]) - 1)
        ua = {codes[a].units[u].name for u, _ in per_code[a][h]}
        ub = {codes[b].units[u].name for u, _ in per_code[b][h]}
        for name_a in sorted(ua):   # (sorted: a set's order follows PYTHONHASHSEED, the report must not)
            for name_b in sorted(ub):
                evidence[name_a, name_b] += weight / (len(ua) * len(ub))
    functions = sorted(((x, y, round(e, 1)) for (x, y), e in evidence.items() if e >= 1),
                       key=lambda f: (-f[2], f[0], f[1]))
    tokens = [_token_count(codes[side], rare) for side, (rare, _) in zip((a, b), sides)]
    total = [sum(len(u.tokens) for u in codes[side].units) or 1 for side in (a, b)]
    regions = tuple(sorted(rare + [r for r in faint if not _inside(r, rare)], key=lambda r: (r.unit, r.start))
                    for rare, faint in sides)
    return Pair(a, b, round(score, 1), {"a": tokens[0], "b": tokens[1]},
                (round(tokens[0] / total[0], 3), round(tokens[1] / total[1], 3)), functions, regions)


def _inside(region: Region, others: list[Region]) -> bool:
    return any(o.unit == region.unit and o.start <= region.start and region.end <= o.end for o in others)


def _token_count(code: Code, regions: list[Region]) -> int:
    count = 0
    for r in regions:
        count += sum(1 for t in code.units[r.unit].tokens if r.start <= t.start and t.end <= r.end and t.end > t.start)
    return count


def _regions(code: Code, prints, selected, k: int) -> list[Region]:
    """Character ranges of each unit covered by the k-grams of the selected fingerprints."""
    covered: dict[int, set[int]] = defaultdict(set)
    for h in selected:
        for u, i in prints.get(h, ()):
            covered[u].update(range(i, i + k))
    out = []
    for u, indices in covered.items():
        tokens = code.units[u].tokens
        run: list[int] = []
        for i in sorted(indices) + [None]:
            if i is not None and run and i == run[-1] + 1:
                run.append(i)
                continue
            if run:
                spans = [(tokens[j].start, tokens[j].end) for j in run if j < len(tokens) and tokens[j].end > tokens[j].start]
                if spans:
                    out.append(Region(u, min(s for s, _ in spans), max(e for _, e in spans), True))
            run = [i] if i is not None else []
    return out


def _course_matches(codes, per_code, course_prints, course_text, k: int) -> list[CourseMatch]:
    out = []
    for c, (code, prints) in enumerate(zip(codes, per_code)):
        by_unit: dict[int, set[int]] = defaultdict(set)
        for h, where in prints.items():
            for u, _ in where:
                by_unit[u].add(h)
        for u, own in by_unit.items():
            if len(own) < COURSE_MIN_FINGERPRINTS:
                continue
            hits = [h for h in own if h in course_prints]
            share = len(hits) / len(own)
            if share >= COURSE_SHARE:
                votes: dict[str, int] = defaultdict(int)
                for h in hits:
                    for label in course_prints[h]:
                        votes[label] += 1
                source = max(sorted(votes), key=votes.get)
                regions = [r for r in _regions(code, prints, set(hits), k) if r.unit == u]
                out.append(CourseMatch(c, code.units[u].name, round(share, 3), source, len(own), regions,
                                       course_text.get(source, "")))
    out.sort(key=lambda m: (-m.share, codes[m.student].student, m.unit))
    return out


# ------------------------------------------------------------------------------------ inputs
def code_of_file(student: str, data: bytes | None, suffix: str, tasks: set[str], label: str = "") -> Code:
    """The units of one submission file's bytes (read by the loader the grader uses)."""
    from ..loading import load_submission_bytes
    if data is None:
        return Code(student, problem="the file could not be read")
    return units_from_submission(load_submission_bytes(data, suffix, label or student), tasks, student)


def skeleton_units(assignment_id: str, root=None) -> list[Unit]:
    """What every student received: the code cells of the released notebook."""
    from ..engine.reference import course_root
    from ..loading import load_submission
    root = root or course_root()
    release = root / "course" / assignment_id / f"{assignment_id}.ipynb" if root else None
    if release is None or not release.is_file():
        return []
    return units_from_submission(load_submission(release), set()).units


def course_units(assignment_id: str, root=None) -> list[Unit]:
    """The course's own public code: the reference solution and the package's assignment modules."""
    from pathlib import Path

    from ..engine.reference import course_root
    root = root or course_root()
    package = Path(__file__).resolve().parents[1]
    files = []
    if root is not None:
        files += [(p, f"solutions/{p.parent.name}") for p in sorted((root / "solutions").glob("*/__init__.py"))]
    files += [(p, str(p.relative_to(package.parent))) for p in sorted((package / "assignments").rglob("*.py"))]
    units = []
    for path, label in files:
        try:
            units += units_from_module(path.read_text(encoding="utf-8"), label)
        except (OSError, UnicodeDecodeError):
            continue
    return units


# ------------------------------------------------------------------------------------ a batch's files
PARALLEL_WORKERS = 2
PARALLEL_FROM = 60      # files from which reading and tokenising (most of the time) runs in processes


def analyse_files(files: list[tuple[str, bytes | None, str]], assignment, *, threshold: float | None = None,
                  root=None) -> Analysis:
    """Similarity of submission files [(student, bytes or None, suffix)] of ``assignment``."""
    tasks = {t.name for t in assignment.tasks}
    workers = min(PARALLEL_WORKERS, os.cpu_count() or 1)
    if len(files) >= PARALLEL_FROM and workers > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            codes = list(pool.map(_code_of, files, [tasks] * len(files), chunksize=8))
    else:
        codes = [_code_of(file, tasks) for file in files]
    options = {} if threshold is None else {"threshold": threshold}
    return analyse(codes, skeleton_units(assignment.id, root), course_units(assignment.id, root), **options)


def _code_of(file: tuple[str, bytes | None, str], tasks: set[str]) -> Code:
    student, data, suffix = file
    return code_of_file(student, data, suffix, tasks)
