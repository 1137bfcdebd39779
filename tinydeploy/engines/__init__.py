"""The engine registry: every engine that can run a model on a board, by name (see engines/base.py).

Adding an engine: one module here with one Engine subclass, its name in ENGINE_CLASSES, and its name in the board
profile schema (tinydeploy.boards.ENGINES) so profiles may make it their default.
"""

from __future__ import annotations

import importlib

from tinydeploy.engines.base import Engine, EngineFiles, EngineOptions, EnginePlan, PlanReport
from tinydeploy.errors import TinydeployError

__all__ = ["ENGINE_CLASSES", "Engine", "EngineFiles", "EngineOptions", "EnginePlan", "PlanReport", "engine_names",
           "get_engine"]

# name -> "module:class", imported on first use so that commands which do not plan start fast.
ENGINE_CLASSES = {
    "native": "tinydeploy.engines.native:NativeEngine",
    "tflm": "tinydeploy.engines.tflm:TflmEngine",
}
_instances: dict[str, Engine] = {}


def engine_names() -> tuple[str, ...]:
    return tuple(ENGINE_CLASSES)


def get_engine(name: str) -> Engine:
    if name not in ENGINE_CLASSES:
        raise TinydeployError(f"unknown engine '{name}'", f"use one of: {', '.join(ENGINE_CLASSES)}")
    if name not in _instances:
        module, cls = ENGINE_CLASSES[name].split(":")
        _instances[name] = getattr(importlib.import_module(module), cls)()
    return _instances[name]
