"""The runner layer without hardware: each profile's runner and its capabilities, and what its figures mean."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tinydeploy.boards import get_board
from tinydeploy.errors import TinydeployError
from tinydeploy.runners import runner_for
from tinydeploy.runners.qemu import qemu_command


def test_each_profile_gets_its_runner_with_declared_capabilities():
    virtual, nano = runner_for(get_board("virtual"), index=3), runner_for(get_board("nano33ble"), port="/dev/ttyACM0")
    assert (virtual.name, virtual.label) == ("qemu", "virtual3")
    assert virtual.caps.emulated and virtual.caps.counts_instructions and not virtual.caps.needs_port
    assert (nano.name, nano.label) == ("platformio", "/dev/ttyACM0")
    assert nano.caps.needs_port and not nano.caps.emulated and not nano.caps.counts_instructions
    assert nano.instructions(1_000) is None and nano.timing_note() == ""


def test_instructions_and_clock_come_from_the_profile_not_from_qemu_arguments():
    board = get_board("virtual")
    runner = runner_for(board)
    assert runner.instructions(1_000) == 1_000 * 1_000 // 16  # icount_shift = 4: 16 ns per instruction
    assert "~64 MHz" in runner.timing_note()
    changed = dataclasses.replace(board, clock_hz=16_000_000,
                                  runner_settings={**board.runner_settings, "icount_shift": 6})
    assert runner_for(changed).instructions(1_000) == 1_000 * 1_000 // 64
    assert "~16 MHz" in runner_for(changed).timing_note()
    assert "shift=6" in qemu_command(Path("firmware.elf"), changed)  # and QEMU runs with that shift


def test_a_runner_table_missing_a_field_names_it():
    board = get_board("virtual")
    broken = dataclasses.replace(board, runner_settings={k: v for k, v in board.runner_settings.items()
                                                         if k != "machine"})
    with pytest.raises(TinydeployError, match=r"'qemu\.machine'"):
        runner_for(broken)


def test_a_firmware_for_another_board_is_refused_before_anything_starts(tmp_path):
    from tinydeploy.flow import Firmware
    from tinydeploy.hil.models import sine_model

    firmware = Firmware(sine_model(), get_board("nano33ble"), "native", tmp_path, "nano33ble",
                        tmp_path / "firmware.elf", 1, 1)
    runner = runner_for(get_board("virtual"))
    with pytest.raises(TinydeployError, match="cannot run a firmware built for nano33ble"):
        runner.run(firmware)
    assert runner.qemu is None
