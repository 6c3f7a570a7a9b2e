"""The class report and the similarity pages in a real browser (headless Chromium via selenium).

The demo's class (``benchmarks/synthetic_class.py --demo`` and ``examples/gmm``) is graded by the
CLI into a gradebook with ``--similarity``; Chromium opens ``index.html`` from disk, follows the
links as an instructor would (index -> class report -> similarity -> a pair side by side), reads
the pages, opens a misconception, and saves screenshots in ``artifacts/browser/``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from test_browser import ARTIFACTS, browser  # noqa: F401  (the Chromium fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

sys.path.insert(0, str(ROOT / "benchmarks"))
import synthetic_class  # noqa: E402


@pytest.fixture(scope="module")
def gradebook(tmp_path_factory):
    root = tmp_path_factory.mktemp("class")
    truth = synthetic_class.demo(root / "class")
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", "-a", "gmm", "-j", "2", "-f", "csv",
                           "--gradebook", str(root / "gb"), "--similarity", str(ROOT / "examples" / "gmm"),
                           str(root / "class")], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr
    return root / "gb", truth


_EXTERNAL_JS = """
return [...document.querySelectorAll('[src],[href]')].map(e => e.getAttribute('src') || e.getAttribute('href'))
  .filter(u => /^(https?:)?\\/\\//.test(u));
"""


def _full_page(driver, path):
    height = driver.execute_script("return Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)")
    driver.set_window_size(1400, min(max(height + 40, 800), 9000))
    time.sleep(0.3)
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1000)


def _link(driver, text):
    from selenium.webdriver.common.by import By
    links = [a for a in driver.find_elements(By.TAG_NAME, "a") if a.text.strip().startswith(text)]
    assert links, f"no link '{text}' on {driver.current_url}"
    return links[0]


def test_class_report_and_similarity_pages_in_chromium(gradebook, browser):  # noqa: F811
    from selenium.webdriver.common.by import By

    folder, truth = gradebook
    driver = browser
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.get((folder / "index.html").as_uri())
    _link(driver, "Class report").click()
    assert driver.current_url.endswith("/class.html")
    report = json.loads((folder / "class.json").read_text())

    # What the instructor sees: one row per function with a bar and a histogram, a misconception
    # per line, follow-up, every check; no script, nothing fetched from the internet.
    assert driver.find_element(By.TAG_NAME, "h1").text.startswith("Class report: EM for Gaussian mixture models")
    assert driver.execute_script("return document.scripts.length") == 0
    assert driver.execute_script(_EXTERNAL_JS) == []
    rows = driver.find_elements(By.CSS_SELECTOR, "#functions ~ table")[0].find_elements(By.TAG_NAME, "tr")
    assert len(rows) == 1 + len(report["functions"]) + 1          # header, functions, total
    charts = driver.find_elements(By.CSS_SELECTOR, "svg.hist, svg.bar")
    assert len(charts) >= 2 * len(report["functions"])
    assert all(c.size["width"] > 50 and c.size["height"] > 10 for c in charts)   # drawn, not collapsed
    items = driver.find_elements(By.CSS_SELECTOR, "ol.mis > li")
    assert len(items) == len(report["misconceptions"]) > 3
    first = report["misconceptions"][0]
    assert f"{first['students']} student(s)" in items[0].text and first["function"] in items[0].text
    summary = items[0].find_element(By.TAG_NAME, "summary")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", summary)
    summary.click()
    assert "What broke" in items[0].text or "Smallest failing input" in items[0].text
    follow = driver.find_element(By.ID, "follow-up").find_element(By.XPATH, "following-sibling::table")
    assert "broken" in follow.text and "nothing attempted" not in follow.text.split("broken")[0]
    assert "john" in follow.text and "not attempted: train_EM" in follow.text
    items[0].screenshot(str(ARTIFACTS / "class-report-misconception.png"))
    _full_page(driver, ARTIFACTS / "class-report.png")

    # The similarity page: the planted copies at the top, the pasted answer key, how to read a score.
    _link(driver, "similarity (").click()
    assert driver.current_url.endswith("/similarity.html")
    assert "never proof" in driver.find_element(By.CSS_SELECTOR, ".read").text
    assert driver.execute_script("return document.scripts.length") == 0 and driver.execute_script(_EXTERNAL_JS) == []
    table = driver.find_elements(By.TAG_NAME, "table")[0]
    pairs = [tuple(td.text for td in tr.find_elements(By.TAG_NAME, "td")[2:4])
             for tr in table.find_elements(By.TAG_NAME, "tr")[1:]]
    planted = {frozenset(p[:2]) for p in truth["pairs"]}
    # examples/gmm's three notebooks are one author's (partly_wrong and broken are correct.ipynb
    # with bugs put in): a pair of them may rightly be listed too; nothing else may.
    same_author = {frozenset(p) for p in (("correct", "partly_wrong"), ("broken", "correct"), ("broken", "partly_wrong"))}
    found = {frozenset(p) for p in pairs}
    assert planted <= found and found - planted <= same_author, pairs
    course = driver.find_elements(By.TAG_NAME, "table")[1]
    assert "john" in course.text and "E_step 100%" in course.text
    titles = {a.get_attribute("title") for a in course.find_elements(By.TAG_NAME, "a") if a.get_attribute("title")}
    assert "solutions/gmm: E_step" in titles
    _full_page(driver, ARTIFACTS / "similarity.png")

    _link(driver, "side by side").click()
    assert "/similarity/pair-001.html" in driver.current_url
    marks = driver.find_elements(By.CSS_SELECTOR, "mark.rare")
    assert marks and all(m.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)" for m in marks[:5])
    columns = driver.find_elements(By.CSS_SELECTOR, ".sides")
    assert len(columns) > 3
    left, right = columns[1].find_elements(By.CSS_SELECTOR, ".unit")[:2]
    assert left.location["x"] < right.location["x"] and abs(left.location["y"] - right.location["y"]) < 2  # side by side
    driver.save_screenshot(str(ARTIFACTS / "similarity-pair.png"))
    _link(driver, "← similarity").click()
    assert driver.current_url.endswith("/similarity.html")
