"""`tinydeploy lab check` on virtual boards: eight pass; one whose QEMU is killed mid-run fails alone."""

from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.test_flash_virtual import qemu_processes
from tinydeploy.golden import tflm_outputs
from tinydeploy.hil.models import dequantize_output, quantize_input, sine_model


def test_the_self_test_model_computes_sine_on_host_tflm_without_tensorflow():
    model = sine_model()
    assert model.op_names == ["FULLY_CONNECTED"] * 3 and model.is_quantized_int8()
    assert sine_model().sha256 == model.sha256  # the same bytes every time: known outputs
    xs = np.linspace(0.0, 2 * np.pi, 40)
    outputs = tflm_outputs(model, [quantize_input(model, np.array([[x]])) for x in xs])
    assert np.abs(np.array([dequantize_output(model, o)[0] for o in outputs]) - np.sin(xs)).max() < 0.05


def lab_qemu_processes() -> list[int]:
    """QEMUs running this test session's self-test firmware (other programs' QEMUs do not count)."""
    cache = os.environ["TINYDEPLOY_CACHE_DIR"]  # the lab builds its firmware there (isolated per session)
    found = []
    for pid in qemu_processes():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if cache.encode() in handle.read():
                    found.append(pid)
        except OSError:
            pass
    return found


@pytest.mark.virtual
def test_eight_virtual_boards_pass_with_a_row_each(tmp_path):
    result = run_cli("lab", "check", "--virtual", "8", "--json", "--csv", tmp_path / "lab.csv")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["passed"] == 8 and report["failed"] == 0
    assert [b["port"] for b in report["boards"]] == [f"virtual{i}" for i in range(8)]
    for board in report["boards"]:
        assert board["status"] == "PASS" and board["board"] == "virtual" and board["serial_number"]
        assert 10 < board["latency_us"] < 1_000 and 200_000 < board["free_ram_bytes"] < 262_144
    rows = list(csv.DictReader(open(tmp_path / "lab.csv")))
    assert len(rows) == 8 and {r["status"] for r in rows} == {"PASS"} and "free_ram_bytes" in rows[0]
    progress = [line for line in result.stderr.splitlines() if line.startswith("virtual")]
    assert len(progress) == 8 and all(line.split()[1] == "PASS" for line in progress)  # one line per board
    assert lab_qemu_processes() == []


@pytest.mark.virtual
def test_a_board_killed_mid_run_fails_alone_and_the_exit_status_says_so():
    result = run_cli("lab", "check", "--virtual", "8", "--inject-kill", "3")
    assert result.returncode == 1, result.stderr[-2000:]
    rows = {line.split()[1]: line for line in result.stdout.splitlines() if line.startswith("│ virtual")}
    assert len(rows) == 8
    assert "FAIL" in rows["virtual3"] and "SIGKILL" in rows["virtual3"]
    assert all("PASS" in row for name, row in rows.items() if name != "virtual3")
    assert "7 of 8 passed" in result.stdout
    assert lab_qemu_processes() == []


def test_without_boards_on_usb_the_check_says_what_to_do():
    from tinydeploy.lab.check import find_usb_boards

    runners, unresolved = find_usb_boards()
    if runners or unresolved:
        pytest.skip("a supported board is plugged in")
    result = run_cli("lab", "check")
    assert result.returncode == 1 and "no supported board found on USB" in result.stderr
    assert "--virtual" in result.stderr
