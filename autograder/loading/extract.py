"""Choosing which top-level statements of a cell the grader keeps.

Kept: imports, function and class definitions, and assignments of constant expressions
(``EPS = 1e-12``, ``LOG_2PI = np.log(2 * np.pi)``, ``E_step = e_step_fast``,
``helper = functools.partial(f, k=2)``). Everything else
(calls, loops, data loading, plotting, training) is dropped without being run.
"""

from __future__ import annotations

import ast

# Calls allowed inside a constant expression: pure functions of constants from numpy and math,
# and seeded random generators (`RNG = np.random.default_rng(0)` is a definition, not a computation).
_RNG_CALLS = {"default_rng", "RandomState", "Generator", "PCG64", "MT19937", "Philox", "SFC64", "SeedSequence"}
# Wrappers that build a function from functions without calling them (`helper = partial(f, k=2)`,
# `row = np.vectorize(f)`): definitions too.
_WRAPPER_CALLS = {"partial", "vectorize", "frompyfunc", "lru_cache", "cache"}
_PURE_CALLS = _RNG_CALLS | _WRAPPER_CALLS | {
    "log", "log2", "log10", "log1p", "exp", "expm1", "sqrt", "abs", "float64", "float32",
    "int64", "int32", "array", "asarray", "finfo", "iinfo", "sin", "cos", "tan", "arctan",
    "float", "int", "complex", "tuple", "frozenset", "round", "pow", "eye", "zeros", "ones",
    # array constants (masks, index sets) that ADVI's full-rank code defines once at the top
    "tril", "triu", "tril_indices", "triu_indices", "diag", "identity", "arange", "linspace", "full",
}


_BUILTIN_TYPES = {"bool", "int", "float", "complex"}


class Scope:
    """Names bound by the statements kept so far (carried from cell to cell)."""

    def __init__(self) -> None:
        self.known: set[str] = set()
        self.modules: set[str] = set()   # the subset bound to imported modules
        self.imported: set[str] = set()  # the subset bound by `from module import name`


def kept_statements(tree: ast.Module, scope: Scope | None = None) -> list[ast.stmt]:
    """The statements of ``tree`` the grader runs, in source order."""
    scope = scope or Scope()
    known, modules, imported = scope.known, scope.modules, scope.imported
    kept = []
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.asname or alias.name.split(".")[0]
                modules.add(name)
                known.add(name)
            kept.append(node)
        elif isinstance(node, ast.ImportFrom):
            if any(alias.name == "*" for alias in node.names):
                continue  # star imports hide what they bind; a submission must not rely on them
            names = [alias.asname or alias.name for alias in node.names]
            known.update(names)
            imported.update(names)
            kept.append(node)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            known.add(node.name)
            kept.append(node)
        elif _is_constant_assignment(node, known, modules | imported):
            known.update(_assigned_names(node))
            kept.append(node)
    return kept


def _assigned_names(node: ast.stmt) -> list[str]:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names = []
    for target in targets:
        elts = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
        names.extend(elt.id for elt in elts if isinstance(elt, ast.Name))
    return names


def _is_constant_assignment(node: ast.stmt, known: set[str], modules: set[str]) -> bool:
    if isinstance(node, ast.Assign):
        targets, value = node.targets, node.value
    elif isinstance(node, ast.AnnAssign) and node.value is not None and node.simple:
        targets, value = [node.target], node.value
    else:
        return False
    for target in targets:
        elts = target.elts if isinstance(target, (ast.Tuple, ast.List)) else [target]
        if not all(isinstance(elt, ast.Name) for elt in elts):
            return False  # `a[0] = ...` or `obj.attr = ...` mutate something: not a definition
    return _is_constant_expression(value, known, modules)


def _is_constant_expression(node: ast.expr, known: set[str], modules: set[str]) -> bool:
    def ok(n: ast.AST) -> bool:
        if isinstance(n, ast.Constant):
            return True
        if isinstance(n, ast.Name):
            return n.id in known or n.id in _BUILTIN_TYPES     # (dtype=bool)
        if isinstance(n, ast.Lambda):
            return True
        if isinstance(n, (ast.Tuple, ast.List, ast.Set)):
            return all(ok(e) for e in n.elts)
        if isinstance(n, ast.Dict):
            return all(k is None or ok(k) for k in n.keys) and all(ok(v) for v in n.values)
        if isinstance(n, ast.UnaryOp):
            return ok(n.operand)
        if isinstance(n, ast.BinOp):
            return ok(n.left) and ok(n.right)
        if isinstance(n, ast.Attribute):
            return _rooted_in(n, modules) or ok(n.value)
        if isinstance(n, ast.Call):
            func = n.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            callee_ok = (isinstance(func, ast.Attribute) and _rooted_in(func, modules)) or (
                isinstance(func, ast.Name) and (func.id in modules or func.id in {
                    "float", "int", "complex", "tuple", "frozenset", "round", "pow", "abs"}))
            return (callee_ok and name in _PURE_CALLS and all(ok(a) for a in n.args)
                    and all(ok(k.value) for k in n.keywords))
        return False

    return ok(node)


def _rooted_in(node: ast.Attribute, modules: set[str]) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name) and node.id in modules
