"""Similarity: what normalisation ignores and what it keeps, rarity weighting, the skeleton and the
course's own code, the pages, the CLI (``similarity`` and ``grade --similarity``, an nbgrader tree),
hostile files, and precision/recall on a small generated class with planted copies (the 300-student
version is ``benchmarks/bench_similarity.py``)."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import textwrap

import nbformat
import pytest

from autograder.assignments import get_assignment
from autograder.reporting import pages, similarity as sim
from conftest import CORPORA, ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import synthetic_class  # noqa: E402

GMM = get_assignment("gmm")
TASKS = {t.name for t in GMM.tasks}

ORIGINAL = '''
import numpy as np
from scipy.special import logsumexp

def E_step(X, pi, mu, sigma):
    """Responsibilities."""
    N, d = X.shape
    log_joint = np.zeros((N, len(pi)))
    for c in range(len(pi)):
        diff = X - mu[c]   # centred
        solved = np.linalg.solve(sigma[c], diff.T).T
        log_joint[:, c] = np.log(pi[c]) - 0.5 * (np.sum(diff * solved, axis=1) + np.linalg.slogdet(sigma[c])[1])
    return np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True))
'''

DISGUISED = '''
import numpy
from scipy.special import logsumexp as lse

def E_step(X, pi, mu, sigma):
    # my own work!!
    n_points, dim = X.shape
    L = numpy.zeros((n_points, len(pi)))
    for k in range(len(pi)):
        centred = (X - mu[k])
        s = numpy.linalg.solve(sigma[k],
                               centred.T).T
        L[:, k] = numpy.log(pi[k]) - 0.5 * (numpy.sum(centred * s, axis=1)
                                            + numpy.linalg.slogdet(sigma[k])[1])
    return (numpy.exp(L - lse(L, axis=1, keepdims=True)))
'''


def _code(student, source, suffix=".py"):
    return sim.code_of_file(student, source.encode(), suffix, TASKS)


def _texts(code, name="E_step"):
    return [t.text for u in code.units if u.name == name for t in u.tokens]


def test_names_comments_docstrings_formatting_parentheses_and_import_style_change_nothing():
    assert _texts(_code("a", ORIGINAL)) == _texts(_code("b", DISGUISED))
    assert "V" in _texts(_code("a", ORIGINAL)) and "slogdet" in _texts(_code("a", ORIGINAL))
    reprinted = "\n\n".join(ast.unparse(n) for n in ast.parse(ORIGINAL).body)
    assert _texts(_code("a", ORIGINAL)) == _texts(_code("c", reprinted))


def test_what_the_code_does_is_kept():
    other = ORIGINAL.replace("np.sum(diff * solved, axis=1)", "np.einsum('ij,ij->i', diff, solved)")
    assert _texts(_code("a", ORIGINAL)) != _texts(_code("b", other))
    assert "axis" in _texts(_code("a", ORIGINAL))          # keyword arguments keep their names
    mean = ORIGINAL.replace("np.sum(", "np.mean(")
    assert _texts(_code("a", ORIGINAL)) != _texts(_code("b", mean))


def test_a_notebook_split_over_cells_in_another_order_is_the_same_code():
    cells = [c for c in re.split(r"\n(?=def |import |from )", ORIGINAL.strip())]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in reversed(cells)]
                                  + [nbformat.v4.new_code_cell("E_step(X, pi, mu, sigma)  # a call, not kept")])
    code = _code("nb", nbformat.writes(nb), ".ipynb")
    assert _texts(code) == _texts(_code("py", ORIGINAL)) and [u.name for u in code.units] == ["E_step"]


def test_fingerprints_are_the_same_in_every_process():
    script = ("import json, sys; from autograder.reporting import similarity as s; "
              "u = s.Unit('f', sys.argv[1], True, s.normalise(sys.argv[1], {})); "
              "print(json.dumps(sorted(s.fingerprints(u, 5))))")
    outputs = {subprocess.run([sys.executable, "-c", script, ORIGINAL.split("\n\n", 1)[1]], capture_output=True,
                              text=True, env={"PYTHONHASHSEED": seed, "PATH": ""}, cwd=ROOT, check=True).stdout
               for seed in ("1", "2", "3")}
    assert len(outputs) == 1 and json.loads(outputs.pop())


def test_the_report_is_the_same_in_every_process(tmp_path):
    """Ties (functions with equal evidence) are ordered by name, not by a set's hash order: the
    same class gives the same similarity.json whatever PYTHONHASHSEED is."""
    reports = set()
    for seed in ("1", "2"):
        out = tmp_path / seed
        subprocess.run([sys.executable, "-m", "autograder", "similarity", "-a", "gmm", "-g", str(out),
                        str(CORPORA / "gmm" / "correct"), str(ROOT / "examples" / "gmm")], cwd=ROOT, check=True,
                       capture_output=True, env={**os.environ, "PYTHONHASHSEED": seed})
        reports.add((out / "similarity.json").read_bytes())
    assert len(reports) == 1


def _analyse(codes, **kw):
    return sim.analyse(codes, sim.skeleton_units("gmm"), sim.course_units("gmm"), **kw)


def _corpus(name):
    path = CORPORA / "gmm" / "correct" / name
    return sim.code_of_file(path.stem, path.read_bytes(), path.suffix, TASKS)


def test_a_copy_is_reported_independent_authors_and_the_untouched_skeleton_are_not():
    release = (ROOT / "course" / "gmm" / "gmm.ipynb").read_bytes()
    codes = [_corpus(n) for n in ("a_loops_scipy.py", "b_vectorised.py", "c_cholesky.py", "e_skeleton_triangular.py")]
    copy_of_c = sim.code_of_file("copy", synthetic_class.Submission(
        *_parts((CORPORA / "gmm" / "correct" / "c_cholesky.py").read_text())).python().encode(), ".py", TASKS)
    codes += [copy_of_c, sim.code_of_file("blank1", release, ".ipynb", TASKS),
              sim.code_of_file("blank2", release, ".ipynb", TASKS)]
    analysis = _analyse(codes)
    pairs = {(codes[p.a].student, codes[p.b].student) for p in analysis.pairs}
    assert pairs == {("c_cholesky", "copy")}, [(codes[p.a].student, codes[p.b].student, p.score) for p in analysis.pairs]
    pair = analysis.pairs[0]
    assert pair.overlap[0] > 0.5 and pair.regions[0] and any(r.rare for r in pair.regions[0])
    assert {u for u, _, _ in pair.functions} >= {"E_step", "M_step", "train_EM"}
    assert not [m for m in analysis.course if codes[m.student].student.startswith("blank")]


def _parts(source):
    """(imports, constants, functions) of a module, every local variable renamed."""
    tree = ast.parse(source)
    imports = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    constants = [n for n in tree.body if isinstance(n, ast.Assign)]
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    keep = synthetic_class._kept_names(functions, list(TASKS), imports) | {f.name for f in functions}
    keep |= {t.id for c in constants for t in c.targets}
    renamer = synthetic_class.Rename(lambda n: n if n in keep else f"{n}_renamed")
    return imports, constants, [renamer.visit(f) for f in reversed(functions)]


def test_code_shared_by_many_students_counts_nothing():
    """Twenty students with the same M-step (the textbook formula) and otherwise their own code:
    no pair, however identical the M-steps are."""
    m_step = textwrap.dedent('''
        def M_step(X, gamma):
            Nk = gamma.sum(axis=0)
            pi = Nk / X.shape[0]
            mu = gamma.T @ X / Nk[:, None]
            sigma = np.stack([(gamma[:, k, None] * (X - mu[k])).T @ (X - mu[k]) / Nk[k] for k in range(len(Nk))])
            return pi, mu, sigma
        ''')
    codes = []
    for i in range(20):
        own = "\n".join(f"    v{j} = np.ones({i * 7 + j}) * {i}.{j} + np.arange({j + i})" for j in range(6))
        codes.append(_code(f"s{i}", f"import numpy as np\n{m_step}\ndef E_step(X, pi, mu, sigma):\n{own}\n    return v0\n"))
    analysis = _analyse(codes)
    assert analysis.pairs == [] and max(analysis.scores) < analysis.threshold / 4
    alone = _analyse(codes[:2])           # two students alone share it: that is uncommon code
    assert alone.pair_scores and max(alone.pair_scores.values()) > 20


def test_functions_pasted_from_the_reference_are_flagged_with_their_source():
    reference = (ROOT / "solutions" / "gmm" / "__init__.py").read_text()
    imports, constants, functions = _parts(reference)
    own = ast.parse((CORPORA / "gmm" / "correct" / "a_loops_scipy.py").read_text())
    mine = [f for f in own.body if isinstance(f, ast.FunctionDef) and f.name not in ("E_step", "compute_vlb")]
    pasted = [f for f in functions if f.name in ("E_step", "compute_vlb")]
    body = [n for n in own.body if isinstance(n, (ast.Import, ast.ImportFrom))] + imports[:-1] + constants
    source = "\n\n".join(ast.unparse(n) for n in body + mine + pasted)
    codes = [_code("key", source), _corpus("a_loops_scipy.py"), _corpus("b_vectorised.py"), _corpus("c_cholesky.py")]
    analysis = _analyse(codes)
    flagged = {(codes[m.student].student, m.unit, m.source) for m in analysis.course}
    assert flagged == {("key", "E_step", "solutions/gmm: E_step"), ("key", "compute_vlb", "solutions/gmm: compute_vlb")}
    assert all(m.share >= sim.COURSE_SHARE and m.regions and m.course_source.startswith("def ") for m in analysis.course)


def test_hostile_files_are_read_without_running_them_and_never_stop_the_report(tmp_path):
    files = [(p.stem, p.read_bytes(), p.suffix) for p in sorted((CORPORA / "hostile").iterdir()) if p.is_file()]
    files += [("deep", ("x = " + "(" * 5000 + "1" + ")" * 5000 + "\ndef E_step(X, pi, mu, sigma):\n    return X\n").encode(), ".py"),
              ("huge", b"def E_step(X, pi, mu, sigma):\n" + b"    x = 1\n" * 100_000, ".py"),
              ("binary", bytes(range(256)) * 10, ".py"), ("unreadable", None, ".py")]
    analysis = sim.analyse_files(files, GMM)
    problems = {c.student: c.problem for c in analysis.codes if c.problem}
    assert {"corrupt_notebook", "not_json", "huge", "unreadable"} <= set(problems)
    written = pages.write_similarity(tmp_path, analysis, title="hostile")
    assert "Not compared" in written["similarity_html"].read_text()
    assert not (tmp_path / "pwned").exists()


def test_pages_are_offline_escaped_and_highlight_the_shared_parts(tmp_path):
    evil = ORIGINAL.replace("# centred", "# </pre><script>alert(1)</script>")
    codes = [_code("<img src=x>", evil), _code("bob", DISGUISED), _corpus("a_loops_scipy.py")]
    analysis = _analyse(codes, threshold=5)
    written = pages.write_similarity(tmp_path, analysis, title="EM", order=[t.name for t in GMM.tasks],
                                     links={"bob": "reports/bob.html"})
    index = written["similarity_html"].read_text()
    pair = (tmp_path / "similarity" / "pair-001.html").read_text()
    for page in (index, pair):
        assert "<script" not in page and "<img src=x>" not in page and not re.search(r"(src|href)=['\"]https?:", page)
    assert "evidence to look at, never proof" in index and "reports/bob.html" in index
    assert "<mark class='rare'>" in pair and "&lt;img src=x&gt;" in pair
    data = json.loads((tmp_path / "similarity.json").read_text())
    assert data["pairs"][0]["a"] in ("<img src=x>", "bob") and data["pairs"][0]["page"] == "similarity/pair-001.html"


def _cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "autograder", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=900)


def test_the_similarity_command_reads_an_nbgrader_tree(tmp_path):
    tree = tmp_path / "course" / "submitted"
    release = nbformat.read(ROOT / "course" / "gmm" / "gmm.ipynb", 4)
    for student, source in (("alice", ORIGINAL), ("bob", DISGUISED),
                            ("carol", (CORPORA / "gmm" / "correct" / "a_loops_scipy.py").read_text())):
        nb = nbformat.from_dict(json.loads(json.dumps(release)))
        nb.cells.append(nbformat.v4.new_code_cell(source))
        (tree / student / "gmm").mkdir(parents=True)
        nbformat.write(nb, tree / student / "gmm" / "gmm.ipynb")
    done = _cli("similarity", "-a", "gmm", "-g", tmp_path / "out", "--threshold", "5", tree)
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "out" / "similarity.json").read_text())
    assert [(p["a"], p["b"]) for p in data["pairs"]] == [("alice", "bob")]
    assert (tmp_path / "out" / "similarity" / "pair-001.html").is_file()
    assert _cli("grade", "-a", "gmm", "--similarity", tree).returncode == 2     # needs --gradebook


@pytest.mark.slow
def test_grade_with_a_gradebook_writes_the_class_report_and_similarity(tmp_path):
    subs = tmp_path / "subs"
    subs.mkdir()
    for name in ("a_loops_scipy.py", "c_cholesky.py"):
        (subs / name).write_text((CORPORA / "gmm" / "correct" / name).read_text())
    (subs / "copy.py").write_text(synthetic_class.Submission(
        *_parts((CORPORA / "gmm" / "correct" / "c_cholesky.py").read_text())).python())
    (subs / "mutant.py").write_text((CORPORA / "gmm" / "mutants" / "M_step__means_divided_by_N.py").read_text())
    book = tmp_path / "gb"
    done = _cli("grade", "-a", "gmm", "-j", "2", "--only", "E_step,M_step", "-f", "json", "--gradebook", book,
                "--similarity", subs)
    assert done.returncode == 0, done.stderr
    assert "class.html" in (book / "index.html").read_text()
    report = json.loads((book / "class.json").read_text())
    gradebook = json.loads((book / "gradebook.json").read_text())
    assert json.loads(done.stdout) == gradebook                          # the contract is unchanged
    assert report["students"] == 4 and report["total"]["scores"] == [g["score"] for g in gradebook]
    m_step = next(f for f in report["functions"] if f["function"] == "M_step")
    assert m_step["passed"] == 3 and m_step["partial"] + m_step["failed"] == 1
    assert report["misconceptions"][0]["function"] == "M_step"
    assert report["reports"]["mutant"] == "reports/mutant.html"
    similar = json.loads((book / "similarity.json").read_text())
    assert [(p["a"], p["b"]) for p in similar["pairs"]] == [("c_cholesky", "copy")]
    assert "similarity.html" in (book / "class.html").read_text()


@pytest.mark.slow
def test_precision_and_recall_on_a_generated_class(tmp_path):
    """300 independent submissions, a planted copy of each kind, two answer keys (the benchmark
    plants six of each and reports the figures; smaller generated classes, made from only four
    authors, share more by chance)."""
    truth = synthetic_class.generate(tmp_path / "class", n=300, copies=1, keys=2, seed=7)
    files = [(p.stem, p.read_bytes(), p.suffix) for p in sorted((tmp_path / "class").iterdir()) if p.suffix != ".json"]
    analysis = sim.analyse_files(files, GMM)
    codes = analysis.codes
    reported = {frozenset((codes[p.a].student, codes[p.b].student)) for p in analysis.pairs}
    planted = {frozenset(p[:2]): p[2] for p in truth["pairs"]}
    # every copy that changes only names, order, comments, formatting or cells is found; the
    # disguised ones (a few rewrites too) and one function copied out of five: see the benchmark
    whole = {pair for pair, kind in planted.items() if kind in ("renamed", "reordered", "comments", "reformatted",
                                                                 "split_cells")}
    assert reported <= set(planted), "an independent pair was reported"
    assert whole <= reported, {planted[p] for p in whole - reported}
    flagged = {codes[m.student].student for m in analysis.course}
    assert flagged == set(truth["course"])
