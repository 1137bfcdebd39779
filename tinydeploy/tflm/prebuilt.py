"""The Arduino TFLM library compiled once per machine, per library, board and build flags, and linked by every
TFLM project (and the arena measurement) instead of compiling its ~210 files again in each one.

PlatformIO compiles it, as it compiles any library: a builder project of its own (the sketch project's settings
for the board, a main.cpp that includes the library) archives it (lib_archive). The archive and the library's
headers are published in tinydeploy's home as a PlatformIO library whose library.json compiles nothing and links
the archive (build.flags -L/-l); a project's lib_extra_dirs link points at it. The key is a hash of everything
the objects depend on: the library's content, the project's build settings for the board, the scripts they name,
the platform and its installed packages. One lock per key: a second project waits for the first compile and
reuses it; the archive's hash is checked on every use and a damaged one is compiled again.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import shutil
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Callable

from tinydeploy.errors import TinydeployError
from tinydeploy.fsutil import atomic_write_text, write_error
from tinydeploy.tflm.library import TFLM_FILTER_SCRIPT, TFLM_LIBRARY_NAME, TflmLibrary

Progress = Callable[[str], None]

PREBUILT_ENV = "TINYDEPLOY_TFLM_PREBUILT"  # "0": every project compiles the library itself
FORMAT = 1  # bump when the published layout changes
ARCHIVE_NAME = "tflm"  # lib/libtflm.a, linked with -ltflm
MANIFEST = "prebuilt.json"
SOURCE_SUFFIXES = (".c", ".cc", ".cpp", ".cxx", ".S", ".s")
HEADER_SUFFIXES = (".h", ".hpp", ".inc")
# Library folders tinydeploy_tflm_filter.py leaves out of the build on boards other than the Nano 33 BLE (a test
# checks the two agree): only used to count the files to compile.
BOARD_SPECIFIC_DIRS = ("peripherals", "test_over_serial")
# Settings of a project environment that do not change how the library compiles (the application's libraries,
# upload and monitor settings): left out of the builder project and of the key.
_IRRELEVANT = re.compile(r"^(lib_deps|lib_ignore|monitor_.*|upload_.*|test_.*|debug_.*|default_envs)$")
_COMPILING = re.compile(rf"^Compiling \S*/{TFLM_LIBRARY_NAME}/\S+\.o$")


def enabled(library: TflmLibrary) -> bool:
    """A local copy is compiled once; the pinned download is compiled in each project (its sources exist only
    after PlatformIO fetched them there)."""
    return library.local_path is not None and os.environ.get(PREBUILT_ENV, "1") != "0"


def prebuilt_root() -> Path:
    from tinydeploy.paths import data_home

    return data_home() / "tflm-prebuilt"


# ---- what the objects depend on --------------------------------------------------------------------------------


def _tree_digest(root: Path, suffixes: tuple[str, ...] | None = None) -> str:
    """Hash of the relative paths and contents of the files under root (following the library's own layout)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if suffixes is not None and path.suffix not in suffixes:
            continue
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def builder_settings(project_ini: str, env_name: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The [env] and [env:NAME] settings of a project that decide how the library compiles, in order."""
    config = configparser.ConfigParser(interpolation=None, default_section="__none__")
    config.optionxform = str  # PlatformIO's keys are case-sensitive
    try:
        config.read_string(project_ini)
    except configparser.Error as exc:
        raise TinydeployError(f"cannot read the project's platformio.ini: {exc}", "regenerate the project") from None
    sections = []
    for section in ("env", f"env:{env_name}"):
        if config.has_section(section):
            sections.append((section, [(key, " ".join(config.get(section, key).split()))
                                       for key in config.options(section) if not _IRRELEVANT.match(key)]))
    return sections


def _scripts(settings: list[tuple[str, list[tuple[str, str]]]]) -> list[str]:
    """Project-relative scripts named by extra_scripts (pre:/post: prefixes removed)."""
    names = []
    for _, options in settings:
        for key, value in options:
            if key == "extra_scripts":
                names += [item.split(":", 1)[-1] for item in re.split(r"[\s,]+", value) if item]
    return names


def _platform_identity(settings, project_dir: Path) -> str:
    """The platform the project names (a local platform: its content; an installed one: its version) and the
    versions of its packages installed in tinydeploy's PlatformIO directory (the toolchain among them). A platform
    PlatformIO has not installed yet counts by its name: the key is taken again after the builder installed it."""
    from tinydeploy.build.platformio import provision_core_dir

    core = provision_core_dir()
    digest = hashlib.sha256()
    spec = ""
    for _, options in settings:
        spec = next((value for key, value in options if key == "platform"), spec)
    if "symlink://" in spec:
        platform = Path(spec.split("symlink://", 1)[1])
        platform = platform if platform.is_absolute() else project_dir / platform
        for part in ("platform.json", "platform.py", "boards", "builder"):
            if (platform / part).is_file():
                digest.update((platform / part).read_bytes())
            elif (platform / part).is_dir():
                digest.update(_tree_digest(platform / part).encode())
    else:
        platform = core / "platforms" / spec.split("@", 1)[0].rsplit("/", 1)[-1]
    try:
        manifest = json.loads((platform / "platform.json").read_text())
        packages = sorted(manifest.get("packages", {}))
        digest.update(f"platform {spec} {manifest.get('version', '')}\n".encode())
    except (OSError, ValueError, AttributeError, TypeError):
        packages = []
        digest.update(f"platform {spec} not installed\n".encode())
    for name in packages:
        try:
            version = json.loads((core / "packages" / name / "package.json").read_text()).get("version", "")
        except (OSError, ValueError, AttributeError):
            continue  # not installed: this board does not use it
        digest.update(f"{name}={version}\n".encode())
    return digest.hexdigest()


def prebuilt_key(library: TflmLibrary, project_dir: Path, env_name: str) -> tuple[str, list, list[str]]:
    """(key, builder settings, scripts) for the project's environment."""
    project_dir = Path(project_dir)
    settings = builder_settings((project_dir / "platformio.ini").read_text(), env_name)
    scripts = _scripts(settings)
    digest = hashlib.sha256(f"format {FORMAT}\n".encode())
    digest.update(json.dumps(settings).encode())
    for name in scripts:
        path = project_dir / name
        digest.update(name.encode() + b"\0" + (path.read_bytes() if path.is_file() else b"missing"))
    digest.update(_tree_digest(library.local_path / "src").encode())
    digest.update(_platform_identity(settings, project_dir).encode())
    label = "".join(c if c.isalnum() or c in ".-" else "_" for c in f"{env_name}-{library.version}")[:60]
    return f"{label}-{digest.hexdigest()[:16]}", settings, scripts


# ---- published prebuilt libraries ------------------------------------------------------------------------------


def _archive_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def published(key: str) -> Path | None:
    """The published library folder for `key` if it is whole: its archive has the recorded hash."""
    folder = prebuilt_root() / key / TFLM_LIBRARY_NAME
    try:
        record = json.loads((folder / MANIFEST).read_text())
        archive = folder / "lib" / f"lib{ARCHIVE_NAME}.a"
        if record.get("key") == key and record.get("archive_sha256") == _archive_digest(archive) and \
                (folder / "library.json").is_file():
            return folder
    except (OSError, ValueError, AttributeError):
        pass
    return None


def _count_sources(library_src: Path, whole_library: bool) -> int:
    count = 0
    for path in library_src.rglob("*"):
        if path.suffix not in SOURCE_SUFFIXES or not path.is_file():
            continue
        parts = path.relative_to(library_src).parts
        if not whole_library and parts[0] in BOARD_SPECIFIC_DIRS:
            continue
        count += 1
    return count


def _builder_ini(settings) -> str:
    lines = ["; Compiles the Arduino TFLM library once for tinydeploy (tinydeploy.tflm.prebuilt)", ""]
    for section, options in settings:
        lines.append(f"[{section}]")
        lines += [f"{key} = {value}" for key, value in options]
        lines.append("")
    return "\n".join(lines)


def _library_json(library: TflmLibrary) -> str:
    return json.dumps({
        "name": TFLM_LIBRARY_NAME,
        "version": library.version.removeprefix("local-"),
        "description": "The Arduino TFLM library, compiled once by tinydeploy: its headers and its archive",
        "frameworks": "*",
        "platforms": "*",
        "build": {"includeDir": "include", "srcDir": "include", "srcFilter": ["-<*>"], "libArchive": False,
                  # relative to this folder (PlatformIO resolves a library's -L from its own folder)
                  "flags": ["-Llib", f"-l{ARCHIVE_NAME}"]},
    }, indent=2) + "\n"


def _compile(library: TflmLibrary, key: str, settings, scripts: list[str], project_dir: Path, env_name: str,
             progress: Progress) -> Path:
    """Builds the library in a builder project and publishes it (renamed into place whole), under the key taken
    again after the build (which installs a platform PlatformIO had not installed yet)."""
    from tinydeploy.build.platformio import build_project

    root = prebuilt_root()
    # one builder per key (we hold the key's lock: nobody else uses it), kept after a failure or an interruption:
    # its log, and the objects compiled so far, which the next attempt reuses (SCons checks their sources)
    builder = root / f".{key}.build"
    staging = root / f".{key}.publish"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        (builder / "src").mkdir(parents=True, exist_ok=True)
        (builder / "platformio.ini").write_text(_builder_ini(settings))
        (builder / "src" / "main.cpp").write_text(
            "// Makes PlatformIO build the Arduino TFLM library (tinydeploy.tflm.prebuilt)\n"
            "// (TensorFlowLite.h would bring the Nano 33 BLE's peripherals: the sketch's own include)\n"
            "#include <Arduino.h>\n#include \"tensorflow/lite/micro/micro_interpreter.h\"\n\n"
            "void setup() {}\nvoid loop() {}\n")
        for name in scripts:
            if (project_dir / name).is_file():
                (builder / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(project_dir / name, builder / name)
        extra_dirs = [value for _, options in settings for k, value in options if k == "lib_extra_dirs"]
        for folder in " ".join(extra_dirs).replace(",", " ").split():
            (builder / folder).mkdir(parents=True, exist_ok=True)
            link = builder / folder / TFLM_LIBRARY_NAME
            if link.is_symlink():
                link.unlink()
            link.symlink_to(library.local_path, target_is_directory=True)
    except OSError as exc:
        raise write_error(exc, builder, "create the TFLM library's builder project") from exc
    whole = TFLM_FILTER_SCRIPT not in scripts
    total = _count_sources(library.local_path / "src", whole)
    # objects an interrupted attempt left count as compiled (SCons compiles again only what changed)
    compiled = min(total, sum(1 for _ in (builder / ".pio" / "build" / env_name).glob(
        f"lib*/{TFLM_LIBRARY_NAME}/**/*.o")))
    progress(f"compiling the TFLM library once for this machine ({total} files; later projects link it)"
             + (f": {compiled} left from an interrupted attempt" if compiled else ""))

    def on_line(line: str) -> None:
        nonlocal compiled
        if _COMPILING.match(line.strip()):
            compiled = min(compiled + 1, total)
            progress(f"build: TFLM library (once): compiled {compiled} of {total} files")
        else:
            progress(f"build: {line}")

    started = time.monotonic()
    try:
        build_project(builder, env_name, on_line=on_line)
        archives = sorted((builder / ".pio" / "build" / env_name).glob(f"lib*/lib{TFLM_LIBRARY_NAME}.a"))
        if len(archives) != 1:
            raise TinydeployError(f"the TFLM library's build left {len(archives)} archives (expected one)",
                                  f"report it; the builder project is {builder}")
        folder = staging / TFLM_LIBRARY_NAME
        (folder / "lib").mkdir(parents=True)
        shutil.copyfile(archives[0], folder / "lib" / f"lib{ARCHIVE_NAME}.a")
        source = library.local_path / "src"
        for header in source.rglob("*"):
            if header.suffix in HEADER_SUFFIXES and header.is_file():
                target = folder / "include" / header.relative_to(source)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(header, target)
        (folder / "library.json").write_text(_library_json(library))
        key = prebuilt_key(library, project_dir, env_name)[0]
        atomic_write_text(folder / MANIFEST, json.dumps({
            "key": key, "library": library.version, "library_path": str(library.local_path),
            "archive_sha256": _archive_digest(folder / "lib" / f"lib{ARCHIVE_NAME}.a"), "compiled_files": compiled,
            "seconds": round(time.monotonic() - started, 1)}, indent=2) + "\n")
        final = root / key
        if published(key) is None:  # else another tinydeploy published the same meanwhile: use theirs
            if final.exists():  # a damaged earlier copy
                shutil.rmtree(final)
            os.replace(staging, final)
    except OSError as exc:
        if published(key) is None:
            raise write_error(exc, root, "publish the compiled TFLM library in") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(builder, ignore_errors=True)
    progress(f"TFLM library compiled: {compiled} files in {time.monotonic() - started:.0f} s, kept in {final}")
    return final / TFLM_LIBRARY_NAME


def ensure_prebuilt(library: TflmLibrary, project_dir: Path, env_name: str, progress: Progress) -> tuple[Path, float]:
    """(the compiled library's folder for this project's environment, seconds spent compiling it now). It is
    compiled if no tinydeploy did before, or if the published one is damaged; another tinydeploy compiling the
    same key is waited for, then reused."""
    from tinydeploy.locking import LockBusy, file_lock

    try:
        key, settings, scripts = prebuilt_key(library, project_dir, env_name)
    except OSError as exc:
        raise TinydeployError(f"cannot read {exc.filename or library.local_path}: {exc.strerror}",
                              "check the TFLM library copy (--tflm-lib) and the project are readable") from None
    folder = published(key)
    if folder is not None:
        return folder, 0.0
    lock = prebuilt_root() / f"{key}.lock"
    what = f"the TFLM library build {key}"

    def compiled_or_published() -> tuple[Path, float]:
        # taken again: the one that held the lock may have installed the platform, which changes the key
        folder = published(prebuilt_key(library, project_dir, env_name)[0])
        if folder is not None:
            return folder, 0.0
        started = time.monotonic()
        folder = _compile(library, key, settings, scripts, Path(project_dir), env_name, progress)
        return folder, time.monotonic() - started

    with ExitStack() as held:
        try:
            held.enter_context(file_lock(lock, what, wait=0))
        except LockBusy:
            progress("waiting for another tinydeploy that compiles the TFLM library for this board")
            held.enter_context(file_lock(lock, what, wait=None))
        return compiled_or_published()


def link_prebuilt(project_dir: Path, link_name: str, folder: Path) -> None:
    """Points the project's library link (lib_extra_dirs) at the compiled library."""
    from tinydeploy.emit.project import update_links

    update_links(Path(project_dir), {link_name: folder})
