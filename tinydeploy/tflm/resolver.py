"""The op resolver of a TFLM sketch: which MicroMutableOpResolver method registers each op of a model."""

from __future__ import annotations

from tinydeploy.errors import TinydeployError
from tinydeploy.golden import TFLM_INT8_ONLY_REDUCTIONS, TFLM_MAX_CONCATENATION_INPUTS
from tinydeploy.model.tflite import TfliteModel
from tinydeploy.tflm.library import TFLM_LIBRARY_COMMIT

# BuiltinOperator name -> the MicroMutableOpResolver method that registers it, as declared in the pinned
# library's tensorflow/lite/micro/micro_mutable_op_resolver.h. The one table of this mapping.
TFLM_OP_METHODS: dict[str, str] = {
    "ABS": "AddAbs", "ADD": "AddAdd", "ADD_N": "AddAddN", "ARG_MAX": "AddArgMax", "ARG_MIN": "AddArgMin",
    "ASSIGN_VARIABLE": "AddAssignVariable", "AVERAGE_POOL_2D": "AddAveragePool2D",
    "BATCH_TO_SPACE_ND": "AddBatchToSpaceNd", "BROADCAST_ARGS": "AddBroadcastArgs",
    "BROADCAST_TO": "AddBroadcastTo", "CALL_ONCE": "AddCallOnce", "CAST": "AddCast", "CEIL": "AddCeil",
    "CONCATENATION": "AddConcatenation", "CONV_2D": "AddConv2D", "COS": "AddCos", "CUMSUM": "AddCumSum",
    "DEPTH_TO_SPACE": "AddDepthToSpace", "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "DEQUANTIZE": "AddDequantize", "DIV": "AddDiv", "ELU": "AddElu", "EQUAL": "AddEqual", "EXP": "AddExp",
    "EXPAND_DIMS": "AddExpandDims", "FILL": "AddFill", "FLOOR": "AddFloor", "FLOOR_DIV": "AddFloorDiv",
    "FLOOR_MOD": "AddFloorMod", "FULLY_CONNECTED": "AddFullyConnected", "GATHER": "AddGather",
    "GATHER_ND": "AddGatherNd", "GREATER": "AddGreater", "GREATER_EQUAL": "AddGreaterEqual",
    "HARD_SWISH": "AddHardSwish", "IF": "AddIf", "L2_NORMALIZATION": "AddL2Normalization",
    "L2_POOL_2D": "AddL2Pool2D", "LEAKY_RELU": "AddLeakyRelu", "LESS": "AddLess", "LESS_EQUAL": "AddLessEqual",
    "LOG": "AddLog", "LOGICAL_AND": "AddLogicalAnd", "LOGICAL_NOT": "AddLogicalNot",
    "LOGICAL_OR": "AddLogicalOr", "LOGISTIC": "AddLogistic", "LOG_SOFTMAX": "AddLogSoftmax",
    "MAXIMUM": "AddMaximum", "MAX_POOL_2D": "AddMaxPool2D", "MIRROR_PAD": "AddMirrorPad", "MEAN": "AddMean",
    "MINIMUM": "AddMinimum", "MUL": "AddMul", "NEG": "AddNeg", "NOT_EQUAL": "AddNotEqual", "PACK": "AddPack",
    "PAD": "AddPad", "PADV2": "AddPadV2", "PRELU": "AddPrelu", "QUANTIZE": "AddQuantize",
    "READ_VARIABLE": "AddReadVariable", "REDUCE_MAX": "AddReduceMax", "RELU": "AddRelu", "RELU6": "AddRelu6",
    "RESHAPE": "AddReshape", "RESIZE_BILINEAR": "AddResizeBilinear",
    "RESIZE_NEAREST_NEIGHBOR": "AddResizeNearestNeighbor", "ROUND": "AddRound", "RSQRT": "AddRsqrt",
    "SELECT_V2": "AddSelectV2", "SHAPE": "AddShape", "SIN": "AddSin", "SLICE": "AddSlice",
    "SOFTMAX": "AddSoftmax", "SPACE_TO_BATCH_ND": "AddSpaceToBatchNd", "SPACE_TO_DEPTH": "AddSpaceToDepth",
    "SPLIT": "AddSplit", "SPLIT_V": "AddSplitV", "SQUEEZE": "AddSqueeze", "SQRT": "AddSqrt",
    "SQUARE": "AddSquare", "SQUARED_DIFFERENCE": "AddSquaredDifference", "STRIDED_SLICE": "AddStridedSlice",
    "SUB": "AddSub", "SUM": "AddSum", "SVDF": "AddSvdf", "TANH": "AddTanh", "TRANSPOSE_CONV": "AddTransposeConv",
    "TRANSPOSE": "AddTranspose", "UNPACK": "AddUnpack",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM", "VAR_HANDLE": "AddVarHandle",
    "WHILE": "AddWhile", "ZEROS_LIKE": "AddZerosLike",
}


def tflm_problems(model: TfliteModel) -> list[str]:
    """Why the TFLM firmware tinydeploy generates cannot run a model ([] when it can)."""
    from tinydeploy.tflm.rescale_precision import rescale_differences

    problems = []
    missing = [op for op in model.distinct_ops if op not in TFLM_OP_METHODS]
    if missing:
        problems.append(f"the pinned TFLM library ({TFLM_LIBRARY_COMMIT[:7]}) has no kernel for "
                        f"{', '.join(missing)}")
    per_channel = per_channel_fully_connected(model)
    if per_channel:
        shown = ", ".join(map(str, per_channel[:5])) + (" ..." if len(per_channel) > 5 else "")
        which = f"op {shown} has" if len(per_channel) == 1 else f"ops {shown} have"
        problems.append(f"FULLY_CONNECTED {which} per-channel weights, and the pinned TFLM library "
                        f"({TFLM_LIBRARY_COMMIT[:7]}) applies the first channel's scale to every output (wrong "
                        "outputs); convert with per-tensor dense layers (TFLiteConverter's "
                        "_experimental_disable_per_channel_quantization_for_dense_layers = True)")
    wide = [op.index for op in model.operators
            if op.op == "CONCATENATION" and len(op.inputs) > TFLM_MAX_CONCATENATION_INPUTS]
    if wide:
        problems.append(f"CONCATENATION op {wide[0]} has {len(model.operators[wide[0]].inputs)} inputs, and TFLM's "
                        f"kernel takes at most {TFLM_MAX_CONCATENATION_INPUTS} (it fails to allocate the model); "
                        f"concatenate at most {TFLM_MAX_CONCATENATION_INPUTS} at a time, then the results")
    int16_reductions = [op.index for op in model.operators if op.op in TFLM_INT8_ONLY_REDUCTIONS and op.inputs and
                        model.tensors[op.inputs[0]].dtype == "int16"]
    if int16_reductions:
        op = model.operators[int16_reductions[0]]
        problems.append(f"{op.op} op {op.index} reduces int16, and TFLM's kernel runs float32 and int8 only (it fails "
                        "the model at invoke); convert it to int8, or pool with global average pooling (MEAN)")
    differences = rescale_differences(model)
    for op_name in sorted({d.op for d in differences}):
        found = [d for d in differences if d.op == op_name]
        indices = ", ".join(str(d.op_index) for d in found[:5]) + (" ..." if len(found) > 5 else "")
        which = f"op {indices}" if len(found) == 1 else f"ops {indices}"
        problems.append(f"{found[0].dtype} {op_name} {which}: the pinned TFLM library ({TFLM_LIBRARY_COMMIT[:7]}) "
                        "rounds the op's rescale ratio to single precision before making its multiplier, so some "
                        f"outputs differ from current TFLM's ({found[0].example(len(found) > 1)})")
    return problems


def per_channel_fully_connected(model: TfliteModel) -> list[int]:
    """FULLY_CONNECTED ops whose quantized weights carry one scale per output channel: the pinned library's
    FULLY_CONNECTED kernels (reference and CMSIS-NN, int8 and int16) compute with a single multiplier from the
    tensor's first scale. Newer TFLM (the host's tflite_micro) scales per channel, so the outputs would differ."""
    found = []
    for op in model.operators:
        if op.op != "FULLY_CONNECTED" or len(op.inputs) < 2 or op.inputs[1] < 0:
            continue
        weights = model.tensors[op.inputs[1]]
        if weights.dtype in ("int8", "int4", "int16") and weights.quant is not None and weights.quant.per_channel:
            found.append(op.index)
    return found


def resolver_methods(model: TfliteModel) -> list[tuple[str, str]]:
    """(op, method) for each distinct op of the model, in first-use order (the engine's check refuses, with the
    reasons and what works, a model with ops the library lacks before this is called)."""
    ops = list(dict.fromkeys(model.op_names))
    missing = [op for op in ops if op not in TFLM_OP_METHODS]
    if missing:
        raise TinydeployError(f"the TFLM library ({TFLM_LIBRARY_COMMIT[:7]}) has no kernel for "
                              f"{', '.join(missing)} used by {model.name}",
                              "replace those layers before converting")
    return [(op, TFLM_OP_METHODS[op]) for op in ops]
