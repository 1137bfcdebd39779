"""Offline lab bundles (`tinydeploy setup --bundle` / `--from`): what goes in, checksums, refusals, and a
virtual-board build with the network blocked (a network namespace: `unshare -rn`).

The real nordicnrf52 platform cannot be downloaded here (PlatformIO's registry is unreachable): its path through
the bundle is covered with a PlatformIO core directory laid out as PlatformIO installs one, built by the test."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tinydeploy.boards import get_board
from tinydeploy.lab import bundle
from tinydeploy.errors import TinydeployError


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def _platformio_package(folder: Path, name: str, version: str, files: dict[str, str]) -> None:
    """A package folder as PlatformIO installs one: package.json, its .piopm record, the files."""
    _write_json(folder / "package.json", {"name": name, "version": version})
    _write_json(folder / ".piopm", {"type": "tool", "name": name, "version": version,
                                    "spec": {"owner": "platformio", "name": name}})
    for relative, text in files.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)


def _constructed_nordicnrf52_home(home: Path, version: str = "10.11.0") -> None:
    """A home after `setup --board nano33ble` (constructed: the registry is unreachable here): the platform, the
    Nano's Arduino core, PlatformIO's own toolchain beside the one tinydeploy provisions, the upload tools, and
    another board's core that the Nano's bundle must leave out."""
    from tinydeploy.build.platformio import provision_core_dir

    core = home / "platformio"
    provision_core_dir(core)
    platform = core / "platforms" / "nordicnrf52"
    _write_json(platform / "platform.json", {
        "name": "nordicnrf52", "version": version,
        "frameworks": {"arduino": {"script": "builder/frameworks/arduino/mbed-core/arduino-core-mbed.py"}},
        "packages": {
            "toolchain-gccarmnoneeabi": {"type": "toolchain", "version": ">=1.60301.0,<1.80000.0"},
            "framework-arduino-mbed": {"type": "framework", "optional": True, "version": "~4.5.0"},
            "framework-arduinoadafruitnrf52": {"type": "framework", "optional": True, "version": "~1.10601.0"},
            "tool-sreccat": {"version": "~1.164.0"},
            "tool-bossac-nordicnrf52": {"type": "uploader", "optional": True, "version": "~1.10901.0"},
            "tool-openocd": {"type": "uploader", "optional": True, "version": "~3.1200.0"},
        }})
    _write_json(platform / ".piopm", {"type": "platform", "name": "nordicnrf52", "version": version})
    (platform / "builder").mkdir()
    (platform / "builder" / "main.py").write_text("# the platform's builder\n")
    os.symlink("main.py", platform / "builder" / "entry.py")  # a link inside the package stays a link
    packages = core / "packages"
    _platformio_package(packages / "framework-arduino-mbed", "framework-arduino-mbed", "4.5.0",
                        {"cores/arduino/Arduino.h": "#pragma once\n",
                         "variants/ARDUINO_NANO33BLE/libs/libmbed.a": "!<arch>\n"})
    _platformio_package(packages / "framework-arduinoadafruitnrf52", "framework-arduinoadafruitnrf52", "1.10601.0",
                        {"cores/nRF5/Arduino.h": "#pragma once\n"})
    _platformio_package(packages / "toolchain-gccarmnoneeabi@1.70201.0", "toolchain-gccarmnoneeabi", "1.70201.0",
                        {"bin/arm-none-eabi-gcc": "#!/bin/sh\necho gcc 7.2.1\n"})
    (packages / "toolchain-gccarmnoneeabi@1.70201.0" / "bin" / "arm-none-eabi-gcc").chmod(0o755)
    _platformio_package(packages / "tool-sreccat", "tool-sreccat", "1.164.0", {"srec_cat": "tool\n"})
    _platformio_package(packages / "tool-bossac-nordicnrf52", "tool-bossac-nordicnrf52", "1.10901.201226",
                        {"bossac": "tool\n"})


@pytest.fixture
def nordic_bundle(tmp_path, monkeypatch):
    """A bundle for nano33ble made from a constructed PlatformIO core directory (see above), and a fresh home."""
    source = tmp_path / "source-home"
    monkeypatch.setenv("TINYDEPLOY_HOME", str(source))
    monkeypatch.delenv("TINYDEPLOY_TFLM_LIB", raising=False)
    _constructed_nordicnrf52_home(source)
    made = bundle.write_bundle(get_board("nano33ble"), tmp_path / "lab.tar")
    fresh = tmp_path / "fresh-home"
    monkeypatch.setenv("TINYDEPLOY_HOME", str(fresh))
    return made, tmp_path / "lab.tar", fresh


def test_nano33ble_bundle_from_a_constructed_platformio_dir_carries_the_board_packages_and_installs(nordic_bundle):
    from tinydeploy.build.packages import missing_board_packages

    made, path, fresh = nordic_bundle
    assert made["platform"] == {"name": "nordicnrf52", "version": "10.11.0", "source": "PlatformIO registry",
                                "pinned": "10.11.0"}
    sources = {p["name"]: p["source"] for p in made["packages"] if p["source"] == "bundled"}
    assert set(sources) == {"framework-arduino-mbed", "toolchain-gccarmnoneeabi", "tool-sreccat",
                            "tool-bossac-nordicnrf52"}  # not the Adafruit core, not the uninstalled openocd
    assert {p["name"] for p in made["packages"] if p["source"].startswith("provisioned")} >= {"tool-scons"}
    with tarfile.open(path) as tar:
        names = tar.getnames()
        sums = tar.extractfile("tinydeploy-bundle/SHA256SUMS").read().decode()
    assert names[:2] == ["tinydeploy-bundle/manifest.json", "tinydeploy-bundle/SHA256SUMS"]
    assert "home/platformio/packages/framework-arduino-mbed/cores/arduino/Arduino.h" in sums

    assert missing_board_packages(get_board("nano33ble"), fresh / "platformio")  # nothing there yet
    result = bundle.install_bundle(path)
    assert result["board"] == "nano33ble" and result["file_count"] == made["file_count"]
    core = fresh / "platformio"
    assert missing_board_packages(get_board("nano33ble"), core) == []
    assert json.loads((core / "platforms" / "nordicnrf52" / "platform.json").read_text())["version"] == "10.11.0"
    toolchain = core / "packages" / "toolchain-gccarmnoneeabi@1.70201.0" / "bin" / "arm-none-eabi-gcc"
    assert os.access(toolchain, os.X_OK)  # the executable bit survives
    assert os.readlink(core / "platforms" / "nordicnrf52" / "builder" / "entry.py") == "main.py"
    assert not (core / "packages" / "framework-arduinoadafruitnrf52").exists()
    checks = {c.name: c for c in bundle.doctor_checks(["nano33ble"])}
    assert checks["offline bundle"].status == "OK" and "nordicnrf52 10.11.0" in checks["offline bundle"].detail
    assert checks["offline build for nano33ble"].status == "OK"
    assert "nordicnrf52@10.11.0" in checks["offline build for nano33ble"].detail
    assert checks["TFLM library"].status == "WARN"  # no library was bundled

    (core / "packages" / "framework-arduino-mbed" / "cores" / "arduino" / "Arduino.h").unlink()
    checks = {c.name: c for c in bundle.doctor_checks(["nano33ble"])}
    assert checks["offline bundle"].status == "FAIL" and "Arduino.h" in checks["offline bundle"].detail


def test_a_platform_release_other_than_the_pinned_one_is_not_bundled(tmp_path, monkeypatch):
    monkeypatch.setenv("TINYDEPLOY_HOME", str(tmp_path / "home"))
    _constructed_nordicnrf52_home(tmp_path / "home", version="10.10.0")
    with pytest.raises(TinydeployError) as caught:
        bundle.write_bundle(get_board("nano33ble"), tmp_path / "lab.tar")
    assert "the 'nordicnrf52' platform 10.11.0 missing" in caught.value.one_line()
    assert "run `tinydeploy setup --board nano33ble` with internet access" in caught.value.one_line()
    assert not (tmp_path / "lab.tar").exists()


def test_generated_nano33ble_projects_pin_the_platform_release(tmp_path):
    from tinydeploy.hil.models import sine_model_bytes

    model = tmp_path / "sine.tflite"
    model.write_bytes(sine_model_bytes())
    result = run_cli("generate", model, "--board", "nano33ble", "--engine", "native", "--out", tmp_path / "p")
    assert result.returncode == 0, result.stderr
    ini = (tmp_path / "p" / "platformio.ini").read_text()
    assert "\nplatform = nordicnrf52@10.11.0\n" in ini


def _tar_with(path: Path, source: Path, extra: list[tuple[tarfile.TarInfo, bytes | None]]) -> None:
    """A copy of the bundle `source` with extra members appended (a crafted archive)."""
    with tarfile.open(source) as old, tarfile.open(path, "w") as new:
        for member in old.getmembers():
            new.addfile(member, old.extractfile(member) if member.isfile() else None)
        for info, data in extra:
            new.addfile(info, io.BytesIO(data) if data is not None else None)


def _refused(path: Path, match: str, home: Path) -> None:
    with pytest.raises(TinydeployError, match=match) as caught:
        bundle.install_bundle(path)
    assert "\n" not in caught.value.one_line() and caught.value.hint
    assert not (home / "bundle.json").exists() and not (home / "platformio" / "platforms").exists()


def test_damaged_foreign_and_unsafe_bundles_are_refused_and_install_nothing(nordic_bundle, tmp_path):
    _, good, fresh = nordic_bundle
    data = good.read_bytes()

    flipped = tmp_path / "flipped.tar"  # one byte of one file changed
    offset = data.index(b"echo gcc 7.2.1")
    flipped.write_bytes(data[:offset] + b"E" + data[offset + 1:])
    _refused(flipped, r"damaged: platformio/packages/toolchain-gccarmnoneeabi@1\.70201\.0/bin/arm-none-eabi-gcc "
                      r"does not match its checksum", fresh)

    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[: len(data) // 2])
    _refused(cut, r"damaged: .*(cut|missing)", fresh)

    foreign = tmp_path / "foreign.tar"
    with tarfile.open(foreign, "w") as tar:
        info = tarfile.TarInfo("notes.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"hello"))
    _refused(foreign, r"not a tinydeploy bundle \(no tinydeploy-bundle/manifest.json", fresh)

    not_tar = tmp_path / "model.tflite"
    not_tar.write_bytes(b"TFL3" + bytes(100))
    _refused(not_tar, r"not a tinydeploy bundle \(not a readable tar archive", fresh)

    escaping = tmp_path / "escaping.tar"
    info = tarfile.TarInfo("tinydeploy-bundle/home/../../../outside.txt")
    info.size = 4
    _tar_with(escaping, good, [(info, b"evil")])
    _refused(escaping, r"outside a bundle's folders: refused", fresh)
    assert not (tmp_path / "outside.txt").exists()

    linking = tmp_path / "linking.tar"  # a link out of the home: tarfile's data filter stops it
    info = tarfile.TarInfo("tinydeploy-bundle/home/platformio/packages/tool-sreccat/passwd")
    info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    _tar_with(linking, good, [(info, None)])
    _refused(linking, r"unsafe member", fresh)

    extra = tmp_path / "extra.tar"  # a file the manifest does not list
    info = tarfile.TarInfo("tinydeploy-bundle/home/platformio/packages/tool-sreccat/extra")
    info.size = 1
    _tar_with(extra, good, [(info, b"x")])
    _refused(extra, r"holds platformio/packages/tool-sreccat/extra, which its manifest does not list", fresh)

    result = run_cli("setup", "--from", flipped, env={"TINYDEPLOY_HOME": str(fresh)})
    assert result.returncode == 2 and result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_installing_over_another_version_needs_force(nordic_bundle):
    _, path, fresh = nordic_bundle
    bundle.install_bundle(path)
    again = bundle.install_bundle(path)  # the same versions: a repair
    assert any("replaced platformio/platforms/nordicnrf52" in note for note in again["notes"])
    manifest = fresh / "platformio" / "packages" / "tool-sreccat" / "package.json"
    manifest.write_text(json.dumps({"name": "tool-sreccat", "version": "1.165.0"}))
    with pytest.raises(TinydeployError) as caught:
        bundle.install_bundle(path)
    assert "already holds tool-sreccat 1.165.0; the bundle has 1.164.0; pass --force" in caught.value.one_line()
    bundle.install_bundle(path, force=True)
    assert json.loads(manifest.read_text())["version"] == "1.164.0"


def test_bundled_tflm_library_and_objects_are_found_without_the_env_variable(tmp_path, monkeypatch):
    """The TFLM part of a bundle: the library given locally, and compiled objects where they exist, installed
    where a build finds them (a generated project uses the home's copy, no GitHub)."""
    library = os.environ.get("TINYDEPLOY_TFLM_LIB")
    if not library:
        pytest.skip("$TINYDEPLOY_TFLM_LIB is unset: the Arduino TFLM library cannot be downloaded here")
    from tinydeploy.tflm.library import installed_library_dir, resolve_tflm_library

    source = tmp_path / "source-home"
    monkeypatch.setenv("TINYDEPLOY_HOME", str(source))
    # where the arena measurement compiles the library (flow.measure_on_virtual_board)
    workspace = source / "tflm-arena" / resolve_tflm_library(library).version / "project"
    objects = workspace / ".pio" / "build" / "virtual" / "lib0a1" / "Arduino_TensorFlowLite"
    objects.mkdir(parents=True)
    (objects / "micro_interpreter.cpp.o").write_bytes(b"\x7fELF" + bytes(64))
    (workspace / ".tinydeploy-libs").mkdir()
    (workspace / ".tinydeploy-libs" / "Arduino_TensorFlowLite").symlink_to(library)  # written again by generate
    made = bundle.write_bundle(get_board("virtual"), tmp_path / "lab.tar.gz", tflm_lib=library)
    assert made["tflm_library"]["name"] == "Arduino_TensorFlowLite" and made["tflm_objects"]

    fresh = tmp_path / "fresh-home"
    monkeypatch.setenv("TINYDEPLOY_HOME", str(fresh))
    monkeypatch.delenv("TINYDEPLOY_TFLM_LIB")
    assert resolve_tflm_library().local_path is None
    bundle.install_bundle(tmp_path / "lab.tar.gz")
    assert resolve_tflm_library().local_path == installed_library_dir()
    installed = fresh / objects.relative_to(source) / "micro_interpreter.cpp.o"
    assert installed.read_bytes()[:4] == b"\x7fELF"
    assert not (fresh / workspace.relative_to(source) / ".tinydeploy-libs").exists()
    originals = sorted(p.relative_to(library).as_posix() for p in Path(library).rglob("*.cpp") if ".git" not in p.parts)
    assert originals and sorted(p.relative_to(installed_library_dir()).as_posix()
                                for p in installed_library_dir().rglob("*.cpp")) == originals

    from tinydeploy.flow import generate_project
    from tinydeploy.hil.models import sine_model

    project = generate_project(sine_model(), get_board("virtual"), "tflm", tmp_path / "p")  # no measurement build
    assert project.plan.library.local_path == installed_library_dir()
    ini = (tmp_path / "p" / "platformio.ini").read_text()
    assert "lib_deps" not in ini and "lib_extra_dirs" in ini
    assert (tmp_path / "p" / ".tinydeploy-libs" / "Arduino_TensorFlowLite").resolve() == installed_library_dir()


def _network_namespace_works() -> bool:
    if not shutil.which("unshare") or not shutil.which("ip"):
        return False
    try:
        return subprocess.run(["unshare", "-rn", "sh", "-c", "ip link set lo up"], capture_output=True,
                              timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.slow
@pytest.mark.virtual
def test_virtual_board_bundle_installs_and_builds_with_the_network_blocked(tmp_path):
    """The done-when of issue 18 part 1, with the native engine (a TFLM build takes minutes): a bundle made here
    installs into a fresh home inside a network namespace (only loopback, for QEMU's serial port), doctor confirms
    the board builds offline, and a model is built and run there."""
    if not _network_namespace_works():
        pytest.skip("no network namespace here (`unshare -rn` needs unprivileged user namespaces)")
    from tinydeploy.hil.models import sine_model_bytes

    library = os.environ.get("TINYDEPLOY_TFLM_LIB")  # bundled when given: the lab machine then finds it offline
    made = run_cli("setup", "--board", "virtual", "--bundle", tmp_path / "lab.tar", "--json",
                   *(["--tflm-lib", library] if library else []), env={"TINYDEPLOY_TFLM_LIB": ""})
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["bundle"]["platform"]["name"] == "tinydeploy-virtual"
    (tmp_path / "sine.tflite").write_bytes(sine_model_bytes())
    fresh = tmp_path / "fresh-home"
    python = sys.executable
    script = (f"ip link set lo up && "
              f"{python} -c 'from tinydeploy.net import host_reachable; "
              f"assert not host_reachable(\"api.registry.platformio.org\", timeout=3)' && "
              f"{python} -m tinydeploy setup --from lab.tar && "
              f"{python} -m tinydeploy doctor --board virtual --json > doctor.json && "
              f"{python} -m tinydeploy flash sine.tflite --board virtual --engine native --out project --json "
              "> flash.json")
    env = {**os.environ, "TINYDEPLOY_HOME": str(fresh), "TINYDEPLOY_TFLM_LIB": "", "COLUMNS": "160"}
    result = subprocess.run(["unshare", "-rn", "sh", "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "checksums verified" in result.stdout
    checks = {c["name"]: c for c in json.loads((tmp_path / "doctor.json").read_text())["checks"]}
    assert checks["offline bundle"]["status"] == "OK" and checks["offline build for virtual"]["status"] == "OK"
    if library:
        assert checks["TFLM library"]["status"] == "OK"
        assert str(fresh / "tflm-library") in checks["TFLM library"]["detail"]
    flashed = json.loads((tmp_path / "flash.json").read_text())
    assert flashed["board"] == "virtual" and flashed["outputs_match"] is True and flashed["flash_bytes"] > 0, flashed
    assert (fresh / "bundle.json").is_file()
    assert (tmp_path / "project" / ".pio" / "build" / "virtual" / "firmware.elf").is_file()
