"""The loader keeps definitions only, survives broken files, and never runs anything."""

import json

import pytest

from autograder.loading import load_submission, submission_from_cells


def _names(sub):
    return [name for st in sub.statements for name in st.defines]


def test_keeps_imports_definitions_and_constants_only():
    sub = submission_from_cells([
        "import numpy as np\nfrom scipy import stats\nX = np.load('samples.npz')\nEPS = 1e-12\nprint(EPS)",
        "def E_step(X):\n    return X\nE_step(3)\nfor i in range(10):\n    pass",
        "class Helper:\n    pass\nLOG2PI = np.log(2 * np.pi)\nalias = E_step\nmodel = Helper()",
    ])
    assert _names(sub) == ["np", "stats", "EPS", "E_step", "Helper", "LOG2PI", "alias"]


def test_magics_and_shell_lines_are_ignored_with_line_numbers_kept():
    sub = submission_from_cells(["%matplotlib inline\n!pip install foo\nimport numpy as np\n"
                                 "files = !ls\ndef f(x):\n    %time x\n    return x\nnp.sum?"])
    assert _names(sub) == ["np", "f"]
    f = next(st for st in sub.statements if st.defines == ("f",))
    assert f.line == 5 and "pass" in f.source
    assert not sub.problems


def test_cell_magics():
    sub = submission_from_cells(["%%time\ndef g():\n    return 1", "%%bash\necho hi\ndef h(): pass"])
    assert _names(sub) == ["g"]
    assert not sub.problems


def test_a_syntax_error_costs_its_cell_only():
    sub = submission_from_cells(["def ok():\n    return 1", "def broken(:\n    pass", "def also_ok(): pass"])
    assert _names(sub) == ["ok", "also_ok"]
    assert len(sub.problems) == 1 and sub.problems[0].cell == 2 and "SyntaxError" in sub.problems[0].message


def test_semicolon_separated_statements_are_split():
    sub = submission_from_cells(["import math; print(math.pi); y = 2"])
    assert [st.source.strip() for st in sub.statements] == ["import math", "y = 2"]


def test_notebook_file(tmp_path):
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": "# title"},
        {"cell_type": "code", "metadata": {}, "source": ["def f():\n", "    return 1\n"], "outputs": [],
         "execution_count": None},
    ]}
    path = tmp_path / "sub.ipynb"
    path.write_text(json.dumps(nb))
    sub = load_submission(path)
    assert sub.error is None and _names(sub) == ["f"]


def test_percent_format_python_file_is_split_into_cells(tmp_path):
    path = tmp_path / "sub.py"
    path.write_text("# %%\ndef a(): pass\n# %%\ndef b(:\n# %%\ndef c(): pass\n")
    sub = load_submission(path)
    assert _names(sub) == ["a", "c"] and len(sub.problems) == 1


@pytest.mark.parametrize("content, message", [
    (b"{not json", "not valid JSON"),
    (b"\x00\x01\x02binary", "binary"),
    (b"\xff\xfe\xfa", "UTF-8"),
    (b"[1, 2]", "not an object"),
    (b'{"cells": 3}', "no list of cells"),
])
def test_unreadable_notebooks_give_a_clear_error(tmp_path, content, message):
    path = tmp_path / "sub.ipynb"
    path.write_bytes(content)
    sub = load_submission(path)
    assert sub.error and message in sub.error and not sub.statements


def test_missing_file(tmp_path):
    assert "cannot open" in load_submission(tmp_path / "nope.ipynb").error


def test_a_symlinked_submission_is_refused_not_followed(tmp_path):
    """A submission that arrives as a symbolic link (an unpacked archive or a git repository can
    carry one) must not make the grader read what it points at: the reference solutions, say."""
    from autograder.batch import discover, make_jobs
    secret = tmp_path / "instructor" / "solutions.py"
    secret.parent.mkdir()
    secret.write_text("def E_step(X, pi, mu, sigma):\n    return 'the reference'\n")
    folder = tmp_path / "submissions"
    folder.mkdir()
    (folder / "alice.py").symlink_to(secret)
    sub = load_submission(folder / "alice.py")
    assert "symbolic link" in sub.error and not sub.statements
    [job] = make_jobs(discover([folder], "gmm"), "gmm")
    assert job.data is None and "symbolic link" in job.unreadable


def test_a_huge_submission_is_refused_before_it_is_read(tmp_path):
    """The batch reads every submission up front: a (sparse) file of a GB must cost nothing."""
    import resource
    from autograder.batch import Entry, make_jobs
    path = tmp_path / "huge.ipynb"
    with open(path, "wb") as f:
        f.truncate(2**30)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    [job] = make_jobs([Entry(path, "huge")], "gmm")
    assert job.data is None and "limited to 50 MiB" in job.unreadable
    assert "limited to 50 MiB" in load_submission(path).error
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100 * 1024   # KiB: nothing read


def test_a_cell_too_deep_to_read_costs_that_cell_only():
    """`x = 1+1+...+1` (2000 terms) parses but is too deep for the grader's own walk of it
    (RecursionError): it used to make the whole submission an internal error of the grader, 0 / 0."""
    from autograder.loading import submission_from_cells
    deep = "x = " + "+".join(["1"] * 2000)
    deeper = "y = " + "+".join(["1"] * 300000)   # (too deep for ast.parse itself)
    sub = submission_from_cells(["import numpy as np", deep, deeper, "def f():\n    return 1\n"])
    assert [s.defines for s in sub.statements] == [("np",), ("f",)]
    assert sorted(p.cell for p in sub.problems) == [2, 3]
    assert all("nested too deeply" in p.message for p in sub.problems)
