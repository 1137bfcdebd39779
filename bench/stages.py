"""Wall time of each stage of `tinydeploy flash` on the virtual board, and the emulated latency.

    .venv/bin/python bench/stages.py [MODEL ...]

Without arguments: the sine model (trained here) and the MLPerf Tiny models in ../shared that the
native engine supports. Prints one row per model; numbers, not pass/fail.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "models" / "mlperf-tiny"


def main(argv: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from tinydeploy.boards import get_board
    from tinydeploy.errors import TinydeployError
    from tinydeploy.flow import flash_model, load_model_for_flash

    work = Path(tempfile.mkdtemp(prefix="tinydeploy-bench-"))
    models: list[tuple[Path, str | None]] = [(Path(p), None) for p in argv]
    if not models:
        sys.path.insert(0, str(REPO / "examples"))
        from sine_model import main as make_sine

        make_sine([str(work / "sine.keras"), str(work / "sine_calib.npy")])
        models.append((work / "sine.keras", str(work / "sine_calib.npy")))
        models += [(SHARED / name, None) for name in ("ad01_int8.tflite", "kws_ref_model.tflite",
                                                      "pretrainedResnet_quant.tflite", "vww_96_int8.tflite")
                   if (SHARED / name).exists()]
    board = get_board("virtual")
    table = Table(title="tinydeploy flash on the virtual board (wall seconds per stage)")
    for column in ("model", "convert", "generate", "build", "run", "emulated latency", "outputs"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for path, calib in models:
        stages: dict[str, float] = {}
        started = time.monotonic()
        try:
            model = load_model_for_flash(path, calib, lambda message: None)
            stages["convert"] = time.monotonic() - started
            report = flash_model(model, board, "native", work / path.stem, True, None, 3, 10, 1,
                                 lambda message: None, stages)
        except TinydeployError as exc:
            table.add_row(path.name, *[f"{stages.get(k, 0):.1f}" for k in ("convert", "generate", "build", "run")],
                          "-", f"skipped: {exc.one_line()[:60]}")
            continue
        data = report.to_json()
        table.add_row(path.name, *[f"{stages.get(k, 0):.1f}" for k in ("convert", "generate", "build", "run")],
                      f"{data['latency_us']:,} µs", "match" if data["outputs_match"] else "DIFFER")
    Console().print(table)
    print("Latency is emulated: QEMU -icount shift=4 (16 ns per instruction, ~64 MHz at one instruction per cycle).")


if __name__ == "__main__":
    main(sys.argv[1:])
