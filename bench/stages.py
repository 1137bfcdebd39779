"""Wall time of each stage of `tinydeploy flash` on the virtual board, and the emulated latency.

    .venv/bin/python bench/stages.py [MODEL ...]

Without arguments: the sine model (trained here) and the MLPerf Tiny models in ../shared that the
native engine supports. Prints one row per model; numbers, not pass/fail.

With a local Arduino TFLM library ($TINYDEPLOY_TFLM_LIB), a second table: two TFLM projects built one after the
other (AD, then KWS), each in a new folder; the first compiles the library unless this machine did before
(tinydeploy.tflm.prebuilt), the second links it. The arena is not measured here (TINYDEPLOY_TFLM_MEASURE=0), so
the build column is the project's own build.
"""

from __future__ import annotations

import os
import re
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
    if not argv:
        tflm_projects(work)


def tflm_projects(work: Path) -> None:
    """Build seconds of two TFLM projects in new folders: the library compiled once, then linked."""
    from rich.console import Console
    from rich.table import Table

    from tinydeploy.boards import get_board
    from tinydeploy.errors import TinydeployError
    from tinydeploy.flow import flash_model
    from tinydeploy.model.tflite import load_tflite
    from tinydeploy.tflm.library import TFLM_LIB_ENV, TFLM_LIBRARY_NAME

    library = os.environ.get(TFLM_LIB_ENV)
    if not library:
        print(f"TFLM projects: skipped (set ${TFLM_LIB_ENV} to a local copy of the Arduino TFLM library)")
        return
    os.environ["TINYDEPLOY_TFLM_MEASURE"] = "0"
    table = Table(title="TFLM engine, new project folders on the virtual board (wall seconds)")
    for column in ("model", "library", "library compile", "project build", "outputs"):
        table.add_column(column, justify="left" if column in ("model", "library") else "right")
    for name in ("ad01_int8.tflite", "kws_ref_model.tflite"):
        if not (SHARED / name).exists():
            continue
        messages: list[str] = []
        stages: dict[str, float] = {}
        try:
            report = flash_model(load_tflite(SHARED / name), get_board("virtual"), "tflm", work / f"tflm-{name}",
                                 True, None, 2, 3, 1, messages.append, stages, tflm_lib=library)
        except TinydeployError as exc:
            table.add_row(name, "-", "-", "-", f"skipped: {exc.one_line()[:60]}")
            continue
        compiled = next((m for m in messages if m.startswith("TFLM library compiled")), "")
        log = (work / f"tflm-{name}" / ".pio" / "tinydeploy-build-virtual.log").read_text()
        own = sum(1 for line in log.splitlines() if re.match(rf"Compiling \S*/{TFLM_LIBRARY_NAME}/", line))
        how = (f"compiled ({compiled.split(':', 1)[1].split(' in ')[0].strip()})" if compiled
               else "linked (compiled before)") + (f", {own} files compiled in the project" if own else "")
        library_seconds = stages.get("library", 0.0)
        table.add_row(name, how, f"{library_seconds:.1f}" if compiled else "-", f"{stages.get('build', 0.0):.1f}",
                      "match" if report.to_json()["outputs_match"] else "DIFFER")
    Console().print(table)


if __name__ == "__main__":
    main(sys.argv[1:])
