"""TensorFlow's int8 conversion of a batch-1 SavedModel, run by `convert` in a child process: TFLite's calibrator
kills its process on some graphs (SIGSEGV on the loop of a Keras LSTM, GRU or SimpleRNN without unroll=True, TF
2.21), which must end in a one-line error rather than a dead tinydeploy.

python -m tinydeploy.model.tf_quantize EXPORT_DIR CALIB.npy OUT.tflite: exit 0 with OUT written, or exit 1 with
the converter's reason on the last line of stderr."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import numpy as np

REASON_PREFIX = "tf_quantize: "


def quantize(tf, export_dir: Path, calib: np.ndarray) -> bytes:
    def representative() -> Iterator[list[np.ndarray]]:
        for sample in calib:
            yield [sample[None]]

    converter = tf.lite.TFLiteConverter.from_saved_model(str(export_dir))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    # One scale per dense layer, as before TF 2.16: the pinned Arduino TFLM library's FULLY_CONNECTED applies a
    # single scale, so per-channel dense weights would be refused by the TFLM engine (tinydeploy.tflm.resolver).
    converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    return converter.convert()


def main(argv: list[str]) -> int:
    from tinydeploy.fsutil import atomic_write_bytes
    from tinydeploy.model.convert import _error_cause, _native_output_captured, import_tensorflow

    export_dir, calib_path, out = Path(argv[0]), Path(argv[1]), Path(argv[2])
    tf = import_tensorflow()
    captured: list[str] = []
    try:
        with _native_output_captured() as captured:
            tflite = quantize(tf, export_dir, np.load(calib_path))
    except Exception as exc:  # the converter raises ConverterError, ValueError, RuntimeError...
        reason = next((line.strip() for line in reversed(captured) if "error" in line.lower()), _error_cause(exc))
        print(REASON_PREFIX + " ".join(reason.split()), file=sys.stderr)
        return 1
    atomic_write_bytes(out, tflite)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
