"""Board profiles: data files (one TOML per board) loaded and validated here."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from tinydeploy.errors import TinydeployError

PROFILE_DIR = Path(__file__).parent


@dataclass(frozen=True)
class UsbId:
    vid: int
    pid: int

    def __str__(self) -> str:
        return f"{self.vid:04X}:{self.pid:04X}"


@dataclass(frozen=True)
class ArduinoCore:
    """The board in the Arduino IDE / arduino-cli: its FQBN and the core platform (pinned) that builds for it."""

    fqbn: str  # e.g. arduino:mbed_nano:nano33ble
    platform: str  # e.g. arduino:mbed_nano
    platform_version: str


@dataclass(frozen=True)
class Board:
    name: str
    title: str
    mcu: str
    cpu: str
    clock_hz: int
    flash_bytes: int
    ram_bytes: int
    core_flash_bytes: int
    core_ram_bytes: int
    stack_bytes: int
    default_engine: str
    baud: int
    pio_platform: str
    pio_board: str
    pio_framework: str
    upload_method: str
    upload_runner: str
    usb_sketch: UsbId | None = None
    usb_bootloader: UsbId | None = None
    # PlatformIO package of the board's Arduino core, where its platform ships several (nordicnrf52: mbed)
    framework_package: str | None = None
    # The Arduino TFLM library builds whole here (its audio peripherals too); elsewhere a filter script drops them
    tflm_whole_library: bool = False
    # The runner's own table of the profile ([qemu], [jlink], ...): read and checked by the runner class
    runner_settings: dict = field(default_factory=dict, compare=False)
    # [arduino]: the board has an Arduino IDE core (generate --format arduino writes sketches for it)
    arduino: ArduinoCore | None = None
    source: Path = field(default=PROFILE_DIR, compare=False)

    @property
    def platform_is_bundled(self) -> bool:
        """Its PlatformIO platform ships inside tinydeploy (firmware/platform): nothing to download or install."""
        return self.pio_platform == bundled_platform_name()

    @property
    def usb_ids(self) -> list[UsbId]:
        return [u for u in (self.usb_sketch, self.usb_bootloader) if u is not None]


@lru_cache(maxsize=1)
def bundled_platform_name() -> str:
    """The name of the PlatformIO platform in firmware/platform (its platform.json)."""
    import json

    from tinydeploy.paths import firmware_dir

    try:
        return json.loads((firmware_dir() / "platform" / "platform.json").read_text())["name"]
    except (OSError, ValueError, KeyError):
        return ""


_INT_FIELDS = ("clock_hz", "flash_bytes", "ram_bytes", "core_flash_bytes", "core_ram_bytes", "stack_bytes", "baud")
_STR_FIELDS = ("name", "title", "mcu", "cpu", "default_engine")
ENGINES = ("native", "tflm")  # the names tinydeploy.engines registers (a test checks they agree)
# The profile schema of [upload]: runner -> the methods it takes (tinydeploy.runners has one class per runner; a
# test checks they agree). For "platformio" the method is PlatformIO's upload_protocol, written
# into platformio.ini as is (PlatformIO's names: the Nano 33 BLE's bossac upload is "sam-ba").
UPLOAD_METHODS = {
    "qemu": ("qemu",),
    "platformio": ("sam-ba", "esptool", "picotool", "mbed", "stlink", "jlink", "cmsis-dap", "nrfjprog", "dfu",
                   "blackmagic"),
}
# Tool names people write where PlatformIO wants a protocol name.
_UPLOAD_ALIASES = {"bossac": "sam-ba"}


def _field(data: dict, path: Path, key: str, kind: type, section: str | None = None):
    table = data if section is None else data.get(section)
    label = key if section is None else f"{section}.{key}"
    if not isinstance(table, dict) or key not in table:
        raise TinydeployError(f"board profile {path.name}: missing field '{label}'", "add it to the profile")
    value = table[key]
    if kind is int and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
        raise TinydeployError(f"board profile {path.name}: field '{label}' must be a positive integer, got {value!r}",
                              "fix the profile")
    if kind is str and (not isinstance(value, str) or not value.strip()):
        raise TinydeployError(f"board profile {path.name}: field '{label}' must be a non-empty string, got {value!r}",
                              "fix the profile")
    return value


def _usb_id(data: dict, path: Path, key: str) -> UsbId | None:
    usb = data.get("usb", {})
    if key not in usb:
        return None
    text = usb[key]
    try:
        vid, pid = (int(part, 16) for part in str(text).split(":"))
        if not (0 <= vid <= 0xFFFF and 0 <= pid <= 0xFFFF):
            raise ValueError
    except ValueError:
        raise TinydeployError(f"board profile {path.name}: field 'usb.{key}' must be VID:PID in hex, got {text!r}",
                              "write it like 2341:805A") from None
    return UsbId(vid, pid)


def load_board_file(path: Path) -> Board:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TinydeployError(f"cannot read board profile {path}: {exc}", "check the file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise TinydeployError(f"board profile {path.name} is not valid TOML: {exc}", "fix its syntax") from exc
    values = {key: _field(data, path, key, int) for key in _INT_FIELDS}
    values.update({key: _field(data, path, key, str) for key in _STR_FIELDS})
    if values["default_engine"] not in ENGINES:
        raise TinydeployError(f"board profile {path.name}: field 'default_engine' must be one of {', '.join(ENGINES)}",
                              "fix the profile")
    if values["name"] != path.stem:
        raise TinydeployError(f"board profile {path.name}: field 'name' is {values['name']!r} but the file is "
                              f"{path.stem!r}", "name the file after the board")
    for key in ("core_flash_bytes",):
        if values[key] >= values["flash_bytes"]:
            raise TinydeployError(f"board profile {path.name}: field '{key}' exceeds flash_bytes", "fix the profile")
    if values["core_ram_bytes"] + values["stack_bytes"] >= values["ram_bytes"]:
        raise TinydeployError(f"board profile {path.name}: fields 'core_ram_bytes' + 'stack_bytes' exceed ram_bytes",
                              "fix the profile")
    runner = _field(data, path, "runner", str, "upload")
    method = _field(data, path, "method", str, "upload")
    if runner not in UPLOAD_METHODS:
        raise TinydeployError(f"board profile {path.name}: field 'upload.runner' must be one of "
                              f"{', '.join(UPLOAD_METHODS)}, got {runner!r}", "fix the profile")
    if method not in UPLOAD_METHODS[runner]:
        alias = _UPLOAD_ALIASES.get(method)
        raise TinydeployError(f"board profile {path.name}: field 'upload.method' {method!r} is not an upload method "
                              f"of runner {runner!r}",
                              f"PlatformIO calls it {alias!r}" if alias else
                              f"use one of: {', '.join(UPLOAD_METHODS[runner])}")
    framework_package = data.get("platformio", {}).get("framework_package")
    if framework_package is not None:
        framework_package = _field(data, path, "framework_package", str, "platformio")
    whole_library = data.get("tflm", {}).get("whole_library", False)
    if not isinstance(whole_library, bool):
        raise TinydeployError(f"board profile {path.name}: field 'tflm.whole_library' must be true or false, got "
                              f"{whole_library!r}", "fix the profile")
    settings = data.get(runner, {})
    if not isinstance(settings, dict):
        raise TinydeployError(f"board profile {path.name}: '{runner}' must be a table of the {runner} runner's "
                              "settings", "fix the profile")
    arduino = None
    if "arduino" in data:
        fqbn = _field(data, path, "fqbn", str, "arduino")
        if fqbn.count(":") != 2:
            raise TinydeployError(f"board profile {path.name}: field 'arduino.fqbn' must be vendor:architecture:board, "
                                  f"got {fqbn!r}", "fix the profile")
        arduino = ArduinoCore(fqbn, fqbn.rsplit(":", 1)[0], _field(data, path, "platform_version", str, "arduino"))
    return Board(
        **values,
        arduino=arduino,
        pio_platform=_field(data, path, "platform", str, "platformio"),
        pio_board=_field(data, path, "board", str, "platformio"),
        pio_framework=_field(data, path, "framework", str, "platformio"),
        upload_method=method,
        upload_runner=runner,
        usb_sketch=_usb_id(data, path, "sketch"),
        usb_bootloader=_usb_id(data, path, "bootloader"),
        framework_package=framework_package,
        tflm_whole_library=whole_library,
        runner_settings=dict(settings),
        source=path,
    )


@lru_cache(maxsize=None)
def all_boards(directory: Path = PROFILE_DIR) -> dict[str, Board]:
    boards = {}
    for path in sorted(directory.glob("*.toml")):
        board = load_board_file(path)
        boards[board.name] = board
    return boards


def get_board(name: str) -> Board:
    boards = all_boards()
    if name not in boards:
        raise TinydeployError(f"unknown board '{name}'", f"known boards: {', '.join(boards)}")
    return boards[name]
