"""The sine self-test firmware (tinydeploy.hil.models, no TensorFlow) built once per test session for the
virtual board, with host TFLM's outputs for every possible input byte: shared by the robustness and load tests."""

from __future__ import annotations

from dataclasses import dataclass

_built: dict[str, SineFirmware] = {}


@dataclass(frozen=True)
class SineFirmware:
    firmware: object  # tinydeploy.flow.Firmware
    expected: dict[bytes, bytes]  # every 1-byte input -> host TFLM's 1-byte output

    @property
    def elf_path(self):
        return self.firmware.elf_path


def sine_firmware(tmp_path_factory) -> SineFirmware:
    """Build on first use in this session (~3 s; the PlatformIO core dir is shared), then reuse."""
    if "sine" not in _built:
        from tinydeploy.boards import get_board
        from tinydeploy.golden import tflm_outputs
        from tinydeploy.flow import build_firmware
        from tinydeploy.hil.models import sine_model

        model = sine_model()
        firmware = build_firmware(model, get_board("virtual"), "native", tmp_path_factory.mktemp("sine-firmware"))
        inputs = [bytes([value]) for value in range(256)]
        _built["sine"] = SineFirmware(firmware, dict(zip(inputs, tflm_outputs(model, inputs))))
    return _built["sine"]
