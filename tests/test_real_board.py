"""The real-board path up to where hardware is needed: port discovery on pyserial port records, the upload
command line and its condensed progress, the offline checks, a busy port, and the wait for the board's port
to come back followed by the handshake (against the virtual board behind a real pseudo-terminal)."""

from __future__ import annotations

import os
import select
import socket
import threading
import time
from pathlib import Path

import pytest
import serial
from serial.tools.list_ports_common import ListPortInfo

from tests.conftest import mlperf_model, run_cli
from tinydeploy.boards import get_board
from tinydeploy.errors import TinydeployError
from tinydeploy.runners.usb import (check_port_free, condense_upload_line, find_board_port, upload_command,
                                    wait_for_port)

NANO = get_board("nano33ble")


def port_record(device: str, vid: int | None, pid: int | None, serial_number: str = "") -> ListPortInfo:
    record = ListPortInfo(device, skip_link_detection=True)
    record.vid, record.pid, record.serial_number = vid, pid, serial_number
    record.description = "Nano 33 BLE" if vid == 0x2341 else "other"
    return record


SKETCH = (0x2341, 0x805A)
BOOTLOADER = (0x2341, 0x005A)


def test_the_one_matching_port_is_chosen_and_a_sketch_beats_the_bootloader():
    ports = [port_record("/dev/ttyUSB0", 0x10C4, 0xEA60), port_record("/dev/ttyACM0", *SKETCH)]
    assert find_board_port(NANO, ports=ports) == "/dev/ttyACM0"
    assert find_board_port(NANO, ports=[port_record("/dev/ttyACM3", *BOOTLOADER)]) == "/dev/ttyACM3"
    both = [port_record("/dev/ttyACM1", *BOOTLOADER), port_record("/dev/ttyACM0", *SKETCH)]
    assert find_board_port(NANO, ports=both) == "/dev/ttyACM0"
    assert find_board_port(NANO, port="/dev/ttyS9", ports=[]) == "/dev/ttyS9"  # --port wins


def test_several_boards_ask_for_port_and_none_explains_what_to_check():
    two = [port_record("/dev/ttyACM0", *SKETCH, "A1"), port_record("/dev/ttyACM1", *SKETCH, "B2")]
    with pytest.raises(TinydeployError) as several:
        find_board_port(NANO, ports=two)
    text = several.value.one_line()
    assert "2 " in text and "/dev/ttyACM0" in text and "/dev/ttyACM1" in text and "--port" in text
    with pytest.raises(TinydeployError) as none:
        find_board_port(NANO, ports=[port_record("/dev/ttyUSB0", 0x10C4, 0xEA60)])
    text = none.value.one_line()
    for needle in ("data-capable", "double-tap", "dialout", "2341:805A", "/dev/ttyUSB0"):
        assert needle in text


def test_boards_sharing_a_usb_id_are_told_apart_by_serial_number_on_recorded_port_lists():
    """Two profiles with one USB id (as every ST-Link board has): discovery cannot tell which a port is and says so
    (lab check lists it, --board picks the profile); --port takes the USB serial number of one board."""
    import dataclasses

    from tinydeploy.boards import UsbId
    from tinydeploy.lab.check import unresolved_reason
    from tinydeploy.runners import discover_runners

    stlink = UsbId(0x0483, 0x374B)
    f4 = dataclasses.replace(NANO, name="nucleo_f401re", usb_sketch=stlink, usb_bootloader=None)
    l4 = dataclasses.replace(NANO, name="nucleo_l476rg", usb_sketch=stlink, usb_bootloader=None)
    ports = [port_record("/dev/ttyACM0", 0x0483, 0x374B, "0671FF535155"),
             port_record("/dev/ttyACM1", 0x0483, 0x374B, "066DFF485550"), port_record("/dev/ttyACM2", *SKETCH, "N1")]
    runners, unresolved = discover_runners([f4, l4, NANO], ports)
    assert [(r.label, r.board.name, r.serial_number) for r in runners] == [("/dev/ttyACM2", "nano33ble", "N1")]
    assert [(u.port, u.serial_number, u.boards) for u in unresolved] == [
        ("/dev/ttyACM0", "0671FF535155", ("nucleo_f401re", "nucleo_l476rg")),
        ("/dev/ttyACM1", "066DFF485550", ("nucleo_f401re", "nucleo_l476rg"))]
    assert "--board" in unresolved_reason(unresolved[0]) and "0671FF535155" in unresolved_reason(unresolved[0])
    runners, unresolved = discover_runners([f4], ports)  # --board nucleo_f401re
    assert [r.label for r in runners] == ["/dev/ttyACM0", "/dev/ttyACM1"] and unresolved == []
    with pytest.raises(TinydeployError) as several:
        find_board_port(f4, ports=ports[:2])
    assert "0671FF535155" in several.value.one_line() and "USB serial number" in several.value.one_line()
    assert find_board_port(f4, port="066DFF485550", ports=ports) == "/dev/ttyACM1"


def test_upload_command_and_condensed_progress(tmp_path):
    command = upload_command(tmp_path, "nano33ble", "/dev/ttyACM0")
    assert command[-8:] == ["-d", str(tmp_path), "-e", "nano33ble", "-t", "upload", "--upload-port", "/dev/ttyACM0"]
    assert "platformio" in command
    assert condense_upload_line("Forcing reset using 1200bps open/close on port /dev/ttyACM0") == \
        "resetting the board into its bootloader"
    assert condense_upload_line("[=========                     ] 31% (100/320 pages)") == "writing flash 31%"
    assert condense_upload_line("Compiling .pio/build/nano33ble/src/main.cpp.o") == "compiling"
    assert condense_upload_line("Checking size .pio/build/nano33ble/firmware.elf") is None


def test_missing_platform_offline_fails_fast_with_the_setup_command(tmp_path):
    from tinydeploy.build.platformio import registry_reachable

    if registry_reachable(2.0):
        pytest.skip("PlatformIO's registry is reachable here: nothing to detect")
    env = {"TINYDEPLOY_HOME": str(tmp_path / "home")}
    started = time.monotonic()
    result = run_cli("flash", mlperf_model("ad"), "--board", "nano33ble", "--engine", "native", "--out",
                     tmp_path / "p", env=env)
    assert time.monotonic() - started < 30  # not PlatformIO's ~60 s of retries
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-1500:]
    assert "nordicnrf52" in lines[0] and "tinydeploy setup --board nano33ble" in lines[0]
    setup = run_cli("setup", "--board", "nano33ble", env=env)
    assert setup.returncode == 2 and "unreachable" in setup.stderr and "Traceback" not in setup.stderr


def test_a_port_held_by_another_program_is_reported_busy(tmp_path):
    master, slave = os.openpty()
    try:
        device = os.ttyname(slave)
        with serial.Serial(device, 115_200, exclusive=True):
            with pytest.raises(TinydeployError) as busy:
                check_port_free(device, 115_200)
            assert "busy" in busy.value.one_line() and "monitor" in busy.value.one_line()
        check_port_free(device, 115_200)  # released: fine
        with pytest.raises(TinydeployError) as gone:
            check_port_free(str(tmp_path / "ttyACM9"), 115_200)
        assert "does not exist" in gone.value.one_line()
    finally:
        os.close(master)
        os.close(slave)


class PtyBridge:
    """A pseudo-terminal whose other end is the virtual board's TCP serial port: to pyserial a real tty,
    published under `link_path` only after `delay` seconds (as a USB board's port comes back after reset)."""

    def __init__(self, tcp_port: int, link_path: Path, delay: float):
        self.master, self.slave = os.openpty()
        self.sock = socket.create_connection(("127.0.0.1", tcp_port))
        self.link_path = link_path
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._pump, daemon=True),
                        threading.Thread(target=self._publish, args=(delay,), daemon=True)]
        for thread in self.threads:
            thread.start()

    def _publish(self, delay: float) -> None:
        time.sleep(delay)
        self.link_path.symlink_to(os.ttyname(self.slave))

    def _pump(self) -> None:
        while not self.stop.is_set():
            ready, _, _ = select.select([self.master, self.sock], [], [], 0.05)
            try:
                if self.master in ready:
                    self.sock.sendall(os.read(self.master, 4096))
                if self.sock in ready:
                    data = self.sock.recv(4096)
                    if not data:
                        return
                    os.write(self.master, data)
            except OSError:
                return

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(2)
        self.sock.close()
        os.close(self.master)
        os.close(self.slave)


@pytest.mark.virtual
def test_waits_for_the_port_to_come_back_then_handshakes(tmp_path):
    import termios
    import tty

    from tinydeploy.build.platformio import build_project
    from tinydeploy.flow import generate_project
    from tinydeploy.link import DeviceLink
    from tinydeploy.model.tflite import load_tflite
    from tinydeploy.runners.qemu import QemuBoard

    model = load_tflite(mlperf_model("ad"))
    project = generate_project(model, get_board("virtual"), "native", tmp_path / "proj")
    build_project(project.directory, project.env_name)
    device = tmp_path / "ttyACM0"
    records = [port_record(str(device), *SKETCH), port_record(str(tmp_path / "ttyS0"), None, None)]

    def listed():  # pyserial lists a port only while its device node exists
        return [record for record in records if os.path.exists(record.device)]

    with QemuBoard(project.directory, project.env_name) as board:
        bridge = PtyBridge(board.port, device, delay=1.0)
        try:
            tty.setraw(bridge.slave)
            termios.tcflush(bridge.slave, termios.TCIOFLUSH)
            started = time.monotonic()
            with pytest.raises(TinydeployError) as early:
                wait_for_port(NANO, timeout=0.3, list_ports_fn=listed)
            assert "did not come back" in early.value.one_line()
            found = wait_for_port(NANO, timeout=10, list_ports_fn=listed)
            assert found == str(device) and time.monotonic() - started >= 0.9
            with DeviceLink(found, 115_200) as link:
                info = link.wait_ready(20.0)
            assert info.model_hash and model.sha256.startswith(info.model_hash)
        finally:
            bridge.close()
