"""The Arduino IDE layout of a project: one sketch folder, `<name>/<name>.ino` with every source beside it.

It is the PlatformIO project's files laid out again, not rendered a second time: the sketch (src/main.cpp) becomes
the .ino, the model's and the firmware library's sources sit flat beside it (the IDE compiles the sketch folder's
own files, and headers are included flat), platformio.ini and PlatformIO's build scripts are left out, and a README
and an arduino-cli `sketch.yaml` name the board's core and the libraries, pinned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tinydeploy import __version__
from tinydeploy.boards import Board, all_boards
from tinydeploy.emit.render import render
from tinydeploy.errors import TinydeployError

@dataclass(frozen=True)
class ArduinoLibrary:
    """An Arduino library an engine's sources need, as a sketch names it (README, sketch.yaml)."""

    name: str  # its library.properties name, e.g. Arduino_TensorFlowLite
    version: str  # its library.properties version
    source: str  # where to get it (a repository, with the pinned commit)
    local_path: Path | None = None  # a local copy given with --tflm-lib (arduino-cli profiles can name its folder)


# Arduino's sketch specification: a basic letter or digit, then letters, digits, '_', '.', '-'; at most 63.
SKETCH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
SKETCH_MAIN = "src/main.cpp"
FLAT_FOLDERS = ("src/", "lib/tinydeploy/src/")
SKETCH_EXTENSIONS = (".ino", ".c", ".cpp", ".h", ".hpp", ".S")
FORMATS = ("platformio", "arduino")


def check_format(layout: str, board: Board) -> None:
    if layout not in FORMATS:
        raise TinydeployError(f"unknown project format '{layout}'", f"use one of: {', '.join(FORMATS)}")
    if layout == "arduino" and board.arduino is None:
        boards = [b.name for b in all_boards().values() if b.arduino is not None]
        raise TinydeployError(f"{board.name} has no Arduino IDE core to build a sketch for it",
                              f"use --board {' or --board '.join(boards)}, or --format platformio")


def sketch_name_problem(name: str) -> str | None:
    """Why `name` cannot name an Arduino sketch (None when it can)."""
    if SKETCH_NAME.fullmatch(name):
        return None
    if len(name) > 63:
        return f"sketch name '{name[:20]}...' is {len(name)} characters long (Arduino allows 63)"
    return (f"'{name}' is not a valid Arduino sketch name (a letter or digit first, then only letters, digits, "
            "'_', '.', '-')")


def default_sketch_name(model_name: str, board: Board, engine: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", model_name).lstrip("_.-")[:40] or "model"
    return f"{stem}_{board.name}_{engine}"


def check_sketch_dir(directory: Path) -> None:
    problem = sketch_name_problem(directory.name)
    if problem is not None:
        raise TinydeployError(f"--out {directory}: {problem}; the IDE needs the folder and its .ino named alike",
                              "give --out a folder whose name is a valid sketch name (e.g. my_model_sketch)")


def sketch_files(name: str, board: Board, engine: str, model_name: str, project: dict[str, bytes],
                 build_only: set[str], libraries: list[ArduinoLibrary]) -> dict[str, bytes]:
    """The sketch folder's files from the PlatformIO project's (`project`): the same bytes, another layout."""
    files: dict[str, bytes] = {}
    origin: dict[str, str] = {}
    for path, content in sorted(project.items()):
        if path == "platformio.ini" or path in build_only:
            continue
        if path == SKETCH_MAIN:
            flat = f"{name}.ino"
        else:
            folder = next((f for f in FLAT_FOLDERS if path.startswith(f) and "/" not in path[len(f):]), None)
            if folder is None or not path.endswith(SKETCH_EXTENSIONS):
                raise TinydeployError(f"the project file {path} has no place in an Arduino sketch folder",
                                      "use --format platformio for this project")
            flat = path[len(folder):]
        if flat in origin or flat.lower() == f"{name}.ino".lower() and path != SKETCH_MAIN:
            raise TinydeployError(f"{path} and {origin.get(flat, SKETCH_MAIN)} would both be {flat} in the sketch",
                                  "use --format platformio, or rename one of them")
        origin[flat] = path
        files[flat] = content
    context = {"name": name, "board": board, "engine": engine, "model_name": model_name, "version": __version__,
               "libraries": libraries, "sources": sorted(f for f in files if f != f"{name}.ino")}
    files["README.md"] = render("arduino/README.md.j2", **context).encode()
    files["sketch.yaml"] = render("arduino/sketch.yaml.j2", **context).encode()
    return files
