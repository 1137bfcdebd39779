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
    profiles_ops = True
    bit_exact = True  # the kernels follow TFLM's reference arithmetic (tests/test_engine_conformance.py)

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
            native = native_plan(model, options.fast_kernels, options.profile)
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
                 f"{row['scratch_bytes']:,}" if row["scratch_bytes"] else "-"] for row in steps]
        peak = next((i for i, row in enumerate(steps) if row["op_index"] == native.peak_op), None)
        return PlanReport(
            lines=[f"native engine plan: one activation buffer of [bold]{native.activation_bytes:,} B[/] "
                   f"(scratch included; lower bound {native.lower_bound_bytes:,} B, peak at op {native.peak_op}); "
                   f"constants in flash {native.flash_bytes:,} B"],
            title="native memory plan (offsets in the activation buffer)",
            columns=["#", "op", "kernel", "variant", "output tensor", "offset", "bytes", "placement", "scratch"],
            rows=rows, peak_row=peak,
            json={"activation_bytes": native.activation_bytes, "native_flash_bytes": native.flash_bytes,
                  "native_peak_op": native.peak_op,
                  "native_offsets": {str(k): v for k, v in sorted(native.offsets.items())},
                  "native_steps": steps})
