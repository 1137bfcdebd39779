"""The TFLM engine: TFLite Micro's interpreter from the Arduino TFLM library, the model as a C array in flash,
a resolver of exactly its ops and a tensor arena sized by tinydeploy.tflm.arena."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tinydeploy.analysis.fit import Budget, Part, flash_budget, ram_budget, tflm_code_bytes, tflm_sketch_ram_bytes
from tinydeploy.boards import Board
from tinydeploy.emit.render import render
from tinydeploy.engines.base import Engine, EngineFiles, EngineOptions, EnginePlan, Measure
from tinydeploy.errors import TinydeployError
from tinydeploy.model.tflite import TfliteModel
from tinydeploy.paths import firmware_dir

from tinydeploy.tflm.library import TFLM_FILTER_SCRIPT, TFLM_LOCAL_LIB_DIR  # noqa: F401 (imported from here)


@dataclass
class TflmEnginePlan(EnginePlan):
    arena: object = None  # tinydeploy.tflm.arena.ArenaSizing
    library: object = None  # tinydeploy.tflm.library.TflmLibrary
    ops: list[tuple[str, str]] | None = None  # (op, resolver method)
    profile: bool = False  # time each operator through TFLM's profiler interface (flash --profile)


def c_byte_array_body(data: bytes, per_line: int = 16) -> str:
    lines = (", ".join(f"0x{b:02x}" for b in data[i:i + per_line]) for i in range(0, len(data), per_line))
    return ",\n".join("    " + line for line in lines)


class TflmEngine(Engine):
    name = "tflm"
    code_label = "TFLM runtime, protocol + kernels"
    ram_label = "TFLM tensor arena (32-bit, with margin)"
    measures_arena = True
    profiles_ops = True

    def blockers(self, model: TfliteModel) -> list[str]:
        from tinydeploy.tflm.resolver import TFLM_OP_METHODS

        return sorted(set(model.op_names) - set(TFLM_OP_METHODS))

    def problems(self, model: TfliteModel) -> list[str]:
        from tinydeploy.tflm.resolver import tflm_problems

        return tflm_problems(model)

    def plan(self, model: TfliteModel, board: Board, options: EngineOptions = EngineOptions(),
             measure: Measure | None = None, progress=None) -> TflmEnginePlan:
        from tinydeploy.tflm.library import resolve_tflm_library
        from tinydeploy.tflm.resolver import resolver_methods

        library = resolve_tflm_library(options.tflm_lib)
        self.check(model)  # refuse what the firmware cannot run before measuring anything
        ops = resolver_methods(model)
        arena = options.arena if options.arena is not None else self.arena(model, board, library, options, measure)
        return TflmEnginePlan(self.name, model, board, arena.arena_bytes, arena=arena, library=library, ops=ops,
                              profile=options.profile)

    def analysis_plan(self, model: TfliteModel, board: Board,
                      options: EngineOptions = EngineOptions()) -> TflmEnginePlan | None:
        """The plan flash builds with, without measuring: its arena is the device figure where one is cached (the
        RAM the firmware holds), else analyze's upper bound; None (analyze's own figures) for a model the firmware
        cannot run or without a library to key the device figures by."""
        if self.problems(model):
            return None
        try:
            return self.plan(model, board, options)
        except TinydeployError:
            return None

    def arena(self, model: TfliteModel, board: Board, library, options: EngineOptions = EngineOptions(),
              measure: Measure | None = None):
        """A cached device figure, else measured now (with `measure`, on the virtual board) when that holds for
        the board and a local library and QEMU are at hand, else analyze's upper bound."""
        from tinydeploy.tflm.arena import (arena_for, arena_from_analysis, virtual_board_measures,
                                           virtual_measurement_unavailable)

        sizing = arena_for(model, board.name, library)
        if measure is None or sizing.source != "analyze" or not virtual_board_measures(board.name) or \
                virtual_measurement_unavailable(library):
            return sizing
        try:
            measure(self, model, options)
        except TinydeployError as exc:
            return arena_from_analysis(model, f"measuring on the virtual board failed: {exc.message}")
        return arena_for(model, board.name, library)

    def code_bytes(self, model: TfliteModel) -> int:
        return tflm_code_bytes(model.op_names)

    def budgets(self, board: Board, model: TfliteModel, ram_bytes: int,
                constants_bytes: int | None = None) -> tuple[Budget, Budget]:
        """The arena and what the sketch holds besides (the interpreter and op resolver objects: static RAM beyond
        the arena and the board's core figure, measured per op count by tinydeploy.hil.tflm_code_size)."""
        flash = flash_budget(board, model, self.code_bytes(model), self.code_label)
        sketch = Part("TFLM interpreter + op resolver objects (estimate)",
                      tflm_sketch_ram_bytes(model.op_names))
        return flash, ram_budget(board, ram_bytes, self.ram_label, engine_parts=(sketch,))

    def files(self, plan: TflmEnginePlan) -> EngineFiles:
        from tinydeploy.emit.arduino import ArduinoLibrary
        from tinydeploy.tflm.library import TFLM_LIBRARY_COMMIT, TFLM_LIBRARY_DEPS, TFLM_LIBRARY_NAME, \
            TFLM_LIBRARY_REPO

        model, board = plan.model, plan.board
        context = {"model_name": model.name, "board_name": board.name, "model_sha256": model.sha256,
                   "ops": plan.ops, "arena": plan.arena, "model_bytes": len(model.raw),
                   "profile_steps": len(model.operators) if plan.profile else 0}
        files = {
            "src/td_tflm_model.h": render("tflm/td_tflm_model.h.j2", **context).encode(),
            "src/td_tflm_model.cpp": render("tflm/td_tflm_model.cpp.j2", model_array=c_byte_array_body(model.raw),
                                            **context).encode(),
        }
        glue = firmware_dir() / "tflm"
        for path in sorted(glue.glob("*.cpp")):
            files[f"src/{path.name}"] = path.read_bytes()
        files[TFLM_FILTER_SCRIPT] = (glue / TFLM_FILTER_SCRIPT).read_bytes()
        local = plan.library.local_path
        ini = {"title": "TFLite Micro: the Arduino library", "local": local is not None,
               "extra_dir": TFLM_LOCAL_LIB_DIR, "lib_deps": TFLM_LIBRARY_DEPS, "filter_script": TFLM_FILTER_SCRIPT}
        library = ArduinoLibrary(TFLM_LIBRARY_NAME, plan.library.properties_version,
                                 f"{TFLM_LIBRARY_REPO.removesuffix('.git')} at commit {TFLM_LIBRARY_COMMIT}", local)
        return EngineFiles(files, [], ini, {f"{TFLM_LOCAL_LIB_DIR}/{TFLM_LIBRARY_NAME}": local}, [library],
                           {TFLM_FILTER_SCRIPT})

    def describe(self, plan: TflmEnginePlan) -> list[str]:
        return [f"TFLM tensor arena: {plan.arena.arena_bytes:,} B = {plan.arena.describe()}"]

    def check_downloads(self, plan: TflmEnginePlan, project_dir: Path, env_name: str) -> None:
        from tinydeploy.tflm.library import TFLM_LIBRARY_NAME, github_reachable, tflm_library_unreachable

        if plan.library.local_path is None and \
                not (project_dir / ".pio" / "libdeps" / env_name / TFLM_LIBRARY_NAME).is_dir() and \
                not github_reachable():
            from tinydeploy.engines.support import other_engine_that_runs

            raise tflm_library_unreachable(other_engine_that_runs(plan.model, self.name))

    def prepare_build(self, plan: TflmEnginePlan, project_dir: Path, env_name: str, progress) -> float:
        """A local library is compiled once per machine (per library, board and flags) and the project links it
        (tinydeploy.tflm.prebuilt); a project that `generate` wrote keeps the library's sources."""
        from tinydeploy.tflm.library import TFLM_LIBRARY_NAME
        from tinydeploy.tflm.prebuilt import enabled, ensure_prebuilt, link_prebuilt

        if not enabled(plan.library):
            return 0.0
        folder, seconds = ensure_prebuilt(plan.library, project_dir, env_name, progress)
        link_prebuilt(project_dir, f"{TFLM_LOCAL_LIB_DIR}/{TFLM_LIBRARY_NAME}", folder)
        return seconds

    def calibration_options(self, model: TfliteModel, board: Board, options: EngineOptions) -> EngineOptions:
        from dataclasses import replace

        from tinydeploy.tflm.arena import arena_from_analysis, calibration_arena

        hint = arena_from_analysis(model).arena_bytes
        return replace(options, arena=calibration_arena(board.ram_bytes, board.core_ram_bytes, hint))

    def store_measurement(self, plan: TflmEnginePlan, used_bytes: int) -> None:
        from tinydeploy.tflm.arena import store_device_arena

        store_device_arena(plan.model, plan.board.name, plan.library, used_bytes)
