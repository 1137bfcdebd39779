"""Human-readable reports (rich tables and bars) for the commands."""

from __future__ import annotations

import itertools
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tinydeploy.analysis.analyze import Analysis
from tinydeploy.analysis.fit import Budget
from tinydeploy.model.classify import classification_refusal

BAR_WIDTH = 40


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape) if shape else "-"


def budget_bar(budget: Budget) -> Text:
    filled = min(BAR_WIDTH, round(BAR_WIDTH * budget.used / budget.available))
    style = "green" if budget.fits else "red"
    bar = Text("█" * filled, style=style) + Text("░" * (BAR_WIDTH - filled), style="dim")
    bar.append(f" {budget.name:5} {budget.used:>11,} / {budget.available:,} B ({budget.percent:.1f}%)")
    if not budget.fits:
        bar.append(f"  over by {budget.overshoot:,} B", style="bold red")
    return bar


MAX_TABLE_ROWS = 80  # a table of a huge graph shows its start, the rows around the peak and its end


def shown_rows(count: int, peak: int, limit: int = MAX_TABLE_ROWS) -> list[int | None]:
    """Row indices to print out of `count` (None marks skipped rows): all of them up to `limit`, else the
    first and last ones and those around `peak`. The terminal table stays readable and its cost bounded;
    --json has every row."""
    if count <= limit:
        return list(range(count))
    keep = sorted({*range(limit // 2), *range(max(0, peak - 5), min(count, peak + 6)),
                   *range(count - limit // 4, count)})
    rows: list[int | None] = []
    for index in keep:
        if rows and rows[-1] is not None and index != rows[-1] + 1:
            rows.append(None)
        rows.append(index)
    return rows


def render_analysis(analysis: Analysis, console: Console) -> None:
    model, board = analysis.model, analysis.board
    ops = Table(title=f"{model.name}: {len(model.operators)} ops", title_justify="left")
    for column, justify in (("#", "right"), ("op", "left"), ("output", "left"), ("params", "right"),
                            ("MACs", "right"), ("live act. B", "right")):
        ops.add_column(column, justify=justify)
    rows = shown_rows(len(analysis.costs), analysis.profile.peak_op)
    for position, index in enumerate(rows):
        if index is None:
            skipped = rows[position + 1] - rows[position - 1] - 1
            ops.add_row("...", f"{skipped:,} ops not shown (--json lists them all)", "", "", "", "")
            continue
        cost = analysis.costs[index]
        live = analysis.profile.live_bytes[cost.index]
        mark = " ◀ peak" if cost.index == analysis.profile.peak_op else ""
        macs = "unknown" if cost.macs is None else f"{cost.macs:,}"
        ops.add_row(str(cost.index), cost.op, _shape(cost.output_shape), f"{cost.params:,}", macs, f"{live:,}{mark}")
    ops.add_section()
    unknown = analysis.unknown_mac_ops
    ops.add_row("", "total", "", f"{analysis.params:,}", f"{analysis.macs:,}" + (" + unknown" if unknown else ""), "")
    console.print(ops)
    counts = ", ".join(f"{name} x{count}" for name, count in sorted(analysis.op_counts.items()))
    console.print(f"op counts: {counts}")
    if unknown:
        console.print(f"MACs unknown for {', '.join(unknown)} (tinydeploy does not know their arithmetic; the total "
                      "counts the other ops)")
    console.print(f"model: {model.classification.describe()}")

    arena = analysis.arena
    console.print(f"weights (constant data) in flash: {model.weights_bytes:,} B; model file {model.size_bytes:,} B")
    console.print(f"activation lower bound (largest live set): {analysis.profile.peak_bytes:,} B at op "
                  f"{analysis.profile.peak_op} ({model.operators[analysis.profile.peak_op].op})")
    if arena.measured:
        source = "cached" if analysis.arena_from_cache else f"{arena.probes} probes"
        console.print(f"TFLM tensor arena: [bold]{arena.host_bytes:,} B[/] measured on this host (64-bit, TFLM "
                      f"allocator and reference kernels, {source})")
        console.print(f"  -> {arena.target_bytes:,} B on a 32-bit target (estimate) + {arena.kernel_margin_bytes:,} B "
                      f"margin for CMSIS-NN scratch and alignment = [bold]{arena.recommended_bytes:,} B[/] to give "
                      f"kTensorArenaSize")
        if arena.note:
            console.print(f"  ({arena.note})", style="dim")
    else:
        console.print(f"[yellow]TFLM tensor arena not measured: {arena.note}[/]")

    report = analysis.plan_report
    if report is not None:
        for line in report.lines:
            console.print(line)
        if report.columns:
            steps = Table(title=report.title, title_justify="left")
            for column in report.columns:
                steps.add_column(column, justify="right" if column in ("#", "offset", "bytes", "scratch") else "left")
            rows = shown_rows(len(report.rows), report.peak_row if report.peak_row is not None else 0)
            for position, index in enumerate(rows):
                if index is None:
                    skipped = rows[position + 1] - rows[position - 1] - 1
                    steps.add_row("...", f"{skipped:,} rows not shown (--json lists them all)",
                                  *[""] * (len(report.columns) - 2))
                    continue
                cells = list(report.rows[index])
                if index == report.peak_row:
                    cells[1] += " ◀ peak"
                steps.add_row(*cells)
            console.print(steps)
    refusal = classification_refusal(model)
    if refusal is not None:
        console.print(f"engines: none runs it as it is: {refusal.one_line()}", style="yellow")
    for name, support in (analysis.support or {}).items() if refusal is None else ():
        if name == analysis.engine and report is not None:
            continue
        if support.runs:
            hint = f" (see --engine {name})" if name != analysis.engine else ""
            console.print(f"{name} engine: runs this model{hint}")
        else:
            console.print(f"{name} engine: cannot run it: " + "; ".join(support.problems), style="yellow")

    verdict = analysis.verdict
    console.print(f"\n[bold]{board.title}[/] ({board.name}, {analysis.engine} engine):")
    for budget in (verdict.flash, verdict.ram):
        console.print(budget_bar(budget))
        console.print("      " + ", ".join(f"{p.label} {p.nbytes:,} B" for p in budget.parts), style="dim")
    if not analysis.runs:
        nobody = refusal is not None or not any(s.runs for s in (analysis.support or {}).values())
        who = "no engine runs it" if nobody else f"the {analysis.engine} engine does not run it"
        console.print(f"[bold red]DOES NOT RUN[/] on {board.name} as it is: {who} (above); "
                      "the figures are what it would need" + (" (its memory would fit)" if verdict.fits else ""))
    if verdict.fits and analysis.runs:
        spare = min(verdict.flash.available - verdict.flash.used, verdict.ram.available - verdict.ram.used)
        console.print(f"[bold green]FITS[/] on {board.name} (flash {verdict.flash.available - verdict.flash.used:,} B "
                      f"and RAM {verdict.ram.available - verdict.ram.used:,} B to spare)" if spare >= 0 else "")
    elif not verdict.fits:
        over = []
        if not verdict.flash.fits:
            over.append(f"flash by {verdict.flash.overshoot:,} B")
        if not verdict.ram.fits:
            over.append(f"RAM by {verdict.ram.overshoot:,} B")
        console.print(f"[bold red]DOES NOT FIT[/] on {board.name}: over {' and '.join(over)}")
        for tip in verdict.suggestions:
            console.print(f"  - {tip}")


def render_flash(report, console: Console) -> None:
    """The measured table of `tinydeploy flash`."""
    data = report.to_json()
    board = report.board
    emulated = f" ({report.timing_note})" if report.timing_note else ""
    table = Table(title=f"{report.model.name} on {board.name} ({report.engine} engine)", title_justify="left")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("", justify="left")
    table.add_row("flash (build)", f"{report.flash_bytes:,} B", f"of {board.flash_bytes:,} B "
                  f"({100 * report.flash_bytes / board.flash_bytes:.1f}%)")
    table.add_row("latency median", f"{data['latency_us']:,} µs", f"over {data['runs']} runs{emulated}")
    table.add_row("latency p95", f"{data['latency_us_p95']:,} µs", "")
    table.add_row("latency min", f"{data['latency_us_min']:,} µs", "")
    if data.get("instructions") is not None:
        table.add_row("instructions", f"{data['instructions']:,}", "emulated per inference: an estimate of cycles")
    table.add_section()
    table.add_row("static RAM (.data+.bss)", f"{report.static_ram_bytes:,} B",
                  f"includes the {report.engine} buffer of {report.run.activation_bytes:,} B")
    table.add_row("stack high-water", f"{report.run.stack_bytes:,} B", "painted stack")
    table.add_row("heap high-water", f"{report.run.heap_bytes:,} B", "")
    table.add_row("RAM total", f"{report.ram_bytes:,} B", f"of {board.ram_bytes:,} B "
                  f"({100 * report.ram_bytes / board.ram_bytes:.1f}%)")
    table.add_section()
    verdict = "[bold green]yes, byte for byte[/]" if report.run.outputs_match else \
        f"[bold red]NO[/] (samples {report.run.mismatches} differ" + (
            f"; output tensors {sorted({t for ts in report.run.mismatched_tensors.values() for t in ts})}"
            if len(report.model.outputs) > 1 else "") + ")"
    table.add_row("outputs match host TFLM", verdict, f"{report.run.samples} random inputs")
    replay = report.replay
    if replay is not None:
        table.add_section()
        windows = f"{len(replay.outputs)} of {len(replay.expected)} windows"
        verdict = "[bold green]yes, byte for byte[/]" if replay.matches else \
            f"[bold red]NO[/] ({'the sensor ran dry' if replay.ended_early else f'windows {replay.mismatches} differ'})"
        table.add_row("stimulus (SIMULATED sensors)", replay.sensor, f"{replay.stimulus.name}: {replay.description}")
        table.add_row("replay matches host TFLM", verdict, windows)
        runs = [(label, len(list(group))) for label, group in itertools.groupby(replay.top)]
        table.add_row("top output per window", " ".join(f"{label}x{count}" for label, count in runs[:8]) +
                      (" ..." if len(runs) > 8 else ""), "class x consecutive windows")
    console.print(table)
    if report.profile:
        render_profile(report.profile, console, profile_title(report))
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in report.stage_seconds.items())
    console.print(f"project: {report.project_dir}   stages: {stages}", style="dim")


def profile_title(report) -> str:
    """What a profile shows: model, board, engine and how the board keeps time (tinydeploy.flow.FlashReport)."""
    emulated = f" ({report.timing_note})" if report.timing_note else ""
    return f"{report.model.name}: time per op on {report.board.name}, {report.engine} engine{emulated}"


def render_profile(rows, console: Console, title: str) -> None:
    """The per-layer table of `flash --profile` (tinydeploy.flow.OpProfile rows), with a bar for each op's share."""
    table = Table(title=title, title_justify="left")
    for name, justify in (("#", "right"), ("op", "left"), ("µs", "right"), ("instructions", "right"),
                          ("MACs", "right"), ("instr/MAC", "right"), ("share", "right"), ("", "left")):
        table.add_column(name, justify=justify)
    widest = max((row.share for row in rows), default=0.0) or 1.0
    for row in rows:
        data = row.to_json()
        table.add_row(str(row.index), row.op, f"{row.microseconds:,.1f}",
                      f"{row.instructions:,}" if row.instructions is not None else "-",
                      f"{row.macs:,}" if row.macs is not None else "?",
                      f"{data['instructions_per_mac']:.2f}" if data["instructions_per_mac"] else "-",
                      f"{100 * row.share:.1f}%", "█" * max(0, round(24 * row.share / widest)))
    console.print(table)


def plot_profile(rows, path: Path, title: str) -> None:
    """`flash --profile --plot`: one horizontal bar per op (µs per inference), labelled with its share and, where
    the board counts instructions, instructions per MAC; written atomically as .png, .svg or .pdf."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tinydeploy.fsutil import atomic_write_bytes

    fig, ax = plt.subplots(figsize=(10, 1.5 + 0.28 * len(rows)))
    positions = list(range(len(rows)))
    ax.barh(positions, [row.microseconds for row in rows], color="tab:blue")
    ax.set_yticks(positions)
    ax.set_yticklabels([f"{row.index} {row.op}" for row in rows], fontsize=8)
    ax.invert_yaxis()  # op 0 at the top, as in the table
    widest = max((row.microseconds for row in rows), default=0.0) or 1.0
    for position, row in zip(positions, rows):
        per_mac = row.to_json()["instructions_per_mac"]
        label = f" {100 * row.share:.1f}%" + (f", {per_mac:.2f} instr/MAC" if per_mac else "")
        ax.text(row.microseconds, position, label, va="center", fontsize=7)
    ax.set_xlim(0, widest * 1.35)
    ax.set_xlabel("µs per inference")
    ax.set_title(title, loc="left", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".").lower() or "png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
