"""ADD and MUL of two int8 tensors (either may be a constant), NumPy broadcasting, fused activation."""

from __future__ import annotations

from tinydeploy.engine.ops.shapes import MAX_DIMS, broadcast_strides, padded
from tinydeploy.engine.quant import activation_range, quantize_multiplier
from tinydeploy.engine.registry import LoweringContext, ScratchRef, c_struct, lowering

ADD_LEFT_SHIFT = 20  # headroom of the int8 ADD's common scale


def _operands(ctx: LoweringContext):
    first, second = ctx.input(0), ctx.input(1)
    result = ctx.output(0)
    if max(len(first.shape), len(second.shape), len(result.shape)) > MAX_DIMS:
        raise ctx.fail(f"more than {MAX_DIMS} dimensions")
    shapes = []
    for tensor in (first, second):
        tensor_strides = broadcast_strides(tensor.shape, result.shape)
        if tensor_strides is None:
            raise ctx.fail(f"input shape {list(tensor.shape)} does not broadcast to {list(result.shape)}")
        shapes.append(tensor_strides)
    if first.is_constant and second.is_constant:
        raise ctx.fail("both inputs are constant")
    shape = c_struct([("dims", padded(result.shape)), ("strides1", shapes[0]), ("strides2", shapes[1])])
    # The output may overwrite an input of its own shape that dies here (each element is read first).
    in_place = next((t.index for t in (first, second) if not t.is_constant and t.shape == result.shape), None)
    return first, second, result, shape, in_place


def _operand_arg(ctx: LoweringContext, tensor):
    return ctx.constants.tensor(tensor, "int8_t") if tensor.is_constant else ctx.ref(tensor)


@lowering("ADD", kernel="elementwise")
def lower_add(ctx: LoweringContext):
    first, second, result, shape, in_place = _operands(ctx)
    scale1, scale2, scale_out = (float(ctx.scale(t)) for t in (first, second, result))
    twice_max = 2.0 * max(scale1, scale2)
    multiplier1, shift1 = quantize_multiplier(scale1 / twice_max)
    multiplier2, shift2 = quantize_multiplier(scale2 / twice_max)
    multiplier_out, shift_out = quantize_multiplier(twice_max / ((1 << ADD_LEFT_SHIFT) * scale_out))
    low, high = activation_range(ctx.op.activation, scale_out, ctx.zero_point(result))
    if ctx.fast_kernels and first.shape == second.shape == result.shape and \
            ADD_FAST_SCRATCH_BYTES <= ctx.scratch_limit:
        return _lower_add_fast(ctx, first, second, result, in_place, (multiplier1, shift1),
                               (multiplier2, shift2), (multiplier_out, shift_out), (low, high))
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_add_params", [
        ("shape", shape), ("input1_offset", -ctx.zero_point(first)), ("input2_offset", -ctx.zero_point(second)),
        ("left_shift", ADD_LEFT_SHIFT), ("input1_multiplier", multiplier1), ("input1_shift", shift1),
        ("input2_multiplier", multiplier2), ("input2_shift", shift2), ("output_multiplier", multiplier_out),
        ("output_shift", shift_out), ("output_offset", ctx.zero_point(result)), ("activation_min", low),
        ("activation_max", high),
    ], f"op {ctx.op.index}: ADD {ctx.op.activation}")
    return ctx.lowered("td_add_s8", (params, _operand_arg(ctx, first), _operand_arg(ctx, second), ctx.ref(result)),
                       in_place_of=in_place)


ADD_FAST_SCRATCH_BYTES = 2048  # TD_ADD_FAST_SCRATCH_BYTES


def _lower_add_fast(ctx: LoweringContext, first, second, result, in_place, rescale1, rescale2, rescale_out,
                    clamp):
    """elementwise_fast.c: same-shape inputs, each input's rescaling tabulated per call."""
    from tinydeploy.engine.ops.common import ChannelRequant, folding_proven, requantize

    offsets = (-ctx.zero_point(first), -ctx.zero_point(second))
    # The widest sum of the two rescaled inputs, from every value each can take (what the tables will hold).
    widest = sum(max(abs(requantize((v + offset) << ADD_LEFT_SHIFT, *rescale)) for v in range(-128, 128))
                 for offset, rescale in zip(offsets, (rescale1, rescale2)))
    multiplier, shift = rescale_out
    output = ChannelRequant(0, multiplier, max(shift, 0) + 1, max(-shift, 0))
    # folding_proven bounds |bias| + widest_input * sum|w|: here the bias stands for the widest sum.
    folded = folding_proven([ChannelRequant(widest, multiplier, output.up, output.right)], [0], 0,
                            ctx.zero_point(result), clamp)
    index = ctx.op.index
    params = ctx.constants.struct(f"op{index}_params", "td_add_fast_params", [
        ("count", result.elements), ("input1_offset", offsets[0]), ("input2_offset", offsets[1]),
        ("left_shift", ADD_LEFT_SHIFT), ("input1_multiplier", rescale1[0]), ("input1_shift", rescale1[1]),
        ("input2_multiplier", rescale2[0]), ("input2_shift", rescale2[1]),
        ("quant", c_struct([("input_offset", 0), ("output_offset", ctx.zero_point(result)),
                            ("activation_min", clamp[0]), ("activation_max", clamp[1]),
                            ("folded", int(folded))])),
        ("output_shifts", output.shifts_word()), ("output_multiplier", multiplier),
        ("output_round", output.round(ctx.zero_point(result))),
    ], f"op {index}: ADD {ctx.op.activation}, fast")
    return ctx.lowered("td_add_fast_s8", (params, _operand_arg(ctx, first), _operand_arg(ctx, second),
                                          ScratchRef(optional=True), ctx.ref(result)),
                       in_place_of=in_place, kernel="elementwise_fast",
                       variant="tabulated inputs" + ("" if folded else ", exact requantization in C"),
                       scratch_request=ADD_FAST_SCRATCH_BYTES)


@lowering("MUL", kernel="elementwise")
def lower_mul(ctx: LoweringContext):
    first, second, result, shape, in_place = _operands(ctx)
    multiplier, shift = quantize_multiplier(float(ctx.scale(first)) * float(ctx.scale(second))
                                            / float(ctx.scale(result)))
    low, high = activation_range(ctx.op.activation, ctx.scale(result), ctx.zero_point(result))
    params = ctx.constants.struct(f"op{ctx.op.index}_params", "td_mul_params", [
        ("shape", shape), ("input1_offset", -ctx.zero_point(first)), ("input2_offset", -ctx.zero_point(second)),
        ("output_multiplier", multiplier), ("output_shift", shift), ("output_offset", ctx.zero_point(result)),
        ("activation_min", low), ("activation_max", high),
    ], f"op {ctx.op.index}: MUL {ctx.op.activation}")
    return ctx.lowered("td_mul_s8", (params, _operand_arg(ctx, first), _operand_arg(ctx, second), ctx.ref(result)),
                       in_place_of=in_place)
