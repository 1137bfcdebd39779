from __future__ import annotations

import json

import typer


def setup(
    board_name: str = typer.Option(..., "--board", "-b", help="Board profile whose tools to install (e.g. nano33ble)."),
    build_check: bool = typer.Option(True, "--build-check/--no-build-check",
                                     help="Verify by building an empty sketch for the board."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Install a board's PlatformIO platform, core and toolchain ahead of time (e.g. for a lab image), and verify them."""
    from rich.console import Console

    from tinydeploy.boards import get_board
    from tinydeploy.build.packages import setup_board
    from tinydeploy.build.platformio import core_dir

    board = get_board(board_name)
    console = Console(stderr=True)
    with console.status("checking") as status:
        result = setup_board(board, lambda message: status.update(message[:120]), build_check)
    result["core_dir"] = str(core_dir())
    if as_json:
        print(json.dumps(result, indent=2))
        return
    installed = ", ".join(result["installed"]) or "nothing (already installed)"
    Console().print(f"{board.name}: installed {installed}; verified: {result['verified']} (in {result['core_dir']})")
