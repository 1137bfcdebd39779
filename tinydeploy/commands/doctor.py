from __future__ import annotations

import json

import typer

from tinydeploy.errors import EXIT_FAILED, EXIT_OK


def doctor(
    boards: list[str] = typer.Option([], "--board", "-b", help="Board profiles in use (default: all)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> int:
    """Check this machine for a lab session: packages, PlatformIO, toolchain, QEMU, serial ports."""
    from rich.console import Console
    from rich.markup import escape

    from tinydeploy.boards import get_board
    from tinydeploy.lab.doctor import FAIL, OK, as_json as checks_json, run_doctor

    for name in boards:
        get_board(name)  # unknown names fail here with the list of profiles
    checks = run_doctor(boards or None)
    if as_json:
        print(json.dumps(checks_json(checks), indent=2))
    else:
        console = Console()
        colours = {OK: "green", FAIL: "red"}
        for check in checks:
            colour = colours.get(check.status, "yellow")
            line = f"[{colour}]{check.status:<4}[/] {escape(check.name)}: {escape(check.detail)}"
            if check.fix:
                line += f"\n     -> {escape(check.fix)}"
            console.print(line, soft_wrap=True)
    return EXIT_FAILED if any(c.status == FAIL for c in checks) else EXIT_OK
