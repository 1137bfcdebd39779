"""Static memory plan: every activation tensor and scratch buffer gets an offset in one buffer.

Blocks whose lifetimes overlap never share bytes; views (RESHAPE) share their input's block. Variable tensors
(recurrent state: LSTM hidden and cell state, SVDF activation state) live for the whole program and keep their
values from one invoke to the next, so they never share bytes with anything. Placement is greedy: blocks in some
order, each at an aligned offset that fits between the blocks already placed that are live at the same time;
several orders are tried and the smallest buffer wins."""

from __future__ import annotations

import heapq
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


# Orders in which blocks are placed; plan_memory keeps the one that ends lowest (greedy placement has no
# single best order: chains of convolutions favour chronological order, branching graphs largest-first).
ORDERS = {
    "largest first": lambda b: (-b.nbytes, b.first, b.last, str(b.key)),
    "chronological": lambda b: (b.first, -b.nbytes, b.last, str(b.key)),
    "longest lived first": lambda b: (-(b.last - b.first), -b.nbytes, b.first, str(b.key)),
    "largest area first": lambda b: (-(b.nbytes * (b.last - b.first + 1)), b.first, str(b.key)),
}


class _LiveIndex:
    """Placed blocks by lifetime: the ones whose lifetime overlaps a given one in O(log n + found), so that a
    placement costs n log n plus the overlaps it must respect, not n^2 (a graph of 20,000 tensors took minutes).

    An overlapping block either is live at the query's first op (a stabbing query on a segment tree of
    lifetimes) or starts after it and no later than the query's last op (a range query on a segment tree of
    first ops)."""

    def __init__(self, blocks: Sequence[Block]):
        self.low = min((b.first for b in blocks), default=0)
        high = max((b.last for b in blocks), default=0)
        self.size = 1
        while self.size < high - self.low + 1:
            self.size *= 2
        self.spans: list[list[Block]] = [[] for _ in range(2 * self.size)]
        self.starts: list[list[Block]] = [[] for _ in range(2 * self.size)]

    def add(self, block: Block) -> None:
        left, right = block.first - self.low + self.size, block.last - self.low + self.size + 1
        while left < right:  # the canonical nodes that cover [first, last]
            if left & 1:
                self.spans[left].append(block)
                left += 1
            if right & 1:
                right -= 1
                self.spans[right].append(block)
            left //= 2
            right //= 2
        node = block.first - self.low + self.size
        while node:
            self.starts[node].append(block)
            node //= 2

    def overlapping(self, block: Block) -> list[Block]:
        found: list[Block] = []
        node = block.first - self.low + self.size
        while node:
            found.extend(self.spans[node])
            node //= 2
        left, right = block.first + 1 - self.low + self.size, block.last - self.low + self.size + 1
        while left < right:
            if left & 1:
                found.extend(self.starts[left])
                left += 1
            if right & 1:
                right -= 1
                found.extend(self.starts[right])
            left //= 2
            right //= 2
        return found


def place_blocks(blocks: Sequence[Block], alignment: int = ALIGNMENT, order: str = "largest first",
                 best_fit: bool = False, clusters: Sequence[dict[Hashable, int]] = (),
                 first: Sequence[Hashable] = ()) -> dict[Hashable, int]:
    """Offsets for blocks such that two blocks with overlapping lifetimes never overlap in memory, except the
    members of a cluster: blocks placed together at fixed relative offsets (an op streaming its output over
    the input it consumes), which the caller has checked.

    Each block (or cluster) goes, in `order` (the blocks in `first` before all others), into the lowest gap that
    holds it (best_fit: the smallest gap)."""
    by_key = {b.key: b for b in blocks}
    units: list[dict[Hashable, int]] = [dict(c) for c in clusters]
    clustered = {key for c in units for key in c}
    units += [{b.key: 0} for b in blocks if b.key not in clustered]

    def summary(unit: dict[Hashable, int]) -> Block:
        members = [by_key[k] for k in unit]
        extent = max(unit[b.key] + b.nbytes for b in members) - min(unit.values())
        key = members[0].key if len(members) == 1 else ("cluster", min(str(k) for k in unit))
        return Block(key, extent, min(b.first for b in members), max(b.last for b in members))

    offsets: dict[Hashable, int] = {}
    placed = _LiveIndex(blocks)
    promoted = {key: rank for rank, key in enumerate(first)}

    def unit_order(unit):
        rank = min((promoted[k] for k in unit if k in promoted), default=len(promoted))
        return (rank, ORDERS[order](summary(unit)))

    for unit in sorted(units, key=unit_order):
        if len(unit) == 1:
            (key,) = unit
            block = by_key[key]
            busy = sorted((offsets[other.key], offsets[other.key] + other.nbytes)
                          for other in placed.overlapping(block) if other.nbytes)
            gaps, offset = [], 0
            for start, end in busy:
                if offset + block.nbytes <= start:
                    gaps.append((start - offset, offset))
                offset = max(offset, _align(end, alignment))
            offsets[key] = (min(gaps)[1] if best_fit else gaps[0][1]) if gaps else offset
            placed.add(block)
            continue
        base_min = -min(unit.values())  # every member at a non-negative offset
        members = [(by_key[k], rel) for k, rel in unit.items()]
        conflicts = [(block, rel, other) for block, rel in members for other in placed.overlapping(block)
                     if other.nbytes and block.nbytes]
        candidates = {base_min} | {max(base_min, _align(offsets[o.key] + o.nbytes - rel, alignment))
                                   for _, rel, o in conflicts}
        for base in sorted(candidates):
            if all(base + rel + b.nbytes <= offsets[o.key] or offsets[o.key] + o.nbytes <= base + rel
                   for b, rel, o in conflicts):
                break
        for block, rel in members:
            offsets[block.key] = base + rel
            placed.add(block)
    return offsets


def best_placement(blocks: Sequence[Block], alignment: int = ALIGNMENT,
                   clusters: Sequence[dict[Hashable, int]] = (), rounds: int = 8) -> dict[Hashable, int]:
    """The placement, over every order and fit rule, whose buffer ends lowest; then, a few rounds, the block
    that ends highest is placed before the others (greedy placement regrets its early choices)."""
    def end_of(offsets):
        return max((offsets[b.key] + b.nbytes for b in blocks), default=0)

    best, best_end, best_rule = {}, None, ("largest first", False)
    for order in ORDERS:
        for best_fit in (False, True):
            offsets = place_blocks(blocks, alignment, order, best_fit, clusters)
            if best_end is None or end_of(offsets) < best_end:
                best, best_end, best_rule = offsets, end_of(offsets), (order, best_fit)
    first: list[Hashable] = []
    offsets = best
    for _ in range(rounds if blocks else 0):
        top = max(blocks, key=lambda b: (offsets[b.key] + b.nbytes, str(b.key)))
        if top.key in first:
            break
        first.append(top.key)
        offsets = place_blocks(blocks, alignment, *best_rule, clusters, first)
        if end_of(offsets) < best_end:
            best, best_end = offsets, end_of(offsets)
    return best


def build_clusters(blocks: dict[Hashable, Block], overlaps: list[tuple[Hashable, Hashable, int]],
                   alignment: int = ALIGNMENT) -> list[dict[Hashable, int]]:
    """Clusters of blocks at fixed relative offsets from (output block, input block, max offset) overlaps: the
    output may start at most `max offset` bytes after the input's start (negative: before it). An overlap is
    dropped when it would make two other members that live together share bytes."""
    cluster_of: dict[Hashable, dict[Hashable, int]] = {}
    allowed: set[frozenset] = set()
    for out_key, in_key, max_offset in overlaps:
        out_block, in_block = blocks[out_key], blocks[in_key]
        delta = min(0, max_offset // alignment * alignment)
        if delta + out_block.nbytes <= 0 or delta >= in_block.nbytes:
            continue  # no bytes would be shared: nothing to gain
        first = cluster_of.get(in_key, {in_key: 0})
        second = cluster_of.get(out_key, {out_key: 0})
        if first is second:
            continue
        shift = first[in_key] + delta - second[out_key]
        merged = {**first, **{k: rel + shift for k, rel in second.items()}}
        pairs = allowed | {frozenset((out_key, in_key))}
        keys = list(merged)
        clash = any(blocks[a].overlaps(blocks[b]) and frozenset((a, b)) not in pairs and
                    merged[a] < merged[b] + blocks[b].nbytes and merged[b] < merged[a] + blocks[a].nbytes
                    for i, a in enumerate(keys) for b in keys[i + 1:])
        if clash:
            continue
        allowed = pairs
        for key in merged:
            cluster_of[key] = merged
    unique = {id(c): c for c in cluster_of.values()}
    return list(unique.values())


def variable_tensors(model: TfliteModel) -> list[int]:
    """The variable (state) tensors some operator reads, in index order."""
    used = {i for op in model.operators for i in op.inputs if i != -1}
    return [t.index for t in model.tensors if t.is_variable and t.index in used]


@dataclass
class MemoryPlan:
    activation_bytes: int  # size of the one buffer, scratch included
    peak_op: int  # first op at which the live blocks reach the end of the buffer
    lower_bound_bytes: int  # most bytes live at once (no plan can use less without computing in place)
    offsets: dict[int, int]  # tensor index -> byte offset (views share their source's offset)
    scratch: dict[int, tuple[int, int]] = field(default_factory=dict)  # op index -> (offset, bytes)
    blocks: list[Block] = field(default_factory=list)


def _ends_and_live(blocks: Sequence[Block], placed: dict[Hashable, int], op_count: int) -> tuple[list[int], list[int]]:
    """Per op: where the highest live block ends, and the bytes live. One sweep over the ops with a heap of the
    live blocks (n log n), not a scan of every block at every op."""
    starting: list[list[Block]] = [[] for _ in range(op_count)]
    change = [0] * (op_count + 1)
    for block in blocks:
        start = max(block.first, 0)
        if start <= block.last and start < op_count:
            starting[start].append(block)
            change[start] += block.nbytes
            change[min(block.last, op_count - 1) + 1] -= block.nbytes
    ends, live, heap, running = [], [], [], 0
    for op in range(op_count):
        for block in starting[op]:
            heapq.heappush(heap, (-(placed[block.key] + block.nbytes), block.last))
        while heap and heap[0][1] < op:
            heapq.heappop(heap)
        ends.append(-heap[0][0] if heap else 0)
        running += change[op]
        live.append(running)
    return ends, live


def plan_memory(model: TfliteModel, views: dict[int, int] | None = None,
                scratch_bytes: dict[int, int] | None = None, alignment: int = ALIGNMENT,
                overlaps: dict[int, tuple[int, int]] | None = None) -> MemoryPlan:
    """Plan the activation buffer of `model`.

    views: output tensor -> the input tensor it aliases; scratch_bytes: op index -> bytes it needs while it runs;
    overlaps: output tensor -> (input tensor, max offset): the op may write its output starting at most
    `max offset` bytes after the start of that input (which dies at the op)."""
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
    # State persists across invokes: live before the first op and after the last, overlapping every other block.
    final_op = max(len(model.operators) - 1, 0)
    variables = variable_tensors(model)
    blocks += [Block(t, model.tensors[t].nbytes, -1, final_op) for t in variables]
    blocks += [Block(("scratch", op), size, op, op) for op, size in sorted((scratch_bytes or {}).items()) if size]
    clusters = build_clusters({b.key: b for b in blocks},
                              [(root(out), root(inp), limit) for out, (inp, limit) in sorted((overlaps or {}).items())
                               if root(out) != root(inp)], alignment)
    placed = best_placement(blocks, alignment, clusters)

    total = max((placed[b.key] + b.nbytes for b in blocks), default=0)
    total = _align(total, alignment) if total else 0
    ends, live = _ends_and_live(blocks, placed, max(len(model.operators), 1))
    peak_op = ends.index(max(ends)) if ends else -1
    offsets = {lt.tensor: placed[root(lt.tensor)] for lt in lifetimes}
    offsets.update({t: placed[t] for t in variables})
    scratch = {b.key[1]: (placed[b.key], b.nbytes) for b in blocks if isinstance(b.key, tuple)}
    return MemoryPlan(total, peak_op, max(live, default=0), offsets, scratch, blocks)


def free_ranges(plan: MemoryPlan, op: int, alignment: int = ALIGNMENT) -> list[tuple[int, int]]:
    """(offset, bytes) of the buffer's ranges that no block live at op `op` uses, aligned, largest first."""
    used = []
    for block in plan.blocks:
        if block.first <= op <= block.last:
            start = plan.scratch[block.key[1]][0] if isinstance(block.key, tuple) else plan.offsets[block.key]
            used.append((start, start + block.nbytes))
    ranges, cursor = [], 0
    for start, end in sorted(used) + [(plan.activation_bytes, plan.activation_bytes)]:
        begin = _align(cursor, alignment)
        if start > begin:
            ranges.append((begin, start - begin))
        cursor = max(cursor, end)
    return sorted(ranges, key=lambda r: (-r[1], r[0]))


def place_optional_scratch(plan: MemoryPlan, requests: dict[int, int]) -> dict[int, int]:
    """Give each op's optional scratch (op -> bytes) the smallest free range of the plan that holds it (scratch
    lives only while its op runs, so this never grows the buffer). Returns op -> offset for the ops placed."""
    placed = {}
    for op, size in sorted(requests.items()):
        fitting = [r for r in free_ranges(plan, op) if r[1] >= size]
        if size and fitting:
            offset = min(fitting, key=lambda r: (r[1], r[0]))[0]
            plan.scratch[op] = (offset, size)
            plan.blocks.append(Block(("scratch", op), size, op, op))
            placed[op] = offset
    return placed
