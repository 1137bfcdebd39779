"""Static memory plan: every activation tensor and scratch buffer gets an offset in one buffer.

Blocks whose lifetimes overlap never share bytes; views (RESHAPE) share their input's block. Placement is
greedy by size: the largest block first, each at the lowest aligned offset that fits between the blocks
already placed that are live at the same time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Hashable, Sequence

from tinydeploy.analysis.memory import tensor_lifetimes
from tinydeploy.model.tflite import TfliteModel

ALIGNMENT = 4  # word alignment: int32 scratch and 32-bit SIMD loads on Cortex-M


@dataclass(frozen=True)
class Block:
    key: Hashable
    nbytes: int
    first: int  # first op that uses it (-1: before the first op, e.g. a graph input)
    last: int  # last op that uses it

    def overlaps(self, other: "Block") -> bool:
        return self.first <= other.last and other.first <= self.last


def _align(value: int, alignment: int) -> int:
    return (value + alignment - 1) // alignment * alignment


def place_blocks(blocks: Sequence[Block], alignment: int = ALIGNMENT) -> dict[Hashable, int]:
    """Offsets for blocks such that two blocks with overlapping lifetimes never overlap in memory."""
    offsets: dict[Hashable, int] = {}
    placed: list[Block] = []
    for block in sorted(blocks, key=lambda b: (-b.nbytes, b.first, b.last, str(b.key))):
        busy = sorted((offsets[other.key], offsets[other.key] + other.nbytes)
                      for other in placed if other.overlaps(block) and other.nbytes)
        offset = 0
        for start, end in busy:
            if offset + block.nbytes <= start:
                break
            offset = max(offset, _align(end, alignment))
        offsets[block.key] = offset
        placed.append(block)
    return offsets


@dataclass
class MemoryPlan:
    activation_bytes: int  # size of the one buffer, scratch included
    peak_op: int  # first op at which the live blocks reach the end of the buffer
    lower_bound_bytes: int  # most bytes live at once (no plan can use less without computing in place)
    offsets: dict[int, int]  # tensor index -> byte offset (views share their source's offset)
    scratch: dict[int, tuple[int, int]] = field(default_factory=dict)  # op index -> (offset, bytes)
    blocks: list[Block] = field(default_factory=list)


def plan_memory(model: TfliteModel, views: dict[int, int] | None = None,
                scratch_bytes: dict[int, int] | None = None, alignment: int = ALIGNMENT) -> MemoryPlan:
    """Plan the activation buffer of `model`.

    views: output tensor -> the input tensor it aliases; scratch_bytes: op index -> bytes it needs while it runs."""
    views = views or {}
    lifetimes = tensor_lifetimes(model)

    def root(tensor: int) -> int:
        while tensor in views:
            tensor = views[tensor]
        return tensor

    groups: dict[int, Block] = {}
    for lifetime in lifetimes:
        key = root(lifetime.tensor)
        old = groups.get(key)
        if old is None:
            groups[key] = Block(key, lifetime.nbytes, lifetime.first, lifetime.last)
        else:
            groups[key] = Block(key, max(old.nbytes, lifetime.nbytes), min(old.first, lifetime.first),
                                max(old.last, lifetime.last))
    blocks = list(groups.values())
    blocks += [Block(("scratch", op), size, op, op) for op, size in sorted((scratch_bytes or {}).items()) if size]
    placed = place_blocks(blocks, alignment)

    total = max((placed[b.key] + b.nbytes for b in blocks), default=0)
    total = _align(total, alignment) if total else 0
    op_count = max(len(model.operators), 1)
    ends = [max((placed[b.key] + b.nbytes for b in blocks if b.first <= op <= b.last), default=0)
            for op in range(op_count)]
    live = [sum(b.nbytes for b in blocks if b.first <= op <= b.last) for op in range(op_count)]
    peak_op = ends.index(max(ends)) if ends else -1
    offsets = {lt.tensor: placed[root(lt.tensor)] for lt in lifetimes}
    scratch = {b.key[1]: (placed[b.key], b.nbytes) for b in blocks if isinstance(b.key, tuple)}
    return MemoryPlan(total, peak_op, max(live, default=0), offsets, scratch, blocks)
