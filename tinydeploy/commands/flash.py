from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import typer

from tinydeploy.errors import EXIT_FAILED, EXIT_OK, TinydeployError

# Options shared by flash and generate.
MODEL_ARGUMENT = typer.Argument(..., metavar="MODEL", help="Keras (.keras, .h5), SavedModel dir, .onnx, PyTorch "
                                ".pt2 or module:function, or .tflite.")
BOARD_OPTION = typer.Option("virtual", "--board", "-b", help="Board profile (see `tinydeploy boards`).")
ENGINE_OPTION = typer.Option(None, "--engine", "-e", help="native or tflm (default: the board's).")
OUT_OPTION = typer.Option(None, "--out", "-o", help="Project directory (default: build/<model>-<board>-<engine>).")
FORCE_OPTION = typer.Option(False, "--force", help="Overwrite files in --out that tinydeploy did not write.")
CALIB_OPTION = typer.Option(None, "--calib", help="Calibration data when converting: .npy/.npz or 'random'.")
TFLM_LIB_OPTION = typer.Option(None, "--tflm-lib", help="Local copy of the Arduino TFLM library "
                               "(tflite-micro-arduino-examples) instead of PlatformIO's download; "
                               "default: $TINYDEPLOY_TFLM_LIB.")
KERNELS_OPTION = typer.Option("fast", "--kernels", help="Native engine: 'fast' (Cortex-M4 DSP kernels where a "
                              "layer allows, chosen per layer) or 'reference' (the portable oracle kernels).")
KERNEL_CHOICES = ("fast", "reference")
PLACE_OPTION = typer.Option(None, "--place", help="A labgrid place: a board on another machine of the farm (see "
                            "README, Board farm); acquired for the run, released after.")
COORDINATOR_OPTION = typer.Option(None, "--coordinator", metavar="HOST:PORT", help="labgrid coordinator of --place "
                                  "(default: $LG_COORDINATOR, else 127.0.0.1:20408).")
PLACE_TIMEOUT_OPTION = typer.Option(300.0, "--place-timeout", min=0.0, help="Seconds to wait while --place is busy.")


def _place_runner(place: str, coordinator: str | None, board_name: str | None, timeout: float):
    from tinydeploy.boards import get_board
    from tinydeploy.runners import runner_for_place

    return runner_for_place(place, coordinator, get_board(board_name) if board_name else None, timeout)


@contextmanager
def serial_target(port: str | None, place: str | None, coordinator: str | None, timeout: float):
    """The serial URL of a running device: --port as given, or --place's board through labgrid (acquired for the
    block, released after, Ctrl-C included)."""
    import sys

    if bool(port) == bool(place):
        raise TinydeployError("give either --port or --place", "--port for a board here, --place for one in a farm")
    if port:
        yield port
        return
    runner = _place_runner(place, coordinator, None, timeout)
    try:
        yield runner.attach(lambda message: print(f"tinydeploy: {message}", file=sys.stderr, flush=True))
    finally:
        runner.stop()


def _check_kernels(kernels: str, engine: str) -> bool:
    """True for fast kernels; refuses a kernel choice the engine does not have."""
    from tinydeploy.engines import get_engine

    if kernels not in KERNEL_CHOICES:
        raise TinydeployError(f"unknown kernel set '{kernels}'", f"use one of: {', '.join(KERNEL_CHOICES)}")
    if kernels != "fast" and not get_engine(engine).chooses_kernels:
        raise TinydeployError(f"--kernels chooses the native engine's kernels; {engine} brings its own",
                              "add --engine native, or leave out --kernels")
    return kernels == "fast"


def _resolve(board_name: str, engine: str | None):
    from tinydeploy.boards import get_board
    from tinydeploy.engines import get_engine

    board = get_board(board_name)
    engine = engine or board.default_engine
    get_engine(engine)  # refuses an unknown engine
    return board, engine


def _progress_reporter(console, status):
    """Progress on the spinner in a terminal; elsewhere (CI logs, pipes) one plain `tinydeploy:` line per
    stage on stderr, the build's own output condensed to one line."""
    import sys

    plain = not console.is_terminal
    building = False

    def progress(message: str) -> None:
        nonlocal building
        status.update(message[:120])
        if not plain:
            return
        if message.startswith("build: "):
            if building:
                return
            message = "building the firmware with PlatformIO"
        building = message.startswith("building")
        print(f"tinydeploy: {message}", file=sys.stderr, flush=True)

    return progress


def _check_plot(path: Path) -> None:
    """Before anything is built: matplotlib is there and can write this kind of image."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise TinydeployError("--plot needs matplotlib, which is not installed",
                              "pip install matplotlib (a tinydeploy dependency), or leave out --plot") from None
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise TinydeployError(f"--plot {path}: unknown image type '{path.suffix}'", "name a .png, .svg or .pdf file")


def _sample_progress(console, status):
    """A progress bar over the data set's samples on the spinner line in a terminal; elsewhere a plain line at
    every tenth."""
    import sys

    from rich.progress_bar import ProgressBar
    from rich.table import Table

    def on_sample(done: int, total: int) -> None:
        if console.is_terminal:
            grid = Table.grid(padding=(0, 1))
            grid.add_row("device: sample", ProgressBar(total=total, completed=done, width=40), f"{done}/{total}")
            status.update(grid)
        elif done == total or done % max(1, total // 10) == 0:
            print(f"tinydeploy: device: sample {done}/{total}", file=sys.stderr, flush=True)

    return on_sample


def flash(
    model_path: Path = MODEL_ARGUMENT,
    board_name: str = typer.Option(None, "--board", "-b", help="Board profile (see `tinydeploy boards`; default: "
                                   "virtual, or the board of --place)."),
    engine: str = ENGINE_OPTION,
    out: Path = OUT_OPTION,
    force: bool = FORCE_OPTION,
    calib: str = CALIB_OPTION,
    port: str = typer.Option(None, "--port", help="Serial port of a real board."),
    place: str = PLACE_OPTION,
    coordinator: str = COORDINATOR_OPTION,
    place_timeout: float = PLACE_TIMEOUT_OPTION,
    runs: int = typer.Option(20, "--runs", help="Timed inferences (at most the firmware's TD_PROTOCOL_MAX_RUNS)."),
    warmup: int = typer.Option(2, "--warmup", help="Untimed inferences before them (at most TD_PROTOCOL_MAX_WARMUP)."),
    samples: int = typer.Option(5, "--samples", min=1, max=1_000, help="Golden inputs compared with host TFLM."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    skip_fit_check: bool = typer.Option(False, "--skip-fit-check", help="Build even if the estimate says it "
                                        "does not fit (the linker decides)."),
    tflm_lib: Path = TFLM_LIB_OPTION,
    calibrate_arena: bool = typer.Option(False, "--calibrate-arena", help="TFLM: build once with a generous arena, "
                                         "read the bytes used on the device, rebuild with that plus a margin "
                                         "(cached per model, board and library version)."),
    kernels: str = KERNELS_OPTION,
    report_path: Path = typer.Option(None, "--report", help="Also write the run as one self-contained HTML page "
                                     "(fit, memory plan, latency, outputs check, versions)."),
    stimulus: Path = typer.Option(None, "--stimulus", help="Virtual board: replay this recording (.npz or .wav, "
                                  "docs/stimulus.md) through the simulated sensors into the model, window by window, "
                                  "and compare each output with host TFLM."),
    profile: bool = typer.Option(False, "--profile", help="Time each op on the device (native engine: a build "
                                 "that reads the clock between ops; TFLM: through its profiler interface; the "
                                 "latencies include those reads) and print the per-layer table."),
    data: Path = typer.Option(None, "--data", help="A test set (.npz with arrays x and optional y, or a folder of "
                              ".npy): run every sample on the device and report accuracy beside host int8 and the "
                              "float model (when MODEL is one), the confusion matrix and the samples that differ."),
    plot: Path = typer.Option(None, "--plot", help="With --profile: draw the time of each op; with --data: the "
                              "confusion matrices; into this image (.png, .svg, .pdf; needs matplotlib)."),
) -> int:
    """Convert, check the fit, generate, build, start the board and measure it over serial."""
    from rich.console import Console

    from tinydeploy.flow import flash_model, load_model_for_flash
    from tinydeploy.report import render_flash

    from tinydeploy.link.limits import check_run_counts

    check_run_counts(runs, warmup)
    if port and place:
        raise TinydeployError("give either --port or --place", "--port for a board here, --place for one in a farm")
    runner = _place_runner(place, coordinator, board_name, place_timeout) if place else None
    board, engine = _resolve(runner.board.name if runner else board_name or "virtual", engine)
    fast_kernels = _check_kernels(kernels, engine)
    from tinydeploy.fsutil import check_output_path

    if report_path is not None:
        check_output_path(report_path, force)
    if plot is not None:
        if (data is None) == (not profile):
            raise TinydeployError("--plot draws one chart: the per-op times of --profile or the confusion matrix "
                                  "of --data" + (", and both were given" if profile else ", and neither was given"),
                                  "keep one of --profile and --data with --plot" if profile else
                                  "add --profile or --data test.npz")
        _check_plot(plot)
        check_output_path(plot, force)
    conversion: dict = {}
    console = Console(stderr=True)
    with console.status("starting") as status:
        progress = _progress_reporter(console, status)
        stages: dict[str, float] = {}
        import time

        started = time.monotonic()
        model = load_model_for_flash(model_path, calib, progress,
                                     warn=lambda text: console.print(f"[yellow]warning:[/] {text}"),
                                     conversion=conversion, engine=engine)
        stages["convert"] = time.monotonic() - started
        if plot is not None and data is not None:
            from tinydeploy.accuracy import load_dataset, prepare

            if prepare(model, load_dataset(data)).kind != "classifier":
                raise TinydeployError(f"--plot draws a confusion matrix, and {data} has no class labels",
                                      "give integer class labels as y, or leave out --plot")
        float_source = model_path if conversion and not conversion.get("passthrough", True) else None
        report = flash_model(model, board, engine, out, force, port, samples, runs, warmup, progress, stages,
                             skip_fit_check, tflm_lib=tflm_lib, calibrate_arena=calibrate_arena,
                             fast_kernels=fast_kernels, stimulus=stimulus, runner=runner, data=data,
                             float_source=float_source, on_sample=_sample_progress(console, status),
                             profile=profile)
        if plot is not None and report.accuracy is not None:
            from tinydeploy.accuracy import plot_confusion

            progress(f"drawing the confusion matrices into {plot}")
            plot_confusion(report.accuracy, plot)
        if plot is not None and report.profile:
            from tinydeploy.report import plot_profile, profile_title

            progress(f"drawing the per-op times into {plot}")
            plot_profile(report.profile, plot, profile_title(report))
        if report_path is not None:
            from tinydeploy.htmlreport import write_flash_report

            progress(f"writing the report {report_path}")
            write_flash_report(report_path, report.to_json(), model, board, engine, conversion or None)
    if as_json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        render_flash(report, Console())
        if report.accuracy is not None:
            from tinydeploy.accuracy import render_accuracy

            render_accuracy(report.accuracy, Console())
        if report_path is not None:
            Console().print(f"report written to {report_path}")
        if plot is not None:
            Console().print(f"{'per-op times' if profile else 'confusion matrices'} drawn into {plot}")
    return EXIT_OK if report.passed else EXIT_FAILED


def generate(
    model_path: Path = MODEL_ARGUMENT,
    board_name: str = BOARD_OPTION,
    engine: str = ENGINE_OPTION,
    out: Path = OUT_OPTION,
    force: bool = FORCE_OPTION,
    calib: str = CALIB_OPTION,
    tflm_lib: Path = TFLM_LIB_OPTION,
    kernels: str = KERNELS_OPTION,
    layout: str = typer.Option("platformio", "--format", help="platformio (a PlatformIO project) or arduino (an "
                               "Arduino IDE 2 / arduino-cli sketch folder of the same sources; --out names the "
                               "sketch)."),
) -> None:
    """Write the firmware project for a model and stop (no build, no board)."""
    from rich.console import Console

    from tinydeploy.engines import get_engine
    from tinydeploy.flow import generate_project, load_model_for_flash

    from tinydeploy.emit.arduino import check_format

    board, engine = _resolve(board_name, engine)
    fast_kernels = _check_kernels(kernels, engine)
    check_format(layout, board)  # before a conversion
    console = Console()
    model = load_model_for_flash(model_path, calib, lambda message: None,
                                 warn=lambda text: Console(stderr=True).print(f"[yellow]warning:[/] {text}"),
                                 engine=engine)
    project = generate_project(model, board, engine, out, force, tflm_lib=tflm_lib, fast_kernels=fast_kernels,
                               measure=True, layout=layout)
    if layout == "arduino":
        console.print(f"wrote the sketch {project.directory}/{project.directory.name}.ino and "
                      f"{len(project.files) - 1} files beside it (open it in the Arduino IDE, or: arduino-cli "
                      f"compile --profile {board.name} {project.directory}; see its README.md)")
    else:
        console.print(f"wrote {len(project.files)} files to {project.directory} "
                      f"(build with: pio run -d {project.directory} -e {project.env_name})")
    for line in get_engine(engine).describe(project.plan):
        console.print(line)


def monitor(
    port: str = typer.Option(None, "--port", help="Serial port or URL (e.g. /dev/ttyACM0, socket://127.0.0.1:PORT)."),
    place: str = PLACE_OPTION,
    coordinator: str = COORDINATOR_OPTION,
    place_timeout: float = PLACE_TIMEOUT_OPTION,
    baud: int = typer.Option(115_200, "--baud", help="Baud rate."),
    runs: int = typer.Option(20, "--runs", help="Timed inferences (at most the firmware's TD_PROTOCOL_MAX_RUNS)."),
    warmup: int = typer.Option(2, "--warmup", help="Untimed inferences before them (at most TD_PROTOCOL_MAX_WARMUP)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Talk to a device that already runs a tinydeploy firmware: identify, time it, read its RAM."""
    from rich.console import Console
    from rich.table import Table

    from tinydeploy.flow import time_running_device
    from tinydeploy.link.limits import check_run_counts

    check_run_counts(runs, warmup)
    with serial_target(port, place, coordinator, place_timeout) as url:
        timing = time_running_device(url, baud, runs, warmup, ready_timeout=10.0)
    ram = timing.ram
    info = {k: v for k, v in vars(timing.info).items() if k not in ("inputs", "outputs")}
    tensors = {side: [{"bytes": spec.bytes, "dtype": spec.dtype} for spec in getattr(timing.info, side)]
               for side in ("inputs", "outputs")}
    result = {"port": place or port, **info, **tensors,
              "latency_us": int(timing.latency_us.median), "latency_us_min": timing.latency_us.min,
              "runs": len(timing.latency_us.samples), "stack_bytes": ram.stack_high_water,
              "heap_bytes": ram.heap_high_water, "activation_bytes": ram.activation_bytes}
    if as_json:
        print(json.dumps(result, indent=2, default=str))
        return
    table = Table(title=f"device on {place or port}")
    table.add_column("field")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if key in tensors:
            value = ", ".join(f"{tensor['bytes']:,} B {tensor['dtype']}".strip() for tensor in value)
        table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    Console().print(table)
