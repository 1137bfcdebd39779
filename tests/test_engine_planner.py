"""The native engine's static memory planner."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tinydeploy.engine.planner import Block, place_blocks


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
