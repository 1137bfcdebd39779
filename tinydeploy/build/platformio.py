"""PlatformIO as tinydeploy's build tool, in a core directory tinydeploy owns (never ~/.platformio).

PlatformIO downloads `tool-scons` and the toolchain from its registry on first use. Offline it cannot,
so the core directory is provisioned here from what is installed: SCons from PyPI and the
arm-none-eabi-gcc on PATH (Debian's gcc-arm-none-eabi). With internet, PlatformIO may still fetch its
own toolchain package for boards that need one.
"""

from __future__ import annotations

import configparser
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterator

from tinydeploy.errors import TinydeployError
from tinydeploy.fsutil import atomic_write_text, write_error
from tinydeploy.paths import data_home

SCONS_PACKAGE = "tool-scons"
TOOLCHAIN_PACKAGE = "toolchain-gccarmnoneeabi"
TOOLCHAIN_PREFIX = "arm-none-eabi-"
REGISTRY_HOST = "api.registry.platformio.org"
ARM_TOOLCHAIN_HINT = ("install the Arm toolchain, e.g. on Debian/Ubuntu: apt-get install gcc-arm-none-eabi "
                      "libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib")

# The scons.py entry PlatformIO runs (`python scons.py ...`) for a tool-scons package.
_SCONS_ENTRY = '''"""SCons entry point for PlatformIO, provisioned by tinydeploy from the SCons installed from PyPI."""
import sys

from SCons.Script.Main import main

if __name__ == "__main__":
    sys.exit(main())
'''


def core_dir() -> Path:
    return data_home() / "platformio"


def _pio_version(version: str) -> str:
    """PlatformIO's spelling of a tool version: SCons 4.11.1 -> 4.41101.0, GCC 12.2.1 -> 1.120201.0."""
    parts = [int(p) for p in re.findall(r"\d+", version)[:3]] + [0, 0, 0]
    return f"{parts[0]}.{parts[0]}{parts[1]:02d}{parts[2]:02d}.0"


def _write_package(target: Path, name: str, version: str, kind: str, files: dict[str, str],
                   links: dict[str, Path]) -> None:
    """Builds a package directory beside `target` and renames it into place: readers never see half of one."""
    if target.is_dir() and _package_current(target, version, links):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    staging.chmod(0o755)
    try:
        manifest = {"name": name, "version": version, "description": "provisioned by tinydeploy from installed tools"}
        (staging / "package.json").write_text(json.dumps(manifest, indent=2) + "\n")
        meta = {"type": kind, "name": name, "version": version,
                "spec": {"owner": "platformio", "id": None, "name": name, "requirements": None, "uri": None}}
        (staging / ".piopm").write_text(json.dumps(meta) + "\n")
        for relative, text in files.items():
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            (staging / relative).write_text(text)
        for relative, source in links.items():
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            (staging / relative).symlink_to(source)
        if target.exists() or target.is_symlink():
            retired = target.with_name(f".{name}-old-{os.getpid()}")
            os.rename(target, retired)
            shutil.rmtree(retired, ignore_errors=True)
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _package_current(directory: Path, version: str, links: dict[str, Path]) -> bool:
    try:
        manifest = json.loads((directory / "package.json").read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("version") != version or not (directory / ".piopm").is_file():
        return False
    return all((directory / rel).is_symlink() and os.readlink(directory / rel) == str(src) and (directory / rel).exists()
               for rel, src in links.items())


def _scons_source() -> tuple[Path, str]:
    try:
        import SCons  # noqa: PLC0415 (only needed while provisioning)
    except ImportError:
        raise TinydeployError("SCons is not installed", "pip install scons (PlatformIO builds with it)") from None
    return Path(SCons.__file__).resolve().parent, metadata.version("scons")


def _toolchain_source() -> tuple[Path, str] | None:
    gcc = shutil.which(f"{TOOLCHAIN_PREFIX}gcc")
    if not gcc:
        return None
    try:
        version = subprocess.run([gcc, "-dumpversion"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(gcc).parent, version or "0.0.0"


@contextmanager
def _provision_lock(core: Path) -> Iterator[None]:
    core.mkdir(parents=True, exist_ok=True)
    with open(core / ".tinydeploy-provision.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two tinydeploy processes provisioning at once take turns
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def provision_core_dir(core: Path | None = None) -> Path:
    """Makes `core` (default: tinydeploy's own) usable offline; idempotent and safe to run concurrently."""
    core = core or core_dir()
    packages = core / "packages"
    with _provision_lock(core):
        scons_dir, scons_version = _scons_source()
        _write_package(packages / SCONS_PACKAGE, SCONS_PACKAGE, _pio_version(scons_version), "tool",
                       {"scons.py": _SCONS_ENTRY}, {"SCons": scons_dir})
        toolchain = _toolchain_source()
        if toolchain is not None:
            bin_dir, gcc_version = toolchain
            links = {f"bin/{tool.name}": tool for tool in sorted(bin_dir.glob(f"{TOOLCHAIN_PREFIX}*"))}
            _write_package(packages / TOOLCHAIN_PACKAGE, TOOLCHAIN_PACKAGE, f"1.{_pio_version(gcc_version).split('.', 1)[1]}",
                           "tool", {}, links)
        _settle_app_state(core)
    return core


def _settle_app_state(core: Path) -> None:
    """Tells PlatformIO it already runs this version: otherwise it 'upgrades' its core packages online."""
    state_path = core / "appstate.json"
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        state = {}
    version = metadata.version("platformio")
    if state.get("last_version") != version:
        state["last_version"] = version
        atomic_write_text(state_path, json.dumps(state, indent=4))


def platformio_env(core: Path | None = None) -> dict[str, str]:
    """os.environ for running PlatformIO in tinydeploy's core directory (provisioned on first use)."""
    core = provision_core_dir(core)
    env = dict(os.environ)
    env.update({
        "PLATFORMIO_CORE_DIR": str(core),
        "PLATFORMIO_SETTING_ENABLE_TELEMETRY": "No",
        "PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL": "3650",
        "PLATFORMIO_DISABLE_UPGRADE_CHECK": "true",
        "PLATFORMIO_NO_ANSI": "true",
        "PYTHONUNBUFFERED": "1",
    })
    return env


def platformio_command(*args: str) -> list[str]:
    """`pio ARGS` with the PlatformIO installed beside tinydeploy (its SCons then runs on the same Python)."""
    try:
        metadata.version("platformio")
    except metadata.PackageNotFoundError:
        raise TinydeployError("PlatformIO is not installed", "pip install platformio") from None
    return [sys.executable, "-m", "platformio", *args]


def registry_reachable(timeout: float = 3.0) -> bool:
    from tinydeploy.net import host_reachable

    return host_reachable(REGISTRY_HOST, timeout=timeout)


def platformio_unreachable_message(what: str = "a package") -> TinydeployError:
    """The error for a build that needs PlatformIO's registry while it is unreachable."""
    if what == "the Arm toolchain":
        hint = ARM_TOOLCHAIN_HINT + " (PlatformIO then needs no download)"
    else:
        hint = ("run this board's first build once with internet access (PlatformIO keeps what it downloads), "
                "or use --board virtual, which builds offline")
    return TinydeployError(f"PlatformIO needs to download {what} but its registry is unreachable (no internet?)",
                           hint)


@dataclass(frozen=True)
class BuildResult:
    elf_path: Path
    flash_bytes: int          # text + data: what is written to flash
    ram_bytes: int            # data + bss: static RAM, without the stack reserve
    stack_reserve_bytes: int  # RAM the linker script reserved for the stack (0 if none)
    log: str
    log_path: Path
    seconds: float


_RAM_OVERFLOW = re.compile(r"region [`'\"]?(\w+)'? overflowed by (\d+) bytes")
_COMPILE_ERROR = re.compile(r"^\S+:\d+(:\d+)?: (fatal )?error: ")
_NETWORK_ERROR = re.compile(r"HTTPClientError|InternetConnectionError|Could not resolve|Failed to establish|"
                            r"Max retries exceeded|Temporary failure in name resolution")
_TOOL_MISSING = re.compile(r"(arm-none-eabi-[\w+-]+): (command )?not found|No such file or directory: '?(arm-none-eabi-[\w+-]+)")


def _board_limits(project_dir: Path, env_name: str) -> tuple[int | None, int | None]:
    """(flash, RAM) limits of the project's board from tinydeploy's board profiles, if it is one of them."""
    from tinydeploy.boards import all_boards  # noqa: PLC0415

    config = configparser.ConfigParser(interpolation=None)
    try:
        config.read(project_dir / "platformio.ini")
        board_id = config.get(f"env:{env_name}", "board", fallback=None)
    except configparser.Error:
        return None, None
    for board in all_boards().values():
        if board.pio_board == board_id:
            return board.flash_bytes, board.ram_bytes
    return None, None


def _kib(n: int | None) -> str:
    if n is None:
        return "its limit"
    return f"{n // 1024} KB" if n % 1024 == 0 else f"{n:,} B"


def _failure(log_lines: list[str], log_path: Path, project_dir: Path, env_name: str) -> TinydeployError:
    text = "\n".join(log_lines)
    for match in _RAM_OVERFLOW.finditer(text):
        region, over = match.group(1), int(match.group(2))
        flash_limit, ram_limit = _board_limits(project_dir, env_name)
        if region.upper() in ("RAM", "DRAM", "DRAM0_0_SEG", "SRAM"):
            return TinydeployError(
                f"the model does not fit the board's RAM: the linker reports {over:,} bytes over {_kib(ram_limit)}",
                "shrink the model or its tensor arena, or choose a board with more RAM (static data and the stack "
                f"reserve must fit); log: {log_path}", exit_code=1)
        if "FLASH" in region.upper() or region.upper() in ("ROM", "IROM0_0_SEG"):
            return TinydeployError(
                f"the model does not fit the board's flash: the linker reports {over:,} bytes over {_kib(flash_limit)}",
                f"shrink the model (fewer or smaller weights) or choose a board with more flash; log: {log_path}",
                exit_code=1)
        return TinydeployError(f"the firmware does not fit the board: region {region} overflowed by {over:,} bytes",
                               f"log: {log_path}", exit_code=1)
    full = next((line.strip() for line in log_lines if "No space left on device" in line), None)
    if full:
        return TinydeployError(f"no space left on the disk while building {project_dir}",
                               f"free some space, or choose an --out on another disk; log: {log_path}")
    for line in log_lines:
        match = _TOOL_MISSING.search(line)
        if match:
            return TinydeployError(f"the Arm toolchain is missing ({match.group(1) or match.group(3)} not found)",
                                   ARM_TOOLCHAIN_HINT)
        if "nano.specs" in line and "No such file" in line or "cannot find -lc_nano" in line:
            return TinydeployError("newlib-nano for arm-none-eabi is missing",
                                   "install it, e.g. on Debian/Ubuntu: apt-get install libnewlib-arm-none-eabi "
                                   "libstdc++-arm-none-eabi-newlib")
    if _NETWORK_ERROR.search(text):
        return platformio_unreachable_message("a platform or package for this project")
    for line in log_lines:
        if _COMPILE_ERROR.search(line) or "undefined reference to" in line:
            return TinydeployError(f"the firmware does not build: {line.strip()}", f"full log: {log_path}")
    last_error = next((line.strip() for line in reversed(log_lines) if "rror" in line), None)
    if last_error is None:  # e.g. its SCons was killed (out of memory?): PlatformIO only prints [FAILED]
        return TinydeployError(f"PlatformIO stopped building {project_dir} without an error message (was its "
                               "build process killed, e.g. out of memory?)", f"run again; full log: {log_path}")
    return TinydeployError(f"PlatformIO failed to build {project_dir}: {last_error}", f"full log: {log_path}")


def _check_downloads_possible(project_dir: Path, env_name: str, core: Path) -> None:
    """Fail in a second, not after PlatformIO's ~60 s registry timeout, when the build would need a
    download (platform, toolchain, libraries) and the registry is unreachable."""
    config = configparser.ConfigParser(interpolation=None)
    try:
        config.read(project_dir / "platformio.ini")
        platform = config.get(f"env:{env_name}", "platform", fallback="").strip()
        lib_deps = config.get(f"env:{env_name}", "lib_deps", fallback="").strip()
    except configparser.Error:
        return  # PlatformIO will report the broken file itself
    needs = []
    if platform.startswith(("symlink://", "file://")):
        if not (core / "packages" / TOOLCHAIN_PACKAGE).is_dir() and not shutil.which(f"{TOOLCHAIN_PREFIX}gcc"):
            needs.append("the Arm toolchain")
    elif platform:
        name = platform.split("@", 1)[0].rsplit("/", 1)[-1]
        if not (core / "platforms" / name).is_dir():
            needs.append(f"the '{name}' platform")
    if lib_deps and not (project_dir / ".pio" / "libdeps" / env_name).is_dir():
        needs.append("the project's libraries (lib_deps)")
    if needs and not registry_reachable():
        raise platformio_unreachable_message(" and ".join(needs))


def build_project(project_dir: Path, env_name: str, on_line: Callable[[str], None] | None = None) -> BuildResult:
    """`pio run -d project_dir -e env_name`, streaming its output lines to on_line."""
    project_dir = Path(project_dir).resolve()
    if not (project_dir / "platformio.ini").is_file():
        raise TinydeployError(f"{project_dir} is not a PlatformIO project (no platformio.ini)",
                              "generate the project first")
    env = platformio_env()
    core = Path(env["PLATFORMIO_CORE_DIR"])
    _check_downloads_possible(project_dir, env_name, core)
    log_path = project_dir / ".pio" / f"tinydeploy-build-{env_name}.log"
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, log_path.parent, "create the build directory") from exc
    command = platformio_command("run", "-d", str(project_dir), "-e", env_name)
    started = time.monotonic()
    lines: list[str] = []
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, errors="replace", env=env, start_new_session=True)
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            if on_line is not None:
                on_line(line)
        returncode = proc.wait()
    except BaseException:  # Ctrl-C, or a TinydeployError from on_line: stop the whole build
        _kill_group(proc)
        raise
    # PlatformIO may exit while compilers it started still run (e.g. its SCons was killed): end them too
    kill_process_group(proc.pid)
    seconds = time.monotonic() - started
    log = "\n".join(lines) + "\n"
    try:
        atomic_write_text(log_path, log)
    except TinydeployError:
        pass  # e.g. the disk is full: the build's own error says more
    if returncode != 0:
        if returncode < 0:
            raise TinydeployError(f"PlatformIO was killed by {_signal_name(-returncode)} while building "
                                  f"{project_dir}", f"run again (the build resumes); full log: {log_path}")
        raise _failure(lines, log_path, project_dir, env_name)
    elf_path = project_dir / ".pio" / "build" / env_name / "firmware.elf"
    if not elf_path.is_file():
        raise TinydeployError(f"PlatformIO reported success but {elf_path} is missing", f"full log: {log_path}")
    flash, ram, stack = elf_sizes(elf_path)
    return BuildResult(elf_path, flash, ram, stack, log, log_path, seconds)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def kill_process_group(pgid: int) -> None:
    """SIGKILL whatever is left in a process group (a session tinydeploy started); nothing if it is empty."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_group(proc: subprocess.Popen) -> None:
    """Stops a PlatformIO run and everything it started: SIGTERM, then SIGKILL for what is left."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=5)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    kill_process_group(proc.pid)  # compilers that outlived PlatformIO, or a PlatformIO ignoring SIGTERM
    proc.wait()


# Writable by ELF flags but kept in flash by Cortex-M linker scripts (never copied to RAM).
_CONSTRUCTOR_TABLES = (".init_array", ".fini_array", ".preinit_array", ".init_arrays")


def elf_sizes(elf_path: Path) -> tuple[int, int, int]:
    """(flash, static RAM, stack reserve) in bytes, counted as `size -B` does, the stack reserve apart."""
    from elftools.elf.constants import SH_FLAGS  # noqa: PLC0415
    from elftools.elf.elffile import ELFFile  # noqa: PLC0415

    text = data = bss = stack = 0
    with open(elf_path, "rb") as stream:
        for section in ELFFile(stream).iter_sections():
            flags = section["sh_flags"]
            if not flags & SH_FLAGS.SHF_ALLOC or section["sh_size"] == 0:
                continue
            size = section["sh_size"]
            if section.name in (".stack_reserve", ".stack", "._user_heap_stack"):
                stack += size
            elif section["sh_type"] == "SHT_NOBITS":
                bss += size
            elif flags & SH_FLAGS.SHF_WRITE and section.name not in _CONSTRUCTOR_TABLES:
                data += size
            else:
                text += size
    return text + data, data + bss, stack
