"""A real board's PlatformIO platform and toolchain: are they installed, install them ahead of time, verify them.

PlatformIO downloads a platform (e.g. nordicnrf52), its Arduino core and its toolchain, hundreds of MB,
on a board's first build. Where its registry is unreachable that build would fail after ~60 s of retries;
tinydeploy checks first and names the fix (`tinydeploy setup --board B` once with internet).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Callable

from tinydeploy.boards import Board
from tinydeploy.errors import TinydeployError

Progress = Callable[[str], None]
SETUP_TIMEOUT_S = 1800.0


def platform_name(board: Board) -> str:
    return board.pio_platform.split("@", 1)[0].rsplit("/", 1)[-1]


def platform_dir(board: Board, core: Path | None = None) -> Path:
    from tinydeploy.build.platformio import core_dir

    return (core or core_dir()) / "platforms" / platform_name(board)


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
        return [f"the '{platform_name(board)}' platform"]
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
        f"[env:{board.name}]\nplatform = {board.pio_platform}\nboard = {board.pio_board}\n"
        f"framework = {board.pio_framework}\n")


def _run(command: list[str], progress: Progress, what: str, log: list[str]) -> int:
    from tinydeploy.build.platformio import _kill_group, platformio_env

    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, errors="replace", env=platformio_env(), start_new_session=True)
    started = time.monotonic()
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip()
            log.append(line)
            if line.strip():
                progress(f"{what}: {line.strip()[:100]}")
            if time.monotonic() - started > SETUP_TIMEOUT_S:
                raise TinydeployError(f"{what} took over {SETUP_TIMEOUT_S:g} s", "check the network and retry")
        return proc.wait()
    except BaseException:
        _kill_group(proc)
        raise


def setup_board(board: Board, progress: Progress, build_check: bool = True) -> dict:
    """Installs the board's platform, core and toolchain into tinydeploy's PlatformIO core directory and
    verifies them (an empty sketch builds). Returns what was done; raises TinydeployError on failure."""
    from tinydeploy.build.platformio import platformio_command, registry_reachable

    if board.platform_is_bundled:
        from tinydeploy.build.platformio import provision_core_dir

        provision_core_dir()
        return {"board": board.name, "installed": [], "verified": "offline toolchain provisioned"}
    missing = missing_board_packages(board)
    if missing and not registry_reachable():
        raise TinydeployError(f"cannot install {', '.join(missing)} for {board.name}: PlatformIO's registry is "
                              "unreachable (no internet?)", "run this once on a machine with internet access; the "
                              "installed core directory can then be copied into a lab image ($TINYDEPLOY_HOME)")
    log: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tinydeploy-setup-") as tmp:
        project = Path(tmp)
        _setup_project(board, project)
        if missing:
            progress(f"installing {', '.join(missing)}")
            if _run(platformio_command("pkg", "install", "-d", str(project), "-e", board.name), progress,
                    "install", log) != 0:
                raise TinydeployError(f"PlatformIO could not install the packages for {board.name}: "
                                      f"{next((l for l in reversed(log) if 'rror' in l), log[-1] if log else '')[:160]}",
                                      "check the network and retry")
        still = missing_board_packages(board)
        if still:
            raise TinydeployError(f"after installing, {', '.join(still)} are still missing for {board.name}",
                                  "retry; if it persists, report it")
        verified = "packages present"
        if build_check:
            progress("verifying: building an empty sketch")
            if _run(platformio_command("run", "-d", str(project), "-e", board.name), progress, "verify", log) != 0:
                raise TinydeployError(f"an empty sketch does not build for {board.name}: "
                                      f"{next((l for l in reversed(log) if 'rror' in l), '')[:160]}",
                                      "rerun `tinydeploy setup` (a download may have been cut)")
            verified = "an empty sketch builds"
    return {"board": board.name, "installed": missing, "verified": verified}
