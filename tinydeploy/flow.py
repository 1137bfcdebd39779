"""The one pipeline: model -> engine plan -> fit check -> project written -> built (Firmware) -> started by the
board's runner (Device) -> compared with host TFLM, timed, RAM read.

`flash`, `generate`, `lab check` and the pytest plugin all go through `build_firmware`/`generate_project` (plan,
check, then write) and `Device` (the same comparison, timing and RAM reading); `bench` and `monitor` time a
device that already runs through `time_running_device`. Engines come from tinydeploy.engines, runners from
tinydeploy.runners: nothing here depends on which engine or board it is.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tinydeploy.boards import Board
from tinydeploy.emit.project import AppPart, GeneratedProject, check_project_dir, default_project_dir, \
    project_files, write_project
from tinydeploy.engines import Engine, EngineOptions, EnginePlan, get_engine
from tinydeploy.errors import EXIT_FAILED, TinydeployError
from tinydeploy.model.tflite import TfliteModel
from tinydeploy.runners import Runner, runner_for

Progress = Callable[[str], None]
Log = Progress


def _quiet(_: str) -> None:
    pass


# ---- the model -----------------------------------------------------------------------------------------------


def load_model_for_flash(model_path: Path, calib: str | None, progress: Progress,
                         warn: Callable[[str], None] | None = None,
                         conversion: dict | None = None, engine: str | None = None) -> TfliteModel:
    """A quantized (int8 or int16x8) TFLite model, converting Keras/SavedModel/ONNX/PyTorch inputs and, given
    calibration data, float or dynamic-range .tflite files first (the conversion report, `convert --json`'s,
    goes into `conversion` when given); refuses precisely what `engine` cannot run."""
    from tinydeploy.model.classify import classification_refusal
    from tinydeploy.model.convert import TFLITE_QUANTIZABLE_KINDS
    from tinydeploy.model.convert_torch import is_function_spec, model_stem
    from tinydeploy.model.tflite import load_tflite, parse_tflite

    def checked(model: TfliteModel, converted: bool = False) -> TfliteModel:
        refusal = classification_refusal(model)
        if refusal is not None and converted:
            raise TinydeployError(f"converting {model_path} left a model tinydeploy cannot run: {refusal.message}",
                                  "the quantizer has no int8 version of those ops: replace them in the original "
                                  "model, or convert the original Keras/SavedModel model (TensorFlow's converter "
                                  "quantizes LSTM layers, for one)")
        if refusal is not None:
            raise refusal
        if engine is not None:
            _engine(engine, None).check(model)
        return model

    function_spec = not model_path.exists() and is_function_spec(str(model_path))
    is_tflite = model_path.suffix.lower() == ".tflite"
    if (is_tflite and model_path.is_file() or not model_path.exists()) and not function_spec:
        model = load_tflite(model_path)
        if calib is None or model.classification.kind not in TFLITE_QUANTIZABLE_KINDS:
            return checked(model)
    from tinydeploy.model.convert import convert_to_int8

    progress(f"converting {model_path} to int8")
    result = convert_to_int8(model_path, calib)
    for message in result.warnings if warn is not None else ():
        warn(message)
    if conversion is not None:
        conversion.update(result.to_json())
    data = result.tflite
    if function_spec:  # named after the function: `mypackage.models:tiny_cnn` -> tiny_cnn
        return checked(parse_tflite(data, Path.cwd() / f"{model_stem(model_path)}.tflite"), converted=True)
    # The model's name comes from its path; `.` (a SavedModel in the working directory) has no name to suffix.
    model_path = model_path.resolve()
    if is_tflite:
        name = model_path.with_name(f"{model_path.stem}_int8.tflite")
    elif model_path.suffix == "":
        name = model_path.with_name(f"{model_path.name or 'model'}.tflite")
    else:
        name = model_path.with_suffix(".tflite")
    return checked(parse_tflite(data, name), converted=True)


# ---- analyze ---------------------------------------------------------------------------------------------------


def analyze(model: TfliteModel, board: Board, engine: str | Engine | None = None, use_cache: bool = True,
            options: EngineOptions = EngineOptions()):
    """analyze's report of the model on the board with the engine (default: the board's, as flash; TFLM's figures
    for a model the board's engine does not run) and the build
    options flash would use (tinydeploy.analysis.analyze.Analysis); it says what blocks the native engine whichever
    engine is analysed."""
    from tinydeploy.analysis.analyze import analyze_model
    from tinydeploy.engines.support import engines_support

    support = engines_support(model)
    if engine is None and not support[board.default_engine].runs:
        engine = "tflm"  # flash would refuse the model: TFLM's figures still say what it needs (and why not)
    return analyze_model(model, board, _engine(engine, board), use_cache=use_cache,
                         native_blockers=get_engine("native").blockers(model), support=support,
                         options=options)


# ---- plan, check the fit, write ------------------------------------------------------------------------------


def _engine(engine: str | Engine | None, board: Board) -> Engine:
    if isinstance(engine, Engine):
        return engine
    return get_engine(engine or board.default_engine)


def check_fit(engine: Engine, plan: EnginePlan) -> None:
    """Refuse before writing anything when the plan cannot fit the board, with the numbers (exit 1)."""
    problems = [f"{b.name} needs {b.used:,} B of {b.available:,} B (over by {b.overshoot:,} B)"
                for b in engine.plan_budgets(plan) if not b.fits]
    if problems:
        ways = "".join(f"{tip}; " for tip in engine.fit_suggestions(plan))
        raise TinydeployError(f"{plan.model.name} does not fit {plan.board.name}: {'; '.join(problems)}",
                              f"{ways}see tinydeploy analyze for what would help, or pass --skip-fit-check to let "
                              "the linker decide", exit_code=1)


def write_plan(engine: Engine, plan: EnginePlan, directory: Path, force: bool,
               app: AppPart | None = None, layout: str = "platformio") -> GeneratedProject:
    """The project of a plan (and of an application part, e.g. a kit's sensor driver), written whole (see
    emit.project.write_project); `layout` "arduino" lays the same files out as an Arduino IDE sketch folder."""
    from tinydeploy.build.platformio import virtual_platform_spec

    model, board = plan.model, plan.board
    part = engine.files(plan)
    files = project_files(model, board, engine.name, part.files, part.firmware, part.ini, app,
                          virtual_platform=virtual_platform_spec())
    links = part.links
    manifest = {"board": board.name, "engine": engine.name, "model": model.name, "model_sha256": model.sha256}
    if layout == "arduino":
        from tinydeploy.emit.arduino import sketch_files

        files = sketch_files(Path(directory).name, board, engine.name, model.name, files, part.build_only,
                             part.libraries)
        links, manifest["format"] = {}, "arduino"
    digests = write_project(directory, files, manifest, force, links)
    return GeneratedProject(Path(directory), board, engine.name, model, board.name, digests, plan)


def generate_project(model: TfliteModel, board: Board, engine: str | Engine | None = None,
                     directory: Path | None = None, force: bool = False, tflm_lib: str | Path | None = None,
                     arena=None, fast_kernels: bool = True, *, fit_check: bool = False, measure: bool = False,
                     progress: Progress | None = None, layout: str = "platformio") -> GeneratedProject:
    """Plan, check the fit (fit_check), then write the project. `measure`: an engine whose plan rests on a figure
    read on a device (the TFLM arena) may measure it now on the virtual board; otherwise it uses cached figures
    or its estimate. `arena` (TFLM) replaces the sizing rules; `fast_kernels=False` gives the native engine's
    reference kernels; `tflm_lib` is a local Arduino TFLM library (default $TINYDEPLOY_TFLM_LIB); `layout`
    "arduino" writes an Arduino IDE sketch folder (tinydeploy.emit.arduino) instead of a PlatformIO project."""
    from tinydeploy.emit.arduino import check_format, check_sketch_dir, default_sketch_name

    check_format(layout, board)
    chosen = _engine(engine, board)
    if layout == "arduino":
        directory = Path(directory or Path("build") / default_sketch_name(model.name, board, chosen.name))
        check_sketch_dir(directory)
    directory = Path(directory or default_project_dir(model, board, chosen.name))
    check_project_dir(directory, force)
    _check_same_format(directory, layout)
    options = EngineOptions(fast_kernels=fast_kernels, tflm_lib=tflm_lib, arena=arena)
    plan = chosen.plan(model, board, options, measure=_measure_on_virtual_board(progress) if measure else None)
    if fit_check:
        check_fit(chosen, plan)
    return write_plan(chosen, plan, directory, force, layout=layout)


def _check_same_format(directory: Path, layout: str) -> None:
    """A sketch folder is not regenerated as a PlatformIO project or the other way round (its old layout's folders
    would stay behind)."""
    import json

    from tinydeploy.emit.project import MANIFEST

    titles = {"platformio": "a PlatformIO project", "arduino": "an Arduino sketch folder"}
    try:
        previous = json.loads((directory / MANIFEST).read_text()).get("format", "platformio")
    except (OSError, ValueError, AttributeError):
        return
    if previous != layout:
        raise TinydeployError(f"{directory} holds {titles.get(previous, previous)} that tinydeploy wrote, not "
                              f"{titles[layout]}", "give another --out for the other format")


# ---- build ---------------------------------------------------------------------------------------------------


@dataclass
class Firmware:
    """A built firmware project for one model, board profile and engine."""

    model: TfliteModel
    board: Board
    engine: str
    project_dir: Path
    env_name: str
    elf_path: Path
    flash_bytes: int
    static_ram_bytes: int
    build_seconds: float = 0.0
    plan: EnginePlan | None = None

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model.sha256, self.board.name, self.engine)


def check_downloads(engine: Engine, plan: EnginePlan, project_dir: Path, env_name: str) -> None:
    """Fail in seconds, with the fix, when the build needs a download that cannot happen (PlatformIO itself
    retries for ~60 s): the engine's library, a real board's platform from PlatformIO's registry."""
    from tinydeploy.build.packages import check_board_packages

    engine.check_downloads(plan, project_dir, env_name)
    check_board_packages(plan.board)


def check_app_downloads(app: AppPart | None, board: Board, project_dir: Path, env_name: str) -> None:
    """The application's pinned libraries (a kit's sensor libraries) come from PlatformIO's registry on a real
    board (the virtual board has stand-ins): fail at once when they are not there yet and cannot be downloaded."""
    from tinydeploy.build.platformio import platformio_unreachable_message, registry_reachable

    if app is None or not app.lib_deps or board.platform_is_bundled:
        return
    installed = project_dir / ".pio" / "libdeps" / env_name
    names = [dependency.rsplit("/", 1)[-1].split("@", 1)[0] for dependency in app.lib_deps]
    if any(not (installed / name).is_dir() for name in names) and not registry_reachable():
        raise platformio_unreachable_message(f"the libraries {', '.join(names)}")


def build_project_of(project: GeneratedProject, progress: Progress = _quiet):
    from tinydeploy.build.platformio import build_project

    return build_project(project.directory, project.env_name, on_line=lambda line: progress(f"build: {line}"))


def build_firmware(model: TfliteModel, board: Board, engine: str | Engine | None, out_dir: Path | None,
                   log: Log = _quiet, *, force: bool = True, options: EngineOptions = EngineOptions(),
                   fit_check: bool = True, measure: bool = True, stages: dict[str, float] | None = None,
                   progress: Progress | None = None, app: AppPart | None = None) -> Firmware:
    """The build step of every command: plan (measuring the TFLM arena on the virtual board where it can), check
    the fit, write the project (with `app`'s files, e.g. a kit's sensor driver), check downloads, build
    (incremental: an unchanged project rebuilds in ~1 s)."""
    from tinydeploy.locking import project_lock

    progress = progress or log
    stages = stages if stages is not None else {}
    chosen = _engine(engine, board)
    started = time.monotonic()
    directory = Path(out_dir or default_project_dir(model, board, chosen.name))
    # builders of one directory (test workers, lab checks) take turns; flash already holds it (re-entered)
    with project_lock(directory, wait=None):
        check_project_dir(directory, force)
        _check_same_format(directory, "platformio")
        plan = chosen.plan(model, board, options, measure=_measure_on_virtual_board(progress) if measure else None)
        if fit_check:
            check_fit(chosen, plan)
        project = write_plan(chosen, plan, directory, force, app)
        stages["generate"] = time.monotonic() - started
        check_downloads(chosen, plan, project.directory, project.env_name)
        check_app_downloads(app, board, project.directory, project.env_name)
        compiled_seconds = chosen.prepare_build(plan, project.directory, project.env_name, progress)
        if compiled_seconds:
            stages["library"] = compiled_seconds  # compiled now, once for this machine
        started = time.monotonic()
        log(f"building {model.name} for {board.name} ({chosen.name}) in {project.directory}")
        build = build_project_of(project, progress)
        stages["build"] = time.monotonic() - started
    log(f"built: flash {build.flash_bytes} B, static RAM {build.ram_bytes} B, log {build.log_path}")
    return Firmware(model, board, chosen.name, project.directory, project.env_name, build.elf_path,
                    build.flash_bytes, build.ram_bytes,
                    stages["generate"] + stages.get("library", 0.0) + stages["build"], plan)


# ---- a running firmware --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LatencyStats:
    """Latencies of timed runs in microseconds (emulated time on an emulated board)."""

    samples: tuple[int, ...]

    @property
    def median(self) -> float:
        return float(statistics.median(self.samples))

    @property
    def mean(self) -> float:
        return float(statistics.fmean(self.samples))

    @property
    def min(self) -> int:
        return min(self.samples)

    @property
    def max(self) -> int:
        return max(self.samples)

    def quantile(self, q: float) -> int:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]

    @property
    def p95(self) -> int:
        return self.quantile(0.95)

    @property
    def stdev(self) -> float:
        return float(statistics.pstdev(self.samples))

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "p95": self.p95, "min": self.min, "max": self.max, "mean": round(self.mean, 1)}


@dataclass(frozen=True)
class BenchResult:
    latency_us: LatencyStats
    runs: int
    warmup: int
    emulated: bool


@dataclass(frozen=True)
class RamUsage:
    """RAM of the running firmware: static (.data + .bss, from the ELF file) plus the measured stack and heap."""

    static_bytes: int
    stack_bytes: int
    heap_bytes: int
    activation_bytes: int
    board_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.static_bytes + self.stack_bytes + self.heap_bytes

    @property
    def free_bytes(self) -> int:
        return self.board_bytes - self.total_bytes

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.board_bytes


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
    mismatched_tensors: dict[int, list[int]] = field(default_factory=dict)  # golden input -> output tensors differing


def infer(link, data: bytes) -> bytes:
    """One inference of a single-input, single-output model over the serial protocol: raw bytes in and out."""
    return infer_tensors(link, [data])[0]


def infer_tensors(link, tensors: list[bytes]) -> list[bytes]:
    """One inference over the serial protocol: every input tensor's raw bytes in, every output tensor's out."""
    return link.infer(tensors)


def timed_runs(link, data, runs: int, warmup: int) -> list[int]:
    """Latencies of `runs` inferences after `warmup`; `data` is the input bytes or one bytes per input tensor. The
    first inference consumes the inputs (see docs/protocol.md, "Timing"): the others time the model on what it left."""
    link.load_inputs(data)
    return link.run(runs, warmup)


def measure_on_device(link, model: TfliteModel, golden_count: int, runs: int, warmup: int,
                      progress: Progress = _quiet) -> RunMeasurement:
    """What `flash` reports: outputs on random inputs against host TFLM (every output tensor), the latency of timed
    runs, the RAM."""
    from tinydeploy.golden import random_samples, tflm_sample_outputs

    info = link.identify()
    device = {k: getattr(info, k) for k in ("board", "engine", "model", "model_hash", "build_id")}
    if info.model_hash and not model.sha256.startswith(info.model_hash):
        raise TinydeployError(f"the device runs another model (hash {info.model_hash}, expected "
                              f"{model.sha256[:16]})", "flash again, or check --port")
    check_device_tensors(info, model)
    samples = random_samples(model, golden_count, seed=0)
    expected = tflm_sample_outputs(model, samples)
    mismatches = []
    mismatched_tensors: dict[int, list[int]] = {}
    for index, (sample, want) in enumerate(zip(samples, expected)):
        progress(f"golden input {index + 1}/{len(samples)}")
        got = infer_tensors(link, sample)
        differing = [position for position, (a, b) in enumerate(zip(got, want)) if a != b]
        if differing:
            mismatches.append(index)
            mismatched_tensors[index] = differing
    progress(f"timing {runs} runs after {warmup} warm-ups")
    latencies = timed_runs(link, samples[0], runs, warmup)
    ram = link.ram()
    return RunMeasurement(latencies, not mismatches, mismatches, len(samples), ram.stack_high_water,
                          ram.heap_high_water, ram.activation_bytes, ram.used_bytes, device, mismatched_tensors)


def check_device_tensors(info, model: TfliteModel) -> None:
    """The device's input and output tensors (count, bytes, element type) are the model's."""
    def described(specs) -> list[tuple[int, str]]:
        return [(spec.bytes, spec.dtype) for spec in specs]

    want_in = [(model.tensors[i].nbytes, model.tensors[i].dtype) for i in model.inputs]
    want_out = [(model.tensors[i].nbytes, model.tensors[i].dtype) for i in model.outputs]
    got_in, got_out = described(info.inputs), described(info.outputs)
    if [b for b, _ in got_in] != [b for b, _ in want_in] or [b for b, _ in got_out] != [b for b, _ in want_out] or \
            any(t and t != w for (_, t), (_, w) in zip(got_in + got_out, want_in + want_out)):
        raise TinydeployError(f"the device's tensors (inputs {got_in}, outputs {got_out}) are not {model.name}'s "
                              f"(inputs {want_in}, outputs {want_out})",
                              "the firmware is from another model or tinydeploy version: flash again",
                              exit_code=EXIT_FAILED)


@dataclass(frozen=True)
class OpProfile:
    """One op's share of an inference, timed on the device (a profiling build: the clock is read between ops)."""

    index: int
    op: str
    microseconds: float  # per inference, averaged over the profiled runs
    macs: int | None
    instructions: int | None  # emulated boards: instructions in that time
    share: float  # of the sum over ops

    def to_json(self) -> dict:
        per_mac = (self.instructions / self.macs) if self.instructions is not None and self.macs else None
        return {"index": self.index, "op": self.op, "us": round(self.microseconds, 2), "macs": self.macs,
                "instructions": self.instructions, "instructions_per_mac": round(per_mac, 2) if per_mac else None,
                "share": round(self.share, 4)}


def profile_on_device(device: "Device", sample: list[bytes], runs: int) -> list[OpProfile]:
    """Per-op time of `runs` inferences on a profiling build (EngineOptions.profile)."""
    from tinydeploy.analysis.compute import op_costs

    model = device.firmware.model
    device._guard(lambda: timed_runs(device.link, sample, runs, 0))
    profiled, totals = device._guard(device.link.profile)
    if not totals or profiled <= 0:
        raise TinydeployError(f"the {device.firmware.engine} firmware on {device.runner.label} times no ops",
                              "flash it with --profile (a TFLM library compiled with TF_LITE_STRIP_ERROR_STRINGS "
                              "reports no op events: use one without it)", exit_code=EXIT_FAILED)
    if len(totals) != len(model.operators):
        raise TinydeployError(f"the device timed {len(totals)} ops; {model.name} has {len(model.operators)}",
                              "the firmware is from another model: flash again", exit_code=EXIT_FAILED)
    costs = op_costs(model)
    whole = sum(totals) or 1
    rows = []
    for index, (total, cost) in enumerate(zip(totals, costs)):
        counted = device.runner.instructions(total)  # over all profiled runs: finer than one run's microseconds
        rows.append(OpProfile(index, cost.op, total / profiled, cost.macs,
                              None if counted is None else round(counted / profiled), total / whole))
    return rows


@dataclass
class Device:
    """A firmware running on a board, started by the board's runner and reached over the serial protocol."""

    firmware: Firmware
    runner: Runner
    link: object  # tinydeploy.link.DeviceLink
    info: object  # tinydeploy.link.DeviceInfo
    log: Log = field(default=_quiet)

    @classmethod
    def start(cls, firmware: Firmware, runner: Runner, log: Log = _quiet, ready_timeout: float = 30.0) -> Device:
        from tinydeploy.link import DeviceLink

        try:
            url = runner.run(firmware, log)
            link = DeviceLink(url, firmware.board.baud)
        except BaseException:
            runner.stop()
            raise
        try:
            info = cls._ready(link, runner, ready_timeout)
            if not firmware.model.sha256.startswith(info.model_hash):
                raise TinydeployError(f"{runner.label} runs another model (hash {info.model_hash})",
                                      "the upload may have failed; flash again", exit_code=EXIT_FAILED)
        except BaseException:
            link.close()
            runner.stop()
            raise
        log(f"ready: {info}")
        return cls(firmware, runner, link, info, log)

    @staticmethod
    def _ready(link, runner: Runner, timeout: float):
        try:
            return link.wait_ready(timeout)
        except TinydeployError:
            runner.check_alive()  # a board that stopped says why
            raise

    @property
    def target(self) -> Runner:
        return self.runner

    def close(self) -> None:
        self.link.close()
        self.runner.stop()

    def __enter__(self) -> Device:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _guard(self, action: Callable[[], object]):
        """Run an exchange; if it fails because the board stopped (QEMU died), say that instead."""
        try:
            return action()
        except TinydeployError:
            self.runner.check_alive()
            raise

    def infer(self, data: bytes, quiet: bool = False) -> bytes:
        """One inference of a single-input, single-output model: raw bytes in and out (see infer_tensors); logged
        unless `quiet` (a data set's thousands of samples)."""
        output = self._guard(lambda: infer(self.link, data))
        if not quiet:
            self.log(f"infer {data[:16].hex()}{'...' if len(data) > 16 else ''} -> {output[:16].hex()}")
        return output

    def infer_tensors(self, tensors: list[bytes]) -> list[bytes]:
        """One inference: one bytes per input tensor in, one per output tensor out."""
        outputs = self._guard(lambda: infer_tensors(self.link, tensors))
        self.log(f"infer {len(tensors)} input tensor(s) -> {' '.join(o[:8].hex() for o in outputs)}")
        return outputs

    def run(self, inputs: list) -> list:
        """The output for each input: bytes -> bytes for a single-tensor model, else one list of tensors for each
        list of input tensors."""
        return [self.infer(data) if isinstance(data, (bytes, bytearray)) else self.infer_tensors(data)
                for data in inputs]

    def compare_with_host(self, count: int = 5, seed: int = 0) -> list[int]:
        """Run `count` random inputs here and on host TFLM; the indices of those where any output tensor differs."""
        from tinydeploy.golden import random_samples, tflm_sample_outputs

        model = self.firmware.model
        samples = random_samples(model, count, seed=seed)
        expected = tflm_sample_outputs(model, samples)
        got = [self.infer_tensors(sample) for sample in samples]
        mismatches = [i for i, (a, b) in enumerate(zip(got, expected)) if a != b]
        self.log(f"{count} inputs compared with host TFLM: {len(mismatches)} differ")
        return mismatches

    def bench(self, runs: int = 20, warmup: int = 2, data=None) -> BenchResult:
        """Time `runs` inferences after `warmup` untimed ones, on `data` (bytes, or one bytes per input tensor) or
        a fixed random input."""
        from tinydeploy.golden import random_samples

        data = data if data is not None else random_samples(self.firmware.model, 1, seed=0)[0]
        stats = LatencyStats(tuple(self._guard(lambda: timed_runs(self.link, data, runs, warmup))))
        self.log(f"bench {runs} runs after {warmup} warm-ups: {stats.as_dict()} us")
        return BenchResult(stats, runs, warmup, self.runner.caps.emulated)

    def ram(self) -> RamUsage:
        report = self._guard(self.link.ram)
        usage = RamUsage(self.firmware.static_ram_bytes, report.stack_high_water, report.heap_high_water,
                         report.activation_bytes, self.firmware.board.ram_bytes)
        self.log(f"ram: {usage}")
        return usage

    def used_bytes(self) -> int:
        """The RAM the engine reports in use (TFLM: arena_used_bytes())."""
        return self._guard(self.link.ram).used_bytes

    def measure(self, golden_count: int, runs: int, warmup: int, progress: Progress = _quiet) -> RunMeasurement:
        return self._guard(lambda: measure_on_device(self.link, self.firmware.model, golden_count, runs, warmup,
                                                     progress))

    def command(self, raw: str, timeout: float | None = None) -> list[str]:
        """A raw protocol command (e.g. "run 3 1"); reply payloads, the final ok/err last."""
        lines = self._guard(lambda: self.link.command(raw, timeout))
        self.log(f"> {raw}\n" + "\n".join(f"< {line}" for line in lines))
        return lines


@dataclass
class DeviceTiming:
    """A device that already runs a tinydeploy firmware, timed (monitor, bench --protocol tinydeploy)."""

    info: object  # tinydeploy.link.DeviceInfo
    input: list[bytes]  # one bytes per input tensor
    latency_us: LatencyStats
    outputs: list[bytes]  # every output tensor of one inference on `input`
    ram: object  # tinydeploy.link.RamReport
    op_us: list[float] | None = None  # a profiling build: each op's µs per inference over the timed runs

    @property
    def output(self) -> bytes:
        return self.outputs[0]


def split_input(data: bytes, sizes: list[int]) -> list[bytes]:
    """One input file for a model with several inputs: the tensors' bytes one after another, in model order."""
    if len(data) != sum(sizes):
        raise TinydeployError(f"the input has {len(data):,} bytes; the device's input tensors take "
                              f"{' + '.join(f'{size:,}' for size in sizes)} B",
                              "give the input tensors' raw bytes one after another, in the model's order")
    pieces, offset = [], 0
    for size in sizes:
        pieces.append(data[offset:offset + size])
        offset += size
    return pieces


def time_running_device(port: str, baud: int, runs: int, warmup: int, data=None,
                        timeout: float | None = None, ready_timeout: float = 10.0) -> DeviceTiming:
    """Identify, time `runs` inferences on `data` (bytes: the input tensors one after another; or one bytes per
    tensor; default: fixed random bytes of the inputs' sizes), read the outputs of one inference on it, read RAM."""
    import random

    from tinydeploy.link import DeviceLink

    options = {} if timeout is None else {"timeout": timeout}
    with DeviceLink(port, baud, **options) as link:
        info = link.wait_ready(ready_timeout)
        sizes = [spec.bytes for spec in info.inputs]
        if data is None:  # any input will do for timing; a fixed seed keeps runs comparable
            source = random.Random(0)
            tensors = [source.randbytes(size) for size in sizes]
        elif isinstance(data, (bytes, bytearray)):
            tensors = split_input(bytes(data), sizes)
        else:
            tensors = list(data)
        stats = LatencyStats(tuple(timed_runs(link, tensors, runs, warmup)))
        profiled, totals = link.profile()  # of those runs (steps=0 unless the firmware times its ops)
        outputs = link.infer(tensors)  # an output of the loaded input: the timed runs consumed it
        ram = link.ram()
    op_us = [total / profiled for total in totals] if totals and profiled > 0 else None
    return DeviceTiming(info, tensors, stats, outputs, ram, op_us)


# ---- flash: the whole loop -----------------------------------------------------------------------------------


@dataclass
class ReplayReport:
    """A recording replayed through the virtual board's sensors into the model, window by window, beside host
    TFLM on the same inputs (the sensors are simulated: the data come from the stimulus file)."""

    stimulus: Path
    sensor: str
    description: str
    outputs: list[bytes]
    expected: list[bytes]
    top: list[int]  # the board's highest-scoring output per window
    ended_early: bool = False  # the board's sensor ran dry before the host expected it to

    @property
    def mismatches(self) -> list[int]:
        return [i for i, (a, b) in enumerate(zip(self.outputs, self.expected)) if a != b]

    @property
    def matches(self) -> bool:
        return not self.ended_early and len(self.outputs) == len(self.expected) and not self.mismatches

    def to_json(self) -> dict:
        return {"file": str(self.stimulus), "sensor": self.sensor, "simulated": True, "data": self.description,
                "windows": len(self.expected), "windows_run": len(self.outputs), "outputs_match": self.matches,
                "mismatched_windows": self.mismatches, "top": self.top,
                "outputs": [output.hex() for output in self.outputs]}


def replay_stimulus(device: Device, stimulus, mapping, progress: Progress = _quiet) -> ReplayReport:
    """Each window of the recording: the board fills the model's input from its sensor (`sense`), runs it, and its
    output is compared with host TFLM's on the input the host computes the same way."""
    import numpy as np

    from tinydeploy.golden import tflm_outputs
    from tinydeploy.link.sensors import sense
    from tinydeploy.sensors.stimulus import input_window_count, input_windows

    model = device.firmware.model
    elements = int(np.prod(model.tensors[model.inputs[0]].shape))
    count = input_window_count(mapping, stimulus, elements)
    inputs = input_windows(mapping, stimulus, elements, count)
    expected = tflm_outputs(model, inputs)
    outputs, ended = [], False
    for index in range(count):
        progress(f"replaying {mapping.sensor} window {index + 1}/{count}")
        if not device._guard(lambda: sense(device.link)):
            ended = True
            break
        device._guard(lambda: device.link.run(1, 0))
        outputs.append(device._guard(device.link.read_output))
    dtype = np.dtype(model.tensors[model.outputs[0]].dtype)
    top = [int(np.argmax(np.frombuffer(output, dtype=dtype))) for output in outputs]
    return ReplayReport(stimulus.path, mapping.sensor, stimulus.describe(), outputs, expected, top, ended)


# The identity reply lists each tensor's size and type (up to ~24 characters) in one line of at most 4,096 bytes
# (tinydeploy.link.framing.MAX_REPLY_LINE).
MAX_PROTOCOL_TENSORS = 150


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
    emulated: bool = False  # latency is emulated time (the runner's caps)
    instructions: int | None = None  # per inference, where the runner counts them
    timing_note: str = ""  # how to read the latency, from the runner
    replay: ReplayReport | None = None  # --stimulus: the recording through the simulated sensors
    profile: list[OpProfile] | None = None  # --profile: each op's time on the device
    accuracy: object | None = None  # --data: tinydeploy.accuracy.AccuracyReport

    @property
    def passed(self) -> bool:
        return self.run.outputs_match and (self.replay is None or self.replay.matches) and \
            (self.accuracy is None or self.accuracy.passed)

    @property
    def ram_bytes(self) -> int:
        # .data+.bss already hold the native engine's activation buffer (or TFLM's arena): add stack and heap.
        return self.static_ram_bytes + self.run.stack_bytes + self.run.heap_bytes

    @property
    def latency(self) -> LatencyStats:
        return LatencyStats(tuple(self.run.latencies_us))

    def to_json(self) -> dict:
        latency = self.latency
        return {
            "board": self.board.name,
            "engine": self.engine,
            "model": self.model.name,
            "model_sha256": self.model.sha256,
            "project_dir": str(self.project_dir),
            "latency_us": int(latency.median),
            "latency_us_p95": latency.p95,
            "latency_us_min": latency.min,
            "latencies_us": list(latency.samples),
            "latency_emulated": self.emulated,
            # emulated instructions per inference (QEMU -icount), an estimate of M4 cycles; None on a real clock
            "instructions": self.instructions,
            "runs": len(latency.samples),
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
            # golden sample -> the output tensors (model order) that differed from host TFLM's
            "mismatched_tensors": {str(k): v for k, v in self.run.mismatched_tensors.items()},
            "device": self.run.device,
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
            **({"stimulus": self.replay.to_json()} if self.replay is not None else {}),
            **({"profile": [row.to_json() for row in self.profile]} if self.profile is not None else {}),
            **({"accuracy": self.accuracy.to_json()} if self.accuracy is not None else {}),
        }


def flash_model(model: TfliteModel, board: Board, engine: str, out_dir: Path | None, force: bool,
                port: str | None, golden_count: int, runs: int, warmup: int,
                progress: Progress, stage_seconds: dict[str, float] | None = None,
                skip_fit_check: bool = False, tflm_lib: str | Path | None = None,
                calibrate_arena: bool = False, fast_kernels: bool = True,
                stimulus: Path | None = None, runner: Runner | None = None, data: Path | None = None,
                float_source: Path | None = None, on_sample=None,
                profile: bool = False) -> FlashReport:
    """The whole loop on the board's runner, or on `runner` (a board chosen by an option, e.g. a farm's place).
    `data`: a data set run sample by sample on the device beside host int8 and, when `float_source` is the float
    model the int8 one was converted from, the float model (tinydeploy.accuracy); `on_sample(done, total)` follows
    the device's progress through it."""
    from tinydeploy.locking import project_lock

    directory = Path(out_dir or default_project_dir(model, board, _engine(engine, board).name))
    # one tinydeploy at a time in a project directory, from generation to the end of the run: another one
    # regenerating or rebuilding it meanwhile would put its model on this run's board
    with project_lock(directory):
        return _flash_model(model, board, engine, directory, force, port, golden_count, runs, warmup, progress,
                            stage_seconds, skip_fit_check, tflm_lib, calibrate_arena, fast_kernels, stimulus,
                            runner, data, float_source, on_sample, profile)


def _flash_model(model: TfliteModel, board: Board, engine: str, out_dir: Path, force: bool,
                 port: str | None, golden_count: int, runs: int, warmup: int,
                 progress: Progress, stage_seconds: dict[str, float] | None, skip_fit_check: bool,
                 tflm_lib: str | Path | None, calibrate_arena: bool, fast_kernels: bool,
                 stimulus: Path | None, runner: Runner | None, data: Path | None, float_source: Path | None,
                 on_sample, profile: bool) -> FlashReport:
    stages = stage_seconds if stage_seconds is not None else {}
    if len(model.inputs) + len(model.outputs) > MAX_PROTOCOL_TENSORS:
        raise TinydeployError(
            f"{model.name} has {len(model.inputs)} inputs and {len(model.outputs)} outputs; the serial protocol's "
            f"identity line lists at most {MAX_PROTOCOL_TENSORS} tensors",
            "write the project with `tinydeploy generate` and reach the tensors through td_engine_input_tensor()/"
            "td_engine_output_tensor() (firmware/include/td_engine.h)")
    chosen = _engine(engine, board)
    if profile and not chosen.profiles_ops:
        raise TinydeployError(f"--profile times each op; the {chosen.name} engine has no per-op profile",
                              "add --engine native or --engine tflm, or leave out --profile")
    options = EngineOptions(fast_kernels=fast_kernels, tflm_lib=tflm_lib, profile=profile)
    runner = runner or runner_for(board, port)
    app = replay = mapping = None
    if stimulus is not None:  # checked before anything is built
        app, replay, mapping = _replay_setup(model, board, runner, stimulus)
    dataset = prepared = None
    if data is not None:  # checked before anything is built
        from tinydeploy.accuracy import load_dataset, prepare

        dataset = load_dataset(data)
        prepared = prepare(model, dataset)
    if calibrate_arena:
        if not chosen.measures_arena:
            raise TinydeployError(f"--calibrate-arena is for the TFLM engine (the {chosen.name} engine plans its "
                                  "memory exactly)", "add --engine tflm, or leave out --calibrate-arena")
        started = time.monotonic()
        calibrate_on_board(chosen, model, board, options, out_dir, force, port, progress, runner)
        stages["calibrate"] = time.monotonic() - started
    progress("generating the project")
    firmware = build_firmware(model, board, chosen, out_dir, force=force, options=options,
                              fit_check=not skip_fit_check, stages=stages, progress=progress, app=app)
    started = time.monotonic()
    replayed = profiled = accuracy = None
    if prepared is not None:
        from tinydeploy.accuracy import float_outputs, host_outputs

        progress(f"running the {len(prepared.inputs)} samples of {data} on host TFLM")
        host_raw = host_outputs(model, prepared)
        float_values, float_note = (None, "no float model (an int8 model was given)")
        if float_source is not None and prepared.values is None:
            float_note = "not run: the data set holds quantized int8 inputs, the float model takes real values"
        elif float_source is not None:
            float_values, float_note = float_outputs(float_source, prepared.values, progress)
        stages["host"] = time.monotonic() - started
        started = time.monotonic()
    with Device.start(firmware, runner, progress) as device:
        measurement = device.measure(golden_count, runs, warmup, progress)
        if profile:
            from tinydeploy.golden import random_samples

            progress(f"profiling {runs} runs")
            profiled = profile_on_device(device, random_samples(model, 1, seed=0)[0], runs)
        if replay is not None:
            replayed = replay_stimulus(device, replay, mapping, progress)
        if prepared is not None:
            from tinydeploy.accuracy import compare, run_on_device

            progress(f"running the {len(prepared.inputs)} samples of {data} on the device")
            device_raw = run_on_device(lambda sample: device.infer(sample, quiet=True), prepared, on_sample)
            accuracy = compare(model, dataset, prepared, host_raw, device_raw, chosen.name, chosen.bit_exact,
                               float_values, float_note)
    stages["run"] = time.monotonic() - started
    median = int(statistics.median(measurement.latencies_us))
    return FlashReport(board, chosen.name, model, firmware.project_dir, firmware.flash_bytes,
                       firmware.static_ram_bytes, measurement, stages, runner.caps.emulated,
                       runner.instructions(median), runner.timing_note(), replayed, profile=profiled,
                       accuracy=accuracy)


def _replay_setup(model: TfliteModel, board: Board, runner: Runner, path: Path):
    """For --stimulus: the kit's sensor driver with the model's input mapping, the recording attached to the
    board's simulated sensors."""
    from tinydeploy.emit.kit import kit_part
    from tinydeploy.kits import kit_for_board
    from tinydeploy.sensors.stimulus import StimulusSource, input_mapping, load_stimulus

    if not runner.caps.simulated_sensors and runner.location:
        raise TinydeployError(f"--stimulus feeds recorded sensor data to a virtual board on this machine; "
                              f"{runner.label}'s board hangs off {runner.location}, another machine",
                              "leave out --place (a virtual board here takes the recording)")
    if not runner.caps.simulated_sensors:
        raise TinydeployError(f"--stimulus feeds recorded sensor data to simulated sensors; {board.name}'s are real",
                              "use --board virtual (the virtual board's sensors take recordings)")
    stimulus = load_stimulus(path)
    mapping = input_mapping(model, stimulus)
    kit = kit_for_board(board.name)
    runner.attach_sensors(StimulusSource(stimulus))
    return kit_part(kit, kit.revision(stimulus.revision), mapping), stimulus, mapping


# ---- RAM measured on a device (engines with measures_arena: the TFLM arena) ------------------------------------


def calibrate_on_board(engine: Engine, model: TfliteModel, board: Board, options: EngineOptions,
                       out_dir: Path | None, force: bool, port: str | None, progress: Progress,
                       runner: Runner | None = None) -> int:
    """Builds once with a generous arena, reads the bytes used from the device and keeps the figure for this model,
    board and library version; returns the used bytes. The next plan of the model uses that figure."""
    options = engine.calibration_options(model, board, options)
    progress(f"calibration build with a {options.arena.arena_bytes:,} B arena")
    firmware = build_firmware(model, board, engine, out_dir, force=force, options=options, fit_check=False,
                              measure=False, progress=progress)
    with Device.start(firmware, runner or runner_for(board, port), progress) as device:
        used = device.used_bytes()
    reserved = firmware.plan.ram_bytes
    if used <= 0 or used > reserved:
        raise TinydeployError(f"the device reported {used} B of arena used (of {reserved} B)",
                              "the firmware did not start its engine; check its serial output", exit_code=1)
    engine.store_measurement(firmware.plan, used)
    progress(f"the device used {used:,} B of the arena")
    return used


def _measure_on_virtual_board(progress: Progress | None):
    """The `measure` an engine's plan may call: calibrate_on_board on the virtual board, in one project per library
    version kept in tinydeploy's own state (the library compiles once, ~2-3 min; later models rebuild only their
    own files)."""
    def measure(engine: Engine, model: TfliteModel, options: EngineOptions) -> int:
        return measure_on_virtual_board(engine, model, options, progress)
    return measure


def measure_on_virtual_board(engine: Engine, model: TfliteModel, options: EngineOptions,
                             progress: Progress | None = None) -> int:
    import sys

    from tinydeploy.boards import get_board
    from tinydeploy.fsutil import write_error
    from tinydeploy.locking import file_lock
    from tinydeploy.tflm.arena import VIRTUAL_BOARD
    from tinydeploy.tflm.library import tflm_arena_workspace

    def say(message: str) -> None:
        if progress is not None:
            progress(message)
        elif not message.startswith("build: "):
            print(f"tinydeploy: {message}", file=sys.stderr, flush=True)

    workspace = tflm_arena_workspace(options.tflm_lib)
    say("measuring the TFLM arena on the virtual board (the first time compiles the library: minutes)")
    with file_lock(workspace.parent / f"{workspace.name}.lock", f"the TFLM measurement workspace {workspace}"):
        try:
            workspace.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(exc, workspace, "create the measurement workspace") from exc
        return calibrate_on_board(engine, model, get_board(VIRTUAL_BOARD), options, workspace / "project", True,
                                  None, say)


def tflm_arena(model: TfliteModel, board: Board, tflm_lib: str | Path | None = None,
               progress: Progress | None = None):
    """The TFLM sketch's arena (an ArenaSizing) as a build would get it, measuring on the virtual board first
    where that holds for the board and a local library and QEMU are at hand."""
    from tinydeploy.tflm.library import resolve_tflm_library

    engine = get_engine("tflm")
    options = EngineOptions(tflm_lib=tflm_lib)
    return engine.arena(model, board, resolve_tflm_library(tflm_lib), options, _measure_on_virtual_board(progress))
