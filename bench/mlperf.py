"""What bench/speed.py and bench/memory.py share: the MLPerf Tiny models, the published figures to compare with,
the goals of issue 16, and one measurement of a model on the virtual board with one engine.

Published figures (MLPerf Tiny closed division, Cortex-M4 STM32L4R5 at 120 MHz, real silicon; cycles = ms x MHz;
../shared/notes/FACTS.md): X-CUBE-AI 9.0 (v1.2) and Plumerai 2023.05 (v1.1) latencies, and X-CUBE-AI 9.0's model
RAM and flash (weights and parameters) from the submissions' .ioc files."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "models" / "mlperf-tiny"
MODELS = {"kws": "kws_ref_model", "vww": "vww_96_int8", "ic": "pretrainedResnet_quant", "ad": "ad01_int8"}
CLOCK_MHZ = 120
XCUBE_9_MS = {"kws": 43.2, "vww": 88.9, "ic": 165.1, "ad": 5.26}
PLUMERAI_MS = {"kws": 47.8, "vww": 98.8, "ic": 167.8, "ad": 4.05}
XCUBE_9_RAM = {"kws": 22_272, "vww": 58_624, "ic": 56_672, "ad": 2_048}
XCUBE_9_FLASH = {"kws": 24_368, "vww": 42_612, "ic": 78_744, "ad": 270_880}
# Goals (issue 16): emulated instructions <= 0.75 x the best published cycles; <= 1.5 instructions per MAC on
# KWS, VWW and IC; native constants <= 1.10 x (int8 weights + per-channel parameters); native firmware flash
# <= 0.8 x TFLM's; planned activation bytes no more than before the fast kernels.
CYCLES_FACTOR = 0.75
PER_MAC_GOAL = 1.5
PER_MAC_MODELS = ("kws", "vww", "ic")
CONSTANTS_FACTOR = 1.10
FIRMWARE_FACTOR = 0.8
ACTIVATION_BYTES_BEFORE = {"kws": 10_092, "vww": 46_080, "ic": 33_312, "ad": 768}


def key_of(path: Path) -> str | None:
    return next((key for key, stem in MODELS.items() if stem == path.stem), None)


def best_published(key: str) -> tuple[str, int]:
    """(engine, cycles) of the fastest published Cortex-M4 result."""
    engine, ms = min((("X-CUBE-AI 9.0", XCUBE_9_MS[key]), ("Plumerai", PLUMERAI_MS[key])), key=lambda e: e[1])
    return engine, round(ms * CLOCK_MHZ * 1000)


def model_paths(argv: list[str]) -> list[Path]:
    paths = [Path(p) for p in argv if not p.startswith("--")]
    return paths or [SHARED / f"{stem}.tflite" for stem in MODELS.values() if (SHARED / f"{stem}.tflite").exists()]


def tflm_lib_argument(argv: list[str]) -> str | None:
    """--tflm-lib PATH (or --tflm-lib=PATH), else $TINYDEPLOY_TFLM_LIB."""
    import os

    for i, arg in enumerate(argv):
        if arg == "--tflm-lib" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--tflm-lib="):
            return arg.split("=", 1)[1]
    return os.environ.get("TINYDEPLOY_TFLM_LIB") or None


def without_options(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--tflm-lib":
            skip = True
        elif not arg.startswith("--"):
            out.append(arg)
    return out


@dataclass
class Run:
    """One model on the virtual board with one engine (None fields: not measured)."""

    engine: str  # "native fast", "native reference", "TFLM + CMSIS-NN"
    instructions: int
    outputs_match: bool
    flash_bytes: int  # the firmware
    ram_bytes: int  # the firmware: static + stack + heap
    stack_bytes: int
    activation_bytes: int  # native: the planned buffer; TFLM: the arena the device used
    constants_bytes: int | None = None  # native: weights and parameters in flash


def int8_parameter_bytes(model) -> int:
    """The model's int8 weights plus per-channel parameters as TFLM holds them (int32 bias, multiplier and shift
    per output channel of each convolution, depthwise convolution and dense layer)."""
    total = 0
    for op in model.operators:
        if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and len(op.inputs) > 1:
            weights = model.tensors[op.inputs[1]]
            channels = weights.shape[3] if op.op == "DEPTHWISE_CONV_2D" else weights.shape[0]
            has_bias = len(op.inputs) > 2 and op.inputs[2] != -1
            total += weights.nbytes + channels * (12 if has_bias else 8)
    return total


def measure(path: Path, engine: str, workdir: Path, tflm_lib: str | None = None, runs: int = 3) -> Run:
    """Build, flash and run on the virtual board (QEMU -icount): outputs checked against host TFLM by flash."""
    from tinydeploy.boards import get_board
    from tinydeploy.flow import flash_model
    from tinydeploy.model.tflite import load_tflite

    model = load_tflite(path)
    native = engine.startswith("native")
    # One project directory per engine, reused across models. TFLM: the project in which `flash` measures the
    # arena (tinydeploy.tflm.library.tflm_arena_workspace), so the library compiles once for both.
    out = workdir / engine.replace(" ", "-").replace("+", "") if native else tflm_project(tflm_lib)
    report = flash_model(model, get_board("virtual"), "native" if native else "tflm", out, True, None, 2, runs, 1,
                         lambda message: None, tflm_lib=None if native else tflm_lib,
                         fast_kernels=engine == "native fast")
    data = report.to_json()
    constants = None
    if native:
        from tinydeploy.engine import native_plan

        constants = native_plan(model, fast_kernels=engine == "native fast").flash_bytes
    return Run(engine, data["instructions"], bool(data["outputs_match"]), data["flash_bytes"], data["ram_bytes"],
               data["stack_bytes"], data["activation_bytes"], constants)


def tflm_project(tflm_lib: str | None) -> Path:
    from tinydeploy.tflm.library import tflm_arena_workspace

    return tflm_arena_workspace(tflm_lib) / "project"


ENGINES = ("native fast", "native reference", "TFLM + CMSIS-NN")  # the TFLM one only with a library


def measure_engines(path: Path, workdir: Path, tflm_lib: str | None,
                    notes: list[str]) -> dict[str, Run | str]:
    """Native fast, native reference and (with a library) TFLM + CMSIS-NN; a failure is kept as its message and
    added to `notes`."""
    from tinydeploy.errors import TinydeployError

    results: dict[str, Run | str] = {}
    for engine in ENGINES if tflm_lib else ENGINES[:2]:
        try:
            results[engine] = measure(path, engine, workdir, tflm_lib)
        except TinydeployError as exc:
            results[engine] = exc.message
            notes.append(f"{path.stem}, {engine}: {exc.message}")
    return results


def print_results(table, verdicts: list[str], notes: list[str], tflm_lib: str | None) -> None:
    """A bench's table, then its verdicts on the goals and what could not be measured."""
    from rich.console import Console

    Console(width=220).print(table)
    print("\n".join(verdicts + notes))
    if not tflm_lib:
        print("TFLM + CMSIS-NN not measured: give --tflm-lib PATH (or set $TINYDEPLOY_TFLM_LIB) to a local copy of "
              "the Arduino TFLM library.")


def bench_home() -> Path:
    """A persistent work directory: projects kept between runs rebuild only what changed."""
    from tinydeploy.paths import data_home

    path = data_home() / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path
