"""Hardware-in-the-loop building blocks for the pytest plugin and `tinydeploy lab check`: they are the pipeline's
(tinydeploy.flow: build a firmware once, start it with the board's runner, run, time and read RAM over serial);
hil/models.py holds the small models tinydeploy builds itself."""

from tinydeploy.flow import BenchResult, Device, Firmware, LatencyStats, RamUsage, build_firmware

__all__ = ["BenchResult", "Device", "Firmware", "LatencyStats", "RamUsage", "build_firmware"]
