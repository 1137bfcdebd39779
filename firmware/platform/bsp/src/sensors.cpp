// The sensor libraries' stand-ins on the virtual board (Wire.h, Arduino_LSM9DS1.h, Arduino_BMI270_BMM150.h, PDM.h,
// Arduino_OV767X.h, digitalRead): the Arduino API sketches use on a Nano 33 BLE Sense, fed by the host through the
// sensor link (td_sensor_link.h). What is simulated and how is in firmware/platform/README.md ("Sensors").
#include <Arduino.h>
#include <Arduino_OV767X.h>
#include <PDM.h>
#include <Wire.h>

#include "td_sensor_link.h"
#include "td_virtual.h"
#include "td_virtual_imu.h"

// The stand-ins' class definitions live in headers that cannot all be included in one file (both IMU headers
// define IMU), so the two IMU classes are defined in imu_lsm9ds1.cpp and imu_bmi270.cpp.

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

// ---- the IMU ----------------------------------------------------------------------------------------------------

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

// ---- the microphone ---------------------------------------------------------------------------------------------

namespace {

constexpr uint32_t kPdmMaxBuffer = 4096;
uint8_t pdm_buffers[2][kPdmMaxBuffer];

void pdm_tick(uint32_t millis) { PDM.tick(millis); }

uint32_t irq_save()
{
    uint32_t primask;
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

void irq_restore(uint32_t primask) { __asm volatile("msr primask, %0" ::"r"(primask) : "memory"); }

}  // namespace

PDMClass::PDMClass(int dinPin, int clkPin, int pwrPin) { (void)dinPin, (void)clkPin, (void)pwrPin; }

PDMClass::~PDMClass() {}

int PDMClass::begin(int channels, int sampleRate)
{
    // The nRF52840 library takes 16000 or 41667 Hz; the virtual microphone is mono.
    if (channels != 1 || (sampleRate != 16000 && sampleRate != 41667)) {
        return 0;
    }
    channels_ = channels;
    sample_rate_ = sampleRate;
    if (gain_ == -1) {
        gain_ = 20;
    }
    uint32_t primask = irq_save();
    ready_bytes_ = read_position_ = 0;
    ended_ = false;
    filling_ = 0;
    next_due_ms_ = millis() + buffer_bytes_ / 2u * 1000u / (uint32_t)sampleRate;
    running_ = true;
    irq_restore(primask);
    td_sensor_set_tick(pdm_tick);
    return 1;
}

void PDMClass::end()
{
    uint32_t primask = irq_save();
    running_ = false;
    ready_bytes_ = read_position_ = 0;
    irq_restore(primask);
    td_sensor_set_tick(nullptr);
}

int PDMClass::available()
{
    uint32_t primask = irq_save();
    int count = (int)(ready_bytes_ - read_position_);
    irq_restore(primask);
    return count;
}

int PDMClass::read(void *buffer, size_t size)
{
    uint32_t primask = irq_save();
    uint32_t count = ready_bytes_ - read_position_;
    if (count > size) {
        count = (uint32_t)size;
    }
    memcpy(buffer, &pdm_buffers[filling_ ^ 1u][read_position_], count);
    read_position_ += count;
    irq_restore(primask);
    return (int)count;
}

void PDMClass::onReceive(void (*function)(void)) { on_receive_ = function; }

void PDMClass::setGain(int gain) { gain_ = gain; }

void PDMClass::setBufferSize(int bufferSize)
{
    if (bufferSize >= 2 && (uint32_t)bufferSize <= kPdmMaxBuffer) {
        buffer_bytes_ = (uint32_t)bufferSize & ~1u;
    }
}

void PDMClass::tick(uint32_t millis)
{
    // One block a buffer's duration apart (as the PDM's DMA fills one), in the tick interrupt as the nRF52840's
    // PDM interrupt; the next waits until the last was read (no overruns here, see PDM.h).
    if (!running_ || ended_ || read_position_ < ready_bytes_ || (int32_t)(millis - next_due_ms_) < 0) {
        return;
    }
    uint32_t block_ms = buffer_bytes_ / 2u * 1000u / (uint32_t)sample_rate_;
    next_due_ms_ = (int32_t)(millis - next_due_ms_) > (int32_t)block_ms ? millis + block_ms : next_due_ms_ + block_ms;
    uint32_t received = 0;
    int status = td_sensor_request(TD_SENSOR_AUDIO, (uint16_t)(buffer_bytes_ / 2u), (uint16_t)sample_rate_,
                                   pdm_buffers[filling_], buffer_bytes_, &received);
    if (status != TD_LINK_OK || received == 0) {
        ended_ = true;  // the recording is over, the stream was cut, or no feed: no more callbacks
        return;
    }
    filling_ ^= 1u;  // the filled buffer becomes the one to read
    ready_bytes_ = received & ~1u;
    read_position_ = 0;
    if (on_receive_ != nullptr) {
        on_receive_();
    }
}

PDMClass PDM(0, 0, -1);

// ---- the camera -------------------------------------------------------------------------------------------------

OV767X Camera;

int OV767X::begin(int resolution, int format, int fps)
{
    static const int sizes[][2] = {{640, 480}, {352, 240}, {320, 240}, {176, 144}, {160, 120}};
    if (resolution < VGA || resolution > QQVGA ||
        (format != YUV422 && format != RGB444 && format != RGB565 && format != GRAYSCALE) ||
        (fps != 1 && fps != 5 && fps != 10 && fps != 15 && fps != 30)) {
        return 0;
    }
    Wire.begin();
    Wire.beginTransmission(0x21);
    Wire.write(0x0A);  // PID, as the library checks
    if (Wire.endTransmission() != 0 || Wire.requestFrom((uint8_t)0x21, (size_t)1) != 1 || Wire.read() != 0x76) {
        return 0;
    }
    resolution_ = resolution;
    format_ = format;
    width_ = sizes[resolution][0];
    height_ = sizes[resolution][1];
    bytes_per_pixel_ = format == GRAYSCALE ? 1 : 2;
    begun_ = true;
    return 1;
}

void OV767X::readFrame(void *buffer)
{
    if (!begun_ || buffer == nullptr) {
        return;
    }
    uint32_t bytes = (uint32_t)width_ * (uint32_t)height_ * (uint32_t)bytes_per_pixel_;
    uint16_t arg = (uint16_t)((resolution_ << 8) | format_ | (test_pattern_ ? 0x8000 : 0));
    (void)td_sensor_request(TD_SENSOR_FRAME, 0, arg, buffer, bytes, nullptr);
}

// ---- digital pins: the shield's button --------------------------------------------------------------------------

namespace {
uint8_t pin_modes[32];
uint8_t pin_levels[32];
}  // namespace

extern "C" {

void pinMode(uint8_t pin, uint8_t mode)
{
    if (pin < sizeof(pin_modes)) {
        pin_modes[pin] = mode;
        if (mode == INPUT_PULLUP) {
            pin_levels[pin] = HIGH;
        }
    }
}

void digitalWrite(uint8_t pin, uint8_t value)
{
    if (pin < sizeof(pin_levels)) {
        pin_levels[pin] = value ? HIGH : LOW;
    }
}

int digitalRead(uint8_t pin)
{
    if (pin >= sizeof(pin_levels)) {
        return LOW;
    }
    if (pin == TD_VIRTUAL_BUTTON_PIN && pin_modes[pin] != OUTPUT &&
        (td_sensor_kit_info()->parts & TD_PART_BUTTON) != 0) {
        uint8_t pressed = 0;
        uint32_t received = 0;
        if (td_sensor_request(TD_SENSOR_BUTTON, 0, 0, &pressed, 1, &received) == TD_LINK_OK &&
            received == 1) {
            return pressed ? LOW : HIGH;  // the button pulls the line low
        }
        return HIGH;
    }
    return pin_levels[pin];
}

}  // extern "C"
