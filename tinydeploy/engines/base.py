"""The engine interface: what runs a model on the board, as one class per engine.

An engine checks a model (which ops it cannot run), plans it for a board (a complete plan object; nothing is
written), states the flash and RAM budgets of a plan (the fit check), gives the files the project needs (bytes,
rendered through the one Jinja environment) and reports its plan (analyze). The pipeline (tinydeploy.flow) does
the rest in the same order for every engine: plan, check the fit, write, build, run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ClassVar

from tinydeploy.analysis.fit import Budget, flash_budget, ram_budget
from tinydeploy.boards import Board
from tinydeploy.emit.arduino import ArduinoLibrary
from tinydeploy.model.tflite import TfliteModel

Progress = Callable[[str], None]


@dataclass(frozen=True)
class EngineOptions:
    """Choices a user makes per build; an engine reads the ones it has."""

    fast_kernels: bool = True  # native: Cortex-M4 DSP kernels where a layer allows (False: reference kernels)
    tflm_lib: str | Path | None = None  # tflm: a local copy of the Arduino TFLM library
    arena: object | None = None  # tflm: an ArenaSizing to use as is (a calibration build's generous arena)
    profile: bool = False  # time each op on the device (flash --profile; engines that can)


@dataclass
class EnginePlan:
    """Everything decided about a model on a board before anything is written."""

    engine: str
    model: TfliteModel
    board: Board
    ram_bytes: int  # the RAM the engine reserves for the model: activation buffer or tensor arena
    constants_bytes: int | None = None  # flash of weights and constants when known exactly (else the model file)
    # Where the engine plans one buffer: its layout (offsets per tensor, activation_bytes, peak_op, steps, source)
    layout: object | None = None


@dataclass
class EngineFiles:
    """An engine's part of a project."""

    files: dict[str, bytes] = field(default_factory=dict)  # project-relative path -> content
    firmware: list[Path] = field(default_factory=list)  # firmware files copied into lib/tinydeploy/src
    ini: dict | None = None  # settings for platformio.ini's library block (the template's `library`)
    links: dict[str, Path | None] = field(default_factory=dict)  # project-relative symlink -> target (None: none)
    libraries: list[ArduinoLibrary] = field(default_factory=list)  # Arduino libraries the sources include
    build_only: set[str] = field(default_factory=set)  # files only PlatformIO's build uses (its scripts)


@dataclass
class PlanReport:
    """An engine's plan as analyze shows it: summary lines, an optional table, and its JSON fields."""

    lines: list[str] = field(default_factory=list)
    title: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    peak_row: int | None = None  # the row to mark as the peak
    json: dict = field(default_factory=dict)


# Measures on the virtual board the RAM an engine's firmware uses (the pipeline provides it, and keeps the figure
# through the engine's store_measurement): (engine, model, options) -> bytes used. Engines whose plan rests on such a
# figure call it where their sizing rules say to.
Measure = Callable[["Engine", TfliteModel, EngineOptions], int]


class Engine:
    name: ClassVar[str] = ""
    code_label: ClassVar[str] = ""  # what its code is, in the flash budget
    ram_label: ClassVar[str] = ""  # what its model RAM is, in the RAM budget
    chooses_kernels: ClassVar[bool] = False  # --kernels applies
    measures_arena: ClassVar[bool] = False  # --calibrate-arena applies: its RAM is measured on a device
    profiles_ops: ClassVar[bool] = False  # --profile applies: a build of it times each op on the device
    bit_exact: ClassVar[bool] = False  # outputs equal host TFLM's byte for byte by design (flash --data requires it)

    # ---- the model -------------------------------------------------------------------------------------------

    def blockers(self, model: TfliteModel) -> list[str]:
        """The model's ops this engine cannot run (sorted; [] when it runs them all)."""
        raise NotImplementedError

    def problems(self, model: TfliteModel) -> list[str]:
        """Every reason this engine cannot run a quantized model ([] when it can): ops, dtypes, graph shape."""
        raise NotImplementedError

    def check(self, model: TfliteModel) -> None:
        """Raise a TinydeployError, naming every reason and a way that works, when the engine cannot run the model
        (its classification first: a float model gets the conversion to run, not a list of ops)."""
        from tinydeploy.engines.support import require_engine

        require_engine(model, self.name)

    # ---- the plan --------------------------------------------------------------------------------------------

    def plan(self, model: TfliteModel, board: Board, options: EngineOptions = EngineOptions(),
             measure: Measure | None = None, progress: Progress | None = None) -> EnginePlan:
        """The complete plan; writes nothing."""
        raise NotImplementedError

    def analysis_plan(self, model: TfliteModel, board: Board,
                      options: EngineOptions = EngineOptions()) -> EnginePlan | None:
        """The plan analyze reports and budgets (the one flash would build with these options), or None when
        analyze's own figures stand for it."""
        return None

    def fit_suggestions(self, plan: EnginePlan) -> list[str]:
        """Ways out the engine knows when its plan does not fit (e.g. another kernel choice, with its numbers)."""
        return []

    def code_bytes(self, model: TfliteModel) -> int:
        """Flash of the engine's code for this model (an estimate)."""
        raise NotImplementedError

    def budgets(self, board: Board, model: TfliteModel, ram_bytes: int,
                constants_bytes: int | None = None) -> tuple[Budget, Budget]:
        """Flash and RAM of the model on the board with this engine: the one definition analyze and flash share."""
        model_data = None if constants_bytes is None else ("weights and quantization constants", constants_bytes)
        flash = flash_budget(board, model, self.code_bytes(model), self.code_label, model_data)
        return flash, ram_budget(board, ram_bytes, self.ram_label)

    def plan_budgets(self, plan: EnginePlan) -> tuple[Budget, Budget]:
        return self.budgets(plan.board, plan.model, plan.ram_bytes, plan.constants_bytes)

    # ---- the project -----------------------------------------------------------------------------------------

    def files(self, plan: EnginePlan) -> EngineFiles:
        raise NotImplementedError

    def describe(self, plan: EnginePlan) -> list[str]:
        """Lines `generate` prints about the plan (e.g. where the arena figure comes from)."""
        return []

    def report(self, plan: EnginePlan) -> PlanReport:
        """The plan as analyze shows it."""
        return PlanReport()

    def check_downloads(self, plan: EnginePlan, project_dir: Path, env_name: str) -> None:
        """Raise at once, with the fix, when building needs a download of the engine's that cannot happen."""

    def prepare_build(self, plan: EnginePlan, project_dir: Path, env_name: str, progress) -> float:
        """Before tinydeploy builds the written project: what the engine's libraries need (e.g. compiled once per
        machine). Returns the seconds spent compiling a library now (0: nothing to do, or compiled before)."""
        return 0.0

    # ---- measured figures (engines with measures_arena) ------------------------------------------------------

    def calibration_options(self, model: TfliteModel, board: Board, options: EngineOptions) -> EngineOptions:
        """Options for a build that measures the engine's RAM on a device."""
        raise NotImplementedError(f"the {self.name} engine plans its memory exactly")

    def store_measurement(self, plan: EnginePlan, used_bytes: int) -> None:
        """Keep a figure measured on a device for later plans of this model and board."""
        raise NotImplementedError(f"the {self.name} engine plans its memory exactly")
