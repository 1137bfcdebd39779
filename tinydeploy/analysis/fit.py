"""The verdict against a board: flash and RAM needed versus available, and what would help."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from tinydeploy.boards import Board
from tinydeploy.model.tflite import TfliteModel


TFLM_CODE_TABLE = Path(__file__).parent / "tflm_code_size.toml"  # measured: python -m tinydeploy.hil.tflm_code_size


@lru_cache(maxsize=1)
def _tflm_code_table() -> dict:
    return tomllib.loads(TFLM_CODE_TABLE.read_text())


def tflm_code_bytes(ops: list[str]) -> int:
    """Flash of a TFLM firmware's code beyond the board's core: the runtime (with the protocol and sketch), each op's
    own kernel code, and the code several ops share, counted once (measured: tinydeploy.hil.tflm_code_size)."""
    table = _tflm_code_table()
    distinct = set(ops)
    return table["runtime_bytes"] + table["runtime_bytes_per_op"] * len(distinct) + \
        sum(table["op_bytes"].get(op, table["default_op_bytes"]) for op in distinct) + \
        sum(group["bytes"] for group in table.get("shared", []) if distinct & set(group["ops"]))


@dataclass(frozen=True)
class Part:
    label: str
    nbytes: int


@dataclass(frozen=True)
class Budget:
    """One memory (flash or RAM): what uses it and what is available."""

    name: str
    parts: list[Part]
    available: int

    @property
    def used(self) -> int:
        return sum(p.nbytes for p in self.parts)

    @property
    def fits(self) -> bool:
        return self.used <= self.available

    @property
    def overshoot(self) -> int:
        return max(0, self.used - self.available)

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.available


@dataclass(frozen=True)
class Verdict:
    board: Board
    flash: Budget
    ram: Budget
    suggestions: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.flash.fits and self.ram.fits


def flash_budget(board: Board, model: TfliteModel, engine_code_bytes: int, engine_label: str,
                 model_data: tuple[str, int] | None = None) -> Budget:
    label, nbytes = model_data or ("model (.tflite as a C array)", model.size_bytes)
    return Budget("flash", [
        Part(label, nbytes),
        Part(f"{engine_label} code (estimate)", engine_code_bytes),
        Part(f"{board.name} core/runtime", board.core_flash_bytes),
    ], board.flash_bytes)


def stack_part(board: Board, estimated_bytes: int | None = None) -> Part:
    """The stack: the board's reserve (what the linker keeps free), or the estimated peak where that is more."""
    if estimated_bytes is None:
        return Part("stack reserve", board.stack_bytes)
    return Part(f"stack (estimated peak {estimated_bytes:,} B; reserve {board.stack_bytes:,} B)",
                max(estimated_bytes, board.stack_bytes))


def tflm_sketch_ram_bytes(ops: list[str]) -> int:
    """Static RAM of a TFLM sketch beyond its tensor arena and the board's core: the interpreter and op resolver
    objects beyond the core figure (measured: tinydeploy.hil.tflm_code_size)."""
    table = _tflm_code_table()
    return table["sketch_ram_bytes"] + table["sketch_ram_bytes_per_op"] * len(set(ops))


def ram_budget(board: Board, model_ram_bytes: int, model_ram_label: str, stack_bytes: int | None = None,
               engine_parts: tuple[Part, ...] = ()) -> Budget:
    """The engine's RAM (inputs are loaded straight into the model's tensors: no copy of them besides) and its other
    static RAM (`engine_parts`), the core's static RAM and the stack."""
    return Budget("RAM", [
        Part(model_ram_label, model_ram_bytes),
        *engine_parts,
        Part(f"{board.name} core static RAM", board.core_ram_bytes),
        stack_part(board, stack_bytes),
    ], board.ram_bytes)


def suggestions(model: TfliteModel, verdict_flash: Budget, verdict_ram: Budget, arena_bytes: int,
                boards: dict[str, Board], board: Board) -> list[str]:
    """Concrete, numbered ways out when the model does not fit."""
    tips: list[str] = []
    float_weights = sum(t.nbytes for t in model.tensors if t.is_constant and t.dtype == "float32")
    if float_weights or model.float_tensors():
        flash_after = verdict_flash.used - model.size_bytes + (model.size_bytes - float_weights) + float_weights // 4
        ram_after = verdict_ram.used - arena_bytes + arena_bytes // 4
        tips.append(
            f"quantize to int8 (tinydeploy convert): weights {float_weights:,} B -> ~{float_weights // 4:,} B, "
            f"flash ~{flash_after:,} B of {verdict_flash.available:,} B, arena ~{arena_bytes // 4:,} B, "
            f"RAM ~{ram_after:,} B of {verdict_ram.available:,} B")
    per_channel_dense = [op for op in model.operators if op.op == "FULLY_CONNECTED" and len(op.inputs) > 1
                         and (q := model.tensors[op.inputs[1]].quant) is not None and q.per_channel]
    if per_channel_dense and not verdict_ram.fits:
        channels = sum(model.tensors[op.outputs[0]].shape[-1] for op in per_channel_dense)
        tips.append(
            f"quantize the {len(per_channel_dense)} dense layers per-tensor instead of per-channel: saves "
            f"~{8 * channels:,} B of TFLM arena ({channels:,} output channels x 8 B) and "
            f"~{12 * channels:,} B of flash")
    if not verdict_ram.fits:
        tips.append(f"shrink the activations: RAM is {verdict_ram.overshoot:,} B over; the largest live set is the "
                    "place to cut (fewer channels or a smaller input resolution there)")
    if not verdict_flash.fits:
        tips.append(f"shrink the weights: flash is {verdict_flash.overshoot:,} B over (fewer or narrower layers, "
                    "or pruning)")
    roomier = [b.name for b in boards.values() if b.name != board.name
               and b.flash_bytes - b.core_flash_bytes >= verdict_flash.used - board.core_flash_bytes
               and b.ram_bytes - b.core_ram_bytes - b.stack_bytes >= verdict_ram.used - board.core_ram_bytes
               - board.stack_bytes]
    if roomier:
        tips.append(f"or use a board with more memory: {', '.join(roomier)}")
    return tips
