"""Virtual kits: `lab check --kit` on QEMU boards with simulated sensors (eight pass; an injected fault fails on the
right board and part only), the sensor path byte for byte against what the host fed, the sensor commands'
bounds, and `flash --stimulus` replaying recordings into models. The kit firmware builds once per session (rev2
and rev1, in the session's cache, shared by these tests and the lab check runs)."""

from __future__ import annotations

import csv
import itertools
import json
import zlib

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.test_lab import lab_qemu_processes

KIT = "nano33ble-sense"
pytestmark = pytest.mark.virtual


@pytest.mark.slow
def test_eight_virtual_kits_pass_with_a_row_each_and_a_column_per_part(tmp_path):
    result = run_cli("lab", "check", "--kit", KIT, "--virtual", "8", "--json", "--csv", tmp_path / "kits.csv")
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["kit"] == KIT and report["passed"] == 8 and report["failed"] == 0
    boards = report["boards"]
    assert [b["port"] for b in boards] == [f"virtual{i}" for i in range(8)]
    assert [b["revision"] for b in boards] == ["rev2", "rev1"] * 4  # the Rev1 kits got their own firmware
    for board in boards:
        assert board["simulated"] is True and board["status"] == "PASS" and board["serial_number"]
        parts = board["parts"]
        assert set(parts) == {"revision", "model", "imu", "microphone", "camera"}  # no button unless asked
        assert all(part["status"] == "PASS" for part in parts.values())
        assert 0.85 < parts["imu"]["accel_g"] < 1.15 and len(parts["imu"]["magnet_ut"]) == 3
        assert parts["microphone"]["rms"] > 4 and parts["microphone"]["rate_hz"] == 16000
        assert (parts["camera"]["width"], parts["camera"]["height"]) == (176, 144)
        assert 10 < parts["model"]["latency_us"] < 1_000
    rows = list(csv.DictReader(open(tmp_path / "kits.csv")))
    assert len(rows) == 8 and {r["imu"] for r in rows} == {"PASS"} and {r["button"] for r in rows} == {"SKIP"}
    assert "simulated" in result.stderr  # said before the check starts
    assert lab_qemu_processes() == []


@pytest.mark.slow
def test_an_injected_sensor_fault_fails_that_board_and_part_only():
    result = run_cli("lab", "check", "--kit", KIT, "--virtual", "8", "--interactive", "--json",
                     "--inject-fault", "3:imu", "--inject-fault", "6:microphone", "--inject-fault", "5:button")
    assert result.returncode == 1, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["passed"] == 5 and report["failed"] == 3
    failing = {(b["port"], name): part["reason"] for b in report["boards"]
               for name, part in b["parts"].items() if part["status"] != "PASS"}
    assert set(failing) == {("virtual3", "imu"), ("virtual6", "microphone"), ("virtual5", "button")}
    assert "0 of 50 samples arrived" in failing[("virtual3", "imu")]
    assert "silent pin" in failing[("virtual6", "microphone")]
    assert "no press" in failing[("virtual5", "button")]
    for board in report["boards"]:  # every other board's button was pressed (simulated) and counted
        if board["port"] != "virtual5":
            assert board["parts"]["button"]["status"] == "PASS"
    prompts = [line for line in result.stderr.splitlines() if "PRESS THE BUTTON" in line]
    assert not prompts or all("simulated press" in line for line in prompts)
    assert lab_qemu_processes() == []


# ---- the sensor path, byte for byte ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kit_board():
    """A running virtual Rev2 kit (the lab check's firmware) with generated sensors and a feed that keeps what it
    served."""
    from tinydeploy.boards import get_board
    from tinydeploy.flow import Device
    from tinydeploy.kits import get_kit
    from tinydeploy.lab.kit import FirmwareShelf
    from tinydeploy.paths import cache_dir
    from tinydeploy.runners import runner_for
    from tinydeploy.sensors.sources import KitAtRest

    kit, board = get_kit(KIT), get_board("virtual")
    firmware = FirmwareShelf(kit, None, cache_dir() / "lab-selftest").get(board, kit.revisions["rev2"])
    runner = runner_for(board)
    source = KitAtRest(revision=2, seed=7)
    runner.attach_sensors(source)
    device = Device.start(firmware, runner)
    runner.sensor_feed.log.keep_data = True
    yield device
    device.close()


def test_the_sensor_commands_carry_exactly_what_the_host_fed(kit_board):
    from tinydeploy.link.sensors import read_imu, record_mic, sensor_info, take_frame
    from tinydeploy.sensors.stimulus import _library_motion

    link, log = kit_board.link, kit_board.runner.sensor_feed.log
    info = sensor_info(link)
    assert (info.kit, info.revision, info.built_revision, info.simulated) == (KIT, 2, 2, True)
    frame = take_frame(link)
    assert frame.crc32 == zlib.crc32(log.frames[-1]) and frame.bytes == len(log.frames[-1]) == 176 * 144 * 2
    reading = read_imu(link, 5)
    served = np.concatenate(log.motion[-5:])
    library = _library_motion(2, served).astype(np.float64)  # the Bosch library's axes and scales
    assert np.abs(reading.accel_g - library[:, :3]).max() <= 0.6e-6
    assert np.abs(reading.gyro_dps - library[:, 3:]).max() <= 0.6e-3
    blocks_before = len(log.audio)
    recording = record_mic(link, 256, 0)
    assert recording.rate_hz == 16000
    assert np.array_equal(recording.samples, log.audio[blocks_before])  # PDM's first block of 256 samples


@pytest.mark.parametrize("command, error", [
    ("imu 0", "err range max=200"), ("imu 201", "err range max=200"), ("imu x", "err args"),
    ("mic 4097", "err range max=4096"), ("mic 16 16001", "err range"), ("button 0", "err range max=60000"),
    ("button 60001", "err range"), ("sensors 1", "err args"), ("cam 1", "err args"),
    ("sense", "err unknown"),  # a kit self-test has no model input from a sensor
])
def test_sensor_commands_keep_their_bounds(kit_board, command, error):
    assert kit_board.command(command)[-1].startswith(error)


# ---- replaying recordings into a model -----------------------------------------------------------------------------


def _loudness_model(samples: int) -> bytes:
    """[1, samples] int8 audio -> (loud, quiet) scores: the mean of |x| against a threshold."""
    from tinydeploy.hil.models import Dense, dense_int8_model

    rectify = np.concatenate([np.eye(samples), -np.eye(samples)])[::4]
    layers = [Dense(rectify, np.zeros(len(rectify)), relu=True),
              Dense(np.vstack([np.ones(len(rectify)), -np.ones(len(rectify))]) / len(rectify),
                    np.array([0.0, 0.05]), relu=False)]
    calibration = np.clip(np.random.default_rng(0).normal(0, 0.1, (256, samples)), -1, 1)
    return dense_int8_model("loudness", layers, calibration)


def _dense_model(name: str, inputs: int, calibration: np.ndarray, shape=None) -> bytes:
    from tests.tflite_edit import edit_tflite
    from tinydeploy.hil.models import Dense, dense_int8_model

    weights = np.random.default_rng(1).normal(0, 1, (4, inputs)) / np.sqrt(inputs)
    data = dense_int8_model(name, [Dense(weights, np.zeros(4), relu=False)], calibration)
    if shape is not None:  # FULLY_CONNECTED flattens an image input
        data = edit_tflite(data, lambda model: setattr(model.subgraphs[0].tensors[0], "shape", list(shape)))
    return data


def _stimulus(kind: str, tmp_path):
    rng = np.random.default_rng(2)
    if kind == "mic":
        from tinydeploy.sensors.sources import spoken_word

        audio = rng.normal(0, 60, 8000)
        word = spoken_word(16000, seconds=0.25)
        audio[2000:2000 + len(word)] += 32767 * word
        np.savez(tmp_path / "word.npz", mic=np.clip(np.round(audio), -32768, 32767).astype(np.int16))
        return _loudness_model(64), tmp_path / "word.npz"
    if kind == "imu":  # a gesture: at rest, a swing, at rest; Rev1 so both IMU libraries' formulas are covered
        t = np.linspace(0, 1, 40)[:, None]
        accel = np.array([0.0, 0.0, 1.0]) + np.sin(6 * t) * np.array([0.8, -0.3, 0.2])
        gyro = np.cos(6 * t) * np.array([120.0, -40.0, 300.0])
        np.savez(tmp_path / "gesture.npz", imu=np.concatenate([accel, gyro], axis=1), revision=1)
        return _dense_model("gesture", 60, rng.normal(0, 100, (64, 60))), tmp_path / "gesture.npz"
    frames = rng.integers(0, 256, (2, 72, 88, 3), dtype=np.uint8)  # half the camera's size: scaled on the way
    np.savez(tmp_path / "frames.npz", camera=frames)
    return _dense_model("vision", 64, rng.uniform(0, 1, (64, 64)), shape=(1, 8, 8, 1)), tmp_path / "frames.npz"


@pytest.mark.slow
@pytest.mark.parametrize("kind, windows", [("mic", 125), ("imu", 4), ("camera", 2)])
def test_a_recording_replays_through_the_simulated_sensor_into_the_model(tmp_path, kind, windows):
    model, stimulus = _stimulus(kind, tmp_path)
    (tmp_path / f"{kind}.tflite").write_bytes(model)
    result = run_cli("flash", tmp_path / f"{kind}.tflite", "--board", "virtual", "--stimulus", stimulus, "--json",
                     "--runs", "2", "--samples", "1", "--out", tmp_path / "project")
    assert result.returncode == 0, result.stderr[-3000:]
    replay = json.loads(result.stdout)["stimulus"]
    assert replay["simulated"] is True and replay["sensor"] == kind
    assert replay["windows"] == replay["windows_run"] == windows and replay["outputs_match"] is True
    assert len(set(replay["outputs"])) > 1  # the outputs follow the data
    if kind == "mic":  # quiet, the word (class 0: loud) in its middle windows, quiet again
        runs = [label for label, _ in itertools.groupby(replay["top"])]
        assert runs[0] == 1 and runs[-1] == 1 and 0 in runs
        assert replay["top"][:30] == [1] * 30 and 0 in replay["top"][40:85]
