"""The native engine's plan for a model: lower every op, plan memory, render templates/native/ (text, through the
one Jinja environment). `native_plan` writes nothing; `emit_native_sources` writes the C file (host tests)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tinydeploy.analysis.memory import tensor_lifetimes
from tinydeploy.engine.planner import MemoryPlan, free_ranges, place_optional_scratch, plan_memory, variable_tensors
from tinydeploy.engine.registry import LoweredModel, RefList, ScratchRef, TensorRef, lower_model, refuse_unsupported
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
    pruning: object | None = None  # tinydeploy.engine.prune.Pruning: channels the fast build does not compute
    model_source: Path | None = None  # where emit_native_sources wrote `source`
    kernel_stack_bytes: int = 0  # the deepest kernel call's stack, its scratch taken on the stack included
    kernel_choice: dict | None = None  # the fit-aware choice when the fast kernels do not fit (engines/native.py)
    call_args: list[int] = field(default_factory=list)  # per op that runs code: its call's argument count


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
    """One row per op for `tinydeploy analyze --engine native`: op, kernel, output offset and bytes, scratch, and
    what pruning removed there."""
    rows = []
    for s in plan.steps:
        pruned = plan.pruning.for_op(s.op_index) if plan.pruning is not None else None
        rows.append({"op_index": s.op_index, "op": s.op, "kernel": s.kernel or "(view)", "function": s.function,
                     "output_tensor": s.output_tensor, "output_offset": s.output_offset,
                     "output_bytes": s.output_bytes, "scratch_offset": s.scratch[0] if s.scratch else None,
                     "scratch_bytes": s.scratch[1] if s.scratch else 0, "placement": s.placement,
                     "variant": s.variant,
                     "pruned": pruned.to_json() if pruned is not None else None})
    return rows


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
    the headers those include (an int16 or fast variant reuses its reference sibling's parameter structs)."""
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


def _render_call(lowered, plan: MemoryPlan, pointer_arrays: list[dict]) -> str:
    """The op's C call; a RefList becomes a static const array of addresses appended to `pointer_arrays`: a compound
    literal would live on td_engine_invoke's stack, all of them at once, which the stack estimate does not count."""
    def arg(item) -> str:
        if isinstance(item, TensorRef):
            return f"TD_AT({item.ctype}, {plan.offsets[item.tensor]}u)"
        if isinstance(item, ScratchRef):
            if item.optional and lowered.op_index not in plan.scratch:
                return "NULL"  # the kernel takes it on its own stack
            return f"TD_AT({item.ctype}, {plan.scratch[lowered.op_index][0]}u)"
        if isinstance(item, RefList):
            name = f"td_op{lowered.op_index}_pointers{len(pointer_arrays)}"
            pointer_arrays.append({"name": name, "pointee": item.ctype if item.writable else f"const {item.ctype}",
                                   "items": [arg(i) for i in item.items], "op": lowered.op_index})
            return name
        return str(item)

    return f"{lowered.function}({', '.join(arg(a) for a in lowered.args)});"


def render_model_source(model: TfliteModel, lowered: LoweredModel, plan: MemoryPlan, profile: bool = False) -> str:
    from tinydeploy.emit.render import render

    tensors = model.tensors
    offset_lines = [f"t{t} @ {offset}: {tensors[t].name} ({tensors[t].nbytes} B)"
                    for t, offset in sorted(plan.offsets.items(), key=lambda item: (item[1], item[0]))]
    offset_lines += [f"op {op} scratch @ {offset}: {size} B" for op, (offset, size) in sorted(plan.scratch.items())]
    calls, pointer_arrays = [], []
    for item in lowered.ops:
        op = model.operators[item.op_index]
        out_name = tensors[op.outputs[0]].name if op.outputs else ""
        label = item.op_name if item.function else f"{item.op_name} (a view of tensor {item.view_of}, no code)"
        calls.append({"index": item.op_index, "op": label, "output": out_name,
                      "code": _render_call(item, plan, pointer_arrays) if item.function else ""})
    state_resets = [{"offset": plan.offsets[t], "bytes": tensors[t].nbytes, "value": _reset_byte(tensors[t]),
                     "name": tensors[t].name} for t in variable_tensors(model)]
    arrays = [{"name": a.name, "ctype": a.ctype, "count": int(a.values.size), "comment": a.comment,
               "body": _array_body(a.values)} for a in lowered.constants.arrays]
    return render("native/model.c.j2",
        model_name=model.name, sha256=model.sha256, activation_bytes=plan.activation_bytes, peak_op=plan.peak_op,
        lower_bound_bytes=plan.lower_bound_bytes, flash_bytes=constants_flash_bytes(model, lowered),
        kernels=lowered.kernels, offset_lines=offset_lines, arrays=arrays, structs=lowered.constants.structs,
        pointer_arrays=pointer_arrays, calls=calls, state_resets=state_resets,
        inputs=[_io_entry(model, plan, t) for t in model.inputs],
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


class _Aliases:
    """Tensors sharing memory (views, in-place outputs) grouped by the tensor that owns it, with the last op that
    uses any of the group and whether the group holds a model output: `dies_at` in O(1) and `alias` in near O(1),
    where recomputing every lifetime per question made planning quadratic in the graph."""

    def __init__(self, model: TfliteModel, views: dict[int, int]):
        self.model = model
        self.views = dict(views)
        self.last: dict[int, int] = {}
        self.holds_output: dict[int, bool] = {}
        for lifetime in tensor_lifetimes(model):
            group = self.root(lifetime.tensor)
            self.last[group] = max(self.last.get(group, lifetime.last), lifetime.last)
        for tensor in model.outputs:
            self.holds_output[self.root(tensor)] = True

    def root(self, tensor: int) -> int:
        path = []
        while tensor in self.views:
            path.append(tensor)
            tensor = self.views[tensor]
        for step in path[:-1]:  # path compression: later walks are short
            self.views[step] = tensor
        return tensor

    def dies_at(self, tensor: int, op_index: int) -> bool:
        """True when no tensor sharing `tensor`'s memory is used after op `op_index` (nor is a model output, nor
        state kept for the next invoke)."""
        if self.model.tensors[tensor].is_variable:
            return False
        group = self.root(tensor)
        return self.last.get(group, -1) <= op_index and not self.holds_output.get(group, False)

    def alias(self, output: int, source: int) -> None:
        """`output` from now on shares `source`'s memory."""
        group, target = self.root(output), self.root(source)
        if group == target:
            return
        self.views[group] = target
        self.last[target] = max(self.last.get(target, -1), self.last.pop(group, -1))
        self.holds_output[target] = self.holds_output.get(target, False) or self.holds_output.pop(group, False)


def _producers(model: TfliteModel) -> dict[int, int]:
    return {tensor: op.index for op in model.operators for tensor in op.outputs}


def _with_in_place(model: TfliteModel, views: dict[int, int], pairs: list[tuple[int, int]],
                   producers: dict[int, int] | None = None) -> dict[int, int]:
    producers = producers if producers is not None else _producers(model)
    merged = dict(views)
    aliases = _Aliases(model, views)
    for output, source in pairs:
        if output not in merged and aliases.dies_at(source, producers[output]):
            merged[output] = source
            aliases.alias(output, source)
    return merged


def _streaming_overlaps(model: TfliteModel, lowered: LoweredModel, views: dict[int, int]) -> dict[int, tuple[int, int]]:
    """Window kernels whose input dies at the op: output tensor -> (input, max offset of the output's start)."""
    overlaps = {}
    aliases = _Aliases(model, views)
    for op in lowered.ops:
        if op.streams_over is None:
            continue
        source, limit = op.streams_over
        if source not in model.outputs and aliases.dies_at(source, op.op_index):
            overlaps[model.operators[op.op_index].outputs[0]] = (source, limit)
    return overlaps


# Beyond this many candidates (in-place outputs, streamed outputs) the one-at-a-time searches, which plan the
# whole buffer once per candidate, are skipped: all of them at once and none are still compared. No model of the
# test corpora comes near; a generated graph of thousands of ops would otherwise take hours.
MAX_GREEDY_CANDIDATES = 200


def plan_native(model: TfliteModel, fast_kernels: bool = True,
                reference_ops: frozenset[int] = frozenset()) -> tuple[LoweredModel, MemoryPlan]:
    """Lower and plan. Elementwise kernels compute in place and window kernels stream their output over the input
    they consume, wherever that makes the buffer smaller (several combinations are planned, the smallest wins).
    Fast kernels' optional scratch then goes where the plan is free at their op, never growing the buffer: the
    ops are lowered again knowing that room (a kernel takes what does not fit on its own stack)."""
    refuse_unsupported(model)  # before pruning: the refusal names the model as the user wrote it
    pruning = None
    if fast_kernels:  # the reference build runs the graph as written: the oracle
        from tinydeploy.engine.prune import prune_channels

        model, pruning = prune_channels(model)
    lowered, best = _plan_lowered(model, lower_model(model, fast_kernels, checked=True, reference_ops=reference_ops))
    requests = {op.op_index: op.scratch_request for op in lowered.ops if op.scratch_request}
    if requests:
        limits = {op: max((size for _, size in free_ranges(best, op)), default=0) for op in requests}
        relowered = lower_model(model, fast_kernels, limits, checked=True, reference_ops=reference_ops)
        if [(op.view_of, op.in_place_of, op.streams_over, op.scratch_bytes) for op in relowered.ops] != \
                [(op.view_of, op.in_place_of, op.streams_over, op.scratch_bytes) for op in lowered.ops]:
            raise AssertionError("lowering with scratch limits changed the memory behaviour of an op")
        lowered = relowered
        place_optional_scratch(best, {op.op_index: op.scratch_request for op in lowered.ops if op.scratch_request})
    lowered.pruning = pruning
    return lowered, best


def _plan_lowered(model: TfliteModel, lowered: LoweredModel) -> tuple[LoweredModel, MemoryPlan]:
    views = {model.operators[op.op_index].outputs[0]: op.view_of for op in lowered.ops if op.view_of is not None}
    scratch = {op.op_index: op.scratch_bytes for op in lowered.ops if op.scratch_bytes}
    plain = plan_memory(model, views, scratch)
    trials = [views]
    candidates = _in_place_candidates(model, lowered)
    producers = _producers(model)
    if candidates:
        trials.append(_with_in_place(model, views, candidates, producers))  # all at once, then one at a time
        greedy = dict(views)
        for pair in candidates if len(candidates) <= MAX_GREEDY_CANDIDATES else ():
            trial = _with_in_place(model, greedy, [pair], producers)
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
        if len(candidates) > MAX_GREEDY_CANDIDATES:
            continue
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


def native_plan(model: TfliteModel, fast_kernels: bool = True, reference_ops: frozenset[int] = frozenset(),
                profile: bool = False) -> NativePlan:
    """The complete plan, its C source rendered (fast_kernels=False: reference kernels only, the oracle the fast
    ones are tested against; reference_ops: ops that get their reference kernel in a fast build; profile: each op
    timed, td_engine_profile_*). Writes nothing; raises TinydeployError when the model has an op the engine lacks."""
    lowered, plan = plan_native(model, fast_kernels, reference_ops)
    model = lowered.model  # pruned (fast kernels): the tensors as the kernels see them
    return NativePlan(render_model_source(model, lowered, plan, profile), plan.activation_bytes, plan.peak_op,
                      plan.lower_bound_bytes, constants_flash_bytes(model, lowered), plan.offsets, plan.scratch,
                      kernel_files(lowered.kernels), [op.op for op in model.operators], _steps(model, lowered, plan),
                      pruning=lowered.pruning, kernel_stack_bytes=_kernel_stack_bytes(lowered, plan),
                      call_args=[len(op.args) for op in lowered.ops if op.function])


def constants_flash_bytes(model: TfliteModel, lowered: LoweredModel) -> int:
    """Everything const the model source puts in flash: the arrays and parameter structs, the input and output
    tables (offset and size, 8 B per tensor) and the address arrays of calls that take lists of tensors (4 B each)."""
    pointers = sum(len(arg.items) for op in lowered.ops if op.function for arg in op.args if isinstance(arg, RefList))
    return lowered.constants.flash_bytes + 8 * (len(model.inputs) + len(model.outputs)) + 4 * pointers


def _kernel_stack_bytes(lowered: LoweredModel, plan: MemoryPlan) -> int:
    """The most stack one kernel call takes: its frames (measured, tinydeploy.engine.kernel_costs) plus the
    optional scratch the plan had no room for, which the kernel then takes on its stack."""
    from tinydeploy.engine.kernel_costs import kernel_stack_bytes

    return max((kernel_stack_bytes(op.kernel, op.scratch_request if op.op_index not in plan.scratch else 0)
                for op in lowered.ops if op.function and op.kernel), default=0)


def emit_native_sources(model: TfliteModel, out_dir: Path, fast_kernels: bool = True) -> NativePlan:
    """native_plan, with its C source written into out_dir (for compiling it on the host)."""
    plan = native_plan(model, fast_kernels)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plan.model_source = out_dir / MODEL_SOURCE
    atomic_write_text(plan.model_source, plan.source)
    return plan
