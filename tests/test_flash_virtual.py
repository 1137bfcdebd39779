"""The whole loop on the virtual board: generate, build with PlatformIO, run in QEMU, measure over serial."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import pytest

from tests.conftest import mlperf_model, run_cli
from tests.tflite_edit import edit_tflite
from tinydeploy.boards import get_board
from tinydeploy.errors import TinydeployError
from tinydeploy.model.tflite import load_tflite

pytestmark = pytest.mark.virtual


def qemu_processes() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    if b"qemu-system-arm" in handle.read().split(b"\0")[0]:
                        pids.append(int(entry))
            except OSError:
                pass
    return pids


@pytest.fixture(scope="module")
def ad_project(tmp_path_factory):
    """The AD autoencoder generated and built once for the tests of this module."""
    from tinydeploy.build.platformio import build_project
    from tinydeploy.flow import generate_project

    model = load_tflite(mlperf_model("ad"))
    project = generate_project(model, get_board("virtual"), "native", tmp_path_factory.mktemp("ad") / "proj")
    build = build_project(project.directory, project.env_name)
    return model, project, build


def test_ad_end_to_end_outputs_match_the_host(tmp_path):
    before = set(qemu_processes())
    # a project path with a space (a student's "My Projects") must build and link too
    result = run_cli("flash", mlperf_model("ad"), "--board", "virtual", "--out", tmp_path / "my projects" / "ad",
                     "--json", "--runs", "5", "--samples", "4")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    for field in ("board", "engine", "latency_us", "latency_us_p95", "ram_bytes", "flash_bytes", "outputs_match",
                  "runs"):
        assert field in report
    assert report["board"] == "virtual" and report["engine"] == "native"
    assert report["outputs_match"] is True and report["golden_samples"] == 4 and report["runs"] == 5
    assert report["latency_emulated"] is True
    # 264,192 MACs cannot take less than ~1 instruction each at ~64 MIPS (16 ns per instruction)
    assert 264_192 * 0.016 / 4 < report["latency_us"] <= report["latency_us_p95"]
    model_bytes = mlperf_model("ad").stat().st_size
    assert model_bytes * 0.9 < report["flash_bytes"] < get_board("virtual").flash_bytes
    assert report["activation_bytes"] >= 768 and report["ram_bytes"] > report["activation_bytes"]
    assert report["stack_bytes"] > 0
    assert set(qemu_processes()) <= before  # QEMU stopped


def test_flash_prints_the_measured_table(tmp_path):
    result = run_cli("flash", mlperf_model("ad"), "--out", tmp_path / "ad", "--runs", "3", "--samples", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    for text in ("latency median", "p95", "stack high-water", "RAM total", "outputs match host TFLM", "yes",
                 "emulated"):
        assert text in result.stdout


def test_a_model_too_large_for_the_ram_fails_the_link_clearly(tmp_path):
    data = mlperf_model("ad").read_bytes()

    def batch400(model):
        for tensor in model.subgraphs[0].tensors:
            buffer = model.buffers[tensor.buffer]
            if len(tensor.shape) == 2 and not (buffer.data is not None and len(buffer.data)):
                tensor.shape = [400, int(tensor.shape[1])]
    big = tmp_path / "ad_batch400.tflite"
    big.write_bytes(edit_tflite(data, batch400))
    checked = run_cli("flash", big, "--out", tmp_path / "checked")
    assert checked.returncode == 1 and "does not fit virtual" in checked.stderr and "RAM" in checked.stderr
    linked = run_cli("flash", big, "--out", tmp_path / "linked", "--skip-fit-check")
    assert linked.returncode != 0
    message = [line for line in linked.stderr.splitlines() if line.startswith("error:")]
    assert len(message) == 1 and "RAM" in message[0] and "bytes" in message[0], linked.stderr[-2000:]
    assert "Traceback" not in linked.stderr


def test_killing_qemu_mid_run_gives_a_clear_error_and_leaves_no_process(ad_project):
    from tinydeploy.link import DeviceLink
    from tinydeploy.runners.qemu import QemuBoard

    _, project, _ = ad_project
    with QemuBoard(project.directory, project.env_name) as board:
        with DeviceLink(board.port_url, 115_200, timeout=5.0) as link:
            link.wait_ready(30.0)
            link.identify()
            for pid in qemu_processes():
                if str(project.directory) in open(f"/proc/{pid}/cmdline").read().replace("\0", " "):
                    os.kill(pid, signal.SIGKILL)
            started = time.monotonic()
            with pytest.raises(TinydeployError) as info:
                link.run(5, 0)
            assert time.monotonic() - started < 15
            assert board.port_url.split("//")[1] in info.value.one_line() or "port" in info.value.one_line()
    assert not [p for p in qemu_processes()
                if str(project.directory) in open(f"/proc/{p}/cmdline").read().replace("\0", " ")]


def test_two_virtual_boards_at_once_do_not_mix_outputs(ad_project, tmp_path):
    from tinydeploy.build.platformio import build_project
    from tinydeploy.flow import generate_project
    from tinydeploy.golden import random_inputs, tflm_outputs
    from tinydeploy.link import DeviceLink
    from tinydeploy.runners.qemu import QemuBoard

    model, project, _ = ad_project
    # A second firmware: the same model with its weights negated in one layer gives other outputs.
    def negate_first_weights(m):
        op = m.subgraphs[0].operators[0]
        buffer = m.buffers[m.subgraphs[0].tensors[op.inputs[1]].buffer]
        buffer.data = (-(buffer.data.astype("int16")).clip(-127, 127)).astype("int8").view("uint8")
    other_path = tmp_path / "ad_other.tflite"
    other_path.write_bytes(edit_tflite(model.raw, negate_first_weights))
    other = load_tflite(other_path)
    other_project = generate_project(other, get_board("virtual"), "native", tmp_path / "other")
    build_project(other_project.directory, other_project.env_name)

    results: dict[str, object] = {}

    def exercise(name, mdl, proj):
        try:
            inputs = random_inputs(mdl, 3, seed=7)
            expected = tflm_outputs(mdl, inputs)
            with QemuBoard(proj.directory, proj.env_name) as board, DeviceLink(board.port_url, 115_200) as link:
                link.wait_ready(30.0)
                got = []
                for data in inputs:
                    link.load_input(data)
                    link.run(1, 0)
                    got.append(link.read_output())
            results[name] = (got == expected, got)
        except Exception as exc:  # reported below
            results[name] = exc

    threads = [threading.Thread(target=exercise, args=("ad", model, project)),
               threading.Thread(target=exercise, args=("other", other, other_project))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for name in ("ad", "other"):
        assert not isinstance(results[name], Exception), results[name]
        assert results[name][0] is True, name
    assert results["ad"][1] != results["other"][1]


@pytest.mark.slow
def test_sine_keras_model_end_to_end_outputs_match(sine_model_files, tmp_path):
    """The README's main job: a Keras model, converted, built and run on the virtual board."""
    result = run_cli("flash", sine_model_files.keras, "--calib", sine_model_files.calib, "--board", "virtual",
                     "--out", tmp_path / "sine", "--json", "--runs", "5")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["outputs_match"] is True and report["engine"] == "native"
    assert report["model"] == "sine" or "sine" in report["model"]
    assert 0 < report["latency_us"] < 10_000


def test_generate_refuses_to_overwrite_what_the_user_wrote(tmp_path):
    model = mlperf_model("ad")
    out = tmp_path / "proj"
    first = run_cli("generate", model, "--out", out)
    assert first.returncode == 0, first.stderr
    assert run_cli("generate", model, "--out", out).returncode == 0  # its own files: regenerated freely
    sketch = out / "src" / "main.cpp"
    sketch.write_text(sketch.read_text() + "\n// my change\n")
    again = run_cli("generate", model, "--out", out)
    assert again.returncode == 2 and "--force" in again.stderr and "main.cpp" in again.stderr
    assert "my change" in sketch.read_text()
    assert run_cli("generate", model, "--out", out, "--force").returncode == 0
    assert "my change" not in sketch.read_text()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    refused = run_cli("generate", model, "--out", foreign)
    assert refused.returncode == 2 and "not written by tinydeploy" in refused.stderr
    assert (foreign / "notes.txt").read_text() == "mine"


def test_an_op_the_engine_lacks_is_refused_at_generation(tmp_path):
    data = mlperf_model("ad").read_bytes()

    def make_custom(model):
        model.operatorCodes[0].builtinCode = 32  # CUSTOM
        model.operatorCodes[0].deprecatedBuiltinCode = 32
        model.operatorCodes[0].customCode = b"MyOp"
    path = tmp_path / "custom.tflite"
    path.write_bytes(edit_tflite(data, make_custom))
    result = run_cli("generate", path, "--out", tmp_path / "proj")
    assert result.returncode == 2
    assert "CUSTOM:MyOp" in result.stderr and "FULLY_CONNECTED" in result.stderr
    assert not (tmp_path / "proj" / "src").exists()


def test_monitor_talks_to_a_running_device(ad_project):
    from tinydeploy.runners.qemu import QemuBoard

    model, project, _ = ad_project
    with QemuBoard(project.directory, project.env_name) as board:
        result = run_cli("monitor", "--port", board.port_url, "--runs", "3", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["engine"] == "native" and report["board"] == "virtual"
    assert model.sha256.startswith(report["model_hash"]) and report["runs"] == 3 and report["latency_us"] > 0
