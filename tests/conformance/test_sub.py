"""SUB of two inputs (two-input models), of a computed branch, and of a broadcast constant; int8 and int16."""

from __future__ import annotations

import pytest

from conformance.harness import CaseDrawer, binary_op_model, check_case

draw = CaseDrawer("sub")
for int16 in (False, False, True):
    draw.add("SubInputs", ["SUB"], int16=int16, shape=draw.image(), activation=draw.choice([None, "relu"]))
for int16 in (False, True):
    draw.add("SubBranch", ["SUB"], int16=int16, shape=draw.image(), activation=None)
draw.add("SubConstant", ["SUB"], shape=draw.image(), broadcast=draw.choice(["channel", "row", "scalar"]))
CASES = draw.cases


def build(case):
    return binary_op_model(case, "Subtract", "subtract", branch_first=True)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.label)
def test_sub_matches_tflm(case, tmp_path):
    check_case(case, build, tmp_path)
