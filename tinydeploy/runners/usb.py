"""A real board on USB: find its serial port by VID:PID, upload with PlatformIO, wait for it to come back.

Board facts (USB ids of the running sketch and of the bootloader) come from the board profile. The port
list is pyserial's (serial.tools.list_ports); functions take it as an argument so they can be checked on
recorded port lists. Boards that show the same USB id (every ST-Link board) are told apart by their USB serial
number: `--port` takes a port, a pyserial URL or a serial number.
"""

from __future__ import annotations

import errno
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import serial
from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

from tinydeploy.boards import Board, UsbId
from tinydeploy.errors import TinydeployError
from tinydeploy.fsutil import atomic_write_text
from tinydeploy.runners.base import Runner, RunnerCaps, UnresolvedPort, _quiet

Progress = Callable[[str], None]
PortLister = Callable[[], Sequence[ListPortInfo]]

UPLOAD_TIMEOUT_S = 180.0
REENUMERATION_TIMEOUT_S = 15.0
POLL_S = 0.2


def _matches(port: ListPortInfo, usb: UsbId | None) -> bool:
    return usb is not None and port.vid == usb.vid and port.pid == usb.pid


def _no_board_hint(board: Board) -> str:
    ids = " or ".join(str(u) for u in board.usb_ids) or "its USB id"
    hint = (f"check that the board is plugged in with a data-capable USB cable (charge-only cables show no port), "
            f"that it appears with USB id {ids} (lsusb), and if a crashed sketch hides the port, double-tap its "
            f"reset button to enter the bootloader")
    if sys.platform.startswith("linux"):
        hint += "; on Linux your user must be in the dialout group (sudo usermod -aG dialout $USER, then log in again)"
    return hint + "; or give --port"


def board_ports(board: Board, ports: Iterable[ListPortInfo]) -> tuple[list[ListPortInfo], list[ListPortInfo]]:
    """(ports running a sketch, ports in the bootloader) among `ports`, by the board profile's USB ids."""
    ports = list(ports)
    return ([p for p in ports if _matches(p, board.usb_sketch)],
            [p for p in ports if _matches(p, board.usb_bootloader)])


def is_url(port: str) -> bool:
    """A pyserial URL (socket://, rfc2217://): a board reached over the network, not a local device."""
    return "://" in port


def find_board_port(board: Board, port: str | None = None, ports: Sequence[ListPortInfo] | None = None) -> str:
    """The serial port of the one connected `board`: `port` if given (a port, a URL, or the USB serial number of
    one of the board's ports), else the only port whose VID:PID is the board's (a sketch's port before a
    bootloader's). Several boards ask for --port; none explains what to check."""
    if port and (is_url(port) or port.startswith("/") or ports is None and Path(port).exists()):
        return port
    listed = list(list_ports.comports() if ports is None else ports)
    if port:
        by_serial = [p for p in listed if p.serial_number and p.serial_number == port]
        return by_serial[0].device if len(by_serial) == 1 else port
    sketch, bootloader = board_ports(board, listed)
    candidates = sketch or bootloader
    if len(candidates) == 1:
        return candidates[0].device
    if len(candidates) > 1:
        names = ", ".join(f"{p.device} ({p.serial_number or p.description})" for p in candidates)
        raise TinydeployError(f"{len(candidates)} {board.title} boards are connected: {names}",
                              "choose one with --port (a port or its USB serial number)")
    others = ", ".join(p.device for p in listed) or "none"
    raise TinydeployError(f"no {board.title} found on USB (serial ports: {others})", _no_board_hint(board))


def check_port_free(device: str, baudrate: int) -> None:
    """Opens the port exclusively and closes it again: a port another program holds fails here, before the
    upload, with one line. (Not at 1200 baud: that would reset the board into its bootloader.)"""
    try:
        handle = serial.Serial(device, baudrate=baudrate, exclusive=True, timeout=0)
    except serial.SerialException as exc:
        text = str(exc)
        if (getattr(exc, "errno", None) in (errno.EBUSY, errno.EAGAIN) or "busy" in text.lower()
                or "lock" in text.lower()):
            raise TinydeployError(f"serial port {device} is busy: another program holds it",
                                  "close the serial monitor (Arduino IDE, pio device monitor, screen) and retry") from exc
        if getattr(exc, "errno", None) == errno.EACCES or "Permission denied" in text:
            raise TinydeployError(f"no permission to open {device}",
                                  "on Linux add your user to the dialout group (sudo usermod -aG dialout $USER, "
                                  "then log in again)") from exc
        if getattr(exc, "errno", None) == errno.ENOENT or "No such file" in text:
            raise TinydeployError(f"serial port {device} does not exist (unplugged?)",
                                  "plug the board in, or check --port") from exc
        raise TinydeployError(f"cannot open serial port {device}: {' '.join(text.split())[:160]}",
                              "check the port and the cable") from exc
    handle.close()


def wait_for_port(board: Board, timeout: float = REENUMERATION_TIMEOUT_S, preferred: str | None = None,
                  list_ports_fn: PortLister | None = None, baudrate: int | None = None) -> str:
    """After an upload the board resets and its USB port disappears, then comes back (maybe under another
    name). Waits until exactly one port with the sketch's VID:PID is listed and can be opened; returns it.
    `preferred` (the port used before) wins when several are listed."""
    lister = list_ports_fn or list_ports.comports
    deadline = time.monotonic() + timeout
    last_problem = "the board's port did not appear"
    while True:
        sketch, _ = board_ports(board, lister())
        names = [p.device for p in sketch]
        chosen = preferred if preferred in names else (names[0] if len(names) == 1 else None)
        if chosen is not None:
            try:
                serial.Serial(chosen, baudrate=baudrate or board.baud, timeout=0).close()
                return chosen
            except (serial.SerialException, OSError) as exc:
                last_problem = f"{chosen} is listed but cannot be opened yet ({' '.join(str(exc).split())[:80]})"
        elif len(names) > 1:
            last_problem = f"several boards came back: {', '.join(names)}"
        if time.monotonic() >= deadline:
            raise TinydeployError(f"{board.title} did not come back on USB within {timeout:g} s after the upload: "
                                  f"{last_problem}", _no_board_hint(board))
        time.sleep(POLL_S)


# ---- upload through PlatformIO -----------------------------------------------------------------------------------


def upload_command(project_dir: Path, env_name: str, port: str) -> list[str]:
    """`pio run -e ENV -t upload --upload-port PORT` for the project (PlatformIO builds first if needed)."""
    from tinydeploy.build.platformio import platformio_command

    return platformio_command("run", "-d", str(project_dir), "-e", env_name, "-t", "upload", "--upload-port", port)


# PlatformIO's and bossac's output lines -> one progress message each (the rest is logged, not shown).
_PROGRESS_PATTERNS: tuple[tuple[re.Pattern, str], ...] = (
    (re.compile(r"^(Compiling|Archiving) "), "compiling"),
    (re.compile(r"^Linking "), "linking"),
    (re.compile(r"1200bps|Forcing reset"), "resetting the board into its bootloader"),
    (re.compile(r"Waiting for (the )?new upload port"), "waiting for the bootloader's port"),
    (re.compile(r"^Erase flash"), "erasing flash"),
    (re.compile(r"\[[= ]*\]\s*(\d+)%"), "writing flash {0}%"),
    (re.compile(r"^Verify"), "verifying"),
    (re.compile(r"^Set boot flash|^CPU reset"), "restarting the board"),
)
_UPLOAD_FAILURES: tuple[tuple[re.Pattern, str, str], ...] = (
    (re.compile(r"No device found on|Device unsupported|SAM-BA operation failed|Couldn't find a board"),
     "the bootloader did not answer on {port}",
     "double-tap the board's reset button (its LED pulses) and retry with the bootloader's port as --port"),
    (re.compile(r"Resource busy|could not open port|Permission denied"),
     "the upload tool could not open {port}", "close programs that use the port; on Linux join the dialout group"),
)


def condense_upload_line(line: str) -> str | None:
    """The progress message for one line of upload output, or None for lines not worth showing."""
    for pattern, message in _PROGRESS_PATTERNS:
        match = pattern.search(line)
        if match:
            return message.format(*match.groups()) if match.groups() else message
    return None


@dataclass
class UploadResult:
    port: str
    seconds: float
    log_path: Path


class PlatformioUploader:
    """Runner for USB boards that PlatformIO uploads to (the upload tool is the platform's: bossac for the
    Nano 33 BLE, after the 1200-baud touch that starts its bootloader)."""

    def __init__(self, project_dir: Path, env_name: str, board: Board, timeout: float = UPLOAD_TIMEOUT_S):
        self.project_dir = Path(project_dir).resolve()
        self.env_name = env_name
        self.board = board
        self.timeout = timeout

    def _failure(self, lines: list[str], port: str, log_path: Path) -> TinydeployError:
        text = "\n".join(lines)
        for pattern, message, hint in _UPLOAD_FAILURES:
            if pattern.search(text):
                return TinydeployError(message.format(port=port), f"{hint}; log: {log_path}")
        last = next((line.strip() for line in reversed(lines) if "rror" in line), "")
        return TinydeployError(f"uploading to {port} failed" + (f": {last[:160]}" if last else ""),
                               f"the board keeps its previous firmware; reconnect it and retry; log: {log_path}")

    def upload(self, port: str, progress: Progress) -> UploadResult:
        from tinydeploy.build.platformio import _kill_group, kill_process_group, platformio_env

        command = upload_command(self.project_dir, self.env_name, port)
        log_path = self.project_dir / ".pio" / f"tinydeploy-upload-{self.env_name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        lines: list[str] = []
        last_message = None
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                text=True, errors="replace", env=platformio_env(), start_new_session=True)
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.rstrip("\n")
                lines.append(line)
                message = condense_upload_line(line)
                if message and message != last_message:
                    progress(f"upload: {message}")
                    last_message = message
                if time.monotonic() - started > self.timeout:
                    raise TinydeployError(f"uploading to {port} took over {self.timeout:g} s",
                                          f"reconnect the board and retry; log: {log_path}")
            returncode = proc.wait()
        except BaseException:
            _kill_group(proc)
            atomic_write_text(log_path, "\n".join(lines) + "\n")
            raise
        kill_process_group(proc.pid)  # an upload tool that outlived PlatformIO
        atomic_write_text(log_path, "\n".join(lines) + "\n")
        if returncode != 0:
            raise self._failure(lines, port, log_path)
        return UploadResult(port, time.monotonic() - started, log_path)


# ---- the runner -------------------------------------------------------------------------------------------------


def usb_board_candidates(boards: Sequence[Board], ports: Iterable[ListPortInfo]
                         ) -> list[tuple[ListPortInfo, list[Board]]]:
    """Each port whose VID:PID belongs to one or more of `boards` (sketch running or bootloader), with them."""
    found = []
    for port in sorted(ports, key=lambda p: p.device):
        if port.vid is None:
            continue
        matching = [b for b in boards if any(_matches(port, usb) for usb in b.usb_ids)]
        if matching:
            found.append((port, matching))
    return found


class PlatformioUploadRunner(Runner):
    """A USB board that PlatformIO uploads to with the platform's tool (the profile's `upload.method`: bossac's
    SAM-BA for the Nano 33 BLE after the 1200-baud touch that starts its bootloader, esptool, picotool, ...)."""

    name = "platformio"
    caps = RunnerCaps(needs_port=True, can_reset=True)

    def __init__(self, board: Board, port: str | None = None, index: int = 0, serial_number: str = ""):
        super().__init__(board, port, index, serial_number)
        self._device: str | None = None

    @classmethod
    def discover(cls, boards: Sequence[Board], ports=None) -> tuple[list[Runner], list[UnresolvedPort]]:
        listed = list(list_ports.comports() if ports is None else ports)
        runners: list[Runner] = []
        unresolved: list[UnresolvedPort] = []
        for port, matching in usb_board_candidates(boards, listed):
            if len(matching) == 1:
                runners.append(cls(matching[0], port.device, serial_number=port.serial_number or ""))
            else:
                unresolved.append(UnresolvedPort(port.device, port.serial_number or "",
                                                 tuple(b.name for b in matching)))
        return runners, unresolved

    def upload(self, firmware, progress=_quiet) -> None:
        device = find_board_port(self.board, self.port)
        if not is_url(device):
            check_port_free(device, self.board.baud)
        progress(f"uploading to {device}")
        result = PlatformioUploader(firmware.project_dir, firmware.env_name, self.board).upload(device, progress)
        progress(f"uploaded in {result.seconds:.1f} s (log {result.log_path})")
        self._device = device

    def start(self, progress=_quiet) -> str:
        if self._device is None:
            raise TinydeployError(f"nothing was uploaded to {self.label}", "upload a firmware first")
        if is_url(self._device):
            return self._device
        progress("waiting for the board to restart")
        self._device = wait_for_port(self.board, preferred=self._device)  # it re-enumerates after the upload
        self.label = self.port or self._device
        return self._device
