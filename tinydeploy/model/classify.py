"""What a TFLite model computes in: one precise classification that analyze prints and every refusal uses.

Each operator is judged by the tensors it really computes on, not by every tensor in the file (int8 LSTMs
carry float32 intermediate tensors that no operator reads or writes; SVDF keeps an int16 state):
- a layer with weights (convolution, fully connected, recurrent, SVDF) by its activation input and weights:
  float activations with integer weights is dynamic-range ("hybrid") quantization;
- QUANTIZE by its quantized side and DEQUANTIZE by its input (the edges of a quantized graph), CAST by neither;
- any other builtin op by its first computed input (else its output): float32/float16 is float compute,
  int8/uint8/int16 with quantization parameters is quantized compute, plain integers (shapes, indices, signal
  processing in fixed point) decide nothing;
- custom ops are named, and an NPU's custom op (Vela's `ethos-u`) marks a model compiled for that NPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinydeploy.errors import TinydeployError
from tinydeploy.model.tflite import Operator, Tensor, TfliteModel

# kind -> how analyze and every refusal name it
KIND_TEXT = {
    "int8": "int8 quantized",
    "int16x8": "int16x8 quantized (int16 activations, int8 weights)",
    "float": "float (float32 compute)",
    "hybrid": "dynamic-range quantized (int8 weights, float32 activations)",
    "mixed": "partly quantized (some ops compute in float32)",
    "uint8": "uint8 quantized (the legacy asymmetric scheme)",
    "npu": "compiled for an NPU",
    "integer": "integer arithmetic without quantized layers",
}
# Kinds whose arithmetic an int8 microcontroller engine runs as it is.
QUANTIZED_KINDS = ("int8", "int16x8")

# Custom ops that hold a whole network compiled for an accelerator -> the accelerator.
NPU_CUSTOM_OPS = {"ethos-u": "an Arm Ethos-U NPU by Vela"}

# op -> (position of the activation input, positions of weight inputs)
WEIGHTED_INPUTS = {
    "CONV_2D": (0, (1,)), "DEPTHWISE_CONV_2D": (0, (1,)), "FULLY_CONNECTED": (0, (1,)),
    "TRANSPOSE_CONV": (2, (1,)), "CONV_3D": (0, (1,)), "CONV_3D_TRANSPOSE": (2, (1,)),
    "BATCH_MATMUL": (0, (1,)), "SVDF": (0, (1, 2)), "UNIDIRECTIONAL_SEQUENCE_RNN": (0, (1, 2)), "RNN": (0, (1, 2)),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": (0, tuple(range(1, 9))), "LSTM": (0, tuple(range(1, 9))),
    "BIDIRECTIONAL_SEQUENCE_LSTM": (0, tuple(range(1, 9))),
}
FLOAT_TYPES = ("float32", "float16", "float64")
QUANTIZED_TYPES = ("int8", "uint8", "int16")
INTEGER_WEIGHT_TYPES = ("int8", "uint8", "int4", "int16")


@dataclass(frozen=True)
class ModelClass:
    kind: str  # a key of KIND_TEXT
    input_dtypes: tuple[str, ...]
    output_dtypes: tuple[str, ...]
    custom_ops: tuple[str, ...] = ()  # names without the CUSTOM: prefix, NPU ops included
    npu: str = ""  # the accelerator a "npu" model was compiled for
    float_ops: tuple[str, ...] = ()  # ops computing in float (the reason a model is float or mixed)
    hybrid_ops: tuple[str, ...] = ()  # weighted ops with float activations and integer weights

    @property
    def is_quantized(self) -> bool:
        """int8 or int16x8 compute: what tinydeploy's engines run without converting."""
        return self.kind in QUANTIZED_KINDS

    @property
    def io_text(self) -> str:
        def dtypes(values: tuple[str, ...]) -> str:
            return "/".join(dict.fromkeys(values)) or "none"

        ins, outs = len(self.input_dtypes), len(self.output_dtypes)
        return (f"{ins} {dtypes(self.input_dtypes)} input{'s' if ins != 1 else ''}, "
                f"{outs} {dtypes(self.output_dtypes)} output{'s' if outs != 1 else ''}")

    def describe(self) -> str:
        """One line: what the model computes in, its IO and its custom ops."""
        text = f"compiled for {self.npu}" if self.kind == "npu" else KIND_TEXT[self.kind]
        if self.kind in ("float", "mixed") and self.float_ops:
            text += f": float32 arithmetic in {', '.join(self.float_ops)}"
        if self.kind == "hybrid":
            text += f": {', '.join(self.hybrid_ops)}"
        text += f"; {self.io_text}"
        compute_dtype = {"int8": "int8", "int16x8": "int16"}.get(self.kind)
        if compute_dtype and any(d != compute_dtype for d in (*self.input_dtypes, *self.output_dtypes)):
            text += " (QUANTIZE/DEQUANTIZE at the edges)"
        others = [name for name in self.custom_ops if name not in NPU_CUSTOM_OPS]
        if others:
            text += f"; custom ops {', '.join(others)}"
        return text

    def to_json(self) -> dict:
        return {"kind": self.kind, "description": self.describe(), "input_dtypes": list(self.input_dtypes),
                "output_dtypes": list(self.output_dtypes), "custom_ops": list(self.custom_ops), "npu": self.npu,
                "float_ops": list(self.float_ops), "hybrid_ops": list(self.hybrid_ops)}


def _tensor(model: TfliteModel, op: Operator, position: int) -> Tensor | None:
    if position >= len(op.inputs) or op.inputs[position] == -1:
        return None
    return model.tensors[op.inputs[position]]


def _precision(tensor: Tensor | None) -> str | None:
    """'float', 'int8', 'uint8', 'int16' or None (plain integers, or nothing to judge)."""
    if tensor is None:
        return None
    if tensor.dtype in FLOAT_TYPES:
        return "float"
    if tensor.dtype in QUANTIZED_TYPES and tensor.quant is not None:
        return tensor.dtype
    return None


def _op_precision(model: TfliteModel, op: Operator) -> tuple[str | None, bool]:
    """(precision of the op's arithmetic, whether it is a hybrid layer)."""
    if op.op == "QUANTIZE":  # float or int16 -> int8 at the input edge; int16 -> int32 at the output edge is
        # decided by the op before it (an int8 SOFTMAX may write int16)
        result = _precision(model.tensors[op.outputs[0]]) if op.outputs else None
        if result == "uint8":  # int8 -> uint8 at the output edge of an int8 model: the compute is the input's
            return _precision(_tensor(model, op, 0)), False
        return result, False
    if op.op == "DEQUANTIZE":
        source = _tensor(model, op, 0)
        # dequantizing a constant decompresses weights for float ops after it: those ops decide
        return (None if source is None or source.is_constant else _precision(source)), False
    if op.op == "CAST":
        return None, False
    if op.op in WEIGHTED_INPUTS:
        activation_position, weight_positions = WEIGHTED_INPUTS[op.op]
        activation = _tensor(model, op, activation_position)
        weights = [t for p in weight_positions if (t := _tensor(model, op, p)) is not None and t.is_constant]
        if activation is not None and activation.dtype in FLOAT_TYPES:
            hybrid = any(w.dtype in INTEGER_WEIGHT_TYPES for w in weights)
            return "float", hybrid
        if activation is not None and activation.dtype in QUANTIZED_TYPES:
            return activation.dtype, False
    computed = [model.tensors[i] for i in op.inputs if i != -1 and not model.tensors[i].is_constant]
    for tensor in computed[:1] or [model.tensors[i] for i in op.outputs[:1]]:
        return _precision(tensor), False
    return None, False


def classify(model: TfliteModel) -> ModelClass:
    inputs = tuple(model.tensors[i].dtype for i in model.inputs)
    outputs = tuple(model.tensors[i].dtype for i in model.outputs)
    custom = tuple(dict.fromkeys(op.op.removeprefix("CUSTOM:") for op in model.operators
                                 if op.op.startswith("CUSTOM:")))
    npu = next((NPU_CUSTOM_OPS[name] for name in custom if name in NPU_CUSTOM_OPS), "")
    precisions: set[str] = set()
    edge_precisions: set[str] = set()  # what QUANTIZE ops read: decides only a graph of nothing but them
    float_ops: list[str] = []
    hybrid_ops: list[str] = []
    for op in model.operators:
        if op.op.startswith("CUSTOM:"):
            continue  # unknown arithmetic; named in custom_ops
        precision, hybrid = _op_precision(model, op)
        if hybrid:
            hybrid_ops.append(op.op)
        elif precision == "float":
            float_ops.append(op.op)
        if precision is not None:
            precisions.add(precision)
        if op.op == "QUANTIZE" and (source := _precision(_tensor(model, op, 0))) is not None:
            edge_precisions.add(source)
    quantized = (precisions or edge_precisions) & set(QUANTIZED_TYPES)
    if npu:
        kind = "npu"
    elif hybrid_ops:
        kind = "hybrid"
    elif float_ops:
        kind = "mixed" if quantized else "float"
    elif "uint8" in quantized:
        kind = "uint8"
    elif "int16" in quantized:
        kind = "int16x8"
    elif "int8" in quantized:
        kind = "int8"
    else:
        kind = "integer"
    return ModelClass(kind, inputs, outputs, custom, npu, tuple(dict.fromkeys(float_ops)),
                      tuple(dict.fromkeys(hybrid_ops)))


# ---- the refusal every engine gives a model it cannot take as it is (engines' own checks come after) --------


def _model_path_text(model: TfliteModel) -> str:
    return str(model.path) if model.path else f"{model.name}.tflite"


def _convert_hint(model: TfliteModel, source: str = "") -> str:
    path = _model_path_text(model)
    stem = Path(path).stem
    return (f"quantize it to int8 with calibration data: tinydeploy convert {source or path} --calib samples.npy "
            f"-o {stem}_int8.tflite (flash and generate do the same when given --calib)")


def classification_refusal(model: TfliteModel) -> TinydeployError | None:
    """The refusal every engine gives a model that does not compute in int8 or int16x8, or None."""
    kind = model.classification
    name = _model_path_text(model)
    if kind.kind == "npu":
        return TinydeployError(
            f"{name} is compiled for {kind.npu}: the network is one {', '.join(kind.custom_ops)} custom op that "
            "only that NPU runs, with its weights in the NPU's own format",
            "give the .tflite from before Vela (the model you passed to vela); tinydeploy runs it on the CPU")
    if kind.kind == "float":
        return TinydeployError(f"{name} is a float model (float32 arithmetic in {', '.join(kind.float_ops)}); "
                               "tinydeploy's engines run int8 or int16x8 models", _convert_hint(model))
    if kind.kind == "hybrid":
        return TinydeployError(
            f"{name} is dynamic-range quantized: {', '.join(kind.hybrid_ops)} take float32 activations with int8 "
            "weights, which TFLM does not run (\"Hybrid models are not supported on TFLite Micro\") and the native "
            "engine does not either", _convert_hint(model))
    if kind.kind == "mixed":
        what = f"{name} is only partly quantized: float32 arithmetic remains in {', '.join(kind.float_ops)}"
        quantized_inputs = sorted({dtype for dtype in kind.input_dtypes if dtype not in FLOAT_TYPES})
        if quantized_inputs:
            # convert calibrates a float32 input only, and converting the source again gives this same file
            return TinydeployError(f"{what} while its input is already {'/'.join(quantized_inputs)}",
                                   "calibrating again cannot help: in the source model, replace the layer that "
                                   f"makes the {', '.join(kind.float_ops)} op(s), then convert it again")
        return TinydeployError(what, _convert_hint(model) + "; ops without int8 kernels stay float: replace them")
    if kind.kind == "uint8":
        return TinydeployError(f"{name} uses the legacy uint8 quantization, whose kernels TFLM removed",
                               "convert the float model to int8 instead: tinydeploy convert MODEL --calib "
                               "samples.npy -o model_int8.tflite")
    return None
