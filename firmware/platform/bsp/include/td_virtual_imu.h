/* The virtual IMU behind the Arduino_LSM9DS1 and Arduino_BMI270_BMM150 stand-ins: samples come from the sensor feed
 * at the chip's rate (virtual time) as raw counts in the chip's axes, and each stand-in converts them with its
 * library's own formula. Internal to the board-support layer. */
#ifndef TD_VIRTUAL_IMU_H
#define TD_VIRTUAL_IMU_H

#include <Arduino.h>

class TwoWire;

class TdVirtualImu {
public:
    /* revision: 1 = LSM9DS1 (119 Hz, magnetometer 20 Hz), 2 = BMI270 + BMM150 (99.84 Hz, 10 Hz) */
    explicit constexpr TdVirtualImu(int revision) : revision_(revision) {}
    int begin(TwoWire &wire);
    void end() { begun_ = false; }
    int motionAvailable(bool gyro);
    int readMotion(bool gyro, int16_t raw[3]);
    int magnetAvailable();
    int readMagnet(int16_t raw[3]);
    float motionRate() const { return revision_ == 1 ? 119.0f : 99.84f; }
    float magnetRate() const { return revision_ == 1 ? 20.0f : 10.0f; }

private:
    bool fetchMotion();
    bool fetchMagnet();

    int revision_;
    bool begun_ = false;
    bool motion_ended_ = false;
    bool magnet_ended_ = false;
    bool accel_fresh_ = false;
    bool gyro_fresh_ = false;
    bool magnet_fresh_ = false;
    uint32_t motion_us_ = 0;
    uint32_t magnet_us_ = 0;
    int16_t motion_[6] = {};
    int16_t magnet_[3] = {};
};

#endif /* TD_VIRTUAL_IMU_H */
