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
    places: list[str] = typer.Option([], "--places", metavar="PLACE,...", help="Check the boards of these labgrid "
                                     "places (a board farm; repeatable or comma-separated) instead of USB."),
    coordinator: str = typer.Option(None, "--coordinator", metavar="HOST:PORT", help="labgrid coordinator of "
                                    "--places (default: $LG_COORDINATOR, else 127.0.0.1:20408)."),
    place_timeout: float = typer.Option(300.0, "--place-timeout", min=0.0, help="Seconds to wait for a busy place."),
    runs: int = typer.Option(10, "--runs", min=1, max=1_000, help="Timed inferences per board."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
    csv_path: Path = typer.Option(None, "--csv", help="Also write the results to this CSV file."),
    inject_kill: list[int] = typer.Option([], "--inject-kill", hidden=True,
                                          help="Testing the check: kill virtual board N's QEMU mid-run."),
    kit_name: str = typer.Option(None, "--kit", "-k", help="Check whole kits of this profile (e.g. "
                                 "nano33ble-sense): board revision, the model and every sensor, one column each."),
    interactive: bool = typer.Option(False, "--interactive", help="With --kit: also check each board's button "
                                     "(you are asked to press it, one board at a time)."),
    inject_fault: list[str] = typer.Option([], "--inject-fault", hidden=True,
                                           help="Testing the kit check: BOARD:PART makes that virtual kit's part "
                                           "fail (imu, microphone, camera, button)."),
) -> int:
    """Find every supported board on USB (or start N virtual ones, or take a farm's places), flash a self-test, run
    it: one row per board."""
    from rich.console import Console
    from rich.table import Table

    from tinydeploy.boards import get_board
    from tinydeploy.errors import TinydeployError
    from tinydeploy.fsutil import atomic_write_text
    from tinydeploy.lab.check import (ProgressLines, find_usb_boards, place_runners, results_csv, results_json,
                                      run_lab_check, virtual_runners)

    place_names = [p.strip() for option in places for p in option.split(",") if p.strip()]
    if kit_name is not None:
        if place_names:
            raise TinydeployError("--kit checks kits on this machine's USB or virtual boards, not a farm's places "
                                  "yet", "run lab check --kit on the exporter's host, or leave out --places")
        return _check_kits(kit_name, virtual, engine, board_name, runs, as_json, csv_path, interactive, inject_fault)
    if interactive or inject_fault:
        raise TinydeployError("--interactive and --inject-fault check a kit's parts", "add --kit NAME")
    unresolved = []
    unreachable: list[tuple[str, str]] = []
    if virtual and place_names:
        raise TinydeployError("give either --virtual or --places", "--places checks a farm's boards")
    if place_names:
        runners, unreachable = place_runners(place_names, coordinator, get_board(board_name) if board_name else None,
                                             place_timeout)
    elif virtual:
        runners = virtual_runners(virtual, board_name or "virtual")
    else:
        runners, unresolved = find_usb_boards({board_name: get_board(board_name)} if board_name else None)
        if not runners and not unresolved:
            raise TinydeployError("no supported board found on USB",
                                  "connect the boards (see `tinydeploy boards` for their USB ids), run "
                                  "`tinydeploy doctor`, or try `tinydeploy lab check --virtual 8`",
                                  exit_code=EXIT_FAILED)
    console = Console(stderr=True)
    console.print(f"checking {len(runners) + len(unresolved) + len(unreachable)} board(s)")
    labels = [r.label for r in runners] + [p.port for p in unresolved] + [label for label, _ in unreachable]
    with ProgressLines(labels, console) as lines:
        results = run_lab_check(runners, engine, runs=runs, progress=lines.update,
                                inject_kill=frozenset(inject_kill), unresolved=unresolved, unreachable=unreachable)
    if csv_path is not None:
        atomic_write_text(csv_path, results_csv(results))
    if as_json:
        print(json.dumps(results_json(results), indent=2))
    else:
        table = Table(title=f"lab check: {sum(r.passed for r in results)} of {len(results)} passed")
        farm = bool(place_names)
        columns = (("place", "exporter") if farm else ("port", "USB serial")) + ("board", "status", "latency (us)",
                                                                                "free RAM (B)", "why")
        for column in columns:
            table.add_column(column, justify="right" if column[0] in "lf" else "left")
        for r in results:
            table.add_row(r.port, (r.exporter if farm else r.serial_number) or "-", r.board,
                          f"[green]{r.status}[/]" if r.passed else f"[red]{r.status}[/]",
                          f"{r.latency_us:,.0f}" if r.latency_us is not None else "-",
                          f"{r.free_ram_bytes:,}" if r.free_ram_bytes is not None else "-",
                          r.reason if not r.passed else "")
        Console(width=max(Console().width, 140)).print(table)
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED


def _parse_faults(values: list[str]) -> dict[int, set[str]]:
    from tinydeploy.errors import TinydeployError

    faults: dict[int, set[str]] = {}
    for value in values:
        board, _, part = value.partition(":")
        if not board.isdigit() or not part:
            raise TinydeployError(f"--inject-fault {value!r} is not BOARD:PART", "write it like 3:imu")
        faults.setdefault(int(board), set()).add(part)
    return faults


def _check_kits(kit_name: str, virtual: int, engine: str | None, board_name: str | None, runs: int, as_json: bool,
                csv_path: Path | None, interactive: bool, inject_fault: list[str]) -> int:
    from rich.console import Console
    from rich.table import Table

    from tinydeploy.boards import get_board
    from tinydeploy.errors import TinydeployError
    from tinydeploy.fsutil import atomic_write_text
    from tinydeploy.kits import get_kit
    from tinydeploy.lab.check import ProgressLines, find_usb_boards, virtual_runners
    from tinydeploy.lab.kit import (PART_COLUMNS, KitCheckOptions, kit_results_csv, kit_results_json, run_kit_check,
                                    virtual_kit_sources)

    kit = get_kit(kit_name)
    if board_name is not None and board_name not in (kit.board, kit.virtual_board):
        raise TinydeployError(f"kit {kit.name} is built on {kit.board} (virtual: {kit.virtual_board}), not "
                              f"{board_name}", "leave out --board, or pass the kit's board")
    unresolved = []
    if virtual:
        runners = virtual_runners(virtual, kit.virtual_board)
        for runner, source in zip(runners, virtual_kit_sources(virtual, _parse_faults(inject_fault))):
            runner.attach_sensors(source)
    else:
        if inject_fault:
            raise TinydeployError("--inject-fault breaks a simulated sensor", "add --virtual N")
        runners, unresolved = find_usb_boards({kit.board: get_board(kit.board)})
        if not runners and not unresolved:
            raise TinydeployError(f"no {get_board(kit.board).title} found on USB",
                                  "connect the kits, run `tinydeploy doctor`, or try "
                                  f"`tinydeploy lab check --kit {kit.name} --virtual 8`", exit_code=EXIT_FAILED)
    console = Console(stderr=True)
    simulated = any(runner.caps.simulated_sensors for runner in runners)
    console.print(f"checking {len(runners) + len(unresolved)} {kit.name} kit(s)"
                  + (" [yellow](virtual kits: the sensors are simulated)[/]" if simulated else ""))
    options = KitCheckOptions(runs=runs, interactive=interactive, engine=engine)
    with ProgressLines([r.label for r in runners] + [p.port for p in unresolved], console) as lines:
        results = run_kit_check(kit, runners, options, progress=lines.update, unresolved=unresolved)
    if csv_path is not None:
        atomic_write_text(csv_path, kit_results_csv(results))
    if as_json:
        print(json.dumps(kit_results_json(kit, results), indent=2))
    else:
        columns = [c for c in PART_COLUMNS if c != "button" or interactive]
        title = f"lab check --kit {kit.name}: {sum(r.passed for r in results)} of {len(results)} passed"
        table = Table(title=title, caption="sensors SIMULATED on the virtual board (generated data)" if simulated
                      else None)
        for column in ["board", "USB serial", *columns, "status"]:
            table.add_column(column)
        for r in results:
            cells = []
            for name in columns:
                part = r.parts.get(name)
                if part is None:
                    cells.append("-")
                elif part.passed:
                    cells.append(f"[green]PASS[/] {part.short}".rstrip())
                else:
                    cells.append(f"[red]FAIL[/] {part.reason}")
            table.add_row(r.port, r.serial_number or "-", *cells,
                          f"[green]{r.status}[/]" if r.passed else f"[red]{r.status}[/]")
        Console(width=max(Console().width, 160)).print(table)
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAILED
