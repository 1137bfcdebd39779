"""`--report report.html`: one self-contained HTML file of a flash or analyze run.

Built only from the dictionaries `flash --json` and `analyze --json` print (plus board facts and tool versions),
through templates/report/report.html.j2: inline CSS and SVG, no script, nothing fetched at view time.

Keys read (all optional but the model name; a missing figure shows as "not measured"):
  flash:    model, board, engine, latency_us, latency_us_p95, latency_us_min, latencies_us, latency_emulated,
            instructions, runs, flash_bytes, ram_bytes, static_ram_bytes, stack_bytes, heap_bytes,
            activation_bytes, outputs_match, golden_samples, mismatched_samples, device, stage_seconds,
            profile: [{"op_index": int, "op": str, "latency_us": number, "instructions": int}, ...] (per layer,
            when measured; either figure may be missing)
  analysis: model, board, engine, ops, op_counts, macs, params, weights_bytes, model_bytes, flash_bytes,
            flash_available, ram_bytes, ram_available, flash_parts, ram_parts, fits, suggestions,
            activation_peak_bytes, activation_live_bytes, arena_bytes_recommended, arena_measured,
            activation_bytes, native_steps, native_blocking_ops
"""

from __future__ import annotations

import datetime
import platform
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

CHART_WIDTH = 720
CHART_HEIGHT = 220
CHART_LEFT = 64  # room for the byte labels
HISTOGRAM_BINS = 20
TOOL_PACKAGES = ("tflite-micro", "platformio", "tensorflow-cpu", "tensorflow", "onnx2tf", "torch", "jinja2")


def board_facts(board) -> dict:
    """What the report says about the board (from its profile)."""
    return {"name": board.name, "title": board.title, "mcu": board.mcu, "cpu": board.cpu,
            "clock_hz": board.clock_hz, "flash_bytes": board.flash_bytes, "ram_bytes": board.ram_bytes,
            "virtual": _emulated(board)}


def _emulated(board) -> bool:
    from tinydeploy.runners import runner_class

    return runner_class(board.upload_runner).caps.emulated


def tool_versions() -> dict[str, str]:
    """tinydeploy, Python, the Python packages that shape the result, and the toolchain and emulator on PATH."""
    from tinydeploy import __version__

    versions = {"tinydeploy": __version__, "python": platform.python_version()}
    for package in TOOL_PACKAGES:
        if package == "tensorflow" and "tensorflow-cpu" in versions:
            continue  # the same TensorFlow under two names where tf-keras pulled `tensorflow` in beside it
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    for name, args in (("arm-none-eabi-gcc", ["-dumpversion"]), ("qemu-system-arm", ["--version"])):
        found = shutil.which(name)
        if found is None:
            continue
        try:
            done = subprocess.run([found, *args], capture_output=True, text=True, timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            continue
        line = (done.stdout or "").strip().splitlines()
        if done.returncode == 0 and line:
            versions[name] = line[0].replace("QEMU emulator version ", "")
    return versions


def report_data(flash: dict | None = None, analysis: dict | None = None, board: dict | None = None,
                conversion: dict | None = None, tools: dict | None = None) -> dict:
    """Everything the page shows, as plain JSON-able data (also embedded in the page)."""
    model = (flash or {}).get("model") or Path(str((analysis or {}).get("model") or "model")).stem
    return {
        "model": model,
        "kind": "flash" if flash is not None else "analyze",
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "flash": flash,
        "analysis": analysis,
        "board": board,
        "conversion": conversion,
        "tools": tools if tools is not None else tool_versions(),
        "command": " ".join(["tinydeploy", *sys.argv[1:]]) if sys.argv else "tinydeploy",
    }


def write_flash_report(path: Path, flash: dict, model, board, engine: str, conversion: dict | None) -> None:
    """The flash run beside analyze's view of the same model (fit estimate, memory over the ops); a model analyze
    cannot take still gets its page, without those parts."""
    from tinydeploy.errors import TinydeployError
    from tinydeploy.flow import analyze

    try:
        analysis = analyze(model, board, engine).to_json()
    except TinydeployError:
        analysis = None
    write_report(path, report_data(flash=flash, analysis=analysis, board=board_facts(board), conversion=conversion))


def write_report(path: Path, data: dict) -> None:
    """Render and write atomically (the output path is checked by the command before the run)."""
    from tinydeploy.fsutil import atomic_write_text, write_error

    html = render_report(data)
    try:
        atomic_write_text(path, html)
    except OSError as exc:
        raise write_error(exc, path) from exc


def render_report(data: dict) -> str:
    import jinja2

    from tinydeploy.paths import templates_dir

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(templates_dir() / "report")),
                             autoescape=True, undefined=jinja2.ChainableUndefined, trim_blocks=True, lstrip_blocks=True)
    def missing(value) -> bool:
        return value is None or isinstance(value, jinja2.Undefined)

    env.filters["bytes"] = lambda value: "not measured" if missing(value) else f"{int(value):,} B"
    env.filters["num"] = lambda value: "not measured" if missing(value) else f"{value:,}"
    return env.get_template("report.html.j2").render(data=data, view=_view(data))


# ---------------------------------------------------------------------------------------------- view


def _view(data: dict) -> dict:
    """Geometry and derived figures for the template: bars, the memory chart, the latency histogram."""
    flash, analysis, board = data.get("flash") or {}, data.get("analysis") or {}, data.get("board") or {}
    return {
        "fit": _fit_bars(flash, analysis, board),
        "memory": _memory_chart(flash, analysis),
        "latency": _latency_histogram(flash),
        "profile": _profile_rows(flash),
        "ops": _op_rows(analysis),
        "conversion": _conversion_rows(data.get("conversion") or {}),
    }


def _conversion_rows(conversion: dict) -> list[tuple[str, str]]:
    """Where a converted model came from (ONNX/PyTorch: route, layouts, float check), as label/text rows."""
    rows = []
    if conversion.get("source_format"):
        rows.append(("converted from", str(conversion["source_format"])))
    if conversion.get("calibration"):
        rows.append(("calibration", f"{conversion.get('calibration_samples', 0)} samples from "
                     f"{conversion['calibration']}"))
    if conversion.get("source_info"):
        from tinydeploy.model.convert_onnx import describe_source

        rows.extend(describe_source(conversion["source_info"]))
    return rows


def _bar(label: str, used: int | None, available: int | None, source: str, parts: list | None = None) -> dict | None:
    if used is None or not available:
        return None
    share = used / available
    segments = []
    offset = 0.0
    for part in parts or []:
        width = 100.0 * part["bytes"] / available
        segments.append({"label": part["label"], "bytes": part["bytes"], "x": min(offset, 100.0),
                         "width": max(0.0, min(width, 100.0 - offset))})
        offset += width
    return {"label": label, "used": used, "available": available, "percent": 100.0 * share,
            "width": min(100.0, 100.0 * share), "fits": used <= available, "source": source, "segments": segments}


def _fit_bars(flash: dict, analysis: dict, board: dict) -> list[dict]:
    bars = []
    flash_available = analysis.get("flash_available") or board.get("flash_bytes")
    ram_available = flash.get("ram_available") or analysis.get("ram_available") or board.get("ram_bytes")
    for item in (
        _bar("flash", analysis.get("flash_bytes"), analysis.get("flash_available"), "estimate (analyze)",
             analysis.get("flash_parts")),
        _bar("flash", flash.get("flash_bytes"), flash_available, "measured (linked firmware)"),
        _bar("RAM", analysis.get("ram_bytes"), analysis.get("ram_available"), "estimate (analyze)",
             analysis.get("ram_parts")),
        _bar("RAM", flash.get("ram_bytes"), ram_available, "measured (static + stack + heap high-water)"),
    ):
        if item is not None:
            bars.append(item)
    return bars


def _scale(peak: float, height: float):
    return lambda value: height - (height * value / peak if peak else 0.0)


def _memory_chart(flash: dict, analysis: dict) -> dict | None:
    """Per op: the bytes live while it runs (any planner must hold them, TFLM's included) and, for the native
    engine, the top of what its plan uses at that op (output offset + bytes, scratch); totals as lines."""
    from tinydeploy.engines import get_engine

    live = analysis.get("activation_live_bytes") or []
    steps = analysis.get("native_steps") or []
    ops = analysis.get("ops") or []
    count = max(len(live), len(ops), len(steps))
    if not count:
        return None
    native_top = [None] * count
    for step in steps:
        index = step.get("op_index")
        if index is None or not 0 <= index < count:
            continue
        top = (step.get("output_offset") or 0) + (step.get("output_bytes") or 0)
        if step.get("scratch_offset") is not None:
            top = max(top, step["scratch_offset"] + (step.get("scratch_bytes") or 0))
        native_top[index] = top
    lines = []
    flash_engine = get_engine(flash["engine"]) if flash.get("engine") else None
    # an engine that measures its arena on the device (TFLM) reports it; one that plans its buffer (native), that
    native_total = analysis.get("activation_bytes") or (flash.get("activation_bytes")
                                                         if flash_engine and not flash_engine.measures_arena else None)
    if native_total:
        lines.append({"label": "native engine buffer", "bytes": native_total, "css": "native"})
    arena = analysis.get("arena_bytes_recommended")
    if flash_engine and flash_engine.measures_arena and flash.get("activation_bytes"):
        lines.append({"label": "TFLM arena (measured on the device)", "bytes": flash["activation_bytes"],
                      "css": "tflm"})
    elif arena and analysis.get("arena_measured"):
        lines.append({"label": "TFLM arena (analyze: host measurement, 32-bit estimate + margin)", "bytes": arena,
                      "css": "tflm"})
    peak = max([*(v for v in live if v), *(v for v in native_top if v), *(line["bytes"] for line in lines), 1])
    plot_width = CHART_WIDTH - CHART_LEFT - 8
    step_width = plot_width / count
    y = _scale(peak * 1.08, CHART_HEIGHT)
    columns = []
    for index in range(count):
        x = CHART_LEFT + index * step_width
        column = {"index": index, "op": ops[index] if index < len(ops) else "", "x": x,
                  "width": max(1.0, step_width * 0.42)}
        if index < len(live) and live[index] is not None:
            column["live"] = live[index]
            column["live_y"] = y(live[index])
            column["live_h"] = CHART_HEIGHT - column["live_y"]
        if native_top[index] is not None:
            column["native"] = native_top[index]
            column["native_y"] = y(native_top[index])
            column["native_h"] = CHART_HEIGHT - column["native_y"]
            column["native_x"] = x + step_width * 0.46
        columns.append(column)
    for line in lines:
        line["y"] = y(line["bytes"])
    ticks = [{"y": y(peak * f), "label": f"{int(peak * f):,}"} for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    label_every = max(1, count // 24)
    return {"width": CHART_WIDTH, "height": CHART_HEIGHT, "left": CHART_LEFT, "columns": columns, "lines": lines,
            "ticks": ticks, "label_every": label_every, "has_native": any(v is not None for v in native_top),
            "has_live": bool(live)}


def _latency_histogram(flash: dict) -> dict | None:
    latencies = [int(v) for v in flash.get("latencies_us") or [] if isinstance(v, (int, float))]
    if not latencies:
        return None
    low, high = min(latencies), max(latencies)
    bins = 1 if high == low else min(HISTOGRAM_BINS, len(set(latencies)))
    width = (high - low) / bins if bins > 1 else 1
    counts = [0] * bins
    for value in latencies:
        counts[min(bins - 1, int((value - low) / width)) if bins > 1 else 0] += 1
    plot_width = CHART_WIDTH - CHART_LEFT - 8
    bar_width = plot_width / bins
    top = max(counts)
    y = _scale(top * 1.1, CHART_HEIGHT)
    bars = [{"x": CHART_LEFT + i * bar_width + 1, "width": max(1.0, bar_width - 2), "y": y(c),
             "height": CHART_HEIGHT - y(c), "count": c,
             "from": int(low + i * width), "to": int(low + (i + 1) * width) if bins > 1 else high}
            for i, c in enumerate(counts)]
    ordered = sorted(latencies)
    return {"width": CHART_WIDTH, "height": CHART_HEIGHT, "left": CHART_LEFT, "bars": bars, "runs": len(latencies),
            "min": ordered[0], "max": ordered[-1], "median": ordered[len(ordered) // 2],
            "spread_percent": 100.0 * (high - low) / high if high else 0.0,
            "ticks": [{"y": y(top * f), "label": f"{top * f:.0f}"} for f in (0.0, 0.5, 1.0)]}


def _profile_rows(flash: dict) -> list[dict] | None:
    rows = flash.get("profile")
    if not rows or not isinstance(rows, list):
        return None
    key = "latency_us" if any(isinstance(r, dict) and r.get("latency_us") is not None for r in rows) \
        else "instructions"
    total = sum(r.get(key) or 0 for r in rows if isinstance(r, dict)) or 1
    out = []
    for row in rows:
        if not isinstance(row, dict):
            continue
        value = row.get(key)
        out.append({"op_index": row.get("op_index"), "op": row.get("op", ""), "latency_us": row.get("latency_us"),
                    "instructions": row.get("instructions"),
                    "share": 100.0 * (value or 0) / total, "width": 100.0 * (value or 0) / total})
    return out


def _op_rows(analysis: dict) -> list[dict]:
    ops = analysis.get("ops") or []
    live = analysis.get("activation_live_bytes") or []
    steps = {s.get("op_index"): s for s in analysis.get("native_steps") or []}
    rows = []
    for index, op in enumerate(ops):
        step = steps.get(index) or {}
        rows.append({"index": index, "op": op, "live": live[index] if index < len(live) else None,
                     "kernel": step.get("kernel"), "variant": step.get("variant"),
                     "offset": step.get("output_offset"), "bytes": step.get("output_bytes"),
                     "scratch": step.get("scratch_bytes") or None, "placement": step.get("placement")})
    return rows
