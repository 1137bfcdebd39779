"""The board farm through labgrid, on loopback only: one labgrid coordinator and two exporters (`tinydeploy farm
serve`, two virtual boards each) for the whole session; lab check over the four boards, flash and monitor over a
place, the HIL suite over two places in parallel, a busy place, Ctrl-C, an exporter killed mid-run, a Nano 33 BLE
exporter without its board, and nothing left behind (no place acquired, no process)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli

pytest.importorskip("labgrid", reason="labgrid is not installed (pip install 'tinydeploy[farm]')")
pytestmark = [pytest.mark.virtual, pytest.mark.slow]  # ~2-3 min for the module: one farm for all

BIN = Path(sys.executable).parent
COORDINATOR_START_S = 30.0
EXPORTER_START_S = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_mentioning(text: str) -> list[str]:
    """Command lines in the process table that contain `text` (this test process excluded)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    cmdline = handle.read().replace(b"\0", b" ").decode("utf-8", "replace")
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{entry}: {cmdline[:200]}")
    return found


class Exporter:
    """`tinydeploy farm serve` in its own process, waited for until its labgrid exporter is registered."""

    def __init__(self, farm: Farm, name: str, *args: str):
        self.name = name
        self.lines: list[str] = []
        self.ready = threading.Event()
        env = {**os.environ, "TMPDIR": str(farm.tmp), "PYTHONPATH": str(REPO)}
        self.proc = subprocess.Popen([sys.executable, "-m", "tinydeploy", "farm", "serve", "--name", name,
                                      "--coordinator", farm.address, "--config", str(farm.root / f"{name}.yaml"),
                                      *args], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=env)
        threading.Thread(target=self._read, daemon=True).start()
        if not self.ready.wait(EXPORTER_START_S):
            self.stop()
            raise AssertionError(f"exporter {name} did not get ready: {self.lines[-5:]}")

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line.rstrip())
            if "ready:" in line:
                self.ready.set()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)


class Farm:
    """A labgrid coordinator on a free loopback port (its state in `root`) and the exporters of the tests."""

    def __init__(self, root: Path):
        self.root = root
        self.tmp = root / "tmp"  # the exporters' temporary folders: every farm QEMU's command line names it
        self.tmp.mkdir(parents=True)
        self.address = f"127.0.0.1:{free_port()}"
        self.exporters: dict[str, Exporter] = {}
        self.places: list[str] = []
        (root / "coordinator").mkdir()
        self.log = open(root / "coordinator.log", "wb")
        self.coordinator = subprocess.Popen([str(BIN / "labgrid-coordinator"), "-l", self.address],
                                            cwd=root / "coordinator", stdin=subprocess.DEVNULL, stdout=self.log,
                                            stderr=subprocess.STDOUT)
        started = time.monotonic()
        host, port = self.address.split(":")
        while True:
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                break
            except OSError:
                assert self.coordinator.poll() is None, (root / "coordinator.log").read_text()[-2000:]
                assert time.monotonic() - started < COORDINATOR_START_S, "labgrid-coordinator did not listen"
                time.sleep(0.2)
        self.coordinator_start_s = time.monotonic() - started

    @property
    def session(self):
        from tinydeploy.runners.labgrid import LabgridSession

        return LabgridSession.get(self.address)

    def add_exporter(self, name: str, *args: str) -> Exporter:
        self.exporters[name] = Exporter(self, name, *args)
        return self.exporters[name]

    def add_place(self, name: str, pattern: str) -> None:
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

        session = self.session
        session.request("AddPlace", pb2.AddPlaceRequest(name=name), "adding a place")
        session.request("AddPlaceMatch", pb2.AddPlaceMatchRequest(placename=name, pattern=pattern), "matching")
        session.sync()
        self.places.append(name)

    def acquired(self) -> dict[str, str]:
        session = self.session
        session.sync()
        return {name: place.acquired for name, place in session.session.places.items() if place.acquired}

    def client(self, *args: str, user: str = "alice") -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / "labgrid-client"), "-x", self.address, *args], capture_output=True,
                              text=True, timeout=60, env={**os.environ, "LG_USERNAME": user})

    def stop(self) -> None:
        for exporter in self.exporters.values():
            exporter.stop()
        if self.coordinator.poll() is None:
            self.coordinator.terminate()
            self.coordinator.wait(20)
        self.log.close()


@pytest.fixture(scope="session")
def farm(tmp_path_factory):
    """Coordinator + exporters exp1 and exp2 with two virtual boards each; places fa-0, fa-1 (exp1), fb-0, fb-1."""
    started = time.monotonic()
    farm = Farm(tmp_path_factory.mktemp("farm"))
    try:
        for exporter, prefix in (("exp1", "fa"), ("exp2", "fb")):
            farm.add_exporter(exporter, "--virtual", "2")
            for index in range(2):
                farm.add_place(f"{prefix}-{index}", f"{exporter}/virtual-{index}/*")
        print(f"\nfarm up in {time.monotonic() - started:.1f} s (coordinator {farm.coordinator_start_s:.1f} s)")
        yield farm
    finally:
        farm.stop()


def test_lab_check_passes_four_boards_across_two_exporters(farm, tmp_path):
    result = run_cli("lab", "check", "--places", "fa-0,fa-1,fb-0,fb-1", "--coordinator", farm.address, "--json",
                     "--csv", tmp_path / "lab.csv")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["passed"] == 4 and report["failed"] == 0
    rows = {board["port"]: board for board in report["boards"]}
    assert {place: row["exporter"] for place, row in rows.items()} == {
        "fa-0": "exp1", "fa-1": "exp1", "fb-0": "exp2", "fb-1": "exp2"}
    for row in rows.values():
        assert row["status"] == "PASS" and row["board"] == "virtual" and 10 < row["latency_us"] < 1_000
    assert "exporter" in (tmp_path / "lab.csv").read_text().splitlines()[0]
    assert farm.acquired() == {}


def test_flash_and_monitor_run_on_a_place_and_release_it(farm, tmp_path):
    from tinydeploy.hil.models import sine_model_bytes

    model = tmp_path / "sine.tflite"
    model.write_bytes(sine_model_bytes())
    result = run_cli("flash", model, "--place", "fa-0", "--coordinator", farm.address, "--out", tmp_path / "p",
                     "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert report["outputs_match"] and report["board"] == "virtual" and report["device"]["model"] == "sine"
    assert report["latency_emulated"] and report["instructions"] > 0  # the virtual board's figures stay emulated
    assert "acquired place fa-0" in result.stderr and "exporter exp1" in result.stderr
    assert farm.acquired() == {}
    # monitor reaches the firmware the place runs (each connection boots it afresh on the exporter)
    result = run_cli("monitor", "--place", "fa-0", "--coordinator", farm.address, "--runs", "5", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["model"] == "sine"
    # bench measures the firmware the place runs, outputs checked against host TFLM
    result = run_cli("bench", "--place", "fa-0", "--coordinator", farm.address, "--model", model, "--runs", "5",
                     "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    bench = json.loads(result.stdout)
    assert bench["port"] == "fa-0" and bench["model"] == "sine" and bench["outputs_match"] and bench["runs"] == 5
    # a recording feeds sensors simulated on this machine: refused for a place before anything is built
    import numpy as np

    np.savez(tmp_path / "word.npz", mic=np.zeros(1600, np.int16))
    refused = run_cli("flash", model, "--place", "fa-0", "--coordinator", farm.address, "--stimulus",
                      tmp_path / "word.npz", "--out", tmp_path / "replay")
    assert refused.returncode == 2 and "fa-0's board hangs off exp1" in refused.stderr, refused.stderr[-2000:]
    assert not (tmp_path / "replay").exists()
    # --board must agree with the place's board; --port and --place exclude each other
    wrong = run_cli("flash", model, "--place", "fa-0", "--coordinator", farm.address, "--board", "nano33ble")
    assert wrong.returncode != 0 and "offers a virtual board, not nano33ble" in wrong.stderr
    both = run_cli("monitor", "--place", "fa-0", "--port", "/dev/null", "--coordinator", farm.address)
    assert both.returncode == 2 and "either --port or --place" in both.stderr
    assert farm.acquired() == {}


def test_the_hil_suite_runs_over_two_places_in_parallel(farm, tmp_path):
    junit = tmp_path / "junit.xml"
    result = subprocess.run([sys.executable, "-m", "pytest", "hil/", "-p", "no:cacheprovider", "-v",
                             "-k", "sine or raw_protocol", "--td-place", "fa-1,fb-1", "--td-coordinator",
                             farm.address, "-n", "2", f"--junitxml={junit}"],
                            cwd=REPO, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stdout[-3000:]
    assert "5 passed" in result.stdout
    targets = {prop.get("value") for prop in ElementTree.parse(junit).iter("property")
               if prop.get("name") == "td_target"}
    assert targets == {"fa-1", "fb-1"}  # one worker per place, both at work
    assert farm.acquired() == {}
    too_many = subprocess.run([sys.executable, "-m", "pytest", "hil/", "-p", "no:cacheprovider", "--td-place",
                               "fa-1", "--td-coordinator", farm.address, "-n", "2"], cwd=REPO, capture_output=True,
                              text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert too_many.returncode != 0 and "at most one worker per place" in too_many.stdout + too_many.stderr


def test_labgrids_own_env_file_names_a_place_you_acquired(farm, tmp_path):
    """labgrid's workflow: acquire with labgrid-client, run pytest --lg-env; the place is used, not released."""
    env = tmp_path / "env.yaml"
    env.write_text(f"targets:\n  main:\n    resources:\n      RemotePlace:\n        name: fb-1\n"
                   f"options:\n  coordinator_address: '{farm.address}'\n")
    user = farm.session.identity.split("/")[1]
    assert farm.client("-p", "fb-1", "acquire", user=user).returncode == 0
    try:
        result = subprocess.run([sys.executable, "-m", "pytest", "hil/", "-p", "no:cacheprovider", "-q",
                                 "-k", "raw_protocol", f"--lg-env={env}"], cwd=REPO, capture_output=True, text=True,
                                timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout[-2000:]
        assert farm.acquired() == {"fb-1": farm.session.identity}  # still yours
    finally:
        assert farm.client("-p", "fb-1", "release", user=user).returncode == 0
    assert farm.acquired() == {}


def test_a_busy_place_waits_then_names_its_holder(farm):
    assert farm.client("-p", "fb-0", "acquire").returncode == 0
    try:
        started = time.monotonic()
        result = run_cli("monitor", "--place", "fb-0", "--coordinator", farm.address, "--place-timeout", "2")
        assert result.returncode == 1
        assert "place fb-0 stayed busy for 2 s: held by" in result.stderr and "/alice" in result.stderr
        assert time.monotonic() - started < 30
    finally:
        assert farm.client("-p", "fb-0", "release").returncode == 0
    assert farm.acquired() == {}


def test_ctrl_c_releases_the_place(farm):
    from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2

    proc = subprocess.Popen([sys.executable, "-m", "tinydeploy", "monitor", "--place", "fa-0", "--coordinator",
                             farm.address, "--runs", "10000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "acquired place fa-0" in line:
            assert farm.acquired() == {"fa-0": farm.session.identity}
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, "".join(seen) + rest
    assert farm.acquired() == {}
    reservations = farm.session.request("GetReservations", pb2.GetReservationsRequest(), "listing").reservations
    assert [r.token for r in reservations if r.owner == farm.session.identity] == []  # cancelled too


def test_an_exporter_killed_mid_run_fails_only_its_boards(farm, tmp_path):
    from tinydeploy.lab.check import place_runners, run_lab_check

    doomed = farm.add_exporter("exp3", "--virtual", "2")
    for index in range(2):
        farm.add_place(f"fc-{index}", f"exp3/virtual-{index}/*")
    runners, unreachable = place_runners(["fa-0", "fa-1", "fc-0", "fc-1"], farm.address)
    assert unreachable == [] and [r.location for r in runners] == ["exp1", "exp1", "exp3", "exp3"]
    killed = threading.Event()

    def progress(index: int, state: str) -> None:
        # the moment one of exp3's boards has booted its self-test: the whole exporter host goes away
        if index >= 2 and state == "checking outputs" and not killed.is_set():
            killed.set()
            doomed.kill()

    results = run_lab_check(runners, build_dir=tmp_path / "build", progress=progress)
    assert killed.is_set()
    by_place = {r.port: r for r in results}
    assert by_place["fa-0"].passed and by_place["fa-1"].passed
    for place in ("fc-0", "fc-1"):
        row = by_place[place]
        assert row.status == "FAIL" and row.exporter == "exp3"
        assert "exp3" in row.reason or "exporter" in row.reason, row.reason
    assert farm.acquired() == {}
    deadline = time.monotonic() + 10  # the killed service's labgrid exporter and every farm QEMU are gone
    while (processes_mentioning("exp3.yaml") or processes_mentioning(str(farm.tmp))) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_mentioning("exp3.yaml") == [] and processes_mentioning(str(farm.tmp)) == []
    # a check after the exporter left: its places fail with the reason, the others still pass
    rerun = run_cli("lab", "check", "--places", "fa-1,fc-1", "--coordinator", farm.address, "--json")
    assert rerun.returncode == 1
    rows = {b["port"]: b for b in json.loads(rerun.stdout)["boards"]}
    assert rows["fa-1"]["status"] == "PASS"
    assert rows["fc-1"]["status"] == "FAIL" and "matches no board" in rows["fc-1"]["reason"]


def test_a_nano_33_ble_exporter_offers_its_board_and_fails_where_the_hardware_is_needed(farm):
    from tinydeploy.errors import TinydeployError
    from tinydeploy.link.program import ProgramPort
    from tinydeploy.runners.labgrid import serial_url

    serial_number = "TDTESTNOSUCHBOARD"
    exporter = farm.add_exporter("expn", "--usb", f"nano33ble:{serial_number}")
    config = (farm.root / "expn.yaml").read_text()
    assert "USBSerialPort" in config and f"ID_SERIAL_SHORT: {serial_number}" in config
    assert "ID_MODEL_ID: 805a" in config  # the sketch's port, not the bootloader's
    group = f"nano33ble-{serial_number}"
    farm.add_place("fn-0", f"expn/{group}/*")
    session = farm.session
    session.sync()
    entries = session.session.resources["expn"][group]
    assert entries["uart"].cls == "NetworkSerialPort" and not entries["uart"].avail  # labgrid's ser2net export
    # the exporter's board service flashes there: without the board it says what is missing
    with ProgramPort(serial_url(entries["program"], "program"), "fn-0") as port:
        assert "board=nano33ble" in port.request("info") and "image=bin" in port.request("info")
        with pytest.raises(TinydeployError, match=f"no Arduino Nano 33 BLE.*USB serial number {serial_number}"):
            port.load(b"\0" * 1024, 10.0, lambda _: None)
    # a client reaching the place gets the board's profile and a one-line reason, and the place back
    result = run_cli("monitor", "--place", "fn-0", "--coordinator", farm.address)
    assert result.returncode == 1 and "the serial port of place fn-0 on exporter expn is not available" in \
        result.stderr
    assert farm.acquired() == {}
    exporter.stop()


def test_nothing_is_left_behind(farm):
    """Run last: every place released, and once the farm stops no QEMU, exporter or service remains."""
    assert farm.acquired() == {}
    farm.stop()
    assert processes_mentioning(str(farm.tmp)) == []
    assert processes_mentioning(farm.address) == []
