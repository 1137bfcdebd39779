"""Generation-time quantization arithmetic of the native engine and the C-safety of user text."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinydeploy.emit.cstrings import c_comment
from tinydeploy.emit.cstrings import c_string_literal as c_string
from tinydeploy.engine.quant import activation_range, quantize_multiplier, round_half_away
from tinydeploy.errors import TinydeployError


@pytest.mark.parametrize("real, expected", [
    (0.5, (1 << 30, 0)),
    (1.0, (1 << 30, 1)),
    (0.25, (1 << 30, -1)),
    (0.75, (3 << 29, 0)),
    (0.0, (0, 0)),
    (2.0 ** -40, (0, 0)),  # below 2^-32: flushed to zero like TFLite
    (1.0 - 2.0 ** -40, (1 << 30, 1)),  # the mantissa rounds up to 2^31: renormalized
])
def test_quantize_multiplier_known_values(real, expected):
    assert quantize_multiplier(real) == expected


@given(st.floats(min_value=2.0 ** -30, max_value=2.0 ** 20, allow_nan=False))
def test_quantize_multiplier_represents_the_real_value(real):
    multiplier, shift = quantize_multiplier(real)
    assert (1 << 30) <= multiplier < (1 << 31)
    assert math.isclose(multiplier * 2.0 ** (shift - 31), real, rel_tol=2.0 ** -30)


def test_quantize_multiplier_refuses_negative_and_nan():
    for bad in (-0.5, float("nan"), float("inf")):
        with pytest.raises(TinydeployError):
            quantize_multiplier(bad)


def test_round_half_away_from_zero_unlike_python_round():
    assert [round_half_away(v) for v in (0.5, 1.5, 2.5, -0.5, -2.5, 2.4999)] == [1, 2, 3, -1, -3, 2]


def test_activation_ranges():
    assert activation_range("NONE", 0.1, 5) == (-128, 127)
    assert activation_range("RELU", 0.1, -128) == (-128, 127)
    assert activation_range("RELU", 0.1, 3) == (3, 127)
    assert activation_range("RELU6", 0.05, -128) == (-128, -8)  # 6 / 0.05 = 120
    assert activation_range("RELU6", 0.01, 0) == (0, 127)  # 600 saturates
    assert activation_range("RELU_N1_TO_1", 0.25, 10) == (6, 14)
    with pytest.raises(TinydeployError, match="TANH"):
        activation_range("TANH", 0.1, 0)


@given(st.text())
def test_c_comment_text_cannot_end_a_comment_or_line(text):
    clean = c_comment(text)
    assert "*/" not in clean and "/*" not in clean and "\\" not in clean
    assert all(32 <= ord(ch) < 127 for ch in clean)


@given(st.text())
def test_c_string_literal_is_plain_ascii_and_round_trips(text):
    literal = c_string(text)
    assert all(32 <= ord(ch) < 127 for ch in literal) and "??" not in literal  # no trigraphs
    body = literal[1:-1]
    decoded = bytearray()
    i = 0
    while i < len(body):  # decode exactly the escapes c_string writes
        if body[i] == "\\" and body[i + 1] in '"\\?':
            decoded.append(ord(body[i + 1]))
            i += 2
        elif body[i] == "\\":
            decoded.append(int(body[i + 1:i + 4], 8))
            i += 4
        else:
            decoded.append(ord(body[i]))
            i += 1
    assert decoded.decode("utf-8") == text
