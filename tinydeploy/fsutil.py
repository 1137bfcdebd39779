"""File-system helpers: atomic writes and the refuse-to-overwrite rule."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import tempfile
import tomllib
from pathlib import Path

from tinydeploy.errors import TinydeployError


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_input_file(path: Path, what: str = "file", hint: str = "give a file") -> None:
    """Refuse a missing path, a directory and anything that is not a regular file (a FIFO would block the
    read for ever, /dev/zero would never end), before anything opens it."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise TinydeployError(f"{what} not found: {path}", "check the path") from None
    except OSError as exc:
        raise TinydeployError(f"cannot read {what} {path}: {exc.strerror}", "check the path and its permissions") \
            from exc
    if stat.S_ISDIR(mode):
        raise TinydeployError(f"{what} is a directory: {path}", hint)
    if not stat.S_ISREG(mode):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device" if stat.S_ISCHR(mode) or \
            stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
        raise TinydeployError(f"{what} is not a regular file: {path} is {kind}", hint)


def read_input_file(path: Path, what: str = "file", limit: int | None = None, hint: str = "give a file") -> bytes:
    """Read a user's input file (at most `limit` bytes), turning every OS failure into a one-line error. The file
    is opened without blocking and checked again once open, so a FIFO swapped in after the check cannot hang."""
    path = Path(path)
    check_input_file(path, what, hint)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise TinydeployError(f"cannot read {what} {path}: {exc.strerror}", "check its permissions") from exc
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise TinydeployError(f"{what} is not a regular file: {path}", hint)
        try:
            return handle.read() if limit is None else handle.read(limit)
        except OSError as exc:
            raise TinydeployError(f"cannot read {what} {path}: {exc.strerror}", "check the file") from exc


def read_toml_profile(path: Path, what: str) -> dict:
    """A shipped or user-written TOML profile (`what`: "board profile", "kit profile"), every failure one line."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TinydeployError(f"cannot read {what} {path}: {exc}", "check the file") from exc
    except tomllib.TOMLDecodeError as exc:
        raise TinydeployError(f"{what} {path.name} is not valid TOML: {exc}", "fix its syntax") from exc


def check_output_path(path: Path, force: bool) -> None:
    """Refuse directories, unwritable places and (without --force) existing files."""
    if path.is_dir():
        raise TinydeployError(f"output path is a directory: {path}", "give a file name, e.g. -o model.tflite")
    if path.exists() and not force:
        raise TinydeployError(f"output file already exists: {path}", "pass --force to overwrite it")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise TinydeployError(f"output directory does not exist: {parent}", "create it first")
    if not os.access(parent, os.W_OK):
        raise TinydeployError(f"output directory is not writable: {parent}", "choose another path")


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_error(exc: OSError, path: Path, action: str = "write") -> TinydeployError:
    """A one-line error for a failed write, naming the path and the fix for the usual causes."""
    path = Path(path)
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return TinydeployError(f"no space left on the disk to {action} {path}",
                               "free some space, or choose an output on another disk")
    if code == errno.EFBIG:
        return TinydeployError(f"cannot {action} {path}: the file exceeds the file-size limit",
                               "raise the limit (ulimit -f), or choose another output")
    if code == errno.EROFS:
        return TinydeployError(f"cannot {action} {path}: the file system is read-only",
                               "choose another output, on a writable disk")
    if code in (errno.EACCES, errno.EPERM):
        folder = path if path.is_dir() else path.parent
        return TinydeployError(f"no permission to {action} {path}",
                               f"make {folder} writable (chmod u+w), or choose another output")
    return TinydeployError(f"cannot {action} {path}: {exc.strerror or exc}", "check free space and permissions")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory and rename, so readers never see half a file.
    A replaced file keeps its permissions; a new one gets the usual ones (0666 less the umask)."""
    path = Path(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = 0o666 & ~current_umask()
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
        tmp_name = None
    except OSError as exc:
        raise write_error(exc, path) from exc
    finally:
        if tmp_name:  # failed or interrupted (Ctrl-C): leave no temporary file behind
            try:
                os.unlink(tmp_name)
            except OSError:
                pass


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
