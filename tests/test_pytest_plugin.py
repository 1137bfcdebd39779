"""The pytest plugin, exercised as users run it: a pytest subprocess over a small test file, two virtual
boards, JUnit XML and OpenMetrics checked afterwards."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET

import pytest

from tinydeploy.pytest_plugin import MetricsRecorder

INNER_TESTS = '''
import numpy as np
from tinydeploy.hil.models import Dense, dense_int8_model, sine_model

OTHER = dense_int8_model("other", [Dense(np.full((4, 1), 0.5), np.zeros(4), relu=True)],
                         np.linspace(-1, 1, 32)[:, None])


def test_outputs(board):
    assert board.flash(sine_model()).compare_with_host(2) == []


def test_bench_and_ram(board):
    device = board.flash(sine_model())
    result = device.bench(runs=5, warmup=1)
    assert result.latency_us.median < 5_000 and result.emulated
    assert device.ram().fits


def test_second_model_then_back(board):
    assert board.flash(OTHER).compare_with_host(2) == []
    assert board.flash(sine_model()).command("id")[-1].startswith("ok id")


def test_all_boards_at_once(all_boards):
    assert len(all_boards) == 2
    outputs = [b.flash(sine_model()).infer(bytes([7])) for b in all_boards]
    assert outputs[0] == outputs[1]


def test_budget_that_fails(board):
    assert board.flash(sine_model()).bench(runs=3).latency_us.median < 1
'''


@pytest.fixture(scope="module")
def inner_run(tmp_path_factory):
    """One pytest run of INNER_TESTS on two virtual boards (shared by the assertions below)."""
    folder = tmp_path_factory.mktemp("inner")
    (folder / "test_inner.py").write_text(textwrap.dedent(INNER_TESTS))
    junit, metrics, logs = folder / "junit.xml", folder / "metrics.txt", folder / "logs"
    proc = subprocess.run([sys.executable, "-m", "pytest", str(folder / "test_inner.py"), "-q", "-p",
                           "no:cacheprovider", "--td-virtual", "2", f"--junitxml={junit}", f"--td-metrics={metrics}",
                           f"--td-log-dir={logs}", "--td-build-dir", str(folder / "fw"), "--rootdir", str(folder)],
                          capture_output=True, text=True, timeout=300, cwd=folder,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    return proc, junit, metrics, logs


# The inner run builds two firmwares and runs 9 tests (~12 s): its users are marked slow.
@pytest.mark.slow
@pytest.mark.virtual
def test_tests_run_once_per_board_and_a_budget_failure_fails(inner_run):
    proc, *_ = inner_run
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = proc.stdout.strip().splitlines()[-1]
    # 4 board tests x 2 boards + 1 all-boards test; the budget test fails on both boards
    assert "2 failed" in summary and "7 passed" in summary, proc.stdout[-3000:]
    assert "test_budget_that_fails[virtual0]" in proc.stdout and "test_budget_that_fails[virtual1]" in proc.stdout


@pytest.mark.slow
@pytest.mark.virtual
def test_junit_xml_carries_latency_ram_and_flash(inner_run):
    _, junit, _, _ = inner_run
    cases = {case.get("name"): {p.get("name"): p.get("value") for p in case.iter("property")}
             for case in ET.parse(junit).getroot().iter("testcase")}
    bench = cases["test_bench_and_ram[virtual1]"]
    assert 0 < float(bench["td_latency_us_median"]) < 5_000 and bench["td_latency_emulated"] == "true"
    assert int(bench["td_flash_bytes"]) > 1000 and int(bench["td_ram_used_bytes"]) > 0
    assert int(bench["td_ram_free_bytes"]) + int(bench["td_ram_used_bytes"]) == 262_144
    assert bench["td_board"] == "virtual" and bench["td_model"] == "sine" and bench["td_target"] == "virtual1"
    assert "td_latency_us_median" in cases["test_budget_that_fails[virtual0]"]  # recorded even when it fails


@pytest.mark.slow
@pytest.mark.virtual
def test_openmetrics_file_is_well_formed(inner_run):
    _, _, metrics, _ = inner_run
    lines = metrics.read_text().splitlines()
    assert lines[-1] == "# EOF"
    families = {line.split()[2] for line in lines if line.startswith("# TYPE")}
    assert {"tinydeploy_latency_microseconds", "tinydeploy_flash_bytes", "tinydeploy_ram_used_bytes"} <= families
    sample = re.compile(r'^(\w+)\{(\w+="(?:[^"\\]|\\.)*")(,\w+="(?:[^"\\]|\\.)*")*\} -?\d+(\.\d+)?$')
    samples = [line for line in lines if not line.startswith("#")]
    assert samples and all(sample.match(line) and line.split("{")[0] in families for line in samples)
    assert len(samples) == len(set(line.rsplit(" ", 1)[0] for line in samples))  # no duplicate label sets
    assert any('test="test_inner.py::test_bench_and_ram[virtual0]"' in s and 'stat="median"' in s for s in samples)


@pytest.mark.slow
@pytest.mark.virtual
def test_each_model_is_flashed_once_per_board_and_logged_per_test(inner_run):
    _, _, _, logs = inner_run
    text = "".join(path.read_text() for path in sorted(logs.glob("*.log")))
    # virtual0: sine, other, sine again (test_second_model_then_back); nothing else restarts a board
    assert text.count("[virtual0] flashing sine") == 2 and text.count("[virtual0] flashing other") == 1
    assert text.count("building sine") == 1  # one build shared by both boards
    assert len(list(logs.glob("*.log"))) == 9


def test_bad_options_are_usage_errors(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x(board):\n    pass\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_x.py"), "--td-board", "nano33ble",
                           "-p", "no:cacheprovider"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert proc.returncode == 4 and "needs --td-port" in proc.stderr


def test_metrics_recorder_escapes_labels_and_keeps_the_last_value():
    recorder = MetricsRecorder()
    recorder.add("tinydeploy_flash_bytes", {"test": 'a"b\\c'}, 1)
    recorder.add("tinydeploy_flash_bytes", {"test": 'a"b\\c'}, 2)
    text = recorder.render()
    assert 'tinydeploy_flash_bytes{test="a\\"b\\\\c"} 2' in text and " 1\n" not in text
