"""Which engine runs a model, and when one cannot, why and what works instead.

Two levels: the model's classification (tinydeploy.model.classify) decides whether any engine can take it as it
is; then each engine's own `problems` (the TFLM firmware: ops the pinned library registers, the tensors the
firmware carries; the native engine: its lowerings, tried op by op, so what is added to the engine counts at once).
A refusal names the engine that does run the model, or says that none does and why, instead of sending the user
from one engine to the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinydeploy.model.classify import classification_refusal
from tinydeploy.engines import engine_names, get_engine
from tinydeploy.errors import TinydeployError
from tinydeploy.model.tflite import TfliteModel


@dataclass(frozen=True)
class EngineSupport:
    engine: str
    problems: tuple[str, ...]  # empty: the engine runs the model

    @property
    def runs(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return {"runs": self.runs, "problems": list(self.problems)}


# Ops no engine runs (neither the pinned TFLM library nor host TFLM, the native engine's reference, has them) that
# a common layer converts to, and the layer that computes the same and converts to an op the engines run.
LAYER_REPLACEMENTS = {
    "TILE": "Keras's UpSampling2D converts to TILE: use keras.layers.Resizing(height, width, "
            "interpolation='nearest') instead (the same outputs, as RESIZE_NEAREST_NEIGHBOR, which both engines run)",
    "GELU": "PyTorch's nn.GELU and Keras's gelu convert to GELU: use x * sigmoid(1.702 * x) instead (GELU's sigmoid "
            "approximation, as LOGISTIC and MUL, which both engines run)",
}


def engine_support(model: TfliteModel, engine: str) -> EngineSupport:
    refusal = classification_refusal(model)
    if refusal is not None:
        return EngineSupport(engine, (refusal.message,))
    return EngineSupport(engine, tuple(get_engine(engine).problems(model)))


def _summary(problems: tuple[str, ...] | list[str], limit: int = 3) -> str:
    shown = "; ".join(problems[:limit])
    return shown + (f" (and {len(problems) - limit} more)" if len(problems) > limit else "")


def other_engine_that_runs(model: TfliteModel, refused_by: str) -> str | None:
    """Another engine that runs the model as it is, or None."""
    if classification_refusal(model) is not None:
        return None
    return next((name for name in engine_names() if name != refused_by and engine_support(model, name).runs), None)


def fallback_hint(model: TfliteModel, refused_by: str) -> str:
    """What to do when `refused_by` cannot run the model: the engine that can, or why none can."""
    refusal = classification_refusal(model)
    if refusal is not None:
        return refusal.hint or ""
    other = other_engine_that_runs(model, refused_by)
    if other is not None:
        return f"use --engine {other}, which runs it"
    reasons = "; ".join(f"the {name} engine: {_summary(engine_support(model, name).problems, 2)}"
                        for name in engine_names() if name != refused_by)
    ways = [way for op, way in LAYER_REPLACEMENTS.items() if op in model.op_names]
    return f"no tinydeploy engine runs this model as it is ({reasons})" + "".join(f"; {way}" for way in ways)


def require_engine(model: TfliteModel, engine: str) -> None:
    """Refuse, before any work, a model `engine` cannot run: one line with every reason and what works."""
    refusal = classification_refusal(model)
    if refusal is not None:
        raise refusal
    support = engine_support(model, engine)
    if not support.runs:
        raise TinydeployError(f"the {engine} engine cannot run {model.name}: {_summary(support.problems)}",
                              fallback_hint(model, engine))


def engines_support(model: TfliteModel) -> dict[str, EngineSupport]:
    return {name: engine_support(model, name) for name in engine_names()}


def engines_json(model: TfliteModel) -> dict:
    return {name: support.to_json() for name, support in engines_support(model).items()}
