"""The same submission gets the same numbers on every run and machine.

``Entropy.install()`` (once, in the zygote) makes unseeded generators repeatable:
``default_rng()``, ``RandomState()``, ``np.random.seed()``, bit generators and seed sequences
built without a seed, ``random.seed()``, ``random.Random()`` and ``random.SystemRandom()`` draw
their seeds from one stream; ``seed_call(seed)`` (before every call) seeds numpy's and Python's
global generators and restarts that stream from the call's seed.
"""

from __future__ import annotations

import random

import numpy as np

_ORIGINAL_RANDOM = random.Random   # (random.Random is replaced by a repeatable subclass)


class Entropy:
    """Where unseeded generators get their seeds: a stream restarted before every call."""

    def __init__(self) -> None:
        self._stream = np.random.Generator(np.random.PCG64(0))
        self._pending = None

    def reset(self, seed: int) -> None:
        # (made on first use: most calls draw nothing from it, and a call process pays for every
        # page a new generator touches; the classes are the ones in place now, as before)
        self._pending = (np.random.Generator, np.random.PCG64, seed)

    def next_seed(self) -> int:
        if self._pending is not None:
            generator, bits, seed = self._pending
            self._pending = None
            self._stream = generator(bits(seed))
        return int(self._stream.integers(0, 2**63 - 1))

    def install(self) -> None:
        entropy = self
        original_default_rng = np.random.default_rng
        original_random_state = np.random.RandomState
        original_random_seed = random.seed

        def default_rng(seed=None):
            return original_default_rng(entropy.next_seed() if seed is None else seed)

        class RandomState(original_random_state):
            def __init__(self, seed=None):
                super().__init__(entropy.next_seed() % 2**32 if seed is None else seed)

            def seed(self, seed=None):
                super().seed(entropy.next_seed() % 2**32 if seed is None else seed)

        def legacy_seed(seed=None):
            np.random.mtrand._rand.seed(entropy.next_seed() % 2**32 if seed is None else seed)

        def random_seed(a=None, version=2):
            original_random_seed(entropy.next_seed() if a is None else a, version)

        np.random.default_rng = default_rng
        np.random.RandomState = RandomState
        np.random.seed = legacy_seed
        random.seed = random_seed
        for name in ("PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64", "SeedSequence"):
            original = getattr(np.random, name, None)
            if original is not None:
                setattr(np.random, name, _seeded_subclass(original, entropy))

        class Random(random.Random):
            def seed(self, a=None, version=2):
                super().seed(entropy.next_seed() if a is None else a, version)

        random.Random = Random
        random.SystemRandom = Random


def _seeded_subclass(original, entropy):
    """``original`` with a first argument (seed / entropy) of None replaced by a repeatable one."""

    class Seeded(original):
        def __init__(self, seed=None, *args, **kwargs):
            super().__init__(entropy.next_seed() if seed is None else seed, *args, **kwargs)

    Seeded.__name__ = Seeded.__qualname__ = original.__name__
    Seeded.__module__ = original.__module__
    return Seeded


def seed_call(entropy: Entropy | None, seed: int) -> None:
    """Before a call: the global generators (and, in the sandbox, the unseeded-generator stream
    ``entropy``) start from ``seed``. In a student's kernel there is no stream (``None``)."""
    np.random.mtrand._rand.seed(seed % 2**32)
    _ORIGINAL_RANDOM.seed(random._inst, seed)
    if entropy is not None:
        entropy.reset(seed)
