"""The native engine (tinydeploy.engine): the model compiled to kernel calls over one planned activation buffer."""

from __future__ import annotations

from tinydeploy.analysis.fit import native_code_bytes
from tinydeploy.boards import Board
from tinydeploy.engines.base import Engine, EngineFiles, EngineOptions, EnginePlan, PlanReport
from tinydeploy.errors import TinydeployError
from tinydeploy.model.tflite import TfliteModel


class NativeEngine(Engine):
    name = "native"
    code_label = "native kernels + protocol"
    ram_label = "native activation buffer (incl. scratch)"
    chooses_kernels = True

    def blockers(self, model: TfliteModel) -> list[str]:
        from tinydeploy.engine import unsupported_ops

        return unsupported_ops(model)

    def problems(self, model: TfliteModel) -> list[str]:
        from tinydeploy.engine.registry import native_problems

        return native_problems(model)

    def plan(self, model: TfliteModel, board: Board, options: EngineOptions = EngineOptions(), measure=None,
             progress=None) -> EnginePlan:
        from tinydeploy.engine import native_plan

        try:
            native = native_plan(model, options.fast_kernels)
        except TinydeployError:
            self.check(model)  # every reason and what works, rather than the first lowering's complaint
            raise
        # the layout is a tinydeploy.engine.NativePlan: offsets, steps, kernels and the rendered C source
        return EnginePlan(self.name, model, board, native.activation_bytes, native.flash_bytes, native)

    def analysis_plan(self, model: TfliteModel, board: Board) -> EnginePlan:
        self.check(model)
        return self.plan(model, board)

    def code_bytes(self, model: TfliteModel) -> int:
        return native_code_bytes(model.op_names)

    def budgets(self, board, model, ram_bytes, constants_bytes=None):
        # without a plan the constants are about the weights
        return super().budgets(board, model, ram_bytes,
                               model.weights_bytes if constants_bytes is None else constants_bytes)

    def files(self, plan: EnginePlan) -> EngineFiles:
        from tinydeploy.engine.codegen import MODEL_SOURCE

        return EngineFiles({f"src/{MODEL_SOURCE}": plan.layout.source.encode()}, list(plan.layout.kernel_sources))

    def report(self, plan: EnginePlan) -> PlanReport:
        from tinydeploy.engine import describe_plan

        native = plan.layout
        steps = describe_plan(native)
        rows = [[str(row["op_index"]), row["op"], row["kernel"], row["variant"], str(row["output_tensor"]),
                 f"{row['output_offset']:,}", f"{row['output_bytes']:,}", row["placement"],
                 f"{row['scratch_bytes']:,}" if row["scratch_bytes"] else "-", _pruned_cell(row["pruned"])]
                for row in steps]
        peak = next((i for i, row in enumerate(steps) if row["op_index"] == native.peak_op), None)
        lines = [f"native engine plan: one activation buffer of [bold]{native.activation_bytes:,} B[/] "
                 f"(scratch included; lower bound {native.lower_bound_bytes:,} B, peak at op {native.peak_op}); "
                 f"constants in flash {native.flash_bytes:,} B"]
        pruning = native.pruning
        if pruning is not None and pruning.ops:
            lines.append(f"exact graph optimization: {pruning.channels_removed:,} output channels of convolutions "
                         f"and dense layers never needed, removed: {pruning.macs_removed:,} MACs and "
                         f"{pruning.bytes_removed:,} B of weights and parameters less (see 'pruned')")
        return PlanReport(
            lines=lines,
            title="native memory plan (offsets in the activation buffer)",
            columns=["#", "op", "kernel", "variant", "output tensor", "offset", "bytes", "placement", "scratch",
                     "pruned"],
            rows=rows, peak_row=peak,
            json={"activation_bytes": native.activation_bytes, "native_flash_bytes": native.flash_bytes,
                  "native_peak_op": native.peak_op,
                  "native_offsets": {str(k): v for k, v in sorted(native.offsets.items())},
                  "native_steps": steps,
                  "native_pruning": pruning.to_json() if pruning is not None else None})


def _pruned_cell(pruned: dict | None) -> str:
    """What pruning removed at one op, short: output and input channels, MACs, bytes."""
    if not pruned:
        return "-"

    def short(value: int) -> str:
        return f"{value / 1e6:.2f}M" if value >= 1e6 else (f"{value / 1e3:.1f}k" if value >= 1e3 else str(value))

    parts = []
    if pruned["output_channels_removed"]:
        parts.append(f"-{pruned['output_channels_removed']} out")
    if pruned["input_channels_removed"]:
        folded = f" ({pruned['input_channels_folded']} folded)" if pruned["input_channels_folded"] else ""
        parts.append(f"-{pruned['input_channels_removed']} in{folded}")
    if pruned["macs_removed"]:
        parts.append(f"-{short(pruned['macs_removed'])} MAC")
    if pruned["bytes_removed"]:
        parts.append(f"-{short(pruned['bytes_removed'])} B")
    return " ".join(parts)
