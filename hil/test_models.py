"""The HIL suite: every model on the board gives host TFLM's outputs, fits its RAM, and has its latency
recorded (JUnit XML properties and the --td-metrics OpenMetrics file).

    pytest hil/                                              # the virtual board (QEMU)
    pytest hil/ --td-board nano33ble --td-port /dev/ttyACM0  # an Arduino Nano 33 BLE
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

TFLM_EXAMPLES = Path(__file__).resolve().parent.parent.parent / "shared" / "models" / "tflm-examples"

# Upper bounds of the median latency in microseconds, per board (emulated time on the virtual board:
# measured values with ~2x headroom, so a real slow-down fails the suite).
LATENCY_BUDGET_US = {
    "virtual": {"sine": 200, "ad01_int8": 100_000, "kws_ref_model": 1_600_000},
}


def test_outputs_equal_host_tflm(board, model):
    device = board.flash(model)
    assert device.compare_with_host(count=3) == []


def test_ram_and_flash_within_the_board(board, model):
    device = board.flash(model)
    usage = device.ram()
    assert usage.fits, f"{usage.total_bytes} B of RAM used, the board has {usage.board_bytes} B"
    assert usage.stack_bytes > 0 or not board.runner.caps.emulated  # the virtual board paints its stack
    assert device.flash_bytes <= board.profile.flash_bytes


def test_latency_is_recorded_and_within_budget(board, model):
    device = board.flash(model)
    result = device.bench(runs=10, warmup=1)
    assert len(result.latency_us.samples) == 10 and result.latency_us.min > 0
    budget = LATENCY_BUDGET_US.get(board.profile.name, {}).get(model.name)
    if budget is not None:
        assert result.latency_us.median < budget


def test_sine_model_computes_sine(board):
    from tinydeploy.hil.models import dequantize_output, quantize_input, sine_model

    model = sine_model()
    device = board.flash(model)
    xs = np.linspace(0.1, 6.2, 12)
    outputs = device.run([quantize_input(model, np.array([[x]])) for x in xs])
    ys = np.array([dequantize_output(model, out)[0] for out in outputs])
    assert np.abs(ys - np.sin(xs)).max() < 0.05


def test_a_raw_protocol_command_answers(board):
    from tinydeploy.hil.models import sine_model

    device = board.flash(sine_model())
    reply = device.command("id")
    assert reply[-1].startswith("ok id") and f"board={board.profile.name}" in reply[-1]
    assert device.command("run 0")[-1].startswith("err range")


def test_a_model_with_two_inputs_gives_host_tflm_outputs(board):
    """TFLM's simple_add_model (two 128x128 int8 images in, their sum out): each input loaded by index."""
    from tinydeploy.golden import random_samples, tflm_sample_outputs
    from tinydeploy.model.tflite import load_tflite

    path = TFLM_EXAMPLES / "simple_add_model.tflite"
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/models/tflm-examples is not beside the checkout)")
    model = load_tflite(path)
    device = board.flash(model)
    sample = random_samples(model, 1, seed=4)[0]
    assert [len(t) for t in sample] == [16384, 16384]
    assert device.infer_tensors(sample) == tflm_sample_outputs(model, [sample])[0]
