"""``autograder.interactive`` while a submission is graded: progress bars are silent, the EM
slider and the set-up do nothing. The same names and arguments as the notebook's module."""

from __future__ import annotations

__all__ = ["progress_bar", "iteration_slider", "setup", "quiet", "is_quiet"]


class _SilentBar:
    """Iterates like a tqdm bar and accepts its calls, without showing anything."""

    def __init__(self, iterable=None, total=None) -> None:
        self.iterable = iterable
        self.total = total
        self.n = 0

    def __iter__(self):
        for item in self.iterable:
            yield item

    def __len__(self) -> int:
        if self.total is not None:
            return int(self.total)
        return len(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        self.n += n

    def close(self) -> None:
        pass

    def refresh(self) -> None:
        pass

    def set_description(self, *args, **kwargs) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def write(self, text: str) -> None:
        print(text)


def progress_bar(iterable=None, *, total=None, desc=None, **kwargs):
    """``iterable`` unchanged (as an object that also accepts tqdm's methods)."""
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    return _SilentBar(iterable, total)


def iteration_slider(frames, draw, *args, **kwargs) -> None:
    """Shows nothing while graded."""
    return None


def setup(*args, **kwargs) -> None:
    """Installs nothing while graded."""
    return None


class quiet:
    """A no-op context manager (everything is quiet here)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def is_quiet() -> bool:
    return True
