"""ADD of two computed tensors (a residual branch, optionally followed by a fused RELU) and of a tensor and a
constant broadcast along channels, rows or as a scalar."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, binary_op_model, check_case

draw = CaseDrawer("add")
for _ in range(6):
    draw.add("AddBranch", ["ADD"], shape=draw.image(), activation=draw.choice([None, "relu"]))
for _ in range(5):
    draw.add("AddConstant", ["ADD"], shape=draw.image(), broadcast=draw.choice(["channel", "row", "scalar"]))
for _ in range(2):  # int16
    draw.add("AddBranch", ["ADD"], int16=True, shape=draw.image(), activation=draw.choice([None, "relu"]))
draw.add("AddConstant", ["ADD"], int16=True, shape=draw.image(), broadcast=draw.choice(["channel", "row"]))
CASES = draw.cases


def build(case):
    return binary_op_model(case, "Add", "add")


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_add_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)
