"""The virtual board: QEMU mps2-an386 running a built firmware, its UART on a loopback TCP port.

All QEMU knowledge lives here. Whoever talks to the board gets only `port_url` (a pyserial URL).
The board profile's [qemu] table (tinydeploy/boards/virtual.toml) is the one definition: the command line is
built from it here, and the PlatformIO board file the platform's `pio run -t upload` reads
(firmware/platform/boards/virtual.json) is generated from it (`python -m tinydeploy.runners.qemu`).
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
import sys
import threading
import time
import weakref
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING

from tinydeploy.errors import EXIT_FAILED, TinydeployError
from tinydeploy.paths import firmware_dir
from tinydeploy.runners.base import Progress, Runner, RunnerCaps, _quiet

if TYPE_CHECKING:
    from tinydeploy.boards import Board

# Exit statuses the board-support layer gives QEMU through semihosting.
FAULT_EXIT_STATUS = 3  # HardFault (TD_FAULT_EXIT_STATUS in bsp/include/td_virtual.h)
FAULT_MARKER = "td-fault:"  # starts the line the firmware prints before a fault exit

_PORT_LINE = re.compile(r"disconnected:tcp:127\.0\.0\.1:(\d+)")
_PR_SET_PDEATHSIG = 1
ELF_PLACEHOLDER = "{elf}"
QEMU_SETTINGS = {"program": str, "machine": str, "cpu": str, "icount_shift": int}

_live_boards: weakref.WeakSet[QemuBoard] = weakref.WeakSet()


def _default_board(board: Board | None) -> Board:
    if board is not None:
        return board
    from tinydeploy.boards import get_board

    return get_board("virtual")


def qemu_settings(board: Board | None = None) -> dict:
    """The profile's [qemu] table, checked: program, machine, cpu, icount_shift."""
    board = _default_board(board)
    settings = board.runner_settings
    for key, kind in QEMU_SETTINGS.items():
        value = settings.get(key)
        if not isinstance(value, kind) or isinstance(value, bool) or value in ("", None):
            raise TinydeployError(f"board profile {board.source.name}: field 'qemu.{key}' must be a "
                                  f"{'non-negative integer' if kind is int else 'non-empty string'}, got {value!r}",
                                  "fix the profile")
    if not 0 <= settings["icount_shift"] <= 10:
        raise TinydeployError(f"board profile {board.source.name}: field 'qemu.icount_shift' must be 0..10",
                              "fix the profile")
    return settings


def qemu_arguments(board: Board | None = None) -> list[str]:
    """QEMU's arguments with ELF_PLACEHOLDER for the firmware: deterministic timing (-icount), semihosting for the
    exit status, the UART on a free loopback port that waits for its client."""
    settings = qemu_settings(board)
    return ["-machine", settings["machine"], "-cpu", settings["cpu"], "-display", "none", "-monitor", "none",
            "-icount", f"shift={settings['icount_shift']}", "-semihosting-config", "enable=on,target=native",
            "-serial", "tcp:127.0.0.1:0,server=on,wait=on,nodelay=on", "-kernel", ELF_PLACEHOLDER]


def qemu_command(elf_path: Path, board: Board | None = None) -> list[str]:
    """QEMU's command line for `elf_path`, exactly as the platform's upload target runs it."""
    return [qemu_settings(board)["program"],
            *(arg.replace(ELF_PLACEHOLDER, str(elf_path)) for arg in qemu_arguments(board))]


def ns_per_instruction(board: Board | None = None) -> int:
    """Virtual time of one instruction: 2^shift ns for QEMU's `-icount shift=N`."""
    return 1 << qemu_settings(board)["icount_shift"]


# ---- the PlatformIO board file of the virtual platform, generated from the profile -----------------------------


def platformio_board_manifest(board: Board | None = None) -> dict:
    """firmware/platform/boards/<board>.json: sizes for the linker script (upload.maximum_size/_ram_size, passed
    as --defsym), the stack reserve, the clock, and the QEMU command line for `pio run -t upload`."""
    board = _default_board(board)
    settings = qemu_settings(board)
    return {
        "name": f"tinydeploy {board.title}",
        "vendor": "tinydeploy",
        "url": "https://www.qemu.org/docs/master/system/arm/mps2.html",
        "frameworks": [board.pio_framework],
        "build": {"cpu": settings["cpu"], "mcu": settings["machine"], "f_cpu": f"{board.clock_hz}L",
                  "stack_size": board.stack_bytes},
        "upload": {"maximum_size": board.flash_bytes, "maximum_ram_size": board.ram_bytes,
                   "protocol": board.upload_method, "protocols": [board.upload_method]},
        "qemu": {"program": settings["program"], "args": qemu_arguments(board)},
    }


def platformio_board_file(board: Board) -> tuple[Path, str]:
    """(path, text) of the board's generated PlatformIO board file."""
    text = json.dumps(platformio_board_manifest(board), indent=2) + "\n"
    return firmware_dir() / "platform" / "boards" / f"{board.pio_board}.json", text


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
                 board: Board | None = None, start_timeout: float = 15.0, cwd: Path | None = None):
        if elf_path is None:
            if project_dir is None:
                raise ValueError("give a project directory or an ELF file")
            elf_path = Path(project_dir) / ".pio" / "build" / env_name / "firmware.elf"
        self.elf_path = Path(elf_path).resolve()
        self.board = board
        self.start_timeout = start_timeout
        # QEMU's working directory: where the board's semihosting file calls look, e.g. for a sensor feed's pipes
        self.cwd = cwd
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
        return qemu_command(self.elf_path, self.board)

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
                                      stderr=subprocess.PIPE, start_new_session=True, preexec_fn=_die_with_parent,
                                      cwd=self.cwd)
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


class QemuRunner(Runner):
    """The virtual board: each runner is one QEMU instance; starting another firmware restarts QEMU with it."""

    name = "qemu"
    caps = RunnerCaps(emulated=True, counts_instructions=True, can_reset=True, simulated_sensors=True)

    def __init__(self, board: Board, port: str | None = None, index: int = 0, serial_number: str = ""):
        super().__init__(board, port, index, serial_number or f"qemu-{index}")
        self.label = f"{board.name}{index}"
        self.qemu: QemuBoard | None = None
        self._elf_path: Path | None = None
        self._sensor_source = None
        self._feed = None

    def attach_sensors(self, source) -> None:
        self._sensor_source = source

    @property
    def sensor_source(self):
        return self._sensor_source

    @property
    def sensor_feed(self):
        return self._feed

    @classmethod
    def check_settings(cls, board: Board) -> None:
        qemu_settings(board)

    def upload(self, firmware, progress: Progress = _quiet) -> None:
        self._elf_path = Path(firmware.elf_path)

    def start(self, progress: Progress = _quiet) -> str:
        if self._elf_path is None:
            raise TinydeployError("no firmware to start on the virtual board", "upload one first")
        self.stop()
        progress("starting the virtual board (QEMU)")
        if self._sensor_source is not None:
            from tinydeploy.sensors.feed import SensorFeed

            # the board finds the feed's pipes in QEMU's working directory (semihosting)
            self._feed = SensorFeed(self._sensor_source)
        self.qemu = QemuBoard(elf_path=self._elf_path, board=self.board,
                              cwd=self._feed.directory if self._feed is not None else None).start()
        progress(f"QEMU pid {self.qemu.pid} serves {self.qemu.port_url}")
        self.url = self.qemu.port_url
        return self.url

    def stop(self) -> None:
        if self.qemu is not None:
            self.qemu.stop()
            self.qemu = None
        if self._feed is not None:
            self._feed.stop()  # keeps its log and problem for the caller

    def check_alive(self) -> None:
        if self.qemu is not None:
            self.qemu.wait(0.5)  # called after a failed exchange: a dying QEMU closes its socket before it exits
            self.qemu.check_alive()

    def kill(self) -> None:
        """Fault injection for tests of the tools themselves: SIGKILL QEMU, as a crash would."""
        if self.qemu is not None and self.qemu.pid is not None:
            os.kill(self.qemu.pid, signal.SIGKILL)

    def instructions(self, latency_us: int) -> int:
        return int(latency_us) * 1000 // ns_per_instruction(self.board)

    def timing_note(self) -> str:
        return (f"emulated: QEMU -icount, ~{self.board.clock_hz / 1e6:g} MHz at 1 instruction/cycle")


def write_platform_board_files() -> list[Path]:
    """Regenerate the virtual platform's board files from the profiles that use this runner."""
    from tinydeploy.boards import all_boards
    from tinydeploy.fsutil import atomic_write_text

    written = []
    for board in all_boards().values():
        if board.upload_runner == QemuRunner.name:
            path, text = platformio_board_file(board)
            atomic_write_text(path, text)
            written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_platform_board_files():
        print(f"wrote {written_path}", file=sys.stderr)
