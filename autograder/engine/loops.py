"""Finding the Python-level loops a function runs, wherever the submission hides them.

The analysis is static (the grader never trusts what the student's process says about its own
code) and works on the submission's kept top-level statements (``Submission.statements``: its
imports, definitions and constant assignments). Starting from one function it computes the
closure of everything of the submission that function can reach:

* names it reads (helpers, aliases ``f = helper``, lambdas, containers ``{"e": helper}``,
  decorators, default values), resolved by Python's scoping rules (locals, enclosing
  functions, module, builtins; the last module-level binding wins, and a ``global`` statement
  adds its assignments);
* attributes: ``x.name`` reaches every member called ``name`` of the submission's classes
  (methods, properties, class attributes), whatever ``x`` is, and reaching a class by name
  reaches its special methods (``__init__``, ``__call__``, operators, ...) and its base classes;
* nested functions, lambdas and classes inside anything reached.

Everything reached is searched for loops: ``for``/``while``, comprehensions and generator
expressions, generators (``yield``), recursion (a cycle of references between functions, with
or without ``functools.lru_cache``), and library calls that run Python once per element
(``map``, ``filter``, ``functools.reduce``, ``itertools``, ``np.vectorize``, ``np.frompyfunc``,
``np.apply_along_axis``, ...), including a Python function or lambda handed to any library
callable that is not known to call it only once (``functools.partial`` and ``lru_cache`` are).
Code the analysis cannot follow (``eval``/``exec``/``compile`` of strings, ``globals()``,
``getattr`` with a computed name, ``__dict__``, ...) counts as suspicious.
"""

from __future__ import annotations

import ast
import builtins
import textwrap
from dataclasses import dataclass, field
from typing import Iterable, Sequence

# Library callables that call a Python function once per element (qualified names; a name ending
# in ".*" covers a whole module).
PER_ELEMENT = {
    "builtins.map": "map(), which calls Python once per element",
    "builtins.filter": "filter(), which calls Python once per element",
    "functools.reduce": "functools.reduce, which calls Python once per element",
    "itertools.*": "itertools, which runs Python one element at a time",
    "numpy.vectorize": "np.vectorize, which calls Python once per element",
    "numpy.frompyfunc": "np.frompyfunc, which calls Python once per element",
    "numpy.apply_along_axis": "np.apply_along_axis, which calls Python once per row",
    "numpy.apply_over_axes": "np.apply_over_axes, which calls Python once per axis",
    "numpy.piecewise": "np.piecewise, which calls Python functions piece by piece",
    "numpy.fromiter": "np.fromiter, which consumes a Python iterator one element at a time",
}
# numpy keeps these under several paths (np.lib.shape_base.apply_along_axis, ...): matched by the last name.
_NUMPY_PER_ELEMENT = {q.rsplit(".", 1)[1]: q for q in PER_ELEMENT if q.startswith("numpy.")}

# Code the analysis cannot follow.
DYNAMIC = {
    "builtins.eval": "eval() of a string",
    "builtins.exec": "exec() of a string",
    "builtins.compile": "compile() of a string",
    "builtins.globals": "globals() (a lookup by computed name)",
    "builtins.locals": "locals() (a lookup by computed name)",
    "builtins.vars": "vars() (a lookup by computed name)",
    "builtins.__import__": "__import__()",
    "builtins.setattr": "setattr() (code replaced at run time)",
    "builtins.delattr": "delattr()",
    "importlib.*": "importlib",
    "sys.modules": "sys.modules (a lookup by computed name)",
    "sys._getframe": "sys._getframe (a lookup by computed name)",
    "inspect.*": "inspect",
    "types.*": "the types module (functions built at run time)",
    "operator.attrgetter": "operator.attrgetter (a lookup by computed name)",
    "operator.methodcaller": "operator.methodcaller (a lookup by computed name)",
    "builtins.__builtins__": "__builtins__",
}
_DYNAMIC_ATTRIBUTES = {"__dict__", "__code__", "__globals__", "__builtins__", "__closure__", "__getattribute__",
                       "f_globals", "f_locals", "f_back", "__subclasses__"}

# Library callables known to call a function handed to them at most once per call (or not at all).
SAFE_HANDLERS = {
    "functools.partial", "functools.partialmethod", "functools.wraps", "functools.update_wrapper",
    "functools.lru_cache", "functools.cache", "functools.cached_property", "functools.singledispatch",
    "builtins.staticmethod", "builtins.classmethod", "builtins.property", "builtins.callable",
    "builtins.isinstance", "builtins.issubclass", "builtins.type", "builtins.print", "builtins.id",
    "builtins.hasattr", "builtins.repr", "builtins.str", "builtins.super", "builtins.hash",
    "dataclasses.dataclass", "typing.cast",
}

_FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_LOOP_KINDS = {
    ast.For: "a for loop", ast.AsyncFor: "a for loop", ast.While: "a while loop",
    ast.ListComp: "a list comprehension (a loop in disguise)",
    ast.SetComp: "a set comprehension (a loop in disguise)",
    ast.DictComp: "a dict comprehension (a loop in disguise)",
    ast.GeneratorExp: "a generator expression (a loop in disguise)",
    ast.Yield: "a generator (yield: it is consumed one element at a time)",
    ast.YieldFrom: "a generator (yield from: it is consumed one element at a time)",
}


@dataclass(frozen=True)
class Loop:
    """One Python-level loop (or something that cannot be followed) reachable from the entry.

    ``path`` is how it is reached: the entry's name first, then each definition on the way.
    """

    kind: str
    where: str
    line: int
    code: str
    path: tuple[str, ...]
    suspicious: bool = False

    def describe(self) -> str:
        place = f"line {self.line}" + ("" if self.where == self.path[0] else f" of {self.where}")
        return f"{self.kind} ({place}: `{self.code}`)"


@dataclass
class _Unit:
    """A piece of the submission the analysis scans: a definition, or the value bound to a name."""

    label: str
    node: ast.AST                 # FunctionDef / AsyncFunctionDef / Lambda / ClassDef / an expression
    scopes: tuple = ()            # enclosing function scopes (sets of local names), innermost last
    statement: int = 0            # index of the top-level statement it belongs to
    is_function: bool = False
    edges: set = field(default_factory=set)


class _Module:
    """The submission's top-level bindings."""

    def __init__(self, statements: Sequence[str]) -> None:
        self.trees: list[ast.Module] = []
        self.bindings: dict[str, list[tuple[int, ast.AST, ast.AST | None]]] = {}
        self.imports: dict[str, str] = {}            # name -> qualified module path of its last binding
        self.classes: list[tuple[int, ast.ClassDef]] = []
        self.problems: list[str] = []
        for index, text in enumerate(statements):
            try:
                tree = ast.parse(textwrap.dedent(text))
            except SyntaxError:
                self.problems.append(text.splitlines()[0] if text.strip() else "")
                continue
            self.trees.append(tree)
            for node in tree.body:
                self._bind_statement(index, node)
        for index, tree in enumerate(self.trees):
            for node in ast.walk(tree):
                if isinstance(node, ast.ClassDef):
                    self.classes.append((index, node))
        self._global_assignments()

    def _bind(self, name: str, index: int, node: ast.AST, value: ast.AST | None, replace: bool = True) -> None:
        if replace:
            self.bindings[name] = [(index, node, value)]
        else:
            self.bindings.setdefault(name, []).append((index, node, value))

    def _bind_statement(self, index: int, node: ast.stmt) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    self.imports[alias.asname] = alias.name
                    self._bind(alias.asname, index, node, None)
                else:
                    top = alias.name.split(".")[0]
                    self.imports[top] = top
                    self._bind(top, index, node, None)
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            for alias in node.names:
                name = alias.asname or alias.name
                self.imports[name] = f"{module}.{alias.name}"
                self._bind(name, index, node, None)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            self.imports.pop(node.name, None)
            self._bind(node.name, index, node, node)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                for name, value in _pair_targets(target, node.value):
                    self.imports.pop(name, None)
                    self._bind(name, index, node, value, replace=not isinstance(node, ast.AugAssign))

    def _global_assignments(self) -> None:
        """``global x`` inside a function, then ``x = ...``: one more binding of x (conservative)."""
        for index, tree in enumerate(self.trees):
            for func in ast.walk(tree):
                if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                declared = {n for stmt in ast.walk(func) if isinstance(stmt, ast.Global) for n in stmt.names}
                if not declared:
                    continue
                for stmt in ast.walk(func):
                    if isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and stmt.value is not None:
                        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                        for target in targets:
                            for name, value in _pair_targets(target, stmt.value):
                                if name in declared:
                                    self._bind(name, index, stmt, value, replace=False)
                    elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                            and stmt.name in declared:
                        self._bind(stmt.name, index, stmt, stmt, replace=False)

    def members(self, name: str) -> list[tuple[int, ast.ClassDef, ast.AST, ast.AST]]:
        """Every member called ``name`` of the submission's classes: (statement, class, node, value)."""
        found = []
        for index, cls in self.classes:
            for node in cls.body:
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
                    found.append((index, cls, node, node))
                elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    for target in targets:
                        for target_name, value in _pair_targets(target, node.value):
                            if target_name == name:
                                found.append((index, cls, node, value))
        return found


def _pair_targets(target: ast.AST, value: ast.AST) -> list[tuple[str, ast.AST]]:
    """(name, the part of ``value`` it receives) for an assignment target (tuples unpacked)."""
    if isinstance(target, ast.Name):
        return [(target.id, value)]
    if isinstance(target, (ast.Tuple, ast.List)):
        if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts):
            return [pair for t, v in zip(target.elts, value.elts) for pair in _pair_targets(t, v)]
        return [pair for t in target.elts for pair in _pair_targets(t, value)]
    if isinstance(target, ast.Starred):
        return _pair_targets(target.value, value)
    return []


def _local_names(func: ast.AST) -> set[str]:
    """Names local to a function (parameters and everything it binds), minus its global/nonlocal ones."""
    names: set[str] = set()
    args = func.args
    for a in args.posonlyargs + args.args + args.kwonlyargs + [args.vararg, args.kwarg]:
        if a is not None:
            names.add(a.arg)
    declared: set[str] = set()
    body = func.body if isinstance(func.body, list) else [func.body]
    for node in _walk_own_scope(body):
        if isinstance(node, (ast.Global, ast.Nonlocal)):
            declared.update(node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                names.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names - declared


def _walk_own_scope(nodes: Iterable[ast.AST]):
    """ast.walk over ``nodes`` without entering nested functions, lambdas or classes (their names
    are bound in the enclosing scope, their bodies are not)."""
    stack = list(nodes)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stack.extend(node.decorator_list)
            if not isinstance(node, ast.ClassDef):
                stack.extend(d for d in node.args.defaults + node.args.kw_defaults if d is not None)
            else:
                stack.extend(node.bases + [k.value for k in node.keywords])
            continue
        if isinstance(node, ast.Lambda):
            stack.extend(d for d in node.args.defaults + node.args.kw_defaults if d is not None)
            continue
        stack.extend(ast.iter_child_nodes(node))


class _Analysis:
    def __init__(self, module: _Module, entry: str) -> None:
        self.module = module
        self.entry = entry
        self.units: dict[int, _Unit] = {}
        self.parents: dict[int, tuple[int, str]] = {}
        self.found: list[tuple[int, Loop]] = []
        self.queue: list[int] = []

    # ------------------------------------------------------------------ units
    def _unit(self, label: str, node: ast.AST, statement: int, scopes: tuple = (), via: _Unit | None = None) -> _Unit:
        key = id(node)
        unit = self.units.get(key)
        if unit is None:
            unit = _Unit(label, node, scopes, statement, isinstance(node, _FUNCTION_NODES))
            self.units[key] = unit
            if via is not None:
                self.parents[key] = (id(via.node), label)
            self.queue.append(key)
        if via is not None:
            via.edges.add(key)
        return unit

    def reach_name(self, name: str, via: _Unit | None) -> None:
        for index, node, value in self.module.bindings.get(name, []):
            if value is None:
                continue  # an import
            if isinstance(value, ast.ClassDef):
                self.reach_class(value, index, via, name)
            else:
                self._unit(name, value, index, via=via)

    def reach_class(self, cls: ast.ClassDef, index: int, via: _Unit | None, label: str | None = None) -> None:
        unit = self._unit(f"class {label or cls.name}", cls, index, via=via)
        # Calling, constructing or using a class runs its special methods: reach them from `via`.
        for node in cls.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("__"):
                self._unit(f"{cls.name}.{node.name}", node, index, via=via or unit)

    def reach_member(self, name: str, via: _Unit) -> None:
        for index, cls, node, value in self.module.members(name):
            label = f"{cls.name}.{name}"
            if isinstance(value, ast.ClassDef):
                self.reach_class(value, index, via, label)
            else:
                self._unit(label, value, index, via=via)

    # ------------------------------------------------------------------ scanning
    def run(self) -> list[Loop]:
        if self.entry not in self.module.bindings:
            return []
        self.reach_name(self.entry, None)
        while self.queue:
            key = self.queue.pop(0)
            self._scan(self.units[key])
        self._recursion()
        self.found.sort(key=lambda item: item[0])
        return [loop for _, loop in self.found]

    def _report(self, unit: _Unit, node: ast.AST, kind: str, suspicious: bool = False, code: str = "") -> None:
        start = getattr(unit.node, "lineno", 1)
        line = getattr(node, "lineno", start) - start + 1
        segment = code or _first_line(node)
        order = (len(self._path(unit)), len(self.found))
        self.found.append((order, Loop(kind, unit.label, line, segment, self._path(unit), suspicious)))

    def _path(self, unit: _Unit) -> tuple[str, ...]:
        path = [unit.label]
        key = id(unit.node)
        seen = {key}
        while key in self.parents:
            key, _ = self.parents[key]
            if key in seen:
                break
            seen.add(key)
            path.append(self.units[key].label)
        return tuple(reversed(path))

    def _scan(self, unit: _Unit) -> None:
        node = unit.node
        if isinstance(node, ast.ClassDef):
            # the class statement itself: decorators, bases, keywords and its non-method statements
            parts = node.decorator_list + node.bases + [k.value for k in node.keywords]
            parts += [s for s in node.body if not isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef))]
            for base in node.bases:
                if isinstance(base, ast.Name):
                    for index, bnode, value in self.module.bindings.get(base.id, []):
                        if isinstance(value, ast.ClassDef):
                            for member in value.body:
                                if isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef)):
                                    self._unit(f"{value.name}.{member.name}", member, index, via=unit)
            self._scan_nodes(unit, parts, unit.scopes)
            return
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            outer = node.decorator_list + [d for d in node.args.defaults + node.args.kw_defaults if d is not None]
            self._scan_nodes(unit, outer, unit.scopes)
            self._scan_function_body(unit, node, unit.scopes)
            return
        if isinstance(node, ast.Lambda):
            self._scan_nodes(unit, [d for d in node.args.defaults + node.args.kw_defaults if d is not None],
                             unit.scopes)
            self._scan_function_body(unit, node, unit.scopes)
            return
        self._scan_nodes(unit, [node], unit.scopes)   # a value bound to a name

    def _scan_function_body(self, unit: _Unit, func: ast.AST, scopes: tuple) -> None:
        inner = scopes + (_local_names(func),)
        body = func.body if isinstance(func.body, list) else [func.body]
        self._scan_nodes(unit, body, inner)

    def _scan_nodes(self, unit: _Unit, nodes: list, scopes: tuple) -> None:
        stack = [(n, scopes) for n in nodes]
        while stack:
            node, here = stack.pop()
            kind = _LOOP_KINDS.get(type(node))
            if kind is not None:
                self._report(unit, node, kind)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                # nested definitions: their decorators/defaults run here, their bodies in a new scope
                if not isinstance(node, ast.Lambda):
                    stack.extend((d, here) for d in node.decorator_list)
                stack.extend((d, here) for d in node.args.defaults + node.args.kw_defaults if d is not None)
                body = node.body if isinstance(node.body, list) else [node.body]
                inner = here + (_local_names(node),)
                stack.extend((b, inner) for b in body)
                continue
            if isinstance(node, ast.ClassDef) and node is not unit.node:
                stack.extend((n, here) for n in node.decorator_list + node.bases + node.body)
                continue
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                self._name(unit, node, here)
            elif isinstance(node, ast.Attribute):
                self._attribute(unit, node, here)
            elif isinstance(node, ast.Call):
                self._call(unit, node, here)
            stack.extend((child, here) for child in ast.iter_child_nodes(node))

    def _is_local(self, name: str, scopes: tuple) -> bool:
        return any(name in scope for scope in scopes)

    def _name(self, unit: _Unit, node: ast.Name, scopes: tuple) -> None:
        name = node.id
        if self._is_local(name, scopes):
            return
        if name in self.module.bindings:
            if name in self.module.imports:
                self._external(unit, node, self.module.imports[name])
            else:
                self.reach_name(name, unit)
            return
        if hasattr(builtins, name):
            self._external(unit, node, f"builtins.{name}")

    def _attribute(self, unit: _Unit, node: ast.Attribute, scopes: tuple) -> None:
        if node.attr in _DYNAMIC_ATTRIBUTES:
            self._report(unit, node, f"{node.attr} (code the grader cannot follow)", suspicious=True)
            return
        qualified = self._qualify(node, scopes)
        if qualified is not None:
            self._external(unit, node, qualified)
            return
        self.reach_member(node.attr, unit)

    def _call(self, unit: _Unit, node: ast.Call, scopes: tuple) -> None:
        qualified = self._qualify(node.func, scopes)
        if qualified in ("builtins.getattr", "builtins.hasattr"):
            if len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                attr = node.args[1].value
                base = self._qualify(node.args[0], scopes)
                if base is not None:
                    self._external(unit, node, f"{base}.{attr}")
                else:
                    self.reach_member(attr, unit)
            elif qualified == "builtins.getattr":
                self._report(unit, node, "getattr with a computed name (code the grader cannot follow)",
                             suspicious=True)
            return
        if self._resolves_to_submission(node.func, scopes) or qualified is not None and \
                (_matches(qualified, SAFE_HANDLERS) or _per_element(qualified) or _matches(qualified, DYNAMIC)):
            return
        # A library (or unknown) callable receiving one of the submission's functions may call it per element.
        for arg in list(node.args) + [k.value for k in node.keywords]:
            arg = arg.value if isinstance(arg, ast.Starred) else arg
            if isinstance(arg, ast.Lambda) or self._resolves_to_submission(arg, scopes, callables_only=True):
                callee = qualified or _first_line(node.func)
                self._report(unit, node, f"a Python function handed to {callee}, which may call it once per element")
                return

    def _resolves_to_submission(self, node: ast.AST, scopes: tuple, callables_only: bool = False) -> bool:
        if isinstance(node, ast.Name):
            if self._is_local(node.id, scopes):
                return False
            for _, _, value in self.module.bindings.get(node.id, []):
                if value is not None and (not callables_only or isinstance(
                        value, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))):
                    return True
            return False
        if isinstance(node, ast.Attribute) and self._qualify(node, scopes) is None:
            return any(isinstance(value, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef))
                       or not callables_only for _, _, _, value in self.module.members(node.attr))
        return False

    def _external(self, unit: _Unit, node: ast.AST, qualified: str) -> None:
        what = _per_element(qualified)
        if what:
            self._report(unit, node, what)
            return
        for pattern, what in DYNAMIC.items():
            if _matches(qualified, {pattern}):
                self._report(unit, node, f"{what} (code the grader cannot follow)", suspicious=True)
                return

    def _qualify(self, node: ast.AST, scopes: tuple, depth: int = 0) -> str | None:
        """The library path an expression names (``np.linalg.solve`` -> "numpy.linalg.solve"), or None."""
        if depth > 20:
            return None
        if isinstance(node, ast.Name):
            if self._is_local(node.id, scopes):
                return None
            if node.id in self.module.imports:
                return _canonical(self.module.imports[node.id])
            bound = self.module.bindings.get(node.id)
            if bound:
                value = bound[-1][2]
                if isinstance(value, (ast.Name, ast.Attribute)):
                    return self._qualify(value, (), depth + 1)
                return None
            return f"builtins.{node.id}" if hasattr(builtins, node.id) else None
        if isinstance(node, ast.Attribute):
            base = self._qualify(node.value, scopes, depth + 1)
            return None if base is None else f"{base}.{node.attr}"
        if isinstance(node, ast.Call) and len(node.args) == 2 and isinstance(node.args[1], ast.Constant) \
                and isinstance(node.args[1].value, str) \
                and self._qualify(node.func, scopes, depth + 1) == "builtins.getattr":
            base = self._qualify(node.args[0], scopes, depth + 1)
            return None if base is None else f"{base}.{node.args[1].value}"
        return None

    def _recursion(self) -> None:
        """A cycle of references through a function is a loop (recursion)."""
        functions = {k for k, u in self.units.items() if u.is_function}
        for key in sorted(functions, key=lambda k: len(self._path(self.units[k]))):
            cycle = self._cycle_from(key)
            if cycle:
                unit = self.units[key]
                names = " -> ".join(self.units[k].label for k in cycle)
                code = f"def {unit.node.name}(...)" if hasattr(unit.node, "name") else _first_line(unit.node)
                self._report(unit, unit.node, f"recursion ({names} -> {unit.label}: a loop in disguise)", code=code)
                return

    def _cycle_from(self, start: int) -> list[int] | None:
        stack = [(start, [start])]
        seen = set()
        while stack:
            key, path = stack.pop()
            for nxt in self.units[key].edges:
                if nxt == start:
                    return path
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
        return None


def _canonical(qualified: str) -> str:
    qualified = qualified.lstrip(".")
    top, _, rest = qualified.partition(".")
    if top == "np":
        top = "numpy"
    return top + ("." + rest if rest else "")


def _matches(qualified: str, patterns) -> bool:
    for pattern in patterns:
        if pattern.endswith(".*"):
            if qualified == pattern[:-2] or qualified.startswith(pattern[:-1]):
                return True
        elif qualified == pattern:
            return True
    return False


def _per_element(qualified: str) -> str | None:
    for pattern, what in PER_ELEMENT.items():
        if _matches(qualified, {pattern}):
            return what
    if qualified.startswith("numpy."):
        last = qualified.rsplit(".", 1)[1]
        if last in _NUMPY_PER_ELEMENT:
            return PER_ELEMENT[_NUMPY_PER_ELEMENT[last]]
    if qualified.startswith("functools.") and qualified.endswith(".reduce"):
        return PER_ELEMENT["functools.reduce"]
    return None


def _first_line(node: ast.AST) -> str:
    try:
        text = ast.unparse(node)
    except Exception:  # pragma: no cover - unparse handles every node the parser makes
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= 80 else line[:77] + "..."


def find_loops(statements: Sequence[str], entry: str) -> list[Loop] | None:
    """The loops ``entry`` can run, nearest first; None when ``statements`` do not define ``entry``.

    Parameters
    ----------
    statements : sequence of str
        The submission's kept top-level statements, in the order they run.
    entry : str
        The function whose loops are wanted.
    """
    module = _Module(statements)
    if entry not in module.bindings or all(v is None for _, _, v in module.bindings[entry]):
        return None
    return _Analysis(module, entry).run()
