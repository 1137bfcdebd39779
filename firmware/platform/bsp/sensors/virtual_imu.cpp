// The virtual IMU (td_virtual_imu.h) behind both IMU stand-ins: samples from the sensor feed at the chip's rate.
#include <Wire.h>

#include "td_sensor_link.h"
#include "td_virtual_imu.h"

int TdVirtualImu::begin(TwoWire &wire)
{
    // The libraries check the chips' identity registers; so does this, through the same bus.
    static const uint8_t lsm9ds1[][3] = {{0x6B, 0x0F, 0x68}, {0x1E, 0x0F, 0x3D}};
    static const uint8_t bmi270[][3] = {{0x68, 0x00, 0x24}, {0x10, 0x40, 0x32}};
    const uint8_t (*ids)[3] = revision_ == 1 ? lsm9ds1 : bmi270;
    wire.begin();
    for (int i = 0; i < 2; i++) {
        wire.beginTransmission(ids[i][0]);
        wire.write(ids[i][1]);
        if (wire.endTransmission(false) != 0 || wire.requestFrom(ids[i][0], (size_t)1) != 1 ||
            wire.read() != ids[i][2]) {
            return 0;
        }
    }
    begun_ = true;
    motion_ended_ = magnet_ended_ = false;
    accel_fresh_ = gyro_fresh_ = magnet_fresh_ = false;
    motion_us_ = magnet_us_ = micros();
    return 1;
}

bool TdVirtualImu::fetchMotion()
{
    if (!begun_ || motion_ended_) {
        return false;
    }
    uint32_t received = 0;
    int status = td_sensor_request(TD_SENSOR_MOTION, 1, 0, motion_, sizeof(motion_), &received);
    if (status != TD_LINK_OK) {
        motion_ended_ = true;  // a cut stream stays cut, as a chip that stopped answering
    }
    if (status != TD_LINK_OK || received != sizeof(motion_)) {
        return false;
    }
    accel_fresh_ = gyro_fresh_ = true;
    return true;
}

bool TdVirtualImu::fetchMagnet()
{
    if (!begun_ || magnet_ended_) {
        return false;
    }
    uint32_t received = 0;
    int status = td_sensor_request(TD_SENSOR_MAGNET, 1, 0, magnet_, sizeof(magnet_), &received);
    if (status != TD_LINK_OK) {
        magnet_ended_ = true;
    }
    if (status != TD_LINK_OK || received != sizeof(magnet_)) {
        return false;
    }
    magnet_fresh_ = true;
    return true;
}

int TdVirtualImu::motionAvailable(bool gyro)
{
    bool &fresh = gyro ? gyro_fresh_ : accel_fresh_;
    if (fresh) {
        return 1;
    }
    // A new sample every 1/rate seconds of board time, as the chip's data-ready flag.
    uint32_t period_us = (uint32_t)(1e6f / motionRate());
    if ((uint32_t)(micros() - motion_us_) < period_us) {
        return 0;
    }
    if (!fetchMotion()) {
        return 0;
    }
    motion_us_ += period_us;
    if ((uint32_t)(micros() - motion_us_) >= period_us) {
        motion_us_ = micros();  // the sketch fell behind: samples in between are lost, as in the chip
    }
    return 1;
}

int TdVirtualImu::readMotion(bool gyro, int16_t raw[3])
{
    bool &fresh = gyro ? gyro_fresh_ : accel_fresh_;
    if (!begun_) {
        return 0;
    }
    if (!fresh && !motion_ended_) {
        (void)motionAvailable(gyro);  // reading without data-ready gives the latest sample, as the chip does
    }
    for (int i = 0; i < 3; i++) {
        raw[i] = motion_[(gyro ? 3 : 0) + i];
    }
    fresh = false;
    return 1;
}

int TdVirtualImu::magnetAvailable()
{
    if (magnet_fresh_) {
        return 1;
    }
    uint32_t period_us = (uint32_t)(1e6f / magnetRate());
    if ((uint32_t)(micros() - magnet_us_) < period_us || !fetchMagnet()) {
        return 0;
    }
    magnet_us_ = micros();
    return 1;
}

int TdVirtualImu::readMagnet(int16_t raw[3])
{
    if (!begun_) {
        return 0;
    }
    if (!magnet_fresh_ && !magnet_ended_) {
        (void)magnetAvailable();
    }
    for (int i = 0; i < 3; i++) {
        raw[i] = magnet_[i];
    }
    magnet_fresh_ = false;
    return 1;
}
