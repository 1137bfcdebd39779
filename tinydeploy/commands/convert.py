from __future__ import annotations

from pathlib import Path

import typer


def convert(
    model_path: Path = typer.Argument(..., metavar="MODEL", help="Keras (.keras, .h5), SavedModel dir, .onnx, "
                                      "PyTorch .pt2 or module:function, or .tflite."),
    output: Path = typer.Option(..., "--output", "-o", help="Where to write the int8 .tflite."),
    calib: str = typer.Option(None, "--calib", help="Calibration inputs: a .npy/.npz file, or 'random' (ONNX and "
                              "PyTorch models: channels first as in PyTorch, or channels last)."),
    validate: Path = typer.Option(None, "--validate", help="Samples (.npy/.npz) to compare int8 and float on."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing output file."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Convert a model to a full-integer int8 TFLite model (int8 input and output, batch 1)."""
    from tinydeploy.model.convert import run_convert_command

    run_convert_command(model_path, output, calib, validate, force, as_json)
