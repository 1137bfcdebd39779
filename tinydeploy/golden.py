"""Golden outputs on the host: TFLM's own interpreter (the `tflite_micro` package) on the same inputs."""

from __future__ import annotations

import numpy as np

from tinydeploy.errors import TinydeployError
from tinydeploy.model.tflite import TfliteModel


def random_inputs(model: TfliteModel, count: int, seed: int = 0) -> list[bytes]:
    """Inputs spread over the whole int8 range, reproducible from the seed."""
    tensor = model.tensors[model.inputs[0]]
    rng = np.random.default_rng(seed)
    dtype = np.dtype(tensor.dtype)
    info = np.iinfo(dtype) if dtype.kind in "iu" else None
    samples = []
    for _ in range(count):
        if info is not None:
            values = rng.integers(info.min, info.max, size=tensor.shape, endpoint=True, dtype=dtype)
        else:
            values = rng.standard_normal(tensor.shape).astype(dtype)
        samples.append(values.tobytes())
    return samples


def tflm_outputs(model: TfliteModel, inputs: list[bytes], arena_bytes: int | None = None) -> list[bytes]:
    """Run each input through TFLM on the host; the arena defaults to a generous size."""
    from tflite_micro import runtime

    tensor = model.tensors[model.inputs[0]]
    # every non-constant tensor at once bounds any arena plan: large activations with few weights need it
    activations = sum(t.nbytes for t in model.tensors if not t.is_constant)
    arena = arena_bytes or max(64 * 1024, 4 * model.size_bytes, activations + 64 * 1024)
    try:
        interpreter = runtime.Interpreter.from_bytes(model.raw, arena_size=arena)
        outputs = []
        for data in inputs:
            values = np.frombuffer(data, dtype=np.dtype(tensor.dtype)).reshape(tensor.shape)
            interpreter.set_input(values, 0)
            interpreter.invoke()
            outputs.append(np.ascontiguousarray(interpreter.get_output(0)).tobytes())
        return outputs
    except (RuntimeError, ValueError) as exc:
        raise TinydeployError(f"TFLM on the host cannot run {model.name}: {' '.join(str(exc).split())[:160]}",
                              "check the model with tinydeploy analyze") from exc
