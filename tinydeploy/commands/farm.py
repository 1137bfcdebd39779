from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import typer

from tinydeploy.errors import EXIT_FAILED, TinydeployError

app = typer.Typer(help="Boards of this machine in a labgrid board farm.", no_args_is_help=True,
                  add_completion=False)

READY_TIMEOUT_S = 60.0
RESTART_STATUS = 100  # labgrid-exporter's exit status when the coordinator went away: start it again


def default_coordinator() -> str:
    return os.environ.get("LG_COORDINATOR", "127.0.0.1:20408")


def _usb_slots(specs: list[str], workdir: Path, bossac: str | None) -> list:
    from tinydeploy.boards import get_board
    from tinydeploy.farm.service import UsbBoardSlot

    slots = []
    for spec in specs:
        name, _, serial_number = spec.partition(":")
        if not name or not serial_number:
            raise TinydeployError(f"--usb {spec!r} is not BOARD:SERIAL", "e.g. --usb nano33ble:ABCDEF0123456789 "
                                  "(the USB serial number: lab check shows it, or udevadm info /dev/ttyACM0)")
        board = get_board(name)
        if board.usb_sketch is None:
            raise TinydeployError(f"{board.name} is not a USB board", "use --virtual N for virtual boards")
        slots.append(UsbBoardSlot(board, f"{board.name}-{serial_number}", workdir, serial_number, bossac))
    return slots


@app.command("serve")
def serve(
    virtual: int = typer.Option(0, "--virtual", min=0, max=64, help="Offer N virtual boards (QEMU)."),
    usb: list[str] = typer.Option([], "--usb", metavar="BOARD:SERIAL", help="Offer a USB board of this host by "
                                  "its profile and USB serial number (repeatable), e.g. nano33ble:ABCDEF01."),
    board_name: str = typer.Option("virtual", "--board", "-b", help="Profile of the virtual boards."),
    name: str = typer.Option(None, "--name", "-n", help="Exporter name in the farm (default: this host's name)."),
    coordinator: str = typer.Option(None, "--coordinator", "-c", metavar="HOST:PORT",
                                    help="labgrid coordinator (default: $LG_COORDINATOR, else 127.0.0.1:20408)."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address the boards' ports listen on and clients reach "
                             "(give this machine's LAN address for a farm)."),
    bossac: str = typer.Option(None, "--bossac", help="bossac for USB boards (default: bossac on PATH)."),
    config_path: Path = typer.Option(None, "--config", help="Where to write the exporter YAML (default: in "
                                     "tinydeploy's state folder)."),
    no_exporter: bool = typer.Option(False, "--no-exporter", help="Serve the boards and write the YAML, but leave "
                                     "running labgrid-exporter to you."),
) -> int:
    """Offer this machine's boards to a labgrid farm: a board service plus labgrid's exporter (stops with Ctrl-C)."""
    try:
        import yaml  # labgrid's own dependency: its exporter reads YAML
    except ImportError:
        raise TinydeployError("labgrid is not installed", "pip install 'tinydeploy[farm]' (or pip install labgrid)")

    from tinydeploy.boards import get_board
    from tinydeploy.farm.service import BoardService, LabgridExporter, VirtualBoardSlot, exporter_config, \
        new_workdir
    from tinydeploy.fsutil import atomic_write_text
    from tinydeploy.paths import data_home
    from tinydeploy.runners import runner_class

    if virtual == 0 and not usb:
        raise TinydeployError("no boards to offer", "give --virtual N and/or --usb BOARD:SERIAL")
    board = get_board(board_name)
    if virtual and not runner_class(board.upload_runner).caps.emulated:
        raise TinydeployError(f"{board.name} is not an emulated board", "--board names the virtual boards' profile")
    if not no_exporter:
        from tinydeploy.farm.service import labgrid_exporter_program

        labgrid_exporter_program()  # refuses at once when labgrid is missing
    name = name or socket.gethostname()
    coordinator = coordinator or default_coordinator()
    workdir = new_workdir()
    state = data_home() / "farm"
    state.mkdir(parents=True, exist_ok=True)
    config_path = config_path or state / f"{name}.yaml"

    def log(message: str) -> None:
        print(f"tinydeploy farm: {message}", file=sys.stderr, flush=True)

    slots = [VirtualBoardSlot(board, f"{board.name}-{i}", workdir) for i in range(virtual)]
    slots += _usb_slots(usb, workdir, bossac)
    exporter = None
    try:
        with BoardService(slots, host, log) as service:
            atomic_write_text(config_path, "## written by tinydeploy farm serve (labgrid exporter YAML: comments start with ##)\n"
                              + yaml.safe_dump(exporter_config(service, host), sort_keys=False))
            for served in service.boards:
                log(f"{served.slot.group}: program port {host}:{served.program_port}"
                    + (f", serial port {host}:{served.uart_port}" if served.uart_port else ""))
            if no_exporter:
                log(f"ready: run labgrid-exporter -c {coordinator} -n {name} --hostname {host} {config_path}")
                while True:
                    time.sleep(3600)
            exporter = LabgridExporter(config_path, coordinator, name, host, state / f"{name}.log")
            while True:
                exporter.start()
                status = _wait_ready(exporter, name, coordinator, log)
                if status is None:
                    status = exporter.wait()
                if status != RESTART_STATUS:
                    raise TinydeployError(f"labgrid-exporter stopped with status {status}",
                                          f"see its log: {exporter.log_path}", exit_code=EXIT_FAILED)
                log("the coordinator went away: restarting labgrid-exporter in 2 s")
                time.sleep(2.0)
    finally:
        if exporter is not None:
            exporter.stop()
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)


def _wait_ready(exporter, name: str, coordinator: str, log) -> int | None:
    """Wait until the exporter reports to the coordinator; its exit status if it stopped first."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not exporter.ready.wait(0.2):
        status = exporter.wait(0)
        if status is not None:
            return status
        if time.monotonic() > deadline:
            log(f"labgrid-exporter has not reached coordinator {coordinator} after {READY_TIMEOUT_S:g} s; "
                f"still trying (log: {exporter.log_path})")
            deadline = float("inf")
    log(f"ready: exporter {name} registered with coordinator {coordinator}")
    return None
