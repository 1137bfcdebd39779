"""Hardware-in-the-loop building blocks shared by the pytest plugin and `tinydeploy lab check`: build a
firmware once, start it on a target (virtual board or USB board), run, time and read RAM over serial."""

from tinydeploy.hil.device import (BenchResult, Device, Firmware, LatencyStats, RamUsage, SerialTarget, Target,
                                   VirtualTarget, build_firmware)

__all__ = ["BenchResult", "Device", "Firmware", "LatencyStats", "RamUsage", "SerialTarget", "Target",
           "VirtualTarget", "build_firmware"]
