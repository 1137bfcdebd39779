"""Sensors for the virtual board: the host end of its sensor link (feed.py), the data it serves (sources.py:
a kit at rest, or a recording), and the stimulus file format (stimulus.py).

The virtual board's sensor libraries (firmware/platform/bsp: PDM.h, Arduino_LSM9DS1.h, Arduino_BMI270_BMM150.h,
Arduino_OV767X.h, Wire.h) ask the host for data over a second UART; everything they return is simulated and is
reported as such.
"""

from tinydeploy.sensors.feed import SensorFeed
from tinydeploy.sensors.sources import KitAtRest, SensorSource

__all__ = ["KitAtRest", "SensorFeed", "SensorSource"]
