"""The whole loop behind `tinydeploy flash`: model -> fit -> project -> build -> start -> measure."""

from __future__ import annotations

import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from tinydeploy.boards import Board
from tinydeploy.errors import TinydeployError
from tinydeploy.model.tflite import TfliteModel

Progress = Callable[[str], None]


@dataclass
class RunMeasurement:
    latencies_us: list[int]
    outputs_match: bool
    mismatches: list[int]  # indices of golden inputs whose output differed
    samples: int
    stack_bytes: int
    heap_bytes: int
    activation_bytes: int
    used_bytes: int
    device: dict


@dataclass
class FlashReport:
    board: Board
    engine: str
    model: TfliteModel
    project_dir: Path
    flash_bytes: int
    static_ram_bytes: int
    run: RunMeasurement
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def ram_bytes(self) -> int:
        # .data+.bss already hold the native engine's activation buffer (or TFLM's arena): add stack and heap.
        return self.static_ram_bytes + self.run.stack_bytes + self.run.heap_bytes

    def latency(self, quantile: float) -> int:
        ordered = sorted(self.run.latencies_us)
        index = min(len(ordered) - 1, max(0, int(round(quantile * (len(ordered) - 1)))))
        return ordered[index]

    def to_json(self) -> dict:
        lat = self.run.latencies_us
        return {
            "board": self.board.name,
            "engine": self.engine,
            "model": self.model.name,
            "model_sha256": self.model.sha256,
            "project_dir": str(self.project_dir),
            "latency_us": int(statistics.median(lat)),
            "latency_us_p95": self.latency(0.95),
            "latency_us_min": min(lat),
            "latencies_us": list(lat),
            "latency_emulated": self.board.is_virtual,
            # Virtual board only: emulated instructions per inference (QEMU -icount), an estimate of M4 cycles.
            "instructions": (int(statistics.median(lat)) * 1000 // emulated_ns_per_instruction()
                             if self.board.is_virtual else None),
            "runs": len(lat),
            "flash_bytes": self.flash_bytes,
            "ram_bytes": self.ram_bytes,
            "ram_available": self.board.ram_bytes,
            "static_ram_bytes": self.static_ram_bytes,
            "stack_bytes": self.run.stack_bytes,
            "heap_bytes": self.run.heap_bytes,
            "activation_bytes": self.run.activation_bytes,
            "outputs_match": self.run.outputs_match,
            "golden_samples": self.run.samples,
            "mismatched_samples": self.run.mismatches,
            "device": self.run.device,
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
        }


def emulated_ns_per_instruction(board_id: str = "virtual") -> int:
    """Virtual time of one instruction on the virtual board: 2^shift ns for QEMU's `-icount shift=N`."""
    from tinydeploy.runners.qemu import board_definition

    args = board_definition(board_id)["qemu"]["args"]
    options = dict(item.split("=", 1) for item in args[args.index("-icount") + 1].split(",") if "=" in item)
    return 1 << int(options["shift"])


def load_model_for_flash(model_path: Path, calib: str | None, progress: Progress,
                         warn: Callable[[str], None] | None = None,
                         conversion: dict | None = None) -> TfliteModel:
    """An int8 TFLite model, converting Keras/SavedModel/ONNX/PyTorch inputs first (their conversion report,
    `convert --json`'s, goes into `conversion` when given)."""
    from tinydeploy.model.convert_torch import is_function_spec, model_stem
    from tinydeploy.model.tflite import load_tflite, parse_tflite

    function_spec = not model_path.exists() and is_function_spec(str(model_path))
    if (model_path.suffix.lower() == ".tflite" and model_path.is_file() or not model_path.exists()) \
            and not function_spec:
        model = load_tflite(model_path)
        if model.float_tensors():
            raise TinydeployError(f"{model_path} is a float TFLite model; the board needs integer tensors (int8, or "
                                  "int16 activations with int8 weights)",
                                  "give the original Keras/SavedModel model so tinydeploy can quantize it")
        return model
    from tinydeploy.model.convert import convert_to_int8

    progress(f"converting {model_path} to int8")
    result = convert_to_int8(model_path, calib)
    for message in result.warnings if warn is not None else ():
        warn(message)
    if conversion is not None:
        conversion.update(result.to_json())
    data = result.tflite
    if function_spec:  # named after the function: `mypackage.models:tiny_cnn` -> tiny_cnn
        return parse_tflite(data, Path.cwd() / f"{model_stem(model_path)}.tflite")
    # The model's name comes from its path; `.` (a SavedModel in the working directory) has no name to suffix.
    model_path = model_path.resolve()
    return parse_tflite(data, model_path.with_name(f"{model_path.name or 'model'}.tflite") if model_path.suffix == ""
                        else model_path.with_suffix(".tflite"))


def measure_on_device(link, model: TfliteModel, golden_count: int, runs: int, warmup: int,
                      progress: Progress) -> RunMeasurement:
    from tinydeploy.golden import random_inputs, tflm_outputs

    info = link.identify()
    device = {k: getattr(info, k) for k in ("board", "engine", "model", "model_hash", "build_id")}
    if info.model_hash and not model.sha256.startswith(info.model_hash):
        raise TinydeployError(f"the device runs another model (hash {info.model_hash}, expected "
                              f"{model.sha256[:16]})", "flash again, or check --port")
    inputs = random_inputs(model, golden_count, seed=0)
    expected = tflm_outputs(model, inputs)
    mismatches = []
    for index, (data, want) in enumerate(zip(inputs, expected)):
        progress(f"golden input {index + 1}/{len(inputs)}")
        link.load_input(data)
        link.run(1, 0)
        if link.read_output() != want:
            mismatches.append(index)
    progress(f"timing {runs} runs after {warmup} warm-ups")
    link.load_input(inputs[0])
    latencies = link.run(runs, warmup)
    ram = link.ram()
    return RunMeasurement(latencies, not mismatches, mismatches, len(inputs), ram.stack_high_water,
                          ram.heap_high_water, ram.activation_bytes, ram.used_bytes, device)


def check_fit(model: TfliteModel, board: Board, engine: str, model_ram_bytes: int,
              native_flash_bytes: int | None = None) -> None:
    """Refuse before building when the model cannot fit, with the numbers (exit 1)."""
    from tinydeploy.analysis.fit import engine_budgets

    budgets = engine_budgets(board, model, engine, model_ram_bytes, native_flash_bytes)
    problems = [f"{b.name} needs {b.used:,} B of {b.available:,} B (over by {b.overshoot:,} B)"
                for b in budgets if not b.fits]
    if problems:
        raise TinydeployError(f"{model.name} does not fit {board.name}: {'; '.join(problems)}",
                              "see tinydeploy analyze for what would help, or pass --skip-fit-check to let the "
                              "linker decide", exit_code=1)


def check_downloads(board: Board, engine: str, project, env_name: str) -> None:
    """Fail in seconds, with the fix, when the build needs a download that cannot happen (PlatformIO itself
    retries for ~60 s): the Arduino TFLM library from GitHub, a real board's platform from PlatformIO's registry."""
    from tinydeploy.build.packages import check_board_packages

    library = getattr(project, "tflm_library", None)
    if engine == "tflm" and library is not None and library.local_path is None:
        from tinydeploy.emit.tflm import TFLM_LIBRARY_NAME, github_reachable, tflm_library_unreachable

        if not (project.directory / ".pio" / "libdeps" / env_name / TFLM_LIBRARY_NAME).is_dir() \
                and not github_reachable():
            raise tflm_library_unreachable()
    if not board.is_virtual:
        check_board_packages(board)


@contextmanager
def started_board(board: Board, project, port: str | None, progress: Progress) -> Iterator[str]:
    """Puts the built firmware on the board and yields the pyserial URL of its port (stopped/closed on exit)."""
    if board.is_virtual:
        from tinydeploy.runners.qemu import QemuBoard

        progress("starting the virtual board (QEMU)")
        with QemuBoard(project.directory, project.env_name) as qemu:
            try:
                yield qemu.port_url
            except TinydeployError:
                qemu.wait(1.0)  # a lost serial port usually means QEMU stopped: then say that instead
                qemu.check_alive()
                raise
        return
    if board.upload_runner != "platformio":
        raise TinydeployError(f"flashing {board.name} ({board.upload_runner}) is not supported yet",
                              "use --board virtual or --board nano33ble")
    from tinydeploy.runners.usb import PlatformioUploader, check_port_free, find_board_port, wait_for_port

    device = find_board_port(board, port)
    check_port_free(device, board.baud)
    progress(f"uploading to {device}")
    PlatformioUploader(project.directory, project.env_name, board).upload(device, progress)
    progress("waiting for the board to restart")
    yield wait_for_port(board, preferred=device)


def _build(project, progress: Progress):
    from tinydeploy.build.platformio import build_project

    return build_project(project.directory, project.env_name, on_line=lambda line: progress(f"build: {line}"))


def calibrate_tflm_arena(model: TfliteModel, board: Board, out_dir: Path | None, force: bool, port: str | None,
                         progress: Progress, tflm_lib: str | Path | None = None) -> int:
    """Builds once with a generous arena, reads arena_used_bytes() from the device and caches it for this model,
    board and library version; returns the used bytes. The next generate/build of the model uses that figure."""
    from tinydeploy.emit.project import generate_project
    from tinydeploy.emit.tflm import arena_from_analysis, calibration_arena, store_device_arena
    from tinydeploy.link import DeviceLink

    hint = arena_from_analysis(model).arena_bytes
    arena = calibration_arena(board.ram_bytes, board.core_ram_bytes, hint)
    progress(f"calibration build with a {arena.arena_bytes:,} B arena")
    project = generate_project(model, board, "tflm", out_dir, force, tflm_lib=tflm_lib, arena=arena)
    check_downloads(board, "tflm", project, project.env_name)
    _build(project, progress)
    with started_board(board, project, port, progress) as url, DeviceLink(url, board.baud) as link:
        link.wait_ready(30.0)
        used = link.ram().used_bytes
    if used <= 0 or used > arena.arena_bytes:
        raise TinydeployError(f"the device reported {used} B of arena used (of {arena.arena_bytes} B)",
                              "the firmware did not start its engine; check its serial output", exit_code=1)
    store_device_arena(model, board.name, project.tflm_library, used)
    progress(f"the device used {used:,} B of the arena")
    return used


def measure_arena_on_virtual_board(model: TfliteModel, library, progress: Progress | None = None) -> int:
    """calibrate_tflm_arena on the virtual board, in one project per library version kept in tinydeploy's own
    state: the library compiles once (~2-3 min), later models rebuild only their own files. Cached like it."""
    import fcntl
    import sys

    from tinydeploy.boards import get_board
    from tinydeploy.paths import data_home

    def say(message: str) -> None:
        if progress is not None:
            progress(message)
        elif not message.startswith("build: "):
            print(f"tinydeploy: {message}", file=sys.stderr, flush=True)

    workspace = data_home() / "tflm-arena" / "".join(c if c.isalnum() or c in ".-" else "_" for c in library.version)
    workspace.mkdir(parents=True, exist_ok=True)
    say("measuring the TFLM arena on the virtual board (the first time compiles the library: minutes)")
    with open(workspace.parent / f"{workspace.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one measurement per workspace at a time
        return calibrate_tflm_arena(model, get_board("virtual"), workspace / "project", True, None, say,
                                    library.local_path)


def tflm_arena(model: TfliteModel, board: Board, tflm_lib: str | Path | None = None,
               progress: Progress | None = None):
    """The TFLM sketch's arena (an ArenaSizing): a cached device figure, else measured now on the virtual board
    when that holds for the board and a local library and QEMU are at hand, else analyze's upper bound."""
    from tinydeploy.emit.tflm import (arena_for, arena_from_analysis, resolve_tflm_library, resolver_methods,
                                      virtual_board_measures, virtual_measurement_unavailable)

    library = resolve_tflm_library(tflm_lib)
    resolver_methods(model)  # refuse ops TFLM lacks before measuring anything
    sizing = arena_for(model, board.name, library)
    if sizing.source != "analyze" or not virtual_board_measures(board.name) or \
            virtual_measurement_unavailable(library):
        return sizing
    try:
        measure_arena_on_virtual_board(model, library, progress)
    except TinydeployError as exc:
        return arena_from_analysis(model, f"measuring on the virtual board failed: {exc.message}")
    return arena_for(model, board.name, library)


def flash_model(model: TfliteModel, board: Board, engine: str, out_dir: Path | None, force: bool,
                port: str | None, golden_count: int, runs: int, warmup: int,
                progress: Progress, stage_seconds: dict[str, float] | None = None,
                skip_fit_check: bool = False, tflm_lib: str | Path | None = None,
                calibrate_arena: bool = False, fast_kernels: bool = True) -> FlashReport:
    from tinydeploy.emit.project import generate_project
    from tinydeploy.link import DeviceLink

    stages = stage_seconds if stage_seconds is not None else {}
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise TinydeployError(
            f"{model.name} has {len(model.inputs)} input(s) and {len(model.outputs)} output(s); flash's serial "
            "protocol carries one of each so far",
            "write the firmware with `tinydeploy generate` and fill and read each tensor through "
            "td_engine_input_tensor()/td_engine_output_tensor() (firmware/include/td_engine.h)")
    if calibrate_arena:
        if engine != "tflm":
            raise TinydeployError("--calibrate-arena is for the TFLM engine (the native engine plans its memory "
                                  "exactly)", "add --engine tflm, or leave out --calibrate-arena")
        started = time.monotonic()
        calibrate_tflm_arena(model, board, out_dir, force, port, progress, tflm_lib)
        stages["calibrate"] = time.monotonic() - started
    started = time.monotonic()
    progress("generating the project")
    arena = tflm_arena(model, board, tflm_lib, progress) if engine == "tflm" else None
    project = generate_project(model, board, engine, out_dir, force, tflm_lib=tflm_lib, arena=arena,
                               fast_kernels=fast_kernels)
    stages["generate"] = time.monotonic() - started
    if not skip_fit_check:
        if project.native_plan is not None:
            plan = project.native_plan
            check_fit(model, board, engine, plan.activation_bytes, plan.flash_bytes)
        elif project.arena is not None:
            check_fit(model, board, engine, project.arena.arena_bytes)
    check_downloads(board, engine, project, project.env_name)

    started = time.monotonic()
    build = _build(project, progress)
    stages["build"] = time.monotonic() - started

    started = time.monotonic()
    with started_board(board, project, port, progress) as url, DeviceLink(url, board.baud) as link:
        link.wait_ready(30.0)
        measurement = measure_on_device(link, model, golden_count, runs, warmup, progress)
    stages["run"] = time.monotonic() - started
    return FlashReport(board, engine, model, project.directory, build.flash_bytes, build.ram_bytes, measurement,
                       stages)
