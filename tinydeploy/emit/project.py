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
    plan: object | None = None  # the engine's plan it was written from (tinydeploy.engines.EnginePlan)

    @property
    def build_id(self) -> str:
        return self.files_digest[:12]

    @property
    def files_digest(self) -> str:
        return sha256_bytes(json.dumps(self.files, sort_keys=True).encode())


@dataclass(frozen=True)
class AppPart:
    """Application files beside the engine's (e.g. a kit's sensor driver, tinydeploy.emit.kit): written as they are,
    with the Arduino libraries they need on a real board, pinned (the virtual board has stand-ins for them)."""

    title: str
    files: dict[str, bytes]
    lib_deps: list[str]
    lib_ignore: list[str] = field(default_factory=list)  # libraries that must not be built in (by name)


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
        # the identify reply reports them; the protocol loads inputs straight into the engine's tensors (no copy)
        "input_types": ",".join(model.tensors[i].dtype for i in model.inputs),
        "output_types": ",".join(model.tensors[i].dtype for i in model.outputs),
    }


def project_files(model: TfliteModel, board: Board, engine: str, engine_files: dict[str, bytes],
                  engine_firmware: list[Path], library_ini: dict | None,
                  app: AppPart | None = None, *, virtual_platform: str) -> dict[str, bytes]:
    """Every file of the project: the engine's (from its plan), the common firmware, the application's, the sketch,
    platformio.ini (`virtual_platform`: its `platform =` for the virtual board, build.platformio.virtual_platform_spec)."""
    files: dict[str, bytes] = dict(engine_files)
    if app is not None:
        files.update(app.files)
    files.update(_firmware_files(COMMON_FIRMWARE, engine_firmware))
    info = _model_info(model, board, engine)
    # The build id names the exact sources, so the device can prove which build it runs.
    info["build_id"] = sha256_bytes(b"".join(files[k] for k in sorted(files)))[:12]
    files["src/td_model_info.h"] = render("sketch/td_model_info.h.j2", **info).encode()
    files["src/main.cpp"] = render("sketch/main.cpp.j2", **info).encode()
    files["platformio.ini"] = render("platformio.ini.j2", board=board, boards=all_boards(), version=__version__,
                                     virtual_platform=virtual_platform,
                                     library=library_ini, app=app, **info).encode()
    return files


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


def update_links(directory: Path, links: dict[str, Path | None]) -> None:
    """Project-relative symlinks (e.g. lib_extra_dirs entry -> a local library copy, not duplicated); None removes
    one tinydeploy made before."""
    for name, target in links.items():
        link = directory / name
        if target is None:
            if link.is_symlink():
                link.unlink()
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink() and Path(os.readlink(link)) == target:
            continue
        staging = link.with_name(f".{link.name}-{os.getpid()}")
        staging.unlink(missing_ok=True)
        staging.symlink_to(target, target_is_directory=True)
        os.replace(staging, link)


def check_project_dir(directory: Path, force: bool) -> dict[str, str]:
    """Refuse, before anything is planned or written, a directory tinydeploy may not write into (see
    _check_overwrite); the files it wrote there before."""
    return _check_overwrite(Path(directory), force)


def write_project(directory: Path, files: dict[str, bytes], manifest: dict, force: bool = False,
                  links: dict[str, Path | None] | None = None) -> dict[str, str]:
    """Write a project whole: a new directory appears complete, an existing one is updated in place keeping .pio/
    and unchanged files; never a file the user changed without `force`. Returns path -> sha256."""
    directory = Path(directory)
    digests = {name: sha256_bytes(content) for name, content in files.items()}
    manifest = dict(manifest, tinydeploy=__version__, files=digests)
    with project_lock(directory):  # re-entered when flash holds it for the build and the run
        previous = _check_overwrite(directory, force)
        if directory.exists():
            _update_project(directory, files, manifest, previous)
        else:
            _write_new_project(directory, files, manifest)
        update_links(directory, links or {})
    return digests
