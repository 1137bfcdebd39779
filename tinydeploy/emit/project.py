"""Write a firmware project (PlatformIO) for a model, a board and an engine.

The project is self-contained: platformio.ini, the sketch in src/, the model's sources, and the
project's firmware library copied into lib/tinydeploy. A manifest records what tinydeploy wrote, so a
regeneration replaces its own files (keeping .pio/ and its compiled objects) but never a file the
user changed, unless --force.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tinydeploy import __version__
from tinydeploy.boards import Board, all_boards
from tinydeploy.emit.render import render
from tinydeploy.errors import TinydeployError
from tinydeploy.fsutil import atomic_write_bytes, sha256_bytes
from tinydeploy.model.tflite import TfliteModel
from tinydeploy.paths import firmware_dir

MANIFEST = ".tinydeploy.json"
# Firmware parts every project gets, copied flat into lib/tinydeploy/src (headers are included flat).
COMMON_FIRMWARE = ("include", "protocol")


@dataclass
class GeneratedProject:
    directory: Path
    board: Board
    engine: str
    model: TfliteModel
    env_name: str
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    native_plan: object | None = None

    @property
    def build_id(self) -> str:
        return self.files_digest[:12]

    @property
    def files_digest(self) -> str:
        return sha256_bytes(json.dumps(self.files, sort_keys=True).encode())


def default_project_dir(model: TfliteModel, board: Board, engine: str) -> Path:
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in model.name)[:40] or "model"
    return Path("build") / f"{safe}-{board.name}-{engine}"


def _firmware_files(parts: tuple[str, ...], extra: list[Path]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    root = firmware_dir()
    sources = [p for part in parts for p in sorted((root / part).glob("*")) if p.suffix in (".c", ".h", ".cpp")]
    for path in sources + extra:
        name = f"lib/tinydeploy/src/{path.name}"
        if name in files:
            raise TinydeployError(f"two firmware files are both named {path.name}", "rename one (headers are flat)")
        files[name] = path.read_bytes()
    return files


def _model_info(model: TfliteModel, board: Board, engine: str) -> dict:
    return {
        "board_name": board.name,
        "engine_name": engine,
        "model_name": model.name,
        "model_sha256": model.sha256,
        "baud": board.baud,
        # the protocol keeps its own copy of the input: engines may overwrite the input buffer while running
        "input_bytes": model.tensors[model.inputs[0]].nbytes,
    }


def _render_files(model: TfliteModel, board: Board, engine: str, staging: Path) -> tuple[dict[str, bytes], object]:
    files: dict[str, bytes] = {}
    plan = None
    extra_firmware: list[Path] = []
    if engine == "native":
        from tinydeploy.engine import emit_native_sources

        staging.mkdir(parents=True, exist_ok=True)
        plan = emit_native_sources(model, staging)
        for path in sorted(staging.iterdir()):
            files[f"src/{path.name}"] = path.read_bytes()
        extra_firmware = [Path(p) for p in plan.kernel_sources]
    else:
        raise TinydeployError(f"engine '{engine}' cannot generate projects yet", "use --engine native")
    files.update(_firmware_files(COMMON_FIRMWARE, extra_firmware))
    info = _model_info(model, board, engine)
    # The build id names the exact sources, so the device can prove which build it runs.
    info["build_id"] = sha256_bytes(b"".join(files[k] for k in sorted(files)))[:12]
    files["src/td_model_info.h"] = render("sketch/td_model_info.h.j2", **info).encode()
    files["src/main.cpp"] = render("sketch/main.cpp.j2", **info).encode()
    files["platformio.ini"] = render("platformio.ini.j2", board=board, boards=all_boards(), engine=engine,
                                     version=__version__, firmware_dir=str(firmware_dir()), **info).encode()
    return files, plan


def _check_overwrite(directory: Path, force: bool) -> dict[str, str]:
    """The files tinydeploy wrote before; refuse to overwrite anything else without --force."""
    if not directory.exists():
        return {}
    if not directory.is_dir():
        raise TinydeployError(f"output path is a file, not a directory: {directory}", "give a directory for --out")
    manifest_path = directory / MANIFEST
    if not manifest_path.exists():
        if any(directory.iterdir()) and not force:
            raise TinydeployError(f"{directory} exists and was not written by tinydeploy",
                                  "choose another --out, or pass --force to write into it")
        return {}
    try:
        previous = json.loads(manifest_path.read_text())["files"]
    except (ValueError, KeyError, OSError):
        previous = {}
    if not force:
        for name, digest in previous.items():
            path = directory / name
            if path.exists() and sha256_bytes(path.read_bytes()) != digest:
                raise TinydeployError(f"{path} was changed since tinydeploy generated it",
                                      "pass --force to overwrite it, or use another --out")
    return previous


def generate_project(model: TfliteModel, board: Board, engine: str, directory: Path | None = None,
                     force: bool = False) -> GeneratedProject:
    directory = Path(directory or default_project_dir(model, board, engine))
    previous = _check_overwrite(directory, force)
    with tempfile.TemporaryDirectory(prefix="tinydeploy-gen-") as staging:
        files, plan = _render_files(model, board, engine, Path(staging))  # nothing is written if this fails
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TinydeployError(f"cannot create {directory}: {exc.strerror}", "choose a writable --out") from exc
    for name, content in files.items():
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and target.read_bytes() == content:
            continue  # unchanged: keep its timestamp so the build stays incremental
        atomic_write_bytes(target, content)
    for stale in set(previous) - set(files):
        (directory / stale).unlink(missing_ok=True)
    digests = {name: sha256_bytes(content) for name, content in files.items()}
    manifest = {"tinydeploy": __version__, "board": board.name, "engine": engine, "model": model.name,
                "model_sha256": model.sha256, "files": digests}
    atomic_write_bytes(directory / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
    return GeneratedProject(directory, board, engine, model, board.name, digests, plan)
