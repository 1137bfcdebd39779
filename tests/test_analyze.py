"""`tinydeploy analyze`: ops, MACs, arena and verdict on the MLPerf Tiny models, and its errors."""

import json
import subprocess
import sys

import pytest

from tests.conftest import mlperf_model, run_cli
from tests.tflite_edit import edit_tflite
from tinydeploy.analysis.compute import op_costs
from tinydeploy.analysis.memory import activation_profile
from tinydeploy.model.tflite import load_tflite


def _mobilenet_v1_macs(alpha: float, size: int, classes: int) -> int:
    """MACs of MobileNetV1 from its published layer table (stride, output channels at alpha 1)."""
    layers = [(1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512)] + [(1, 512)] * 5 + [(2, 1024), (1, 1024)]
    side = size // 2
    channels = int(32 * alpha)
    macs = side * side * channels * 3 * 3 * 3  # first 3x3 conv, stride 2
    for stride, out in layers:
        side //= stride
        macs += side * side * channels * 9  # depthwise 3x3
        out_channels = int(out * alpha)
        macs += side * side * channels * out_channels  # pointwise 1x1
        channels = out_channels
    return macs + channels * classes


def _resnet8_macs() -> int:
    conv = lambda side, cin, cout, k: side * side * cout * k * k * cin  # noqa: E731
    return (conv(32, 3, 16, 3) + 2 * conv(32, 16, 16, 3)
            + conv(16, 16, 32, 3) + conv(16, 32, 32, 3) + conv(16, 16, 32, 1)
            + conv(8, 32, 64, 3) + conv(8, 64, 64, 3) + conv(8, 32, 64, 1) + 64 * 10)


def _dscnn_macs() -> int:
    first = 25 * 5 * 64 * 10 * 4  # 10x4 conv, stride 2 over 49x10
    block = 25 * 5 * 64 * 9 + 25 * 5 * 64 * 64  # depthwise 3x3 + pointwise 64->64
    return first + 4 * block + 64 * 12


def _autoencoder_macs() -> int:
    widths = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640]
    return sum(a * b for a, b in zip(widths, widths[1:]))


EXPECTED = {
    # key: (op sequence summary, MACs from the architecture, host arena in FACTS.md, activation peak)
    "ad": ({"FULLY_CONNECTED": 10}, _autoencoder_macs(), 4_640, 640 + 128),
    "kws": ({"CONV_2D": 5, "DEPTHWISE_CONV_2D": 4, "AVERAGE_POOL_2D": 1, "RESHAPE": 1, "FULLY_CONNECTED": 1,
             "SOFTMAX": 1}, _dscnn_macs(), 24_272, 2 * 25 * 5 * 64),
    "ic": ({"CONV_2D": 9, "ADD": 3, "AVERAGE_POOL_2D": 1, "RESHAPE": 1, "FULLY_CONNECTED": 1, "SOFTMAX": 1},
           _resnet8_macs(), 55_984, 3 * 32 * 32 * 16),
    "vww": ({"CONV_2D": 14, "DEPTHWISE_CONV_2D": 13, "AVERAGE_POOL_2D": 1, "RESHAPE": 1, "FULLY_CONNECTED": 1,
             "SOFTMAX": 1}, _mobilenet_v1_macs(0.25, 96, 2), 103_680, 48 * 48 * 8 + 48 * 48 * 16),
}


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_ops_macs_and_activation_peak_match_the_architecture(key):
    model = load_tflite(mlperf_model(key))
    ops, macs, _, peak = EXPECTED[key]
    counts = {name: model.op_names.count(name) for name in set(model.op_names)}
    assert counts == ops
    assert sum(c.macs for c in op_costs(model)) == macs
    assert activation_profile(model).peak_bytes == peak


@pytest.mark.parametrize("key", sorted(EXPECTED))
def test_analyze_json_reports_a_measured_minimal_arena(key, tmp_path):
    path = mlperf_model(key)
    result = run_cli("analyze", path, "--board", "nano33ble", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for field in ("board", "ops", "macs", "weights_bytes", "arena_bytes", "arena_bytes_host", "flash_bytes",
                  "ram_bytes", "fits"):
        assert field in report
    ops, macs, facts_arena, peak = EXPECTED[key]
    assert report["board"] == "nano33ble" and report["fits"] is True
    assert report["macs"] == macs and len(report["ops"]) == sum(ops.values())
    host = report["arena_bytes_host"]
    assert abs(host - facts_arena) <= 16  # FACTS.md measured these with the same pip build of TFLM
    assert peak <= report["arena_bytes"] < host  # the 32-bit target needs less than the 64-bit host
    assert report["ram_bytes"] >= report["arena_bytes"] + 44_500
    # Independent check of minimality: TFLM itself allocates and invokes at that size, and not one byte below.
    probe = ("import sys, numpy as np\nfrom tflite_micro import runtime\n"
             "m = open(sys.argv[1], 'rb').read()\n"
             "def ok(n):\n"
             "    try:\n"
             "        it = runtime.Interpreter.from_bytes(m, arena_size=n)\n"
             "        d = it.get_input_details(0)\n"
             "        it.set_input(np.zeros(d['shape'], d['dtype']), 0)\n"
             "        it.invoke()\n"
             "        return True\n"
             "    except Exception:\n"
             "        return False\n"
             "print(ok(int(sys.argv[2])), ok(int(sys.argv[2]) - 1))\n")
    answer = subprocess.run([sys.executable, "-c", probe, str(path), str(host)], capture_output=True, text=True,
                            timeout=120)
    assert answer.stdout.split() == ["True", "False"]


def test_analyze_prints_tables_and_verdict_then_uses_the_cache(tmp_path):
    path = mlperf_model("kws")
    first = run_cli("analyze", path, "--board", "nano33ble", "--no-cache")
    assert first.returncode == 0, first.stderr
    for text in ("CONV_2D", "DEPTHWISE_CONV_2D", "2,656,768", "24,272 B", "FITS", "flash", "RAM", "%"):
        assert text in first.stdout
    second = json.loads(run_cli("analyze", path, "--board", "nano33ble", "--json").stdout)
    third = json.loads(run_cli("analyze", path, "--board", "nano33ble", "--json").stdout)
    assert third["arena_from_cache"] is True
    assert third["arena_bytes_host"] == second["arena_bytes_host"]


def test_plot_draws_a_png(tmp_path):
    out = tmp_path / "memory.png"
    result = run_cli("analyze", mlperf_model("ic"), "--plot", out)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = run_cli("analyze", mlperf_model("ic"), "--plot", out)
    assert again.returncode == 2 and "--force" in again.stderr


def test_a_model_too_big_for_the_ram_does_not_fit_and_exits_1(tmp_path):
    """Grow the AD model's activations (batch 400) until they overflow 256 KB."""
    data = mlperf_model("ad").read_bytes()

    def batch(model):
        for tensor in model.subgraphs[0].tensors:
            if tensor.shape is not None and len(tensor.shape) == 2 and tensor.buffer and \
                    not (model.buffers[tensor.buffer].data is not None and len(model.buffers[tensor.buffer].data)):
                tensor.shape = [400, int(tensor.shape[1])]
    big = tmp_path / "ad_batch400.tflite"
    big.write_bytes(edit_tflite(data, batch))
    result = run_cli("analyze", big, "--board", "nano33ble", "--json")
    report = json.loads(result.stdout)
    assert result.returncode == 1 and report["fits"] is False
    assert report["ram_overshoot_bytes"] == report["ram_bytes"] - report["ram_available"] > 0
    text = run_cli("analyze", big, "--board", "nano33ble")
    assert "DOES NOT FIT" in text.stdout and f"RAM by {report['ram_overshoot_bytes']:,} B" in text.stdout
    assert "board with more memory" in text.stdout or "shrink the activations" in text.stdout


def _assert_one_line_error(result, *fragments):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_bad_inputs_get_one_line_errors(tmp_path):
    good = mlperf_model("ad").read_bytes()
    (tmp_path / "empty.tflite").write_bytes(b"")
    (tmp_path / "truncated.tflite").write_bytes(good[: len(good) // 3])
    (tmp_path / "text.tflite").write_text("this is not a model\n" * 10)
    (tmp_path / "dir.tflite").mkdir()
    (tmp_path / "bad_index.tflite").write_bytes(
        edit_tflite(good, lambda m: setattr(m.subgraphs[0].operators[0], "inputs", [0, 999, 2])))
    (tmp_path / "huge.tflite").write_bytes(
        edit_tflite(good, lambda m: setattr(m.subgraphs[0].tensors[0], "shape", [1, 2**31 - 1])))
    _assert_one_line_error(run_cli("analyze", tmp_path / "missing.tflite"), "not found")
    _assert_one_line_error(run_cli("analyze", tmp_path / "empty.tflite"), "not a valid TFLite model")
    _assert_one_line_error(run_cli("analyze", tmp_path / "truncated.tflite"), "not a valid TFLite model")
    _assert_one_line_error(run_cli("analyze", tmp_path / "text.tflite"), "not a valid TFLite model")
    _assert_one_line_error(run_cli("analyze", tmp_path / "dir.tflite"), "directory")
    _assert_one_line_error(run_cli("analyze", tmp_path / "bad_index.tflite"), "tensor 999")
    _assert_one_line_error(run_cli("analyze", tmp_path / "huge.tflite"), "absurd shape")
    _assert_one_line_error(run_cli("analyze", mlperf_model("ad"), "--board", "uno"), "unknown board", "nano33ble")
    _assert_one_line_error(run_cli("analyze", tmp_path / "model.keras"), "not found")
    (tmp_path / "model.keras").write_bytes(b"PK")
    _assert_one_line_error(run_cli("analyze", tmp_path / "model.keras"), "tinydeploy convert")
    _assert_one_line_error(run_cli("analyze", mlperf_model("ad"), "--plot", tmp_path), "directory")


def test_command_line_mistakes_are_one_line_usage_errors(tmp_path):
    for args, fragments in [(("analyze", "--no-such-option"), ("No such option: --no-such-option",
                                                               "tinydeploy analyze --help")),
                            (("analyze",), ("Missing argument 'MODEL'", "tinydeploy analyze --help")),
                            (("flash", mlperf_model("ad"), "--board"), ("'--board' requires an argument",)),
                            (("no-such-command",), ("No such command 'no-such-command'", "tinydeploy --help"))]:
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        _assert_one_line_error(result, *fragments)
        assert "internal error" not in result.stderr


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "analyze", tmp_path / "missing.tflite")
    assert result.returncode == 2 and "Traceback" in result.stderr


def test_analyze_does_not_import_tensorflow():
    code = ("import sys\nfrom tinydeploy.cli import main\n"
            "try:\n    main(['analyze', sys.argv[1], '--json'])\nexcept SystemExit:\n    pass\n"
            "print('TF-IMPORTED' if 'tensorflow' in sys.modules else 'NO-TF')")
    result = subprocess.run([sys.executable, "-c", code, str(mlperf_model("ad"))], capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.strip().endswith("NO-TF")


def test_analyze_native_engine_reports_the_plan_and_blocking_ops(tmp_path):
    result = run_cli("analyze", mlperf_model("ad"), "--engine", "native", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["engine"] == "native" and report["activation_bytes"] == 640 + 128
    tflm = json.loads(run_cli("analyze", mlperf_model("ad"), "--engine", "tflm", "--json").stdout)
    assert report["ram_bytes"] < tflm["ram_bytes"]
    # without --engine, the board's engine (the virtual board's: native), as flash
    assert json.loads(run_cli("analyze", mlperf_model("ad"), "--json").stdout)["engine"] == "native"
    text = run_cli("analyze", mlperf_model("ad"), "--engine", "native").stdout
    assert "native engine plan" in text and "native memory plan (offsets" in text and "placement" in text

    def make_custom(model):
        model.operatorCodes[0].builtinCode = model.operatorCodes[0].deprecatedBuiltinCode = 32
        model.operatorCodes[0].customCode = b"MyOp"
    custom = tmp_path / "custom.tflite"
    custom.write_bytes(edit_tflite(mlperf_model("ad").read_bytes(), make_custom))
    refused = run_cli("analyze", custom, "--engine", "native")
    _assert_one_line_error(refused, "CUSTOM:MyOp", "FULLY_CONNECTED")
    listed = json.loads(run_cli("analyze", custom, "--engine", "tflm", "--json").stdout)
    assert listed["native_blocking_ops"] == ["CUSTOM:MyOp"]


def test_a_model_no_engine_runs_is_not_said_to_run_on_one(tmp_path):
    """Keras's UpSampling2D converts to TILE, which neither engine has: the verdict must not name one as running it."""
    import numpy as np

    from tests.single_op_models import GraphSpec, OpSpec, TensorSpec, build_model

    tensors = [TensorSpec("in", (1, 2, 1, 3), "int8", 0.05),
               TensorSpec("multiples", (4,), "int32", data=np.array([1, 1, 2, 1], np.int32)),
               TensorSpec("out", (1, 2, 2, 3), "int8", 0.05)]
    (tmp_path / "tile.tflite").write_bytes(build_model(GraphSpec(tensors, [OpSpec("TILE", [0, 1], [2])], [0], [2])))
    for engine_args in ([], ["--engine", "tflm"], ["--engine", "native"]):
        result = run_cli("analyze", tmp_path / "tile.tflite", "--board", "virtual", *engine_args)
        if engine_args == ["--engine", "native"]:
            assert result.returncode == 2 and "no tinydeploy engine runs" in result.stderr
            continue
        text = " ".join(result.stdout.split())
        assert result.returncode == 1 and "DOES NOT RUN on virtual as it is: no engine runs it" in text, text[-600:]
        assert "tflm engine runs it" not in text and "native engine runs it" not in text
