"""Offline lab bundles: one file with everything a board's builds need, made where there is internet and installed
where there is none.

`tinydeploy setup --board B --bundle lab.tar` archives, from tinydeploy's home: the board's PlatformIO platform and
the packages PlatformIO installed for it (framework, toolchain, upload tools), the Arduino TFLM library when a local
copy is given, and its compiled objects when they exist. A JSON manifest names the board, the platform's name and
version, every package's version, tinydeploy's version and every file with its sha256 (also in SHA256SUMS, the
format `sha256sum -c` reads). Packages tinydeploy provisions itself from installed tools (SCons from PyPI, the
Arm toolchain on PATH) are links to this machine's files: the manifest records their versions and the install
provisions them again from the lab machine's tools.

`tinydeploy setup --from lab.tar` checks the manifest, extracts with tarfile's `data` filter (no absolute paths,
no `..`, no links out of the bundle, no device files), compares every file with its checksum, and only then moves
the folders into $TINYDEPLOY_HOME. The checksums find damage (a cut copy, a flipped bit), not tampering: the
bundle is not signed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

from tinydeploy.boards import Board
from tinydeploy.errors import TinydeployError
from tinydeploy.tflm.library import ARENA_WORKSPACES_DIR

Progress = Callable[[str], None]

BUNDLE_FORMAT = "tinydeploy-bundle"
FORMAT_VERSION = 1
ROOT = "tinydeploy-bundle"  # the archive's top folder: its manifest, checksums and home/ (mirrors $TINYDEPLOY_HOME)
MANIFEST = "manifest.json"
CHECKSUMS = "SHA256SUMS"
INSTALLED_RECORD = "bundle.json"  # in $TINYDEPLOY_HOME: the manifest of the installed bundle, for doctor
# The TFLM library's compiled objects: the workspace where tinydeploy measures TFLM arenas on the virtual board
# (flow.measure_on_virtual_board: tflm-arena/<library version>/project, whose .pio/build holds the library's
# objects after its first, minutes-long, compile). Bundled with the library so the lab machines skip that compile
# where PlatformIO finds the objects current (same tinydeploy install path).
TFLM_OBJECTS_DIR = ARENA_WORKSPACES_DIR
PROVISIONED_MARK = "provisioned by tinydeploy"  # package.json description of tinydeploy's own packages
# .tinydeploy-libs: a generated project's link to the local TFLM library, written again on the next generate
_SKIPPED_NAMES = {".git", "__pycache__", ".DS_Store", ".tinydeploy-libs"}
_COMPRESSION = {".tar": "", ".tar.gz": "gz", ".tgz": "gz", ".tar.xz": "xz", ".txz": "xz", ".tar.bz2": "bz2"}


def _make_hint(board: str = "BOARD", path: str = "lab.tar") -> str:
    return f"make a bundle with `tinydeploy setup --board {board} --bundle {path}` on a machine with internet"


# ---- what a bundle holds ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    """One folder of tinydeploy's home that the bundle carries whole (a platform, a package, the TFLM library)."""

    home_path: str  # relative to $TINYDEPLOY_HOME, POSIX separators
    source: Path
    kind: str  # platform | package | tflm-library | tflm-objects
    name: str
    version: str | None


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _package_version(folder: Path) -> str | None:
    return _json(folder / "package.json").get("version") or _json(folder / "platform.json").get("version")


def is_provisioned(folder: Path) -> bool:
    """A package tinydeploy writes from this machine's installed tools (links to them): not portable."""
    return str(_json(folder / "package.json").get("description", "")).startswith(PROVISIONED_MARK)


def _library_version(folder: Path) -> str | None:
    try:
        for line in (folder / "library.properties").read_text().splitlines():
            if line.startswith("version="):
                return line.split("=", 1)[1].strip()
    except OSError:
        pass
    return None


def _installed_packages(core: Path) -> dict[str, list[Path]]:
    """PlatformIO's package folders by package name (a folder `name@version` holds another version, e.g. the
    platform's own toolchain beside the one tinydeploy provisions from the system's)."""
    found: dict[str, list[Path]] = {}
    for folder in sorted((core / "packages").glob("*")):
        if folder.is_dir() and not folder.name.startswith("."):
            name = _json(folder / "package.json").get("name") or folder.name.split("@", 1)[0]
            found.setdefault(name, []).append(folder)
    return found


def _wanted_packages(board: Board, platform_manifest: dict) -> list[str]:
    """The platform's packages a build of this board may use: all but the other boards' frameworks."""
    from tinydeploy.build.packages import _framework_packages

    own_framework = set(_framework_packages(platform_manifest, board))
    names = []
    for name, spec in platform_manifest.get("packages", {}).items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind == "framework" and name not in own_framework:
            continue
        names.append(name)
    from tinydeploy.build.platformio import SCONS_PACKAGE

    return sorted(set(names) | {SCONS_PACKAGE})


def plan_bundle(board: Board, tflm_lib: str | Path | None = None) -> tuple[dict, list[Component]]:
    """What a bundle for `board` would hold, from tinydeploy's home as it is now: (manifest without the file
    list, the folders to archive). Raises when the board's platform is not installed at its pinned version."""
    from tinydeploy import __version__
    from tinydeploy.build.packages import missing_board_packages, platform_dir, platform_name
    from tinydeploy.build.platformio import SCONS_PACKAGE, TOOLCHAIN_PACKAGE, core_dir
    from tinydeploy.paths import data_home, firmware_dir
    from tinydeploy.tflm.library import TFLM_LIBRARY_COMMIT, TFLM_LIBRARY_NAME, resolve_tflm_library

    core = core_dir()
    components: list[Component] = []
    if board.platform_is_bundled:
        folder = firmware_dir() / "platform"
        platform_manifest = _json(folder / "platform.json")
        platform = {"name": platform_manifest.get("name"), "version": platform_manifest.get("version"),
                    "source": "ships with tinydeploy"}
    else:
        missing = missing_board_packages(board, core)
        if missing:
            raise TinydeployError(f"cannot bundle {board.name}: {', '.join(missing)} missing from {core}",
                                  f"run `tinydeploy setup --board {board.name}` with internet access first")
        folder = platform_dir(board, core)
        platform_manifest = _json(folder / "platform.json")
        platform = {"name": platform_name(board), "version": platform_manifest.get("version"),
                    "source": "PlatformIO registry"}
        components.append(Component(f"platformio/platforms/{folder.name}", folder, "platform", platform["name"],
                                    platform["version"]))
    platform["pinned"] = board.pio_platform_version
    packages = []
    installed = _installed_packages(core)
    for name in _wanted_packages(board, platform_manifest):
        for folder in installed.get(name, []):  # none: an optional package this board's builds never installed
            version = _package_version(folder)
            if is_provisioned(folder):
                packages.append({"name": name, "version": version, "source": "provisioned from this machine's tools"})
                continue
            packages.append({"name": name, "version": version, "source": "bundled"})
            # under its versioned name where tinydeploy provisions a package of the same name on the lab machine
            folder_name = f"{name}@{version}" if folder.name in (SCONS_PACKAGE, TOOLCHAIN_PACKAGE) else folder.name
            components.append(Component(f"platformio/packages/{folder_name}", folder, "package", name, version))
    library = resolve_tflm_library(tflm_lib) if tflm_lib or os.environ.get("TINYDEPLOY_TFLM_LIB") else None
    tflm = None
    if library is not None and library.local_path is not None:
        version = _library_version(library.local_path)
        tflm = {"name": TFLM_LIBRARY_NAME, "version": version, "tinydeploy_pins_commit": TFLM_LIBRARY_COMMIT}
        components.append(Component(f"tflm-library/{TFLM_LIBRARY_NAME}", library.local_path, "tflm-library",
                                    TFLM_LIBRARY_NAME, version))
    if tflm is not None and tflm["version"]:
        for workspace in sorted((data_home() / TFLM_OBJECTS_DIR).glob(f"*{tflm['version']}")):
            if (workspace / "project" / ".pio" / "build").is_dir():
                components.append(Component(f"{TFLM_OBJECTS_DIR}/{workspace.name}", workspace, "tflm-objects",
                                            "compiled TFLM library", tflm["version"]))
    from importlib import metadata

    manifest = {
        "format": BUNDLE_FORMAT, "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tinydeploy": __version__, "platformio": metadata.version("platformio"),
        "board": board.name, "board_title": board.title,
        "platform": platform, "packages": packages, "tflm_library": tflm,
        "tflm_objects": any(c.kind == "tflm-objects" for c in components),
        "components": [{"path": c.home_path, "kind": c.kind, "name": c.name, "version": c.version}
                       for c in components],
    }
    return manifest, components


# ---- writing ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    path: str  # home-relative
    kind: str  # file | dir | link
    source: Path | None = None  # file: where to read it (a link's target when followed)
    link: str = ""
    sha256: str = ""
    size: int = 0
    executable: bool = False


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _walk(component: Component) -> list[_Entry]:
    """Every folder, file and link of a component. A relative link that stays inside the component is kept as a
    link; any other link to a file is archived as that file; a link to a folder elsewhere is refused."""
    root = component.source
    entries = [_Entry(component.home_path, "dir")]
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIPPED_NAMES)
        here = Path(current)
        for name in dirs + sorted(f for f in files if f not in _SKIPPED_NAMES):
            path = here / name
            relative = f"{component.home_path}/{path.relative_to(root).as_posix()}"
            if path.is_symlink():
                target = os.readlink(path)
                resolved = path.resolve()
                inside = not os.path.isabs(target) and resolved.is_relative_to(root.resolve()) and resolved.exists()
                if inside:
                    entries.append(_Entry(relative, "link", link=target))
                    if name in dirs:
                        dirs.remove(name)  # os.walk does not follow it anyway
                    continue
                if resolved.is_file():
                    path = resolved
                else:
                    raise TinydeployError(f"cannot bundle {path}: it links to {target}, outside {root}",
                                          "reinstall that package with `tinydeploy setup --board BOARD`")
            if name in dirs and path.is_dir():
                entries.append(_Entry(relative, "dir"))
            elif path.is_file():
                stat = path.stat()
                entries.append(_Entry(relative, "file", source=path, sha256=_sha256_file(path), size=stat.st_size,
                                      executable=bool(stat.st_mode & 0o111)))
    return entries


def _file_record(entry: _Entry) -> dict:
    record = {"path": entry.path, "type": entry.kind}
    if entry.kind == "file":
        record.update(sha256=entry.sha256, size=entry.size, executable=entry.executable)
    elif entry.kind == "link":
        record["link"] = entry.link
    return record


def _tar_mode(path: Path) -> str:
    name = path.name.lower()
    for suffix, mode in sorted(_COMPRESSION.items(), key=lambda item: -len(item[0])):
        if name.endswith(suffix):
            return mode
    raise TinydeployError(f"{path.name}: a bundle is a tar archive", "name it lab.tar (or .tar.gz, .tar.xz)")


def _info(name: str, kind: bytes, size: int = 0, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mode = kind, size, mode
    info.mtime = int(time.time())
    return info


def write_bundle(board: Board, out: Path, tflm_lib: str | Path | None = None, force: bool = False,
                 progress: Progress = lambda message: None) -> dict:
    """Writes the bundle for `board` to `out` (atomically: a cut run leaves no half file). Returns the manifest
    with the bundle's path and size."""
    from tinydeploy.fsutil import check_output_path, write_error

    out = Path(out)
    mode = _tar_mode(out)
    check_output_path(out, force)
    manifest, components = plan_bundle(board, tflm_lib)
    entries: list[_Entry] = []
    for component in components:
        progress(f"checksumming {component.home_path}")
        entries += _walk(component)
    manifest["files"] = [_file_record(e) for e in entries]
    manifest["total_bytes"] = sum(e.size for e in entries)
    manifest_bytes = (json.dumps(manifest, indent=1) + "\n").encode()
    sums = [f"{hashlib.sha256(manifest_bytes).hexdigest()}  {MANIFEST}"]
    sums += [f"{e.sha256}  home/{e.path}" for e in entries if e.kind == "file"]
    sums_bytes = ("\n".join(sums) + "\n").encode()
    fd, temporary = tempfile.mkstemp(prefix=f".{out.name}-", dir=out.parent or Path("."))
    os.close(fd)
    try:
        level = {"compresslevel": 6} if mode in ("gz", "bz2") else {}  # tarfile's 9 is slow on hundreds of MB
        with tarfile.open(temporary, f"w:{mode}" if mode else "w", format=tarfile.PAX_FORMAT, **level) as tar:
            import io

            tar.addfile(_info(f"{ROOT}/{MANIFEST}", tarfile.REGTYPE, len(manifest_bytes)), io.BytesIO(manifest_bytes))
            tar.addfile(_info(f"{ROOT}/{CHECKSUMS}", tarfile.REGTYPE, len(sums_bytes)), io.BytesIO(sums_bytes))
            for index, entry in enumerate(entries):
                name = f"{ROOT}/home/{entry.path}"
                if entry.kind == "dir":
                    tar.addfile(_info(name, tarfile.DIRTYPE, mode=0o755))
                elif entry.kind == "link":
                    info = _info(name, tarfile.SYMTYPE, mode=0o777)
                    info.linkname = entry.link
                    tar.addfile(info)
                else:
                    if index % 200 == 0:
                        progress(f"writing {entry.path}")
                    with open(entry.source, "rb") as stream:
                        tar.addfile(_info(name, tarfile.REGTYPE, entry.size, 0o755 if entry.executable else 0o644),
                                    stream)
        os.chmod(temporary, 0o644)
        os.replace(temporary, out)
    except OSError as exc:
        raise write_error(exc, out, "write the bundle") from exc
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    manifest.pop("files")
    return {**manifest, "bundle": str(out), "bundle_bytes": out.stat().st_size, "file_count": len(entries)}


# ---- reading and installing ------------------------------------------------------------------------------------


def _damaged(path: Path, what: str, board: str = "BOARD") -> TinydeployError:
    return TinydeployError(f"{path} is damaged: {what}",
                           f"copy the bundle again from where it was made, or {_make_hint(board, path.name)}")


def _read_member(tar: tarfile.TarFile, name: str) -> bytes | None:
    try:
        member = tar.getmember(name)
    except KeyError:
        return None
    stream = tar.extractfile(member)
    return stream.read() if stream is not None else None


def read_manifest(path: Path) -> tuple[dict, dict[str, str]]:
    """The bundle's manifest and checksums, refusing a file that is not a tinydeploy bundle of a known format."""
    from tinydeploy.fsutil import check_input_file

    path = Path(path)
    check_input_file(path, "bundle", "give the bundle file, e.g. lab.tar")
    try:
        with tarfile.open(path, "r:*") as tar:
            manifest_bytes = _read_member(tar, f"{ROOT}/{MANIFEST}")
            sums_bytes = _read_member(tar, f"{ROOT}/{CHECKSUMS}")
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        raise TinydeployError(f"{path} is not a tinydeploy bundle (not a readable tar archive: {exc})",
                              _make_hint(path=path.name)) from None
    if manifest_bytes is None:
        raise TinydeployError(f"{path} is not a tinydeploy bundle (no {ROOT}/{MANIFEST} in it)",
                              _make_hint(path=path.name))
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError:
        raise _damaged(path, f"its {MANIFEST} is not valid JSON") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise TinydeployError(f"{path} is not a tinydeploy bundle (its manifest has no format '{BUNDLE_FORMAT}')",
                              _make_hint(path=path.name))
    board = str(manifest.get("board", "BOARD"))
    if manifest.get("format_version") != FORMAT_VERSION:
        raise TinydeployError(f"{path} has bundle format {manifest.get('format_version')!r}; this tinydeploy reads "
                              f"format {FORMAT_VERSION}", f"install the tinydeploy that made it "
                              f"({manifest.get('tinydeploy', '?')}), or {_make_hint(board, path.name)} with this one")
    if sums_bytes is None:
        raise _damaged(path, f"{CHECKSUMS} is missing", board)
    sums = {}
    for line in sums_bytes.decode("utf-8", "replace").splitlines():
        digest, _, name = line.partition("  ")
        if name:
            sums[name] = digest
    if sums.get(MANIFEST) != hashlib.sha256(manifest_bytes).hexdigest():
        raise _damaged(path, f"{MANIFEST} does not match its checksum", board)
    files = manifest.get("files")
    if not isinstance(files, list) or not all(isinstance(f, dict) and isinstance(f.get("path"), str) for f in files):
        raise _damaged(path, f"{MANIFEST} has no valid file list", board)
    return manifest, sums


def _check_board(manifest: dict, path: Path) -> Board:
    from tinydeploy.boards import all_boards

    name = manifest.get("board")
    boards = all_boards()
    if name not in boards:
        raise TinydeployError(f"{path} is for board {name!r}, which this tinydeploy does not know",
                              f"install tinydeploy {manifest.get('tinydeploy', '')} (the version that made it)")
    board = boards[name]
    platform = manifest.get("platform") or {}
    if board.pio_platform_version and platform.get("version") != board.pio_platform_version:
        raise TinydeployError(f"{path} holds {platform.get('name')} {platform.get('version')} but this tinydeploy's "
                              f"{board.name} projects pin {board.pio_platform} {board.pio_platform_version}",
                              _make_hint(board.name, path.name) + " and this tinydeploy version")
    return board


def _component_paths(manifest: dict, path: Path) -> list[str]:
    depth = {"platformio/platforms/": 3, "platformio/packages/": 3, "tflm-library/": 2, f"{TFLM_OBJECTS_DIR}/": 2}
    paths = []
    for component in manifest.get("components", []):
        home_path = component.get("path") if isinstance(component, dict) else None
        pure = PurePosixPath(home_path or "")
        if not home_path or pure.is_absolute() or ".." in pure.parts or \
                not any(home_path.startswith(prefix) and len(pure.parts) == parts for prefix, parts in depth.items()):
            raise TinydeployError(f"{path} names a folder tinydeploy does not install: {home_path!r}",
                                  _make_hint(str(manifest.get("board")), path.name))
        paths.append(home_path)
    return paths


def _verify_extracted(staging_home: Path, manifest: dict, path: Path) -> None:
    """Every file of the manifest is there with its checksum, and nothing else is."""
    board = str(manifest.get("board"))
    expected = {}
    for entry in manifest["files"]:
        expected[entry["path"]] = entry
        for parent in PurePosixPath(entry["path"]).parents:  # the folders that hold the components
            if str(parent) != ".":
                expected.setdefault(str(parent), {"path": str(parent), "type": "dir"})
    for current, dirs, files in os.walk(staging_home):
        for name in dirs + files:
            full = Path(current) / name
            relative = full.relative_to(staging_home).as_posix()
            entry = expected.get(relative)
            if entry is None:
                raise _damaged(path, f"it holds {relative}, which its manifest does not list", board)
            kind = entry.get("type")
            if kind == "link":
                if not full.is_symlink() or os.readlink(full) != entry.get("link"):
                    raise _damaged(path, f"{relative} is not the link its manifest records", board)
            elif kind == "dir":
                if full.is_symlink() or not full.is_dir():
                    raise _damaged(path, f"{relative} should be a folder", board)
            elif full.is_symlink() or not full.is_file() or full.stat().st_size != entry.get("size") or \
                    _sha256_file(full) != entry.get("sha256"):
                raise _damaged(path, f"{relative} does not match its checksum", board)
    for relative in expected:
        full = staging_home / relative
        if not (full.exists() or full.is_symlink()):
            raise _damaged(path, f"{relative} is missing (a cut copy?)", board)


def _current_version(target: Path, component: dict) -> str | None:
    kind = component.get("kind")
    if kind == "tflm-objects":
        return component.get("version")  # the folder is named after the library version: the same by construction
    return _library_version(target) if kind == "tflm-library" else _package_version(target)


def install_bundle(path: Path, force: bool = False, progress: Progress = lambda message: None) -> dict:
    """Verifies the bundle at `path` and installs it into tinydeploy's home. Nothing is moved into the home
    before every file has been checked. Returns the manifest (without its file list), with notes."""
    from tinydeploy.build.platformio import provision_core_dir
    from tinydeploy.fsutil import atomic_write_text, write_error
    from tinydeploy.paths import data_home

    path = Path(path)
    manifest, _ = read_manifest(path)
    board = _check_board(manifest, path)
    components = {entry["path"]: entry for entry in manifest.get("components", [])}
    _component_paths(manifest, path)
    home = data_home()
    notes: list[str] = []
    for home_path, component in components.items():  # refuse before extracting anything
        target = home / home_path
        if target.exists() and not force:
            current = _current_version(target, component)
            if current != component.get("version"):  # the same version is replaced: a repair
                raise TinydeployError(f"{target} already holds {component.get('name')} {current or '(unknown version)'}"
                                      f"; the bundle has {component.get('version') or 'other files'}",
                                      "pass --force to replace it with the bundle's")
    try:
        home.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".bundle-", dir=home))
    except OSError as exc:
        raise write_error(exc, home, "install the bundle into tinydeploy's home") from exc
    try:
        progress(f"extracting {path.name}")
        try:
            with tarfile.open(path, "r:*") as tar:
                members = []
                for member in tar:
                    parts = PurePosixPath(member.name).parts
                    if parts[:1] != (ROOT,) or ".." in parts or \
                            (len(parts) > 1 and parts[1] not in ("home", MANIFEST, CHECKSUMS)):
                        raise TinydeployError(f"{path} holds {member.name!r}, outside a bundle's folders: refused, "
                                              "nothing installed", _make_hint(board.name, path.name))
                    if len(parts) > 2 and parts[1] == "home":
                        members.append(member)
                tar.extractall(staging, members=members, filter="data")
        except tarfile.FilterError as exc:
            raise TinydeployError(f"{path} holds an unsafe member ({exc}): refused, nothing installed",
                                  _make_hint(board.name, path.name)) from None
        except (tarfile.TarError, EOFError, ValueError) as exc:
            raise _damaged(path, f"it cannot be read to its end ({exc or type(exc).__name__}; a cut copy?)",
                           board.name) from None
        staging_home = staging / ROOT / "home"
        staging_home.mkdir(parents=True, exist_ok=True)
        progress("verifying checksums")
        _verify_extracted(staging_home, manifest, path)
        for home_path in components:
            if not (staging_home / home_path).is_dir():
                raise _damaged(path, f"its folder {home_path} is missing", board.name)
        progress("installing")
        for home_path, component in components.items():
            target = home / home_path
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists() or target.is_symlink():
                retired = target.with_name(f".{target.name}-replaced-{os.getpid()}")
                os.rename(target, retired)
                os.rename(staging_home / home_path, target)
                if retired.is_dir() and not retired.is_symlink():
                    shutil.rmtree(retired, ignore_errors=True)
                else:
                    retired.unlink()
                notes.append(f"replaced {home_path} ({component.get('version') or 'files'})")
            else:
                os.rename(staging_home / home_path, target)
    except OSError as exc:
        raise write_error(exc, home, "install the bundle into tinydeploy's home") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # tinydeploy's own packages come from this machine's tools: provision them and compare with the bundle's
    core = provision_core_dir()
    installed = _installed_packages(core)
    for package in manifest.get("packages", []):
        if not str(package.get("source", "")).startswith("provisioned"):
            continue
        here = next((_package_version(folder) for folder in installed.get(package.get("name"), [])
                     if is_provisioned(folder)), None)
        if here is None:
            notes.append(f"{package.get('name')} could not be provisioned here (the bundle's machine had "
                         f"{package.get('version')}): see `tinydeploy doctor`")
        elif here != package.get("version"):
            notes.append(f"{package.get('name')} is {here} here, {package.get('version')} where the bundle was made")
    record = {**manifest, "installed_from": str(path.resolve()),
              "installed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    atomic_write_text(home / INSTALLED_RECORD, json.dumps(record, indent=1) + "\n")
    manifest = {k: v for k, v in manifest.items() if k != "files"}
    return {**manifest, "home": str(home), "notes": notes, "file_count": len(record["files"])}


def installed_bundle() -> dict | None:
    from tinydeploy.paths import data_home

    record = _json(data_home() / INSTALLED_RECORD)
    return record if record.get("format") == BUNDLE_FORMAT else None


# ---- doctor ----------------------------------------------------------------------------------------------------


def describe(manifest: dict) -> str:
    """One line: the board, platform and package versions a bundle holds."""
    platform = manifest.get("platform") or {}
    packages = ", ".join(f"{p.get('name')} {p.get('version')}" for p in manifest.get("packages", []))
    tflm = manifest.get("tflm_library")
    text = (f"board {manifest.get('board')}: platform {platform.get('name')} {platform.get('version')}"
            f" ({platform.get('source')}" + (f", pinned {platform['pinned']}" if platform.get("pinned") else "")
            + f"); packages {packages or 'none'}; TFLM library "
            + (f"{tflm.get('name')} {tflm.get('version')}" if tflm else "not included"))
    if manifest.get("tflm_objects"):
        text += " with its compiled objects"
    return text


def doctor_checks(board_names: list[str] | None):
    """Doctor's checks of the installed bundle: its files are all in place (sizes, not checksums: fast), and the
    board it was made for builds offline (platform at the pinned version, its packages, the TFLM library)."""
    from tinydeploy.boards import all_boards
    from tinydeploy.build.packages import missing_board_packages
    from tinydeploy.lab.doctor import FAIL, OK, WARN, Check
    from tinydeploy.paths import data_home
    from tinydeploy.tflm.library import resolve_tflm_library

    record = installed_bundle()
    if record is None:
        return []
    home = data_home()
    source = record.get("installed_from", "?")
    changed = []
    for entry in record.get("files", []):
        full = home / entry.get("path", "")
        kind = entry.get("type")
        if kind == "file" and (not full.is_file() or full.stat().st_size != entry.get("size")) or \
                kind == "dir" and not full.is_dir() or kind == "link" and not full.is_symlink():
            changed.append(entry.get("path"))
    checks = [Check("offline bundle", FAIL if changed else OK,
                    (f"{len(changed)} of its files are missing or changed (first: {changed[0]})" if changed else
                     f"{describe(record)}; installed {record.get('installed', '?')} from {source}"),
                    f"run `tinydeploy setup --from {source} --force` again" if changed else "")]
    boards = all_boards()
    for name in sorted({record.get("board")} | set(board_names or [])):
        board = boards.get(name)
        if board is None:
            continue
        platform = record.get("platform") or {}
        if name != record.get("board"):
            continue
        problems = missing_board_packages(board)
        if board.pio_platform_version and platform.get("version") != board.pio_platform_version:
            problems.append(f"projects pin {board.pio_platform} {board.pio_platform_version} but the bundle has "
                            f"{platform.get('version')}")
        if board.platform_is_bundled:
            from tinydeploy.paths import firmware_dir

            here = _json(firmware_dir() / "platform" / "platform.json").get("version")
            if here != platform.get("version"):
                problems.append(f"this tinydeploy's virtual platform is {here}, the bundle's {platform.get('version')}")
        detail = (f"{board.name}: {board.pio_platform_spec} and its packages are installed; nothing to download"
                  if not problems else "; ".join(problems))
        checks.append(Check(f"offline build for {name}", FAIL if problems else OK, detail,
                            f"run `tinydeploy setup --from {source}` again" if problems else ""))
        library = resolve_tflm_library()
        checks.append(Check("TFLM library", OK if library.local_path else WARN,
                            f"local copy {library.local_path} ({library.version})" if library.local_path else
                            "none here: builds with the TFLM engine download it from GitHub",
                            "" if library.local_path else "make the bundle with --tflm-lib PATH (or use --engine "
                            "native)"))
    return checks
