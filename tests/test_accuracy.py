"""`flash --data`: a test set checked against the model, run on host int8 (TFLM), the float model and the device;
accuracy, confusion matrix, regression errors and device/host agreement."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import mlperf_model, run_cli
from tinydeploy.accuracy import (DataSet, compare, host_outputs, load_dataset, plot_confusion, prepare,
                                 render_accuracy)
from tinydeploy.errors import TinydeployError
from tinydeploy.hil.models import sine_model
from tinydeploy.model.tflite import load_tflite


def ic_model():
    return load_tflite(mlperf_model("ic"))


def blocky_images(count: int, seed: int = 0) -> np.ndarray:
    """CIFAR-sized colour images of 8x8-pixel blocks, values 0..255 (the IC model's input range): varied enough
    that the model predicts several classes."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(0, 255, (count, 4, 4, 3))
    return np.repeat(np.repeat(small, 8, axis=1), 8, axis=2).astype(np.float32)


def labelled_ic_set(count: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Images labelled with host int8's predictions, every fourth label moved to the next class: host int8's
    accuracy is 75% by construction (the device must reach the same)."""
    model = ic_model()
    x = blocky_images(count)
    raw = host_outputs(model, prepare(model, DataSet(x, None, mlperf_model("ic"))))
    y = np.array([int(np.argmax(np.frombuffer(r, dtype=np.int8))) for r in raw])
    y[::4] = (y[::4] + 1) % 10
    return x, y, float(np.mean(y == np.array([np.argmax(np.frombuffer(r, dtype=np.int8)) for r in raw])))


# ---- the data set: forms and checks -------------------------------------------------------------------------------


def test_the_data_set_forms_load_alike(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array([0, 1, 2, 1])
    np.savez(tmp_path / "set.npz", x=x, y=y)
    (tmp_path / "xy").mkdir()
    np.save(tmp_path / "xy" / "x.npy", x)
    np.save(tmp_path / "xy" / "y.npy", y)
    (tmp_path / "classes").mkdir()
    for index, (sample, label) in enumerate(zip(x, y)):
        (tmp_path / "classes" / str(label)).mkdir(exist_ok=True)
        np.save(tmp_path / "classes" / str(label) / f"s{index}.npy", sample)
    (tmp_path / "samples").mkdir()
    for index, sample in enumerate(x):
        np.save(tmp_path / "samples" / f"{index:02d}.npy", sample)
    for form in ("set.npz", "xy"):
        data = load_dataset(tmp_path / form)
        assert np.array_equal(data.x, x) and np.array_equal(data.y, y)
    by_class = load_dataset(tmp_path / "classes")
    assert sorted(zip(by_class.y.tolist(), by_class.x[:, 0].tolist())) == sorted(zip(y.tolist(), x[:, 0].tolist()))
    assert by_class.names[0] == "0/s0.npy"
    unlabelled = load_dataset(tmp_path / "samples")
    assert np.array_equal(unlabelled.x, x) and unlabelled.y is None


def test_real_values_are_quantized_with_the_inputs_scale_and_zero_point():
    model = ic_model()
    tensor = model.tensors[model.inputs[0]]
    scale, zero = float(tensor.quant.scales[0]), int(tensor.quant.zero_points[0])
    x = blocky_images(2)
    prepared = prepare(model, DataSet(x, None, mlperf_model("ic")))
    expected = np.clip(np.round(x / scale) + zero, -128, 127).astype(np.int8)
    assert prepared.inputs == [sample.tobytes() for sample in expected]
    # int8 data is the model's own input type: sent unchanged
    again = prepare(model, DataSet(expected, None, mlperf_model("ic")))
    assert again.inputs == prepared.inputs and again.values is None


def test_labels_decide_classifier_or_regression():
    model = ic_model()
    x = blocky_images(3)
    labels = np.array([1, 9, 0])
    assert prepare(model, DataSet(x, labels, mlperf_model("ic"))).kind == "classifier"
    one_hot = np.eye(10, dtype=np.float32)[labels]
    prepared = prepare(model, DataSet(x, one_hot, mlperf_model("ic")))
    assert prepared.kind == "classifier" and prepared.labels.tolist() == [1, 9, 0]
    sine = sine_model()
    targets = prepare(sine, DataSet(np.zeros((3, 1), np.float32), np.sin(np.arange(3.0)), mlperf_model("ic")))
    assert targets.kind == "regression" and targets.targets.shape == (3, 1)


@pytest.mark.parametrize("x, y, message", [
    (np.zeros((4, 32, 32), np.float32), None, "has shape (4, 32, 32) but pretrainedResnet_quant takes samples of "
     "shape (32, 32, 3); reshape x to (N, 32, 32, 3)"),
    (np.zeros((32, 32, 3), np.float32), None, "is one sample of shape (32, 32, 3); stack the samples"),
    (np.array([["a"]] * 2), None, "has dtype <U1, not numbers"),
    (np.zeros((2, 32, 32, 3), np.float32), np.array([0, 10]), "has label 10 but the model has 10 classes"),
    (np.zeros((2, 32, 32, 3), np.float32), np.array([0, 1, 2]), "ic has 3 rows but x has 2 samples"),
    (np.full((1, 32, 32, 3), np.nan, np.float32), None, "has NaN or infinite values"),
])
def test_data_that_does_not_fit_the_model_gets_one_line(x, y, message, tmp_path):
    with pytest.raises(TinydeployError) as caught:
        prepare(ic_model(), DataSet(x, y, tmp_path / "ic"))
    text = caught.value.one_line()
    assert message in text and caught.value.hint


def test_a_npz_without_x_names_what_it_has(tmp_path):
    np.savez(tmp_path / "bad.npz", inputs=np.zeros(3))
    with pytest.raises(TinydeployError) as caught:
        load_dataset(tmp_path / "bad.npz")
    assert "bad.npz has no array 'x' (it has inputs); save the inputs as x" in caught.value.one_line()


# ---- the comparison (host outputs as both sides, and a changed device output) -------------------------------------


def test_scores_confusion_and_the_samples_that_differ(tmp_path):
    model = ic_model()
    x, y, host_accuracy = labelled_ic_set(16)
    data = DataSet(x, y, tmp_path / "ic.npz")
    prepared = prepare(model, data)
    host = host_outputs(model, prepared)
    same = compare(model, data, prepared, host, list(host), "native", True)
    assert same.passed and same.agreement == 1.0 and same.differing == []
    device = same.column("device")
    assert device.accuracy == same.column("host int8").accuracy == host_accuracy == 0.75
    matrix = np.array(device.confusion)
    assert matrix.sum() == 16 and np.trace(matrix) == 12
    # a device output one byte off: listed, and a failure for a bit-exact engine only
    changed = list(host)
    raw = bytearray(changed[5])
    raw[0] = (raw[0] + 1) % 256
    changed[5] = bytes(raw)
    differs = compare(model, data, prepared, host, changed, "native", True)
    assert differs.differing == [5] and differs.agreement == 1 - 1 / 16 and not differs.passed
    assert differs.differences()[0]["bytes_differing"] == 1
    assert compare(model, data, prepared, host, changed, "tflm", False).passed
    from rich.console import Console

    console = Console(record=True, width=120)
    render_accuracy(differs, console)
    text = console.export_text()
    assert "75.00%" in text and "1 of 16 samples differ from host int8" in text and ": 5" in text
    plot_confusion(same, tmp_path / "confusion.png")
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_flash_refuses_bad_data_before_building(tmp_path):
    np.savez(tmp_path / "wrong.npz", x=np.zeros((3, 2), np.float32))
    result = run_cli("flash", mlperf_model("ic"), "--data", tmp_path / "wrong.npz", "--out", tmp_path / "p")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("error: x in ") and "reshape x to (N, 32, 32, 3)" \
        in result.stderr
    assert not (tmp_path / "p").exists()
    plot = run_cli("flash", mlperf_model("ic"), "--plot", tmp_path / "c.png", "--out", tmp_path / "p")
    assert plot.returncode != 0 and "--plot draws one chart" in plot.stderr and "add --profile or --data" in plot.stderr


# ---- on the virtual board ----------------------------------------------------------------------------------------


@pytest.mark.virtual
@pytest.mark.slow
def test_ic_device_accuracy_equals_host_int8_on_the_virtual_board(tmp_path):
    x, y, host_accuracy = labelled_ic_set(24)
    np.savez(tmp_path / "ic_test.npz", x=x, y=y)
    result = run_cli("flash", mlperf_model("ic"), "--data", tmp_path / "ic_test.npz", "--json", "--runs", "1",
                     "--samples", "1", "--out", tmp_path / "ic", "--plot", tmp_path / "confusion.png",
                     "--report", tmp_path / "ic.html")
    assert result.returncode == 0, result.stderr[-2000:]
    accuracy = json.loads(result.stdout)["accuracy"]
    assert accuracy["samples"] == 24 and accuracy["kind"] == "classifier"
    columns = accuracy["columns"]
    assert set(columns) == {"host int8", "device"}  # an int8 model: no float column
    assert columns["device"]["accuracy"] == columns["host int8"]["accuracy"] == host_accuracy == 0.75
    assert columns["device"]["confusion_matrix"] == columns["host int8"]["confusion_matrix"]
    assert accuracy["agreement_device_host"] == 1.0 and accuracy["differing_samples"] == []
    assert accuracy["agreement_required"] is True and accuracy["passed"] is True
    assert (tmp_path / "confusion.png").stat().st_size > 1000
    page = (tmp_path / "ic.html").read_text()
    assert "Accuracy on the board" in page and "75.00%" in page and 'id="confusion"' in page
    assert "tinydeploy: device: sample 24/24" in result.stderr  # progress, one line per tenth outside a terminal


@pytest.mark.virtual
@pytest.mark.slow
def test_a_keras_regression_model_reports_float_host_and_device(sine_model_files, tmp_path):
    """The float column comes from the Keras model itself; RMSE against sin(x) for all three."""
    x = np.linspace(0.1, 6.2, 12, dtype=np.float32)[:, None]
    np.savez(tmp_path / "sine_test.npz", x=x, y=np.sin(x))
    as_json = run_cli("flash", sine_model_files.keras, "--calib", sine_model_files.calib, "--data",
                      tmp_path / "sine_test.npz", "--out", tmp_path / "sine", "--runs", "1", "--samples", "1", "--json")
    assert as_json.returncode == 0, as_json.stderr[-2000:]
    accuracy = json.loads(as_json.stdout)["accuracy"]
    columns = accuracy["columns"]
    assert accuracy["kind"] == "regression" and set(columns) == {"float", "host int8", "device"}
    assert columns["device"] == columns["host int8"]
    # a fitted sine: float close to sin(x); int8 within a few output steps of it
    assert columns["float"]["rmse"] < 0.1 and columns["host int8"]["rmse"] < 0.15
    assert columns["float"]["rmse"] != columns["host int8"]["rmse"]


def test_a_float_tflite_runs_as_the_float_column():
    from tests.conftest import SHARED_MODELS

    path = SHARED_MODELS.parent / "tflm-examples" / "hello_world_float.tflite"
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/models/tflm-examples is not beside the checkout)")
    from tinydeploy.accuracy import float_outputs

    x = np.linspace(0.5, 6.0, 6, dtype=np.float32)[:, None]
    values, what = float_outputs(path, x)
    assert what == "float .tflite (TFLM)" and values.shape == (6, 1)
    assert np.max(np.abs(values - np.sin(x))) < 0.1  # TFLM's example model approximates sin(x)
    assert float_outputs(mlperf_model("ic"), x)[0] is None  # an int8 file has no float column
