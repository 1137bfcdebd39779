"""`generate --format arduino`: the PlatformIO project's own files laid out as one Arduino IDE sketch folder (name
match, flat, no src/), pinned in sketch.yaml; built as it is for the virtual board and run there."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import mlperf_model, run_cli
from tinydeploy.boards import get_board
from tinydeploy.emit.arduino import SKETCH_EXTENSIONS, sketch_name_problem
from tinydeploy.errors import TinydeployError
from tinydeploy.flow import generate_project
from tinydeploy.hil.models import sine_model
from tinydeploy.model.tflite import load_tflite
from tinydeploy.tflm.library import TFLM_LIB_ENV, TFLM_LIBRARY_COMMIT, TFLM_LIBRARY_VERSION

NANO = get_board("nano33ble")
SIDE_FILES = {"README.md", "sketch.yaml", ".tinydeploy.json"}


def pio_sources(directory: Path) -> dict[str, bytes]:
    """What the PlatformIO project compiles, by file name (src/ and its firmware library, flat)."""
    files = {}
    for folder in (directory / "src", directory / "lib" / "tinydeploy" / "src"):
        for path in folder.iterdir():
            assert path.name not in files, f"{path.name} twice in the PlatformIO project"
            files[path.name] = path.read_bytes()
    return files


def check_sketch_rules(sketch: Path) -> None:
    """Arduino's sketch specification: the folder and its primary .ino named alike (a valid sketch name), one .ino,
    every source in the folder itself (the IDE compiles only the sketch root and src/; we use no sub-folder)."""
    assert sketch_name_problem(sketch.name) is None
    entries = list(sketch.iterdir())
    assert not [p for p in entries if p.is_dir()], "the sketch folder must be flat"
    assert [p.name for p in entries if p.suffix == ".ino"] == [f"{sketch.name}.ino"]
    assert {p.name for p in entries if not p.name.endswith(SKETCH_EXTENSIONS)} <= SIDE_FILES


@pytest.mark.parametrize("engine", ["native", "tflm"])
@pytest.mark.parametrize("key", ["sine", "kws"])
def test_the_sketch_holds_exactly_the_platformio_projects_sources(key, engine, tmp_path, monkeypatch):
    monkeypatch.delenv(TFLM_LIB_ENV, raising=False)  # the pinned download, named in sketch.yaml and the README
    model = sine_model() if key == "sine" else load_tflite(mlperf_model("kws"))
    pio = generate_project(model, NANO, engine, tmp_path / "pio")
    sketch = generate_project(model, NANO, engine, tmp_path / f"{key}_sketch", layout="arduino").directory
    check_sketch_rules(sketch)
    expected = pio_sources(pio.directory)
    expected[f"{sketch.name}.ino"] = expected.pop("main.cpp")  # the sketch is the PlatformIO project's main.cpp
    got = {p.name: p.read_bytes() for p in sketch.iterdir() if p.name not in SIDE_FILES}
    assert sorted(got) == sorted(expected)
    assert got == expected  # byte for byte
    profile = yaml.safe_load((sketch / "sketch.yaml").read_text())
    assert profile["default_profile"] == "nano33ble"
    nano = profile["profiles"]["nano33ble"]
    assert nano["fqbn"] == "arduino:mbed_nano:nano33ble"
    assert nano["platforms"] == [{"platform": f"arduino:mbed_nano ({NANO.arduino.platform_version})"}]
    readme = (sketch / "README.md").read_text()
    assert f"{sketch.name}.ino" in readme and NANO.arduino.platform_version in readme
    if engine == "tflm":
        assert nano["libraries"] == [{"dir": "libraries/Arduino_TensorFlowLite"}]
        assert f"Arduino_TensorFlowLite {TFLM_LIBRARY_VERSION}" in readme and TFLM_LIBRARY_COMMIT in readme
        assert "td_tflm_model.cpp" in got and "tinydeploy_tflm_filter.py" not in got
    else:
        assert "libraries" not in nano and "TensorFlowLite" not in readme
        assert "td_model_native.c" in got


def test_a_local_tflm_library_is_named_in_the_profile(tmp_path):
    library = tmp_path / "Arduino_TensorFlowLite"
    (library / "src").mkdir(parents=True)
    (library / "src" / "TensorFlowLite.h").write_text("")
    (library / "library.properties").write_text("name=Arduino_TensorFlowLite\nversion=9.9.9-LOCAL\n")
    sketch = generate_project(sine_model(), NANO, "tflm", tmp_path / "sine_tflm", tflm_lib=library,
                              layout="arduino").directory
    nano = yaml.safe_load((sketch / "sketch.yaml").read_text())["profiles"]["nano33ble"]
    assert nano["libraries"] == [{"dir": str(library)}]
    assert "9.9.9-LOCAL" in (sketch / "README.md").read_text()
    assert not any(p.is_symlink() for p in sketch.iterdir())  # no PlatformIO lib link in a sketch


@pytest.mark.parametrize("name, valid", [("sine", True), ("1st_model", True), ("a.b-c_d", True), ("x" * 63, True),
                                         ("x" * 64, False), ("_sine", False), ("-x", False), ("my sketch", False),
                                         ("modèle", False), ("", False)])
def test_sketch_names_follow_arduinos_rules(name, valid):
    assert (sketch_name_problem(name) is None) == valid


def test_an_invalid_sketch_folder_name_is_refused_before_writing(tmp_path):
    with pytest.raises(TinydeployError, match="not a valid Arduino sketch name"):
        generate_project(sine_model(), NANO, "native", tmp_path / "my sketch", layout="arduino")
    assert not (tmp_path / "my sketch").exists()


def test_boards_without_an_arduino_core_are_refused(tmp_path):
    model_path = tmp_path / "sine.tflite"
    model_path.write_bytes(sine_model().raw)
    result = run_cli("generate", model_path, "--board", "virtual", "--format", "arduino", "--out", tmp_path / "s")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "error: virtual has no Arduino IDE core to build a sketch for it; use --board nano33ble, or --format "
        "platformio"]


def test_the_cli_writes_the_default_sketch_and_keeps_a_users_changes(tmp_path):
    model_path = tmp_path / "sine.tflite"
    model_path.write_bytes(sine_model().raw)
    args = ("generate", model_path, "--board", "nano33ble", "--engine", "native", "--format", "arduino")
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    sketch = tmp_path / "build" / "sine_nano33ble_native"
    check_sketch_rules(sketch)
    ino = sketch / f"{sketch.name}.ino"
    ino.write_text(ino.read_text() + "\n// my change\n")
    again = run_cli(*args, cwd=tmp_path)
    assert again.returncode != 0 and "was changed since tinydeploy generated it" in again.stderr
    assert "--force" in again.stderr and "// my change" in ino.read_text()
    forced = run_cli(*args, "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert "// my change" not in ino.read_text()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("mine")
    foreign = run_cli(*args, "--out", tmp_path / "mine", cwd=tmp_path)
    assert foreign.returncode != 0 and "was not written by tinydeploy" in foreign.stderr


def test_a_sketch_folder_is_not_regenerated_as_a_platformio_project(tmp_path):
    generate_project(sine_model(), NANO, "native", tmp_path / "sine_sketch", layout="arduino")
    with pytest.raises(TinydeployError, match="holds an Arduino sketch folder that tinydeploy wrote, not a PlatformIO"):
        generate_project(sine_model(), NANO, "native", tmp_path / "sine_sketch")
    generate_project(sine_model(), NANO, "native", tmp_path / "pio")
    with pytest.raises(TinydeployError, match="holds a PlatformIO project that tinydeploy wrote, not an Arduino"):
        generate_project(sine_model(), NANO, "native", tmp_path / "pio", layout="arduino")


@pytest.mark.virtual
@pytest.mark.slow
def test_the_sketch_folder_builds_as_it_is_and_runs_on_the_virtual_board(tmp_path):
    """PlatformIO compiles the sketch folder itself (src_dir = the folder, the .ino converted as the Arduino IDE
    does), and the firmware answers like the PlatformIO project's: outputs equal host TFLM's."""
    from tinydeploy.build.platformio import build_project
    from tinydeploy.flow import Device, Firmware
    from tinydeploy.paths import firmware_dir
    from tinydeploy.runners import runner_for

    model = sine_model()
    sketch = generate_project(model, NANO, "native", tmp_path / "sine_sketch", layout="arduino").directory
    virtual = get_board("virtual")
    before = {p.name: p.read_bytes() for p in sketch.iterdir()}
    build_dir = tmp_path / "build"
    build_dir.mkdir()
    (build_dir / "platformio.ini").write_text(
        f"[platformio]\nsrc_dir = {sketch}\n\n[env:virtual]\nplatform = symlink://{firmware_dir()}/platform\n"
        f"board = virtual\nframework = arduino\nboard_build.stack_size = {virtual.stack_bytes}\n"
        "build_flags = -Wall -Wextra\n")
    build = build_project(build_dir, "virtual")
    firmware = Firmware(model, virtual, "native", build_dir, "virtual", build.elf_path, build.flash_bytes,
                        build.ram_bytes)
    with Device.start(firmware, runner_for(virtual, None)) as device:
        assert device.info.board == "nano33ble"  # the sketch's own identity: the same sources as for the real board
        assert device.compare_with_host(8) == []
    assert {p.name: p.read_bytes() for p in sketch.iterdir()} == before  # the build changed nothing in the sketch
