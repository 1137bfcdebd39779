"""`tinydeploy doctor`: is this machine ready for a lab session? Each check is OK, WARN or FAIL with what to do.

Read-only: it runs programs' --version and looks at files, never installs or changes anything.
"""

from __future__ import annotations

import grp
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

OK, WARN, FAIL = "OK", "WARN", "FAIL"
APT_TOOLS = ("gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm")
REQUIRED_PACKAGES = ("typer", "rich", "jinja2", "numpy", "flatbuffers", "tflite-micro", "pyserial", "platformio",
                     "scons", "pyelftools", "matplotlib")
# Programs that open new serial ports on their own and hold them while a board uploads or talks.
PORT_GRABBERS = {
    "ModemManager": "it probes every new serial port for a modem and holds a board's port for seconds after it "
                    "appears (uploads fail): `sudo systemctl stop ModemManager` (and `disable` it), or a udev rule "
                    "with ENV{ID_MM_DEVICE_IGNORE}=\"1\" for the boards' USB ids",
    "brltty": "the braille daemon claims USB-serial adapters (CH340, FTDI) so their port vanishes: "
              "`sudo apt-get remove brltty`",
}


@dataclass(frozen=True)
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def _run(command: list[str], timeout: float = 20.0) -> tuple[int, str]:
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return -1, str(exc)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def check_python() -> list[Check]:
    version = ".".join(map(str, sys.version_info[:3]))
    checks = [Check("python", OK if sys.version_info >= (3, 10) else FAIL, f"Python {version} ({sys.executable})",
                    "" if sys.version_info >= (3, 10) else "use Python 3.10 or newer")]
    missing, found = [], []
    for name in REQUIRED_PACKAGES:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            missing.append(name)
    if missing:
        checks.append(Check("python packages", FAIL, f"missing: {', '.join(missing)}",
                            f"{sys.executable} -m pip install {' '.join(missing)} (or reinstall tinydeploy)"))
    else:
        checks.append(Check("python packages", OK, f"{len(found)} required packages installed"))
    tensorflow = next((f"{n} {metadata.version(n)}" for n in ("tensorflow-cpu", "tensorflow")
                       if _has_distribution(n)), None)
    checks.append(Check("tensorflow", OK if tensorflow else WARN,
                        tensorflow or "not installed (only needed to convert Keras/SavedModel models)",
                        "" if tensorflow else "pip install 'tinydeploy[convert]'"))
    return checks


def _has_distribution(name: str) -> bool:
    try:
        metadata.version(name)
        return True
    except metadata.PackageNotFoundError:
        return False


def check_platformio(board_names: list[str]) -> list[Check]:
    from tinydeploy.boards import all_boards
    from tinydeploy.build.platformio import core_dir, platformio_command
    from tinydeploy.paths import firmware_dir

    try:
        code, text = _run(platformio_command("--version"), timeout=60)
    except Exception as exc:  # platformio_command raises when the package is missing
        code, text = -1, str(exc)
    if code != 0:
        return [Check("platformio", FAIL, f"does not run: {text[-120:]}", f"{sys.executable} -m pip install platformio")]
    core = core_dir()
    checks = [Check("platformio", OK, f"{text.splitlines()[-1]}; core dir {core}")]
    boards = all_boards()
    for name in board_names:
        board = boards[name]
        if board.platform_is_bundled:
            present = (firmware_dir() / "platform" / "platform.json").is_file()
            checks.append(Check(f"platform for {name}", OK if present else FAIL,
                                "tinydeploy's virtual-board platform (ships with tinydeploy)" if present
                                else "firmware/platform is missing", "" if present else "reinstall tinydeploy"))
            continue
        installed = (core / "platforms" / board.pio_platform).is_dir()
        checks.append(Check(f"platform for {name}", OK if installed else WARN,
                            f"PlatformIO platform '{board.pio_platform}' "
                            + ("installed" if installed else f"not installed in {core}"),
                            "" if installed else f"with internet access, before the lab: `tinydeploy setup --board "
                            f"{name}` (PlatformIO keeps what it downloads)"))
    return checks


def check_toolchain() -> list[Check]:
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        return [Check("arm toolchain", FAIL, "arm-none-eabi-gcc not found on PATH",
                      f"sudo apt-get install --no-install-recommends {APT_TOOLS}")]
    _, version = _run([gcc, "-dumpversion"])
    _, nano = _run([gcc, "-print-file-name=libc_nano.a"])
    checks = [Check("arm toolchain", OK, f"arm-none-eabi-gcc {version} ({gcc})")]
    has_nano = os.path.isabs(nano) and os.path.exists(nano)
    checks.append(Check("newlib-nano", OK if has_nano else FAIL, nano if has_nano else "libc_nano.a not found",
                        "" if has_nano else "sudo apt-get install libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib"))
    return checks


def check_qemu() -> list[Check]:
    qemu = shutil.which("qemu-system-arm")
    if qemu is None:
        return [Check("qemu (virtual board)", FAIL, "qemu-system-arm not found on PATH",
                      "sudo apt-get install --no-install-recommends qemu-system-arm")]
    _, version = _run([qemu, "--version"])
    _, machines = _run([qemu, "-machine", "help"])
    first = version.splitlines()[0] if version else "unknown version"
    if "mps2-an386" not in machines:
        return [Check("qemu (virtual board)", FAIL, f"{first} lacks the mps2-an386 machine",
                      "install QEMU 6.0 or newer (Debian/Ubuntu: qemu-system-arm)")]
    return [Check("qemu (virtual board)", OK, f"{first} with mps2-an386")]


def _serial_devices(dev: Path = Path("/dev")) -> list[Path]:
    return sorted(p for pattern in ("ttyACM*", "ttyUSB*") for p in dev.glob(pattern))


def check_serial_permissions() -> list[Check]:
    if not sys.platform.startswith("linux"):
        return [Check("serial ports", OK, f"not checked on {sys.platform}")]
    if os.geteuid() == 0:
        return [Check("serial ports", OK, "running as root: every port is accessible")]
    devices = _serial_devices()
    groups = set(os.getgroups())
    user = os.environ.get("USER", "$USER")
    if devices:
        denied = [str(d) for d in devices if not os.access(d, os.R_OK | os.W_OK)]
        if denied:
            group = grp.getgrgid(os.stat(denied[0]).st_gid).gr_name
            return [Check("serial ports", FAIL, f"no read/write access to {', '.join(denied)} (group {group})",
                          f"sudo usermod -aG {group} {user}, then log out and in again")]
        return [Check("serial ports", OK, f"read/write access to {', '.join(map(str, devices))}")]
    for name in ("dialout", "uucp"):  # Debian/Ubuntu, Arch/Fedora
        try:
            gid = grp.getgrnam(name).gr_gid
        except KeyError:
            continue
        if gid in groups:
            return [Check("serial ports", OK, f"you are in the '{name}' group (no board plugged in now)")]
        return [Check("serial ports", FAIL, f"you are not in the '{name}' group: boards' ports will be denied",
                      f"sudo usermod -aG {name} {user}, then log out and in again")]
    return [Check("serial ports", WARN, "no dialout/uucp group on this system",
                  "check that your user can open /dev/ttyACM* once a board is plugged in")]


def running_programs(proc: Path = Path("/proc")) -> set[str]:
    """Names (comm) of the running processes."""
    names = set()
    try:
        entries = list(proc.iterdir())
    except OSError:
        return names
    for entry in entries:
        if entry.name.isdigit():
            try:
                names.add((entry / "comm").read_text().strip())
            except OSError:
                pass
    return names


def check_port_grabbers(proc: Path = Path("/proc")) -> list[Check]:
    running = running_programs(proc)
    checks = []
    for program, why in PORT_GRABBERS.items():
        if program in running:
            checks.append(Check(program, WARN, "running", why))
        else:
            checks.append(Check(program, OK, "not running"))
    return checks


def run_doctor(board_names: list[str] | None = None) -> list[Check]:
    from tinydeploy.boards import all_boards

    names = board_names or sorted(all_boards())
    return (check_python() + check_platformio(names) + check_toolchain() + check_qemu()
            + check_serial_permissions() + check_port_grabbers())


def as_json(checks: list[Check]) -> dict:
    return {"ok": not any(c.status == FAIL for c in checks), "checks": [asdict(c) for c in checks]}

