// Wire stand-in of the virtual board (Wire.h): which chips answer on the kit's two I2C buses, and their identity
// registers. The chips present follow the virtual kit the sensor feed describes.
#include <Wire.h>

#include "td_sensor_link.h"

namespace {

// ---- I2C: which chips answer, and their identity registers ----------------------------------------------------

struct ChipRegister {
    uint8_t bus;
    uint8_t address;
    uint8_t part;  // TD_PART_* that must be present
    uint8_t revision;  // 0: either
    uint8_t reg;
    uint8_t value;
};

constexpr ChipRegister kChips[] = {
    {1, 0x6B, TD_PART_IMU, 1, 0x0F, 0x68},    // LSM9DS1 accelerometer/gyroscope WHO_AM_I
    {1, 0x1E, TD_PART_MAGNET, 1, 0x0F, 0x3D}, // LSM9DS1 magnetometer WHO_AM_I
    {1, 0x68, TD_PART_IMU, 2, 0x00, 0x24},    // BMI270 CHIP_ID
    {1, 0x10, TD_PART_MAGNET, 2, 0x40, 0x32}, // BMM150 CHIP_ID
    {0, 0x21, TD_PART_CAMERA, 0, 0x0A, 0x76}, // OV7675 PID (SCCB)
};

bool chip_present(uint8_t bus, uint8_t address)
{
    const td_sensor_kit *kit = td_sensor_kit_info();
    for (const ChipRegister &chip : kChips) {
        if (chip.bus == bus && chip.address == address && (kit->parts & chip.part) != 0 &&
            (chip.revision == 0 || chip.revision == kit->revision)) {
            return true;
        }
    }
    return false;
}

uint8_t chip_register(uint8_t bus, uint8_t address, uint8_t reg)
{
    for (const ChipRegister &chip : kChips) {
        if (chip.bus == bus && chip.address == address && chip.reg == reg) {
            return chip.value;
        }
    }
    return 0;
}

}  // namespace

TwoWire Wire(0);
TwoWire Wire1(1);

void TwoWire::beginTransmission(uint8_t address)
{
    address_ = address;
    tx_count_ = 0;
}

size_t TwoWire::write(uint8_t data)
{
    if (tx_count_ == 0) {
        register_ = (uint8_t)(data & 0x7Fu);  // LSM9DS1 sets bit 7 for auto-increment
    }
    tx_count_++;
    return 1;
}

size_t TwoWire::write(const uint8_t *data, int len)
{
    for (int i = 0; i < len; i++) {
        write(data[i]);
    }
    return len > 0 ? (size_t)len : 0u;
}

uint8_t TwoWire::endTransmission(bool stopBit)
{
    (void)stopBit;
    return begun_ && chip_present(bus_, address_) ? 0 : 2;  // 2: the address was not acknowledged
}

size_t TwoWire::requestFrom(uint8_t address, size_t len, bool stopBit)
{
    (void)stopBit;
    rx_length_ = rx_position_ = 0;
    if (!begun_ || !chip_present(bus_, address) || len > sizeof(rx_)) {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        rx_[i] = chip_register(bus_, address, (uint8_t)(register_ + i));
    }
    rx_length_ = len;
    return len;
}
