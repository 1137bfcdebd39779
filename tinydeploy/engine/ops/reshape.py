"""RESHAPE, SQUEEZE and EXPAND_DIMS: pure views; the output shares the input's memory in the plan, no code runs."""

from __future__ import annotations

from tinydeploy.engine.registry import LoweringContext, lowering, same

VIEW_DTYPES = ("int8", "int16", "int32", "uint8", "float32")


def _view(ctx: LoweringContext):
    source = ctx.input(0, VIEW_DTYPES, constant=False)
    result = ctx.output(0, (source.dtype,))
    if source.elements != result.elements:
        raise ctx.fail(f"reshapes {source.elements} values into {result.elements}")
    return ctx.lowered(None, view_of=source.index)


@lowering("RESHAPE", dtypes=same(*VIEW_DTYPES))
def lower_reshape(ctx: LoweringContext):
    return _view(ctx)


@lowering("SQUEEZE", dtypes=same(*VIEW_DTYPES))
def lower_squeeze(ctx: LoweringContext):
    return _view(ctx)


@lowering("EXPAND_DIMS", dtypes=same(*VIEW_DTYPES))
def lower_expand_dims(ctx: LoweringContext):
    return _view(ctx)
