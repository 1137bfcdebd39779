"""MLPerf Tiny / EEMBC runner protocol, both directions on the virtual board:
the runner's way of talking (its reply formats) against a tinydeploy firmware, and `tinydeploy bench
--protocol mlperf-tiny` against an MLPerf Tiny firmware (a tinydeploy one here: QEMU runs no other)."""

from __future__ import annotations

import json
import re
import time

import numpy as np
import pytest
import serial

from tests.conftest import mlperf_model, run_cli
from tinydeploy.boards import get_board
from tinydeploy.model.tflite import load_tflite

pytestmark = pytest.mark.virtual

# Reply lines as the MLPerf Tiny runner reads them (formats documented in FACTS.md): a bracketed value after
# a fixed prefix; `m-lap-us-<integer>` for timestamps.
RUNNER_NAME = re.compile(r"m-(name)-dut-\[(.+)\]\Z")
RUNNER_PROFILE = re.compile(r"m-(model|profile)-\[(.+)\]\Z")
RUNNER_RESULTS = re.compile(r"m-results-\[(.+)\]\Z")
RUNNER_LAP = re.compile(r"m-lap-us-(\d+)\Z")


@pytest.fixture(scope="module")
def ad_mlperf_device(tmp_path_factory):
    """The AD model's firmware (MLPerf sources included) running on one virtual board for the module."""
    from tinydeploy.build.platformio import build_project
    from tinydeploy.flow import generate_project
    from tinydeploy.runners.qemu import QemuBoard

    model = load_tflite(mlperf_model("ad"))
    project = generate_project(model, get_board("virtual"), "native", tmp_path_factory.mktemp("ad") / "proj")
    build = build_project(project.directory, project.env_name)
    assert "warning" not in build.log.lower()
    with QemuBoard(project.directory, project.env_name) as board:
        yield model, board


class RunnerLikeSerial:
    """Talks as the official runner's SerialDevice does: writes `command%`, collects the lines up to the one
    containing `m-ready` (lines end at '\\n'; '\\r' and '\\0' are dropped)."""

    def __init__(self, url: str):
        self.port = serial.serial_for_url(url, baudrate=115_200, timeout=0.1)
        self.pending = ""

    def send_command(self, command: str, timeout: float = 10.0) -> list[str]:
        self.port.write(f"{command}%".encode())
        lines, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pending += self.port.read(4096).decode(errors="replace")
            while "\n" in self.pending:
                line, self.pending = self.pending.split("\n", 1)
                line = line.replace("\r", "").replace("\0", "")
                if line:
                    lines.append(line)
                if "m-ready" in line:
                    return lines
        raise AssertionError(f"no m-ready after {command}%: {lines}")

    def close(self) -> None:
        self.port.close()


def test_the_runners_command_sequence_against_a_tinydeploy_firmware(ad_mlperf_device):
    from tinydeploy.golden import random_inputs, tflm_outputs

    model, board = ad_mlperf_device
    data = random_inputs(model, 1, seed=3)[0]
    expected = np.frombuffer(tflm_outputs(model, [data])[0], dtype=np.int8).tolist()
    runner = RunnerLikeSerial(board.port_url)
    try:
        name = [m for m in map(RUNNER_NAME.match, runner.send_command("name")) if m]
        assert name and name[0].group(2) == "tinydeploy-virtual"
        profile = dict(m.groups() for m in map(RUNNER_PROFILE.match, runner.send_command("profile")) if m)
        assert profile["model"] == "ad01" and profile["profile"]
        assert "m-[Expecting 640 bytes]" in runner.send_command(f"db load {len(data)}")
        replies = [runner.send_command(f"db {data[i:i + 31].hex()}") for i in range(0, len(data), 31)]
        assert all("m-load-done" not in r for r in replies[:-1]) and "m-load-done" in replies[-1]
        lines = runner.send_command("infer 4 1")
        assert lines[:3] == ["m-warmup-start-1", "m-warmup-done", "m-infer-start-4"]
        laps = [int(m.group(1)) for m in map(RUNNER_LAP.match, lines) if m]
        # AD runs ~5 ms emulated with the fast kernels (~48 ms with the reference ones): 4 runs lie between the laps
        assert len(laps) == 2 and 4 * 2_000 < laps[1] - laps[0] < 4 * 60_000
        assert lines[-1] == "m-ready" and "m-infer-done" in lines
        # The first inference consumes the input (it loads into the model's own tensor, which the engine reuses):
        # as with the reference firmware, the accuracy run is `infer 1 0` on a fresh load
        assert "e-[Send 'db load N' first]" in runner.send_command(f"db {data[:4].hex()}")
        runner.send_command(f"db load {len(data)}")
        for i in range(0, len(data), 31):
            runner.send_command(f"db {data[i:i + 31].hex()}")
        lines = runner.send_command("infer 1 0")
        results = [m.group(1) for m in map(RUNNER_RESULTS.match, lines) if m]
        assert [int(float(x)) for x in results[0].split(",")] == expected
        again = [m.group(1) for m in map(RUNNER_RESULTS.match, runner.send_command("results")) if m]
        assert again == results
    finally:
        runner.close()


def test_bad_runner_commands_get_e_lines_and_the_device_keeps_answering(ad_mlperf_device):
    model, board = ad_mlperf_device
    runner = RunnerLikeSerial(board.port_url)
    try:
        assert runner.send_command("frobnicate")[:1] == ["e-[Unknown command: frobnicate]"]
        assert runner.send_command("db load 12")[0].startswith("e-[db load 12: the model's input tensor takes 640")
        assert runner.send_command("infer 1 0")[0].startswith("e-[Input incomplete")  # the failed load reset it
        assert runner.send_command("db load 640")[0] == "m-[Expecting 640 bytes]"
        assert runner.send_command("db abc")[0] == "e-[Insufficient number of hex digits]"
        assert runner.send_command("db zz")[0] == "e-[Invalid hex digit]"
        assert runner.send_command("infer 0 0")[0].startswith("e-[infer: N must be 1..")
        assert runner.send_command("infer 99999999999 0")[0] == "e-[Usage: infer N [W]]"
        assert runner.send_command("name")[0].startswith("m-name-dut-")
    finally:
        runner.close()
    # the same connection style still speaks tinydeploy's own protocol afterwards
    from tinydeploy.link import DeviceLink

    with DeviceLink(board.port_url) as link:
        assert link.identify().model_hash and link.ram().activation_bytes > 0


def test_bench_cli_benchmarks_an_mlperf_tiny_device(ad_mlperf_device):
    model, board = ad_mlperf_device
    mlperf = run_cli("bench", "--port", board.port_url, "--protocol", "mlperf-tiny", "--model", mlperf_model("ad"),
                     "--runs", "3", "--warmup", "1", "--json")
    assert mlperf.returncode == 0, mlperf.stderr[-2000:]
    report = json.loads(mlperf.stdout)
    assert report["name"] == "tinydeploy-virtual" and report["model"] == "ad01"
    assert report["outputs_match"] is True and len(report["results"]) == 640
    native = run_cli("bench", "--port", board.port_url, "--model", mlperf_model("ad"), "--runs", "3", "--json")
    assert native.returncode == 0, native.stderr[-2000:]
    timed = json.loads(native.stdout)
    assert timed["outputs_match"] is True and "op_us" not in timed  # not a profiling build
    # one clock, one firmware: the two protocols agree on the latency within 2 % (MLPerf times the loop around them)
    assert abs(report["latency_us"] - timed["latency_us"]) < 0.02 * timed["latency_us"]


def test_bench_mlperf_needs_an_input_size():
    result = run_cli("bench", "--port", "socket://127.0.0.1:9", "--protocol", "mlperf-tiny")
    assert result.returncode == 2 and "--input-bytes" in result.stderr
