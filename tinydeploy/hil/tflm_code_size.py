"""Measures the TFLM engine's code and RAM table (tinydeploy/analysis/tflm_code_size.toml): builds TFLM firmwares for
the virtual board as `flash` does, linked with a map file, for a set of models covering many ops, and hands the
maps to tinydeploy.tflm.code_size. Needs a local Arduino TFLM library, ~15-60 s a model:

    python -m tinydeploy.hil.tflm_code_size /path/to/Arduino_TensorFlowLite   # rewrites tflm_code_size.toml
    python -m tinydeploy.hil.tflm_code_size LIBRARY some.tflite --print        # one model, the table printed
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from tinydeploy.analysis.fit import TFLM_CODE_TABLE
from tinydeploy.tflm.code_size import (FirmwareCode, attribute, build_table, parse_map, parser_bytes,
                                        read_objects, render_table)

MAP_FLAG_VAR = "PLATFORMIO_BUILD_FLAGS"  # PlatformIO adds these to every build; -Wl,... goes to the link only


def measure_model(path: Path, library: str, work: Path, log=print) -> FirmwareCode:
    from tinydeploy.boards import get_board
    from tinydeploy.engines.base import EngineOptions
    from tinydeploy.flow import build_firmware
    from tinydeploy.model.tflite import load_tflite

    model = load_tflite(path)
    board = get_board("virtual")
    project = work / model.name
    project.mkdir(parents=True, exist_ok=True)
    map_path = project / "firmware.map"
    before = os.environ.get(MAP_FLAG_VAR)
    os.environ[MAP_FLAG_VAR] = f"-Wl,-Map,{map_path.resolve()}"
    try:
        firmware = build_firmware(model, board, "tflm", project / "project", log=lambda _m: None,
                                  options=EngineOptions(tflm_lib=library), fit_check=False)
    finally:
        if before is None:
            os.environ.pop(MAP_FLAG_VAR, None)
        else:
            os.environ[MAP_FLAG_VAR] = before
    files = parse_map(map_path.read_text())
    objects = read_objects(sorted(files), firmware.project_dir)
    ops = list(dict.fromkeys(model.op_names))
    owned = attribute(files, objects, ops)
    code = firmware.flash_bytes - model.size_bytes - board.core_flash_bytes
    sketch_ram = firmware.static_ram_bytes - firmware.plan.arena.arena_bytes - board.core_ram_bytes
    log(f"{model.name}: flash {firmware.flash_bytes:,} B, code {code:,} B, "
        f"{sum(n for n, _ in owned.values()):,} B of it op code ({', '.join(ops)})")
    return FirmwareCode(model.name, ops, code, owned, sketch_ram, parser_bytes(files))


SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "models"
MODELS = [
    "mlperf-tiny/kws_ref_model.tflite", "mlperf-tiny/vww_96_int8.tflite", "mlperf-tiny/pretrainedResnet_quant.tflite",
    "mlperf-tiny/ad01_int8.tflite", "tflm-examples/person_detect.tflite", "tflm-examples/simple_add_model.tflite",
    "tflm-examples/micro_speech_lstm.tflite", "tflm-examples/dtln_noise_suppression.tflite",
    "tflm-examples/keyword_scrambled_8bit.tflite", "mlperf-tiny-extra/str_ww_ref_model.tflite",
    "tflm-examples/seanet/conv/conv1.tflite", "tflm-examples/seanet/add/add1.tflite",
    "tflm-examples/seanet/leaky_relu/leaky_relu0.tflite", "tflm-examples/seanet/pad/pad0.tflite",
    "tflm-examples/seanet/quantize/quantize0.tflite", "tflm-examples/seanet/strided_slice/strided_slice0.tflite",
    "tflm-examples/seanet/sub/sub0.tflite",
]


def main(argv: list[str]) -> int:  # pragma: no cover - a maintainer's tool (needs a local library, ~15 s a model)
    import argparse

    from tinydeploy.fsutil import atomic_write_text

    parser = argparse.ArgumentParser(prog="python -m tinydeploy.hil.tflm_code_size", description=__doc__.split("\n")[0])
    parser.add_argument("library", help="a local copy of the Arduino TFLM library")
    parser.add_argument("models", nargs="*", type=Path, help=f"models to measure (default: {len(MODELS)} "
                        "covering many ops, from ../shared/models)")
    parser.add_argument("--print", action="store_true", help="print the table instead of rewriting it")
    args = parser.parse_args(argv)
    measured = []
    with tempfile.TemporaryDirectory(prefix="tflm-code-size-") as work:
        for path in args.models or [SHARED / relative for relative in MODELS]:
            if not path.is_file():
                print(f"skipped {path}: not found", file=sys.stderr)
                continue
            try:
                measured.append(measure_model(path, args.library, Path(work)))
            except Exception as exc:  # noqa: BLE001 - a model that fails to build is reported and left out
                print(f"skipped {path}: {exc}", file=sys.stderr)
    if not measured:
        print("error: no model was measured", file=sys.stderr)
        return 1
    text = render_table(measured, build_table(measured))
    if args.print:
        print(text, end="")
    else:
        atomic_write_text(TFLM_CODE_TABLE, text)
        print(f"wrote {TFLM_CODE_TABLE}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
