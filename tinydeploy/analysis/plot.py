"""Draw the activation memory over the ops: live tensors per op, the peak, the board's RAM line."""

from __future__ import annotations

from pathlib import Path

from tinydeploy.analysis.analyze import Analysis
from tinydeploy.errors import TinydeployError
from tinydeploy.fsutil import atomic_write_bytes


def plot_memory(analysis: Analysis, path: Path) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    model, profile = analysis.model, analysis.profile
    ops = list(range(len(model.operators)))
    plan = analysis.plan.layout if analysis.plan is not None else None  # the engine's buffer, if it plans one
    width = max(8, 0.35 * len(ops) + 3)
    if plan is not None:
        fig, (ax, plan_ax) = plt.subplots(1, 2, figsize=(2 * width, 5))
    else:
        fig, ax = plt.subplots(figsize=(width, 5))
    colors = plt.get_cmap("tab20")
    bottoms = [0] * len(ops)
    for lt in profile.lifetimes:
        span = [op for op in ops if max(lt.first, 0) <= op <= lt.last]
        heights = [lt.nbytes if op in span else 0 for op in ops]
        ax.bar(ops, heights, bottom=bottoms, color=colors(lt.tensor % 20), edgecolor="white", linewidth=0.3)
        bottoms = [b + h for b, h in zip(bottoms, heights)]
    peak_op = profile.peak_op
    ax.annotate(f"peak {profile.peak_bytes:,} B\nat op {peak_op} ({model.operators[peak_op].op})",
                xy=(peak_op, profile.peak_bytes), xytext=(0, 12), textcoords="offset points", ha="center",
                fontsize=8, arrowprops={"arrowstyle": "-"})
    board = analysis.board
    ram_for_model = board.ram_bytes - board.core_ram_bytes - board.stack_bytes
    arena = analysis.arena.recommended_bytes
    top = max(profile.peak_bytes, arena) * 1.35
    ax.axhline(arena, color="tab:orange", linestyle="--", linewidth=1)
    ax.text(ops[-1], arena, f" TFLM arena {arena:,} B", va="bottom", ha="right", fontsize=8, color="tab:orange")
    if ram_for_model <= top * 1.5:
        top = max(top, ram_for_model * 1.1)
        ax.axhline(ram_for_model, color="tab:red", linewidth=1.2)
        ax.text(0, ram_for_model, f" {board.name} RAM left for the model {ram_for_model:,} B", va="bottom",
                fontsize=8, color="tab:red")
    else:
        ax.text(0.99, 0.97, f"{board.name} RAM left for the model: {ram_for_model:,} B (above this scale)",
                transform=ax.transAxes, ha="right", va="top", fontsize=8, color="tab:red")
    ax.set_ylim(0, top)
    ax.set_xticks(ops)
    ax.set_xticklabels([f"{i} {model.operators[i].op}" for i in ops], rotation=90, fontsize=7)
    ax.set_ylabel("live activation bytes")
    ax.set_title(f"{model.name}: live activations per op (TFLM keeps each tensor whole)", loc="left",
                 fontsize=10)
    if plan is not None:
        _draw_buffer_plan(plan_ax, analysis, colors)
    fig.tight_layout()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format=path.suffix.lstrip(".").lower() or "png", dpi=120)
    except ValueError as exc:
        raise TinydeployError(f"cannot draw {path}: {exc}", "use a .png, .svg or .pdf file name") from exc
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def _draw_buffer_plan(ax, analysis: Analysis, colors) -> None:
    """The engine's planned buffer: each tensor a box from the op that writes it to its last reader, at its offset."""
    plan, model = analysis.plan.layout, analysis.model
    lifetimes = {lt.tensor: lt for lt in analysis.profile.lifetimes}
    for tensor, offset in plan.offsets.items():
        lt = lifetimes.get(tensor)
        if lt is None:
            continue
        start, end = max(lt.first, 0) - 0.4, lt.last + 0.4
        ax.add_patch(matplotlib_rectangle((start, offset), end - start, model.tensors[tensor].nbytes,
                                          facecolor=colors(tensor % 20), alpha=0.8, linewidth=0.5, edgecolor="black"))
    ax.axhline(plan.activation_bytes, color="tab:green", linewidth=1.2)
    ax.text(0, plan.activation_bytes, f" {analysis.engine} buffer {plan.activation_bytes:,} B", va="bottom", fontsize=8,
            color="tab:green")
    arena = analysis.arena.recommended_bytes
    ax.axhline(arena, color="tab:orange", linestyle="--", linewidth=1)
    ax.text(len(model.operators) - 1, arena, f" TFLM arena {arena:,} B", va="bottom", ha="right", fontsize=8,
            color="tab:orange")
    ax.set_xlim(-1, len(model.operators))
    ax.set_ylim(0, max(plan.activation_bytes, arena) * 1.2)
    ax.set_xticks(range(len(model.operators)))
    ax.set_xticklabels([f"{i} {op.op}" for i, op in enumerate(model.operators)], rotation=90, fontsize=7)
    ax.set_ylabel("offset in the activation buffer (bytes)")
    ax.set_title(f"{analysis.engine} engine plan: peak at op {plan.peak_op}", loc="left", fontsize=10)


def matplotlib_rectangle(*args, **kwargs):
    from matplotlib.patches import Rectangle

    return Rectangle(*args, **kwargs)
