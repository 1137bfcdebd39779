"""Emulated instructions per inference on the virtual board, side by side: the native engine with its fast
(Cortex-M4 DSP) kernels, with its reference kernels, and TFLM with CMSIS-NN (when a local copy of the Arduino TFLM
library is given), next to the best published Cortex-M4 results; with each build's flash and RAM.

    .venv/bin/python bench/speed.py [MODEL.tflite ...] [--tflm-lib PATH]

Without models: the four MLPerf Tiny models in ../shared. The TFLM column needs --tflm-lib PATH or
$TINYDEPLOY_TFLM_LIB (the library compiles once into a project kept under tinydeploy's home: minutes the first
time). QEMU runs the virtual board with -icount: every instruction takes the same virtual time, so
instructions = latency_us * 1000 / ns per instruction (`flash --json` reports it as `instructions`). That count is
an ESTIMATE of real Cortex-M4 cycles (one instruction per cycle; real cores stall on loads, branches, multi-cycle
LDM and flash wait states), which is why the goal leaves a quarter of headroom. Prints numbers and whether each
goal is met; never fails.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mlperf import (CYCLES_FACTOR, ENGINES, PER_MAC_GOAL, PER_MAC_MODELS, Run, bench_home,  # noqa: E402
                    best_published, key_of, measure_engines, model_paths, print_results, tflm_lib_argument,
                    without_options)


def _cell(run, field: str, per: int | None = None) -> str:
    if not isinstance(run, Run):
        return "-"
    value = getattr(run, field)
    return f"{value:,}" + (f" ({value / per:.2f})" if per else "")


def main(argv: list[str]) -> None:
    from rich.table import Table

    from tinydeploy.analysis.compute import op_costs, total_macs
    from tinydeploy.model.tflite import load_tflite

    tflm_lib = tflm_lib_argument(argv)
    paths = model_paths(without_options(argv))
    work = bench_home()
    engines = ENGINES
    table = Table(title="instructions per inference on the virtual board (emulated; per MAC in brackets), "
                        "firmware flash and RAM")
    for column in ("model", "MACs", *(f"{e}\ninstructions" for e in engines), "best published M4\n(cycles)",
                   "goal: 0.75 x\nbest", "outputs\n= TFLM", *(f"{e}\nflash / RAM" for e in engines)):
        table.add_column(column, justify="left" if column == "model" else "right")
    verdicts, notes = [], []
    for path in paths:
        key = key_of(path)
        macs = total_macs(op_costs(load_tflite(path)))
        runs = measure_engines(path, work, tflm_lib, notes)
        fast = runs.get("native fast")
        published = best_published(key) if key else None
        budget = round(published[1] * CYCLES_FACTOR) if published else None
        row = [path.stem, f"{macs:,}"]
        row += [_cell(runs.get(e), "instructions", macs) for e in engines]
        row += [f"{published[1]:,}\n{published[0]}" if published else "-", f"{budget:,}" if budget else "-"]
        row.append(" / ".join("yes" if r.outputs_match else "NO" for r in runs.values() if isinstance(r, Run)))
        row += [f"{r.flash_bytes:,} / {r.ram_bytes:,}" if isinstance(r := runs.get(e), Run) else "-" for e in engines]
        table.add_row(*row)
        if isinstance(fast, Run):
            goals = []
            per_mac = fast.instructions / macs if macs else float("nan")
            if key in PER_MAC_MODELS:
                goals.append(f"{per_mac:.2f} instructions/MAC " + (
                    f"<= {PER_MAC_GOAL}: met" if per_mac <= PER_MAC_GOAL else
                    f"> {PER_MAC_GOAL}: missed by {per_mac - PER_MAC_GOAL:.2f}"))
            if budget:
                ratio = fast.instructions / published[1]
                goals.append(f"{ratio:.2f} x {published[0]}'s cycles " + (
                    f"<= {CYCLES_FACTOR}: met" if fast.instructions <= budget else
                    f"> {CYCLES_FACTOR}: missed by {fast.instructions - budget:,} instructions"))
            tflm = runs.get("TFLM + CMSIS-NN")
            if isinstance(tflm, Run):
                goals.append(f"{tflm.instructions / fast.instructions:.1f}x fewer instructions than TFLM + CMSIS-NN")
            verdicts.append(f"{path.stem}: " + "; ".join(goals))
    print_results(table, verdicts, notes, tflm_lib)
    print("Instructions are emulated (QEMU -icount: one instruction per time step); they estimate Cortex-M4 cycles "
          "at one instruction per cycle, not measured cycles. Published figures: MLPerf Tiny v1.1/v1.2 closed "
          "division on a 120 MHz STM32L4R5 (real silicon).")


if __name__ == "__main__":
    main(sys.argv[1:])
