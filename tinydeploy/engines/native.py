"""The native engine (tinydeploy.engine): the model compiled to kernel calls over one planned activation buffer."""

from __future__ import annotations

from tinydeploy.analysis.fit import Budget, flash_budget, ram_budget
from tinydeploy.boards import Board, get_board
from tinydeploy.engines.base import Engine, EngineFiles, EngineOptions, EnginePlan, PlanReport
from tinydeploy.errors import TinydeployError
from tinydeploy.model.tflite import TfliteModel


def _ANY_BOARD() -> Board:
    return get_board("virtual")  # a native plan does not depend on the board


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
        """Fast kernels where the board has room for them: when the fast build does not fit, whole kernel families
        go back to their reference kernels, fewest MACs first (the fast code of a family is shared by its layers,
        so a family is the unit that frees flash), until it fits; if nothing fits, the fast plan stays and its
        kernel_choice says what the reference kernels would need."""
        from tinydeploy.engine import native_plan

        try:
            native = native_plan(model, options.fast_kernels, profile=options.profile)
        except TinydeployError:
            self.check(model)  # every reason and what works, rather than the first lowering's complaint
            raise
        # the layout is a tinydeploy.engine.NativePlan: offsets, steps, kernels and the rendered C source
        plan = EnginePlan(self.name, model, board, native.activation_bytes, native.flash_bytes, native)
        if options.fast_kernels and not all(b.fits for b in self.plan_budgets(plan)):
            plan = self._fit_aware(plan, options.profile)
        return plan

    def _fit_aware(self, fast: EnginePlan, profile: bool) -> EnginePlan:
        from tinydeploy.analysis.compute import op_costs
        from tinydeploy.engine import describe_plan, native_plan

        model, board = fast.model, fast.board
        macs = {cost.index: cost.macs or 0 for cost in op_costs(model)}
        families: dict[str, list[int]] = {}
        for row in describe_plan(fast.layout):
            if row["kernel"] and row["kernel"].endswith("_fast"):
                families.setdefault(row["kernel"], []).append(row["op_index"])
        flash, ram = self.plan_budgets(fast)
        over = f"{', '.join(f'{b.name} {b.overshoot:,} B' for b in (flash, ram) if not b.fits)} over"
        reference_ops: set[int] = set()
        for family in sorted(families, key=lambda f: (sum(macs.get(i, 0) for i in families[f]), f)):
            reference_ops |= set(families[family])
            native = native_plan(model, True, frozenset(reference_ops), profile)
            plan = EnginePlan(self.name, model, board, native.activation_bytes, native.flash_bytes, native)
            flash_after, ram_after = self.plan_budgets(plan)
            if flash_after.fits and ram_after.fits:
                native.kernel_choice = {
                    "fits": True, "reference_ops": sorted(reference_ops),
                    "note": f"the fast kernels do not fit {board.name} ({over}): reference kernels for "
                            f"{len(reference_ops)} of {len(model.operators)} ops ({', '.join(sorted(families))[:200]} "
                            f"families, fewest MACs first) make it fit: flash {flash_after.used:,} B, "
                            f"RAM {ram_after.used:,} B"}
                return plan
            if len(reference_ops) == sum(len(ops) for ops in families.values()):
                break
        reference = native_plan(model, False)
        plan = EnginePlan(self.name, model, board, reference.activation_bytes, reference.flash_bytes, reference)
        flash_ref, ram_ref = self.plan_budgets(plan)
        fits = flash_ref.fits and ram_ref.fits
        fast.layout.kernel_choice = {
            "fits": False, "reference_fits": fits, "reference_flash_bytes": flash_ref.used,
            "reference_ram_bytes": ram_ref.used,
            "note": (f"the fast kernels do not fit {board.name} ({over}); --kernels reference needs flash "
                     f"{flash_ref.used:,} B of {flash_ref.available:,} B and RAM {ram_ref.used:,} B of "
                     f"{ram_ref.available:,} B" + (" (fits)" if fits else " (does not fit either)"))}
        return fast

    def fit_suggestions(self, plan: EnginePlan) -> list[str]:
        choice = plan.layout.kernel_choice
        return [choice["note"]] if choice and not choice["fits"] else []

    def describe(self, plan: EnginePlan) -> list[str]:
        choice = plan.layout.kernel_choice
        return [choice["note"]] if choice else []

    def analysis_plan(self, model: TfliteModel, board: Board, options: EngineOptions = EngineOptions()) -> EnginePlan:
        self.check(model)
        return self.plan(model, board, options)

    def code_bytes(self, model: TfliteModel) -> int:
        return self.plan_code_bytes(self.plan(model, _ANY_BOARD()))

    @staticmethod
    def plan_code_bytes(plan: EnginePlan) -> int:
        """The kernels the plan calls (measured per kernel source) and the runtime, an estimate on the safe side."""
        from tinydeploy.engine.kernel_costs import native_code_bytes

        return native_code_bytes(plan.layout.kernel_sources, plan.layout.call_args)

    @staticmethod
    def stack_bytes(plan: EnginePlan) -> int:
        """Estimated stack peak: the runtime's frames (protocol, model glue) and the deepest kernel call with the
        scratch it takes on its stack."""
        from tinydeploy.engine.kernel_costs import runtime_stack_bytes

        return runtime_stack_bytes(plan.layout.call_args) + plan.layout.kernel_stack_bytes

    def budgets(self, board, model, ram_bytes, constants_bytes=None):
        # without a plan the constants are about the weights
        return self.plan_budgets(self.plan(model, board))

    def plan_budgets(self, plan: EnginePlan) -> tuple[Budget, Budget]:
        board, model = plan.board, plan.model
        flash = flash_budget(board, model, self.plan_code_bytes(plan), self.code_label,
                             ("weights and quantization constants", plan.constants_bytes))
        return flash, ram_budget(board, plan.ram_bytes, self.ram_label, self.stack_bytes(plan))

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
        # The largest live set bounds a plan only when nothing is computed in place: in-place ops go below it.
        live = (f"largest live set {native.lower_bound_bytes:,} B"
                + (", less by computing in place" if native.activation_bytes < native.lower_bound_bytes else ""))
        lines = [f"native engine plan: one activation buffer of [bold]{native.activation_bytes:,} B[/] "
                 f"(scratch included; filled to its end at op {native.peak_op}; {live}); "
                 f"constants in flash {native.flash_bytes:,} B"]
        if native.kernel_choice:
            lines.append(native.kernel_choice["note"])
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
            json={"activation_bytes": native.activation_bytes, "stack_estimate_bytes": self.stack_bytes(plan),
                  "native_code_estimate_bytes": self.plan_code_bytes(plan), "native_flash_bytes": native.flash_bytes,
                  "native_peak_op": native.peak_op,
                  "native_offsets": {str(k): v for k, v in sorted(native.offsets.items())},
                  "native_steps": steps,
                  "native_pruning": pruning.to_json() if pruning is not None else None,
                  "native_kernel_choice": native.kernel_choice})


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
