import json
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tinydeploy.boards import PROFILE_DIR, all_boards, get_board, load_board_file
from tinydeploy.errors import TinydeployError


def test_every_profile_loads_and_has_the_required_boards():
    boards = all_boards()
    assert {"nano33ble", "virtual", "pico", "esp32s3"} <= set(boards)


def test_nano33ble_figures():
    b = get_board("nano33ble")
    assert (b.mcu, b.cpu, b.clock_hz) == ("nRF52840", "Cortex-M4F", 64_000_000)
    assert b.flash_bytes == 983_040 and b.ram_bytes == 262_144
    assert (b.pio_platform, b.pio_board, b.pio_framework) == ("nordicnrf52", "nano33ble", "arduino")
    assert str(b.usb_sketch) == "2341:805A" and str(b.usb_bootloader) == "2341:005A"
    assert b.baud == 115_200 and b.upload_method == "sam-ba"  # PlatformIO's name for the bossac upload
    assert 80_000 <= b.core_flash_bytes <= 90_000 and 40_000 <= b.core_ram_bytes <= 50_000


def test_virtual_board_has_the_nano33ble_limits():
    virtual, nano = get_board("virtual"), get_board("nano33ble")
    assert (virtual.flash_bytes, virtual.ram_bytes) == (nano.flash_bytes, nano.ram_bytes)
    from tinydeploy.runners import runner_class

    emulated = {b.name: runner_class(b.upload_runner).caps.emulated for b in (virtual, nano)}
    assert emulated["virtual"] and not emulated["nano33ble"]


def _write_profile(tmp_path: Path, text: str, name="myboard") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


GOOD = (PROFILE_DIR / "nano33ble.toml").read_text().replace('name = "nano33ble"', 'name = "myboard"')


def test_a_good_copy_loads(tmp_path):
    assert load_board_file(_write_profile(tmp_path, GOOD)).name == "myboard"


@pytest.mark.parametrize("broken, field", [
    (GOOD.replace("ram_bytes = 262_144\n", ""), "ram_bytes"),
    (GOOD.replace("clock_hz = 64_000_000", 'clock_hz = "fast"'), "clock_hz"),
    (GOOD.replace('sketch = "2341:805A"', 'sketch = "2341-805A"'), "usb.sketch"),
    (GOOD.replace('board = "nano33ble"', 'board = ""'), "platformio.board"),
    (GOOD.replace('default_engine = "tflm"', 'default_engine = "onnx"'), "default_engine"),
    (GOOD.replace('method = "sam-ba"', 'method = "usbasp"'), "upload.method"),
    (GOOD.replace('runner = "platformio"', 'runner = "arduino-cli"'), "upload.runner"),
])
def test_a_bad_profile_names_the_file_and_the_field(tmp_path, broken, field):
    with pytest.raises(TinydeployError) as info:
        load_board_file(_write_profile(tmp_path, broken))
    assert "myboard.toml" in info.value.message and f"'{field}'" in info.value.message


def test_upload_method_is_platformios_protocol_name(tmp_path):
    """The profile's method goes into platformio.ini as upload_protocol unchanged: the tool's name is refused."""
    with pytest.raises(TinydeployError) as info:
        load_board_file(_write_profile(tmp_path, GOOD.replace('method = "sam-ba"', 'method = "bossac"')))
    assert "'sam-ba'" in info.value.one_line()
    assert all(board.upload_method != "bossac" for board in all_boards().values())


def test_invalid_toml_names_the_file(tmp_path):
    with pytest.raises(TinydeployError, match="myboard.toml is not valid TOML"):
        load_board_file(_write_profile(tmp_path, "name = [unclosed"))


def test_boards_command_lists_every_board():
    result = run_cli("boards")
    assert result.returncode == 0
    for name in all_boards():
        assert name in result.stdout
    listed = json.loads(run_cli("boards", "--json").stdout)
    assert listed["nano33ble"]["ram_bytes"] == 262_144


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(TinydeployError) as info:
        get_board("uno")
    assert "unknown board 'uno'" in info.value.one_line()
    assert "nano33ble" in info.value.one_line() and "virtual" in info.value.one_line()
