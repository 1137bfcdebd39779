/* The class of the Arduino_BMI270_BMM150.h stand-in (that header defines the `IMU` object); internal to the
 * board-support layer. */
#ifndef TD_BMI270_BMM150_H
#define TD_BMI270_BMM150_H

#include <Arduino.h>
#include <Wire.h>

#include "td_virtual_imu.h"

class BoschSensorClass {
public:
    explicit BoschSensorClass(TwoWire &wire = Wire) : wire_(&wire) {}
    ~BoschSensorClass() {}

    int begin();
    void end();
    void setContinuousMode() {}
    void oneShotMode() {}

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
    TdVirtualImu imu_{2};
};

#endif /* TD_BMI270_BMM150_H */
