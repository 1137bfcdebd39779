// The two IMU stand-ins over the virtual IMU (td_virtual_imu.h), each converting raw counts with its library's
// formula, so a sketch gets the values (and the float rounding) the library would give it.
#include "td_bmi270_bmm150.h"
#include "td_lsm9ds1.h"

namespace {

int no_reading(float &x, float &y, float &z)
{
    x = y = z = NAN;  // the libraries' answer when the chip does not respond
    return 0;
}

}  // namespace

// ---- Arduino_LSM9DS1 (Rev1) ---------------------------------------------------------------------------------------

int LSM9DS1Class::begin() { return imu_.begin(*wire_); }
void LSM9DS1Class::end() { imu_.end(); }

int LSM9DS1Class::readAcceleration(float &x, float &y, float &z)
{
    int16_t raw[3];
    if (!imu_.readMotion(false, raw)) {
        return no_reading(x, y, z);
    }
    x = raw[0] * 4.0 / 32768.0;
    y = raw[1] * 4.0 / 32768.0;
    z = raw[2] * 4.0 / 32768.0;
    return 1;
}

int LSM9DS1Class::accelerationAvailable() { return imu_.motionAvailable(false); }
float LSM9DS1Class::accelerationSampleRate() { return imu_.motionRate(); }

int LSM9DS1Class::readGyroscope(float &x, float &y, float &z)
{
    int16_t raw[3];
    if (!imu_.readMotion(true, raw)) {
        return no_reading(x, y, z);
    }
    x = raw[0] * 2000.0 / 32768.0;
    y = raw[1] * 2000.0 / 32768.0;
    z = raw[2] * 2000.0 / 32768.0;
    return 1;
}

int LSM9DS1Class::gyroscopeAvailable() { return imu_.motionAvailable(true); }
float LSM9DS1Class::gyroscopeSampleRate() { return imu_.motionRate(); }

int LSM9DS1Class::readMagneticField(float &x, float &y, float &z)
{
    int16_t raw[3];
    if (!imu_.readMagnet(raw)) {
        return no_reading(x, y, z);
    }
    x = raw[0] * 4.0 * 100.0 / 32768.0;
    y = raw[1] * 4.0 * 100.0 / 32768.0;
    z = raw[2] * 4.0 * 100.0 / 32768.0;
    return 1;
}

int LSM9DS1Class::magneticFieldAvailable() { return imu_.magnetAvailable(); }
float LSM9DS1Class::magneticFieldSampleRate() { return imu_.magnetRate(); }

// ---- Arduino_BMI270_BMM150 (Rev2): the chip's axes turned into the board's, as the library does on the Nano -------

#define TD_INT16_TO_G (8192.0f)
#define TD_INT16_TO_DPS (16.384f)

int BoschSensorClass::begin() { return imu_.begin(*wire_); }
void BoschSensorClass::end() { imu_.end(); }

int BoschSensorClass::readAcceleration(float &x, float &y, float &z)
{
    int16_t raw[3];
    if (!imu_.readMotion(false, raw)) {
        return no_reading(x, y, z);
    }
    x = -raw[1] / TD_INT16_TO_G;
    y = -raw[0] / TD_INT16_TO_G;
    z = raw[2] / TD_INT16_TO_G;
    return 1;
}

int BoschSensorClass::accelerationAvailable() { return imu_.motionAvailable(false); }
float BoschSensorClass::accelerationSampleRate() { return imu_.motionRate(); }

int BoschSensorClass::readGyroscope(float &x, float &y, float &z)
{
    int16_t raw[3];
    if (!imu_.readMotion(true, raw)) {
        return no_reading(x, y, z);
    }
    x = -raw[1] / TD_INT16_TO_DPS;
    y = -raw[0] / TD_INT16_TO_DPS;
    z = raw[2] / TD_INT16_TO_DPS;
    return 1;
}

int BoschSensorClass::gyroscopeAvailable() { return imu_.motionAvailable(true); }
float BoschSensorClass::gyroscopeSampleRate() { return imu_.motionRate(); }

int BoschSensorClass::readMagneticField(float &x, float &y, float &z)
{
    int16_t raw[3];
    if (!imu_.readMagnet(raw)) {
        return no_reading(x, y, z);
    }
    x = raw[0];
    y = raw[1];
    z = raw[2];
    return 1;
}

int BoschSensorClass::magneticFieldAvailable() { return imu_.magnetAvailable(); }
float BoschSensorClass::magneticFieldSampleRate() { return imu_.magnetRate(); }
