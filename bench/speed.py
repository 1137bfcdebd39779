"""Emulated instructions per inference and per MAC of the native engine on the virtual board: reference kernels
against the fast (Cortex-M4 DSP) kernels, next to the published X-CUBE-AI 7.3 cycle counts.

    .venv/bin/python bench/speed.py [MODEL.tflite ...]

QEMU runs the virtual board with -icount: every instruction takes the same virtual time, so instructions =
latency_us * 1000 / ns per instruction (`flash --json` reports it as `instructions`). That count is an
ESTIMATE of real Cortex-M4 cycles (one instruction per cycle; real cores stall on loads, branches, multi-cycle
LDM and flash wait states). Prints numbers and whether the goal is met, never fails.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "models" / "mlperf-tiny"
# ST X-CUBE-AI 7.3 on a 120 MHz Cortex-M4 (MLPerf Tiny v1.0 results, ../shared/notes/FACTS.md), in cycles.
XCUBE_MS = {"kws_ref_model": 75.1, "vww_96_int8": 230.5, "pretrainedResnet_quant": 226.9, "ad01_int8": 7.6}
XCUBE_HZ = 120_000_000
PER_MAC_GOAL = 2.0  # at most, on KWS, VWW and IC
PER_MAC_GOAL_MODELS = {"kws_ref_model", "vww_96_int8", "pretrainedResnet_quant"}


def measure(path: Path, workdir: Path, fast: bool) -> dict:
    from tinydeploy.boards import get_board
    from tinydeploy.flow import flash_model
    from tinydeploy.model.tflite import load_tflite

    model = load_tflite(path)
    out = workdir / f"{path.stem}-{'fast' if fast else 'reference'}"
    report = flash_model(model, get_board("virtual"), "native", out, True, None, 2, 3, 1, lambda message: None,
                         fast_kernels=fast)
    data = report.to_json()
    return {"instructions": data["instructions"], "match": data["outputs_match"], "flash": data["flash_bytes"],
            "activation": data["activation_bytes"], "stack": data["stack_bytes"]}


def main(argv: list[str]) -> None:
    from rich.console import Console
    from rich.table import Table

    from tinydeploy.analysis.compute import op_costs, total_macs
    from tinydeploy.model.tflite import load_tflite

    paths = [Path(p) for p in argv] or [SHARED / f"{name}.tflite" for name in XCUBE_MS
                                          if (SHARED / f"{name}.tflite").exists()]
    work = Path(tempfile.mkdtemp(prefix="tinydeploy-speed-"))
    table = Table(title="native engine on the virtual board: emulated instructions per inference (~ cycles)")
    for column in ("model", "MACs", "reference", "/MAC", "fast", "/MAC", "speed-up", "X-CUBE-AI 7.3 cycles",
                   "fast/X-CUBE", "outputs = TFLM", "RAM ref/fast", "flash ref/fast", "stack ref/fast"):
        table.add_column(column, justify="left" if column == "model" else "right")
    verdicts = []
    for path in paths:
        macs = total_macs(op_costs(load_tflite(path)))
        ref, fast = measure(path, work, False), measure(path, work, True)
        xcube = round(XCUBE_MS[path.stem] * 1e-3 * XCUBE_HZ) if path.stem in XCUBE_MS else None
        per_mac = fast["instructions"] / macs if macs else float("nan")
        table.add_row(path.stem, f"{macs:,}", f"{ref['instructions']:,}", f"{ref['instructions'] / macs:.2f}",
                      f"{fast['instructions']:,}", f"{per_mac:.2f}",
                      f"{ref['instructions'] / fast['instructions']:.1f}x",
                      f"{xcube:,}" if xcube else "-", f"{fast['instructions'] / xcube:.2f}" if xcube else "-",
                      "yes" if ref["match"] and fast["match"] else "NO",
                      f"{ref['activation']:,}/{fast['activation']:,}", f"{ref['flash']:,}/{fast['flash']:,}",
                      f"{ref['stack']:,}/{fast['stack']:,}")
        goals = []
        if path.stem in PER_MAC_GOAL_MODELS:
            goals.append(f"{per_mac:.2f} instructions/MAC " + ("<= 2: met" if per_mac <= PER_MAC_GOAL else
                                                                f"> 2: missed by {per_mac - PER_MAC_GOAL:.2f}"))
        if xcube:
            delta = fast["instructions"] / xcube - 1
            goals.append(f"{abs(delta):.0%} " + ("below X-CUBE-AI: met" if delta < 0 else "above X-CUBE-AI: missed"))
        verdicts.append(f"{path.stem}: " + "; ".join(goals))
    Console(width=200).print(table)
    print("\n".join(verdicts))
    print("Instructions are emulated (QEMU -icount: one instruction per time step); they estimate Cortex-M4 cycles "
          "at one instruction per cycle, not measured cycles.")


if __name__ == "__main__":
    main(sys.argv[1:])
