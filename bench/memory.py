"""Memory of the native engine, two tables.

    .venv/bin/python bench/memory.py [MODEL.tflite ...] [--tflm-lib PATH]

1. The plan (no build): native RAM against the liveness lower bound and TFLM's arena (the 32-bit estimate of
   tinydeploy.analysis, measured once per model, then cached: the first run takes minutes), for the four MLPerf
   Tiny models, then every model in ../shared/models/{mlperf-tiny-extra,tflm-examples} (TFLM's recurrent examples
   and the seanet int16x8 models included). Goals: native RAM <= the activation lower bound and <= 0.75 x TFLM's
   arena on the MLPerf Tiny models, below TFLM's arena on every model. Native RAM is the whole planned buffer
   (activations, scratch and the recurrent state kept between invokes, which the lower bound includes); parameters
   are const, in flash. A model the engine cannot run yet gets a row with the reason.
2. Flash and RAM on the virtual board, side by side (the four MLPerf Tiny models by default): the native engine
   with its fast kernels, with its reference kernels, and TFLM with CMSIS-NN (when a local copy of the Arduino TFLM
   library is given), next to X-CUBE-AI 9.0's published model memory. Every firmware is built and run (flash and
   RAM are the linker's and the device's figures; RAM is static + stack + heap). "constants" is the native engine's
   model data in flash (weights, biases, multipliers, shifts, parameter structs) against the model's int8 weights
   plus per-channel parameters (goal: at most 1.10x); "planned" the native activation buffer (goal: no more than
   before the fast kernels) or the arena TFLM used.
Prints numbers and the goals; never fails."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlperf import (ACTIVATION_BYTES_BEFORE, CONSTANTS_FACTOR, ENGINES, FIRMWARE_FACTOR, MODELS, REPO,  # noqa: E402
                    SHARED, XCUBE_9_FLASH, XCUBE_9_RAM, Run, bench_home, int8_parameter_bytes, key_of,
                    measure_engines, model_paths, print_results, tflm_lib_argument, without_options)

ALL_MODELS = REPO.parent / "shared" / "models"
EXAMPLES = ALL_MODELS / "tflm-examples"


def default_models() -> list[Path]:
    mlperf = [SHARED / f"{stem}.tflite" for stem in MODELS.values() if (SHARED / f"{stem}.tflite").exists()]
    return mlperf + sorted((ALL_MODELS / "mlperf-tiny-extra").glob("*.tflite")) + \
        sorted(EXAMPLES.glob("*.tflite")) + \
        sorted((EXAMPLES / "seanet").glob("*/*.tflite"), key=lambda p: (p.parent.name, len(p.name), p.name))


def plan_row(path: Path, workdir: Path) -> dict:
    from tinydeploy.analysis.analyze import tflm_arena
    from tinydeploy.analysis.memory import activation_profile
    from tinydeploy.engine import emit_native_sources
    from tinydeploy.engine.planner import variable_tensors
    from tinydeploy.errors import TinydeployError
    from tinydeploy.model.tflite import load_tflite

    try:
        model = load_tflite(path)
        plan = emit_native_sources(model, workdir / path.stem)
    except TinydeployError as exc:
        return {"model": path.stem, "refused": exc.message}
    arena, _ = tflm_arena(model)
    state = sum(model.tensors[t].nbytes for t in variable_tensors(model))
    return {"model": path.stem, "lower_bound": activation_profile(model).peak_bytes + state,
            "native_ram": plan.activation_bytes, "tflm_arena": arena.target_bytes,
            "native_flash": plan.flash_bytes, "tflite_bytes": model.size_bytes,
            "in_place": sum(step.placement == "in place" for step in plan.steps),
            "overlapping": sum(step.placement == "overlaps input" for step in plan.steps)}


def plan_table(paths: list[Path]) -> None:
    from rich.console import Console
    from rich.table import Table

    workdir = Path(tempfile.mkdtemp(prefix="tinydeploy-memory-"))
    table = Table(title="native engine plan (bytes; TFLM arena: 32-bit estimate)")
    for column in ("model", "lower bound", "native RAM", "native/bound", "TFLM arena", "native/TFLM",
                   "in place/overlap", "native flash", "TFLite file", "flash/file"):
        table.add_column(column, justify="left" if column == "model" else "right")
    refusals = []
    for path in paths:
        row = plan_row(path, workdir)
        if "refused" in row:
            refusals.append(f"{row['model']}: {row['refused']}")
            table.add_row(row["model"], *["-"] * 9)
            continue
        table.add_row(row["model"], f"{row['lower_bound']:,}", f"{row['native_ram']:,}",
                      f"{row['native_ram'] / row['lower_bound']:.2f}", f"{row['tflm_arena']:,}",
                      f"{row['native_ram'] / row['tflm_arena']:.2f}", f"{row['in_place']}/{row['overlapping']}",
                      f"{row['native_flash']:,}", f"{row['tflite_bytes']:,}",
                      f"{row['native_flash'] / row['tflite_bytes']:.2f}")
    Console(width=160).print(table)
    for line in refusals:
        print(f"not run by the native engine yet: {line}")


def board_table(paths: list[Path], tflm_lib: str | None) -> None:
    from rich.table import Table

    from tinydeploy.model.tflite import load_tflite

    work = bench_home()
    engines = ENGINES
    table = Table(title="memory on the virtual board (bytes)")
    for column in ("model", "int8 weights\n+ per-channel", "native fast\nconstants", "native ref\nconstants",
                   "X-CUBE-AI 9.0\nflash / RAM", *(f"{e}\nfirmware flash" for e in engines),
                   *(f"{e}\nRAM (planned, stack)" for e in engines)):
        table.add_column(column, justify="left" if column == "model" else "right")
    verdicts, notes = [], []
    for path in paths:
        key = key_of(path)
        parameters = int8_parameter_bytes(load_tflite(path))
        runs = measure_engines(path, work, tflm_lib, notes)
        fast, reference, tflm = (runs.get(e) for e in engines)

        def constants(run) -> str:
            return f"{run.constants_bytes:,} ({run.constants_bytes / parameters:.2f}x)" \
                if isinstance(run, Run) and parameters else "-"

        table.add_row(
            path.stem, f"{parameters:,}", constants(fast), constants(reference),
            f"{XCUBE_9_FLASH[key]:,} / {XCUBE_9_RAM[key]:,}" if key else "-",
            *(f"{r.flash_bytes:,}" if isinstance(r, Run) else "-" for r in (fast, reference, tflm)),
            *(f"{r.ram_bytes:,} ({r.activation_bytes:,}, {r.stack_bytes:,})" if isinstance(r, Run) else "-"
              for r in (fast, reference, tflm)))
        if isinstance(fast, Run):
            goals = []
            if parameters:
                ratio = fast.constants_bytes / parameters
                goals.append(f"constants {ratio:.2f}x the int8 parameters " + (
                    f"<= {CONSTANTS_FACTOR}: met" if ratio <= CONSTANTS_FACTOR else
                    f"> {CONSTANTS_FACTOR}: missed by {fast.constants_bytes - round(CONSTANTS_FACTOR * parameters):,} B"))
            if isinstance(tflm, Run):
                limit = FIRMWARE_FACTOR * tflm.flash_bytes
                goals.append(f"firmware {fast.flash_bytes / tflm.flash_bytes:.2f}x TFLM's " +
                             (f"<= {FIRMWARE_FACTOR}: met" if fast.flash_bytes <= limit else
                              f"> {FIRMWARE_FACTOR}: missed by {fast.flash_bytes - round(limit):,} B"))
            if key:
                before = ACTIVATION_BYTES_BEFORE[key]
                goals.append(f"planned activations {fast.activation_bytes:,} B " +
                             ("<= " if fast.activation_bytes <= before else "> ") + f"{before:,} B before")
            verdicts.append(f"{path.stem}: " + "; ".join(goals))
    print_results(table, verdicts, notes, tflm_lib)


def main(argv: list[str]) -> None:
    given = without_options(argv)
    paths = [Path(p) for p in given] or default_models()
    if not paths:
        print(f"no models given and none found in {ALL_MODELS}")
        return
    plan_table(paths)
    board_table(model_paths(given), tflm_lib_argument(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
