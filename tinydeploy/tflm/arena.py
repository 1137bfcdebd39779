"""The TFLM sketch's tensor arena: the sizing rules and the cache of figures measured on devices.

Generation receives an ArenaSizing from here: a figure read on a device (cached per model, board and library
version), else analyze's 32-bit estimate, an upper bound, with the reason it was not measured. Measuring (build
a generous firmware, run it, read the smallest arena that allocates, which that firmware bisects for) is the
pipeline's job: tinydeploy.flow.calibrate_on_board (on the virtual board: measure_on_virtual_board).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

from tinydeploy.cache import Entry
from tinydeploy.model.tflite import TfliteModel
from tinydeploy.tflm.library import TFLM_LIB_ENV, TflmLibrary

MAX_DEVICE_ARENA_BYTES = 16 << 20  # more than any board's RAM: a cached figure above it is damage

ARENA_ALIGN = 16
# What a device measures is the smallest arena with which AllocateTensors() succeeds (the calibration firmware
# bisects for it), not arena_used_bytes(): that is below it by the buffers TFLM holds only while it prepares the
# ops and plans memory, 12 B for KWS/VWW/IC, ~380 B for AD and ~600 B for a float-IO model of 17 small tensors on
# the pinned library (~64 B per tensor of planning lists), so used + a fixed margin did not always allocate.
# The stated margin over that figure: kTensorArenaSize = smallest + this, rounded up to 16 B (so the margin
# written into a sketch is 512..527 B).
CALIBRATION_MARGIN_BYTES = 512
# What the device figure is; cached figures of another kind (arena_used_bytes() of earlier versions) are measured
# again.
DEVICE_FIGURE = "smallest-allocating-arena"
# Arena for the calibration build: large, so allocation cannot fail, and still within the board's RAM.
CALIBRATION_ARENA_FRACTION = 0.5
# The virtual board (QEMU mps2-an386) measures arenas for boards with the same core: the same library source
# built for the same 32-bit ABI and the same CMSIS-NN kernel paths (DSP extension) allocates the same bytes.
VIRTUAL_BOARD = "virtual"
# Tools the virtual board's measurement needs on PATH.
VIRTUAL_BOARD_TOOLS = ("qemu-system-arm", "arm-none-eabi-g++")
MEASURE_ENV = "TINYDEPLOY_TFLM_MEASURE"  # "0": never measure on the virtual board (use analyze's upper bound)


def _align(n: int) -> int:
    return (n + ARENA_ALIGN - 1) // ARENA_ALIGN * ARENA_ALIGN


@dataclass(frozen=True)
class ArenaSizing:
    """kTensorArenaSize and where it comes from."""

    arena_bytes: int  # kTensorArenaSize
    base_bytes: int  # the figure it rests on: analyze's 32-bit estimate, or the smallest arena that allocated on a
    # device
    margin_bytes: int  # arena_bytes - base_bytes: the stated margin
    source: str  # "analyze" (host TFLM, an upper bound), "device" (measured) or "calibration" (generous)
    measured_on: str = ""  # for "device": the board it was measured on
    note: str = ""  # why an "analyze" figure was not measured

    @property
    def is_upper_bound(self) -> bool:
        return self.source == "analyze"

    def describe(self) -> str:
        if self.source == "device":
            where = ("the virtual board (Cortex-M4, the same TFLM library)" if self.measured_on == VIRTUAL_BOARD
                     else self.measured_on)
            return (f"{self.base_bytes} B smallest arena that allocates, measured on {where} "
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
        raise ValueError(f"the measured arena must be positive, got {used_bytes}")
    arena = _align(used_bytes + CALIBRATION_MARGIN_BYTES)
    return ArenaSizing(arena, used_bytes, arena - used_bytes, "device", measured_on)


def calibration_arena(board_ram_bytes: int, core_ram_bytes: int, model_hint_bytes: int) -> ArenaSizing:
    """A generous arena for the calibration build: twice the estimate, capped by the board's free RAM."""
    room = int((board_ram_bytes - core_ram_bytes) * CALIBRATION_ARENA_FRACTION)
    arena = _align(max(min(2 * model_hint_bytes + 16 * 1024, room), model_hint_bytes))
    return ArenaSizing(arena, model_hint_bytes, arena - model_hint_bytes, "calibration")



# ---- arena measured on a device, cached per model, board and library version -----------------------------------


def _calibration_key(model: TfliteModel, board_name: str, library: TflmLibrary) -> str:
    return f"{model.sha256}-{board_name}-{library.version}"


class DeviceArenaEntry(Entry):
    """The smallest arena that allocated on a device, as the cache keeps it."""

    used_bytes: Annotated[int, Field(ge=1, le=MAX_DEVICE_ARENA_BYTES)]
    model: Annotated[str, Field(max_length=400)]
    board: Annotated[str, Field(max_length=100)]
    library: Annotated[str, Field(max_length=200)]


def _device_arena_made_with(model: TfliteModel, board_name: str, library: TflmLibrary) -> dict[str, str]:
    return {"model_sha256": model.sha256, "board": board_name, "library": library.version, "figure": DEVICE_FIGURE}


def cached_device_arena(model: TfliteModel, board_name: str, library: TflmLibrary) -> ArenaSizing | None:
    """The cached device figure, if it holds up: at most the board's RAM, at least the model's largest tensor
    that lives in the arena (a figure outside is damage, and is measured again)."""
    from tinydeploy import cache
    from tinydeploy.boards import get_board

    hit = cache.load("tflm-arena", _calibration_key(model, board_name, library), DeviceArenaEntry,
                     _device_arena_made_with(model, board_name, library))
    if hit is None:
        return None
    largest = max((t.nbytes for t in model.tensors if not t.is_constant), default=0)
    if not largest <= hit.used_bytes <= get_board(board_name).ram_bytes:
        return None
    return arena_from_device(hit.used_bytes, board_name)


def store_device_arena(model: TfliteModel, board_name: str, library: TflmLibrary, used_bytes: int) -> None:
    from tinydeploy import cache

    cache.store("tflm-arena", _calibration_key(model, board_name, library),
                DeviceArenaEntry(used_bytes=int(used_bytes), model=model.name[:400], board=board_name,
                                 library=library.version[:200]),
                _device_arena_made_with(model, board_name, library))


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
    """The arena a build gets without measuring now: the smallest that allocated on this board (--calibrate-arena) or
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
