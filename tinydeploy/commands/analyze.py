from __future__ import annotations

import json
from pathlib import Path

import typer

from tinydeploy.errors import EXIT_FAILED, EXIT_OK, TinydeployError


def analyze(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="An int8 or float .tflite file."),
    board_name: str = typer.Option("virtual", "--board", "-b", help="Board profile (see `tinydeploy boards`)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    plot: Path = typer.Option(None, "--plot", help="Draw the activation memory per op into this image (.png)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Measure the TFLM arena again."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing --plot or --report file."),
    engine: str = typer.Option(None, "--engine", "-e", help="tflm (TFLite Micro's arena) or native (tinydeploy's "
                               "compiled engine and its memory plan); default: the board's, as flash (TFLM for a model it "
                               "does not run)."),
    kernels: str = typer.Option("fast", "--kernels", help="Native engine: 'fast' (DSP kernels where they fit, "
                                "chosen per layer, as flash) or 'reference'."),
    report_path: Path = typer.Option(None, "--report", help="Also write the analysis as one self-contained HTML "
                                     "page (fit bars, memory over the ops)."),
) -> int:
    """Ops, MACs, weights, the measured TFLM arena, and whether the model fits the board.

    Exits 0 when the model runs and fits, 1 when it does not fit or no engine runs it as it is, 2 on bad input."""
    from tinydeploy.commands.flash import _check_kernels, _resolve
    from tinydeploy.engines import EngineOptions, get_engine
    from tinydeploy.flow import analyze as analyze_model
    from tinydeploy.fsutil import check_output_path
    from tinydeploy.model.tflite import load_tflite

    board, resolved = _resolve(board_name, engine)
    options = EngineOptions(fast_kernels=_check_kernels(kernels, resolved))
    chosen = get_engine(engine) if engine is not None else None  # None: the board's, as flash
    is_saved_model = (model_path / "saved_model.pb").is_file()
    if is_saved_model or (model_path.is_file() and model_path.suffix.lower() in (".keras", ".h5", ".hdf5", ".onnx",
                                                                                   ".pt2")):
        raise TinydeployError(f"analyze reads .tflite models, not {model_path}",
                              f"convert it first: tinydeploy convert {model_path} -o model.tflite")
    if plot is not None:
        check_output_path(plot, force)
    if report_path is not None:
        check_output_path(report_path, force)
    model = load_tflite(model_path)
    result = analyze_model(model, board, chosen, use_cache=not no_cache, options=options)
    if plot is not None:
        from tinydeploy.analysis.plot import plot_memory

        plot_memory(result, plot)
    if report_path is not None:
        from tinydeploy.htmlreport import board_facts, report_data, write_report

        write_report(report_path, report_data(analysis=result.to_json(), board=board_facts(board)))
    if as_json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        from rich.console import Console

        from tinydeploy.report import render_analysis

        console = Console()
        render_analysis(result, console)
        if plot is not None:
            console.print(f"memory plot written to {plot}")
        if report_path is not None:
            console.print(f"report written to {report_path}")
    return EXIT_OK if result.verdict.fits and result.runs else EXIT_FAILED
