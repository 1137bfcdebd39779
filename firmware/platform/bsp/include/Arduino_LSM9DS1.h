/* Stand-in for the Arduino_LSM9DS1 library (the Nano 33 BLE Sense Rev1's IMU) on the virtual board: the same class,
 * calls and units, data from the sensor feed (td_virtual_imu.h). begin() reads the chip's WHO_AM_I registers over
 * Wire1 as the library does, so it fails on a virtual Rev2 kit. Conversions are the library's: acceleration
 * raw * 4 / 32768 g, rotation raw * 2000 / 32768 dps, magnetic field raw * 400 / 32768 uT. */
#ifndef TD_ARDUINO_LSM9DS1_H
#define TD_ARDUINO_LSM9DS1_H

#include "td_lsm9ds1.h"

/* Defined in the header (a C++17 inline variable): only a sketch that includes it has the object, so the two IMU
 * stand-ins never clash (the real libraries cannot be linked together either: both define IMU). */
inline LSM9DS1Class IMU(Wire1);

#endif /* TD_ARDUINO_LSM9DS1_H */
