"""`--report report.html` seen in a real browser: Debian's headless Chromium driven by selenium (chromedriver)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli

# The flags keep Chromium from reaching for Google's services: on a closed network those connections fail.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
                  "--disable-dev-shm-usage", "--window-size=1100,2400")


def _chromium_paths() -> tuple[str, str]:
    if importlib.util.find_spec("selenium") is None:
        pytest.skip("selenium is not installed (pip install 'tinydeploy[dev]')")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        pytest.skip("Chromium or chromedriver absent (apt-get install chromium chromium-driver; the Makefile does)")
    return browser, driver


@pytest.fixture
def browser(tmp_path):
    """A fresh headless Chromium (new profile directory) that records the page's console."""
    chromium, chromedriver = _chromium_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _open(driver, page: Path, screenshot: Path) -> dict:
    """Load the page from disk; the console must stay free of errors. Returns the data the page embeds."""
    from selenium.webdriver.common.by import By

    driver.get(page.resolve().as_uri())
    assert driver.title.endswith("tinydeploy report")
    driver.save_screenshot(str(screenshot))
    print(f"\nscreenshot of {page.name}: {screenshot}")
    errors = [entry for entry in driver.get_log("browser") if entry["level"] in ("SEVERE", "WARNING")]
    assert not errors, errors
    # nothing but the page itself was loaded (no CDN, no fonts, no images from elsewhere)
    resources = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert resources == []
    embedded = driver.find_element(By.ID, "tinydeploy-data").get_attribute("textContent")
    return json.loads(embedded)


def _text(driver, element_id: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).text


@pytest.mark.virtual
@pytest.mark.slow
def test_flash_report_shows_the_run_in_chromium(cnn_int8_tflite, browser, tmp_path):
    page = tmp_path / "flash report.html"
    result = run_cli("flash", cnn_int8_tflite, "--board", "virtual", "--engine", "native", "--out",
                     tmp_path / "proj", "--json", "--runs", "8", "--samples", "2", "--report", page)
    assert result.returncode == 0, result.stderr[-2000:]
    run = json.loads(result.stdout)
    embedded = _open(browser, page, tmp_path / "flash-report.png")
    assert embedded["flash"]["latency_us"] == run["latency_us"]

    assert _text(browser, "model-name") == run["model"]
    assert _text(browser, "latency") == f"{run['latency_us']:,} µs"
    assert _text(browser, "flash-bytes") == f"{run['flash_bytes']:,} B"
    assert _text(browser, "ram-bytes") == f"{run['ram_bytes']:,} B"
    assert _text(browser, "activation-bytes") == f"{run['activation_bytes']:,} B"
    assert _text(browser, "outputs-badge") == "outputs equal host TFLM"
    body = _text(browser, "memory")
    assert "native engine buffer" in body  # the memory plan over the ops, from analyze's view of the model
    assert _text(browser, "profile-missing") == "not measured"  # per-layer timing is not measured yet
    assert f"{len(run['latencies_us'])} runs" in _text(browser, "latency-section")


@pytest.mark.slow
def test_analyze_report_shows_the_fit_in_chromium(cnn_int8_tflite, browser, tmp_path):
    page = tmp_path / "analysis.html"
    result = run_cli("analyze", cnn_int8_tflite, "--board", "nano33ble", "--json", "--report", page)
    assert result.returncode == 0, result.stderr[-2000:]
    analysis = json.loads(result.stdout)
    _open(browser, page, tmp_path / "analyze-report.png")
    assert _text(browser, "model-name") == Path(analysis["model"]).stem
    assert _text(browser, "flash-bytes") == f"{analysis['flash_bytes']:,} B"
    assert _text(browser, "ram-bytes") == f"{analysis['ram_bytes']:,} B"
    fit = _text(browser, "fit")
    assert f"{analysis['flash_bytes']:,} B of {analysis['flash_available']:,} B" in fit
    assert _text(browser, "latency") == "not measured"  # analyze runs nothing
    result = run_cli("analyze", cnn_int8_tflite, "--report", page)
    assert result.returncode == 2 and "already exists" in result.stderr  # never over a file without --force


def test_report_takes_per_layer_rows_when_given():
    """render_report on hand-made dicts: per-layer profile rows (a later `--profile`) appear as a table."""
    from tinydeploy.htmlreport import render_report, report_data

    flash = {"model": "m", "board": "virtual", "engine": "native", "latency_us": 1000, "latencies_us": [1000, 1010],
             "profile": [{"op_index": 0, "op": "CONV_2D", "latency_us": 750}, {"op_index": 1, "op": "SOFTMAX",
                                                                                 "latency_us": 250}],
             "outputs_match": True, "golden_samples": 1, "mismatched_samples": []}
    html = render_report(report_data(flash=flash, tools={"tinydeploy": "test"}))
    assert "CONV_2D" in html and "75.0%" in html and 'id="profile-missing"' not in html
    flash.pop("profile")
    html = render_report(report_data(flash=flash, tools={}))
    assert 'id="profile-missing"' in html
    # sparse data (an older or partial JSON) renders, each missing figure as "not measured"
    assert "not measured" in render_report(report_data(flash={}, tools={}))
    assert "not measured" in render_report(report_data(analysis={}, tools={}))
    # text from the model is escaped, never markup
    html = render_report(report_data(flash={**flash, "model": "<script>x</script>"}, tools={}))
    assert "<script>x</script>" not in html
