"""Declaring what an assignment asks for and how each function is checked."""

from __future__ import annotations

import inspect
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Callable, Mapping


@dataclass(frozen=True)
class Task:
    """A function the student writes.

    Parameters
    ----------
    name : str
        The function's exact name in the notebook.
    signature : str
        Its exact parameter list, e.g. ``"(X, pi, mu, sigma)"``.
    summary : str
        One line: what it computes.
    isolated_from : tuple of str
        The other skeleton functions replaced by the reference while this one is checked, so
        that one bug costs points once.
    """

    name: str
    signature: str
    summary: str = ""
    isolated_from: tuple[str, ...] = ()

    @cached_property
    def parameters(self) -> inspect.Signature:
        """The signature as an ``inspect.Signature`` (defaults included)."""
        namespace: dict = {}
        exec(f"def {self.name}{self.signature}:\n    pass", {}, namespace)  # our own literal text
        return inspect.signature(namespace[self.name])

    def bind(self, args: tuple, kwargs: Mapping) -> dict:
        """The arguments of one call by parameter name, defaults filled in, however they were
        passed (positionally, by keyword, in any order). Raises TypeError like Python would."""
        bound = self.parameters.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    @property
    def call_seed(self) -> int:
        """The seed of numpy's and Python's global generators for every call of this function.

        It depends on the function only, never on the check: a submission must not be able to
        tell from its seed which check is running (and so which answer is expected)."""
        return zlib.crc32(f"call/{self.name}".encode())


@dataclass(frozen=True)
class Check:
    """One property of one function, worth ``points``.

    ``run(ctx)`` returns normally when the property holds and raises ``Failed`` otherwise.
    ``needs_reference`` checks compare with the reference implementation, which students do not
    have: their notebook's ``check()`` lists them as "run when graded".
    """

    task: str
    name: str
    points: float
    run: Callable
    needs_reference: bool = False
    timeout: float = 20.0
    hints: tuple[str, ...] = ()

    @property
    def seed(self) -> int:
        """A seed that depends only on the check's identity (same grade on every run)."""
        return zlib.crc32(f"{self.task}/{self.name}".encode())


@dataclass
class Assignment:
    """An assignment: its tasks in notebook order and the checks of each."""

    id: str
    title: str
    tasks: list[Task]
    checks: list[Check] = field(default_factory=list)

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(f"assignment {self.id!r} has no task {name!r}; tasks: "
                       + ", ".join(t.name for t in self.tasks))

    def checks_for(self, task: str) -> list[Check]:
        return [c for c in self.checks if c.task == task]

    def points(self, task: str | None = None) -> float:
        return sum(c.points for c in self.checks if task is None or c.task == task)

    def reuse(self, source: "Assignment", task: str, name: str, points: float, *, as_name: str | None = None) -> Check:
        """Register ``source``'s check ``task``/``name`` here too, worth ``points`` (named ``as_name``).

        The declared way for one assignment to grade a function it shares with another (``hard_em``
        reuses ``prankster``'s checks of the soft functions): the check's body, whether it needs the
        reference, its time limit and its hints are the source's; its points, its name and so its
        seed (``Check.seed``) are this assignment's. The task must exist here with the same name.
        """
        original = source.find(task, name)
        self.check(task, as_name or name, points, needs_reference=original.needs_reference,
                   timeout=original.timeout, hints=original.hints)(original.run)
        return self.find(task, as_name or name)

    def find(self, task: str, name: str) -> Check:
        """The check ``task``/``name`` (KeyError naming the checks of ``task`` when there is none)."""
        for c in self.checks:
            if c.task == task and c.name == name:
                return c
        raise KeyError(f"assignment {self.id!r} has no check {task}/{name!r}; its checks of {task}: "
                       + ", ".join(repr(c.name) for c in self.checks_for(task)))

    def check(self, task: str, name: str, points: float, *, needs_reference: bool = False,
              timeout: float = 20.0, hints: tuple[str, ...] = ()):
        """Decorator registering ``run(ctx)`` as a check of ``task``."""
        self.task(task)  # fail early on a typo

        def register(run: Callable) -> Callable:
            if any(c.task == task and c.name == name for c in self.checks):
                raise ValueError(f"duplicate check {task}/{name}")
            self.checks.append(Check(task, name, points, run, needs_reference, timeout, tuple(hints)))
            return run

        return register
