"""Emit the native engine's C source for a model: lower every op, plan memory, render templates/native/."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinydeploy.engine.csafe import c_comment, c_string
from tinydeploy.engine.planner import MemoryPlan, plan_memory
from tinydeploy.engine.registry import LoweredModel, ScratchRef, TensorRef, lower_model
from tinydeploy.fsutil import atomic_write_text
from tinydeploy.model.tflite import TfliteModel
from tinydeploy.paths import firmware_dir, templates_dir

MODEL_SOURCE = "td_model_native.c"
VALUES_PER_LINE = 24


@dataclass
class NativePlan:
    model_source: Path  # the generated C file
    activation_bytes: int  # the static activation buffer, scratch included
    peak_op: int
    lower_bound_bytes: int  # most activation bytes live at once
    flash_bytes: int  # weights, biases, multipliers, shifts
    offsets: dict[int, int]  # tensor index -> offset in the buffer
    scratch: dict[int, tuple[int, int]]  # op index -> (offset, bytes)
    kernel_sources: list[Path] = field(default_factory=list)  # firmware/engine files the project must copy
    ops: list[str] = field(default_factory=list)


def engine_dir() -> Path:
    return firmware_dir() / "engine"


def kernel_files(kernels: list[str]) -> list[Path]:
    root = engine_dir()
    files = sorted(root.glob("td_*.h"))  # helpers shared by all kernels (fixed point, window geometry)
    for kernel in kernels:
        files += [root / f"{kernel}.c", root / f"{kernel}.h"]
    return files


def _array_body(values: np.ndarray) -> str:
    text = [str(int(v)) for v in values.tolist()] if values.dtype.kind in "iub" else [repr(float(v)) for v in values]
    lines = (", ".join(text[i:i + VALUES_PER_LINE]) for i in range(0, len(text), VALUES_PER_LINE))
    return ",\n".join("    " + line for line in lines)


def _render_call(lowered, plan: MemoryPlan) -> str:
    def arg(item) -> str:
        if isinstance(item, TensorRef):
            return f"TD_AT({item.ctype}, {plan.offsets[item.tensor]}u)"
        if isinstance(item, ScratchRef):
            return f"TD_AT({item.ctype}, {plan.scratch[lowered.op_index][0]}u)"
        return str(item)

    return f"{lowered.function}({', '.join(arg(a) for a in lowered.args)});"


def render_model_source(model: TfliteModel, lowered: LoweredModel, plan: MemoryPlan) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir() / "native")),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                             keep_trailing_newline=True, autoescape=False)
    env.filters["c_comment"] = c_comment
    env.filters["c_string"] = c_string
    tensors = model.tensors
    (input_index,), (output_index,) = model.inputs, model.outputs
    offset_lines = [f"t{t} @ {offset}: {tensors[t].name} ({tensors[t].nbytes} B)"
                    for t, offset in sorted(plan.offsets.items(), key=lambda item: (item[1], item[0]))]
    offset_lines += [f"op {op} scratch @ {offset}: {size} B" for op, (offset, size) in sorted(plan.scratch.items())]
    calls = []
    for item in lowered.ops:
        op = model.operators[item.op_index]
        out_name = tensors[op.outputs[0]].name if op.outputs else ""
        label = item.op_name if item.function else f"{item.op_name} (a view of tensor {item.view_of}, no code)"
        calls.append({"index": item.op_index, "op": label, "output": out_name,
                      "code": _render_call(item, plan) if item.function else ""})
    arrays = [{"name": a.name, "ctype": a.ctype, "count": int(a.values.size), "comment": a.comment,
               "body": _array_body(a.values)} for a in lowered.constants.arrays]
    return env.get_template("model.c.j2").render(
        model_name=model.name, sha256=model.sha256, activation_bytes=plan.activation_bytes, peak_op=plan.peak_op,
        lower_bound_bytes=plan.lower_bound_bytes, flash_bytes=lowered.constants.flash_bytes,
        kernels=lowered.kernels, offset_lines=offset_lines, arrays=arrays, structs=lowered.constants.structs,
        calls=calls, input_offset=plan.offsets[input_index], input_bytes=tensors[input_index].nbytes,
        output_offset=plan.offsets[output_index], output_bytes=tensors[output_index].nbytes)


def plan_native(model: TfliteModel) -> tuple[LoweredModel, MemoryPlan]:
    lowered = lower_model(model)
    views = {model.operators[op.op_index].outputs[0]: op.view_of for op in lowered.ops if op.view_of is not None}
    scratch = {op.op_index: op.scratch_bytes for op in lowered.ops if op.scratch_bytes}
    return lowered, plan_memory(model, views, scratch)


def emit_native_sources(model: TfliteModel, out_dir: Path) -> NativePlan:
    """Write the model's native-engine C source into out_dir and return its plan.

    Raises TinydeployError (before writing anything) when the model has an op the engine lacks."""
    lowered, plan = plan_native(model)
    source = render_model_source(model, lowered, plan)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MODEL_SOURCE
    atomic_write_text(path, source)
    return NativePlan(path, plan.activation_bytes, plan.peak_op, plan.lower_bound_bytes,
                      lowered.constants.flash_bytes, plan.offsets, plan.scratch, kernel_files(lowered.kernels),
                      [op.op for op in model.operators])
