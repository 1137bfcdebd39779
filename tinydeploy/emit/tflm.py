"""What a TFLite Micro sketch needs from a model: its op resolver, its arena size and the library to build with.

The Arduino TFLM library is tensorflow/tflite-micro-arduino-examples, pinned to one commit. A local copy
(--tflm-lib PATH or $TINYDEPLOY_TFLM_LIB) replaces the download: needed where GitHub is unreachable.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from tinydeploy.errors import TinydeployError
from tinydeploy.model.tflite import TfliteModel

TFLM_LIBRARY_NAME = "Arduino_TensorFlowLite"
TFLM_LIBRARY_REPO = "https://github.com/tensorflow/tflite-micro-arduino-examples.git"
# The last commit of the library (2023-12-22; its last sync from tflite-micro is bd7e861, 2023-02-27).
TFLM_LIBRARY_COMMIT = "7948b85e020470a30a83bf00e10fc43b486bfcba"
TFLM_LIBRARY_DEPS = f"{TFLM_LIBRARY_NAME}={TFLM_LIBRARY_REPO}#{TFLM_LIBRARY_COMMIT}"
TFLM_LIB_ENV = "TINYDEPLOY_TFLM_LIB"
GITHUB_HOST = "github.com"

ARENA_ALIGN = 16
# The stated margin over a measured arena_used_bytes(): that figure is below the smallest arena that allocates
# (TFLM holds temporary buffers while it prepares the ops and plans memory), by 12 B for KWS/VWW/IC and ~380 B
# for AD on the pinned library (FACTS.md). kTensorArenaSize = used + this, rounded up to 16 B (so the margin
# written into a sketch is 512..527 B).
CALIBRATION_MARGIN_BYTES = 512
# Arena for the calibration build: large, so allocation cannot fail, and still within the board's RAM.
CALIBRATION_ARENA_FRACTION = 0.5
# The virtual board (QEMU mps2-an386) measures arenas for boards with the same core: the same library source
# built for the same 32-bit ABI and the same CMSIS-NN kernel paths (DSP extension) allocates the same bytes.
VIRTUAL_BOARD = "virtual"
# Tools the virtual board's measurement needs on PATH.
VIRTUAL_BOARD_TOOLS = ("qemu-system-arm", "arm-none-eabi-g++")
MEASURE_ENV = "TINYDEPLOY_TFLM_MEASURE"  # "0": never measure on the virtual board (use analyze's upper bound)

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


# Tensors the TFLM firmware (firmware/tflm/td_tflm_engine.cpp and the serial protocol) carries each way.
TFLM_FIRMWARE_MAX_IO_TENSORS = 1


def resolver_methods(model: TfliteModel) -> list[tuple[str, str]]:
    """(op, method) for each distinct op of the model, in first-use order; refuses, naming why and what works,
    a model the TFLM firmware cannot run (ops the library lacks, more tensors than the firmware carries, a model
    that is not quantized)."""
    from tinydeploy.analysis.support import require_engine

    require_engine(model, "tflm")
    return [(op, TFLM_OP_METHODS[op]) for op in dict.fromkeys(model.op_names)]


def _align(n: int) -> int:
    return (n + ARENA_ALIGN - 1) // ARENA_ALIGN * ARENA_ALIGN


@dataclass(frozen=True)
class ArenaSizing:
    """kTensorArenaSize and where it comes from."""

    arena_bytes: int  # kTensorArenaSize
    base_bytes: int  # the figure it rests on: analyze's 32-bit estimate, or arena_used_bytes() read on a device
    margin_bytes: int  # arena_bytes - base_bytes: the stated margin
    source: str  # "analyze" (host TFLM, an upper bound), "device" (measured) or "calibration" (generous)
    measured_on: str = ""  # for "device": the board whose arena_used_bytes() it is
    note: str = ""  # why an "analyze" figure was not measured

    @property
    def is_upper_bound(self) -> bool:
        return self.source == "analyze"

    def describe(self) -> str:
        if self.source == "device":
            where = ("the virtual board (Cortex-M4, the same TFLM library)" if self.measured_on == VIRTUAL_BOARD
                     else self.measured_on)
            return (f"{self.base_bytes} B arena_used_bytes() measured on {where} "
                    f"+ {self.margin_bytes} B margin (at most {CALIBRATION_MARGIN_BYTES + ARENA_ALIGN - 1} B)")
        if self.source == "calibration":
            return f"generous arena of the calibration build ({self.base_bytes} B estimate + {self.margin_bytes} B)"
        text = (f"{self.base_bytes} B 32-bit estimate from the host TFLM (tinydeploy analyze) + {self.margin_bytes} B "
                "margin for the target's kernels: an upper bound, not measured on the target")
        return f"{text} ({self.note})" if self.note else text


def arena_from_analysis(model: TfliteModel, note: str = "") -> ArenaSizing:
    from tinydeploy.analysis.analyze import tflm_arena

    estimate, _ = tflm_arena(model)
    arena = _align(estimate.recommended_bytes)
    return ArenaSizing(arena, estimate.target_bytes, arena - estimate.target_bytes, "analyze", note=note)


def arena_from_device(used_bytes: int, measured_on: str = "") -> ArenaSizing:
    """used + the stated margin, rounded up to 16 B: what a sketch gets once its arena was measured."""
    if used_bytes <= 0:
        raise ValueError(f"arena_used_bytes() must be positive, got {used_bytes}")
    arena = _align(used_bytes + CALIBRATION_MARGIN_BYTES)
    return ArenaSizing(arena, used_bytes, arena - used_bytes, "device", measured_on)


def calibration_arena(board_ram_bytes: int, core_ram_bytes: int, model_hint_bytes: int) -> ArenaSizing:
    """A generous arena for the calibration build: twice the estimate, capped by the board's free RAM."""
    room = int((board_ram_bytes - core_ram_bytes) * CALIBRATION_ARENA_FRACTION)
    arena = _align(max(min(2 * model_hint_bytes + 16 * 1024, room), model_hint_bytes))
    return ArenaSizing(arena, model_hint_bytes, arena - model_hint_bytes, "calibration")


# ---- the library: pinned download or a local copy ------------------------------------------------------------


@dataclass(frozen=True)
class TflmLibrary:
    local_path: Path | None  # a local copy of the library (its root: library.properties, src/)

    @property
    def version(self) -> str:
        """Identifies the library's code for caches: the pinned commit, or the local copy's version line."""
        if self.local_path is None:
            return TFLM_LIBRARY_COMMIT[:12]
        try:
            for line in (self.local_path / "library.properties").read_text().splitlines():
                if line.startswith("version="):
                    return "local-" + line.split("=", 1)[1].strip()
        except OSError:
            pass
        return "local"


def resolve_tflm_library(path: str | Path | None = None) -> TflmLibrary:
    """The library to build with: PATH, else $TINYDEPLOY_TFLM_LIB, else the pinned download."""
    chosen = path or os.environ.get(TFLM_LIB_ENV) or None
    if chosen is None:
        return TflmLibrary(None)
    root = Path(chosen).expanduser().resolve()
    if (root / TFLM_LIBRARY_NAME / "src" / "TensorFlowLite.h").is_file():
        root = root / TFLM_LIBRARY_NAME  # the folder that holds the library was given
    if not (root / "src" / "TensorFlowLite.h").is_file():
        raise TinydeployError(f"{chosen} is not the Arduino TFLM library (no src/TensorFlowLite.h)",
                              f"give the root of a copy of {TFLM_LIBRARY_REPO.removesuffix('.git')} "
                              f"(e.g. git clone it; commit {TFLM_LIBRARY_COMMIT[:7]} is the tested one)")
    return TflmLibrary(root)


def github_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((GITHUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def tflm_library_unreachable(native_runs_model: bool = True) -> TinydeployError:
    """`native_runs_model`: whether --engine native is a way out for this model."""
    local = (f"--tflm-lib PATH (or ${TFLM_LIB_ENV}) to a local copy of "
             f"{TFLM_LIBRARY_REPO.removesuffix('.git')}")
    return TinydeployError("the TFLM engine needs the Arduino TFLM library, which PlatformIO downloads from GitHub, "
                           "and GitHub is unreachable (no internet?)",
                           f"use --engine native, or {local}" if native_runs_model else f"give {local}")


def c_byte_array_body(data: bytes, per_line: int = 16) -> str:
    lines = (", ".join(f"0x{b:02x}" for b in data[i:i + per_line]) for i in range(0, len(data), per_line))
    return ",\n".join("    " + line for line in lines)


# ---- arena measured on a device, cached per model, board and library version -----------------------------------


def _calibration_key(model: TfliteModel, board_name: str, library: TflmLibrary) -> str:
    return f"{model.sha256}-{board_name}-{library.version}"


def cached_device_arena(model: TfliteModel, board_name: str, library: TflmLibrary) -> ArenaSizing | None:
    from tinydeploy import cache

    hit = cache.load("tflm-arena", _calibration_key(model, board_name, library))
    if not hit or not isinstance(hit.get("used_bytes"), int) or hit["used_bytes"] <= 0:
        return None
    return arena_from_device(hit["used_bytes"], board_name)


def store_device_arena(model: TfliteModel, board_name: str, library: TflmLibrary, used_bytes: int) -> None:
    from tinydeploy import cache

    cache.store("tflm-arena", _calibration_key(model, board_name, library),
                {"used_bytes": int(used_bytes), "model": model.name, "board": board_name, "library": library.version})


def virtual_board_measures(board_name: str) -> bool:
    """Whether an arena measured on the virtual board holds for this board: the same core (Cortex-M4, with or
    without FPU), hence the same ABI and the same CMSIS-NN kernel paths."""
    from tinydeploy.boards import get_board

    def core(name: str) -> str:
        return get_board(name).cpu.removesuffix("F")

    return core(board_name) == core(VIRTUAL_BOARD)


def virtual_measurement_unavailable(library: TflmLibrary) -> str:
    """Why the arena cannot be measured on the virtual board here ("" when it can)."""
    import shutil

    if library.local_path is None:
        return f"no local TFLM library (--tflm-lib or ${TFLM_LIB_ENV}) to build the measurement with"
    if os.environ.get(MEASURE_ENV, "1") == "0":
        return f"${MEASURE_ENV}=0"
    missing = [tool for tool in VIRTUAL_BOARD_TOOLS if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not found to build and run the virtual board"
    return ""


def arena_for(model: TfliteModel, board_name: str, library: TflmLibrary) -> ArenaSizing:
    """The arena a build gets without measuring now: arena_used_bytes() read on this board (--calibrate-arena) or
    on the virtual board (same core), from the cache; else analyze's estimate, an upper bound, with the reason.
    tinydeploy.flow.tflm_arena measures on the virtual board first where it can."""
    cached = cached_device_arena(model, board_name, library)
    if cached is not None:
        return cached
    if not virtual_board_measures(board_name):
        return arena_from_analysis(model, f"{board_name} has another core than the virtual board")
    cached = cached_device_arena(model, VIRTUAL_BOARD, library)
    if cached is not None:
        return cached
    return arena_from_analysis(model, virtual_measurement_unavailable(library) or "not measured on the virtual "
                               "board yet")
