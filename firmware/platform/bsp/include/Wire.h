/* Stand-in for the Arduino core's Wire library on the virtual board: the two I2C buses of a Nano 33 BLE Sense on
 * the TinyML shield, with only the identity registers of the chips on them (the IMU on Wire1, the camera's SCCB
 * port on Wire). The chips present follow the virtual kit the sensor feed describes (Rev1: LSM9DS1 at 0x6B/0x1E;
 * Rev2: BMI270 at 0x68, BMM150 at 0x10; the OV7675 at 0x21). Sensor data do not travel over this bus: the sensor
 * library stand-ins get them from the feed directly. Same calls and signatures as the mbed core's MbedI2C. */
#ifndef TD_WIRE_H
#define TD_WIRE_H

#include <Arduino.h>

class TwoWire {
public:
    explicit constexpr TwoWire(uint8_t bus) : bus_(bus) {}
    void begin() { begun_ = true; }
    void begin(uint8_t address) { (void)address; begun_ = true; }
    void end() { begun_ = false; }
    void setClock(uint32_t frequency) { (void)frequency; }

    void beginTransmission(uint8_t address);
    uint8_t endTransmission(bool stopBit);
    uint8_t endTransmission(void) { return endTransmission(true); }
    size_t requestFrom(uint8_t address, size_t len, bool stopBit);
    size_t requestFrom(uint8_t address, size_t len) { return requestFrom(address, len, true); }
    size_t write(uint8_t data);
    size_t write(const uint8_t *data, int len);
    int available() { return (int)(rx_length_ - rx_position_); }
    int read() { return rx_position_ < rx_length_ ? rx_[rx_position_++] : -1; }
    int peek() { return rx_position_ < rx_length_ ? rx_[rx_position_] : -1; }
    void flush() {}

private:
    uint8_t bus_;
    bool begun_ = false;
    uint8_t address_ = 0;
    uint8_t tx_count_ = 0;
    uint8_t register_ = 0;
    uint8_t rx_[32] = {};
    size_t rx_length_ = 0;
    size_t rx_position_ = 0;
};

extern TwoWire Wire;
extern TwoWire Wire1;

#endif /* TD_WIRE_H */
