"""``autograder.datasets`` while a submission is graded: the data are not here (a graded
function gets what it needs as arguments)."""


def load(*args, **kwargs):
    raise RuntimeError("autograder.datasets.load is not available while your work is being graded: "
                       "a graded function must use the arguments it is given, not load data itself")


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)
    raise RuntimeError(f"autograder.datasets.{name} is not available while your work is being graded")
