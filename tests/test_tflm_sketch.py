"""The TFLite Micro sketch: op resolver, arena, model array and platformio.ini from the analyzed model; built and
run on the virtual board where a local copy of the Arduino TFLM library is given ($TINYDEPLOY_TFLM_LIB)."""

from __future__ import annotations

import configparser
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import local_tflm_library, mlperf_model, run_cli
from tinydeploy.boards import get_board
from tinydeploy.flow import generate_project
from tinydeploy.tflm.arena import (ARENA_ALIGN, CALIBRATION_MARGIN_BYTES, MEASURE_ENV, arena_for,
                                   arena_from_device, store_device_arena)
from tinydeploy.tflm.library import TFLM_LIB_ENV, TFLM_LIBRARY_COMMIT, TflmLibrary, github_reachable
from tinydeploy.tflm.resolver import TFLM_OP_METHODS
from tinydeploy.model.tflite import load_tflite

OUR_SOURCES = re.compile(r"(^|/)(src/|lib/tinydeploy/)")


def _array_bytes(source: str) -> bytes:
    body = source.split("td_tflm_model_data[", 1)[1].split("{", 1)[1].split("};", 1)[0]
    return bytes(int(value, 16) for value in re.findall(r"0x([0-9a-f]{2})", body))


@pytest.mark.parametrize("key", ["ad", "kws", "ic", "vww"])
def test_sketch_sources_follow_the_analyzed_model(key, tmp_path, monkeypatch):
    from tinydeploy.analysis.analyze import tflm_arena

    monkeypatch.delenv(TFLM_LIB_ENV, raising=False)  # no library: nothing to measure with, analyze's figure
    model = load_tflite(mlperf_model(key))
    project = generate_project(model, get_board("nano33ble"), "tflm", tmp_path / key)
    header = (project.directory / "src" / "td_tflm_model.h").read_text()
    source = (project.directory / "src" / "td_tflm_model.cpp").read_text()
    # the resolver: exactly the distinct ops, each once, N = their number
    distinct = sorted(set(model.op_names))
    assert re.search(rf"#define TD_TFLM_OP_COUNT {len(distinct)}u", header)
    assert "MicroMutableOpResolver<TD_TFLM_OP_COUNT>" in header and "AllOpsResolver" not in header + source
    registered = re.findall(r"resolver\.(Add\w+)\(\)", source)
    assert sorted(registered) == sorted(TFLM_OP_METHODS[op] for op in distinct)
    # the arena: analyze's 32-bit estimate plus the stated margin, 16-byte aligned
    estimate, _ = tflm_arena(model)
    arena = int(re.search(r"kTensorArenaSize = (\d+)u", header).group(1))
    base = int(re.search(r"kTensorArenaBaseBytes = (\d+)u", header).group(1))
    margin = int(re.search(r"kTensorArenaMarginBytes = (\d+)u", header).group(1))
    assert arena % 16 == 0 and arena == base + margin and base == estimate.target_bytes
    assert estimate.recommended_bytes <= arena < estimate.recommended_bytes + 16
    assert project.plan.arena.source == "analyze" and "an upper bound" in header and f"+ {margin} B margin" in header
    # the model: the exact file, const (flash), aligned for TFLM, with its length and hash
    assert _array_bytes(source) == model.raw
    assert f"alignas(16) const unsigned char td_tflm_model_data[{len(model.raw)}]" in source
    assert f"td_tflm_model_bytes = {len(model.raw)}u" in source and model.sha256 in source
    # the engine glue and the one sketch for every engine
    assert (project.directory / "src" / "td_tflm_engine.cpp").is_file()
    assert '#define TD_ENGINE_NAME "tflm"' in (project.directory / "src" / "td_model_info.h").read_text()


def test_platformio_ini_builds_the_board_and_the_virtual_board(tmp_path, monkeypatch):
    monkeypatch.delenv(TFLM_LIB_ENV, raising=False)  # the pinned download, not a local copy
    model = load_tflite(mlperf_model("ad"))
    project = generate_project(model, get_board("nano33ble"), "tflm", tmp_path / "nano")
    config = configparser.ConfigParser(interpolation=None)
    config.read(project.directory / "platformio.ini")
    nano = config["env:nano33ble"]
    assert (nano["platform"], nano["board"], nano["framework"]) == ("nordicnrf52@10.11.0", "nano33ble", "arduino")
    assert nano["upload_protocol"] == "sam-ba"
    assert config["env"]["monitor_speed"] == "115200"
    assert config["env"]["lib_deps"].strip() == ("Arduino_TensorFlowLite=https://github.com/tensorflow/"
                                                 f"tflite-micro-arduino-examples.git#{TFLM_LIBRARY_COMMIT}")
    assert config["env:virtual"]["board"] == "virtual"
    assert "extra_scripts" not in nano and "tinydeploy_tflm_filter.py" in config["env:virtual"]["extra_scripts"]
    # PlatformIO itself reads it (offline): both environments, with the settings above
    from tinydeploy.build.platformio import platformio_command, platformio_env

    result = subprocess.run(platformio_command("project", "config", "-d", str(project.directory), "--json-output"),
                            capture_output=True, text=True, env=platformio_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    sections = dict(json.loads(result.stdout))
    assert {"env:nano33ble", "env:virtual"} <= set(sections)
    assert dict(sections["env:nano33ble"])["board"] == "nano33ble"


def test_a_local_library_replaces_the_download(tmp_path, monkeypatch):
    monkeypatch.setenv(MEASURE_ENV, "0")  # the stand-in below cannot build a measurement
    library = tmp_path / "Arduino_TensorFlowLite"
    (library / "src").mkdir(parents=True)
    (library / "src" / "TensorFlowLite.h").write_text("// stand-in: only its presence is checked here\n")
    (library / "library.properties").write_text("name=Arduino_TensorFlowLite\nversion=2.4.0-ALPHA\n")
    model = load_tflite(mlperf_model("ad"))
    project = generate_project(model, get_board("nano33ble"), "tflm", tmp_path / "p", tflm_lib=library)
    ini = (project.directory / "platformio.ini").read_text()
    assert "lib_deps" not in ini and "lib_extra_dirs = .tinydeploy-libs" in ini
    link = project.directory / ".tinydeploy-libs" / "Arduino_TensorFlowLite"
    assert link.resolve() == library.resolve()
    bad = run_cli("generate", mlperf_model("ad"), "--board", "nano33ble", "--tflm-lib", tmp_path / "p" / "src", "--out",
                  tmp_path / "q")
    assert bad.returncode == 2 and "TensorFlowLite.h" in bad.stderr and not (tmp_path / "q").exists()


def test_without_the_library_the_tflm_build_says_how_to_proceed(tmp_path):
    if github_reachable(2.0):
        pytest.skip("GitHub is reachable here: PlatformIO would download the library")
    env = {k: v for k, v in os.environ.items() if k != TFLM_LIB_ENV}
    result = subprocess.run([sys.executable, "-m", "tinydeploy", "flash", str(mlperf_model("ad")), "--engine", "tflm",
                             "--out", str(tmp_path / "p")], capture_output=True, text=True, timeout=120, env=env)
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(lines) == 1, result.stderr[-1500:]
    assert "--engine native" in lines[0] and "--tflm-lib" in lines[0] and "GitHub" in lines[0]


def test_arena_sizing_rules_without_a_library(tmp_path, monkeypatch):
    """Which figure a sketch's arena rests on, and the arithmetic of the stated margin (no build, no QEMU)."""
    monkeypatch.setenv("TINYDEPLOY_CACHE_DIR", str(tmp_path / "cache"))
    for used in (1, 820, 2596, 24_164, 101_108):
        sizing = arena_from_device(used, "virtual")
        assert sizing.arena_bytes % ARENA_ALIGN == 0 and sizing.arena_bytes - used == sizing.margin_bytes
        assert CALIBRATION_MARGIN_BYTES <= sizing.margin_bytes < CALIBRATION_MARGIN_BYTES + ARENA_ALIGN
    with pytest.raises(ValueError):
        arena_from_device(0)
    model = load_tflite(mlperf_model("ad"))
    pinned = TflmLibrary(None)
    # nothing measured and no local library: analyze's estimate, labelled an upper bound with the reason
    fallback = arena_for(model, "nano33ble", pinned)
    assert fallback.source == "analyze" and fallback.is_upper_bound and "no local TFLM library" in fallback.note
    assert "upper bound" in fallback.describe()
    # a figure measured on the virtual board holds for the Nano 33 BLE (same core), not for the Pico (M0+)
    store_device_arena(model, "virtual", pinned, 2596)
    nano = arena_for(model, "nano33ble", pinned)
    assert (nano.source, nano.measured_on, nano.base_bytes, nano.arena_bytes) == ("device", "virtual", 2596, 3120)
    assert "measured on the virtual board" in nano.describe() and "524 B margin" in nano.describe()
    pico = arena_for(model, "pico", pinned)
    assert pico.source == "analyze" and "another core" in pico.note
    # a figure read on the board itself (--calibrate-arena) wins over the virtual board's
    store_device_arena(model, "nano33ble", pinned, 2600)
    assert arena_for(model, "nano33ble", pinned).measured_on == "nano33ble"
    # another library version is another figure (not measured here: the path is no library)
    monkeypatch.setenv(MEASURE_ENV, "0")
    other = arena_for(model, "nano33ble", TflmLibrary(Path("/nonexistent")))
    assert other.source == "analyze" and MEASURE_ENV in other.note


# ---- built and run: needs the library -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built_tflm_ad(tmp_path_factory):
    from tinydeploy.build.platformio import build_project

    library = local_tflm_library("to build and run the TFLM sketch")
    model = load_tflite(mlperf_model("ad"))
    project = generate_project(model, get_board("virtual"), "tflm", tmp_path_factory.mktemp("tflm") / "ad",
                               tflm_lib=library)
    return model, project, build_project(project.directory, project.env_name), library


@pytest.mark.slow
@pytest.mark.virtual
def test_tflm_sketch_compiles_without_warnings_and_matches_host_tflm(built_tflm_ad):
    from tinydeploy.flow import measure_on_device
    from tinydeploy.link import DeviceLink
    from tinydeploy.runners.qemu import QemuBoard

    model, project, build, _ = built_tflm_ad
    ours = [line for line in build.log.splitlines() if "warning:" in line and OUR_SOURCES.search(line)
            and ".tinydeploy-libs" not in line]
    assert ours == []
    with QemuBoard(project.directory, project.env_name) as board, DeviceLink(board.port_url, 115_200) as link:
        info = link.wait_ready(30.0)
        assert info.engine == "tflm" and info.engine_status == 0
        result = measure_on_device(link, model, 3, 3, 1, lambda _: None)
    assert result.outputs_match
    assert result.activation_bytes == project.plan.arena.arena_bytes
    assert 0 < result.used_bytes <= project.plan.arena.arena_bytes  # analyze's arena is large enough on the target


@pytest.mark.slow
@pytest.mark.virtual
def test_calibrated_arena_is_used_bytes_plus_the_stated_margin(built_tflm_ad, tmp_path):
    from tinydeploy.flow import flash_model

    model, project, _, library = built_tflm_ad
    board = get_board("virtual")
    report = flash_model(model, board, "tflm", project.directory, False, None, 2, 2, 0, lambda _: None,
                         tflm_lib=library, calibrate_arena=True)
    used = report.run.used_bytes
    assert report.run.outputs_match
    # cached: a new project for the same model, board and library gets that arena without a device
    again = generate_project(model, board, "tflm", tmp_path / "again", tflm_lib=library)
    sizing = again.plan.arena
    assert sizing.source == "device" and sizing.arena_bytes == report.run.activation_bytes
    # the figure is the smallest arena that allocates: at least arena_used_bytes(), the margin on top of it
    assert used <= sizing.base_bytes < used + 2048
    assert sizing.arena_bytes == sizing.base_bytes + sizing.margin_bytes
    assert CALIBRATION_MARGIN_BYTES <= sizing.margin_bytes < CALIBRATION_MARGIN_BYTES + 16


@pytest.mark.slow
@pytest.mark.virtual
def test_generated_arena_holds_the_used_bytes_within_the_stated_margin(built_tflm_ad, sine_int8_tflite, tmp_path):
    """The done-when: with a local library, generate measures the arena on the virtual board; the sketch built with
    it runs, and arena_used_bytes() fits the smallest arena that allocated, kTensorArenaSize being that and the
    stated margin."""
    from tinydeploy.build.platformio import build_project
    from tinydeploy.flow import tflm_arena
    from tinydeploy.link import DeviceLink
    from tinydeploy.runners.qemu import QemuBoard

    _, ad_project, _, library = built_tflm_ad
    # the built AD project, so each model rebuilds only its own files (a copy would rebuild the library: PlatformIO
    # names its build folder after the project's path); AD comes last, leaving the project as it was
    directory = ad_project.directory
    for path in (sine_int8_tflite, mlperf_model("kws"), mlperf_model("ad")):
        model = load_tflite(path)
        board = get_board("virtual")
        project = generate_project(model, board, "tflm", directory, force=True, tflm_lib=library,
                                   arena=tflm_arena(model, board, library))
        arena = project.plan.arena
        assert arena.source == "device" and arena.measured_on == "virtual", arena
        header = (directory / "src" / "td_tflm_model.h").read_text()
        assert f"+ {arena.margin_bytes} B margin" in header
        assert f"kTensorArenaMarginBytes = {arena.margin_bytes}u" in header
        build_project(directory, project.env_name)
        with QemuBoard(directory, project.env_name) as board, DeviceLink(board.port_url, 115_200) as link:
            info = link.wait_ready(30.0)
            assert info.engine_status == 0 and model.sha256.startswith(info.model_hash)
            used = link.ram().used_bytes
        print(f"{model.name}: used {used} B, smallest that allocates {arena.base_bytes} B, arena "
              f"{arena.arena_bytes} B, stated margin {arena.margin_bytes} B")
        assert used <= arena.base_bytes and arena.arena_bytes == arena.base_bytes + arena.margin_bytes
        assert arena.margin_bytes < CALIBRATION_MARGIN_BYTES + ARENA_ALIGN
    # generate for the Nano 33 BLE says what the arena rests on and the margin (the figure is cached now)
    result = run_cli("generate", sine_int8_tflite, "--board", "nano33ble", "--engine", "tflm", "--tflm-lib", library,
                     "--out", tmp_path / "nano")
    assert result.returncode == 0, result.stderr
    assert "measured on the virtual board" in result.stdout
    assert re.search(r"\+ 5[12]\d B margin", result.stdout)
