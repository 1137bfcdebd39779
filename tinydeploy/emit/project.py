"""Write a firmware project (PlatformIO) for a model, a board and an engine.

The project is self-contained: platformio.ini, the sketch in src/, the model's sources, and the
project's firmware library copied into lib/tinydeploy. A manifest records what tinydeploy wrote, so a
regeneration replaces its own files (keeping .pio/ and its compiled objects) but never a file the
user changed, unless --force.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from tinydeploy import __version__
from tinydeploy.boards import Board, all_boards
from tinydeploy.build.platformio import virtual_platform_spec
from tinydeploy.emit.render import render
from tinydeploy.errors import TinydeployError
from tinydeploy.fsutil import atomic_write_bytes, current_umask, sha256_bytes, write_error
from tinydeploy.locking import project_lock
from tinydeploy.model.tflite import TfliteModel
from tinydeploy.paths import firmware_dir

MANIFEST = ".tinydeploy.json"
# Firmware parts every project gets, copied flat into lib/tinydeploy/src (headers are included flat).
COMMON_FIRMWARE = ("include", "protocol", "mlperf")


@dataclass
class GeneratedProject:
    directory: Path
    board: Board
    engine: str
    model: TfliteModel
    env_name: str
    files: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    native_plan: object | None = None
    arena: object | None = None  # tinydeploy.emit.tflm.ArenaSizing for the TFLM engine
    tflm_library: object | None = None  # tinydeploy.emit.tflm.TflmLibrary for the TFLM engine

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


# Where a local copy of the TFLM library is linked into a project (PlatformIO's lib_extra_dirs).
TFLM_LOCAL_LIB_DIR = ".tinydeploy-libs"
TFLM_FILTER_SCRIPT = "tinydeploy_tflm_filter.py"


def _tflm_files(model: TfliteModel, board: Board, arena, library) -> tuple[dict[str, bytes], dict]:
    """The TFLM engine's sources: the model and its resolver (generated), the engine glue (firmware/tflm)."""
    from tinydeploy.emit.tflm import TFLM_LIBRARY_DEPS, c_byte_array_body, resolver_methods

    ops = resolver_methods(model)
    context = {"model_name": model.name, "board_name": board.name, "model_sha256": model.sha256, "ops": ops,
               "arena": arena, "model_bytes": len(model.raw)}
    files = {
        "src/td_tflm_model.h": render("tflm/td_tflm_model.h.j2", **context).encode(),
        "src/td_tflm_model.cpp": render("tflm/td_tflm_model.cpp.j2", model_array=c_byte_array_body(model.raw),
                                        **context).encode(),
    }
    glue = firmware_dir() / "tflm"
    for path in sorted(glue.glob("*.cpp")):
        files[f"src/{path.name}"] = path.read_bytes()
    files[TFLM_FILTER_SCRIPT] = (glue / TFLM_FILTER_SCRIPT).read_bytes()
    ini = {"local": library.local_path is not None, "extra_dir": TFLM_LOCAL_LIB_DIR, "lib_deps": TFLM_LIBRARY_DEPS,
           "filter_script": TFLM_FILTER_SCRIPT}
    return files, ini


def _render_files(model: TfliteModel, board: Board, engine: str, staging: Path, arena=None,
                  library=None, fast_kernels: bool = True) -> tuple[dict[str, bytes], object]:
    files: dict[str, bytes] = {}
    plan = None
    tflm_ini = None
    extra_firmware: list[Path] = []
    if engine == "native":
        from tinydeploy.engine import emit_native_sources

        staging.mkdir(parents=True, exist_ok=True)
        plan = emit_native_sources(model, staging, fast_kernels)
        for path in sorted(staging.iterdir()):
            files[f"src/{path.name}"] = path.read_bytes()
        extra_firmware = [Path(p) for p in plan.kernel_sources]
    elif engine == "tflm":
        tflm_sources, tflm_ini = _tflm_files(model, board, arena, library)
        files.update(tflm_sources)
    else:
        raise TinydeployError(f"unknown engine '{engine}'", "use --engine native or --engine tflm")
    files.update(_firmware_files(COMMON_FIRMWARE, extra_firmware))
    info = _model_info(model, board, engine)
    # The build id names the exact sources, so the device can prove which build it runs.
    info["build_id"] = sha256_bytes(b"".join(files[k] for k in sorted(files)))[:12]
    files["src/td_model_info.h"] = render("sketch/td_model_info.h.j2", **info).encode()
    files["src/main.cpp"] = render("sketch/main.cpp.j2", **info).encode()
    files["platformio.ini"] = render("platformio.ini.j2", board=board, boards=all_boards(), engine=engine,
                                     version=__version__, virtual_platform=virtual_platform_spec(), tflm=tflm_ini,
                                     **info).encode()
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
        recorded = json.loads(manifest_path.read_text())
        previous = dict(recorded["files"])
        # an update stopped while renaming (kill -9) left either version of these files: both are ours
        replacing = dict(recorded.get("replacing", {}))
    except (ValueError, KeyError, TypeError, OSError):
        previous, replacing = {}, {}
    for name, digest in replacing.items():
        previous.setdefault(name, digest)
    if not force:
        for name, digest in previous.items():
            path = directory / name
            if path.exists() and sha256_bytes(path.read_bytes()) not in (digest, replacing.get(name)):
                raise TinydeployError(f"{path} was changed since tinydeploy generated it",
                                      "pass --force to overwrite it, or use another --out")
    return previous


# ---- writing: a project is either the previous complete one or the new complete one ----------------------------

STAGING_PREFIX = ".tinydeploy-staging-"


def _manifest_bytes(manifest: dict) -> bytes:
    return json.dumps(manifest, indent=1, sort_keys=True).encode()


def _write_synced(path: Path, content: bytes) -> None:
    """On the disk before the rename that publishes it (a crash must not publish empty files)."""
    with open(path, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _remove_dead_staging(parent: Path, prefix: str) -> None:
    """Staging directories left by a tinydeploy that was killed (kill -9, power loss) while writing."""
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith(prefix) or not entry.is_dir() or entry.is_symlink():
            continue
        pid = entry.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(entry, ignore_errors=True)


@contextmanager
def _interrupts_deferred() -> Iterator[None]:
    """Holds Ctrl-C (and the SIGTERM the CLI turns into it) for the few renames that swap a project in."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    saved = {sig: signal.signal(sig, lambda signum, _frame: pending.append(signum))
             for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        for signum in pending[:1]:
            signal.raise_signal(signum)  # delivered now, to the handler that was in place


def _write_new_project(directory: Path, files: dict[str, bytes], manifest: dict) -> None:
    """Writes the whole project in a hidden directory beside it and renames that into place: a failure
    (disk full, Ctrl-C) leaves nothing behind, not even the parent directories it had to create."""
    created: list[Path] = []
    parent = directory.parent
    for ancestor in reversed([parent, *parent.parents]):
        if not ancestor.exists():
            created.append(ancestor)
    staging: Path | None = None
    try:
        parent.mkdir(parents=True, exist_ok=True)
        _remove_dead_staging(parent, f".{directory.name}{STAGING_PREFIX}")
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}{STAGING_PREFIX}{os.getpid()}-", dir=parent))
        for name, content in files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_synced(target, content)
        _write_synced(staging / MANIFEST, _manifest_bytes(manifest))
        staging.chmod(0o777 & ~current_umask())
        os.rename(staging, directory)
        staging = None
    except OSError as exc:
        raise write_error(exc, directory, "write the project in") from exc
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
            for folder in reversed(created):
                try:
                    folder.rmdir()
                except OSError:
                    break


def _update_project(directory: Path, files: dict[str, bytes], manifest: dict, previous: dict[str, str]) -> None:
    """Regenerates in place, keeping .pio/ (compiled objects) and unchanged files (their timestamps).
    Changed files are staged inside the project first, so a full disk or Ctrl-C leaves the previous
    project as it was; then they are renamed in, with interrupts held, under a manifest that accepts
    both versions of each file (so even a kill -9 there leaves a project tinydeploy regenerates)."""
    changed = {}
    for name, content in files.items():
        target = directory / name
        try:
            same = target.is_file() and not target.is_symlink() and target.read_bytes() == content
        except OSError:
            same = False
        if not same:
            changed[name] = content
    stale = sorted(set(previous) - set(files))
    manifest_path = directory / MANIFEST
    final = _manifest_bytes(manifest)
    try:
        unchanged_manifest = manifest_path.read_bytes() == final
    except OSError:
        unchanged_manifest = False
    if not changed and not stale and unchanged_manifest:
        return
    _remove_dead_staging(directory, STAGING_PREFIX)
    staging: Path | None = None
    try:
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=directory))
        staged = {}
        for index, (name, content) in enumerate(changed.items()):
            staged[name] = staging / f"{index}"
            _write_synced(staged[name], content)
        for name in changed:
            (directory / name).parent.mkdir(parents=True, exist_ok=True)
        with _interrupts_deferred():
            if changed or stale:
                journal = dict(manifest, replacing={name: previous[name] for name in changed if name in previous})
                journal["replacing"].update({name: previous[name] for name in stale})
                atomic_write_bytes(manifest_path, _manifest_bytes(journal))
            for name, path in staged.items():
                os.replace(path, directory / name)
            for name in stale:
                (directory / name).unlink(missing_ok=True)
            atomic_write_bytes(manifest_path, final)
    except OSError as exc:
        raise write_error(exc, directory, "write the project in") from exc
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)


def _link_tflm_library(directory: Path, library) -> None:
    """Points the project's lib_extra_dirs entry at the local TFLM copy (a symlink: the copy is not duplicated)."""
    from tinydeploy.emit.tflm import TFLM_LIBRARY_NAME

    link = directory / TFLM_LOCAL_LIB_DIR / TFLM_LIBRARY_NAME
    if library is None or library.local_path is None:
        if link.is_symlink():
            link.unlink()
        return
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and Path(os.readlink(link)) == library.local_path:
        return
    staging = link.with_name(f".{TFLM_LIBRARY_NAME}-{os.getpid()}")
    staging.unlink(missing_ok=True)
    staging.symlink_to(library.local_path, target_is_directory=True)
    os.replace(staging, link)


def generate_project(model: TfliteModel, board: Board, engine: str, directory: Path | None = None,
                     force: bool = False, tflm_lib: str | Path | None = None, arena=None,
                     fast_kernels: bool = True) -> GeneratedProject:
    """Write the project. For the TFLM engine, `tflm_lib` is a local copy of the Arduino TFLM library (default:
    $TINYDEPLOY_TFLM_LIB, else the pinned download) and `arena` an ArenaSizing (default: emit.tflm.arena_for,
    which measures nothing; flow.tflm_arena measures on the virtual board first). For the native engine,
    `fast_kernels=False` uses the reference kernels everywhere."""
    directory = Path(directory or default_project_dir(model, board, engine))
    library = None
    if engine == "tflm":
        from tinydeploy.emit.tflm import arena_for, resolve_tflm_library, resolver_methods

        library = resolve_tflm_library(tflm_lib)
        resolver_methods(model)  # refuse ops TFLM lacks before writing anything
        arena = arena or arena_for(model, board.name, library)
    _check_overwrite(directory, force)  # refuse before the cost of rendering; again below, under the lock
    with tempfile.TemporaryDirectory(prefix="tinydeploy-gen-") as staging:
        # nothing is written if this fails
        files, plan = _render_files(model, board, engine, Path(staging), arena, library, fast_kernels)
    digests = {name: sha256_bytes(content) for name, content in files.items()}
    manifest = {"tinydeploy": __version__, "board": board.name, "engine": engine, "model": model.name,
                "model_sha256": model.sha256, "files": digests}
    with project_lock(directory):  # re-entered when flash holds it for the build and the run
        previous = _check_overwrite(directory, force)
        if directory.exists():
            _update_project(directory, files, manifest, previous)
        else:
            _write_new_project(directory, files, manifest)
        _link_tflm_library(directory, library)
    return GeneratedProject(directory, board, engine, model, board.name, digests, plan, arena, library)
