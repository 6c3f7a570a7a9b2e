"""Sandbox.call(differentiate=) cannot be forged by a submission that changes autograd.

The derivative is computed in the student's process, after the student's code loaded there; the
zygote snapshots autograd before any student code runs (``autograder/sandbox/autograd_guard.py``)
and every change of it, by the load or during a call, is reported (``CallOutcome.tampered``) and
refuses the derivative (a ``Tampered`` error), never a derivative that looks right. What autograd's
public API adds (new primitives, their VJPs) stays allowed.

One sandbox holds the honest functions and the call-time attacks (every call is a fresh process
from the same clean load); the load-time attacks have one each.
"""

import textwrap
from pathlib import Path

import numpy as np
import pytest

from autograder.loading import load_submission, submission_from_cells
from autograder.sandbox import Sandbox

pytest.importorskip("autograd")

HOSTILE = Path(__file__).parent / "corpora" / "hostile"
ZETA = np.array([[0.5, -0.2, 0.3], [1.0, 0.4, -0.7]])

# Each attack patches something of autograd when called, then returns a value autograd can trace
# (so only the comparison after the derivative can refuse it).
SUBMISSION = textwrap.dedent('''
    import gc, sys, threading, types
    import numpy as onp
    import autograd.numpy as anp
    from autograd import elementwise_grad
    from autograd.extend import defvjp, primitive
    from autograd.tracer import register_notrace
    from autograd.core import VJPNode
    from autograd.numpy.numpy_boxes import ArrayBox

    # ------------------------------------------------------------------ honest
    def smooth(zeta):
        return anp.concatenate([zeta[..., :2], anp.exp(zeta[..., 2:])], axis=-1)

    @primitive
    def softplus(x):
        return onp.log1p(onp.exp(x))

    class _Registered:   # (the loader keeps definitions only: a top-level call would be dropped)
        defvjp(softplus, lambda ans, x: lambda g: g / (1 + onp.exp(-x)))
        my_exp = primitive(onp.exp)      # (replaces onp.exp's entry in trace_primitives_map: allowed)
        defvjp(my_exp, lambda ans, x: lambda g: g * ans)

    def with_own_primitive(zeta):
        return softplus(zeta) * 2.0

    my_exp = _Registered.my_exp

    def with_wrapped_numpy(zeta):
        return my_exp(zeta) + 0.0

    def imports_inside(zeta):
        from autograd.scipy.special import gammaln   # (a module of autograd imported during the call)
        return gammaln(anp.exp(zeta))

    def grad_smooth(zeta):
        return elementwise_grad(smooth)(zeta)

    def _real(name):   # (`import x` binds a lazy stand-in of the module in the submission's namespace)
        return sys.modules[name]

    # ------------------------------------------------------------------ attacks (when called)
    def _copy(zeta):
        return anp.exp(zeta) * 1.0

    def _fd(f, argnum=0):
        return lambda *args: onp.ones_like(args[argnum])

    def patches_grad(zeta):
        _real("autograd").grad = _real("autograd").elementwise_grad = _fd
        return _copy(zeta)

    def patches_make_vjp(zeta):
        _real("autograd.core").make_vjp = lambda fun, x: (lambda g: onp.ones_like(x), fun(x))
        return _copy(zeta)

    def patches_make_vjp_code(zeta):
        def fake(fun, x):
            return (lambda g: g), fun(x)
        _real("autograd.core").make_vjp.__code__ = fake.__code__
        return _copy(zeta)

    def patches_registry(zeta):
        defvjp(anp.exp, lambda ans, x: lambda g: g)     # the public API, on one of autograd's primitives
        return _copy(zeta)

    def patches_registry_in_place(zeta):
        vjp_argnums = _real("autograd.core").primitive_vjps[anp.exp]
        for cell in vjp_argnums.__closure__:
            if isinstance(cell.cell_contents, dict):
                cell.cell_contents[0] = lambda ans, x: lambda g: g
        return _copy(zeta)

    def patches_registry_via_gc(zeta):
        for obj in gc.get_objects():
            if isinstance(obj, dict) and anp.log in obj and anp.exp in obj:
                obj[anp.exp] = obj[anp.log]
        return _copy(zeta)

    def rebinds_wrapper(zeta):
        _real("autograd.numpy").exp = primitive(lambda x: onp.exp(x))
        return _copy(zeta)

    def wrapper_closure(zeta):
        for cell in anp.exp.__closure__:
            if cell.cell_contents is onp.exp:
                cell.cell_contents = onp.expm1
        return _copy(zeta)

    def wrapper_defaults(zeta):
        anp.exp.__kwdefaults__ = {"called_by_autograd_dispatcher": True}
        return _copy(zeta)

    def box_class(zeta):
        ArrayBox.__setitem__ = lambda self, index, value: None
        return _copy(zeta)

    def untraced(zeta):
        register_notrace(VJPNode, anp.exp)
        return _copy(zeta)

    def sys_modules(zeta):
        fake = types.ModuleType("autograd")
        fake.elementwise_grad = fake.grad = _fd
        sys.modules["autograd"] = fake
        return _copy(zeta)

    def numpy_function(zeta):
        onp.ones = lambda shape, *a, **k: onp.zeros(shape)
        return _copy(zeta)

    def builtin(zeta):
        original = isinstance
        _real("builtins").isinstance = lambda a, b: original(a, b)
        return _copy(zeta)

    def import_hook(zeta):
        class Finder:
            @staticmethod
            def find_spec(name, path=None, target=None):
                return None
        sys.meta_path.insert(0, Finder)
        return _copy(zeta)

    def thread(zeta):
        stop = threading.Event()
        threading.Thread(target=stop.wait, args=(30,), daemon=True).start()
        return _copy(zeta)

    def profile_hook(zeta):
        sys.setprofile(lambda *args: None)
        return _copy(zeta)
''')
HONEST = ("smooth", "with_own_primitive", "with_wrapped_numpy", "imports_inside")
ATTACKS = ("patches_grad", "patches_make_vjp", "patches_make_vjp_code", "patches_registry",
           "patches_registry_in_place", "patches_registry_via_gc", "rebinds_wrapper", "wrapper_closure",
           "wrapper_defaults", "box_class", "untraced", "sys_modules", "numpy_function", "builtin",
           "import_hook", "thread", "profile_hook")


@pytest.fixture(scope="module")
def box():
    with Sandbox(submission_from_cells([SUBMISSION])) as sandbox:
        sandbox.start()
        assert not sandbox.load_problems, sandbox.load_problems
        yield sandbox


def _central(f, x, h=1e-6):
    out = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        out[i] = (np.sum(f(up)) - np.sum(f(down))) / (2 * h)
    return out


def test_honest_autograd_code_is_differentiated_and_nothing_is_reported(box):
    from scipy.special import gammaln
    values = {"smooth": lambda z: np.concatenate([z[..., :2], np.exp(z[..., 2:])], axis=-1),
              "with_own_primitive": lambda z: 2 * np.log1p(np.exp(z)), "with_wrapped_numpy": np.exp,
              "imports_inside": lambda z: gammaln(np.exp(z))}
    for name in HONEST:
        called = box.call(name, (ZETA,))
        assert called.ok and called.tampered == [], (name, called)
        derived = box.call(name, (ZETA,), differentiate=0)
        assert derived.ok and derived.tampered == [], (name, derived)
        np.testing.assert_allclose(derived.value, _central(values[name], ZETA), rtol=1e-6, err_msg=name)
    gradient = box.call("grad_smooth", (ZETA,))
    assert gradient.ok and gradient.tampered == []


@pytest.mark.parametrize("name", ATTACKS)
def test_changing_autograd_during_a_call_refuses_the_derivative_and_is_reported(box, name):
    derived = box.call(name, (ZETA,), differentiate=0)
    assert derived.status == "error" and derived.error_type == "Tampered", (name, derived)
    assert derived.message.startswith("your code changed autograd"), derived.message
    if name not in ("thread", "profile_hook"):   # (they matter only while autograd differentiates)
        called = box.call(name, (ZETA,))
        assert called.ok and called.tampered, (name, called)


def test_the_corpus_attack_is_seen_at_load_and_its_derivative_refused():
    """tests/corpora/hostile/advi_patches_autograd.py: a class body makes grad and elementwise_grad
    central differences while the definitions load."""
    with Sandbox(load_submission(HOSTILE / "advi_patches_autograd.py")) as sandbox:
        derived = sandbox.call("inverse_transform", (ZETA,), differentiate=0)
        assert derived.error_type == "Tampered" and "autograd.grad was replaced" in derived.message, derived
        gradient = sandbox.call("grad_log_joint_zeta", (ZETA, np.ones(4), np.ones(4)))
        assert gradient.ok and any("elementwise_grad was replaced" in t for t in gradient.tampered), gradient


def test_a_fake_autograd_in_sys_modules_before_the_imports_is_seen():
    code = textwrap.dedent('''
        import sys, types
        import numpy as onp
        class _Fake:
            fake = types.ModuleType("autograd")
            fake.elementwise_grad = lambda f, argnum=0: (lambda *args: onp.ones_like(args[argnum]))
            fake.__path__ = []
            sys.modules["autograd"] = fake
        from autograd import elementwise_grad
        def copy(zeta):
            theta = onp.array(zeta, dtype=float)
            theta[..., 2] = onp.exp(theta[..., 2])
            return theta
        def grad_copy(zeta):
            return elementwise_grad(copy)(zeta)
    ''')
    with Sandbox(submission_from_cells([code])) as sandbox:
        derived = sandbox.call("copy", (ZETA,), differentiate=0)
        assert derived.error_type == "Tampered" and "sys.modules['autograd'] was replaced" in derived.message, derived
        gradient = sandbox.call("grad_copy", (ZETA,))
        assert gradient.ok and gradient.tampered, gradient


def _advi_hostile_files():
    return sorted(p for p in HOSTILE.glob("*.py") if p.read_bytes().startswith(b"# hostile (advi):"))


@pytest.mark.slow
@pytest.mark.parametrize("path", _advi_hostile_files(), ids=lambda p: p.stem)
def test_hostile_advi_submissions_lose_exactly_what_their_header_says(path):
    """The ``# loses:`` / ``# may lose:`` lines of tests/corpora/hostile/ (tests/test_batch.py grades
    the gmm files there; the advi ones are graded here, as the CLI grades them)."""
    import re

    from autograder.assignments import get_assignment
    from corpus_support import grade_strictly
    head = path.read_text()[:4000]
    functions = {t.name for t in get_assignment("advi").tasks}
    loses = re.search(r"# loses: ([\w, ]+)", head).group(1).strip()
    lost = functions if loses == "all" else set() if loses == "nothing" else {f.strip() for f in loses.split(",")}
    may = re.search(r"# may lose: ([\w, ]+)", head)
    may = {f.strip() for f in may.group(1).split(",")} if may else set()
    assert lost <= functions and may <= functions
    result = grade_strictly(str(path), "advi")
    assert result.error is None, result.error
    problems = []
    for function, tests in result.by_function().items():
        score, maximum = sum(t.score for t in tests), sum(t.max_score for t in tests)
        if function in lost and score >= maximum:
            problems.append(f"{function} kept {score}/{maximum}")
        if function not in lost | may and score < maximum:
            problems.append(f"{function} lost points: {score}/{maximum}: "
                            + "; ".join(t.message[:200] for t in tests if not t.passed))
        for test in tests:
            if not test.passed:
                assert test.feedback.strip(), (function, test.name)
    assert not problems, "\n".join(problems)
