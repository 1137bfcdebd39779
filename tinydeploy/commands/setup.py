from __future__ import annotations

import json
from pathlib import Path

import typer


def setup(
    board_name: str = typer.Option(None, "--board", "-b",
                                   help="Board profile whose tools to install (e.g. nano33ble)."),
    build_check: bool = typer.Option(True, "--build-check/--no-build-check",
                                     help="Verify by building an empty sketch for the board."),
    bundle: Path = typer.Option(None, "--bundle", metavar="FILE",
                                help="Then write an offline lab bundle (a .tar) of all the board's builds need."),
    from_bundle: Path = typer.Option(None, "--from", metavar="FILE",
                                     help="Install an offline lab bundle into tinydeploy's home (no internet needed)."),
    tflm_lib: Path = typer.Option(None, "--tflm-lib", metavar="PATH",
                                  help="A local Arduino TFLM library for the bundle; default: $TINYDEPLOY_TFLM_LIB."),
    force: bool = typer.Option(False, "--force",
                               help="Overwrite the bundle file / replace other versions in the home."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Install a board's PlatformIO platform, core and toolchain ahead of time, and verify them; or make / install
    an offline lab bundle."""
    from rich.console import Console

    from tinydeploy.errors import TinydeployError

    console = Console(stderr=True)
    if from_bundle is not None:
        if bundle is not None:
            raise TinydeployError("--from and --bundle do not go together", "install a bundle, or make one")
        from tinydeploy.lab.bundle import describe, install_bundle, read_manifest

        if board_name and board_name != read_manifest(from_bundle)[0].get("board"):
            raise TinydeployError(f"{from_bundle} is a bundle for {read_manifest(from_bundle)[0].get('board')}, not "
                                  f"{board_name}", "give that bundle's board, or leave --board out")
        with console.status("checking the bundle") as status:
            result = install_bundle(from_bundle, force, lambda message: status.update(message[:120]))
        if as_json:
            print(json.dumps(result, indent=2))
            return
        out = Console()
        out.print(f"installed {from_bundle} into {result['home']} ({result['file_count']} files, checksums verified)")
        out.print(describe(result), soft_wrap=True)
        for note in result["notes"]:
            out.print(f"note: {note}", soft_wrap=True)
        return
    if board_name is None:
        raise TinydeployError("setup needs --board BOARD (or --from BUNDLE)", "e.g. tinydeploy setup --board nano33ble")

    from tinydeploy.boards import get_board
    from tinydeploy.build.packages import setup_board
    from tinydeploy.build.platformio import core_dir

    board = get_board(board_name)
    if bundle is not None:
        from tinydeploy.lab.bundle import _tar_mode
        from tinydeploy.fsutil import check_output_path

        _tar_mode(bundle)
        check_output_path(bundle, force)  # refuse before the long setup
    with console.status("checking") as status:
        result = setup_board(board, lambda message: status.update(message[:120]), build_check)
        if bundle is not None:
            from tinydeploy.lab.bundle import write_bundle

            result["bundle"] = write_bundle(board, bundle, tflm_lib, force,
                                            lambda message: status.update(message[:120]))
    result["core_dir"] = str(core_dir())
    if as_json:
        print(json.dumps(result, indent=2))
        return
    out = Console()
    installed = ", ".join(result["installed"]) or "nothing (already installed)"
    out.print(f"{board.name}: installed {installed}; verified: {result['verified']} (in {result['core_dir']})")
    if bundle is not None:
        from tinydeploy.lab.bundle import describe

        made = result["bundle"]
        out.print(f"wrote {made['bundle']} ({made['bundle_bytes'] / 1e6:.1f} MB, {made['file_count']} files): "
                  f"{describe(made)}", soft_wrap=True)
        if made["tflm_library"] is None:
            out.print("note: no TFLM library in the bundle (give --tflm-lib PATH): builds with the TFLM engine on the "
                      "lab machines will need GitHub", soft_wrap=True)
