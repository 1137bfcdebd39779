/* The class of the Arduino_LSM9DS1.h stand-in (that header defines the `IMU` object); internal to the
 * board-support layer. */
#ifndef TD_LSM9DS1_H
#define TD_LSM9DS1_H

#include <Arduino.h>
#include <Wire.h>

#include "td_virtual_imu.h"

class LSM9DS1Class {
public:
    explicit LSM9DS1Class(TwoWire &wire) : wire_(&wire) {}
    virtual ~LSM9DS1Class() {}

    int begin();
    void end();
    void setContinuousMode() {}
    void setOneShotMode() {}

    virtual int readAcceleration(float &x, float &y, float &z);
    virtual int accelerationAvailable();
    virtual float accelerationSampleRate();
    virtual int readGyroscope(float &x, float &y, float &z);
    virtual int gyroscopeAvailable();
    virtual float gyroscopeSampleRate();
    virtual int readMagneticField(float &x, float &y, float &z);
    virtual int magneticFieldAvailable();
    virtual float magneticFieldSampleRate();

private:
    TwoWire *wire_;
    TdVirtualImu imu_{1};
};

#endif /* TD_LSM9DS1_H */
