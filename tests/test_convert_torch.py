"""ONNX and PyTorch models in: a conv net built in PyTorch, exported to .onnx and .pt2 and given as module:function,
converted to int8 through onnx2tf and the TFLite converter, and run on the virtual board against host TFLM."""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, run_cli
from tinydeploy.errors import TinydeployError

TORCH_FUNCTION = f"{REPO / 'tests' / 'torch_models.py'}:tiny_cnn"


def _require(*modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (pip install 'tinydeploy[torch]', see pyproject.toml)")


@dataclass(frozen=True)
class TorchFiles:
    onnx: Path
    pt2: Path
    calib_nchw: Path  # PyTorch layout
    calib_nhwc: Path  # the int8 model's layout, same samples


@pytest.fixture(scope="session")
def torch_files(tmp_path_factory) -> TorchFiles:
    _require("torch", "onnx", "onnx2tf", "onnxscript", "tf_keras")
    import torch

    from tests import torch_models

    folder = tmp_path_factory.mktemp("torch")
    model, (example,) = torch_models.tiny_cnn()
    program = torch.export.export(model, (example[:1],))
    torch.export.save(program, folder / "tiny_cnn.pt2")
    torch.onnx.export(program, (example[:1],), str(folder / "tiny_cnn.onnx"), dynamo=True, external_data=False,
                      verbose=False)
    calib, _ = torch_models.samples(200, seed=1)
    np.save(folder / "calib_nchw.npy", calib)
    np.save(folder / "calib_nhwc.npy", calib.transpose(0, 2, 3, 1))
    return TorchFiles(folder / "tiny_cnn.onnx", folder / "tiny_cnn.pt2", folder / "calib_nchw.npy",
                      folder / "calib_nhwc.npy")


@pytest.fixture(scope="session")
def onnx_converted(torch_files, tmp_path_factory):
    """`convert` of the ONNX file with channels-first calibration data: (output path, JSON report)."""
    out = tmp_path_factory.mktemp("onnx-int8") / "tiny_cnn.tflite"
    result = run_cli("convert", torch_files.onnx, "-o", out, "--calib", torch_files.calib_nchw, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    return out, json.loads(result.stdout)


# ---------------------------------------------------------------------------------------------- fast


@pytest.mark.parametrize("text, expected", [
    ("mypackage.models:build", True), ("models:tiny_cnn", True), ("path/to/net.py:build", True),
    ("model.onnx", False), ("a:b:c", False), ("pkg.mod:", False), (":fn", False), ("pkg.mod:1fn", False),
])
def test_function_spec_is_recognised(text, expected):
    from tinydeploy.model.convert_torch import is_function_spec

    assert is_function_spec(text) is expected


def test_formats_are_detected_by_suffix_and_spec(tmp_path):
    from tinydeploy.model.convert import detect_format

    (tmp_path / "m.onnx").write_bytes(b"\x08\x07")
    (tmp_path / "m.pt2").write_bytes(b"PK\x03\x04")  # a zip, like a .keras file, told apart by its suffix
    assert detect_format(tmp_path / "m.onnx") == "onnx"
    assert detect_format(tmp_path / "m.pt2") == "pt2"
    assert detect_format(Path("tests.torch_models:tiny_cnn")) == "torch_function"


def test_missing_onnx2tf_names_the_install_command_monkeypatched(monkeypatch):
    """With onnx2tf reported absent (find_spec patched), the error is one line with the command that fixes it."""
    import importlib.util as util

    from tinydeploy.model import convert_onnx

    real = util.find_spec
    monkeypatch.setattr(util, "find_spec", lambda name, *a: None if name == "onnx2tf" else real(name, *a))
    with pytest.raises(TinydeployError) as caught:
        convert_onnx._import_onnx2tf()
    line = caught.value.one_line()
    assert "onnx2tf" in line and "pip install 'tinydeploy[onnx]'" in line and "--no-deps 'tf-keras==" in line


@pytest.mark.parametrize("size, kernel, stride, pads, ceil_mode", [
    ((8, 8), 3, 2, 1, 0), ((7, 9), 2, 2, 0, 1), ((10, 5), 3, 2, 1, 1), ((6, 6), 3, 1, 1, 0), ((9, 9), 3, 3, 0, 1),
])
def test_max_pool_padding_written_as_edge_copies_computes_the_same(size, kernel, stride, pads, ceil_mode):
    """The graph onnx2tf gets pads MaxPools with copies of edge elements instead of -inf: the same maxima."""
    _require("onnx", "onnxruntime")
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper

    from tinydeploy.model.convert_onnx import _graphs_for_onnx2tf

    node = helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[kernel, kernel],
                            strides=[stride, stride], pads=[pads] * 4, ceil_mode=ceil_mode)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, *size])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    model = onnx.shape_inference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]))
    rewritten = _graphs_for_onnx2tf(model)[0]
    pools = [n for n in rewritten.graph.node if n.op_type == "MaxPool"]
    attrs = {a.name: helper.get_attribute_value(a) for a in pools[0].attribute}
    same_padding = pads and not ceil_mode and (size[0] % stride == 0 and kernel - stride == 2 * pads)
    assert rewritten is model if same_padding else (not any(attrs["pads"]) and not attrs["ceil_mode"])
    x = np.random.default_rng(0).normal(-5.0, 1.0, (1, 3, *size)).astype(np.float32)  # all negative: pads show
    outputs = [onnxruntime.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0] for m in (model, rewritten)]
    assert outputs[0].shape == outputs[1].shape and np.array_equal(outputs[0], outputs[1])


def test_bad_onnx_file_is_one_line_error(tmp_path):
    _require("onnx")
    bad = tmp_path / "broken.onnx"
    bad.write_bytes(b"\xff\x00 not a protobuf")
    result = run_cli("convert", bad, "-o", tmp_path / "out.tflite", "--calib", "random")
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "not a readable ONNX model" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_function_that_does_not_import_is_one_line_error(tmp_path):
    _require("torch", "onnx")
    result = run_cli("convert", "no_such_package_td.models:build", "-o", tmp_path / "out.tflite", "--calib",
                     "random", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "cannot import no_such_package_td.models" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_function_returning_the_wrong_thing_names_the_contract(tmp_path):
    _require("torch", "onnx")
    (tmp_path / "wrong_model.py").write_text("def build():\n    return 42\n")
    result = run_cli("convert", "wrong_model:build", "-o", tmp_path / "out.tflite", "--calib", "random",
                     cwd=tmp_path)
    assert result.returncode == 2
    assert "returned int" in result.stderr and "ExportedProgram" in result.stderr


# ---------------------------------------------------------------------------------------------- conversions


@pytest.mark.slow
def test_onnx_converts_to_int8_channels_last_with_agreement(onnx_converted):
    out, report = onnx_converted
    from tinydeploy.model.tflite import load_tflite

    model = load_tflite(out)
    assert model.is_quantized_int8()
    assert report["source_format"] == "onnx"
    assert report["inputs"][0]["shape"] == [1, 12, 16, 3] and report["inputs"][0]["dtype"] == "int8"
    layout = report["source_info"]["input_layout"]
    assert (layout["source"], layout["int8_model"], layout["permutation"]) == ("NCHW", "NHWC", [0, 2, 3, 1])
    check = report["source_info"]["float_check"]
    assert check["reference"].startswith("ONNX Runtime") and check["max_abs_error"] < 1e-4
    (output,) = report["agreement"]["outputs"]
    assert output["kind"] == "classifier" and output["top1_agreement"] >= 0.95
    assert output["rmse"] < 2 * output["lsb"]
    print(f"\nONNX -> int8: top-1 agreement {output['top1_agreement']:.3f}, RMSE {output['rmse']:.4g} "
          f"(1 LSB {output['lsb']:.4g}), float check {check['max_abs_error']:.3g}, "
          f"stages {report['source_info']['stage_seconds']}, imports {report['tensorflow_import_s']} s")


@pytest.mark.slow
def test_pt2_with_channels_last_calibration_gives_the_onnx_model(torch_files, onnx_converted, tmp_path):
    """The .pt2 route (torch.onnx inside) with the same samples stored channels last quantizes to the same bytes
    as the ONNX file calibrated channels first: both layouts of the data are read the same way."""
    onnx_out, onnx_report = onnx_converted
    out = tmp_path / "from_pt2.tflite"
    result = run_cli("convert", torch_files.pt2, "-o", out, "--calib", torch_files.calib_nhwc, "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["source_format"] == "pt2"
    assert report["source_info"]["float_check"]["reference"].startswith("PyTorch")
    assert report["source_info"]["float_check"]["max_abs_error"] < 1e-4
    assert out.read_bytes() == onnx_out.read_bytes()
    output = report["agreement"]["outputs"][0]
    print(f"\n.pt2 -> int8: top-1 agreement {output['top1_agreement']:.3f}, RMSE {output['rmse']:.4g}, "
          f"stages {report['source_info']['stage_seconds']}")


@pytest.mark.slow
def test_exported_program_of_a_1d_net_converts_channels_last_and_runs_on_host_tflm(tmp_path):
    """A function returning an ExportedProgram; (N, C, L) becomes (1, L, C); its depthwise 1-D conv becomes ops TFLM
    has (onnx2tf's grouped convolution would be a CONV_2D with groups, which TFLM cannot run)."""
    _require("torch", "onnx", "onnx2tf", "onnxscript", "tf_keras")
    from tinydeploy.golden import random_inputs, tflm_outputs
    from tinydeploy.model.tflite import load_tflite

    out = tmp_path / "conv1d.tflite"
    result = run_cli("convert", f"{REPO / 'tests' / 'torch_models.py'}:tiny_conv1d", "-o", out, "--calib", "random",
                     "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["source_format"] == "torch_function"
    layout = report["source_info"]["input_layout"]
    assert (layout["source"], layout["int8_model"], layout["int8_shape"]) == ("NCW", "NWC", [1, 49, 4])
    assert report["source_info"]["float_check"]["max_abs_error"] < 1e-4
    model = load_tflite(out)
    assert model.is_quantized_int8()
    assert len(tflm_outputs(model, random_inputs(model, 2, seed=0))) == 2


@pytest.mark.slow
def test_max_pools_with_padding_keep_their_int8_range(tmp_path):
    """onnx2tf pads such pools with float32's lowest value; calibrated, that gave their tensors scales near 1e36
    (every value one level, the native engine refused the model). Edge copies leave the range to the data."""
    _require("torch", "onnx", "onnx2tf", "onnxscript", "tf_keras")
    from tinydeploy.golden import random_inputs, tflm_outputs
    from tinydeploy.model.tflite import load_tflite

    out = tmp_path / "pools.tflite"
    result = run_cli("convert", f"{REPO / 'tests' / 'torch_models.py'}:padded_max_pools", "-o", out, "--calib",
                     "random", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["source_info"]["float_check"]["max_abs_error"] < 1e-4
    model = load_tflite(out)
    scales = {t.name: max(t.quant.scales) for t in model.tensors if t.quant is not None and t.dtype == "int8"}
    assert max(scales.values()) < 1.0, sorted(scales.items(), key=lambda item: -item[1])[:3]
    # the edge copies are static slices, not the dynamic shapes the warning is about
    assert "STRIDED_SLICE" in model.op_names and "SHAPE" not in model.op_names
    assert not any("dynamic shapes" in w for w in report["warnings"]), report["warnings"]
    output_scale = model.tensors[model.outputs[0]].quant.scales[0]
    assert report["agreement"]["outputs"][0]["rmse"] < 4 * output_scale
    assert len(tflm_outputs(model, random_inputs(model, 2, seed=0))) == 2


@pytest.mark.slow
def test_onnx2tf_failure_names_the_node_its_error_and_a_way(tmp_path):
    """onnx2tf fails on PyTorch's nn.GRU; the error once quoted onnx2tf's last line of generic advice (about
    NonMaxSuppression) instead of the node and the error."""
    _require("torch", "onnx", "onnx2tf", "onnxscript", "tf_keras")
    out = tmp_path / "gru.tflite"
    result = run_cli("convert", f"{REPO / 'tests' / 'torch_models.py'}:batch_first_gru", "-o", out, "--calib",
                     "random")
    assert result.returncode == 2 and not out.exists()
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "(GRU): InvalidArgumentError: Number of ways to split" in lines[0] and "nn.GRUCell" in lines[0]
    assert "NonMaxSuppression" not in lines[0]


@pytest.mark.slow
def test_constant_index_selects_become_slices_the_native_engine_runs(tmp_path):
    """x[:, t] of an unrolled GRUCell was a GATHER, which the native engine has no kernel for."""
    _require("torch", "onnx", "onnx2tf", "onnxscript", "tf_keras")
    from tinydeploy.model.tflite import load_tflite

    out = tmp_path / "gru_cell.tflite"
    result = run_cli("convert", f"{REPO / 'tests' / 'torch_models.py'}:unrolled_gru_cell", "-o", out, "--calib",
                     "random", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["source_info"]["float_check"]["max_abs_error"] < 1e-4
    ops = load_tflite(out).op_names
    assert "GATHER" not in ops and "STRIDED_SLICE" in ops
    analyzed = run_cli("analyze", out, "--board", "virtual", "--engine", "native", "--json")
    assert analyzed.returncode == 0, analyzed.stderr[-2000:]


@pytest.mark.slow
def test_selects_onnx2tf_slices_wrongly_stay_gathers(tmp_path):
    """onnx2tf moves the axes of a Slice of MultiheadAttention's packed q/k/v wrongly (the float models differed by
    0.26 on outputs of 0.46); such a graph is converted again with its Gathers, which onnx2tf gets right."""
    _require("torch", "onnx", "onnx2tf", "onnxscript", "tf_keras")
    from tinydeploy.model.tflite import load_tflite

    out = tmp_path / "attention.tflite"
    result = run_cli("convert", f"{REPO / 'tests' / 'torch_models.py'}:tiny_attention", "-o", out, "--calib",
                     "random", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["source_info"]["float_check"]["max_abs_error"] < 1e-4
    assert not any("differs from" in w for w in report["warnings"]), report["warnings"]
    assert "GATHER" in load_tflite(out).op_names


@pytest.mark.slow
def test_a_float_limit_mask_is_refused_not_converted_to_one_level(tmp_path):
    """A mask of float32's lowest value gave its tensors int8 scales near 1e36 (every value one level), converted
    without a word; the native engine then refused it with 'quantization multiplier ... too large'."""
    _require("torch", "onnx", "onnx2tf", "onnxscript", "tf_keras")
    out = tmp_path / "mask.tflite"
    result = run_cli("convert", f"{REPO / 'tests' / 'torch_models.py'}:float_limit_mask", "-o", out, "--calib",
                     "random")
    assert result.returncode == 2 and not out.exists(), result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "unusable" in lines[0] and "e+36" in lines[0] and "mask with a finite value" in lines[0]


@pytest.mark.slow
def test_calibration_of_neither_layout_names_both(torch_files, tmp_path):
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((10, 12, 3, 16), np.float32))
    result = run_cli("convert", torch_files.onnx, "-o", tmp_path / "out.tflite", "--calib", wrong)
    assert result.returncode == 2
    assert "(N, 3, 12, 16) (NCHW" in result.stderr and "(N, 12, 16, 3) (NHWC" in result.stderr
    assert not (tmp_path / "out.tflite").exists()


# ---------------------------------------------------------------------------------------------- on the board


@pytest.mark.virtual
@pytest.mark.slow
def test_onnx_model_runs_on_the_virtual_board(torch_files, tmp_path):
    result = run_cli("flash", torch_files.onnx, "--calib", torch_files.calib_nchw, "--board", "virtual",
                     "--engine", "native", "--out", tmp_path / "proj", "--json", "--runs", "5")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["model"] == "tiny_cnn" and report["outputs_match"] is True and report["golden_samples"] >= 1
    print(f"\nONNX on the virtual board: {report['latency_us']:,} us, flash {report['flash_bytes']:,} B, "
          f"RAM {report['ram_bytes']:,} B, stages {report['stage_seconds']}")


@pytest.mark.virtual
@pytest.mark.slow
def test_pytorch_function_runs_on_the_virtual_board(torch_files, tmp_path):
    report_html = tmp_path / "report.html"
    result = run_cli("flash", TORCH_FUNCTION, "--calib", torch_files.calib_nchw, "--board", "virtual",
                     "--engine", "native", "--out", tmp_path / "proj", "--json", "--runs", "5",
                     "--report", report_html)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["model"] == "tiny_cnn" and report["outputs_match"] is True
    html = report_html.read_text()
    # the conversion's agreement and the layout change reach the report
    assert "tiny_cnn" in html and "int8 against float" in html and "NCHW [1, 3, 12, 16]" in html
    print(f"\nPyTorch module:function on the virtual board: {report['latency_us']:,} us, stages "
          f"{report['stage_seconds']}")
