"""The virtual board: the PlatformIO platform builds an Arduino-style sketch, QEMU runs it, pyserial talks
to it over the loopback TCP port; QEMU never outlives its QemuBoard."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tinydeploy.errors import TinydeployError

REPO = Path(__file__).resolve().parent.parent
PLATFORM_DIR = REPO / "firmware" / "platform"
SKETCHES = Path(__file__).resolve().parent / "firmware"


def make_project(root: Path, sketch: str) -> Path:
    from tinydeploy.build.platformio import virtual_platform_spec

    project = root / sketch
    shutil.copytree(SKETCHES / sketch / "src", project / "src")
    (project / "platformio.ini").write_text(
        "[env:virtual]\n"
        f"platform = {virtual_platform_spec(PLATFORM_DIR)}\n"
        "board = virtual\n"
        "framework = arduino\n")
    return project


def qemu_children() -> list[int]:
    """Live qemu-system-arm processes whose parent is this test process."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)
        if (fields.get("Name", "").startswith("qemu-system-arm") and int(fields.get("PPid", 0)) == os.getpid()
                and not fields.get("State", "").startswith("Z")):
            found.append(int(entry.name))
    return found


# ---- provisioning of the tinydeploy-owned PlatformIO core directory (no pio run) ----

def test_provisioning_builds_an_offline_core_dir(tmp_path):
    from platformio.dependencies import get_core_dependencies
    from semantic_version import SimpleSpec, Version

    from tinydeploy.build.platformio import platformio_env, provision_core_dir

    core = provision_core_dir(tmp_path / "core")
    scons = core / "packages" / "tool-scons"
    manifest = json.loads((scons / "package.json").read_text())
    assert manifest["name"] == "tool-scons"
    assert Version(manifest["version"]) in SimpleSpec(get_core_dependencies()["tool-scons"])
    assert json.loads((scons / ".piopm").read_text())["spec"]["owner"] == "platformio"
    assert (scons / "scons.py").is_file() and (scons / "SCons" / "Script" / "Main.py").is_file()
    if shutil.which("arm-none-eabi-gcc"):
        gcc = core / "packages" / "toolchain-gccarmnoneeabi" / "bin" / "arm-none-eabi-gcc"
        assert gcc.resolve() == Path(shutil.which("arm-none-eabi-gcc")).resolve()
    inode = scons.stat().st_ino
    env = platformio_env(core)
    assert scons.stat().st_ino == inode, "a second provisioning must reuse the first"
    assert env["PLATFORMIO_CORE_DIR"] == str(core)
    assert env["PLATFORMIO_SETTING_ENABLE_TELEMETRY"] == "No"
    assert not str(core).startswith(str(Path.home() / ".platformio"))


def test_provisioning_is_safe_when_run_concurrently(tmp_path):
    core = tmp_path / "core"
    code = "import sys; from tinydeploy.build.platformio import provision_core_dir; provision_core_dir(__import__('pathlib').Path(sys.argv[1]))"
    workers = [subprocess.Popen([sys.executable, "-c", code, str(core)]) for _ in range(4)]
    assert [w.wait(60) for w in workers] == [0, 0, 0, 0]
    packages = sorted(p.name for p in (core / "packages").iterdir())
    expected = ["tool-scons"] + (["toolchain-gccarmnoneeabi"] if shutil.which("arm-none-eabi-gcc") else [])
    assert packages == expected  # no leftover staging directories
    assert json.loads((core / "packages" / "tool-scons" / "package.json").read_text())["name"] == "tool-scons"


def test_linker_overflow_lines_become_one_clear_error(tmp_path):
    from tinydeploy.build.platformio import _failure

    (tmp_path / "platformio.ini").write_text("[env:virtual]\nboard = virtual\n")
    ram = _failure(["ld: firmware.elf section `.bss' will not fit in region `RAM'",
                    "ld: region `RAM' overflowed by 45112 bytes"], tmp_path / "log", tmp_path, "virtual")
    assert ram.message == "the model does not fit the board's RAM: the linker reports 45,112 bytes over 256 KB"
    flash = _failure(["ld: region `FLASH' overflowed by 12 bytes"], tmp_path / "log", tmp_path, "virtual")
    assert "flash" in flash.message and "12 bytes over 960 KB" in flash.message
    compile_error = _failure(["Compiling x", "src/main.cpp:3:1: error: 'foo' was not declared in this scope"],
                             tmp_path / "log", tmp_path, "virtual")
    assert compile_error.message.endswith("src/main.cpp:3:1: error: 'foo' was not declared in this scope")
    assert str(tmp_path / "log") in compile_error.hint


def test_offline_build_of_a_registry_platform_fails_at_once(tmp_path):
    from tinydeploy.build.platformio import build_project, registry_reachable

    if registry_reachable():
        pytest.skip("PlatformIO's registry is reachable here: nothing to report")
    (tmp_path / "src").mkdir()
    (tmp_path / "platformio.ini").write_text(
        "[env:nano33ble]\nplatform = nordicnrf52\nboard = nano33ble\nframework = arduino\n")
    started = time.monotonic()
    with pytest.raises(TinydeployError, match="download the 'nordicnrf52' platform but its registry is unreachable"):
        build_project(tmp_path, "nano33ble")
    assert time.monotonic() - started < 10  # PlatformIO itself would wait ~60 s


# ---- building and running on QEMU ----

@pytest.fixture(scope="session")
def echo_build(tmp_path_factory):
    from tinydeploy.build.platformio import build_project

    project = make_project(tmp_path_factory.mktemp("virtual"), "echo")
    lines: list[str] = []
    result = build_project(project, "virtual", on_line=lines.append)
    assert any("firmware.elf" in line for line in lines), "build output must be streamed"
    return project, result


def open_serial(board):
    import serial

    return serial.serial_for_url(board.port_url, timeout=5)


@pytest.mark.virtual
def test_build_reports_sizes_within_the_board(echo_build):
    project, result = echo_build
    assert result.elf_path == project / ".pio" / "build" / "virtual" / "firmware.elf"
    assert 2_000 < result.flash_bytes < 64_000
    assert 0 < result.ram_bytes < 16_000
    assert result.stack_reserve_bytes == 4096
    assert "SUCCESS" in result.log and result.log_path.is_file()
    assert "warning" not in result.log.lower()  # the BSP and the sketch compile cleanly with -Wall -Wextra


@pytest.mark.virtual
def test_incremental_build_is_quick_and_keeps_the_firmware(echo_build):
    from tinydeploy.build.platformio import build_project

    project, first = echo_build
    again = build_project(project, "virtual")
    assert again.flash_bytes == first.flash_bytes
    assert not any(line.startswith("Compiling") for line in again.log.splitlines())


@pytest.mark.virtual
def test_sketch_echoes_and_time_advances(echo_build):
    from tinydeploy.runners.qemu import QemuBoard

    project, _ = echo_build
    with QemuBoard(project, "virtual") as board, open_serial(board) as port:
        assert re.fullmatch(rb"echo-ready micros=\d+\r\n", port.readline())
        port.write(b"hello\n")
        first = re.fullmatch(rb"echo:hello micros=(\d+)\r\n", port.readline())
        port.write(b"delay 250\n")
        delayed = re.fullmatch(rb"delayed us=(\d+)\r\n", port.readline())
        port.write(b"again\n")
        second = re.fullmatch(rb"echo:again micros=(\d+)\r\n", port.readline())
        assert first and delayed and second
        # icount makes virtual time exact: delay(250) is 250 ms of board time, to a tick
        assert 250_000 <= int(delayed.group(1)) < 250_100
        assert int(second.group(1)) - int(first.group(1)) >= 250_000
        port.write(b"float\n")
        assert port.readline() == b"3.142\r\n"
        port.write(b"mem\n")
        memory = re.fullmatch(rb"heap=(\d+) stack=(\d+)\r\n", port.readline())
        assert memory and int(memory.group(1)) >= 1000 and 0 < int(memory.group(2)) < 4096


@pytest.mark.virtual
def test_burst_larger_than_the_receive_buffer_is_not_lost(echo_build):
    from tinydeploy.runners.qemu import QemuBoard

    project, _ = echo_build
    words = [f"word{i:03d}-{'x' * 40}" for i in range(60)]  # ~3 KB at once, the firmware buffers 256 B
    with QemuBoard(project) as board, open_serial(board) as port:
        port.readline()
        port.write("".join(w + "\n" for w in words).encode())
        echoed = [port.readline().decode().split(" ")[0] for _ in words]
    assert echoed == [f"echo:{w}" for w in words]


@pytest.mark.virtual
def test_two_boards_get_their_own_ports_and_outputs(echo_build):
    from tinydeploy.runners.qemu import QemuBoard

    project, _ = echo_build
    with QemuBoard(project) as left, QemuBoard(project) as right:
        assert left.port != right.port and left.pid != right.pid
        with open_serial(left) as left_port, open_serial(right) as right_port:
            left_port.readline(), right_port.readline()
            for i in range(5):
                left_port.write(f"left{i}\n".encode())
                right_port.write(f"right{i}\n".encode())
            assert [left_port.readline().split(b" ")[0] for _ in range(5)] == [b"echo:left%d" % i for i in range(5)]
            assert [right_port.readline().split(b" ")[0] for _ in range(5)] == [b"echo:right%d" % i for i in range(5)]


@pytest.mark.virtual
def test_stop_leaves_no_qemu_behind_even_after_an_error(echo_build):
    from tinydeploy.runners.qemu import QemuBoard

    project, _ = echo_build
    with pytest.raises(KeyboardInterrupt):
        with QemuBoard(project) as board:
            pid = board.pid
            assert board.alive and pid in qemu_children()
            raise KeyboardInterrupt  # what Ctrl-C raises in the middle of a run
    assert not board.alive
    assert pid not in qemu_children()
    assert qemu_children() == []


@pytest.mark.virtual
def test_hard_fault_prints_a_marker_and_ends_qemu(echo_build):
    from tinydeploy.runners.qemu import FAULT_EXIT_STATUS, FAULT_MARKER, QemuBoard

    project, _ = echo_build
    with QemuBoard(project) as board, open_serial(board) as port:
        port.readline()
        port.write(b"crash\n")
        lines = [port.readline() for _ in range(2)]
        assert board.wait(10) == FAULT_EXIT_STATUS
        with pytest.raises(TinydeployError, match="HardFault"):
            board.check_alive()
    fault = lines[1].decode()
    assert fault.startswith(FAULT_MARKER) and "cfsr=0x" in fault


@pytest.mark.virtual
def test_qemu_failure_names_its_status_and_stderr(tmp_path):
    from tinydeploy.runners.qemu import QemuBoard

    with pytest.raises(TinydeployError, match="does not exist") as missing:
        QemuBoard(tmp_path / "nowhere").start()
    assert missing.value.hint == "build the project first"
    empty = tmp_path / "firmware.elf"
    empty.write_bytes(b"")  # QEMU loads it as a raw image: no vector table, the core locks up
    # QEMU opens the serial port before it runs the firmware, so this failure shows once a client connects.
    with QemuBoard(elf_path=empty) as board, open_serial(board):
        assert board.wait(10) not in (None, 0)
        with pytest.raises(TinydeployError, match=r"locked up the virtual board \(QEMU signal SIGABRT: qemu: fatal: Lockup"):
            board.check_alive()


@pytest.mark.virtual
def test_upload_target_starts_qemu_with_the_same_command(echo_build):
    from tinydeploy.build.platformio import platformio_command, platformio_env
    from tinydeploy.runners.qemu import qemu_command

    import serial

    project, _ = echo_build
    proc = subprocess.Popen(platformio_command("run", "-d", str(project), "-e", "virtual", "-t", "upload"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=platformio_env(),
                            start_new_session=True)
    try:
        output = []
        deadline = time.monotonic() + 60
        port = None
        while port is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            match = re.search(r"disconnected:tcp:127\.0\.0\.1:(\d+)", line)
            port = int(match.group(1)) if match else None
        assert port, "".join(output)
        # the upload target prints the command it runs: the runner's, from the same board definition
        assert " ".join(qemu_command(Path(".pio/build/virtual/firmware.elf"))) + "\n" in output
        with serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=5) as link:
            assert link.readline().startswith(b"echo-ready")
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(10)


@pytest.mark.virtual
def test_sketch_too_big_for_ram_fails_with_the_linker_figure(tmp_path):
    from tinydeploy.build.platformio import build_project

    project = make_project(tmp_path, "too_big")
    with pytest.raises(TinydeployError) as caught:
        build_project(project, "virtual")
    message = caught.value.message
    assert message.startswith("the model does not fit the board's RAM: the linker reports")
    over = int(re.search(r"reports ([\d,]+) bytes over 256 KB", message).group(1).replace(",", ""))
    assert 300 * 1024 + 4096 - 256 * 1024 <= over < 300 * 1024 + 4096 - 256 * 1024 + 2048


@pytest.mark.virtual
def test_qemu_dies_with_a_killed_tinydeploy(echo_build):
    project, _ = echo_build
    code = ("import sys, time; from tinydeploy.runners.qemu import QemuBoard; "
            "board = QemuBoard(sys.argv[1]).start(); print(board.pid, flush=True); time.sleep(60)")
    host = subprocess.Popen([sys.executable, "-c", code, str(project)], stdout=subprocess.PIPE, text=True)
    qemu_pid = int(host.stdout.readline())
    assert Path(f"/proc/{qemu_pid}").exists()
    host.kill()  # no atexit, no __exit__: only the kernel's parent-death signal can stop QEMU
    host.wait(10)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{qemu_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{qemu_pid}").exists()
