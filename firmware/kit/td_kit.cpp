// The kit self-test's sensor driver (td_sensors.h's table), written against the Arduino libraries a TinyML course
// uses on the Nano 33 BLE Sense: Arduino_LSM9DS1 (Rev1) or Arduino_BMI270_BMM150 (Rev2), PDM from the mbed core,
// Arduino_OV767X for the shield's camera, Wire for the revision probe. The same source builds for the virtual
// board, whose board-support layer has stand-ins with the same API fed by the host (firmware/platform/README.md).
// Settings (revision, button pin, camera mode, the model input's sensor) come from td_kit_config.h, generated from
// the kit profile (tinydeploy/kits/*.toml).
#include <Arduino.h>
#include <Arduino_OV767X.h>
#include <PDM.h>
#include <Wire.h>

#include "td_kit.h"
#include "td_kit_config.h"

// The two IMU libraries both define `IMU`, so a firmware has one of them: the kit check flashes the firmware of
// the revision the board shows (`sensors` reports it before the IMU is used).
#if TD_KIT_REVISION == 1
#include <Arduino_LSM9DS1.h>
#else
#include <Arduino_BMI270_BMM150.h>
#endif

#if defined(ARDUINO_ARCH_MBED) && !defined(ARDUINO_TINYDEPLOY_VIRTUAL)
#include <pinDefinitions.h>
#define TD_KIT_NRF_BUTTON 1
#endif

namespace {

#if TD_KIT_MIC_CAPTURE_SAMPLES > 0 || TD_INPUT_SENSOR == TD_INPUT_MIC
int16_t mic_block[256];  // one PDM read
#endif
#if TD_KIT_MIC_CAPTURE_SAMPLES > 0
static_assert(TD_KIT_MIC_CAPTURE_SAMPLES >= TD_SENSORS_MAX_MIC_SAMPLES, "the `mic` command's largest capture");
int16_t mic_samples[TD_KIT_MIC_CAPTURE_SAMPLES];
volatile uint32_t mic_count;
volatile uint32_t mic_skip;
volatile uint32_t mic_wanted;
#endif

#if TD_KIT_FRAME_BYTES > 0
static_assert(TD_KIT_FRAME_BYTES == TD_KIT_CAMERA_WIDTH * TD_KIT_CAMERA_HEIGHT * TD_KIT_CAMERA_BYTES_PER_PIXEL,
              "one frame of the kit's camera mode");
uint8_t camera_frame[TD_KIT_FRAME_BYTES];
int camera_state;  // 0: not started, 1: started, -1: failed
#endif
int imu_state;
bool button_ready;

uint32_t kit_millis(void) { return millis(); }
void kit_sleep(uint32_t ms) { delay(ms); }

// Reads register `reg` of the I2C device at `address` on the sensor bus; -1 when nothing answers.
int read_register(TwoWire &bus, uint8_t address, uint8_t reg)
{
    bus.beginTransmission(address);
    bus.write(reg);
    if (bus.endTransmission(false) != 0 || bus.requestFrom(address, (size_t)1) != 1) {
        return -1;
    }
    return bus.read();
}

uint32_t probe_revision(void)
{
    // The IMU's identity register tells the revisions apart: LSM9DS1 (Rev1) or BMI270 (Rev2), on Wire1.
    Wire1.begin();
    if (read_register(Wire1, TD_KIT_REV2_ADDRESS, TD_KIT_REV2_REGISTER) == TD_KIT_REV2_VALUE) {
        return 2;
    }
    if (read_register(Wire1, TD_KIT_REV1_ADDRESS, TD_KIT_REV1_REGISTER) == TD_KIT_REV1_VALUE) {
        return 1;
    }
    return 0;
}

int imu_begin(void)
{
    if (imu_state == 0) {
        imu_state = IMU.begin() ? 1 : -1;
    }
    return imu_state == 1;
}

// Waits (sleeping a millisecond at a time) until ready() or timeout_ms.
template <typename Ready> bool wait_for(Ready ready, uint32_t timeout_ms)
{
    uint32_t start = millis();
    while (!ready()) {
        if ((uint32_t)(millis() - start) >= timeout_ms) {
            return false;
        }
        delay(1);
    }
    return true;
}

int imu_read(float accel[3], float gyro[3], uint32_t timeout_ms)
{
    if (!wait_for([] { return IMU.accelerationAvailable() != 0; }, timeout_ms) ||
        !IMU.readAcceleration(accel[0], accel[1], accel[2])) {
        return 0;
    }
    if (!wait_for([] { return IMU.gyroscopeAvailable() != 0; }, timeout_ms) ||
        !IMU.readGyroscope(gyro[0], gyro[1], gyro[2])) {
        return 0;
    }
    return 1;
}

int magnet_read(float field[3], uint32_t timeout_ms)
{
    return imu_begin() && wait_for([] { return IMU.magneticFieldAvailable() != 0; }, timeout_ms) &&
           IMU.readMagneticField(field[0], field[1], field[2]);
}

#if TD_KIT_MIC_CAPTURE_SAMPLES > 0
// PDM's interrupt: drain the block (the nRF52840's PDM stops if a block is left unread), keep what is wanted.
void on_mic_block(void)
{
    int bytes = PDM.available();
    while (bytes > 0) {
        int got = PDM.read(mic_block, sizeof(mic_block));
        if (got <= 0) {
            break;
        }
        bytes -= got;
        for (int i = 0; i < got / 2; i++) {
            if (mic_skip > 0) {
                mic_skip = mic_skip - 1;
            } else if (mic_count < mic_wanted) {
                mic_samples[mic_count] = mic_block[i];
                mic_count = mic_count + 1;
            }
        }
    }
}
#endif

int32_t mic_capture(uint32_t count, uint32_t skip, uint32_t timeout_ms, const int16_t **samples, uint32_t *rate_hz)
{
#if TD_KIT_MIC_CAPTURE_SAMPLES == 0
    (void)count, (void)skip, (void)timeout_ms, (void)samples, (void)rate_hz;
    return -1;  // a replay firmware's microphone feeds the model only
#else
    mic_count = 0;
    mic_skip = skip;
    mic_wanted = count;
    PDM.onReceive(on_mic_block);
    if (!PDM.begin(1, TD_KIT_MIC_RATE_HZ)) {
        return -1;
    }
    (void)wait_for([] { return mic_count >= mic_wanted; }, timeout_ms);
    PDM.end();
    *samples = mic_samples;
    *rate_hz = TD_KIT_MIC_RATE_HZ;
    return (int32_t)mic_count;
#endif
}

int camera_capture(const uint8_t **frame, uint32_t *width, uint32_t *height, uint32_t *bytes_per_pixel,
                   const char **format)
{
#if TD_KIT_FRAME_BYTES == 0
    (void)frame, (void)width, (void)height, (void)bytes_per_pixel, (void)format;
    return 0;  // no frame buffer in this firmware (a replay firmware of another sensor)
#else
    if (camera_state == 0) {
        camera_state = Camera.begin(TD_KIT_CAMERA_RESOLUTION, TD_KIT_CAMERA_FORMAT, 1) ? 1 : -1;
    }
    if (camera_state != 1) {
        return 0;
    }
    // A constant buffer before the read: a frame that never arrives shows as a constant one.
    memset(camera_frame, 0, sizeof(camera_frame));
    Camera.readFrame(camera_frame);
    *frame = camera_frame;
    *width = (uint32_t)Camera.width();
    *height = (uint32_t)Camera.height();
    // what readFrame writes in the kit's format (the library's bytesPerPixel() says 2 for GRAYSCALE too)
    *bytes_per_pixel = TD_KIT_CAMERA_BYTES_PER_PIXEL;
    *format = TD_KIT_CAMERA_FORMAT_NAME;
    return *width * *height * *bytes_per_pixel <= sizeof(camera_frame);
#endif
}

int button_pressed(void)
{
#if TD_KIT_BUTTON_PIN < 0
    return -1;
#else
    if (!button_ready) {
#ifdef TD_KIT_NRF_BUTTON
        // The shield's button shares its pin with the LED: drive it high with the input buffer connected and a
        // pull-up, as the course's TinyMLShield library does, so the LED cannot pull the line low.
        pinMode(TD_KIT_BUTTON_PIN, OUTPUT);
        digitalWrite(TD_KIT_BUTTON_PIN, HIGH);
        nrf_gpio_cfg(digitalPinToPinName(TD_KIT_BUTTON_PIN), NRF_GPIO_PIN_DIR_OUTPUT, NRF_GPIO_PIN_INPUT_CONNECT,
                     NRF_GPIO_PIN_PULLUP, NRF_GPIO_PIN_S0S1, NRF_GPIO_PIN_NOSENSE);
#else
        pinMode(TD_KIT_BUTTON_PIN, INPUT_PULLUP);
#endif
        button_ready = true;
    }
#ifdef TD_KIT_NRF_BUTTON
    return nrf_gpio_pin_read(digitalPinToPinName(TD_KIT_BUTTON_PIN)) == 0 ? 1 : 0;
#else
    return digitalRead(TD_KIT_BUTTON_PIN) == LOW ? 1 : 0;
#endif
#endif
}

// ---- the model's input from a sensor (replay firmware) ---------------------------------------------------------

#if TD_INPUT_SENSOR != TD_INPUT_NONE

// value -> the input's integer: round(value * TD_INPUT_SCALE + TD_INPUT_OFFSET), clamped. In double: soft-float on
// a Cortex-M4, so no fused multiply-add, and the host computes the same bits (tinydeploy.sensors.stimulus).
int32_t quantize(double value)
{
    double q = rint(value * TD_INPUT_SCALE + TD_INPUT_OFFSET);
    if (q < TD_INPUT_MIN) {
        return TD_INPUT_MIN;
    }
    if (q > TD_INPUT_MAX) {
        return TD_INPUT_MAX;
    }
    return (int32_t)q;
}

void store(uint8_t *input, uint32_t index, double value)
{
#if TD_INPUT_INT16
    int16_t q = (int16_t)quantize(value);
    memcpy(input + 2u * index, &q, sizeof(q));
#else
    input[index] = (uint8_t)(int8_t)quantize(value);
#endif
}

#if TD_INPUT_SENSOR == TD_INPUT_MIC
constexpr uint32_t kRing = TD_SENSORS_MAX_MIC_SAMPLES;  // a power of two
int16_t ring[kRing];
volatile uint32_t ring_head;
volatile uint32_t ring_tail;
bool stream_started;

// Keeps every sample: with the ring full it leaves the rest in PDM's buffer for later (the virtual microphone
// waits for it; see PDM.h).
void on_stream_block(void)
{
    while (ring_head - ring_tail + 256u <= kRing && PDM.available() > 0) {
        int got = PDM.read(mic_block, sizeof(mic_block));
        for (int i = 0; i < got / 2; i++) {
            ring[ring_head % kRing] = mic_block[i];
            ring_head = ring_head + 1;
        }
    }
}

int fill_input(uint8_t *input, uint32_t bytes)
{
    if (!stream_started) {
        PDM.onReceive(on_stream_block);
        if (!PDM.begin(1, TD_KIT_MIC_RATE_HZ)) {
            return -1;
        }
        stream_started = true;
    }
    const uint32_t count = bytes / (TD_INPUT_INT16 ? 2u : 1u);
    for (uint32_t i = 0; i < count; i++) {
        if (!wait_for([] {
                on_stream_block();  // a block the ring had no room for when it came
                return ring_head != ring_tail;
            }, 1000)) {
            return 1;  // the recording is over
        }
        store(input, i, (double)ring[ring_tail % kRing]);
        ring_tail = ring_tail + 1;
    }
    return 0;
}
#elif TD_INPUT_SENSOR == TD_INPUT_IMU
int fill_input(uint8_t *input, uint32_t bytes)
{
    if (!imu_begin()) {
        return -1;
    }
    const uint32_t count = bytes / (TD_INPUT_INT16 ? 2u : 1u);
    for (uint32_t i = 0; i + TD_INPUT_IMU_CHANNELS <= count; i += TD_INPUT_IMU_CHANNELS) {
        float accel[3], gyro[3];
        if (TD_INPUT_IMU_CHANNELS == 6 ? !imu_read(accel, gyro, 1000)
                                       : !(wait_for([] { return IMU.accelerationAvailable() != 0; }, 1000) &&
                                           IMU.readAcceleration(accel[0], accel[1], accel[2]))) {
            return 1;
        }
        for (uint32_t c = 0; c < TD_INPUT_IMU_CHANNELS; c++) {
            store(input, i + c, (double)(c < 3 ? accel[c] : gyro[c - 3]));
        }
    }
    return 0;
}
#elif TD_INPUT_SENSOR == TD_INPUT_CAMERA
int fill_input(uint8_t *input, uint32_t bytes)
{
    (void)bytes;
    const uint8_t *frame;
    uint32_t width, height, bpp;
    const char *format;
    if (!camera_capture(&frame, &width, &height, &bpp, &format)) {
        return -1;
    }
    // Nearest pixel of the frame for each input pixel; RGB565 (high byte first) widened to 8 bits a channel.
    uint32_t index = 0;
    for (uint32_t y = 0; y < TD_INPUT_HEIGHT; y++) {
        for (uint32_t x = 0; x < TD_INPUT_WIDTH; x++) {
            const uint8_t *pixel = frame + ((y * height / TD_INPUT_HEIGHT) * width + x * width / TD_INPUT_WIDTH) * 2u;
            uint32_t word = ((uint32_t)pixel[0] << 8) | pixel[1];
            uint32_t r5 = word >> 11, g6 = (word >> 5) & 0x3Fu, b5 = word & 0x1Fu;
            uint32_t rgb[3] = {(r5 << 3) | (r5 >> 2), (g6 << 2) | (g6 >> 4), (b5 << 3) | (b5 >> 2)};
            if (TD_INPUT_CHANNELS == 1) {
                store(input, index++, (double)((77u * rgb[0] + 150u * rgb[1] + 29u * rgb[2]) >> 8));
            } else {
                for (uint32_t c = 0; c < 3; c++) {
                    store(input, index++, (double)rgb[c]);
                }
            }
        }
    }
    return 0;
}
#endif

#endif  // TD_INPUT_SENSOR != TD_INPUT_NONE

}  // namespace

const td_sensor_driver td_kit_driver = {
    TD_KIT_NAME,        // kit
    TD_KIT_REVISION,    // built_revision
#ifdef ARDUINO_TINYDEPLOY_VIRTUAL
    1,                  // simulated
#else
    0,
#endif
    probe_revision,     // probe_revision
    imu_begin,          // imu_begin
    imu_read,           // imu_read
    magnet_read,        // magnet_read
    mic_capture,        // mic_capture
    camera_capture,     // camera_capture
    button_pressed,     // button_pressed
    kit_millis,         // millis
    kit_sleep,          // sleep_ms
#if TD_INPUT_SENSOR != TD_INPUT_NONE
    fill_input,         // fill_input
#else
    nullptr,
#endif
};
