"""The course in a real browser: JupyterLab on localhost, driven by headless Chromium.

A student notebook with a finished solution pasted in (the released ``gmm`` notebook) is opened in
JupyterLab, run with Run > Run All Cells like a student would, and then read from the page:
every check cell shows its HTML report with full marks and nothing else (no progress-bar
widgets), ``progress()`` counts every task, the EM slider is a live widget whose picture changes
when the slider moves, and screenshots are saved under ``artifacts/browser/`` (gitignored).

Chromium comes from Debian's packages: ``make test`` installs them first (``.ci/install-chromium``),
and so does this module when they are missing; the tests skip, saying why, only when that fails.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from autograder.assignments import get_assignment
from conftest import ROOT
from solved_release import solved_release

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ASSIGNMENT = "gmm"                      # one notebook is enough for the browser; Colab runs them all
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM, CHROMEDRIVER = "chromium", "chromedriver"


def _browser_binaries() -> tuple[str, str]:
    found = shutil.which(CHROMIUM), shutil.which(CHROMEDRIVER)
    if not all(found):
        done = subprocess.run([str(ROOT / ".ci" / "install-chromium")], capture_output=True, text=True)
        found = shutil.which(CHROMIUM), shutil.which(CHROMEDRIVER)
        if not all(found):
            pytest.skip("headless Chromium is not available and could not be installed "
                        f"(.ci/install-chromium: {done.stderr.strip() or 'no output'})")
    try:
        import selenium  # noqa: F401
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[test]')")
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 5.0):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read().decode())


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a folder with the solved student notebook; yields (base URL, token, folder)."""
    root = tmp_path_factory.mktemp("lab")
    folder = root / "work"
    folder.mkdir()
    nbformat.write(solved_release(ASSIGNMENT), folder / f"{ASSIGNMENT}.ipynb")
    settings = root / "settings"
    for rel, value in {
        # every cell stays in the page (no virtual scrolling), so the whole notebook can be read
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        # no news or update pop-ups, no network
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                            "checkForUpdates": False},
    }.items():
        (settings / rel).parent.mkdir(parents=True, exist_ok=True)
        (settings / rel).write_text(json.dumps(value))
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(root / "config"), "JUPYTER_RUNTIME_DIR": str(root / "runtime"),
           "JUPYTERLAB_SETTINGS_DIR": str(settings), "JUPYTERLAB_WORKSPACES_DIR": str(root / "workspaces"),
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    log = open(root / "jupyterlab.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.open_browser=False",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={folder}", "--LabApp.news_url=",
         f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={root / 'workspaces'}",
         *(["--allow-root"] if os.geteuid() == 0 else [])],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                _get(f"{base}/api/status?token={token}")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + (root / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.3)
        yield base, token, folder
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium, chromedriver = _browser_binaries()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--no-default-browser-check", "--window-size=1400,1000",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()


# In-page helpers: the notebook's code cells, each with its source, prompt and output summary.
_CELLS_JS = """
return [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')].map(cell => ({
  source: (cell.querySelector('.cm-content') || {}).innerText || '',
  prompt: ((cell.querySelector('.jp-InputArea-prompt') || {}).innerText || '').trim(),
  errors: [...cell.querySelectorAll('[data-mime-type="application/vnd.jupyter.error"]')].map(e => e.innerText),
  stderr: [...cell.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]')].map(e => e.innerText),
  reports: [...cell.querySelectorAll('.ag-report')].map(r => ({
      title: (r.querySelector('h3') || {}).innerText || '',
      score: ((r.querySelector('h3 .ag-score') || {}).innerText || '').trim(),
      bad: r.querySelectorAll('.ag-bad').length,
      progress: r.classList.contains('ag-progress'),
      text: r.innerText})),
  widgets: cell.querySelectorAll('.jp-OutputArea .jupyter-widgets').length,
  sliders: cell.querySelectorAll('.jp-OutputArea .widget-slider').length,
  images: cell.querySelectorAll('.jp-OutputArea img.widget-image, .jp-OutputArea .widget-image img').length,
}));
"""


def _cells(driver) -> list[dict]:
    return driver.execute_script(_CELLS_JS)


def _wait(predicate, timeout: float, what: str, poll: float = 0.5):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(poll)


def _kernel_idle(base: str, token: str) -> bool:
    kernels = _get(f"{base}/api/kernels?token={token}")
    return bool(kernels) and all(k["execution_state"] == "idle" for k in kernels)


def _click_menu(driver, menu: str, entry: str) -> None:
    """Click ``menu`` in the menu bar, then its entry labelled ``entry``, as a student would."""
    from selenium.webdriver.common.by import By
    items = [e for e in driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item") if e.text.strip() == menu]
    assert items, f"no '{menu}' menu in the menu bar"
    items[0].click()

    def entries():
        return [e for e in driver.find_elements(By.CSS_SELECTOR, ".lm-Menu-item")
                if e.text.splitlines() and e.text.splitlines()[0].strip() == entry]

    _wait(entries, 10, f"the menu entry {menu} > {entry}")[0].click()


def test_solved_notebook_runs_in_jupyterlab_and_shows_its_check_reports(lab, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, token, folder = lab
    driver = browser
    started = time.monotonic()
    driver.get(f"{base}/lab/tree/{ASSIGNMENT}.ipynb?token={token}")
    _wait(lambda: len(_cells(driver)) > 5, 90, "the notebook to open")
    _wait(lambda: _kernel_idle(base, token), 90, "the kernel to start")
    n_code = len(_cells(driver))

    _click_menu(driver, "Run", "Run All Cells")

    def finished():
        cells = _cells(driver)
        broken = [c for c in cells if c["errors"]]
        assert not broken, f"a cell raised in the browser: {broken[0]['source'][:200]}\n{broken[0]['errors']}"
        done = all(re.fullmatch(r"\[\d+\]:", c["prompt"]) for c in cells)
        return cells if done and _kernel_idle(base, token) else None

    cells = _wait(finished, 300, "Run All Cells to finish", poll=1.0)
    assert len(cells) == n_code
    run_seconds = time.monotonic() - started
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    # Every check cell shows exactly one report, with full marks, and nothing else.
    tasks = [t.name for t in get_assignment(ASSIGNMENT).tasks]
    checks = [c for c in cells if c["source"].startswith("check(")]
    assert [re.match(r'check\("(\w+)"', c["source"]).group(1) for c in checks] == tasks
    for cell in checks:
        assert len(cell["reports"]) == 1, cell
        report = cell["reports"][0]
        got, total = report["score"].split(" / ")
        assert got == total and float(total) > 0 and report["bad"] == 0, report["text"]
        assert cell["widgets"] == 0 and not cell["stderr"], cell      # no progress bars in check cells
    summary = [r for c in cells for r in c["reports"] if r["progress"]]
    assert summary and f"{len(tasks)} of {len(tasks)} tasks pass their checks" in summary[0]["text"]
    assert not [c for c in cells if c["stderr"]], [c["source"][:80] for c in cells if c["stderr"]]

    # The first check report, on screen.
    first_report = driver.find_elements(By.CSS_SELECTOR, ".ag-report")[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", first_report)
    driver.save_screenshot(str(ARTIFACTS / f"{ASSIGNMENT}-check-report.png"))
    first_report.screenshot(str(ARTIFACTS / f"{ASSIGNMENT}-check-report-element.png"))

    # The EM slider is a live widget: moving it redraws the picture.
    sliders = [c for c in cells if c["sliders"]]
    assert sliders, "no slider widget in the page"
    assert sliders[0]["images"] == 1, sliders[0]
    box = _wait(lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea .widget-vbox"), 10, "the slider box")[0]
    image = box.find_element(By.CSS_SELECTOR, "img")
    before = image.get_attribute("src")
    handle = box.find_element(By.CSS_SELECTOR, ".widget-slider .noUi-handle, .widget-slider [role='slider']")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", box)
    handle.click()
    for _ in range(12):
        handle.send_keys(Keys.ARROW_RIGHT)
    _wait(lambda: image.get_attribute("src") != before, 30, "the slider to redraw the picture")
    readout = box.find_element(By.CSS_SELECTOR, ".widget-readout").text.strip()
    assert readout.isdigit() and int(readout) > 0, readout
    time.sleep(0.5)
    box.screenshot(str(ARTIFACTS / f"{ASSIGNMENT}-em-slider.png"))
    driver.save_screenshot(str(ARTIFACTS / f"{ASSIGNMENT}-em-slider-page.png"))
    (ARTIFACTS / f"{ASSIGNMENT}-summary.json").write_text(json.dumps({
        "assignment": ASSIGNMENT, "code_cells": n_code, "seconds_to_run_all": round(run_seconds, 1),
        "check_reports": [c["reports"][0]["title"] for c in checks], "slider_readout": readout}, indent=1))
