from __future__ import annotations

import json
from pathlib import Path

import typer

from tinydeploy.errors import EXIT_FAILED, EXIT_OK

app = typer.Typer(help="Classroom kit checks.", no_args_is_help=True, add_completion=False)


@app.command("check")
def check(
    virtual: int = typer.Option(0, "--virtual", min=0, max=64, help="Check N virtual boards (QEMU) instead of USB."),
    engine: str = typer.Option(None, "--engine", "-e", help="native or tflm (default: each board's)."),
    board_name: str = typer.Option(None, "--board", "-b", help="Only boards of this profile: tells apart boards "
                                   "whose USB id several profiles share (every ST-Link board shows the same)."),
    runs: int = typer.Option(10, "--runs", min=1, max=1_000, help="Timed inferences per board."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
    csv_path: Path = typer.Option(None, "--csv", help="Also write the results to this CSV file."),
    inject_kill: list[int] = typer.Option([], "--inject-kill", hidden=True,
                                          help="Testing the check: kill virtual board N's QEMU mid-run."),
) -> int:
    """Find every supported board on USB (or start N virtual ones), flash a self-test, run it: one row per board."""
    from rich.console import Console
    from rich.table import Table

    from tinydeploy.boards import get_board
    from tinydeploy.errors import TinydeployError
    from tinydeploy.fsutil import atomic_write_text
    from tinydeploy.lab.check import (ProgressLines, find_usb_boards, results_csv, results_json, run_lab_check,
                                      virtual_runners)

    unresolved = []
    if virtual:
        runners = virtual_runners(virtual, board_name or "virtual")
    else:
        runners, unresolved = find_usb_boards({board_name: get_board(board_name)} if board_name else None)
        if not runners and not unresolved:
            raise TinydeployError("no supported board found on USB",
                                  "connect the boards (see `tinydeploy boards` for their USB ids), run "
                                  "`tinydeploy doctor`, or try `tinydeploy lab check --virtual 8`",
                                  exit_code=EXIT_FAILED)
    console = Console(stderr=True)
    console.print(f"checking {len(runners) + len(unresolved)} board(s)")
    with ProgressLines([r.label for r in runners] + [p.port for p in unresolved], console) as lines:
        results = run_lab_check(runners, engine, runs=runs, progress=lines.update,
                                inject_kill=frozenset(inject_kill), unresolved=unresolved)
    if csv_path is not None:
        atomic_write_text(csv_path, results_csv(results))
    if as_json:
        print(json.dumps(results_json(results), indent=2))
    else:
        table = Table(title=f"lab check: {sum(r.passed for r in results)} of {len(results)} passed")
        for column in ("port", "USB serial", "board", "status", "latency (us)", "free RAM (B)", "why"):
            table.add_column(column, justify="right" if column[0] in "lf" else "left")
        for r in results:
            table.add_row(r.port, r.serial_number or "-", r.board,
                          f"[green]{r.status}[/]" if r.passed else f"[red]{r.status}[/]",
                          f"{r.latency_us:,.0f}" if r.latency_us is not None else "-",
                          f"{r.free_ram_bytes:,}" if r.free_ram_bytes is not None else "-",
                          r.reason if not r.passed else "")
        Console(width=max(Console().width, 140)).print(table)
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED
