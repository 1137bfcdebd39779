"""Emulated instructions of one DEPTHWISE_CONV_2D layer on the virtual board: reference kernel vs fast kernel.

    .venv/bin/python bench/depthwise.py [kws|vww ...]

Each case is a one-op int8 model (built and converted by TensorFlow) shaped like a layer of the MLPerf Tiny KWS
or VWW model, flashed twice onto the virtual board (QEMU -icount shift=4: instructions = latency_us * 1000 / 16):
once with the reference kernels, once with the fast ones. Both runs are checked against host TFLM by flash itself.
Prints numbers, not pass/fail. The instruction count includes the firmware's per-inference overhead (small).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

# (label, input height x width x channels, stride): the depthwise layers of KWS (DS-CNN) and VWW (MobileNetV1 0.25)
LAYERS = {
    "kws": [("kws 25x5x64 s1", (25, 5, 64), 1)],
    "vww": [("vww 48x48x8 s1", (48, 48, 8), 1), ("vww 48x48x16 s2", (48, 48, 16), 2),
            ("vww 12x12x64 s1", (12, 12, 64), 1), ("vww 6x6x128 s1", (6, 6, 128), 1),
            ("vww 3x3x256 s1", (3, 3, 256), 1)],
}


def one_layer_model(shape: tuple[int, int, int], stride: int, seed: int = 0) -> bytes:
    import tensorflow as tf

    from engine_models import convert_int8

    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input(shape=shape, batch_size=1)
    outputs = tf.keras.layers.DepthwiseConv2D(3, strides=stride, padding="same", activation="relu",
                                              bias_initializer="random_normal")(inputs)
    return convert_int8(tf.keras.Model(inputs, outputs), shape, seed)


def instructions_on_virtual_board(model, fast_kernels: bool, out_dir: Path) -> tuple[int, bool]:
    """(instructions per inference, outputs matched TFLM) with the fast or the reference kernels."""
    from tinydeploy.boards import get_board
    from tinydeploy.flow import flash_model

    report = flash_model(model, get_board("virtual"), "native", out_dir.resolve(), True, None, 2, 3, 1,
                         lambda message: None, fast_kernels=fast_kernels)
    data = report.to_json()
    return data["instructions"], bool(data["outputs_match"])


def main(argv: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from tinydeploy.analysis.compute import op_costs, total_macs
    from tinydeploy.model.tflite import parse_tflite

    groups = argv or list(LAYERS)
    work = Path(tempfile.mkdtemp(prefix="tinydeploy-depthwise-"))
    table = Table(title="DEPTHWISE_CONV_2D 3x3 SAME ReLU on the virtual board (emulated instructions)")
    for column in ("layer", "MACs", "reference", "per MAC", "fast", "per MAC", "speed-up", "exact"):
        table.add_column(column, justify="left" if column == "layer" else "right")
    for group in groups:
        for label, shape, stride in LAYERS[group]:
            model = parse_tflite(one_layer_model(shape, stride))
            macs = total_macs(op_costs(model))
            slug = label.replace(" ", "-")  # (a project path with spaces breaks the link's -Map option)
            reference, reference_ok = instructions_on_virtual_board(model, False, work / f"{slug}-reference")
            fast, fast_ok = instructions_on_virtual_board(model, True, work / f"{slug}-fast")
            table.add_row(label, f"{macs:,}", f"{reference:,}", f"{reference / macs:.2f}", f"{fast:,}",
                          f"{fast / macs:.2f}", f"{reference / fast:.1f}x",
                          "yes" if reference_ok and fast_ok else "NO")
    Console(width=140).print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
