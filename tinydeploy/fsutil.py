"""File-system helpers: atomic writes and the refuse-to-overwrite rule."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from tinydeploy.errors import TinydeployError


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_input_file(path: Path, what: str = "file") -> bytes:
    """Read a user's input file, turning every OS failure into a one-line error."""
    if not path.exists():
        raise TinydeployError(f"{what} not found: {path}", "check the path")
    if path.is_dir():
        raise TinydeployError(f"{what} is a directory: {path}", "give a file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TinydeployError(f"cannot read {what} {path}: {exc.strerror}", "check its permissions") from exc


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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory and rename, so readers never see half a file."""
    path = Path(path)
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except OSError as exc:
        if tmp_name:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass
        raise TinydeployError(f"cannot write {path}: {exc.strerror}", "check free space and permissions") from exc


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))
