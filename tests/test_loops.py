"""The loop detector (autograder.engine.loops) follows everything a function can reach.

Each case is a small submission: the ones in LOOPS hide a Python loop from ``f`` in a different
way and must be found (and named); the ones in NO_LOOPS are vectorised, however they are written,
and must pass. The cases go through the loader first, as a graded submission would.
"""

import textwrap

import pytest

from autograder.engine import Failed, expect
from autograder.engine.executors import InProcessExecutor
from autograder.engine.loops import find_loops
from autograder.loading import submission_from_cells

LOOPS = {
    "for loop": ("a for loop", """
        def f(X):
            for x in X:
                pass
        """),
    "while loop": ("a while loop", """
        def f(X):
            i = 0
            while i < 3:
                i += 1
        """),
    "comprehension": ("comprehension", """
        import numpy as np
        def f(X):
            return np.array([x for x in X])
        """),
    "generator expression": ("generator expression", """
        def f(X):
            return sum(x for x in X)
        """),
    "helper function": ("a for loop", """
        def _h(X):
            for x in X:
                pass
        def f(X):
            return _h(X)
        """),
    "class attribute": ("comprehension", """
        import numpy as np
        class _Impl:
            @staticmethod
            def e(X):
                return np.stack([x for x in X])
        def f(X):
            return _Impl.e(X)
        """),
    "class attribute assigned from a function": ("a for loop", """
        def _loop(X):
            for x in X:
                pass
        class _Impl:
            e = staticmethod(_loop)
        def f(X):
            return _Impl.e(X)
        """),
    "method through an instance": ("comprehension", """
        class Model:
            def __init__(self, X):
                self.X = X
            def rows(self):
                return [x for x in self.X]
        def f(X):
            return Model(X).rows()
        """),
    "method through self": ("a while loop", """
        class Model:
            def run(self, X):
                return self.inner(X)
            def inner(self, X):
                while False:
                    pass
        def f(X):
            return Model().run(X)
        """),
    "inherited method": ("a for loop", """
        class Base:
            def rows(self, X):
                for x in X:
                    pass
        class Child(Base):
            pass
        def f(X):
            return Child().rows(X)
        """),
    "__call__ of an instance": ("a for loop", """
        class Loop:
            def __call__(self, X):
                for x in X:
                    pass
        def f(X):
            return Loop()(X)
        """),
    "operator method": ("a for loop", """
        class Vec:
            def __add__(self, other):
                for x in other:
                    pass
        def f(X):
            return Vec() + X
        """),
    "property": ("comprehension", """
        class Data:
            @property
            def rows(self):
                return [1 for _ in range(3)]
        def f(X):
            return Data().rows
        """),
    "closure made by a factory": ("a for loop", """
        def _make():
            def inner(X):
                for x in X:
                    pass
            return inner
        def f(X):
            return _make()(X)
        """),
    "nested def": ("a for loop", """
        def f(X):
            def inner():
                for x in X:
                    pass
            return inner()
        """),
    "lambda at module level": ("comprehension", """
        helper = lambda X: [x for x in X]
        def f(X):
            return helper(X)
        """),
    "alias of a helper": ("a while loop", """
        def _impl(X):
            while True:
                break
        helper = _impl
        def f(X):
            return helper(X)
        """),
    "function in a dict": ("a for loop", """
        def _h(X):
            for x in X:
                pass
        TABLE = {"h": _h}
        def f(X):
            return TABLE["h"](X)
        """),
    "function in a tuple": ("a for loop", """
        def _h(X):
            for x in X:
                pass
        TABLE = (_h,)
        def f(X):
            return TABLE[0](X)
        """),
    "functools.partial of a loop": ("a for loop", """
        import functools
        def _h(X, k):
            for x in X:
                pass
        def f(X):
            return functools.partial(_h, k=1)(X)
        """),
    "module-level partial": ("a for loop", """
        from functools import partial
        def _h(X, k):
            for x in X:
                pass
        g = partial(_h, k=1)
        def f(X):
            return g(X)
        """),
    "functools.reduce": ("functools.reduce", """
        import functools
        import numpy as np
        def f(X):
            return functools.reduce(np.add, X)
        """),
    "reduce imported by name": ("functools.reduce", """
        from functools import reduce
        def f(X):
            return reduce(lambda a, b: a + b, X)
        """),
    "map": ("map()", """
        def f(X):
            return list(map(abs, X))
        """),
    "filter": ("filter()", """
        def f(X):
            return list(filter(None, X))
        """),
    "itertools": ("itertools", """
        import itertools
        def f(X):
            return list(itertools.accumulate(X))
        """),
    "np.vectorize": ("np.vectorize", """
        import numpy as np
        def f(X):
            return np.vectorize(abs)(X)
        """),
    "np.vectorize as a decorator": ("np.vectorize", """
        import numpy as np
        @np.vectorize
        def _h(x):
            return x
        def f(X):
            return _h(X)
        """),
    "np.vectorize in a module-level name": ("np.vectorize", """
        import numpy as np
        def _h(x):
            return x
        _vh = np.vectorize(_h)
        def f(X):
            return _vh(X)
        """),
    "vectorize imported by name": ("np.vectorize", """
        from numpy import vectorize as v
        def f(X):
            return v(abs)(X)
        """),
    "alias of np.vectorize": ("np.vectorize", """
        import numpy as np
        V = np.vectorize
        def f(X):
            return V(abs)(X)
        """),
    "np.frompyfunc": ("np.frompyfunc", """
        import numpy as np
        def f(X):
            return np.frompyfunc(abs, 1, 1)(X)
        """),
    "np.apply_along_axis": ("np.apply_along_axis", """
        import numpy as np
        def f(X):
            return np.apply_along_axis(sum, 1, X)
        """),
    "apply_along_axis under numpy.lib": ("np.apply_along_axis", """
        import numpy
        def f(X):
            return numpy.lib.shape_base.apply_along_axis(sum, 1, X)
        """),
    "getattr with a constant name": ("np.apply_along_axis", """
        import numpy as np
        def f(X):
            return getattr(np, "apply_along_axis")(sum, 1, X)
        """),
    "recursion": ("recursion", """
        def f(X, i=0):
            return 0 if i == len(X) else f(X, i + 1)
        """),
    "mutual recursion through helpers": ("recursion", """
        def _a(n):
            return 0 if n == 0 else _b(n - 1)
        def _b(n):
            return _a(n)
        def f(X):
            return _a(len(X))
        """),
    "recursion behind lru_cache": ("recursion", """
        import functools
        @functools.lru_cache(maxsize=None)
        def _count(n):
            return 0 if n == 0 else 1 + _count(n - 1)
        def f(X):
            return _count(len(X))
        """),
    "recursive lambda": ("recursion", """
        fact = lambda n: 1 if n == 0 else n * fact(n - 1)
        def f(X):
            return fact(3)
        """),
    "generator": ("generator", """
        def _rows(X):
            yield from X
        def f(X):
            return list(_rows(X))
        """),
    "decorator of its own": ("a for loop", """
        import functools
        def per_row(func):
            @functools.wraps(func)
            def wrapper(X):
                for x in X:
                    func(x)
            return wrapper
        @per_row
        def f(X):
            return X
        """),
    "default argument": ("comprehension", """
        def _h(X):
            return [x for x in X]
        def f(X, helper=_h):
            return helper(X)
        """),
    "Python function handed to a library": ("handed to", """
        import scipy.optimize
        def _h(x):
            return x
        def f(X):
            return scipy.optimize.minimize_scalar(_h)
        """),
    "lambda handed to a method": ("handed to", """
        def f(X):
            return X.apply(lambda row: row)
        """),
    "global rebinding at run time": ("a for loop", """
        def _fast(X):
            return X
        def _slow(X):
            for x in X:
                pass
        helper = _fast
        def f(X):
            global helper
            helper = _slow
            return helper(X)
        """),
}
SUSPICIOUS = {
    "eval": """
        def f(X):
            return eval("X + 1")
        """,
    "exec": """
        def f(X):
            exec("y = X")
        """,
    "globals()": """
        def f(X):
            return globals()["helper"](X)
        """,
    "getattr with a computed name": """
        import numpy as np
        def f(X):
            return getattr(np, "vec" + "torize")(abs)(X)
        """,
    "__dict__": """
        import numpy as np
        def f(X):
            return np.__dict__["vectorize"](abs)(X)
        """,
    "__import__": """
        def f(X):
            return __import__("functools").reduce(max, X)
        """,
    "importlib": """
        import importlib
        def f(X):
            return importlib.import_module("itertools")
        """,
}
NO_LOOPS = {
    "plain numpy": """
        import numpy as np
        def f(X):
            return X @ X.T
        """,
    "ufunc reductions": """
        import numpy as np
        def f(X):
            return np.add.reduce(X, axis=1) + np.logaddexp.reduce(X, axis=0)[0] + np.maximum.accumulate(X)[0, 0]
        """,
    "errstate decorator": """
        import numpy as np
        @np.errstate(divide="ignore")
        def f(X):
            return np.log(X)
        """,
    "vectorised helpers, classes and partials": """
        import functools
        import numpy as np
        class _Impl:
            @staticmethod
            def e(X):
                return X - X.mean(axis=0)
            def fit(self, X):
                for _ in range(10):
                    pass
        @functools.lru_cache(maxsize=None)
        def _const(d):
            return d * np.log(2 * np.pi)
        def _h(X, k):
            return X * k
        g = functools.partial(_h, k=2.0)
        def f(X):
            return g(_Impl.e(X)) + _const(X.shape[1])
        """,
    "vectorised closure and decorator": """
        import functools
        def normalised(func):
            @functools.wraps(func)
            def wrapper(X):
                y = func(X)
                return y / y.sum()
            return wrapper
        @normalised
        def f(X):
            def square(a):
                return a * a
            return square(X)
        """,
    "a loop elsewhere in the file": """
        import numpy as np
        def other(X):
            for x in X:
                pass
        pretty = np.vectorize(str)
        def f(X):
            return X + 1
        """,
    "an earlier definition with a loop, redefined": """
        def f(X):
            for x in X:
                pass
        def f(X):
            return X
        """,
    "a local name that shadows a looping helper": """
        def helper(X):
            for x in X:
                pass
        def f(X, helper=None):
            helper = abs
            return helper(X)
        """,
    "a parameter called like a module function": """
        import numpy as np
        def f(X, map=np.abs):
            return map(X)
        """,
}


def _statements(source: str) -> list[str]:
    return [s.source for s in submission_from_cells([textwrap.dedent(source)]).statements]


@pytest.mark.parametrize("name", LOOPS, ids=list(LOOPS))
def test_hidden_loops_are_found(name):
    kind, source = LOOPS[name]
    loops = find_loops(_statements(source), "f")
    assert loops, f"{name}: no loop found"
    assert kind in loops[0].kind or kind in loops[0].describe(), loops[0].describe()


@pytest.mark.parametrize("name", SUSPICIOUS, ids=list(SUSPICIOUS))
def test_code_the_grader_cannot_read_is_suspicious(name):
    loops = find_loops(_statements(SUSPICIOUS[name]), "f")
    assert loops and any(loop.suspicious for loop in loops), name


@pytest.mark.parametrize("name", NO_LOOPS, ids=list(NO_LOOPS))
def test_vectorised_code_passes(name):
    assert find_loops(_statements(NO_LOOPS[name]), "f") == [], name


def test_missing_definition_is_none():
    assert find_loops(_statements("x = 1\n"), "f") is None


def test_message_names_the_route_to_the_loop():
    source = LOOPS["class attribute"][1]
    with pytest.raises(Failed) as failure:
        expect.no_python_loops(_statements(source), "f")
    assert "reached through f -> _Impl.e" in failure.value.message and "line 2 of _Impl.e" in failure.value.message


def test_in_process_definitions_come_from_the_kernel_history():
    """In a notebook kernel the definitions are the cells run so far (IPython's ``_ih``), in order."""
    cells = ["import numpy as np\n", "def f(X):\n    for x in X:\n        pass\n", "def f(X):\n    return X\n"]
    namespace = {"_ih": [""] + cells}
    statements = InProcessExecutor(namespace).definitions()
    assert find_loops(statements, "f") == []
    namespace["_ih"].append("def f(X):\n    return [x for x in X]\n")
    assert find_loops(InProcessExecutor(namespace).definitions(), "f")
