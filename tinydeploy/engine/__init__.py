"""The native integer inference engine (int8, and int16 activations with int8 weights): a model compiled at
generation time to a fixed sequence of C kernel calls over one statically planned activation buffer, with all
quantization constants in flash.

Data flow: registry (lower each op) -> planner (offsets) -> codegen (templates/native) -> firmware/engine kernels.
"""

from tinydeploy.engine.codegen import (NativePlan, PlanStep, describe_plan, emit_native_sources, native_plan,
                                       plan_native)
from tinydeploy.engine.registry import native_problems, supported_ops, unsupported_ops

__all__ = ["NativePlan", "PlanStep", "describe_plan", "emit_native_sources", "native_plan", "plan_native",
           "native_problems", "supported_ops", "unsupported_ops"]
