"""Comparing the native engine with TFLM over consecutive invokes of one interpreter (state carried over: LSTM
and SVDF keep variable tensors), for inputs and outputs of any integer type."""

from __future__ import annotations

import numpy as np

from tinydeploy.engine.host import HostEngine
from tinydeploy.model.tflite import TfliteModel


def random_inputs(model: TfliteModel, count: int, seed: int, spread: float = 1.0) -> list[np.ndarray]:
    """Uniform integers over `spread` of the input type's range, around the input's zero point."""
    tensor = model.tensors[model.inputs[0]]
    info = np.iinfo(np.dtype(tensor.dtype))
    center = tensor.quant.zero_points[0] if tensor.quant and tensor.quant.zero_points else 0
    half = int((int(info.max) - int(info.min)) * spread / 2)
    low, high = max(int(info.min), center - half), min(int(info.max), center + half)
    rng = np.random.default_rng(seed)
    return [rng.integers(low, high + 1, size=tensor.shape, dtype=np.int64).astype(tensor.dtype)
            for _ in range(count)]


def tflm_invokes(model_bytes: bytes, inputs: list[np.ndarray], arena_size: int = 512 * 1024) -> list[np.ndarray]:
    """TFLM's outputs for the inputs given to one interpreter in turn (its variable tensors carry over)."""
    from tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(bytes(model_bytes), arena_size=arena_size)
    outputs = []
    for value in inputs:
        interpreter.set_input(value, 0)
        interpreter.invoke()
        outputs.append(np.array(interpreter.get_output(0)))
    return outputs


def assert_invokes_match_tflm(engine: HostEngine, model: TfliteModel, inputs: list[np.ndarray], label: str,
                              min_distinct: int = 1) -> None:
    """Byte equality with TFLM on every invoke; a failure names the case and the invoke. `min_distinct`: TFLM's
    outputs must take at least that many distinct values over all invokes (the case is not saturated into a
    constant that any kernel would match)."""
    golden = tflm_invokes(model.raw, inputs)
    for number, (value, expected) in enumerate(zip(inputs, golden)):
        actual = np.frombuffer(engine.run(value.tobytes()), dtype=expected.dtype).reshape(expected.shape)
        if not np.array_equal(actual, expected):
            diff = np.abs(actual.astype(np.int64) - expected.astype(np.int64))
            raise AssertionError(f"{label}: invoke #{number}: {int((diff != 0).sum())} of {diff.size} values differ "
                                 f"from TFLM (max |diff| {int(diff.max())})")
    distinct = len(np.unique(np.concatenate([g.reshape(-1) for g in golden])))
    assert distinct >= min_distinct, f"{label}: TFLM's outputs take only {distinct} values; the case tests little"
