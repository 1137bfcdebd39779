/* Stand-in for the Arduino_BMI270_BMM150 library (the Nano 33 BLE Sense Rev2's IMU) on the virtual board: the same
 * class, calls and units, data from the sensor feed (td_virtual_imu.h). begin() reads the chips' ID registers over
 * Wire1, so it fails on a virtual Rev1 kit. Conversions are the library's on the Nano 33 BLE: x = -raw_y / 8192 g,
 * y = -raw_x / 8192 g, z = raw_z / 8192 g (gyroscope: / 16.384 dps), magnetic field in whole uT. */
#ifndef TD_ARDUINO_BMI270_BMM150_H
#define TD_ARDUINO_BMI270_BMM150_H

#include "td_bmi270_bmm150.h"

/* Defined in the header (a C++17 inline variable): only a sketch that includes it has the object, so the two IMU
 * stand-ins never clash (the real libraries cannot be linked together either: both define IMU). */
inline BoschSensorClass IMU(Wire1);

#endif /* TD_ARDUINO_BMI270_BMM150_H */
