"""The board farm's pure parts, without a coordinator: the coordinator address, pyserial URLs from labgrid's
resource entries, the exporter YAML, and the program-port protocol against a real board service on loopback."""

from __future__ import annotations

import pytest

from tinydeploy.errors import TinydeployError


def test_the_coordinator_address_follows_labgrids_own_variable(monkeypatch):
    from tinydeploy.runners.labgrid import coordinator_address

    monkeypatch.delenv("LG_COORDINATOR", raising=False)
    assert coordinator_address() == "127.0.0.1:20408"  # labgrid's default
    monkeypatch.setenv("LG_COORDINATOR", "farm.example:30000")
    assert coordinator_address() == "farm.example:30000"
    assert coordinator_address("lab-coordinator") == "lab-coordinator:20408"
    with pytest.raises(TinydeployError, match="is a URL"):
        coordinator_address("ws://farm:20408")


def test_serial_urls_come_from_labgrids_resource_entries():
    pytest.importorskip("labgrid")
    from labgrid.remote.common import ResourceEntry

    from tinydeploy.runners.labgrid import serial_url

    def entry(avail=True, **params):
        return ResourceEntry({"cls": "NetworkSerialPort", "avail": avail,
                              "params": {"host": "10.0.0.5", "extra": {"proxy_required": False}, **params}})

    assert serial_url(entry(port=4000, protocol="raw"), "x") == "socket://10.0.0.5:4000"
    assert serial_url(entry(port=4001), "x") == "rfc2217://10.0.0.5:4001"  # ser2net's USBSerialPort export
    with pytest.raises(TinydeployError, match="is not available"):
        serial_url(entry(avail=False, port=None), "the serial port of place p")
    with pytest.raises(TinydeployError, match="isolated mode"):
        serial_url(ResourceEntry({"cls": "NetworkSerialPort", "avail": True, "params": {
            "host": "h", "port": 1, "extra": {"proxy_required": True}}}), "x")


def test_the_board_service_answers_on_its_program_port_and_checks_images(tmp_path):
    """A real BoardService on loopback (no QEMU started: nothing connects to the serial port)."""
    from tinydeploy.boards import get_board
    from tinydeploy.farm.service import BoardService, VirtualBoardSlot, exporter_config
    from tinydeploy.link.program import ProgramPort, parse_fields

    slot = VirtualBoardSlot(get_board("virtual"), "virtual-0", tmp_path)
    with BoardService([slot]) as service:
        served = service.boards[0]
        config = exporter_config(service, "127.0.0.1")
        assert config == {"virtual-0": {
            "program": {"cls": "NetworkSerialPort", "host": "127.0.0.1", "port": served.program_port,
                        "protocol": "raw"},
            "uart": {"cls": "NetworkSerialPort", "host": "127.0.0.1", "port": served.uart_port, "protocol": "raw",
                     "speed": 115200}}}
        with ProgramPort(f"socket://127.0.0.1:{served.program_port}", "virtual-0") as port:
            assert parse_fields(port.request("info")) == {"board": "virtual", "image": "elf", "kind": "qemu",
                                                          "group": "virtual-0"}
            assert port.request("status") == "idle"
            with pytest.raises(TinydeployError, match="not an ELF file"):
                port.load(b"not an elf", 5.0, lambda _: None)
            progress = []
            assert port.load(b"\x7fELF" + bytes(60), 5.0, progress.append).startswith("loaded ")
            assert progress and "next serial connection" in progress[0]
            with pytest.raises(TinydeployError, match="unknown request"):
                port.request("format c:")
    assert list(tmp_path.iterdir()) != []  # the loaded image was kept until the service closed


def test_a_usb_board_is_exported_by_its_usb_serial_number_and_sketch_id(tmp_path):
    from tinydeploy.boards import get_board
    from tinydeploy.farm.service import BoardService, UsbBoardSlot, exporter_config

    slot = UsbBoardSlot(get_board("nano33ble"), "nano33ble-0123", tmp_path, "0123")
    with BoardService([slot]) as service:
        uart = exporter_config(service, "pc-08")["nano33ble-0123"]["uart"]
    assert uart == {"cls": "USBSerialPort", "match": {"ID_SERIAL_SHORT": "0123", "ID_MODEL_ID": "805a"},
                    "speed": 115200}


def test_a_kit_check_over_places_is_refused_with_a_reason():
    from tests.conftest import run_cli

    result = run_cli("lab", "check", "--kit", "nano33ble-sense", "--places", "lab-1", "--coordinator",
                     "127.0.0.1:9")
    assert result.returncode == 2 and "error: --kit checks kits on this machine" in result.stderr
    assert "Traceback" not in result.stderr
