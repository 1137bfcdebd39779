"""Locks between tinydeploy processes: the provisioned PlatformIO directory, project directories, workspaces.

One flock(2) per lock file. A lock file that is a directory, a FIFO or unwritable is reported in one line with
the fix, never as an internal error. Locks are re-entrant within a process (flash holds its project's lock while
the generator takes it again), and always released when the holder dies (the kernel drops flocks).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import stat
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from tinydeploy.errors import TinydeployError
from tinydeploy.fsutil import write_error

POLL_SECONDS = 0.1
# Locks this process holds: path -> (descriptor, depth). Re-entry only from the thread that holds it.
_held: dict[str, tuple[int, int, int]] = {}
_held_guard = threading.Lock()


class LockBusy(TinydeployError):
    """The lock is held by another process (and the caller chose not to wait, or waited long enough)."""


def _open_lock_file(path: Path, what: str) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:
        raise TinydeployError(f"cannot create the folder for {what}: {path.parent} exists and is not a folder",
                              f"remove or rename {path.parent}") from exc
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            raise TinydeployError(f"cannot create the folder for {what}: a part of {path.parent} is a file",
                                  "remove or rename that file, or point $TINYDEPLOY_HOME elsewhere") from exc
        raise write_error(exc, path.parent, f"create the folder for {what} in") from exc
    try:
        # O_NONBLOCK: a FIFO put in the lock's place must not block the open
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | os.O_CLOEXEC, 0o644)
    except IsADirectoryError as exc:
        raise TinydeployError(f"the lock file for {what} is a directory: {path}",
                              f"remove it (rmdir {path}) and run again") from exc
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            raise TinydeployError(f"cannot create the lock file for {what}: a part of {path.parent} is a file",
                                  "remove or rename that file") from exc
        raise write_error(exc, path, f"create the lock file for {what},") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise TinydeployError(f"the lock file for {what} is not a regular file: {path}",
                              f"remove it (rm {path}) and run again")
    return fd


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return ""
    return f" (pid {text})" if text.isdigit() else ""


@contextmanager
def file_lock(path: Path, what: str, wait: float | None = None, busy: str | None = None,
              busy_hint: str = "wait for it to finish and run again") -> Iterator[None]:
    """Holds an exclusive lock on `path` for the block. `wait`: seconds to wait for another holder (None: for
    ever, 0: not at all); when it runs out, LockBusy with `busy` (default: another tinydeploy is using `what`)."""
    key = os.path.abspath(path)
    with _held_guard:
        entry = _held.get(key)
        if entry is not None and entry[2] == threading.get_ident():
            _held[key] = (entry[0], entry[1] + 1, entry[2])
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _held_guard:
                fd, depth, owner = _held[key]
                _held[key] = (fd, depth - 1, owner)
        return
    fd = _open_lock_file(Path(path), what)
    try:
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise LockBusy(busy or f"another tinydeploy{_holder(fd)} is using {what}", busy_hint) from None
                time.sleep(POLL_SECONDS)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass  # the pid is only for messages
        with _held_guard:
            _held[key] = (fd, 1, threading.get_ident())
        try:
            yield
        finally:
            with _held_guard:
                del _held[key]
    finally:
        os.close(fd)  # releases the flock


def runtime_lock_dir() -> Path:
    """Per-user folder for locks on paths anywhere (project directories): the same for every tinydeploy install
    and home of this user, so two installs writing one --out see each other."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    root = Path(base) / "tinydeploy" if base and os.path.isdir(base) else \
        Path(tempfile.gettempdir()) / f"tinydeploy-{os.getuid()}"
    try:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(root)
    except OSError as exc:
        raise write_error(exc, root, "create the lock folder") from exc
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise TinydeployError(f"the lock folder {root} is not a folder of yours",
                              f"remove it, or set $TMPDIR to a folder of yours")
    return root / "locks"


def project_lock_path(directory: Path) -> Path:
    key = hashlib.sha256(str(Path(directory).resolve()).encode()).hexdigest()[:32]
    return runtime_lock_dir() / f"project-{key}.lock"


@contextmanager
def project_lock(directory: Path, wait: float | None = 0) -> Iterator[None]:
    """Holds the project directory `directory` for one tinydeploy (generate, build and run) while the block runs.
    By default another tinydeploy using it is an error at once (two runs into one --out would build each other's
    sources); internal work folders pass wait=None to take turns."""
    directory = Path(directory)
    with file_lock(project_lock_path(directory), f"the project directory {directory}", wait=wait,
                   busy_hint="wait for it to finish, or choose another --out"):
        yield
