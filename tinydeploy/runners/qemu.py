"""The virtual board: QEMU mps2-an386 running a built firmware, its UART on a loopback TCP port.

All QEMU knowledge lives here. Whoever talks to the board gets only `port_url` (a pyserial URL).
The command line is the one the platform's `pio run -t upload` uses: both read it from the board
definition (firmware/platform/boards/virtual.json, "qemu"), so there is one definition.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import weakref
from collections import deque
from pathlib import Path

from tinydeploy.errors import EXIT_FAILED, TinydeployError
from tinydeploy.paths import firmware_dir

# Exit statuses the board-support layer gives QEMU through semihosting.
FAULT_EXIT_STATUS = 3  # HardFault (TD_FAULT_EXIT_STATUS in bsp/include/td_virtual.h)
FAULT_MARKER = "td-fault:"  # starts the line the firmware prints before a fault exit

_PORT_LINE = re.compile(r"disconnected:tcp:127\.0\.0\.1:(\d+)")
_PR_SET_PDEATHSIG = 1

_live_boards: weakref.WeakSet[QemuBoard] = weakref.WeakSet()


def board_definition(board_id: str = "virtual") -> dict:
    path = firmware_dir() / "platform" / "boards" / f"{board_id}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TinydeployError(f"cannot read the board definition {path}: {exc}", "reinstall tinydeploy") from exc


def qemu_command(elf_path: Path, board_id: str = "virtual") -> list[str]:
    """QEMU's command line for `elf_path`, exactly as the platform's upload target runs it."""
    qemu = board_definition(board_id)["qemu"]
    return [qemu["program"], *(arg.replace("{elf}", str(elf_path)) for arg in qemu["args"])]


def _die_with_parent() -> None:
    """Runs in the child before exec: the kernel kills QEMU if tinydeploy dies without cleaning up (kill -9)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass


def _status(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"status {code}"


class QemuBoard:
    """A running virtual board. Use as a context manager; QEMU is stopped on exit, error or Ctrl-C.

    QEMU is tied to the thread that starts it (Linux parent-death signal): start it from a thread
    that outlives the board, normally the main thread.
    """

    def __init__(self, project_dir: Path | None = None, env_name: str = "virtual", *, elf_path: Path | None = None,
                 board_id: str = "virtual", start_timeout: float = 15.0):
        if elf_path is None:
            if project_dir is None:
                raise ValueError("give a project directory or an ELF file")
            elf_path = Path(project_dir) / ".pio" / "build" / env_name / "firmware.elf"
        self.elf_path = Path(elf_path).resolve()
        self.board_id = board_id
        self.start_timeout = start_timeout
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None
        self._stderr_tail: deque[str] = deque(maxlen=40)
        self._port_found = threading.Event()
        self._reader: threading.Thread | None = None

    @classmethod
    def from_elf(cls, elf_path: Path, **options) -> QemuBoard:
        return cls(elf_path=elf_path, **options)

    @property
    def command(self) -> list[str]:
        return qemu_command(self.elf_path, self.board_id)

    @property
    def port_url(self) -> str:
        if self.port is None:
            raise TinydeployError("the virtual board is not running", "start it first")
        return f"socket://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def stderr_tail(self) -> str:
        return "\n".join(self._stderr_tail)

    def start(self) -> QemuBoard:
        if self._proc is not None:
            raise RuntimeError("this QemuBoard was already started")
        if not self.elf_path.is_file():
            raise TinydeployError(f"no firmware to run: {self.elf_path} does not exist", "build the project first")
        command = self.command
        if shutil.which(command[0]) is None:
            raise TinydeployError(f"{command[0]} is not installed (the virtual board runs on QEMU)",
                                  "install it, e.g. on Debian/Ubuntu: apt-get install qemu-system-arm")
        self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, start_new_session=True, preexec_fn=_die_with_parent)
        _live_boards.add(self)
        self._reader = threading.Thread(target=self._read_stderr, name=f"qemu-stderr-{self._proc.pid}", daemon=True)
        self._reader.start()
        try:
            self._wait_for_port()
        except BaseException:  # Ctrl-C while QEMU starts: __exit__ will not run, so stop it here
            self.stop()
            raise
        return self

    def _wait_for_port(self) -> None:
        assert self._proc is not None and self._reader is not None
        deadline = time.monotonic() + self.start_timeout
        while not self._port_found.wait(0.05):
            if self._proc.poll() is not None:
                self._reader.join(1.0)
                if self._port_found.is_set():
                    break
                self.stop()
                raise TinydeployError(f"QEMU exited at start with {_status(self._proc.returncode)}: "
                                      f"{self._tail_summary()}", "check the firmware and the QEMU installation")
            if time.monotonic() > deadline:
                self.stop()
                raise TinydeployError(f"QEMU did not open its serial port within {self.start_timeout:.0f} s: "
                                      f"{self._tail_summary()}", "check the QEMU installation")

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for raw in self._proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self._stderr_tail.append(line)
            match = _PORT_LINE.search(line)
            if match and not self._port_found.is_set():
                self.port = int(match.group(1))
                self._port_found.set()

    def _tail_summary(self) -> str:
        """QEMU's own last message (its lines start with its name), else the last line of stderr."""
        lines = [line.strip() for line in self._stderr_tail if line.strip()]
        own = [line for line in lines if line.startswith(("qemu", "QEMU"))]
        return (own or lines or ["(nothing on stderr)"])[-1]

    def check_alive(self) -> None:
        """Raises a TinydeployError telling why QEMU stopped, if it did."""
        code = self.returncode
        if self._proc is None or code is None:
            return
        if self._reader is not None:
            self._reader.join(2.0)  # QEMU's last words (e.g. "Lockup") may still be in the pipe: read them first
        if code == FAULT_EXIT_STATUS:
            raise TinydeployError("the firmware crashed on the virtual board (HardFault)",
                                  f"the serial output has a '{FAULT_MARKER}' line with the faulting address",
                                  exit_code=EXIT_FAILED)
        if "Lockup" in self.stderr_tail():
            raise TinydeployError(f"the firmware locked up the virtual board (QEMU {_status(code)}: "
                                  f"{self._tail_summary()})", "a fault while handling a fault, e.g. a stack overflow "
                                  "or a corrupt vector table", exit_code=EXIT_FAILED)
        raise TinydeployError(f"the virtual board stopped: QEMU exited with {_status(code)} "
                              f"({self._tail_summary()})", "the firmware stopped, or QEMU failed or was killed; "
                              "run again", exit_code=EXIT_FAILED)

    def wait(self, timeout: float | None = None) -> int | None:
        """Waits for QEMU to exit by itself (e.g. the firmware called exit()); its status, or None on timeout."""
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Kills QEMU's whole process group; safe to call more than once. SIGKILL at once: QEMU holds no
        state worth saving here (no disk images), and SIGTERM costs ~0.3 s of shutdown."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
        if self._reader is not None:
            self._reader.join(2.0)
        if proc.stderr is not None:
            proc.stderr.close()
        _live_boards.discard(self)

    def __enter__(self) -> QemuBoard:
        if self._proc is None:
            self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def __del__(self) -> None:
        try:
            self.stop()
        except Exception:  # interpreter shutdown: best effort
            pass


@atexit.register
def _stop_all_boards() -> None:
    for board in list(_live_boards):
        board.stop()
