"""Everything `tinydeploy analyze` reports about a model on a board, as one object."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from importlib import metadata

from tinydeploy import __version__, cache
from tinydeploy.analysis.arena import ArenaEntry, ArenaEstimate, measure_tflm_arena
from tinydeploy.analysis.compute import OpCost, op_costs, total_macs, unknown_mac_ops
from tinydeploy.analysis.fit import Verdict, suggestions
from tinydeploy.analysis.memory import ActivationProfile, activation_profile
from tinydeploy.model.classify import classification_refusal
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
    plan_report: object | None = None  # the engine's plan as it reports it (tinydeploy.engines.PlanReport)
    native_blockers: list[str] | None = None  # ops the native engine lacks
    plan: object | None = None  # the engine's plan (tinydeploy.engines.EnginePlan), when analyze reports one
    support: dict | None = None  # engine name -> tinydeploy.engines.support.EngineSupport (does it run, why not)

    @property
    def runs(self) -> bool:
        """Whether the analysed engine runs the model as it is (the figures of one that does not are what the model
        would need)."""
        support = (self.support or {}).get(self.engine)
        return support is None or support.runs

    @property
    def macs(self) -> int:
        """MACs of the ops whose arithmetic tinydeploy knows (unknown_mac_ops names the others)."""
        return total_macs(self.costs)

    @property
    def unknown_mac_ops(self) -> list[str]:
        return unknown_mac_ops(self.costs)

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
            "classification": self.model.classification.to_json(),
            "engines": {name: support.to_json() for name, support in (self.support or {}).items()},
            "ops": self.model.op_names,
            "op_counts": self.op_counts,
            "macs": self.macs,
            "macs_unknown_ops": self.unknown_mac_ops,
            "op_macs": [c.macs for c in self.costs],
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
            "runs": self.runs,
            "flash_overshoot_bytes": v.flash.overshoot,
            "ram_overshoot_bytes": v.ram.overshoot,
            "suggestions": v.suggestions,
            "native_supported": bool(self.support and self.support["native"].runs),
            "native_blocking_ops": self.native_blockers or [],
            **(self.plan_report.json if self.plan_report is not None else {}),
        }


def _arena_made_with(model: TfliteModel) -> dict[str, str]:
    try:
        tflm_version = metadata.version("tflite-micro")
    except metadata.PackageNotFoundError:
        tflm_version = "unknown"
    return {"model_sha256": model.sha256, "tflite-micro": tflm_version, "tinydeploy": __version__}


def _arena_cache_key(model: TfliteModel) -> str:
    made_with = _arena_made_with(model)
    return f"{model.sha256}-tflm{made_with['tflite-micro']}-td{__version__}"


def tflm_arena(model: TfliteModel, use_cache: bool = True) -> tuple[ArenaEstimate, bool]:
    """The measured arena, from the cache when this model was measured before (and the entry holds up)."""
    key, made_with = _arena_cache_key(model), _arena_made_with(model)
    if use_cache:
        entry = cache.load("arena", key, ArenaEntry, made_with)
        if entry is not None:
            estimate = ArenaEstimate(**entry.model_dump())
            if estimate.consistent_with(model):
                return estimate, True
    estimate = measure_tflm_arena(model)
    cache.store("arena", key, ArenaEntry(**estimate.to_dict()), made_with)
    return estimate, False


def analyze_model(model: TfliteModel, board: Board, engine, use_cache: bool = True,
                  native_blockers: list[str] | None = None, support: dict | None = None,
                  options=None) -> Analysis:
    """`engine` is a tinydeploy.engines.Engine (the caller picks it: analysis imports no engine); native_blockers,
    the ops the native engine lacks, and support, whether each engine runs the model, are reported whichever
    engine is analysed; options (tinydeploy.engines.EngineOptions) are the build's choices, as flash takes them."""
    if model.classification.kind == "npu":
        raise classification_refusal(model)  # its sizes belong to the NPU's command stream: nothing to analyze
    plan = engine.analysis_plan(model, board, options) if options is not None else \
        engine.analysis_plan(model, board)  # an engine that plans refuses here, before the arena measurement
    costs = op_costs(model)
    profile = activation_profile(model)
    arena, from_cache = tflm_arena(model, use_cache)
    if plan is not None:
        flash, ram = engine.plan_budgets(plan)
    else:
        flash, ram = engine.budgets(board, model, arena.recommended_bytes)
    tips = [] if flash.fits and ram.fits else \
        (engine.fit_suggestions(plan) if plan is not None else []) + \
        suggestions(model, flash, ram, arena.recommended_bytes, all_boards(), board)
    return Analysis(model, board, costs, profile, arena, Verdict(board, flash, ram, tips), from_cache, engine.name,
                    engine.report(plan) if plan is not None else None, native_blockers, plan, support)
