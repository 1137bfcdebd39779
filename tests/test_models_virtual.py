"""Whole models tinydeploy was not built against, run on the virtual board: every int8 / int16x8 model in
../shared/models/tflm-examples and ../shared/models/mlperf-tiny-extra that an engine runs gives, tensor by tensor,
the bytes host TFLM (`tflite_micro`) gives on the same inputs, through the serial protocol; each one no engine runs
is refused before any build, naming why.

Lean: one project directory per engine for the whole session, so each model rebuilds only its own sources (the
native kernels, or the TFLM library, compile once). The seanet integration-test models (116 single-op int16x8
graphs) are sampled, two per family, unless TINYDEPLOY_SWEEP=all; the TFLM engine runs where a local Arduino TFLM
library is given ($TINYDEPLOY_TFLM_LIB).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO
from tinydeploy.boards import get_board
from tinydeploy.errors import TinydeployError

pytestmark = [pytest.mark.slow, pytest.mark.virtual]

SHARED = REPO.parent / "shared" / "models"
TFLM_EXAMPLES = SHARED / "tflm-examples"
MLPERF_EXTRA = SHARED / "mlperf-tiny-extra"
SEANET = TFLM_EXAMPLES / "seanet"

# Each int8 / int16x8 model and what it exercises.
RUNS = {
    "simple_add_model.tflite": (TFLM_EXAMPLES, "two 16 kB int8 inputs"),
    "dtln_noise_suppression.tflite": (TFLM_EXAMPLES, "two int8 LSTMs with state across invokes"),
    "keyword_scrambled.tflite": (TFLM_EXAMPLES, "int8 SVDF, int16 input, int32 output"),
    "keyword_scrambled_8bit.tflite": (TFLM_EXAMPLES, "int8 SVDF, int16 input, int32 output"),
    "micro_speech_lstm.tflite": (TFLM_EXAMPLES, "int8 LSTM over 49 frames"),
    "person_detect.tflite": (TFLM_EXAMPLES, "MobileNetV1 0.25 (1-D biases with quantized_dimension=3)"),
    # with the fast kernels' weight layout it is 17 kB over the 983,040 B of flash: the reference kernels fit
    "pretrainedResnet_large_int8.tflite": (MLPERF_EXTRA, "ResNet-8 at 40 channels, reference kernels"),
    "str_ww_ref_model.tflite": (MLPERF_EXTRA, "streaming wake word"),
}
# Models no engine runs on the virtual board, and a fragment of the refusal (before anything is built).
REFUSED = {
    "mobilenet_v2_quantized_1x3x224x224.tflite": (TFLM_EXAMPLES, "does not fit"),
    "person_detect_vela.tflite": (TFLM_EXAMPLES, "Ethos-U"),
    "audio_preprocessor_int8.tflite": (TFLM_EXAMPLES, "Signal"),
}
# Two per seanet family by default: the first and the last file by name.
SEANET_SAMPLE = ("add/add1.tflite", "add/add9.tflite", "conv/conv1.tflite", "conv/conv9.tflite",
                 "leaky_relu/leaky_relu0.tflite", "leaky_relu/leaky_relu9.tflite", "pad/pad0.tflite",
                 "pad/pad9.tflite", "quantize/quantize0.tflite", "quantize/quantize1.tflite",
                 "strided_slice/strided_slice0.tflite", "strided_slice/strided_slice9.tflite", "sub/sub0.tflite",
                 "sub/sub4.tflite")


def _seanet_names() -> list[str]:
    if os.environ.get("TINYDEPLOY_SWEEP") == "all" and SEANET.is_dir():
        return sorted(str(path.relative_to(SEANET)) for path in SEANET.glob("*/*.tflite"))
    return list(SEANET_SAMPLE)


def _path(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/models is not beside the checkout)")
    return path


def _tflm_library() -> str:
    library = os.environ.get("TINYDEPLOY_TFLM_LIB")
    if not library:
        pytest.skip("the TFLM engine needs a local Arduino TFLM library: set TINYDEPLOY_TFLM_LIB (CI has none)")
    return library


@pytest.fixture(scope="session")
def projects(tmp_path_factory) -> Path:
    """One project directory per engine, shared by every model of the session (incremental builds)."""
    return tmp_path_factory.mktemp("model-sweep")


def _runs_like_host_tflm(model, engine: str, projects: Path, tflm_lib: str | None = None, samples: int = 2,
                         fast_kernels: bool = True):
    """Build into the engine's shared project, start the virtual board, check the tensors the device reports and
    compare every output tensor of `samples` inferences with host TFLM's (in order: recurrent state carries over
    on both sides)."""
    from tinydeploy.engines import EngineOptions
    from tinydeploy.flow import Device, build_firmware
    from tinydeploy.runners import runner_for

    board = get_board("virtual")
    firmware = build_firmware(model, board, engine, projects / engine, force=True,
                              options=EngineOptions(tflm_lib=tflm_lib, fast_kernels=fast_kernels))
    with Device.start(firmware, runner_for(board, None)) as device:
        tensors = [(spec.bytes, spec.dtype) for spec in device.info.inputs + device.info.outputs]
        assert tensors == [(model.tensors[i].nbytes, model.tensors[i].dtype) for i in model.inputs + model.outputs]
        assert device.compare_with_host(samples) == [], f"{model.name} on {engine}: outputs differ from host TFLM"
        assert device.link.ram().activation_bytes > 0
    return firmware


@pytest.mark.parametrize("name", sorted(RUNS))
def test_model_runs_natively_like_host_tflm(name, projects):
    from tinydeploy.model.tflite import load_tflite

    folder, what = RUNS[name]
    _runs_like_host_tflm(load_tflite(_path(folder, name)), "native", projects,
                         fast_kernels="reference kernels" not in what)


@pytest.mark.parametrize("name", _seanet_names())
def test_seanet_model_runs_natively_like_host_tflm(name, projects):
    from tinydeploy.model.tflite import load_tflite

    model = load_tflite(_path(SEANET, name))
    assert model.classification.kind == "int16x8"
    _runs_like_host_tflm(model, "native", projects, samples=1)


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_what_no_engine_runs_is_refused_before_building(name, projects):
    from tinydeploy.flow import build_firmware, load_model_for_flash

    folder, fragment = REFUSED[name]
    path = _path(folder, name)
    with pytest.raises(TinydeployError) as refused:
        model = load_model_for_flash(path, None, lambda message: None, engine="native")
        build_firmware(model, get_board("virtual"), "native", projects / f"refused-{path.stem}", force=True)
    assert fragment in refused.value.one_line()
    assert not (projects / f"refused-{path.stem}" / ".pio").exists()


# ---- IO types and several outputs: small Keras models converted here --------------------------------------------


def _two_in_two_out_tflite(io_type: str, int16x8: bool = False, per_channel_dense: bool = True) -> bytes:
    """A Keras model with two inputs (4 and 3 values) and two outputs (softmax over 3, a regression of 2), full
    integer with `io_type` inputs and outputs (int8, uint8, int16 with int16x8, float32); dense weights per channel
    (the converter's default) or per tensor."""
    import tensorflow as tf

    rng = np.random.default_rng(5)
    a = tf.keras.Input((4,), batch_size=1)
    b = tf.keras.Input((3,), batch_size=1)
    hidden = tf.keras.layers.Dense(8, activation="relu")(tf.keras.layers.Concatenate()([a, b]))
    model = tf.keras.Model([a, b], [tf.keras.layers.Dense(3, activation="softmax")(hidden),
                                    tf.keras.layers.Dense(2)(hidden)])
    model.set_weights([rng.normal(0, 0.6, w.shape).astype(np.float32) for w in model.get_weights()])

    def representative():
        for _ in range(64):
            yield [rng.normal(0, 1, (1, 4)).astype(np.float32), rng.normal(0, 1, (1, 3)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    ops = tf.lite.OpsSet
    converter.target_spec.supported_ops = [
        ops.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8 if int16x8 else ops.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = getattr(tf, io_type)
    converter._experimental_disable_per_channel_quantization_for_dense_layers = not per_channel_dense
    return converter.convert()


IO_CASES = {  # case -> (io type, int16x8 compute, native runs it)
    "int8": ("int8", False, True),
    "float32": ("float32", False, True),
    "uint8": ("uint8", False, False),
    "int16": ("int16", True, True),
}


@pytest.fixture(scope="module")
def io_models(tmp_path_factory) -> dict:
    from tinydeploy.model.tflite import load_tflite

    folder = tmp_path_factory.mktemp("io-models")
    models = {}
    for case, (io_type, int16x8, _) in IO_CASES.items():
        for per_channel in (True, False):
            name = f"two_in_two_out_{case}{'' if per_channel else '_per_tensor'}"
            path = folder / f"{name}.tflite"
            path.write_bytes(_two_in_two_out_tflite(io_type, int16x8, per_channel))
            models[case if per_channel else f"{case}_per_tensor"] = load_tflite(path)
    return models


@pytest.mark.parametrize("case", sorted(IO_CASES))
def test_io_types_and_two_outputs_natively(case, io_models, projects):
    from tinydeploy.engines import get_engine

    model = io_models[case]
    io_type, int16x8, native_runs = IO_CASES[case]
    assert [model.tensors[i].dtype for i in model.inputs + model.outputs] == [io_type] * 4
    # QUANTIZE at the edges: the compute is int8 (or int16x8) whatever the IO type, uint8 included
    assert model.classification.kind == ("int16x8" if int16x8 else "int8")
    if not native_runs:  # refused with the op and the types it lacks, before anything is built
        problems = "; ".join(get_engine("native").problems(model))
        assert "QUANTIZE" in problems and "uint8" in problems, problems
        return
    _runs_like_host_tflm(model, "native", projects)


@pytest.mark.parametrize("case", sorted(IO_CASES))
def test_io_types_and_two_outputs_on_tflm(case, io_models, projects):
    from tinydeploy.engines import get_engine

    library = _tflm_library()
    # the pinned library's FULLY_CONNECTED scales per tensor: per-channel dense weights are refused before any build
    model = io_models[case]
    dense = ", ".join(str(op.index) for op in model.operators if op.op == "FULLY_CONNECTED")
    problems = "; ".join(get_engine("tflm").problems(model))
    assert f"FULLY_CONNECTED ops {dense} have per-channel weights" in problems, problems
    assert "per_channel_quantization_for_dense_layers" in problems
    _runs_like_host_tflm(io_models[f"{case}_per_tensor"], "tflm", projects, library)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_zoo_model_runs_on_tflm_like_host_tflm(name, projects):
    from tinydeploy.model.tflite import load_tflite

    library = _tflm_library()
    folder, _ = RUNS[name]
    _runs_like_host_tflm(load_tflite(_path(folder, name)), "tflm", projects, library)


@pytest.mark.parametrize("name", _seanet_names())
def test_seanet_model_runs_on_tflm_like_host_tflm(name, projects):
    from tinydeploy.engines import EngineOptions
    from tinydeploy.flow import build_firmware
    from tinydeploy.model.tflite import load_tflite
    from tinydeploy.tflm.rescale_precision import rescale_differences

    library = _tflm_library()
    model = load_tflite(_path(SEANET, name))
    if name.startswith(("add/", "sub/")):
        assert len(model.inputs) == 2
    if rescale_differences(model):  # the pinned library gives other outputs for some inputs: refused before building
        with pytest.raises(TinydeployError) as refused:
            build_firmware(model, get_board("virtual"), "tflm", projects / "refused-tflm", force=True,
                           options=EngineOptions(tflm_lib=library))
        assert "single precision" in refused.value.one_line() and "--engine native" in refused.value.one_line()
        return
    _runs_like_host_tflm(model, "tflm", projects, library, samples=1)


@pytest.mark.parametrize("name", ["leaky_relu/leaky_relu20.tflite", "sub/sub1.tflite"])
def test_pinned_tflm_gives_the_output_the_rescale_check_names(name, projects, monkeypatch):
    """Built despite the refusal, the pinned library outputs what the check's single-precision arithmetic says for
    the input it names, and host TFLM what its double-precision arithmetic says."""
    from tinydeploy.engines import EngineOptions
    from tinydeploy.engines.tflm import TflmEngine
    from tinydeploy.flow import Device, build_firmware
    from tinydeploy.golden import tflm_sample_outputs
    from tinydeploy.model.tflite import load_tflite
    from tinydeploy.runners import runner_for
    from tinydeploy.tflm.rescale_precision import rescale_differences

    library = _tflm_library()
    model = load_tflite(_path(SEANET, name))
    found = rescale_differences(model)[0]
    monkeypatch.setattr(TflmEngine, "check", lambda self, model: None)  # to measure what the refusal prevents
    board = get_board("virtual")
    firmware = build_firmware(model, board, "tflm", projects / "tflm", force=True,
                              options=EngineOptions(tflm_lib=library))
    sample = [np.full(model.tensors[i].shape, value, dtype=model.tensors[i].dtype).tobytes()
              for i, value in zip(model.inputs, found.inputs)]
    with Device.start(firmware, runner_for(board, None)) as device:
        got = np.frombuffer(device.infer_tensors(sample)[0], dtype=np.int16)
    expected = np.frombuffer(tflm_sample_outputs(model, [sample])[0][0], dtype=np.int16)
    assert set(got.tolist()) == {found.pinned} and set(expected.tolist()) == {found.current}


# ---- flash --profile: each op timed on the device --------------------------------------------------------------


def test_profile_times_every_op_on_the_device(tmp_path):
    import json

    from tests.conftest import mlperf_model, run_cli

    path = mlperf_model("ad")
    chart = tmp_path / "ops.png"
    result = run_cli("flash", path, "--board", "virtual", "--engine", "native", "--out", tmp_path / "ad",
                     "--json", "--runs", "4", "--samples", "1", "--profile", "--plot", chart)
    assert result.returncode == 0, result.stderr[-1500:]
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and chart.stat().st_size > 5_000
    report = json.loads(result.stdout)
    rows = report["profile"]
    assert [row["op"] for row in rows] == ["FULLY_CONNECTED"] * 10 and [row["index"] for row in rows] == list(range(10))
    # the ops' times add up to the whole inference (the clock reads between ops are all that lies outside them)
    assert abs(sum(row["us"] for row in rows) - report["latency_us"]) <= 0.02 * report["latency_us"] + 5
    assert abs(sum(row["share"] for row in rows) - 1.0) < 0.01
    # the 640x128 layers (81,920 MACs) take longer than the 128x8 one (1,024 MACs)
    assert rows[0]["us"] > 10 * rows[4]["us"] and rows[0]["macs"] == 81_920
    assert all(row["instructions"] > 0 and row["instructions_per_mac"] > 0 for row in rows)
    # bench reads the same profile from the running profiling build
    from tinydeploy.runners.qemu import QemuBoard

    with QemuBoard(tmp_path / "ad") as board:
        bench = run_cli("bench", "--port", board.port_url, "--model", path, "--runs", "3", "--json")
    assert bench.returncode == 0, bench.stderr[-1500:]
    timed = json.loads(bench.stdout)
    assert timed["ops"] == ["FULLY_CONNECTED"] * 10 and len(timed["op_us"]) == 10
    assert abs(sum(timed["op_us"]) - timed["latency_us"]) <= 0.05 * timed["latency_us"] + 5


def test_profile_times_every_op_on_the_tflm_engine(tmp_path):
    """TFLM's own profiler events (one per operator of the main subgraph) timed by the firmware's clock."""
    import json

    from tests.conftest import mlperf_model, run_cli
    from tinydeploy.analysis.compute import op_costs
    from tinydeploy.model.tflite import load_tflite

    library = _tflm_library()
    path = mlperf_model("kws")
    model = load_tflite(path)
    result = run_cli("flash", path, "--board", "virtual", "--engine", "tflm", "--tflm-lib", library,
                     "--out", tmp_path / "kws", "--json", "--runs", "4", "--samples", "1", "--profile", timeout=1800)
    assert result.returncode == 0, result.stderr[-1500:]
    report = json.loads(result.stdout)
    rows = report["profile"]
    assert [row["op"] for row in rows] == model.op_names and [row["index"] for row in rows] == \
        list(range(len(model.operators)))
    # the events cover each operator's invoke: only TFLM's loop between them lies outside
    assert abs(sum(row["us"] for row in rows) - report["latency_us"]) <= 0.02 * report["latency_us"] + 5
    assert all(row["instructions"] > 0 for row in rows)
    # the steps are the operators in order: the first CONV_2D (320,000 MACs) outweighs RESHAPE and SOFTMAX
    costs = op_costs(model)
    heaviest = max(range(len(rows)), key=lambda i: costs[i].macs or 0)
    lightest = model.op_names.index("RESHAPE")
    assert rows[heaviest]["us"] > 100 * rows[lightest]["us"]


def test_plot_draws_one_chart_and_says_which_before_building(tmp_path):
    from tests.conftest import mlperf_model, run_cli

    for extra, fragment in (([], "neither was given"), (["--profile", "--data", tmp_path / "d.npz"], "both")):
        result = run_cli("flash", mlperf_model("ad"), "--board", "virtual", "--out", tmp_path / "ad", "--plot",
                         tmp_path / "x.png", *extra)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-800:]
        assert fragment in result.stderr and "--plot draws one chart" in result.stderr
        assert not (tmp_path / "ad").exists() and not (tmp_path / "x.png").exists()
