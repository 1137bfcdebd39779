"""The host side of the serial protocol (docs/protocol.md): framing as pure functions, and DeviceLink."""

from tinydeploy.link.device import DeviceInfo, DeviceLink, RamReport
from tinydeploy.link.framing import CorruptLine, FrameError, NoiseLine, Reply, encode_command, parse_reply

__all__ = ["CorruptLine", "DeviceInfo", "DeviceLink", "FrameError", "NoiseLine", "RamReport", "Reply",
           "encode_command", "parse_reply"]
