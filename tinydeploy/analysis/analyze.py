"""Everything `tinydeploy analyze` reports about a model on a board, as one object."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from importlib import metadata

from tinydeploy import __version__, cache
from tinydeploy.analysis.arena import ArenaEstimate, measure_tflm_arena
from tinydeploy.analysis.compute import OpCost, op_costs
from tinydeploy.analysis.fit import Verdict, engine_budgets, suggestions
from tinydeploy.analysis.memory import ActivationProfile, activation_profile
from tinydeploy.boards import Board, all_boards
from tinydeploy.model.tflite import TfliteModel


@dataclass
class Analysis:
    model: TfliteModel
    board: Board
    costs: list[OpCost]
    profile: ActivationProfile
    arena: ArenaEstimate
    verdict: Verdict
    arena_from_cache: bool
    engine: str = "tflm"
    native_plan: object | None = None  # tinydeploy.engine.NativePlan when the native engine can run the model
    native_blockers: list[str] | None = None  # ops the native engine lacks

    @property
    def macs(self) -> int:
        return sum(c.macs for c in self.costs)

    @property
    def params(self) -> int:
        return sum(c.params for c in self.costs)

    @property
    def op_counts(self) -> dict[str, int]:
        return dict(Counter(self.model.op_names))

    def to_json(self) -> dict:
        v = self.verdict
        return {
            "model": str(self.model.path) if self.model.path else None,
            "model_sha256": self.model.sha256,
            "board": self.board.name,
            "engine": self.engine,
            "ops": self.model.op_names,
            "op_counts": self.op_counts,
            "macs": self.macs,
            "params": self.params,
            "weights_bytes": self.model.weights_bytes,
            "model_bytes": self.model.size_bytes,
            "activation_peak_bytes": self.profile.peak_bytes,
            "activation_peak_op": self.profile.peak_op,
            "arena_bytes": self.arena.target_bytes,
            "arena_bytes_host": self.arena.host_bytes,
            "arena_margin_bytes": self.arena.kernel_margin_bytes,
            "arena_bytes_recommended": self.arena.recommended_bytes,
            "arena_measured": self.arena.measured,
            "arena_from_cache": self.arena_from_cache,
            "arena_note": self.arena.note,
            "flash_bytes": v.flash.used,
            "flash_available": v.flash.available,
            "ram_bytes": v.ram.used,
            "ram_available": v.ram.available,
            "flash_parts": [{"label": p.label, "bytes": p.nbytes} for p in v.flash.parts],
            "ram_parts": [{"label": p.label, "bytes": p.nbytes} for p in v.ram.parts],
            "activation_live_bytes": list(self.profile.live_bytes),
            "fits": v.fits,
            "flash_overshoot_bytes": v.flash.overshoot,
            "ram_overshoot_bytes": v.ram.overshoot,
            "suggestions": v.suggestions,
            "native_supported": not self.native_blockers,
            "native_blocking_ops": self.native_blockers or [],
            **({"activation_bytes": self.native_plan.activation_bytes,
                "native_flash_bytes": self.native_plan.flash_bytes,
                "native_peak_op": self.native_plan.peak_op,
                "native_offsets": {str(k): v for k, v in sorted(self.native_plan.offsets.items())},
                "native_steps": _describe_native_plan(self.native_plan),
                "native_pruning": (self.native_plan.pruning.to_json() if self.native_plan.pruning is not None
                                   else None),
                } if self.native_plan is not None else {}),
        }


def _describe_native_plan(plan) -> list[dict]:
    from tinydeploy.engine import describe_plan

    return describe_plan(plan)


def _arena_cache_key(model: TfliteModel) -> str:
    try:
        tflm_version = metadata.version("tflite-micro")
    except metadata.PackageNotFoundError:
        tflm_version = "unknown"
    return f"{model.sha256}-tflm{tflm_version}-td{__version__}"


def tflm_arena(model: TfliteModel, use_cache: bool = True) -> tuple[ArenaEstimate, bool]:
    """The measured arena, from the cache when this model was measured before."""
    key = _arena_cache_key(model)
    if use_cache and (hit := cache.load("arena", key)) is not None:
        try:
            return ArenaEstimate.from_dict(hit), True
        except TypeError:
            pass  # an entry from another layout: measure again
    estimate = measure_tflm_arena(model)
    cache.store("arena", key, estimate.to_dict())
    return estimate, False


def native_blockers(model: TfliteModel) -> list[str]:
    from tinydeploy.engine import supported_ops

    return sorted(set(model.op_names) - set(supported_ops()))


def analyze_model(model: TfliteModel, board: Board, use_cache: bool = True, engine: str = "tflm") -> Analysis:
    costs = op_costs(model)
    profile = activation_profile(model)
    arena, from_cache = tflm_arena(model, use_cache)
    blockers = native_blockers(model)
    plan = None
    if engine == "native":
        import tempfile
        from pathlib import Path

        from tinydeploy.engine import check_supported, emit_native_sources

        check_supported(model)
        with tempfile.TemporaryDirectory(prefix="tinydeploy-plan-") as scratch_dir:
            plan = emit_native_sources(model, Path(scratch_dir))
        flash, ram = engine_budgets(board, model, engine, plan.activation_bytes, plan.flash_bytes)
    else:
        flash, ram = engine_budgets(board, model, engine, arena.recommended_bytes)
    tips = [] if flash.fits and ram.fits else suggestions(model, flash, ram, arena.recommended_bytes,
                                                         all_boards(), board)
    return Analysis(model, board, costs, profile, arena, Verdict(board, flash, ram, tips), from_cache, engine, plan,
                    blockers)
