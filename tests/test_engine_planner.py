"""The native engine's static memory planner."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tinydeploy.engine.planner import Block, best_placement, build_clusters, place_blocks


@st.composite
def block_sets(draw):
    op_count = draw(st.integers(min_value=1, max_value=12))
    count = draw(st.integers(min_value=1, max_value=20))
    blocks = []
    for key in range(count):
        first = draw(st.integers(min_value=-1, max_value=op_count - 1))
        last = draw(st.integers(min_value=max(first, 0), max_value=op_count - 1))
        blocks.append(Block(key, draw(st.integers(min_value=0, max_value=3000)), first, last))
    return op_count, blocks


@settings(max_examples=300, deadline=None)
@given(block_sets(), st.sampled_from([1, 4, 16]))
def test_blocks_live_together_never_share_bytes(case, alignment):
    op_count, blocks = case
    offsets = place_blocks(blocks, alignment)
    assert set(offsets) == {b.key for b in blocks}
    for block in blocks:
        assert offsets[block.key] % alignment == 0
    for i, a in enumerate(blocks):
        for b in blocks[i + 1:]:
            if a.overlaps(b) and a.nbytes and b.nbytes:
                a_start, b_start = offsets[a.key], offsets[b.key]
                assert a_start + a.nbytes <= b_start or b_start + b.nbytes <= a_start, (a, b, offsets)
    # never worse than giving every block its own memory
    end = max(offsets[b.key] + b.nbytes for b in blocks)
    assert end <= sum(-(-b.nbytes // alignment) * alignment for b in blocks)


def test_disjoint_lifetimes_share_memory():
    blocks = [Block("a", 100, -1, 0), Block("b", 50, 0, 1), Block("c", 100, 1, 2)]
    offsets = place_blocks(blocks, 4)
    assert offsets["a"] == offsets["c"] == 0
    assert offsets["b"] == 100


@st.composite
def streaming_cases(draw):
    """Blocks plus (output, input, limit) overlaps between an input dying at an op and the output born there."""
    op_count, blocks = draw(block_sets())
    overlaps = []
    for out in blocks:
        for source in blocks:
            if source.first < out.first == source.last and draw(st.booleans()):
                overlaps.append((out.key, source.key, draw(st.integers(min_value=-3000, max_value=3000))))
    return blocks, overlaps


@settings(max_examples=300, deadline=None)
@given(streaming_cases(), st.sampled_from([1, 4]))
def test_streaming_overlaps_stay_within_their_limit(case, alignment):
    blocks, overlaps = case
    by_key = {b.key: b for b in blocks}
    clusters = build_clusters(by_key, overlaps, alignment)
    offsets = best_placement(blocks, alignment, clusters)
    limits = {(out, source): limit for out, source, limit in overlaps}
    for i, a in enumerate(blocks):
        assert offsets[a.key] >= 0 and offsets[a.key] % alignment == 0
        for b in blocks[i + 1:]:
            a_start, b_start = offsets[a.key], offsets[b.key]
            share = a_start < b_start + b.nbytes and b_start < a_start + a.nbytes and a.nbytes and b.nbytes
            if not (share and a.overlaps(b)):
                continue
            # Only an output over its dying input, starting no later than the limit allows.
            if (a.key, b.key) in limits:
                assert a_start - b_start <= limits[(a.key, b.key)], (a, b, offsets)
            else:
                assert (b.key, a.key) in limits, (a, b, offsets)
                assert b_start - a_start <= limits[(b.key, a.key)], (a, b, offsets)


def test_a_chain_streams_into_less_than_its_liveness_bound():
    # input 100 B -> op0 -> 100 B -> op1 -> 100 B; each output may start 10 B before its input.
    blocks = [Block("x", 100, -1, 0), Block("y", 100, 0, 1), Block("z", 100, 1, 1)]
    clusters = build_clusters({b.key: b for b in blocks}, [("y", "x", -10), ("z", "y", -10)], 1)
    offsets = best_placement(blocks, 1, clusters)
    assert max(offsets[b.key] + b.nbytes for b in blocks) == 120  # not 200


@st.composite
def pad_cases(draw):
    rank = draw(st.integers(min_value=1, max_value=4))
    shape = [draw(st.integers(min_value=1, max_value=5)) for _ in range(rank)]
    before = [draw(st.integers(min_value=0, max_value=3)) for _ in range(rank)]
    after = [draw(st.integers(min_value=0, max_value=3)) for _ in range(rank)]
    return shape, before, after, draw(st.sampled_from([1, 2]))


@settings(max_examples=200, deadline=None)
@given(pad_cases())
def test_pad_overlapping_its_input_by_the_limit_still_pads_right(case):
    """PAD's kernel order (each output element written after reading its source) run over one shared buffer with
    the output placed as far over the input as pad_overlap_limit allows gives numpy's pad."""
    import numpy as np

    from tinydeploy.engine.ops.pad import pad_overlap_limit

    shape, before, after, size = case
    values = np.arange(1, int(np.prod(shape)) + 1).reshape(shape)
    expected = np.pad(values, list(zip(before, after)))
    limit = pad_overlap_limit(shape, before, after, size)
    shift = min(limit, 1 << 20) // size  # output start minus input start, in elements
    input_at, output_at = max(-shift, 0), max(shift, 0)
    memory = [None] * (max(input_at + values.size, output_at + expected.size))
    memory[input_at:input_at + values.size] = values.reshape(-1).tolist()
    read = 0
    for k, index in enumerate(np.ndindex(*expected.shape)):
        inside = all(b <= i < b + n for i, b, n in zip(index, before, shape))
        value = memory[input_at + read] if inside else 0
        read += inside
        memory[output_at + k] = value
    assert memory[output_at:output_at + expected.size] == expected.reshape(-1).tolist()
