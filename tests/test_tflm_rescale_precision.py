"""The TFLM engine's check for LEAKY_RELU and SUB ops the pinned library computes differently from current TFLM
(single- versus double-precision rescale ratios): the refusal names an input whose output host TFLM gives as the
check says, and models without such an input pass. No TFLM library needed: the check reads the model."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import REPO

SEANET = REPO.parent / "shared" / "models" / "tflm-examples" / "seanet"
# The models whose outputs on the virtual board (pinned library) differed from host TFLM's in the whole-model sweep
# (TINYDEPLOY_SWEEP=all, one random sample each)
DIFFERED_ON_DEVICE = ("leaky_relu/leaky_relu1.tflite", "leaky_relu/leaky_relu19.tflite",
                      "leaky_relu/leaky_relu20.tflite", "leaky_relu/leaky_relu21.tflite", "sub/sub1.tflite")
# Input and output scales equal: the identity ratio is exactly 1 and alpha's rounds alike in both precisions
EQUAL_SCALES = ("leaky_relu/leaky_relu0.tflite", "leaky_relu/leaky_relu9.tflite", "leaky_relu/leaky_relu22.tflite")


def _model(name: str):
    from tinydeploy.model.tflite import load_tflite

    path = SEANET / name
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared/models is not beside the checkout)")
    return load_tflite(path)


def _host_output(model, values: tuple[int, ...]) -> np.ndarray:
    """Host TFLM's output for input tensors filled with `values` (one per input tensor)."""
    from tinydeploy.golden import tflm_sample_outputs

    sample = [np.full(model.tensors[i].shape, value, dtype=model.tensors[i].dtype).tobytes()
              for i, value in zip(model.inputs, values)]
    output = model.tensors[model.outputs[0]]
    return np.frombuffer(tflm_sample_outputs(model, [sample])[0][0], dtype=output.dtype)


@pytest.mark.parametrize("name", DIFFERED_ON_DEVICE)
def test_models_that_differed_on_the_device_are_refused_with_an_input_host_tflm_confirms(name):
    from tinydeploy.engines import get_engine
    from tinydeploy.tflm.rescale_precision import rescale_differences

    model = _model(name)
    differences = rescale_differences(model)
    assert [d.op for d in differences] == [model.operators[0].op]
    found = differences[0]
    assert abs(found.pinned - found.current) == 1
    # the check's "current TFLM" arithmetic is the oracle's: host TFLM gives that output for that input
    assert set(_host_output(model, found.inputs).tolist()) == {found.current}
    problems = "; ".join(get_engine("tflm").problems(model))
    assert f"int16 {found.op} op 0: the pinned TFLM library" in problems, problems
    assert "single precision" in problems and found.example(name_op=False) in problems


@pytest.mark.parametrize("name", EQUAL_SCALES)
def test_leaky_relu_with_equal_scales_passes(name):
    from tinydeploy.engines import get_engine

    model = _model(name)
    assert get_engine("tflm").problems(model) == []


def test_refusal_names_native_as_the_way_that_works():
    from tinydeploy.engines.support import require_engine
    from tinydeploy.errors import TinydeployError

    model = _model("sub/sub1.tflite")
    with pytest.raises(TinydeployError) as refused:
        require_engine(model, "tflm")
    line = refused.value.one_line()
    assert "SUB op 0" in line and "--engine native" in line, line
    require_engine(model, "native")  # and native takes it


def test_multiply_matches_tflm_rounding_on_edge_values():
    """MultiplyByQuantizedMultiplier: the doubling high multiply rounds ties up (its nudge for a negative product is
    1 - 2^30), the shift rounds them away from zero."""
    from tinydeploy.tflm.rescale_precision import _multiply

    x = np.array([3, -3, 5, -5, 1 << 20, -(1 << 20), -(1 << 31)], dtype=np.int64)
    # multiplier 2^30 with shift -1 is x / 4 rounded twice: 5 -> 2.5 -> 3 -> 1.5 -> 2, but -5 -> -2.5 -> -2 -> -1
    assert _multiply(x, 1 << 30, -1).tolist() == [1, -1, 2, -1, 1 << 18, -(1 << 18), -(1 << 29)]
    # the one saturating case: INT32_MIN * INT32_MIN
    assert _multiply(np.array([-(1 << 31)], dtype=np.int64), -(1 << 31), 0).tolist() == [(1 << 31) - 1]
