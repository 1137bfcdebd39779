"""A real board's PlatformIO platform and toolchain: are they installed, install them ahead of time, verify them.

PlatformIO downloads a platform (e.g. nordicnrf52), its Arduino core and its toolchain, hundreds of MB,
on a board's first build. Where its registry is unreachable that build would fail after ~60 s of retries;
tinydeploy checks first and names the fix (`tinydeploy setup --board B` once with internet).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Callable

from tinydeploy.boards import Board
from tinydeploy.errors import TinydeployError

Progress = Callable[[str], None]
SETUP_TIMEOUT_S = 1800.0


def platform_name(board: Board) -> str:
    return board.pio_platform.split("@", 1)[0].rsplit("/", 1)[-1]


def platform_dir(board: Board, core: Path | None = None) -> Path:
    """The board's installed platform folder: the one of the pinned version where several are installed
    (PlatformIO names a second version's folder `name@version`); `platforms/<name>` when none is."""
    from tinydeploy.build.platformio import core_dir

    core = core or core_dir()
    name = platform_name(board)
    found = []
    for folder in sorted((core / "platforms").glob(f"{name}*")):
        try:
            manifest = json.loads((folder / "platform.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict) and manifest.get("name") == name:
            found.append((folder, manifest.get("version")))
    for folder, version in found:
        if board.pio_platform_version is None or version == board.pio_platform_version:
            return folder
    return core / "platforms" / name


def platform_label(board: Board) -> str:
    return f"the '{platform_name(board)}' platform" + (f" {board.pio_platform_version}"
                                                       if board.pio_platform_version else "")


def missing_board_packages(board: Board, core: Path | None = None) -> list[str]:
    """What a build for `board` would download: the platform, and the packages it declares for the board's
    framework that are not installed ([] when all are there; the platform that ships with tinydeploy needs none)."""
    if board.platform_is_bundled:
        return []
    from tinydeploy.build.platformio import core_dir

    core = core or core_dir()
    manifest_path = platform_dir(board, core) / "platform.json"
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError):
        return [platform_label(board)]
    if board.pio_platform_version and manifest.get("version") != board.pio_platform_version:
        return [platform_label(board)]  # another release is installed: projects pin this one
    installed = {path.name.split("@", 1)[0] for path in (core / "packages").glob("*") if path.is_dir()}
    required = [name for name, spec in manifest.get("packages", {}).items() if not spec.get("optional", False)]
    missing = [name for name in required + _framework_packages(manifest, board) if name not in installed]
    return sorted(set(missing))


def _framework_packages(manifest: dict, board: Board) -> list[str]:
    """The Arduino core package of the platform for this board (e.g. framework-arduino-mbed)."""
    packages = manifest.get("packages", {})
    frameworks = [name for name in packages if name.startswith(f"framework-{board.pio_framework}")]
    if board.framework_package and board.framework_package in packages:
        return [board.framework_package]  # the profile names the board's core where the platform ships several
    return frameworks[:1]


def check_board_packages(board: Board) -> None:
    """Raises at once, with the fix, when a build for `board` needs downloads and PlatformIO's registry is
    unreachable."""
    from tinydeploy.build.platformio import registry_reachable

    missing = missing_board_packages(board)
    if missing and not registry_reachable():
        raise TinydeployError(f"building for {board.name} needs {', '.join(missing)} (PlatformIO downloads them, "
                              "hundreds of MB) but PlatformIO's registry is unreachable (no internet?)",
                              f"run `tinydeploy setup --board {board.name}` once with internet access (it installs "
                              "them for later offline use), or use --board virtual")


def _setup_project(board: Board, directory: Path) -> None:
    """An empty sketch for the board: `pio pkg install` reads its needs from it, `pio run` proves the toolchain."""
    (directory / "src").mkdir(parents=True, exist_ok=True)
    (directory / "src" / "main.cpp").write_text("#include <Arduino.h>\n\nvoid setup() {}\n\nvoid loop() {}\n")
    (directory / "platformio.ini").write_text(
        f"[env:{board.name}]\nplatform = {board.pio_platform_spec}\nboard = {board.pio_board}\n"
        f"framework = {board.pio_framework}\n")


def _run(args: list[str], progress: Progress, what: str, board: Board, diagnose=None) -> None:
    """One PlatformIO run of the setup, its output condensed into progress lines, its log kept in tinydeploy's
    home (the temporary project goes away)."""
    from tinydeploy.build.platformio import core_dir, run_platformio

    def show(line: str) -> None:
        if line.strip():
            progress(f"{what}: {line.strip()[:100]}")

    run_platformio(args, f"{what} for {board.name}", core_dir().parent / "logs" / f"setup-{board.name}-{what}.log",
                   show, timeout=SETUP_TIMEOUT_S, diagnose=diagnose)


def setup_board(board: Board, progress: Progress, build_check: bool = True) -> dict:
    """Installs the board's platform, core and toolchain into tinydeploy's PlatformIO core directory and
    verifies them (an empty sketch builds). Returns what was done; raises TinydeployError on failure."""
    from tinydeploy.build.platformio import registry_reachable

    if board.platform_is_bundled:
        from tinydeploy.build.platformio import provision_core_dir

        provision_core_dir()
        return {"board": board.name, "installed": [], "verified": "offline toolchain provisioned"}
    missing = missing_board_packages(board)
    if missing and not registry_reachable():
        raise TinydeployError(f"cannot install {', '.join(missing)} for {board.name}: PlatformIO's registry is "
                              "unreachable (no internet?)", "run this once on a machine with internet access; the "
                              "installed core directory can then be copied into a lab image ($TINYDEPLOY_HOME)")
    with tempfile.TemporaryDirectory(prefix="tinydeploy-setup-") as tmp:
        project = Path(tmp)
        _setup_project(board, project)
        if missing:
            progress(f"installing {', '.join(missing)}")
            _run(["pkg", "install", "-d", str(project), "-e", board.name], progress, "installing", board)
        still = missing_board_packages(board)
        if still:
            raise TinydeployError(f"after installing, {', '.join(still)} are still missing for {board.name}",
                                  "retry; if it persists, report it")
        verified = "packages present"
        if build_check:
            progress("verifying: building an empty sketch")
            _run(["run", "-d", str(project), "-e", board.name], progress, "verifying", board)
            verified = "an empty sketch builds"
    return {"board": board.name, "installed": missing, "verified": verified}
