"""Emulated instructions per inference and per MAC of the native engine on the virtual board.

    .venv/bin/python bench/speed.py [MODEL.tflite ...]

QEMU runs with -icount shift=4: every instruction takes 16 ns of virtual time, so instructions =
latency_us * 1000 / 16. That is an estimate of real Cortex-M4 cycles (one instruction per cycle; real
cores stall on loads, branches and flash wait states). Prints numbers, not pass/fail; the reference column
of FACTS.md (TFLM with CMSIS-NN on the same emulator) is shown for comparison.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "models" / "mlperf-tiny"
NS_PER_INSTRUCTION = 16  # -icount shift=4
# TFLM + CMSIS-NN instructions per inference on the same emulator (../shared/notes/FACTS.md)
TFLM_CMSIS_NN = {"kws_ref_model": 9_915_040, "vww_96_int8": 31_043_960, "pretrainedResnet_quant": 43_347_520,
                 "ad01_int8": 845_160}


def main(argv: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from tinydeploy.analysis.compute import op_costs
    from tinydeploy.boards import get_board
    from tinydeploy.flow import flash_model
    from tinydeploy.model.tflite import load_tflite

    paths = [Path(p) for p in argv] or [SHARED / f"{name}.tflite" for name in TFLM_CMSIS_NN
                                          if (SHARED / f"{name}.tflite").exists()]
    work = Path(tempfile.mkdtemp(prefix="tinydeploy-speed-"))
    table = Table(title="native engine on the virtual board (emulated instructions)")
    for column in ("model", "MACs", "latency", "instructions", "per MAC", "TFLM+CMSIS-NN", "ratio"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for path in paths:
        model = load_tflite(path)
        macs = sum(c.macs for c in op_costs(model))
        report = flash_model(model, get_board("virtual"), "native", work / path.stem, True, None, 1, 3, 1,
                             lambda message: None)
        latency = report.to_json()["latency_us"]
        instructions = latency * 1000 // NS_PER_INSTRUCTION
        reference = TFLM_CMSIS_NN.get(path.stem)
        table.add_row(path.stem, f"{macs:,}", f"{latency:,} µs", f"{instructions:,}",
                      f"{instructions / macs:.2f}" if macs else "-", f"{reference:,}" if reference else "-",
                      f"{instructions / reference:.2f}x" if reference else "-")
    Console().print(table)
    print("Instructions are emulated (QEMU -icount shift=4, 16 ns each): an estimate of Cortex-M4 cycles.")


if __name__ == "__main__":
    main(sys.argv[1:])
