"""PlatformIO as tinydeploy's build tool, in a core directory tinydeploy owns (never ~/.platformio).

PlatformIO downloads `tool-scons` and the toolchain from its registry on first use. Offline it cannot,
so the core directory is provisioned here from what is installed: SCons from PyPI and the
arm-none-eabi-gcc on PATH (Debian's gcc-arm-none-eabi). With internet, PlatformIO may still fetch its
own toolchain package for boards that need one.

The core directory is shared by every tinydeploy of the user (several checkouts, installs, lab jobs at once):
what tinydeploy put there is verified against the exact content it writes on every use and repaired atomically
under a lock, and each copy of the virtual board's platform gets its own link name, so no run re-points another's.

PlatformIO runs through one function, run_platformio: progress lines, a stall detector, and a diagnosis from
PlatformIO's output and exit status.
"""

from __future__ import annotations

import configparser
import errno
import hashlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Callable

from tinydeploy.errors import TinydeployError
from tinydeploy.fsutil import atomic_write_text, write_error
from tinydeploy.paths import data_home, firmware_dir

SCONS_PACKAGE = "tool-scons"
TOOLCHAIN_PACKAGE = "toolchain-gccarmnoneeabi"
TOOLCHAIN_PREFIX = "arm-none-eabi-"
REGISTRY_HOST = "api.registry.platformio.org"
ARM_TOOLCHAIN_HINT = ("install the Arm toolchain, e.g. on Debian/Ubuntu: apt-get install gcc-arm-none-eabi "
                      "libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib")
VIRTUAL_PLATFORM = "tinydeploy-virtual"
PROVISION_LOCK = ".tinydeploy-provision.lock"
PROVISION_WAIT_S = 300.0  # the lock is held for milliseconds; longer means a stuck tinydeploy
STALL_ENV = "TINYDEPLOY_STALL_SECONDS"
STALL_SECONDS = 180.0  # no output, no CPU time and no I/O in PlatformIO's processes for this long: stalled
ENGINE_OPTION = "tinydeploy-scons-engine"  # python -X option that marks the SCons engine process

# The scons.py entry PlatformIO runs (`python scons.py ...`) for a tool-scons package. SCons runs in a child
# process so that its death by a signal (the out-of-memory killer sends SIGKILL) is said, not a silent [FAILED].
_SCONS_ENTRY = f'''"""SCons entry point for PlatformIO, provisioned by tinydeploy from the SCons installed from PyPI."""
import os
import signal
import subprocess
import sys

if "{ENGINE_OPTION}" in sys._xoptions:
    from SCons.Script.Main import main

    sys.exit(main())


def _die_with_parent():
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


engine = subprocess.Popen([sys.executable, "-X", "{ENGINE_OPTION}", *sys.argv], preexec_fn=_die_with_parent)
for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(number, lambda received, _frame: engine.send_signal(received))
code = engine.wait()
if code < 0:
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = f"signal {{-code}}"
    print(f"tinydeploy: SCons (pid {{engine.pid}}) was killed by {{name}}", file=sys.stderr, flush=True)
    sys.exit(1)
sys.exit(code)
'''


def core_dir() -> Path:
    return data_home() / "platformio"


def _pio_version(version: str) -> str:
    """PlatformIO's spelling of a tool version: SCons 4.11.1 -> 4.41101.0, GCC 12.2.1 -> 1.120201.0."""
    parts = [int(p) for p in re.findall(r"\d+", version)[:3]] + [0, 0, 0]
    return f"{parts[0]}.{parts[0]}{parts[1]:02d}{parts[2]:02d}.0"


# ---- provisioning: what tinydeploy puts in the core directory, verified on every use ----------------------------


@dataclass(frozen=True)
class ProvisionedPackage:
    """A package directory tinydeploy writes: exact files, and links to installed tools. `accepts(rel, target)`
    says whether an existing link is as good as the one tinydeploy would write (e.g. the SCons of another
    install, of the same version), so installs sharing a home do not replace each other's packages."""

    name: str
    version: str
    files: dict[str, str]
    links: dict[str, Path]
    accepts: Callable[[str, Path], bool] = field(default=lambda relative, target: False, compare=False)

    def contents(self) -> dict[str, bytes]:
        manifest = {"name": self.name, "version": self.version,
                    "description": "provisioned by tinydeploy from installed tools"}
        meta = {"type": "tool", "name": self.name, "version": self.version,
                "spec": {"owner": "platformio", "id": None, "name": self.name, "requirements": None, "uri": None}}
        return {"package.json": (json.dumps(manifest, indent=2) + "\n").encode(),
                ".piopm": (json.dumps(meta) + "\n").encode(),
                **{relative: text.encode() for relative, text in self.files.items()}}


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def package_problem(directory: Path, package: ProvisionedPackage) -> str:
    """Why `directory` is not the package tinydeploy would write ("" when it is): every file is compared by its
    content hash, every link must lead where tinydeploy would point it (or somewhere it accepts)."""
    if directory.is_symlink() or not directory.is_dir():
        return "missing"
    for relative, data in package.contents().items():
        try:
            actual = (directory / relative).read_bytes()
        except OSError:
            return f"{relative} is missing or unreadable"
        if _digest(actual) != _digest(data):
            return f"{relative} differs from what tinydeploy wrote (damaged)"
    for relative, source in package.links.items():
        link = directory / relative
        if not link.is_symlink():
            return f"{relative} is missing or not a link"
        target = Path(os.readlink(link))
        if not link.exists():
            return f"{relative} points to {target}, which does not exist"
        if target != source and not package.accepts(relative, target):
            return f"{relative} points to {target} instead of {source}"
    return ""


def _write_package(target: Path, package: ProvisionedPackage) -> None:
    """Builds a package directory beside `target` and renames it into place: readers never see half of one."""
    staging = Path(tempfile.mkdtemp(prefix=f".{package.name}-", dir=target.parent))
    try:
        staging.chmod(0o755)
        for relative, data in package.contents().items():
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            (staging / relative).write_bytes(data)
        for relative, source in package.links.items():
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            (staging / relative).symlink_to(source)
        if target.exists() or target.is_symlink():
            retired = target.with_name(f".{package.name}-old-{os.getpid()}")
            os.rename(target, retired)
            if retired.is_dir() and not retired.is_symlink():
                shutil.rmtree(retired, ignore_errors=True)
            else:
                retired.unlink()
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _scons_version(directory: Path) -> str | None:
    try:
        match = re.search(r'^__version__\s*=\s*"([^"]+)"', (directory / "__init__.py").read_text(), re.MULTILINE)
    except OSError:
        return None
    return match.group(1) if match else None


def _scons_package() -> ProvisionedPackage:
    try:
        import SCons  # noqa: PLC0415 (only needed while provisioning)
    except ImportError:
        raise TinydeployError("SCons is not installed", "pip install scons (PlatformIO builds with it)") from None
    source, version = Path(SCons.__file__).resolve().parent, metadata.version("scons")
    return ProvisionedPackage(SCONS_PACKAGE, _pio_version(version), {"scons.py": _SCONS_ENTRY}, {"SCons": source},
                              accepts=lambda relative, target: _scons_version(target) == version)


def _toolchain_package() -> ProvisionedPackage | None:
    gcc = shutil.which(f"{TOOLCHAIN_PREFIX}gcc")
    if not gcc:
        return None
    try:
        version = subprocess.run([gcc, "-dumpversion"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    bin_dir = Path(gcc).parent
    links = {f"bin/{tool.name}": tool for tool in sorted(bin_dir.glob(f"{TOOLCHAIN_PREFIX}*"))}
    return ProvisionedPackage(TOOLCHAIN_PACKAGE, f"1.{_pio_version(version or '0.0.0').split('.', 1)[1]}", {},
                              links, accepts=lambda relative, target: os.access(target, os.X_OK))


def virtual_platform_dir() -> Path:
    return firmware_dir() / "platform"


def virtual_platform_spec(platform: Path | None = None) -> str:
    """The `platform =` value for the virtual board: a name of its own per copy of tinydeploy's platform folder
    (two checkouts or installs sharing one core directory each keep their own link), then its symlink:// URI."""
    platform = (platform or virtual_platform_dir()).resolve()
    return f"{VIRTUAL_PLATFORM}-{_digest(str(platform).encode())[:12]}=symlink://{platform}"


def _link_spec(spec: str) -> tuple[str, dict] | None:
    """(link file name, PlatformIO's package spec) for a `platform =` value that is a symlink:// platform."""
    name, marker, rest = spec.strip().partition("=symlink://")
    name, uri = (name, "symlink://" + rest) if marker else ("", spec.strip())
    if not uri.startswith("symlink://"):
        return None
    name = name.strip() or os.path.basename(uri.rstrip("/")).split(".", 1)[0]
    return f"{name}.pio-link", {"owner": None, "id": None, "name": name, "requirements": None, "uri": uri}


def _platform_link_problem(path: Path, spec: dict) -> str:
    try:
        recorded = json.loads(path.read_text())
    except FileNotFoundError:
        return "missing"
    except (OSError, ValueError):
        return "damaged"
    if not isinstance(recorded, dict) or not isinstance(recorded.get("spec"), dict) or \
            recorded["spec"].get("uri") != spec["uri"] or recorded["spec"].get("name") != spec["name"]:
        return "points elsewhere"
    return ""


def _ensure_platform_link(core: Path, spec_text: str, cwd: Path) -> None:
    """Writes PlatformIO's link to a symlink:// platform before PlatformIO runs (atomically, under the provisioning
    lock): PlatformIO would write it itself on every run that finds it missing or elsewhere, truncating it under
    the feet of another run that reads it (InvalidJSONFile) or re-pointing it (UnknownPlatform)."""
    parsed = _link_spec(spec_text)
    if parsed is None:
        return
    name, spec = parsed
    path = core / "platforms" / name
    if not _platform_link_problem(path, spec) and not _unusable_platform_links(core, name):
        return
    with _provision_lock(core):
        try:
            for stale in _unusable_platform_links(core, name):
                stale.unlink(missing_ok=True)
            if _platform_link_problem(path, spec):
                path.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(path, json.dumps({"cwd": str(cwd), "spec": spec}))
        except OSError as exc:
            raise _home_error(exc, core) from exc


def _unusable_platform_links(core: Path, keep: str) -> list[Path]:
    """Links to local platforms that PlatformIO would trip over: unreadable, or to a platform whose manifest is
    unreadable (PlatformIO reads every installed platform's manifest and fails the build on a damaged one, so one
    broken copy of tinydeploy would break every other's builds). Links to folders that are gone are dropped too."""
    found = []
    for link in sorted((core / "platforms").glob("*.pio-link")):
        if link.name == keep:
            continue
        try:
            uri = json.loads(link.read_text())["spec"]["uri"]
            json.loads((Path(uri.removeprefix("symlink://")) / "platform.json").read_text())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            found.append(link)
    return found


def _provision_lock(core: Path):
    from tinydeploy.locking import file_lock

    return file_lock(core / PROVISION_LOCK, f"tinydeploy's PlatformIO directory {core}", wait=PROVISION_WAIT_S,
                     busy_hint=f"if no other tinydeploy runs, delete {core / PROVISION_LOCK}")


def _home_error(exc: OSError, core: Path) -> TinydeployError:
    """A failure to create or repair the core directory, with the fix ($TINYDEPLOY_HOME is the usual one)."""
    if isinstance(exc, (FileExistsError, NotADirectoryError)):
        return TinydeployError(f"tinydeploy's home {core.parent} (or a folder in it) is a file, not a folder",
                               f"remove or rename that file, or set $TINYDEPLOY_HOME to a folder")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return TinydeployError(f"no space left on the disk to set up tinydeploy's PlatformIO directory {core}",
                               "free some space, or set $TINYDEPLOY_HOME to a folder on another disk")
    error = write_error(exc, core, "set up tinydeploy's PlatformIO directory")
    return TinydeployError(error.message, f"{error.hint}; $TINYDEPLOY_HOME chooses where it lives")


def _check_home(core: Path) -> None:
    for folder in (core.parent, core):
        if folder.exists() and not folder.is_dir():
            raise TinydeployError(f"tinydeploy's home needs {folder} to be a folder, but it is a file",
                                  "remove or rename that file, or set $TINYDEPLOY_HOME to a folder")
    try:
        core.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _home_error(exc, core) from exc


def _foreign_damage(core: Path) -> None:
    """PlatformIO's own package records (.piopm) of what it downloaded: a damaged one fails every build with
    InvalidJSONFile. tinydeploy cannot download them again offline, so it names the folder to delete."""
    for record in sorted(core.glob("p*/*/.piopm")):
        if record.parent.parent.name not in ("packages", "platforms") or \
                record.parent.name in (SCONS_PACKAGE, TOOLCHAIN_PACKAGE):
            continue
        try:
            json.loads(record.read_text())
        except (OSError, ValueError):
            raise TinydeployError(f"PlatformIO's record of {record.parent.name} is damaged ({record})",
                                  f"delete {record.parent} and run `tinydeploy setup --board BOARD` with internet "
                                  "access to install it again") from None


def provision_core_dir(core: Path | None = None) -> Path:
    """Makes `core` (default: tinydeploy's own) usable offline, verifying and repairing what tinydeploy put there;
    idempotent and safe to run concurrently from any number of tinydeploy processes and installs."""
    core = core or core_dir()
    _check_home(core)
    packages = core / "packages"
    wanted = [p for p in (_scons_package(), _toolchain_package()) if p is not None]
    version = metadata.version("platformio")
    damaged = [p for p in wanted if package_problem(packages / p.name, p)]
    if damaged or _app_state_version(core) != version:
        with _provision_lock(core):
            try:
                packages.mkdir(parents=True, exist_ok=True)
                for package in wanted:
                    if package_problem(packages / package.name, package):
                        _write_package(packages / package.name, package)
                _settle_app_state(core, version)
            except OSError as exc:
                raise _home_error(exc, core) from exc
    _foreign_damage(core)
    return core


def _app_state_version(core: Path) -> str | None:
    try:
        state = json.loads((core / "appstate.json").read_text())
    except (OSError, ValueError):
        return None
    return state.get("last_version") if isinstance(state, dict) else None


def _settle_app_state(core: Path, version: str) -> None:
    """Tells PlatformIO it already runs this version: otherwise it 'upgrades' its core packages online."""
    state_path = core / "appstate.json"
    try:
        state = json.loads(state_path.read_text())
    except (OSError, ValueError):
        state = {}
    if not isinstance(state, dict):
        state = {}
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


def project_platform(project_dir: Path, env_name: str) -> str:
    config = configparser.ConfigParser(interpolation=None)
    try:
        config.read(project_dir / "platformio.ini")
        return config.get(f"env:{env_name}", "platform", fallback="").strip()
    except configparser.Error:
        return ""


def prepare_project(project_dir: Path, env_name: str) -> dict[str, str]:
    """The environment for running PlatformIO on a project: the core directory verified, and the link to the
    project's local platform (if it has one) in place before PlatformIO looks for it."""
    env = platformio_env()
    _ensure_platform_link(Path(env["PLATFORMIO_CORE_DIR"]), project_platform(project_dir, env_name), project_dir)
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


# ---- running PlatformIO -----------------------------------------------------------------------------------------


@dataclass
class PlatformioRun:
    lines: list[str]
    seconds: float
    log_path: Path


# Lines that say which stage a run is in (for progress and for naming the stage that stalled).
_STAGE = re.compile(r"^(Processing|Compiling|Linking|Archiving|Indexing|Building|Checking size|Uploading|Looking for|Waiting for|"
                    r"Forcing reset|Erase|Write|Verify|Downloading|Installing|Unpacking|Resolving|Library Manager|"
                    r"Tool Manager|Platform Manager)\b")


def stall_seconds() -> float:
    """How long a PlatformIO run may show no sign of life: STALL_SECONDS, or $TINYDEPLOY_STALL_SECONDS."""
    text = os.environ.get(STALL_ENV, "")
    try:
        value = float(text) if text else STALL_SECONDS
    except ValueError:
        raise TinydeployError(f"${STALL_ENV} is not a number of seconds: {text!r}", "give e.g. 300") from None
    if not value > 0:
        raise TinydeployError(f"${STALL_ENV} must be more than 0 seconds, not {text}", "give e.g. 300")
    return value


class _Activity:
    """Signs of life of a process and everything it started: the set of processes, their CPU time and their I/O.
    A build whose compiler works uses CPU; one that downloads reads; a stopped or deadlocked one does neither."""

    def __init__(self, pid: int):
        import psutil  # noqa: PLC0415

        self._psutil = psutil
        try:
            self._root = psutil.Process(pid)
        except psutil.Error:
            self._root = None

    def _processes(self) -> list:
        if self._root is None:
            return []
        try:
            return [self._root, *self._root.children(recursive=True)]
        except self._psutil.Error:
            return []

    def sample(self) -> tuple:
        signature = []
        for process in self._processes():
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    try:
                        io = process.io_counters()
                        chars = getattr(io, "read_chars", io.read_bytes) + getattr(io, "write_chars", io.write_bytes)
                    except (self._psutil.Error, AttributeError, NotImplementedError):
                        chars = 0
                    signature.append((process.pid, round(sum(times), 2), chars))
            except self._psutil.Error:
                continue
        return tuple(sorted(signature))

    def stopped(self) -> list[str]:
        """Names of the processes that are stopped (SIGSTOP, a debugger) or dead but not reaped."""
        found = []
        for process in self._processes():
            try:
                if process.status() in (self._psutil.STATUS_STOPPED, self._psutil.STATUS_TRACING_STOP):
                    found.append(f"{_process_name(process)} (pid {process.pid}) is stopped")
            except self._psutil.Error:
                continue
        return found


def _process_name(process) -> str:
    """SCons and PlatformIO by their role (both run as `python`), other programs by name."""
    try:
        command = " ".join(process.cmdline())
    except Exception:  # noqa: BLE001 (psutil errors, a process gone meanwhile)
        command = ""
    if "scons.py" in command:
        return "SCons"
    if "-m platformio" in command:
        return "PlatformIO"
    source = next((Path(arg).name for arg in reversed(command.split()) if re.search(r"\.(c|cc|cpp|cxx|S|s)$", arg)),
                  None)
    return process.name() + (f" compiling {source}" if source else "")


def _read_lines(stream, lines: queue.Queue) -> None:
    try:
        for raw in stream:
            lines.put(raw.rstrip("\n"))
    except (OSError, ValueError):
        pass
    finally:
        lines.put(None)


def run_platformio(args: list[str], what: str, log_path: Path, on_line: Callable[[str], None] | None = None,
                   timeout: float | None = None, env: dict[str, str] | None = None,
                   diagnose: Callable[[list[str]], TinydeployError | None] | None = None) -> PlatformioRun:
    """Runs `pio ARGS` (in tinydeploy's core directory) as `what` ("building DIR", "uploading to PORT"): streams
    its output lines to on_line, keeps the whole log in log_path, and stops it (and every process it started)
    when it makes no progress for stall_seconds() - no output, no CPU time, no I/O - or runs over `timeout`.
    A failure raises one TinydeployError: `diagnose(lines)` first (the caller's own causes), then the causes
    PlatformIO's output and exit status show; "out of memory?" is said only of a process killed by SIGKILL."""
    env = env or platformio_env()
    stall = stall_seconds()
    started = time.monotonic()
    lines: list[str] = []
    stage = "its start (no progress line yet)"

    def write_log() -> None:
        try:
            log_path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(log_path, "\n".join(lines) + "\n")
        except (OSError, TinydeployError):
            pass  # e.g. the disk is full: the run's own error says more

    proc = subprocess.Popen(platformio_command(*args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, text=True, errors="replace", env=env, start_new_session=True)
    received: queue.Queue = queue.Queue()
    reader = threading.Thread(target=_read_lines, args=(proc.stdout, received), daemon=True)
    reader.start()
    activity = _Activity(proc.pid)
    try:
        last_sign, last_progress = activity.sample(), time.monotonic()
        ended = False
        while not ended:
            try:
                line = received.get(timeout=0.5)
            except queue.Empty:
                line = ""
            else:
                if line is None:
                    ended = True
                    continue
                lines.append(line)
                last_progress = time.monotonic()
                if _STAGE.match(line.strip()):
                    stage = line.strip()[:100]
                if on_line is not None:
                    on_line(line)
            now = time.monotonic()
            if timeout is not None and now - started > timeout:
                _kill_group(proc)
                raise TinydeployError(f"{what} took over {timeout:g} s (last: {stage})",
                                      f"check the connection and retry; log: {log_path}")
            if line == "":
                sign = activity.sample()
                if sign != last_sign:
                    last_sign, last_progress = sign, now
                elif now - last_progress > stall:
                    stopped = activity.stopped()
                    _kill_group(proc)
                    detail = f"; {', '.join(stopped)}" if stopped else ""
                    raise TinydeployError(
                        f"{what} made no progress for {stall:g} s (no output, CPU time or I/O) at: {stage}{detail}",
                        f"a tool hung or was stopped; it was ended. Check the machine's load and run again "
                        f"(${STALL_ENV} changes the limit); log: {log_path}")
        returncode = proc.wait()
    except BaseException:  # Ctrl-C, a stall, or a TinydeployError from on_line: stop the whole run
        _kill_group(proc)
        write_log()
        raise
    finally:
        reader.join(2)
        if proc.stdout is not None:
            proc.stdout.close()
    kill_process_group(proc.pid)  # PlatformIO may exit while tools it started still run (e.g. its SCons died)
    write_log()
    run = PlatformioRun(lines, time.monotonic() - started, log_path)
    if returncode != 0:
        raise (diagnose(lines) if diagnose is not None else None) or \
            platformio_failure(lines, returncode, what, log_path)
    return run


_RAM_OVERFLOW = re.compile(r"region [`'\"]?(\w+)'? overflowed by (\d+) bytes")
_COMPILE_ERROR = re.compile(r"^\S+:\d+(:\d+)?: (fatal )?error: ")
_NETWORK_ERROR = re.compile(r"HTTPClientError|InternetConnectionError|Could not resolve|Failed to establish|"
                            r"Max retries exceeded|Temporary failure in name resolution")
_TOOL_MISSING = re.compile(r"(arm-none-eabi-[\w+-]+): (command )?not found|No such file or directory: '?(arm-none-eabi-[\w+-]+)")
_SCONS_KILLED = re.compile(r"^tinydeploy: SCons \(pid \d+\) was killed by (\S+)")
_COMPILER_KILLED = re.compile(r"(?:fatal error: )?Killed signal terminated program (\S+)|"
                              r"terminated program (\S+)|internal compiler error: Killed")
# PlatformIO prints an exception as "ClassName: message" (UnknownPlatform, InvalidJSONFile, HTTPClientError, ...).
_PIO_EXCEPTION = re.compile(r"^((?=[A-Za-z0-9]*[a-z])(?:[A-Z][a-z0-9]*)(?:[A-Z]+[a-z0-9]*)+): (.+)$")
_SCONS_TARGET_FAILED = re.compile(r"^\*\*\* \[(.+?)\] (.+)$")
_PROGRAM_MISSING = re.compile(r"^([\w./+-]+): (?:No such file or directory|not found|command not found)$")
_CLICK_ERROR = re.compile(r"^Error: (.+)$")


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _killed(who: str, name: str) -> str:
    return f"{who} was killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")


def platformio_failure(lines: list[str], returncode: int, what: str, log_path: Path) -> TinydeployError:
    """The cause of a failed PlatformIO run, from its exit status and what it printed."""
    text = "\n".join(lines)
    log = f"full log: {log_path}"
    if returncode < 0:
        return TinydeployError(f"PlatformIO {_killed('', _signal_name(-returncode)).strip()} while {what}",
                               f"run again (a build resumes where it stopped); {log}")
    stage = next((line.strip()[:100] for line in reversed(lines) if _STAGE.match(line.strip())), "")
    at = f" at: {stage}" if stage else ""
    for line in lines:
        match = _SCONS_KILLED.match(line.strip())
        if match:
            return TinydeployError(f"{what} failed: PlatformIO's build engine (SCons) "
                                   f"{_killed('', match.group(1)).strip()}{at}", f"run again; {log}")
        match = _COMPILER_KILLED.search(line)
        if match:
            program = match.group(1) or match.group(2) or "the compiler"
            return TinydeployError(f"{what} failed: {_killed(f'the compiler ({program})', 'SIGKILL')}{at}",
                                   f"free memory (close programs) and run again; {log}")
    full = next((line.strip() for line in lines if "No space left on device" in line), None)
    if full:
        return TinydeployError(f"no space left on the disk while {what}",
                               f"free some space, or choose an --out on another disk; {log}")
    for line in lines:
        match = _TOOL_MISSING.search(line)
        if match:
            return TinydeployError(f"the Arm toolchain is missing ({match.group(1) or match.group(3)} not found)",
                                   ARM_TOOLCHAIN_HINT)
        if "nano.specs" in line and "No such file" in line or "cannot find -lc_nano" in line:
            return TinydeployError("newlib-nano for arm-none-eabi is missing",
                                   "install it, e.g. on Debian/Ubuntu: apt-get install libnewlib-arm-none-eabi "
                                   "libstdc++-arm-none-eabi-newlib")
    exception = next((m for m in map(_PIO_EXCEPTION.match, (line.strip() for line in lines)) if m), None)
    if exception is not None and not _NETWORK_ERROR.search(exception.group(1)):
        return _platformio_exception(exception.group(1), exception.group(2), what, log)
    if _NETWORK_ERROR.search(text):
        return platformio_unreachable_message("a platform or package for this project")
    for line in lines:
        if _COMPILE_ERROR.search(line) or "undefined reference to" in line:
            return TinydeployError(f"the firmware does not build: {line.strip()}", log)
    for line in lines:
        match = _SCONS_TARGET_FAILED.match(line.strip())
        if match:
            target, reason = match.group(1), match.group(2)
            missing = _PROGRAM_MISSING.match(reason)
            if missing:
                return TinydeployError(f"{what} failed: the program `{missing.group(1)}` that the build runs is "
                                       f"missing (building {target})",
                                       f"install it or put it on PATH (PATH={os.environ.get('PATH', '')[:80]}); {log}")
            return TinydeployError(f"{what} failed building {target}: {reason}", log)
    click = next((m.group(1) for m in map(_CLICK_ERROR.match, (line.strip() for line in lines)) if m), None)
    if click:
        return TinydeployError(f"{what} failed: PlatformIO says: {click}", log)
    last = next((line.strip() for line in reversed(lines) if "rror" in line), None)
    if last:
        return TinydeployError(f"{what} failed: {last}", log)
    tail = [line.strip() for line in lines if line.strip() and not set(line.strip()) <= set("=-")
            and "[FAILED]" not in line]
    said = f"; its last line: {tail[-1][:120]}" if tail else ""
    return TinydeployError(f"{what} failed: PlatformIO exited with status {returncode} and no error message{said}",
                           log)


def _platformio_exception(name: str, message: str, what: str, log: str) -> TinydeployError:
    message = " ".join(message.split())
    path = re.search(r"(/[^\s'`\"]+)", message)
    if name == "InvalidJSONFile" and path:
        folder = Path(path.group(1)).parent
        return TinydeployError(f"{what} failed: PlatformIO cannot read {path.group(1)} (damaged JSON)",
                               f"delete {folder} and run again (a board's platform comes back with "
                               f"`tinydeploy setup --board BOARD`); {log}")
    if "Manifest" in name or name == "InvalidJSONFile":
        return TinydeployError(f"{what} failed: PlatformIO cannot read a package's manifest ({name}: "
                               f"{message[:160]})", f"check the platform or library folder the project names, or "
                               f"reinstall it; {log}")
    if name in ("UnknownPlatform", "UnknownPackageError", "UnknownBoard", "UnknownFramework", "PackageException"):
        return TinydeployError(f"{what} failed: PlatformIO does not find what the project names ({name}: "
                               f"{message[:160]})", f"for a real board run `tinydeploy setup --board BOARD` with "
                               f"internet access; for a generated project, generate it again; {log}")
    return TinydeployError(f"{what} failed: PlatformIO reports {name}: {message[:200]}", log)


# ---- building ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildResult:
    elf_path: Path
    flash_bytes: int          # text + data: what is written to flash
    ram_bytes: int            # data + bss: static RAM, without the stack reserve
    stack_reserve_bytes: int  # RAM the linker script reserved for the stack (0 if none)
    log: str
    log_path: Path
    seconds: float


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


def _build_failure(lines: list[str], log_path: Path, project_dir: Path, env_name: str) -> TinydeployError | None:
    """Causes only a build has: the firmware does not fit the board."""
    text = "\n".join(lines)
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
    return None


def _failure(lines: list[str], log_path: Path, project_dir: Path, env_name: str, returncode: int = 1) -> TinydeployError:
    """The diagnosis of a failed build (the board's limits first, then what PlatformIO's output says)."""
    return _build_failure(lines, log_path, project_dir, env_name) or \
        platformio_failure(lines, returncode, f"building {project_dir}", log_path)


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
    if "symlink://" in platform or platform.startswith("file://"):
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
    env = prepare_project(project_dir, env_name)
    _check_downloads_possible(project_dir, env_name, Path(env["PLATFORMIO_CORE_DIR"]))
    log_path = project_dir / ".pio" / f"tinydeploy-build-{env_name}.log"
    try:
        log_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(exc, log_path.parent, "create the build directory") from exc
    run = run_platformio(["run", "-d", str(project_dir), "-e", env_name], f"building {project_dir}", log_path,
                         on_line, env=env, diagnose=lambda lines: _build_failure(lines, log_path, project_dir,
                                                                                env_name))
    elf_path = project_dir / ".pio" / "build" / env_name / "firmware.elf"
    if not elf_path.is_file():
        raise TinydeployError(f"PlatformIO reported success but {elf_path} is missing", f"full log: {log_path}")
    flash, ram, stack = elf_sizes(elf_path)
    return BuildResult(elf_path, flash, ram, stack, "\n".join(run.lines) + "\n", log_path, run.seconds)


def kill_process_group(pgid: int) -> None:
    """SIGKILL whatever is left in a process group (a session tinydeploy started); nothing if it is empty."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_group(proc: subprocess.Popen) -> None:
    """Stops a PlatformIO run and everything it started: SIGTERM, then SIGKILL for what is left. SIGCONT too,
    so that a stopped process can take its SIGTERM."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        os.killpg(proc.pid, signal.SIGCONT)
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
