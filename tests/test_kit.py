"""Kits: profiles as data, the kit firmware's project (pinned libraries per revision), each part's verdict, stimulus
files, and the sensor feed's conversions. No board or emulator here (tests/test_kit_virtual.py runs them)."""

from __future__ import annotations

import wave

import numpy as np
import pytest

from tests.conftest import run_cli
from tinydeploy.errors import TinydeployError
from tinydeploy.kits import get_kit, load_kit_file

KIT = "nano33ble-sense"


def test_the_kit_profile_names_its_board_revisions_and_pinned_libraries():
    kit = get_kit(KIT)
    assert (kit.board, kit.virtual_board, kit.default_revision) == ("nano33ble", "virtual", "rev2")
    assert kit.revisions["rev1"].imu == "LSM9DS1" and kit.revisions["rev1"].microphone == "MP34DT05"
    assert kit.revisions["rev2"].imu == "BMI270 + BMM150" and kit.revisions["rev2"].microphone == "MP34DT06"
    assert kit.libraries(kit.revisions["rev1"]) == ["arduino-libraries/Arduino_OV767X@0.0.2",
                                                    "arduino-libraries/Arduino_LSM9DS1@1.1.1"]
    assert kit.libraries(kit.revisions["rev2"]) == ["arduino-libraries/Arduino_OV767X@0.0.2",
                                                    "arduino-libraries/Arduino_BMI270_BMM150@1.2.1"]
    assert kit.camera_mode == ("QCIF", "RGB565", 176, 144, 2)


@pytest.mark.parametrize("edit, message", [
    (lambda t: t.replace('name = "nano33ble-sense"', 'name = "other"'), "but the file is"),
    (lambda t: t.replace('default_revision = "rev2"', 'default_revision = "rev9"'), "default_revision"),
    (lambda t: t.replace("@1.1.1", ""), "pinned libraries"),
    (lambda t: t.replace('resolution = "QCIF"', 'resolution = "4K"'), "resolution must be one of"),
    (lambda t: t.replace("[parts.button]", "[parts.thermometer]"), "unknown part(s) thermometer"),
    (lambda t: t + "\n[[broken", "not valid TOML"),
])
def test_a_broken_kit_profile_is_refused_in_one_line(tmp_path, edit, message):
    text = get_kit(KIT).source.read_text()
    path = tmp_path / f"{KIT}.toml"
    path.write_text(edit(text))
    with pytest.raises(TinydeployError, match="kit profile") as caught:
        load_kit_file(path)
    assert message in caught.value.one_line()


def _kit_project(engine: str, revision: str) -> dict[str, str]:
    from tinydeploy.boards import get_board
    from tinydeploy.emit.kit import kit_part
    from tinydeploy.emit.project import project_files
    from tinydeploy.engines import get_engine
    from tinydeploy.hil.models import sine_model

    kit, board, model = get_kit(KIT), get_board("nano33ble"), sine_model()
    chosen = get_engine(engine)
    plan = chosen.plan(model, board)
    part = chosen.files(plan)
    files = project_files(model, board, chosen.name, part.files, part.firmware, part.ini,
                          kit_part(kit, kit.revisions[revision]))
    return {name: content.decode() for name, content in files.items()}


def _env(ini: str, name: str) -> dict[str, list[str]]:
    """The settings of one [env:NAME] section (multi-line values as lists)."""
    section = ini.split(f"[env:{name}]\n", 1)[1].split("\n[", 1)[0]
    settings: dict[str, list[str]] = {}
    key = None
    for line in section.splitlines():
        if not line.strip() or line.lstrip().startswith(";"):
            continue
        if line.startswith(" ") and key:
            settings[key].append(line.strip())
        else:
            key, _, value = (part.strip() for part in line.partition("="))
            settings[key] = [value] if value else []
    return settings


@pytest.mark.parametrize("revision, mine, other", [("rev1", "Arduino_LSM9DS1@1.1.1", "Arduino_BMI270_BMM150"),
                                                   ("rev2", "Arduino_BMI270_BMM150@1.2.1", "Arduino_LSM9DS1")])
def test_the_real_kit_firmware_pins_its_revisions_libraries_and_the_virtual_one_uses_the_same_sources(
        revision, mine, other):
    files = _kit_project("tflm", revision)
    ini = files["platformio.ini"]
    real = _env(ini, "nano33ble")
    assert real["lib_deps"][1:] == ["arduino-libraries/Arduino_OV767X@0.0.2", f"arduino-libraries/{mine}"]
    assert real["lib_deps"][0].startswith("Arduino_TensorFlowLite=")  # the engine's library stays
    assert real["lib_ignore"] == [other]  # the TFLM library's manifest asks for Arduino_LSM9DS1: both define IMU
    assert "lib_deps" not in _env(ini, "virtual")  # the virtual board has stand-ins
    # one sketch for both boards: the driver, its settings, the sensor commands in the common firmware
    assert {"src/td_kit.cpp", "src/td_kit.h", "src/td_kit_config.h", "lib/tinydeploy/src/td_sensors.c"} <= set(files)
    config = files["src/td_kit_config.h"]
    assert f"#define TD_KIT_REVISION {revision[-1]}" in config
    assert "#define TD_KIT_REV1_ADDRESS 0x6B" in config and "#define TD_KIT_REV2_VALUE 0x24" in config
    assert "#define TD_KIT_BUTTON_PIN 13" in config and "#define TD_INPUT_SENSOR 0" in config
    assert '#include "td_kit.h"' in files["src/main.cpp"] or '__has_include("td_kit.h")' in files["src/main.cpp"]


def test_a_native_kit_project_has_only_the_kit_libraries():
    real = _env(_kit_project("native", "rev2")["platformio.ini"], "nano33ble")
    assert real["lib_deps"] == ["arduino-libraries/Arduino_OV767X@0.0.2",
                                "arduino-libraries/Arduino_BMI270_BMM150@1.2.1"]


@pytest.mark.parametrize("revision, mapping", [
    ("rev1", None), ("rev2", None), ("rev2", ("mic", {})), ("rev1", ("imu", {"imu_channels": 3})),
    ("rev2", ("camera", {"height": 8, "width": 8, "channels": 1})),
    ("rev1", ("camera", {"height": 4, "width": 6, "channels": 3, "int16": True, "low": -32768, "high": 32767})),
])
def test_the_kit_driver_compiles_without_warnings_in_every_configuration(tmp_path, revision, mapping):
    """The self-test and each replay firmware's driver, against the virtual board's stand-ins (the same sources
    build for the real board: see test_the_kit_sketch_compiles_against_the_real_core_and_libraries)."""
    import shutil
    import subprocess

    from tinydeploy.emit.kit import kit_part
    from tinydeploy.paths import firmware_dir
    from tinydeploy.sensors.stimulus import NO_INPUT, InputMapping

    gxx = shutil.which("arm-none-eabi-g++")
    if gxx is None:
        pytest.skip("arm-none-eabi-g++ is not installed (make system-packages)")
    kit = get_kit(KIT)
    chosen = NO_INPUT if mapping is None else InputMapping(mapping[0], 0.01, -3.0, **mapping[1])
    for name, content in kit_part(kit, kit.revisions[revision], chosen).files.items():
        (tmp_path / name.split("/")[-1]).write_bytes(content)
    root = firmware_dir()
    result = subprocess.run([gxx, "-std=gnu++17", "-fno-exceptions", "-fno-rtti", "-mcpu=cortex-m4", "-mthumb",
                             "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-Os", "-Wall", "-Wextra", "-Werror",
                             "-DARDUINO_TINYDEPLOY_VIRTUAL", f"-I{tmp_path}", f"-I{root / 'platform/bsp/include'}",
                             f"-I{root / 'protocol'}", f"-I{root / 'include'}", "-c", str(tmp_path / "td_kit.cpp"),
                             "-o", str(tmp_path / "td_kit.o")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]


# ---- each part's verdict from what a board sends (unit tests of the check functions) --------------------------


def _imu(accel, requested=None, magnet=(20.0, -4.0, -40.0)):
    from tinydeploy.link.sensors import ImuReading

    accel = np.array(accel, dtype=float)
    return ImuReading(accel, np.zeros_like(accel), None if magnet is None else np.array(magnet),
                      requested or len(accel))


def test_unit_check_imu_wants_every_sample_and_gravity_within_tolerance():
    from tinydeploy.lab.kit import check_imu

    settings = get_kit(KIT).part("imu")
    assert check_imu(_imu([[0.02, -0.05, 0.99]] * 50), settings).passed
    assert check_imu(_imu([[0.0, 0.0, 1.14]] * 50), settings).passed  # +14 %
    low = check_imu(_imu([[0.0, 0.0, 0.84]] * 50), settings)
    assert not low.passed and "0.840 g" in low.reason
    cut = check_imu(_imu([[0.0, 0.0, 1.0]] * 3, requested=50), settings)
    assert not cut.passed and "3 of 50 samples" in cut.reason
    assert not check_imu(None, settings).passed
    assert "magnetometer" in check_imu(_imu([[0, 0, 1.0]] * 5, magnet=None), settings).reason


def test_unit_check_microphone_compares_the_rms_with_a_silent_pins_floor():
    from tinydeploy.lab.kit import check_microphone
    from tinydeploy.link.sensors import MicRecording

    settings = get_kit(KIT).part("microphone")
    noise = np.random.default_rng(0).normal(0, 40, 4096).astype(np.int16)
    assert check_microphone(MicRecording(noise, 16000, 4096), settings).passed
    stuck = check_microphone(MicRecording(np.full(4096, -1200, np.int16), 16000, 4096), settings)
    assert not stuck.passed and "RMS 0.0" in stuck.reason  # a constant is no sound, whatever its level
    short = check_microphone(MicRecording(noise[:100], 16000, 4096), settings)
    assert not short.passed and "100 of 4096" in short.reason
    assert not check_microphone(None, settings).passed


def test_unit_check_camera_and_button():
    from tinydeploy.lab.kit import check_button, check_camera
    from tinydeploy.link.sensors import ButtonWait, CameraFrame

    settings = get_kit(KIT).part("camera")
    good = CameraFrame(176, 144, 2, "RGB565", 50688, 0x1082, 0xF7BE, 0x8000, 1, 10)
    assert check_camera(good, settings, (176, 144, 2)).passed
    flat = CameraFrame(176, 144, 2, "RGB565", 50688, 0x8410, 0x8410, 0x8410, 1, 10)
    assert "constant frame" in check_camera(flat, settings, (176, 144, 2)).reason
    assert not check_camera(good, settings, (160, 120, 2)).passed
    assert "seated" in check_camera(None, settings, (176, 144, 2)).reason
    button = get_kit(KIT).part("button")
    assert check_button(ButtonWait(True, False, 2100), button).passed
    assert "stuck" in check_button(ButtonWait(True, True, 0), button).reason
    assert "no press" in check_button(ButtonWait(False, False, 15000), button).reason


# ---- the sensor feed's conversions -------------------------------------------------------------------------------


@pytest.mark.parametrize("revision", [1, 2])
def test_motion_counts_come_back_as_the_libraries_floats(revision):
    from tinydeploy.sensors.feed import motion_counts
    from tinydeploy.sensors.stimulus import _library_motion

    samples = np.array([[0.1, -0.25, 0.98, 1.5, -30.0, 250.0], [-3.9, 3.9, 0.0, -1999.0, 0.0, 1999.0]])
    back = _library_motion(revision, motion_counts(revision, samples))
    assert np.abs(back[:, :3] - samples[:, :3]).max() <= 0.5 / 8192
    assert np.abs(back[:, 3:] - samples[:, 3:]).max() <= 0.5 / 16.384 + 1e-4
    if revision == 2:  # the BMI270 sits turned on the Nano: the chip's x is the board's -y
        counts = motion_counts(2, np.array([[0.5, 0.0, 0.0, 0, 0, 0]]))
        assert counts[0, 1] == -4096 and counts[0, 0] == 0


def test_frames_are_sent_in_the_cameras_pixel_formats():
    from tinydeploy.sensors.feed import color_bars, frame_bytes

    rgb = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]], dtype=np.uint8)
    assert frame_bytes(rgb, 2) == bytes.fromhex("F800 07E0 001F FFFF")  # RGB565, high byte first
    assert frame_bytes(rgb, 4) == bytes([76, 149, 28, 255])  # GRAYSCALE: BT.601 luma
    assert len(frame_bytes(rgb, 0)) == 8 and len(frame_bytes(rgb, 1)) == 8
    bars = color_bars(160, 120)
    assert bars.shape == (120, 160, 3) and len({tuple(p) for p in bars[0]}) == 8


# ---- stimulus files ----------------------------------------------------------------------------------------------


def _write_wav(path, samples, rate=16000, channels=1):
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(np.asarray(samples, dtype="<i2").tobytes())


def test_a_wav_recording_is_a_microphone_stimulus(tmp_path):
    from tinydeploy.sensors.stimulus import load_stimulus

    _write_wav(tmp_path / "word.wav", np.arange(1600) - 800)
    stimulus = load_stimulus(tmp_path / "word.wav")
    assert stimulus.input_sensor == "mic" and stimulus.mic_rate == 16000 and len(stimulus.mic) == 1600
    assert stimulus.describe() == "microphone 0.10 s at 16000 Hz"


@pytest.mark.parametrize("content, message", [
    ({"mic": np.zeros(10, np.float32)}, "1-D int16"),
    ({"mic": np.zeros(10, np.int16), "mic_rate": 8000}, "16000 or 41667"),
    ({"imu": np.zeros((10, 4))}, "[samples, 3 or 6]"),
    ({"imu": np.full((10, 3), 5.0)}, "range"),
    ({"camera": np.zeros((2, 8, 8, 4), np.uint8)}, "RGB"),
    ({"mic": np.zeros(10, np.int16), "imu": np.zeros((10, 3))}, "which feeds the model"),
    ({"mic": np.zeros(10, np.int16), "input": "camera"}, "no `camera` data"),
    ({"mic": np.zeros(10, np.int16), "speed": 3}, "unknown key"),
    ({"mic": np.zeros(10, np.int16), "revision": 3}, "1 or 2"),
])
def test_a_bad_stimulus_is_refused_in_one_line(tmp_path, content, message):
    from tinydeploy.sensors.stimulus import load_stimulus

    path = tmp_path / "bad.npz"
    np.savez(path, **content)
    with pytest.raises(TinydeployError) as caught:
        load_stimulus(path).input_sensor
    assert message in caught.value.one_line() and str(path.name) in caught.value.one_line()


def test_stereo_wav_and_missing_files_are_refused(tmp_path):
    from tinydeploy.sensors.stimulus import load_stimulus

    _write_wav(tmp_path / "stereo.wav", np.zeros(200), channels=2)
    with pytest.raises(TinydeployError, match="2 channel") as caught:
        load_stimulus(tmp_path / "stereo.wav")
    assert "16-bit mono" in caught.value.one_line()
    with pytest.raises(TinydeployError, match="not found"):
        load_stimulus(tmp_path / "absent.npz")
    (tmp_path / "noise.npz").write_bytes(b"not a zip")
    with pytest.raises(TinydeployError, match="readable .npz"):
        load_stimulus(tmp_path / "noise.npz")


def test_the_input_mapping_is_the_models_quantization_of_the_sensors_units(tmp_path):
    from tinydeploy.hil.models import sine_model
    from tinydeploy.sensors.stimulus import Stimulus, input_mapping

    model = sine_model()  # input [1, 1] int8
    tensor = model.tensors[model.inputs[0]]
    scale, zero_point = tensor.quant.scales[0], tensor.quant.zero_points[0]
    mapping = input_mapping(model, Stimulus(tmp_path / "s.npz", mic=np.zeros(4, np.int16)))
    assert mapping.sensor == "mic" and mapping.code == 1 and not mapping.int16
    assert mapping.scale == pytest.approx(1 / 32768 / scale) and mapping.offset == pytest.approx(zero_point)
    assert np.frombuffer(mapping.quantize([32767.0, -32768.0]), np.int8).tolist() == [
        max(-128, min(127, round(32767 / 32768 / scale) + zero_point)), -128]
    with pytest.raises(TinydeployError, match="not an image"):
        input_mapping(model, Stimulus(tmp_path / "s.npz", camera=np.zeros((1, 4, 4, 3), np.uint8)))


def test_flash_stimulus_on_a_real_board_is_refused_before_building(tmp_path):
    np.savez(tmp_path / "word.npz", mic=np.zeros(1600, np.int16))
    from tinydeploy.hil.models import sine_model_bytes

    (tmp_path / "sine.tflite").write_bytes(sine_model_bytes())
    result = run_cli("flash", tmp_path / "sine.tflite", "--board", "nano33ble", "--engine", "native", "--stimulus",
                     tmp_path / "word.npz", "--out", tmp_path / "proj", timeout=120)
    assert result.returncode == 2, result.stderr
    assert "error: --stimulus feeds recorded sensor data to simulated sensors" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "proj").exists()


def test_kit_options_need_a_kit_and_a_known_one():
    result = run_cli("lab", "check", "--virtual", "1", "--interactive", timeout=60)
    assert result.returncode == 2 and "add --kit NAME" in result.stderr
    result = run_cli("lab", "check", "--kit", "nano99", "--virtual", "1", timeout=60)
    assert result.returncode == 2 and "unknown kit 'nano99'" in result.stderr and KIT in result.stderr
    result = run_cli("lab", "check", "--kit", KIT, "--virtual", "2", "--inject-fault", "5:imu", timeout=60)
    assert result.returncode == 2 and "BOARD < 2" in result.stderr


# ---- the real libraries (where their sources are at hand) -------------------------------------------------------

ARDUINO_SOURCES_ENV = "TINYDEPLOY_ARDUINO_SOURCES"


@pytest.mark.parametrize("revision", ["rev1", "rev2"])
def test_the_kit_sketch_compiles_against_the_real_core_and_libraries(tmp_path, revision):
    """The kit project's sources for the Nano 33 BLE, compiled (not linked) with the mbed core's own flags and headers
    and the pinned libraries. Needs their sources: $TINYDEPLOY_ARDUINO_SOURCES holding ArduinoCore-mbed (4.5.x, with
    cores/arduino/api from ArduinoCore-API), Arduino_LSM9DS1, Arduino_BMI270_BMM150 and Arduino_OV767X at the pinned
    versions. PlatformIO's registry and GitHub are unreachable here, so CI skips it."""
    import os
    import shutil
    import subprocess
    from pathlib import Path

    root = os.environ.get(ARDUINO_SOURCES_ENV)
    if not root:
        pytest.skip(f"${ARDUINO_SOURCES_ENV} is unset (a folder with ArduinoCore-mbed and the kit's libraries)")
    gxx = shutil.which("arm-none-eabi-g++")
    if gxx is None:
        pytest.skip("arm-none-eabi-g++ is not installed")
    root = Path(root)
    core, variant = root / "ArduinoCore-mbed", root / "ArduinoCore-mbed" / "variants" / "ARDUINO_NANO33BLE"
    project = tmp_path / "kit"
    for name, content in _kit_project("native", revision).items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(content)
    imu = "Arduino_LSM9DS1" if revision == "rev1" else "Arduino_BMI270_BMM150"
    includes = [root / "Arduino_OV767X" / "src", root / imu / "src", core / "libraries" / "PDM" / "src",
                core / "libraries" / "Wire", project / "lib" / "tinydeploy" / "src", project / "src",
                core / "cores" / "arduino" / "api" / "deprecated", core / "cores" / "arduino" / "api" /
                "deprecated-avr-comp"]
    for source in [project / "src" / "td_kit.cpp", project / "src" / "main.cpp",
                   project / "lib" / "tinydeploy" / "src" / "td_sensors.c"]:
        c = source.suffix == ".c"
        command = [gxx.replace("g++", "gcc") if c else gxx, "-c", "-Wall", "-Wextra", "-Werror", "-nostdlib",
                   f"@{variant / 'defines.txt'}", f"@{variant / ('cflags.txt' if c else 'cxxflags.txt')}",
                   "-DARDUINO_ARCH_NRF52840", "-mcpu=cortex-m4", "-mfloat-abi=softfp", "-mfpu=fpv4-sp-d16",
                   "-DARDUINO=10607", "-DARDUINO_ARDUINO_NANO33BLE", "-DARDUINO_ARCH_MBED",
                   *[f"-I{path}" for path in includes], f"-iprefix{core / 'cores' / 'arduino'}",
                   f"@{variant / 'includes.txt'}", f"-I{core / 'cores' / 'arduino'}", f"-I{variant}",
                   str(source), "-o", str(tmp_path / f"{source.stem}.o")]
        result = subprocess.run(command, capture_output=True, text=True)
        assert result.returncode == 0, f"{source.name}:\n{result.stderr[-3000:]}"
