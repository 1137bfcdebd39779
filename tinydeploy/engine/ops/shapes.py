"""Shape helpers for the shape-generic kernels: shapes padded to td_shape.h's TD_MAX_DIMS, strides, broadcasting."""

from __future__ import annotations

from math import prod

MAX_DIMS = 6  # TD_MAX_DIMS in firmware/engine/td_shape.h


def padded(shape, fill: int = 1) -> list[int]:
    """A shape extended in front to MAX_DIMS dimensions (a scalar is [1, ..., 1])."""
    shape = [int(d) for d in shape]
    if len(shape) > MAX_DIMS:
        raise ValueError(f"{len(shape)} dimensions (at most {MAX_DIMS})")
    return [fill] * (MAX_DIMS - len(shape)) + shape


def strides(dims: list[int]) -> list[int]:
    """Row-major element strides."""
    out, step = [], 1
    for dim in reversed(dims):
        out.append(step)
        step *= dim
    return out[::-1]


def broadcast_strides(input_shape, output_shape) -> list[int] | None:
    """Strides that read `input_shape` at every index of `output_shape` (0 along broadcast dimensions);
    None when the input does not broadcast to the output."""
    source, target = padded(input_shape), padded(output_shape)
    result = []
    for dim, out, stride in zip(source, target, strides(source)):
        if dim == out:
            result.append(stride if dim > 1 else 0)
        elif dim == 1:
            result.append(0)
        else:
            return None
    return result


def elements(shape) -> int:
    return int(prod(int(d) for d in shape))
