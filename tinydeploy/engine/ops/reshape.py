"""RESHAPE: a pure view; its output shares the input's memory in the plan, no code runs."""

from __future__ import annotations

from tinydeploy.engine.registry import LoweringContext, lowering, same

VIEW_DTYPES = ("int8", "int16", "int32", "uint8", "float32")


@lowering("RESHAPE", dtypes=same(*VIEW_DTYPES))
def lower_reshape(ctx: LoweringContext):
    source = ctx.input(0, VIEW_DTYPES, constant=False)
    result = ctx.output(0, (source.dtype,))
    if source.elements != result.elements:
        raise ctx.fail(f"reshapes {source.elements} values into {result.elements}")
    return ctx.lowered(None, view_of=source.index)
