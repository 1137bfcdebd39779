"""`tinydeploy doctor`: this machine passes; a PATH without the tools fails with the command that fixes it."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tinydeploy.lab.doctor import FAIL, OK, WARN, check_port_grabbers


def test_this_machine_is_ready_for_the_virtual_board():
    result = run_cli("doctor", "--json", "--board", "virtual")
    assert result.returncode == 0, result.stdout + result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    for name in ("python", "python packages", "platformio", "platform for virtual", "arm toolchain", "newlib-nano",
                 "qemu (virtual board)", "serial ports", "ModemManager"):
        assert checks[name]["status"] in (OK, WARN), checks[name]
    assert checks["qemu (virtual board)"]["status"] == OK and "mps2-an386" in checks["qemu (virtual board)"]["detail"]
    assert "platform for nano33ble" not in checks  # only the profiles asked for


def test_missing_tools_fail_with_the_install_command():
    result = run_cli("doctor", env={"PATH": "/nonexistent"})
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    qemu = next(i for i, line in enumerate(lines) if "qemu (virtual board)" in line)
    assert lines[qemu].startswith(FAIL) and "apt-get install" in lines[qemu + 1]
    gcc = next(i for i, line in enumerate(lines) if "arm toolchain" in line)
    assert lines[gcc].startswith(FAIL) and "gcc-arm-none-eabi" in lines[gcc + 1]
    assert any("platform for nano33ble" in line for line in lines)  # every profile when none is named


def test_port_grabbers_are_found_in_a_mock_proc_tree(tmp_path):
    for pid, comm in ((12, "bash"), (345, "ModemManager")):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "comm").write_text(comm + "\n")
    checks = {c.name: c for c in check_port_grabbers(tmp_path)}
    assert checks["ModemManager"].status == WARN and "systemctl stop ModemManager" in checks["ModemManager"].fix
    assert checks["brltty"].status == OK
