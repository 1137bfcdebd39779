"""Kit profiles: data files (one TOML per kit) naming the board profile, the board revisions with their pinned
Arduino libraries, and the parts with their checks; loaded and validated here. `lab check --kit NAME` uses them."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from tinydeploy.errors import TinydeployError
from tinydeploy.fsutil import read_toml_profile

KIT_DIR = Path(__file__).parent
PARTS = ("imu", "microphone", "camera", "button")  # the parts a kit may have, in the order they are checked
CAMERA_RESOLUTIONS = {"VGA": (640, 480), "CIF": (352, 240), "QVGA": (320, 240), "QCIF": (176, 144),
                      "QQVGA": (160, 120)}  # Arduino_OV767X's modes
CAMERA_FORMATS = {"RGB565": 2, "YUV422": 2, "RGB444": 2, "GRAYSCALE": 1}  # bytes a pixel


@dataclass(frozen=True)
class Revision:
    name: str  # rev1, rev2
    number: int
    imu: str
    microphone: str
    lib_deps: tuple[str, ...]
    probe_address: int
    probe_register: int
    probe_value: int


@dataclass(frozen=True)
class Kit:
    name: str
    title: str
    board: str  # board profile name
    virtual_board: str
    default_revision: str
    lib_deps: tuple[str, ...]
    revisions: dict[str, Revision]
    parts: dict[str, dict] = field(compare=False)  # part -> its table (checks' figures)
    source: Path = field(default=KIT_DIR, compare=False)

    def revision(self, number_or_name: int | str) -> Revision:
        for revision in self.revisions.values():
            if number_or_name in (revision.number, revision.name):
                return revision
        raise TinydeployError(f"kit {self.name} has no revision {number_or_name!r}",
                              f"its revisions: {', '.join(self.revisions)}")

    def libraries(self, revision: Revision) -> list[str]:
        """The pinned lib_deps of a firmware for this revision."""
        return [*self.lib_deps, *revision.lib_deps]

    def part(self, name: str) -> dict:
        return self.parts.get(name, {})

    @property
    def camera_mode(self) -> tuple[str, str, int, int, int]:
        """(resolution, format, width, height, bytes a pixel) of the camera check."""
        camera = self.part("camera")
        resolution, fmt = camera.get("resolution", "QCIF"), camera.get("format", "RGB565")
        width, height = CAMERA_RESOLUTIONS[resolution]
        return resolution, fmt, width, height, CAMERA_FORMATS[fmt]


def _bad(path: Path, message: str) -> TinydeployError:
    return TinydeployError(f"kit profile {path.name}: {message}", "fix the profile")


def _string(table: dict, key: str, path: Path, where: str = "") -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _bad(path, f"field '{where}{key}' must be a non-empty string, got {value!r}")
    return value


def _int(table: dict, key: str, path: Path, where: str = "", low: int = 0, high: int = 2**31) -> int:
    value = table.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _bad(path, f"field '{where}{key}' must be an integer in {low}..{high}, got {value!r}")
    return value


def _libraries(table: dict, path: Path, where: str) -> tuple[str, ...]:
    value = table.get("lib_deps", [])
    if not isinstance(value, list) or not all(isinstance(v, str) and "@" in v for v in value):
        raise _bad(path, f"field '{where}lib_deps' must be a list of pinned libraries (owner/name@version)")
    return tuple(value)


def load_kit_file(path: Path) -> Kit:
    data = read_toml_profile(path, "kit profile")
    name = _string(data, "name", path)
    if name != path.stem:
        raise _bad(path, f"field 'name' is {name!r} but the file is {path.stem!r}")
    revisions = {}
    for key, table in (data.get("revisions") or {}).items():
        where = f"revisions.{key}."
        probe = table.get("probe") if isinstance(table, dict) else None
        if not isinstance(probe, dict):
            raise _bad(path, f"'{where}probe' must be a table (address, register, value)")
        revisions[key] = Revision(key, _int(table, "number", path, where, 1, 9), _string(table, "imu", path, where),
                                  _string(table, "microphone", path, where), _libraries(table, path, where),
                                  _int(probe, "address", path, where + "probe.", 1, 0x7F),
                                  _int(probe, "register", path, where + "probe.", 0, 0xFF),
                                  _int(probe, "value", path, where + "probe.", 0, 0xFF))
    if not revisions:
        raise _bad(path, "no [revisions] (each names its IMU library and how to probe it)")
    default = _string(data, "default_revision", path)
    if default not in revisions:
        raise _bad(path, f"field 'default_revision' {default!r} is not one of {', '.join(revisions)}")
    parts = data.get("parts") or {}
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        raise _bad(path, f"unknown part(s) {', '.join(unknown)}; parts are {', '.join(PARTS)}")
    camera = parts.get("camera", {})
    if camera.get("resolution", "QCIF") not in CAMERA_RESOLUTIONS or camera.get("format", "RGB565") not in \
            CAMERA_FORMATS:
        raise _bad(path, f"[parts.camera] resolution must be one of {', '.join(CAMERA_RESOLUTIONS)} and format one "
                         f"of {', '.join(CAMERA_FORMATS)}")
    if "button" in parts:
        _int(parts["button"], "pin", path, "parts.button.", 0, 255)
    return Kit(name, _string(data, "title", path), _string(data, "board", path), _string(data, "virtual_board", path),
               default, _libraries(data, path, ""), revisions, {k: dict(v) for k, v in parts.items()}, path)


@lru_cache(maxsize=None)
def all_kits(directory: Path = KIT_DIR) -> dict[str, Kit]:
    return {kit.name: kit for kit in (load_kit_file(path) for path in sorted(directory.glob("*.toml")))}


def kit_for_board(board_name: str) -> Kit:
    """The kit built on a board profile (or whose virtual twin runs on it)."""
    found = [kit for kit in all_kits().values() if board_name in (kit.board, kit.virtual_board)]
    if not found:
        known = ", ".join(f"{kit.name} ({kit.board})" for kit in all_kits().values())
        raise TinydeployError(f"no kit profile uses the board {board_name}", f"kits and their boards: {known}")
    return found[0]


def get_kit(name: str) -> Kit:
    kits = all_kits()
    if name not in kits:
        raise TinydeployError(f"unknown kit '{name}'", f"known kits: {', '.join(kits) or 'none'}")
    return kits[name]
