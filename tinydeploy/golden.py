"""Golden outputs on the host: TFLM's own interpreter (the `tflite_micro` package) on the same inputs.

A *sample* is one inference's inputs, one `bytes` per input tensor in model order; its outputs are one `bytes` per
output tensor. `random_inputs`/`tflm_outputs` are the single-tensor forms (bytes in, bytes out) for models with one
input and one output."""

from __future__ import annotations

import numpy as np

from tinydeploy.errors import TinydeployError
from tinydeploy.model.tflite import TfliteModel

# TFLM's CONCATENATION kernel (kMaxInputNum) fails to allocate a model with more inputs: no golden outputs for it.
TFLM_MAX_CONCATENATION_INPUTS = 10
# TFLM's REDUCE_MAX and REDUCE_MIN run float32 and int8 only: an int16 one fails at invoke, so no golden outputs.
TFLM_INT8_ONLY_REDUCTIONS = ("REDUCE_MAX", "REDUCE_MIN")


def _random_tensor(rng: np.random.Generator, shape, dtype_name: str) -> bytes:
    """Values over the whole range of an integer type, standard normal ones for float types."""
    dtype = np.dtype(dtype_name)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype).tobytes()
    if dtype.kind == "b":
        return rng.integers(0, 1, size=shape, endpoint=True, dtype=np.uint8).tobytes()
    return rng.standard_normal(shape).astype(dtype).tobytes()


def random_samples(model: TfliteModel, count: int, seed: int = 0) -> list[list[bytes]]:
    """`count` samples of random values for every input tensor, reproducible from the seed."""
    rng = np.random.default_rng(seed)
    tensors = [model.tensors[index] for index in model.inputs]
    return [[_random_tensor(rng, tensor.shape, tensor.dtype) for tensor in tensors] for _ in range(count)]


def _single(model: TfliteModel, what: str) -> None:
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise TinydeployError(f"{model.name} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                              f"{what} takes one of each",
                              "use golden.random_samples/tflm_sample_outputs (one bytes per tensor)")


def random_inputs(model: TfliteModel, count: int, seed: int = 0) -> list[bytes]:
    """Random inputs of a single-input model (the same values random_samples gives)."""
    if len(model.inputs) != 1:
        _single(model, "random_inputs")
    return [sample[0] for sample in random_samples(model, count, seed)]


def tflm_sample_outputs(model: TfliteModel, samples: list[list[bytes]],
                        arena_bytes: int | None = None) -> list[list[bytes]]:
    """Run each sample through TFLM on the host (one interpreter, invoked in order: stateful models keep their
    state from sample to sample, as on the device); every output tensor of each. The arena defaults to a generous
    size."""
    from tflite_micro import runtime

    inputs = [model.tensors[index] for index in model.inputs]
    # every non-constant tensor at once bounds any arena plan: large activations with few weights need it
    activations = sum(t.nbytes for t in model.tensors if not t.is_constant)
    arena = arena_bytes or max(64 * 1024, 4 * model.size_bytes, activations + 64 * 1024)
    try:
        interpreter = runtime.Interpreter.from_bytes(model.raw, arena_size=arena)
        outputs = []
        for sample in samples:
            if len(sample) != len(inputs):
                raise TinydeployError(f"a sample has {len(sample)} input tensors; {model.name} takes {len(inputs)}",
                                      "give one bytes per input tensor")
            for position, (tensor, data) in enumerate(zip(inputs, sample)):
                values = np.frombuffer(data, dtype=np.dtype(tensor.dtype)).reshape(tensor.shape)
                interpreter.set_input(values, position)
            interpreter.invoke()
            outputs.append([np.ascontiguousarray(interpreter.get_output(position)).tobytes()
                            for position in range(len(model.outputs))])
        return outputs
    except (RuntimeError, ValueError) as exc:
        raise TinydeployError(f"TFLM on the host cannot run {model.name}: {' '.join(str(exc).split())[:160]}",
                              "check the model with tinydeploy analyze") from exc


def tflm_outputs(model: TfliteModel, inputs: list[bytes], arena_bytes: int | None = None) -> list[bytes]:
    """Single-tensor form of tflm_sample_outputs: one input's bytes in, the one output's bytes out."""
    _single(model, "tflm_outputs")
    return [outputs[0] for outputs in tflm_sample_outputs(model, [[data] for data in inputs], arena_bytes)]
