from __future__ import annotations

import json

import typer


def boards(
    as_json: bool = typer.Option(False, "--json", help="Print the profiles as JSON."),
) -> None:
    """List the boards tinydeploy knows, with their memory and toolchain."""
    from rich.console import Console
    from rich.table import Table

    from tinydeploy.boards import all_boards

    profiles = all_boards()
    if as_json:
        print(json.dumps({name: {
            "title": b.title, "mcu": b.mcu, "cpu": b.cpu, "clock_hz": b.clock_hz, "flash_bytes": b.flash_bytes,
            "ram_bytes": b.ram_bytes, "core_flash_bytes": b.core_flash_bytes, "core_ram_bytes": b.core_ram_bytes,
            "default_engine": b.default_engine, "platformio": [b.pio_platform, b.pio_board, b.pio_framework],
            "usb": [str(u) for u in b.usb_ids]} for name, b in profiles.items()}, indent=2))
        return
    table = Table(title="Boards")
    for column in ("board", "MCU / CPU", "clock", "flash", "RAM", "core flash/RAM", "engine", "PlatformIO", "USB"):
        table.add_column(column, justify="right" if column in ("clock", "flash", "RAM") else "left")
    for b in profiles.values():
        table.add_row(b.name, f"{b.mcu}\n{b.cpu}", f"{b.clock_hz / 1e6:g} MHz", f"{b.flash_bytes:,} B",
                      f"{b.ram_bytes:,} B", f"{b.core_flash_bytes:,} / {b.core_ram_bytes:,} B", b.default_engine,
                      f"{b.pio_platform}/{b.pio_board}", "\n".join(str(u) for u in b.usb_ids) or "-")
    Console().print(table)
