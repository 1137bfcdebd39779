"""RAM and flash of the native engine against the liveness lower bound and TFLM, for MLPerf Tiny and TFLM's own
example and integration-test models.

    .venv/bin/python bench/memory.py [MODEL.tflite ...]

Without arguments: the four MLPerf Tiny models, then every model in ../shared/models/{mlperf-tiny-extra,
tflm-examples} (TFLM's recurrent examples and the seanet int16x8 models included). Prints numbers, not pass/fail.
The goals: native RAM <= the activation lower bound and <= 0.75 x TFLM's arena on the MLPerf Tiny models, below
TFLM's arena on every model. Native RAM is the whole planned buffer (activations, scratch and the recurrent state
kept between invokes, which the lower bound includes); parameters are const, in flash. The TFLM arena is the
32-bit estimate of tinydeploy.analysis (measured once per model, then cached: the first run takes minutes). A
model the engine cannot run yet gets a row with the reason."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
MODELS = REPO.parent / "shared" / "models"
SHARED = MODELS / "mlperf-tiny"
MLPERF = ["kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8"]
EXAMPLES = MODELS / "tflm-examples"


def default_models() -> list[Path]:
    mlperf = [SHARED / f"{name}.tflite" for name in MLPERF if (SHARED / f"{name}.tflite").exists()]
    return mlperf + sorted((MODELS / "mlperf-tiny-extra").glob("*.tflite")) + sorted(EXAMPLES.glob("*.tflite")) + \
        sorted((EXAMPLES / "seanet").glob("*/*.tflite"), key=lambda p: (p.parent.name, len(p.name), p.name))


def measure(path: Path, workdir: Path) -> dict:
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


def main(argv: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    paths = [Path(p) for p in argv] or default_models()
    if not paths:
        print(f"no models given and none found in {MODELS}")
        return
    workdir = Path(tempfile.mkdtemp(prefix="tinydeploy-memory-"))
    table = Table(title="native engine memory (bytes; TFLM arena: 32-bit estimate)")
    for column in ("model", "lower bound", "native RAM", "native/bound", "TFLM arena", "native/TFLM",
                   "in place/overlap", "native flash", "TFLite file", "flash/file"):
        table.add_column(column, justify="left" if column == "model" else "right")
    refusals = []
    for path in paths:
        row = measure(path, workdir)
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


if __name__ == "__main__":
    main(sys.argv[1:])
