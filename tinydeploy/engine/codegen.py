"""The native engine's plan for a model: lower every op, plan memory, render templates/native/ (text, through the
one Jinja environment). `native_plan` writes nothing; `emit_native_sources` writes the C file (host tests)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinydeploy.analysis.memory import tensor_lifetimes
from tinydeploy.engine.planner import MemoryPlan, plan_memory, variable_tensors
from tinydeploy.engine.registry import LoweredModel, RefList, ScratchRef, TensorRef, lower_model
from tinydeploy.fsutil import atomic_write_text
from tinydeploy.model.tflite import TfliteModel
from tinydeploy.paths import firmware_dir

MODEL_SOURCE = "td_model_native.c"
VALUES_PER_LINE = 24


@dataclass
class NativePlan:
    source: str  # the generated C file's text (td_model_native.c)
    activation_bytes: int  # the static activation buffer, scratch included
    peak_op: int
    lower_bound_bytes: int  # most activation bytes live at once
    flash_bytes: int  # constants: weights, biases, multipliers, shifts, parameter structs
    offsets: dict[int, int]  # tensor index -> offset in the buffer
    scratch: dict[int, tuple[int, int]]  # op index -> (offset, bytes)
    kernel_sources: list[Path] = field(default_factory=list)  # firmware/engine files the project must copy
    ops: list[str] = field(default_factory=list)
    steps: list["PlanStep"] = field(default_factory=list)  # per op: what runs and where its output lives
    model_source: Path | None = None  # where emit_native_sources wrote `source`


@dataclass(frozen=True)
class PlanStep:
    op_index: int
    op: str
    kernel: str | None  # the firmware/engine family, None for a view
    function: str | None  # the C function called, None for a view
    output_tensor: int
    output_offset: int
    output_bytes: int
    scratch: tuple[int, int] | None  # (offset, bytes) of its scratch memory
    placement: str  # "own" (memory no live tensor uses), "view" (aliases its input, no code), "in place" (over
    # its input) or "overlaps input" (a window kernel writing behind its reads over the input it consumes)
    variant: str = "reference"  # the implementation chosen for this layer (reference or a fast variant)


def describe_plan(plan: NativePlan) -> list[dict]:
    """One row per op for `tinydeploy analyze --engine native`: op, kernel, output offset and bytes, scratch."""
    return [{"op_index": s.op_index, "op": s.op, "kernel": s.kernel or "(view)", "function": s.function,
             "output_tensor": s.output_tensor, "output_offset": s.output_offset, "output_bytes": s.output_bytes,
             "scratch_offset": s.scratch[0] if s.scratch else None,
             "scratch_bytes": s.scratch[1] if s.scratch else 0, "placement": s.placement,
             "variant": s.variant} for s in plan.steps]


def _share_bytes(model: TfliteModel, plan: MemoryPlan, a: int, b: int) -> bool:
    a_start, b_start = plan.offsets[a], plan.offsets[b]
    return a_start < b_start + model.tensors[b].nbytes and b_start < a_start + model.tensors[a].nbytes


def _steps(model: TfliteModel, lowered: LoweredModel, plan: MemoryPlan) -> list[PlanStep]:
    steps = []
    for item in lowered.ops:
        output = model.operators[item.op_index].outputs[0]
        if item.view_of is not None:
            placement = "view"
        elif item.in_place_of is not None and plan.offsets.get(output) == plan.offsets.get(item.in_place_of):
            placement = "in place"
        elif item.streams_over is not None and _share_bytes(model, plan, output, item.streams_over[0]):
            placement = "overlaps input"
        else:
            placement = "own"
        steps.append(PlanStep(item.op_index, item.op_name, item.kernel, item.function, output,
                              plan.offsets[output], model.tensors[output].nbytes, plan.scratch.get(item.op_index),
                              placement, item.variant))
    return steps


def engine_dir() -> Path:
    return firmware_dir() / "engine"


_LOCAL_INCLUDE = re.compile(r'^\s*#\s*include\s+"([A-Za-z0-9_]+\.h)"', re.MULTILINE)


def kernel_files(kernels: list[str]) -> list[Path]:
    """The firmware/engine files a model's kernels need: the shared td_*.h helpers, each kernel's .c and .h, and
    the headers those include (an int16 variant reuses its int8 sibling's parameter structs)."""
    root = engine_dir()
    files = sorted(root.glob("td_*.h"))  # helpers shared by all kernels (fixed point, window geometry)
    for kernel in kernels:
        files += [root / f"{kernel}.c", root / f"{kernel}.h"]
    pending = list(files)
    while pending:
        for name in _LOCAL_INCLUDE.findall(pending.pop().read_text(encoding="utf-8")):
            header = root / name
            if header.is_file() and header not in files:
                files.append(header)
                pending.append(header)
    return files


def _c_integer(value: int) -> str:
    return "INT64_MIN" if value == -(1 << 63) else str(value)  # -9223372036854775808 is not a C literal


def _array_body(values: np.ndarray) -> str:
    text = ([_c_integer(int(v)) for v in values.tolist()] if values.dtype.kind in "iub"
            else [repr(float(v)) for v in values])
    lines = (", ".join(text[i:i + VALUES_PER_LINE]) for i in range(0, len(text), VALUES_PER_LINE))
    return ",\n".join("    " + line for line in lines)


def _render_call(lowered, plan: MemoryPlan) -> str:
    def arg(item) -> str:
        if isinstance(item, TensorRef):
            return f"TD_AT({item.ctype}, {plan.offsets[item.tensor]}u)"
        if isinstance(item, ScratchRef):
            return f"TD_AT({item.ctype}, {plan.scratch[lowered.op_index][0]}u)"
        if isinstance(item, RefList):
            pointee = item.ctype if item.writable else f"const {item.ctype}"
            return f"({pointee} *const[]){{{', '.join(arg(i) for i in item.items)}}}"
        return str(item)

    return f"{lowered.function}({', '.join(arg(a) for a in lowered.args)});"


def render_model_source(model: TfliteModel, lowered: LoweredModel, plan: MemoryPlan, profile: bool = False) -> str:
    from tinydeploy.emit.render import render

    tensors = model.tensors
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
    state_resets = [{"offset": plan.offsets[t], "bytes": tensors[t].nbytes, "value": _reset_byte(tensors[t]),
                     "name": tensors[t].name} for t in variable_tensors(model)]
    arrays = [{"name": a.name, "ctype": a.ctype, "count": int(a.values.size), "comment": a.comment,
               "body": _array_body(a.values)} for a in lowered.constants.arrays]
    return render("native/model.c.j2",
        model_name=model.name, sha256=model.sha256, activation_bytes=plan.activation_bytes, peak_op=plan.peak_op,
        lower_bound_bytes=plan.lower_bound_bytes, flash_bytes=lowered.constants.flash_bytes,
        kernels=lowered.kernels, offset_lines=offset_lines, arrays=arrays, structs=lowered.constants.structs,
        calls=calls, state_resets=state_resets, inputs=[_io_entry(model, plan, t) for t in model.inputs],
        outputs=[_io_entry(model, plan, t) for t in model.outputs], profile=profile)


def _io_entry(model: TfliteModel, plan: MemoryPlan, tensor: int) -> dict:
    return {"tensor": tensor, "name": model.tensors[tensor].name, "dtype": model.tensors[tensor].dtype,
            "shape": list(model.tensors[tensor].shape), "offset": plan.offsets[tensor],
            "bytes": model.tensors[tensor].nbytes}


def _reset_byte(tensor) -> int:
    """The byte a state tensor is filled with at init, as TFLM resets variable tensors: the zero point of an int8
    tensor, 0 for every other type."""
    if tensor.dtype == "int8" and tensor.quant is not None and tensor.quant.zero_points:
        return tensor.quant.zero_points[0] & 0xFF
    return 0


def _in_place_candidates(model: TfliteModel, lowered: LoweredModel) -> list[tuple[int, int]]:
    """(output, input) pairs where an op's kernel may write its output over an input."""
    return [(model.operators[op.op_index].outputs[0], op.in_place_of) for op in lowered.ops
            if op.in_place_of is not None and op.in_place_of not in model.outputs]


def _dies_at(model: TfliteModel, views: dict[int, int], tensor: int, op_index: int) -> bool:
    """True when no tensor sharing `tensor`'s memory is used after op `op_index` (nor is a model output, nor
    state kept for the next invoke)."""
    if model.tensors[tensor].is_variable:
        return False

    def root(t: int) -> int:
        while t in views:
            t = views[t]
        return t

    group = root(tensor)
    return all(lt.last <= op_index for lt in tensor_lifetimes(model) if root(lt.tensor) == group) and \
        not any(root(t) == group for t in model.outputs)


def _with_in_place(model: TfliteModel, views: dict[int, int], pairs: list[tuple[int, int]]) -> dict[int, int]:
    merged = dict(views)
    for output, source in pairs:
        op_index = next(op.index for op in model.operators if output in op.outputs)
        if output not in merged and _dies_at(model, merged, source, op_index):
            merged[output] = source
    return merged


def _streaming_overlaps(model: TfliteModel, lowered: LoweredModel, views: dict[int, int]) -> dict[int, tuple[int, int]]:
    """Window kernels whose input dies at the op: output tensor -> (input, max offset of the output's start)."""
    overlaps = {}
    for op in lowered.ops:
        if op.streams_over is None:
            continue
        source, limit = op.streams_over
        if source not in model.outputs and _dies_at(model, views, source, op.op_index):
            overlaps[model.operators[op.op_index].outputs[0]] = (source, limit)
    return overlaps


def plan_native(model: TfliteModel, fast_kernels: bool = True) -> tuple[LoweredModel, MemoryPlan]:
    """Lower and plan. Elementwise kernels compute in place and window kernels stream their output over the input
    they consume, wherever that makes the buffer smaller (several combinations are planned, the smallest wins)."""
    lowered = lower_model(model, fast_kernels)
    views = {model.operators[op.op_index].outputs[0]: op.view_of for op in lowered.ops if op.view_of is not None}
    scratch = {op.op_index: op.scratch_bytes for op in lowered.ops if op.scratch_bytes}
    plain = plan_memory(model, views, scratch)
    trials = [views]
    candidates = _in_place_candidates(model, lowered)
    if candidates:
        trials.append(_with_in_place(model, views, candidates))  # all at once, then one at a time greedily
        greedy = dict(views)
        for pair in candidates:
            trial = _with_in_place(model, greedy, [pair])
            if plan_memory(model, trial, scratch).activation_bytes < \
                    plan_memory(model, greedy, scratch).activation_bytes:
                greedy = trial
        trials.append(greedy)
    best = plain
    for trial in trials:
        plain_trial = plan_memory(model, trial, scratch)
        if plain_trial.activation_bytes < best.activation_bytes:
            best = plain_trial
        # Overlaps chain ops into rigid clusters: all at once, then greedily one at a time (two passes: the peak
        # moves as overlaps are added).
        candidates = _streaming_overlaps(model, lowered, trial)
        if not candidates:
            continue
        every = plan_memory(model, trial, scratch, overlaps=candidates)
        if every.activation_bytes < best.activation_bytes:
            best = every
        for strict in (True, False):  # only shrinking, or also not growing (peaks often come in pairs)
            chosen: dict[int, tuple[int, int]] = {}
            plan = plain_trial
            for _ in range(2):
                for output, overlap in candidates.items():
                    if output in chosen:
                        continue
                    attempt = plan_memory(model, trial, scratch, overlaps={**chosen, output: overlap})
                    if attempt.activation_bytes < plan.activation_bytes or \
                            (not strict and attempt.activation_bytes == plan.activation_bytes):
                        chosen[output], plan = overlap, attempt
            if plan.activation_bytes < best.activation_bytes:
                best = plan
    best.lower_bound_bytes = plain.lower_bound_bytes  # the bound without computing in place
    return lowered, best


def native_plan(model: TfliteModel, fast_kernels: bool = True, profile: bool = False) -> NativePlan:
    """The complete plan, its C source rendered (fast_kernels=False: reference kernels only, the oracle the fast
    ones are tested against; profile: each op timed, td_engine_profile_*). Writes nothing; raises TinydeployError
    when the model has an op the engine lacks."""
    lowered, plan = plan_native(model, fast_kernels)
    return NativePlan(render_model_source(model, lowered, plan, profile), plan.activation_bytes, plan.peak_op,
                      plan.lower_bound_bytes, lowered.constants.flash_bytes, plan.offsets, plan.scratch,
                      kernel_files(lowered.kernels), [op.op for op in model.operators], _steps(model, lowered, plan))


def emit_native_sources(model: TfliteModel, out_dir: Path, fast_kernels: bool = True) -> NativePlan:
    """native_plan, with its C source written into out_dir (for compiling it on the host)."""
    plan = native_plan(model, fast_kernels)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan.model_source = out_dir / MODEL_SOURCE
    atomic_write_text(plan.model_source, plan.source)
    return plan
