"""The board service on an exporter's host: program ports that take firmware, and the virtual boards' serial ports.

One slot per board. A virtual board (QEMU) keeps the last firmware it was given; every connection to its serial
port boots that firmware from reset in a fresh QEMU, bridged to the client, and the QEMU stops when the client
leaves (so an idle board costs no CPU, and no QEMU outlives its service: each dies with the thread that started
it). A USB board (the Nano 33 BLE) is flashed here with its own tools (1200-baud touch, bossac); its serial port
is labgrid's (USBSerialPort, served by ser2net on acquire). See tinydeploy.link.program for the protocol.
"""

from __future__ import annotations

import hashlib
import os
import selectors
import shutil
import signal
import socket
import socketserver
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tinydeploy.boards import Board
from tinydeploy.errors import TinydeployError
from tinydeploy.fsutil import atomic_write_bytes
from tinydeploy.link.program import LINE_LIMIT, MAX_IMAGE_BYTES

Progress = Callable[[str], None]
BRIDGE_POLL_S = 0.2
BOOTLOADER_WAIT_S = 10.0
BOSSAC_TIMEOUT_S = 180.0


class VirtualBoardSlot:
    """A QEMU virtual board: `load` keeps an ELF; each serial connection runs it from reset until the client
    leaves, the firmware stops, or another firmware is loaded."""

    kind = "qemu"
    image = "elf"

    def __init__(self, board: Board, group: str, workdir: Path):
        self.board = board
        self.group = group
        self.workdir = workdir
        self._elf: Path | None = None
        self._lock = threading.Lock()  # guards the fields below
        self._session_lock = threading.Lock()  # held while a client talks to the board
        self._preempt = threading.Event()
        self._qemu = None
        self._last_stop = ""

    def load(self, image: bytes, digest: str, progress: Progress) -> str:
        if not image.startswith(b"\x7fELF"):
            raise TinydeployError("the image is not an ELF file", "send the firmware.elf of a virtual-board build")
        path = self.workdir / f"{self.group}-{digest[:16]}.elf"
        atomic_write_bytes(path, image)
        self._end_session()
        with self._lock:
            previous, self._elf, self._last_stop = self._elf, path, ""
        if previous is not None and previous != path:
            previous.unlink(missing_ok=True)
        progress(f"{self.group} will boot {path.name} on the next serial connection")
        return f"loaded {digest[:16]}"

    def _end_session(self) -> None:
        """Stop the running session (if any) and wait until it has let go of its QEMU."""
        self._preempt.set()
        with self._session_lock:
            self._preempt.clear()

    def status(self) -> str:
        with self._lock:
            if self._qemu is not None:
                return "running"
            return f"stopped: {self._last_stop}" if self._last_stop else "idle"

    def kill(self) -> str:
        with self._lock:
            qemu = self._qemu
        if qemu is None or qemu.pid is None:
            return "not running"
        os.kill(qemu.pid, signal.SIGKILL)
        return f"killed QEMU pid {qemu.pid}"

    def serve_uart(self, client: socket.socket) -> None:
        """One client session: boot the loaded firmware and pass bytes both ways until either side ends."""
        from tinydeploy.runners.qemu import QemuBoard

        self._preempt.set()  # a new holder of the place takes the board over
        with self._session_lock:
            self._preempt.clear()
            with self._lock:
                elf = self._elf
            if elf is None:
                client.sendall(b"td-farm: no firmware loaded on this board; flash one first\r\n")
                return
            qemu = QemuBoard(elf_path=elf, board=self.board)
            try:
                qemu.start()
                with self._lock:
                    self._qemu = qemu
                board_socket = socket.create_connection(("127.0.0.1", qemu.port), timeout=5.0)
                board_socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with board_socket:
                    _bridge(client, board_socket, self._preempt)
                qemu.wait(0.3)  # a QEMU that closed its socket is exiting: let its status say why
                if not qemu.alive:
                    try:
                        qemu.check_alive()
                    except TinydeployError as exc:
                        self._set_last_stop(exc.one_line())
            except TinydeployError as exc:
                self._set_last_stop(exc.one_line())
            except OSError as exc:
                self._set_last_stop(f"the virtual board's serial port failed: {exc}")
            finally:
                qemu.stop()
                with self._lock:
                    self._qemu = None

    def _set_last_stop(self, reason: str) -> None:
        with self._lock:
            self._last_stop = reason

    def close(self) -> None:
        self._end_session()


def _bridge(a: socket.socket, b: socket.socket, stop: threading.Event) -> None:
    """Copy bytes between two sockets until one closes or `stop` is set."""
    peers = {a: b, b: a}
    with selectors.DefaultSelector() as selector:
        for sock in peers:
            selector.register(sock, selectors.EVENT_READ)
        while not stop.is_set():
            for key, _ in selector.select(BRIDGE_POLL_S):
                try:
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    peers[key.fileobj].sendall(data)
                except OSError:
                    return


class UsbBoardSlot:
    """A board on this host's USB, flashed here: 1200-baud touch, then bossac (the Nano 33 BLE's SAM-BA upload),
    then wait until its sketch's port is back for labgrid's ser2net."""

    kind = "usb"
    image = "bin"

    def __init__(self, board: Board, group: str, workdir: Path, serial_number: str, bossac: str | None = None):
        self.board = board
        self.group = group
        self.workdir = workdir
        self.serial_number = serial_number
        self.bossac = bossac
        self._lock = threading.Lock()
        self._last = ""

    def _port(self, ports) -> tuple[str | None, str | None]:
        """(sketch port, bootloader port) of this board among `ports`: its USB serial number on a sketch's id, or
        one bootloader of the board's kind (the bootloader may show another serial number)."""
        from tinydeploy.runners.usb import board_ports

        sketch, bootloader = board_ports(self.board, ports)
        mine = [p.device for p in sketch if p.serial_number == self.serial_number]
        boot = [p.device for p in bootloader if p.serial_number == self.serial_number] or \
            ([bootloader[0].device] if len(bootloader) == 1 else [])
        return (mine[0] if mine else None), (boot[0] if boot else None)

    def _bossac(self) -> str:
        found = self.bossac or shutil.which("bossac")
        if not found or not Path(found).exists() and shutil.which(found) is None:
            raise TinydeployError(f"bossac is not installed on exporter host {socket.gethostname()}",
                                  "install the Arduino fork of bossac (1.9.1-arduino2 or later, shipped with the "
                                  "Arduino mbed core and PlatformIO's tool-bossac) and pass --bossac PATH to "
                                  "tinydeploy farm serve")
        return found

    def load(self, image: bytes, digest: str, progress: Progress) -> str:
        from serial.tools import list_ports

        from tinydeploy.runners.usb import wait_for_port

        with self._lock:
            sketch, boot = self._port(list_ports.comports())
            if sketch is None and boot is None:
                ports = ", ".join(f"{p.device} ({p.serial_number or '-'})" for p in list_ports.comports()) or "none"
                raise TinydeployError(f"no {self.board.title} with USB serial number {self.serial_number} on "
                                      f"exporter host {socket.gethostname()} (serial ports: {ports})",
                                      "plug the board in (a data-capable cable) or fix the serial number given to "
                                      "tinydeploy farm serve --usb")
            bossac = self._bossac()
            path = self.workdir / f"{self.group}.bin"
            atomic_write_bytes(path, image)
            if boot is None:
                progress(f"resetting {sketch} into the bootloader (1200-baud touch)")
                touch_1200_baud(sketch)
                boot = self._wait_for_bootloader()
            progress(f"writing {len(image):,} B with bossac on {boot}")
            command = [bossac, "-d", f"--port={boot}", "-U", "-i", "-e", "-w", str(path), "-R"]
            try:
                result = subprocess.run(command, capture_output=True, text=True, errors="replace",
                                        timeout=BOSSAC_TIMEOUT_S, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise TinydeployError(f"bossac took over {BOSSAC_TIMEOUT_S:g} s on {boot}",
                                      "reconnect the board and retry") from None
            if result.returncode != 0:
                last = next((line for line in reversed((result.stdout + result.stderr).splitlines())
                             if line.strip()), "")
                raise TinydeployError(f"bossac failed on {boot} (status {result.returncode}): {last[:160]}",
                                      "double-tap the board's reset button and retry")
            progress("waiting for the board to restart")
            wait_for_port(self.board)
            self._last = digest[:16]
            return f"loaded {digest[:16]}"

    def _wait_for_bootloader(self) -> str:
        from serial.tools import list_ports

        deadline = time.monotonic() + BOOTLOADER_WAIT_S
        while time.monotonic() < deadline:
            _, boot = self._port(list_ports.comports())
            if boot is not None:
                return boot
            time.sleep(0.2)
        raise TinydeployError(f"{self.board.title} {self.serial_number} did not enter its bootloader within "
                              f"{BOOTLOADER_WAIT_S:g} s after the 1200-baud touch",
                              "double-tap its reset button (the LED pulses) and retry")

    def status(self) -> str:
        return "idle"  # its serial port is labgrid's: a stopped sketch shows there

    def kill(self) -> str:
        return "a USB board cannot be killed"

    def close(self) -> None:
        pass


def touch_1200_baud(device: str) -> None:
    """Open and close the port at 1200 baud: the Arduino core's signal to restart into the bootloader."""
    import serial

    try:
        serial.Serial(device, baudrate=1200).close()
    except (serial.SerialException, OSError) as exc:
        raise TinydeployError(f"the 1200-baud touch on {device} failed: {' '.join(str(exc).split())[:120]}",
                              "close programs that hold the port and retry") from None


# ---- the TCP side ----------------------------------------------------------------------------------------------


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@dataclass
class ServedBoard:
    """One board as the exporter offers it: its slot and the ports of its resources."""

    slot: VirtualBoardSlot | UsbBoardSlot
    program_port: int
    uart_port: int | None  # None: labgrid serves it (USBSerialPort)


class BoardService:
    """Program ports (and virtual boards' serial ports) for `slots`, on `host`; close() stops every QEMU."""

    def __init__(self, slots: list, host: str = "127.0.0.1", log: Progress = lambda _: None):
        self.host = host
        self.log = log
        self.boards: list[ServedBoard] = []
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []
        try:
            for slot in slots:
                program = self._listen(self._program_handler(slot))
                uart = self._listen(self._uart_handler(slot)) if isinstance(slot, VirtualBoardSlot) else None
                self.boards.append(ServedBoard(slot, program.server_address[1],
                                               uart.server_address[1] if uart else None))
        except BaseException:
            self.close()
            raise

    def _listen(self, handler) -> _Server:
        try:
            server = _Server((self.host, 0), handler)
        except OSError as exc:
            raise TinydeployError(f"cannot listen on {self.host}: {exc}", "give --host an address of this "
                                  "machine") from None
        self._servers.append(server)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True,
                                  name=f"farm-{server.server_address[1]}")
        thread.start()
        self._threads.append(thread)
        return server

    def _uart_handler(self, slot: VirtualBoardSlot):
        service = self

        class UartHandler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                service.log(f"{slot.group}: serial client {self.client_address[0]}:{self.client_address[1]}")
                slot.serve_uart(self.request)
                service.log(f"{slot.group}: serial client left ({slot.status()})")

        return UartHandler

    def _program_handler(self, slot):
        service = self

        class ProgramHandler(socketserver.StreamRequestHandler):
            def reply(self, line: str) -> None:
                self.wfile.write(line.encode("utf-8", "replace") + b"\n")
                self.wfile.flush()

            def handle(self) -> None:
                while True:
                    raw = self.rfile.readline(LINE_LIMIT)
                    if not raw:
                        return
                    words = raw.decode("ascii", "replace").split()
                    try:
                        self.reply("ok " + self.answer(words))
                    except TinydeployError as exc:
                        service.log(f"{slot.group}: {' '.join(words[:1])} failed: {exc.one_line()}")
                        self.reply(f"err {exc.one_line()}")
                    except OSError:
                        return

            def answer(self, words: list[str]) -> str:
                verb = words[0] if words else ""
                if verb == "info":
                    return f"board={slot.board.name} image={slot.image} kind={slot.kind} group={slot.group}"
                if verb == "status":
                    return slot.status()
                if verb == "kill":
                    return slot.kill()
                if verb == "load" and len(words) == 3 and words[1].isdigit():
                    size, digest = int(words[1]), words[2].lower()
                    if not 0 < size <= MAX_IMAGE_BYTES:
                        raise TinydeployError(f"image size {size} is out of range", "send a firmware image")
                    image = self.rfile.read(size)
                    if len(image) != size:
                        raise OSError("the client left during the upload")
                    if hashlib.sha256(image).hexdigest() != digest:
                        raise TinydeployError("the image arrived damaged (SHA-256 differs)", "flash again")
                    service.log(f"{slot.group}: loading {size:,} B ({digest[:16]})")
                    return slot.load(image, digest, lambda message: self.reply(f".. {message}"))
                raise TinydeployError(f"unknown request {' '.join(words)[:40]!r}",
                                      "client and exporter must run the same tinydeploy")

        return ProgramHandler

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for board in self.boards:
            board.slot.close()
        for thread in self._threads:
            thread.join(2.0)

    def __enter__(self) -> BoardService:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


# ---- labgrid's exporter ----------------------------------------------------------------------------------------


def exporter_config(service: BoardService, host: str) -> dict:
    """labgrid exporter resources: one group per board, `program` and `uart` in each."""
    config: dict = {}
    for served in service.boards:
        slot = served.slot
        group = {"program": {"cls": "NetworkSerialPort", "host": host, "port": served.program_port,
                             "protocol": "raw"}}
        if served.uart_port is not None:
            group["uart"] = {"cls": "NetworkSerialPort", "host": host, "port": served.uart_port,
                             "protocol": "raw", "speed": slot.board.baud}
        else:
            usb = slot.board.usb_sketch
            match = {"ID_SERIAL_SHORT": slot.serial_number}
            if usb is not None:
                match["ID_MODEL_ID"] = f"{usb.pid:04x}"  # the sketch's port only, not the bootloader's
            group["uart"] = {"cls": "USBSerialPort", "match": match, "speed": slot.board.baud}
        config[slot.group] = group
    return config


def labgrid_exporter_program() -> str:
    """labgrid-exporter beside this Python, else on PATH."""
    import sys

    beside = Path(sys.executable).with_name("labgrid-exporter")
    if beside.exists():
        return str(beside)
    found = shutil.which("labgrid-exporter")
    if found is None:
        raise TinydeployError("labgrid is not installed (labgrid-exporter not found)",
                              "pip install 'tinydeploy[farm]' (or pip install labgrid)")
    return found


def _die_with_parent(signum: int) -> Callable[[], None]:
    def set_death_signal() -> None:
        import ctypes

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, signum)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    return set_death_signal


class LabgridExporter:
    """labgrid's exporter as a child process: stopped with us, even when we are killed (parent-death signal)."""

    def __init__(self, config_path: Path, coordinator: str, name: str, hostname: str, log_path: Path):
        self.command = [labgrid_exporter_program(), "-c", coordinator, "-n", name, "--hostname", hostname,
                        str(config_path)]
        self.log_path = log_path
        self.ready = threading.Event()
        self._proc: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> LabgridExporter:
        self.ready.clear()
        self._proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, preexec_fn=_die_with_parent(signal.SIGTERM),
                                      env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._reader = threading.Thread(target=self._read, daemon=True, name="labgrid-exporter-log")
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        with open(self.log_path, "ab") as log:
            for line in self._proc.stdout:
                log.write(line)
                log.flush()
                if b"Exporter ready" in line:
                    self.ready.set()

    def wait(self, timeout: float | None = None) -> int | None:
        assert self._proc is not None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._reader is not None:
            self._reader.join(2.0)


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="tinydeploy-farm-"))
