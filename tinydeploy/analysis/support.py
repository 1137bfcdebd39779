"""Which engine runs a model, and when one cannot, why and what works instead.

Two levels: the model's classification (model/classify.py) decides whether any engine can take it as it is
(int8 or int16x8 compute; float, hybrid and partly float models need converting, an NPU-compiled model the
file from before the NPU compiler); then each engine's own check: the TFLM firmware's (ops the pinned library
registers, the tensors the firmware carries) and the native engine's (its lowerings, tried op by op, so what
others add to the engine counts at once). A refusal names the engine that does run the model, or says that
none does and why, instead of sending the user from one engine to the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinydeploy.errors import TinydeployError
from tinydeploy.model.tflite import TfliteModel

ENGINE_NAMES = ("tflm", "native")


@dataclass(frozen=True)
class EngineSupport:
    engine: str
    problems: tuple[str, ...]  # empty: the engine runs the model

    @property
    def runs(self) -> bool:
        return not self.problems

    def to_json(self) -> dict:
        return {"runs": self.runs, "problems": list(self.problems)}


def _model_path_text(model: TfliteModel) -> str:
    return str(model.path) if model.path else f"{model.name}.tflite"


def _convert_hint(model: TfliteModel, source: str = "") -> str:
    path = _model_path_text(model)
    stem = Path(path).stem
    return (f"quantize it to int8 with calibration data: tinydeploy convert {source or path} --calib samples.npy "
            f"-o {stem}_int8.tflite (flash and generate do the same when given --calib)")


def classification_refusal(model: TfliteModel) -> TinydeployError | None:
    """The refusal every engine gives a model that does not compute in int8 or int16x8, or None."""
    kind = model.classification
    name = _model_path_text(model)
    if kind.kind == "npu":
        return TinydeployError(
            f"{name} is compiled for {kind.npu}: the network is one {', '.join(kind.custom_ops)} custom op that "
            "only that NPU runs, with its weights in the NPU's own format",
            "give the .tflite from before Vela (the model you passed to vela); tinydeploy runs it on the CPU")
    if kind.kind == "float":
        return TinydeployError(f"{name} is a float model (float32 arithmetic in {', '.join(kind.float_ops)}); "
                               "tinydeploy's engines run int8 or int16x8 models", _convert_hint(model))
    if kind.kind == "hybrid":
        return TinydeployError(
            f"{name} is dynamic-range quantized: {', '.join(kind.hybrid_ops)} take float32 activations with int8 "
            "weights, which TFLM does not run (\"Hybrid models are not supported on TFLite Micro\") and the native "
            "engine does not either", _convert_hint(model))
    if kind.kind == "mixed":
        return TinydeployError(f"{name} is only partly quantized: float32 arithmetic remains in "
                               f"{', '.join(kind.float_ops)}",
                               _convert_hint(model) + "; ops without int8 kernels stay float: replace them")
    if kind.kind == "uint8":
        return TinydeployError(f"{name} uses the legacy uint8 quantization, whose kernels TFLM removed",
                               "convert the float model to int8 instead: tinydeploy convert MODEL --calib "
                               "samples.npy -o model_int8.tflite")
    return None


def tflm_problems(model: TfliteModel) -> list[str]:
    """Why the TFLM firmware tinydeploy generates cannot run a model ([] when it can)."""
    from tinydeploy.emit.tflm import TFLM_FIRMWARE_MAX_IO_TENSORS, TFLM_LIBRARY_COMMIT, TFLM_OP_METHODS

    problems = []
    missing = [op for op in model.distinct_ops if op not in TFLM_OP_METHODS]
    if missing:
        problems.append(f"the pinned TFLM library ({TFLM_LIBRARY_COMMIT[:7]}) has no kernel for "
                        f"{', '.join(missing)}")
    if len(model.inputs) > TFLM_FIRMWARE_MAX_IO_TENSORS or len(model.outputs) > TFLM_FIRMWARE_MAX_IO_TENSORS:
        problems.append(f"its firmware carries one input and one output tensor; this model has "
                        f"{len(model.inputs)} input(s) and {len(model.outputs)} output(s)")
    return problems


def engine_support(model: TfliteModel, engine: str) -> EngineSupport:
    refusal = classification_refusal(model)
    if refusal is not None:
        return EngineSupport(engine, (refusal.message,))
    if engine == "tflm":
        return EngineSupport(engine, tuple(tflm_problems(model)))
    if engine == "native":
        from tinydeploy.engine.registry import native_problems

        return EngineSupport(engine, tuple(native_problems(model)))
    raise TinydeployError(f"unknown engine '{engine}'", f"use one of: {', '.join(ENGINE_NAMES)}")


def _summary(problems: tuple[str, ...] | list[str], limit: int = 3) -> str:
    shown = "; ".join(problems[:limit])
    return shown + (f" (and {len(problems) - limit} more)" if len(problems) > limit else "")


def fallback_hint(model: TfliteModel, refused_by: str) -> str:
    """What to do when `refused_by` cannot run the model: the engine that can, or why none can."""
    refusal = classification_refusal(model)
    if refusal is not None:
        return refusal.hint or ""
    others = [engine for engine in ENGINE_NAMES if engine != refused_by]
    for other in others:
        if engine_support(model, other).runs:
            return f"use --engine {other}, which runs it"
    reasons = "; ".join(f"the {other} engine: {_summary(engine_support(model, other).problems, 2)}"
                        for other in others)
    return f"no tinydeploy engine runs this model as it is ({reasons})"


def require_engine(model: TfliteModel, engine: str) -> None:
    """Refuse, before any work, a model `engine` cannot run: one line with every reason and what works."""
    refusal = classification_refusal(model)
    if refusal is not None:
        raise refusal
    support = engine_support(model, engine)
    if not support.runs:
        raise TinydeployError(f"the {engine} engine cannot run {model.name}: {_summary(support.problems)}",
                              fallback_hint(model, engine))


def engines_json(model: TfliteModel) -> dict:
    return {engine: engine_support(model, engine).to_json() for engine in ENGINE_NAMES}
