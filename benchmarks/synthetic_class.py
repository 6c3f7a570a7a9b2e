"""A generated ``gmm`` class with planted copies: the ground truth for the similarity report.

Independent submissions are composed function by function from the corpus
(``tests/corpora/gmm/correct``: four authors' styles, loops, vectorised, Cholesky, triangular
solves; and ``mutants``: single-bug versions of them), each function with the
helpers and constants it uses, then varied site by site the way different people write the same
idea: ``x.sum(axis=1)`` / ``np.sum(x, axis=1)`` / ``np.sum(x, 1)``, ``x[:, None]`` /
``x[:, np.newaxis]``, ``a @ b`` / ``np.matmul(a, b)``, ``x ** 2`` / ``x * x``, operand order,
``a /= b`` / ``a = a / b``, a sub-expression kept in a variable, two independent statements
swapped; plus each student's own names and comments. Many of these submissions share whole
stretches (the same author's function with few changes), so the class is *more* alike than a
real one: a hard case for false positives.

Planted copies take one independent submission and disguise it:

=================  ==============================================================================
``renamed``        every variable and helper renamed
``reordered``      the functions in another order
``comments``       comments and docstrings removed, others written
``reformatted``    re-printed (``ast.unparse``: other line breaks, parentheses, quotes)
``split_cells``    a notebook, each definition in its own cell, the imports spread over cells
``one_of_five``    an independent submission with one of the five EM functions copied in
``disguised``      renamed + reordered + comments + a few of the variations above
``answer_key``     one to three functions pasted from the reference solution (renamed): the
                   "matches the course's code" flag must find them
=================  ==============================================================================

``python benchmarks/synthetic_class.py OUT [--n 300] [--copies 6] [--seed 0]`` writes the files
and ``OUT/truth.json`` (``{"pairs": [[a, b, kind], ...], "course": {student: [functions]}}``).
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpora" / "gmm"
AUTHORS = ("a_loops_scipy", "b_vectorised", "c_cholesky", "e_skeleton_triangular")
FIVE = ("E_step", "M_step", "compute_vlb", "log_likelihood", "train_EM")
KINDS = ("renamed", "reordered", "comments", "reformatted", "split_cells", "one_of_five", "disguised")
_NAMES = ("tmp", "val", "res", "acc", "out", "part", "term", "cur", "aux", "buf", "work", "piece")
_STYLES = [lambda n, i: n, lambda n, i: f"{n}_", lambda n, i: f"my_{n}", lambda n, i: f"{n}{i}",
           lambda n, i: n.upper() if len(n) <= 2 else n.capitalize(), lambda n, i: f"v_{n}"]
_RANDOM = {"choice", "normal", "standard_normal", "dirichlet", "random", "permutation", "rand", "randn",
           "uniform", "integers", "shuffle", "randint", "multivariate_normal"}
_COMMENTS = ("# compute it", "# vectorised", "# see lecture notes", "# careful with shapes here",
             "# TODO: check", "# numerically stable", "# as in the slides", "# log domain")


# ------------------------------------------------------------------------------------ the pool
def _module_code(path: Path) -> str:
    if path.suffix == ".py":
        return path.read_text()
    sys.path.insert(0, str(ROOT))
    from autograder.loading import load_submission
    return "\n\n".join(s.source for s in load_submission(path).statements)


class Author:
    """One corpus file: its definitions, constants and imports."""

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        tree = ast.parse(source)
        self.imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        self.functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
        self.constants = {t.id: n for n in tree.body if isinstance(n, ast.Assign)
                          for t in n.targets if isinstance(t, ast.Name)}

    def closure(self, name: str) -> tuple[list[ast.FunctionDef], list[ast.Assign]]:
        """The function, the helpers it calls (transitively) and the constants they use."""
        functions, constants, todo = {}, {}, [name]
        while todo:
            current = todo.pop()
            if current in functions:
                continue
            functions[current] = self.functions[current]
            for node in ast.walk(self.functions[current]):
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                    if node.id in self.functions and node.id != current and node.id not in FIVE + ("E_step_diag",):
                        todo.append(node.id)
                    elif node.id in self.constants:
                        constants[node.id] = self.constants[node.id]
        return list(functions.values()), list(constants.values())


def pool() -> tuple[list[Author], dict[str, list[tuple[Author, str]]], list[str]]:
    """(authors, {function: [(author, function), ...]}, task names)."""
    sys.path.insert(0, str(ROOT))
    from autograder.assignments import get_assignment
    tasks = [t.name for t in get_assignment("gmm").tasks]
    # The corpus's independent authors. Its other correct files are one engineer's variants of
    # calling styles and types (and b in a notebook): not independent people, so not in the pool.
    authors = [Author(stem, _module_code(CORPUS / "correct" / f"{stem}.py")) for stem in AUTHORS]
    choices: dict[str, list[tuple[Author, str]]] = {t: [(a, t) for a in authors if t in a.functions] for t in tasks}
    for path in sorted((CORPUS / "mutants").glob("*.py")):
        text = path.read_text()
        made_from = re.search(r"^# \(mutant of correct/(\w+)\.\w+\)", text, re.M)
        if made_from and made_from.group(1) not in AUTHORS:
            continue    # a variant's mutant: the same engineer again
        broken = text.splitlines()[0].removeprefix("# breaks: ").strip()
        author = Author(f"mutant:{path.stem}", text)
        if broken in author.functions:
            choices[broken].append((author, broken))
    return authors, choices, tasks


# ------------------------------------------------------------------------------------ variations
class Vary(ast.NodeTransformer):
    """Rewrites each variation site with probability ``p`` (see the module's docstring)."""

    METHODS = {"sum", "mean", "max", "min"}

    def __init__(self, rng: random.Random, p: float) -> None:
        self.rng, self.p = rng, p

    def flip(self) -> bool:
        return self.rng.random() < self.p

    def visit_Call(self, node):
        self.generic_visit(node)
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr in self.METHODS and not _is_np(f.value) and self.flip():
            if len(node.args) == 1 and not node.keywords:          # x.sum(1) -> x.sum(axis=1)
                return ast.Call(f, [], [ast.keyword("axis", node.args[0])])
            return ast.Call(ast.Attribute(ast.Name("np", ast.Load()), f.attr, ast.Load()), [f.value, *node.args],
                            node.keywords)                         # x.sum(...) -> np.sum(x, ...)
        if isinstance(f, ast.Attribute) and _is_np(f.value) and f.attr in self.METHODS and node.args \
                and isinstance(node.args[0], (ast.BinOp, ast.Subscript, ast.Attribute)) and self.flip():
            return ast.Call(ast.Attribute(node.args[0], f.attr, ast.Load()), node.args[1:], node.keywords)
        return node

    def visit_BinOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, (ast.Add, ast.Mult)) and self.flip():
            return ast.BinOp(node.right, node.op, node.left)
        if isinstance(node.op, ast.MatMult) and self.flip():
            return ast.Call(ast.Attribute(ast.Name("np", ast.Load()), "matmul", ast.Load()), [node.left, node.right], [])
        if isinstance(node.op, ast.Pow) and isinstance(node.right, ast.Constant) and node.right.value == 2 \
                and isinstance(node.left, ast.Name) and self.flip():
            return ast.BinOp(node.left, ast.Mult(), copy.deepcopy(node.left))
        return node

    def visit_Subscript(self, node):
        self.generic_visit(node)
        parts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        for i, part in enumerate(parts):
            if isinstance(part, ast.Constant) and part.value is None and self.flip():
                parts[i] = ast.Attribute(ast.Name("np", ast.Load()), "newaxis", ast.Load())
        return node

    def visit_AugAssign(self, node):
        self.generic_visit(node)
        if isinstance(node.target, ast.Name) and self.flip():
            return ast.Assign([ast.Name(node.target.id, ast.Store())],
                              ast.BinOp(ast.Name(node.target.id, ast.Load()), node.op, node.value))
        return node

    def visit_FunctionDef(self, node):
        self.generic_visit(node)
        node.body = self._statements(node.body)
        return node

    def visit_For(self, node):
        self.generic_visit(node)
        node.body = self._statements(node.body)
        return node

    def _statements(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for statement in body:
            hoisted = self._hoist(statement) if self.rng.random() < self.p / 2 else None
            out.extend(hoisted or [statement])
        for i in range(len(out) - 1):          # swap independent neighbouring assignments
            a, b = out[i], out[i + 1]
            if isinstance(a, ast.Assign) and isinstance(b, ast.Assign) and _independent(a, b) and self.flip():
                out[i], out[i + 1] = b, a
        return out

    def _hoist(self, statement: ast.stmt):
        """``y = f(g(x)) + 1`` -> ``tmp = g(x)`` / ``y = f(tmp) + 1``: a sub-expression in a variable."""
        if not isinstance(statement, (ast.Assign, ast.Return)) or statement.value is None:
            return None
        value = statement.value
        # only an operand of the statement's own arithmetic: never inside a comprehension, lambda,
        # conditional or boolean expression (where evaluating it earlier changes the program)
        calls = [n for n in (value.left, value.right) if isinstance(n, ast.Call)] if isinstance(value, ast.BinOp) else []
        if not calls:
            return None
        target = self.rng.choice(calls)
        name = self.rng.choice(_NAMES)
        holder = copy.deepcopy(target)

        class Swap(ast.NodeTransformer):
            def generic_visit(self, node):
                if node is target:
                    return ast.Name(name, ast.Load())
                return super().generic_visit(node)

        Swap().visit(statement)
        return [ast.Assign([ast.Name(name, ast.Store())], holder), statement]


def _is_np(node) -> bool:
    return isinstance(node, ast.Name) and node.id in ("np", "numpy")


def _independent(a: ast.Assign, b: ast.Assign) -> bool:
    def names(node):
        return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    wa, wb = set().union(*map(names, a.targets)), set().union(*map(names, b.targets))
    ra, rb = names(a.value), names(b.value)
    drawn = any(isinstance(n, ast.Attribute) and n.attr in _RANDOM for n in ast.walk(a)) \
        and any(isinstance(n, ast.Attribute) and n.attr in _RANDOM for n in ast.walk(b))
    return not (wa & (rb | wb)) and not (wb & ra) and not drawn


class Rename(ast.NodeTransformer):
    """Consistent renaming of local variables (parameters and graded names are kept)."""

    def __init__(self, mapping) -> None:
        self.mapping = mapping

    def visit_Name(self, node):
        node.id = self.mapping(node.id)
        return node

    def visit_FunctionDef(self, node):
        node.name = self.mapping(node.name)
        self.generic_visit(node)
        return node


def _local_renamer(rng: random.Random, keep: set[str], style=None):
    style = style or rng.choice(_STYLES)
    table: dict[str, str] = {}

    def mapping(name: str) -> str:
        if name in keep or name.startswith("__"):
            return name
        if name not in table:
            table[name] = style(name, len(table))
        return table[name]
    return mapping


def _kept_names(functions: list[ast.FunctionDef], tasks: list[str], imports) -> set[str]:
    import builtins
    keep = set(tasks) | set(dir(builtins))
    for node in imports:
        for a in node.names:
            keep.add((a.asname or a.name).split(".")[0])
    for f in functions:
        keep |= {a.arg for a in f.args.args + f.args.kwonlyargs}
    keep.add("np")
    return keep


# ------------------------------------------------------------------------------------ submissions
class Submission:
    """A composed submission: imports, constants and functions (ASTs), written as .py or .ipynb."""

    def __init__(self, imports, constants, functions) -> None:
        self.imports, self.constants, self.functions = imports, constants, functions

    def copy(self) -> "Submission":
        return copy.deepcopy(self)

    def python(self, comments: random.Random | None = None) -> str:
        parts = ["\n".join(dict.fromkeys(ast.unparse(n) for n in self.imports))]
        parts += [ast.unparse(n) for n in self.constants]
        for f in self.functions:
            text = ast.unparse(f)
            if comments is not None:
                lines = text.splitlines()
                for _ in range(comments.randint(1, 3)):
                    at = comments.randrange(1, len(lines)) if len(lines) > 1 else 1
                    indent = len(lines[at - 1]) - len(lines[at - 1].lstrip()) if at > 0 else 0
                    indent = max(indent, 4)
                    lines.insert(at, " " * indent + comments.choice(_COMMENTS))
                text = "\n".join(lines)
            parts.append(text)
        return "\n\n\n".join(parts) + "\n"


def compose(rng: random.Random, choices, tasks, p: float) -> Submission:
    imports, constants, functions, seen = [ast.parse("import numpy as np").body[0]], [], [], set()
    for task in tasks:
        author, name = rng.choice(choices[task])
        fs, cs = author.closure(name)
        for node in author.imports:
            key = ast.unparse(node)
            if key not in seen:
                seen.add(key)
                imports.append(copy.deepcopy(node))
        for c in cs:
            if ast.unparse(c) not in seen:
                seen.add(ast.unparse(c))
                constants.append(copy.deepcopy(c))
        for f in fs:
            if f.name != task and any(g.name == f.name for g in functions):
                continue   # a helper of the same name already there (same author): share it
            functions.append(copy.deepcopy(f))
    sub = Submission(imports, constants, functions)
    vary = Vary(rng, p)
    sub.functions = [ast.fix_missing_locations(vary.visit(f)) for f in sub.functions]
    keep = _kept_names(sub.functions, tasks, sub.imports) | {t.id for c in constants for t in c.targets}
    renamer = Rename(_local_renamer(rng, keep | {f.name for f in sub.functions}))
    sub.functions = [renamer.visit(f) for f in sub.functions]
    return sub


def _strip_docstrings(sub: Submission) -> None:
    for f in sub.functions:
        for node in ast.walk(f):
            if isinstance(node, ast.FunctionDef) and node.body and isinstance(node.body[0], ast.Expr) \
                    and isinstance(node.body[0].value, ast.Constant) and isinstance(node.body[0].value.value, str):
                node.body = node.body[1:] or [ast.Pass()]


def disguise(rng: random.Random, source: Submission, kind: str, tasks, choices, p: float) -> tuple[Submission, dict]:
    """A copy of ``source`` disguised as ``kind``; returns it and how to write it."""
    sub = source.copy()
    how = {"comments": None, "notebook": False}
    keep = _kept_names(sub.functions, tasks, sub.imports) | {t.id for c in sub.constants for t in c.targets}
    if kind in ("renamed", "disguised"):
        renamer = Rename(_local_renamer(rng, keep, style=lambda n, i: f"{rng.choice(_NAMES)}_{i}"))
        sub.functions = [renamer.visit(f) for f in sub.functions]
    if kind in ("reordered", "disguised"):
        rng.shuffle(sub.functions)
    if kind in ("comments", "disguised"):
        _strip_docstrings(sub)
        how["comments"] = random.Random(rng.random())
    if kind == "disguised":
        vary = Vary(rng, p / 4)
        sub.functions = [ast.fix_missing_locations(vary.visit(f)) for f in sub.functions]
    if kind == "split_cells":
        how["notebook"] = True
    if kind == "one_of_five":
        own = compose(rng, choices, tasks, p)
        name = rng.choice(FIVE)
        copied = next(f for f in sub.functions if f.name == name)
        helpers = {n.id for n in ast.walk(copied) if isinstance(n, ast.Name)}
        extra = [f for f in sub.functions if f.name in helpers and f.name not in tasks]
        own.functions = [f for f in own.functions if f.name != name] + extra + [copied]
        own.imports += [i for i in sub.imports if ast.unparse(i) not in {ast.unparse(j) for j in own.imports}]
        own.constants += [c for c in sub.constants if ast.unparse(c) not in {ast.unparse(j) for j in own.constants}]
        how["copied"] = name
        return own, how
    return sub, how


def answer_key(rng: random.Random, choices, tasks, p: float) -> tuple[Submission, list[str]]:
    """An independent submission with 1-3 of the five functions pasted from the reference."""
    own = compose(rng, choices, tasks, p)
    reference = Author("reference", (ROOT / "solutions" / "gmm" / "__init__.py").read_text())
    names = rng.sample(FIVE, rng.randint(1, 3))
    keep = _kept_names(own.functions, tasks, own.imports + reference.imports)
    renamer = Rename(_local_renamer(rng, keep))
    for name in names:
        fs, cs = reference.closure(name)
        fs = [renamer.visit(copy.deepcopy(f)) for f in fs]
        own.functions = [f for f in own.functions if f.name != name] + fs
        own.constants += [copy.deepcopy(c) for c in cs]
    own.imports += [copy.deepcopy(n) for n in reference.imports if "autograder" not in ast.unparse(n)]
    return own, names


def _notebook(sub: Submission, rng: random.Random) -> str:
    import nbformat
    cells = [nbformat.v4.new_markdown_cell("# EM for Gaussian mixtures")]
    imports = [ast.unparse(n) for n in sub.imports]
    half = max(1, len(imports) // 2)
    cells.append(nbformat.v4.new_code_cell("\n".join(imports[:half])))
    cells.append(nbformat.v4.new_code_cell("\n".join(imports[half:] + [ast.unparse(c) for c in sub.constants])))
    for f in sub.functions:
        cells.append(nbformat.v4.new_code_cell(ast.unparse(f)))
        if rng.random() < 0.3:
            cells.append(nbformat.v4.new_code_cell(f"print({f.name!r}, 'done')"))
    return nbformat.writes(nbformat.v4.new_notebook(cells=cells))


def _write(folder: Path, student: str, sub: Submission, how: dict, rng: random.Random) -> None:
    if how.get("notebook"):
        (folder / f"{student}.ipynb").write_text(_notebook(sub, rng))
    else:
        text = sub.python(how.get("comments"))
        if how.get("reformat"):
            text = "\n\n".join(ast.unparse(n) for n in ast.parse(text).body) + "\n"
        (folder / f"{student}.py").write_text(text)


def generate(folder: str | Path, n: int = 300, copies: int = 6, keys: int = 8, seed: int = 0,
             p: float = 0.5) -> dict:
    """Write ``n`` independent submissions plus ``copies`` planted copies of every kind and ``keys``
    answer-key copies into ``folder``; returns (and writes to truth.json) the ground truth."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    _, choices, tasks = pool()
    independent = {}
    for i in range(n):
        student = f"s{i:03d}"
        independent[student] = compose(rng, choices, tasks, p)
        _write(folder, student, independent[student], {"comments": random.Random(rng.random())}, rng)
    truth = {"pairs": [], "course": {}, "n": n}
    sources = rng.sample(sorted(independent), copies * len(KINDS))
    count = 0
    for kind in KINDS:
        for _ in range(copies):
            source = sources[count]
            student = f"s{n + count:03d}"
            count += 1
            sub, how = disguise(rng, independent[source], kind, tasks, choices, p)
            how["reformat"] = kind == "reformatted"
            if kind == "reformatted":
                how["comments"] = None
            _write(folder, student, sub, how, rng)
            truth["pairs"].append([source, student, kind if kind != "one_of_five" else f"one_of_five:{how['copied']}"])
    for j in range(keys):
        student = f"s{n + count + j:03d}"
        sub, names = answer_key(rng, choices, tasks, p)
        _write(folder, student, sub, {"comments": random.Random(rng.random())}, rng)
        truth["course"][student] = names
    (folder / "truth.json").write_text(json.dumps(truth, indent=1))
    return truth


DEMO_NAMES = ("ada", "alan", "barbara", "donald", "edsger", "frances", "grace", "john")


def _base_of(mutant: Author, authors: list[Author]) -> Author | None:
    """The corpus author a mutant was made from: the one sharing most of its other functions."""
    def same(author):
        return sum(1 for name, f in mutant.functions.items()
                   if name in author.functions and ast.dump(f) == ast.dump(author.functions[name]))
    best = max(authors, key=same)
    return best if same(best) >= 3 else None


def demo(folder: str | Path, seed: int = 13) -> dict:
    """The small class of ``make demo``: one student per corpus author (each with one or two of the
    single-bug mutants made from that author's file, and varied), a renamed copy, a copy split over
    notebook cells, a disguised copy, and a submission pasted from the reference solution with one
    function left as the skeleton."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    authors, choices, tasks = pool()
    mutants = [(a, name) for options in choices.values() for a, name in options if a.name.startswith("mutant:")]
    names = iter(DEMO_NAMES)
    independent = {}
    for author in authors:
        own = [(m, name) for m, name in mutants if _base_of(m, authors) is author]
        picked = dict((name, m) for m, name in rng.sample(own, min(len(own), rng.randint(1, 2))))
        single = {task: [(picked.get(task, author), task)] for task in tasks if task in author.functions}
        student = next(names)
        independent[student] = compose(rng, single, [t for t in tasks if t in single], 0.5)
        _write(folder, student, independent[student], {"comments": random.Random(rng.random())}, rng)
    truth = {"pairs": [], "course": {}}
    for kind, source in (("renamed", "ada"), ("split_cells", "barbara"), ("disguised", "donald")):
        student = next(names)
        sub, how = disguise(rng, independent[source], kind, tasks, choices, 0.5)
        _write(folder, student, sub, how, rng)
        truth["pairs"].append([source, student, kind])
    student = next(names)
    reference = Author("reference", (ROOT / "solutions" / "gmm" / "__init__.py").read_text())
    keep = _kept_names(list(reference.functions.values()), tasks, reference.imports)
    renamer = Rename(_local_renamer(rng, keep | set(reference.functions)))
    functions = [renamer.visit(copy.deepcopy(f)) for name, f in reference.functions.items() if name != "train_EM"]
    functions.append(ast.parse("def train_EM(X, C, rtol=1e-3, max_iter=100, restarts=10):\n"
                               "    raise NotImplementedError()").body[0])
    imports = [copy.deepcopy(n) for n in reference.imports if "autograder" not in ast.unparse(n)]
    _write(folder, student, Submission(imports, list(reference.constants.values()), functions), {}, rng)
    truth["course"][student] = [f.name for f in functions if f.name != "train_EM"]
    return truth


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--copies", type=int, default=6)
    parser.add_argument("--keys", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--demo", action="store_true", help="the small class of `make demo` instead")
    args = parser.parse_args(argv)
    if args.demo:
        truth = demo(args.out)
        print(f"demo class in {args.out}: planted {truth}")
        return 0
    truth = generate(args.out, args.n, args.copies, args.keys, args.seed)
    print(f"{args.n} independent submissions, {len(truth['pairs'])} planted copies, "
          f"{len(truth['course'])} answer-key copies in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
