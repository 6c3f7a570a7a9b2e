"""The CLI contract other tools rely on: `python -m autograder grade ...`."""

import csv
import io
import json
import subprocess
import sys

import pytest

from conftest import ROOT

CONTRACT_KEYS = {"submission", "assignment", "score", "max_score", "error", "tests"}
TEST_KEYS = {"function", "name", "passed", "score", "max_score", "feedback",
             "status", "message", "why", "case", "timed_out"}


def _grade(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "autograder", "grade", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=600)


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    folder = tmp_path_factory.mktemp("subs")
    (folder / "good.py").write_text((ROOT / "solutions" / "gmm" / "__init__.py").read_text())
    (folder / "corrupt.ipynb").write_text('{"cells": [')
    (folder / "binary.py").write_bytes(b"\x00\x01\x02\x03" * 100)
    (folder / "empty.py").write_text("")
    return folder


def test_json_contract(submissions):
    done = _grade("--assignment", "gmm", "--format", "json", "--only", "E_step,M_step", str(submissions))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [r["submission"].rsplit("/", 1)[-1] for r in report] == ["binary.py", "corrupt.ipynb", "empty.py", "good.py"]
    for entry in report:
        assert set(entry) == CONTRACT_KEYS and entry["assignment"] == "gmm"
        assert isinstance(entry["score"], float) and isinstance(entry["max_score"], float)
        for test in entry["tests"]:
            assert set(test) == TEST_KEYS and isinstance(test["passed"], bool)
        assert entry["max_score"] == 20.0
    by_name = {r["submission"].rsplit("/", 1)[-1]: r for r in report}
    assert by_name["good.py"]["score"] == 20.0 and by_name["good.py"]["error"] is None
    assert "not valid JSON" in by_name["corrupt.ipynb"]["error"] and by_name["corrupt.ipynb"]["score"] == 0
    assert "binary" in by_name["binary.py"]["error"]
    assert by_name["empty.py"]["error"] is None and by_name["empty.py"]["score"] == 0
    assert all("not defined" in t["feedback"] for t in by_name["empty.py"]["tests"])


def test_csv_table_and_out_file(submissions, tmp_path):
    out = tmp_path / "grades.csv"
    done = _grade("-a", "gmm", "-f", "csv", "-o", str(out), "--only", "E_step", str(submissions / "good.py"))
    assert done.returncode == 0 and done.stdout == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows[0]["E_step"] == "10" and rows[0]["total"] == "10"
    table = _grade("-a", "gmm", "--only", "E_step", str(submissions / "empty.py")).stdout
    assert "E_step" in table and "0/10" in table and "not defined" in table


def test_usage_errors_exit_2(submissions):
    assert _grade("-a", "nope", str(submissions)).returncode == 2
    assert _grade("-a", "gmm", "--only", "no_such_function", str(submissions)).returncode == 2
