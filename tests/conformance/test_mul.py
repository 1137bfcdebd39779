"""MUL of two computed tensors and of a tensor and a broadcast constant."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, binary_op_model, check_case

draw = CaseDrawer("mul")
for _ in range(4):
    draw.add("MulBranch", ["MUL"], shape=draw.image())
for _ in range(5):
    draw.add("MulConstant", ["MUL"], shape=draw.image(), broadcast=draw.choice(["channel", "row", "scalar"]))
draw.add("MulBranch", ["MUL"], int16=True, shape=draw.image())  # int16
draw.add("MulConstant", ["MUL"], int16=True, shape=draw.image(), broadcast="channel")
CASES = draw.cases


def build(case):
    return binary_op_model(case, "Multiply", "multiply")


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_mul_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)
