/* The protocol's sensor commands (td_sensors.h; wire format in docs/protocol.md, "Sensor commands"). Every command
 * checks its arguments against fixed bounds before touching a sensor, and a command that waits sends a line at
 * least every second. Values go out as integers (micro-g, milli-dps, nanotesla), so no float formatting is needed. */
#include "td_sensors.h"

#include <string.h>

#include "td_crc32.h"
#include "td_format.h"
#include "td_protocol.h"

#define HEARTBEAT_US 1000000u

static const td_sensor_driver *g_driver;

void td_sensors_init(const td_sensor_driver *driver)
{
    g_driver = driver;
}

/* value * scale rounded to an int32 (saturating); 0 for NaN */
static int32_t scaled(float value, float scale)
{
    float x = value * scale;
    if (!(x == x)) return 0;
    if (x >= 2147483520.0f) return INT32_MAX;
    if (x <= -2147483520.0f) return INT32_MIN;
    return (int32_t)(x >= 0.0f ? x + 0.5f : x - 0.5f);
}

static void reply_range(const char *id, uint32_t max)
{
    td_reply_begin(id, "err");
    td_reply_word("range");
    td_reply_key_u32("max", max);
    td_reply_end();
}

static void reply_absent(const char *id, const char *part)
{
    td_reply_begin(id, "err");
    td_reply_word("absent");
    td_reply_key_str("part", part);
    td_reply_end();
}

static void cmd_sensors(const char *id, uint32_t nargs)
{
    if (nargs != 0u) {
        td_reply_error(id, "args");
        return;
    }
    td_reply_begin(id, "ok");
    td_reply_word("sensors");
    td_reply_key_str("kit", g_driver->kit);
    td_reply_key_u32("rev", g_driver->probe_revision());
    td_reply_key_u32("built", g_driver->built_revision);
    td_reply_key_u32("sim", g_driver->simulated ? 1u : 0u);
    td_reply_key_u32("button", g_driver->button_pressed() >= 0 ? 1u : 0u);
    td_reply_key_u32("sense", g_driver->fill_input != 0 ? 1u : 0u);
    td_reply_end();
}

static void cmd_imu(const char *id, char **args, uint32_t nargs)
{
    uint32_t count;
    if (nargs != 1u || td_parse_u32(args[0], &count, 10u) != 0) {
        td_reply_error(id, "args");
        return;
    }
    if (count == 0u || count > TD_SENSORS_MAX_IMU_SAMPLES) {
        reply_range(id, TD_SENSORS_MAX_IMU_SAMPLES);
        return;
    }
    if (!g_driver->imu_begin()) {
        reply_absent(id, "imu");
        return;
    }
    uint32_t got = 0u;
    for (; got < count; ++got) {
        float accel[3], gyro[3];
        if (!g_driver->imu_read(accel, gyro, TD_SENSORS_IMU_SAMPLE_TIMEOUT_MS)) {
            break; /* a sample that does not come in time: the stream stopped */
        }
        td_reply_begin(id, "data");
        td_reply_word("imu");
        td_reply_u32(got);
        for (int i = 0; i < 3; ++i) td_reply_i32(scaled(accel[i], 1e6f));
        for (int i = 0; i < 3; ++i) td_reply_i32(scaled(gyro[i], 1e3f));
        td_reply_end();
    }
    float field[3];
    int magnet = g_driver->magnet_read(field, TD_SENSORS_IMU_SAMPLE_TIMEOUT_MS);
    td_reply_begin(id, "ok");
    td_reply_word("imu");
    td_reply_key_u32("n", got);
    td_reply_key_u32("mag", magnet ? 1u : 0u);
    if (magnet) {
        td_reply_key_i32("mx", scaled(field[0], 1e3f));
        td_reply_key_i32("my", scaled(field[1], 1e3f));
        td_reply_key_i32("mz", scaled(field[2], 1e3f));
    }
    td_reply_end();
}

static void cmd_mic(const char *id, char **args, uint32_t nargs)
{
    uint32_t count, skip = 0u;
    if (nargs < 1u || nargs > 2u || td_parse_u32(args[0], &count, 10u) != 0 ||
        (nargs == 2u && td_parse_u32(args[1], &skip, 10u) != 0)) {
        td_reply_error(id, "args");
        return;
    }
    if (count == 0u || count > TD_SENSORS_MAX_MIC_SAMPLES || skip > TD_SENSORS_MAX_MIC_SKIP) {
        reply_range(id, TD_SENSORS_MAX_MIC_SAMPLES);
        return;
    }
    const int16_t *samples = 0;
    uint32_t rate = 0u;
    /* (count + skip) samples at 16 kHz take at most ~1.3 s; one second more before giving up */
    int32_t got = g_driver->mic_capture(count, skip, 2500u, &samples, &rate);
    if (got < 0) {
        reply_absent(id, "mic");
        return;
    }
    uint8_t bytes[2u * TD_SENSORS_MIC_SAMPLES_PER_LINE];
    for (uint32_t offset = 0u; offset < (uint32_t)got; offset += TD_SENSORS_MIC_SAMPLES_PER_LINE) {
        uint32_t n = (uint32_t)got - offset;
        if (n > TD_SENSORS_MIC_SAMPLES_PER_LINE) n = TD_SENSORS_MIC_SAMPLES_PER_LINE;
        for (uint32_t i = 0u; i < n; ++i) { /* little-endian int16, whatever the CPU */
            uint16_t value = (uint16_t)samples[offset + i];
            bytes[2u * i] = (uint8_t)(value & 0xFFu);
            bytes[2u * i + 1u] = (uint8_t)(value >> 8);
        }
        td_reply_begin(id, "data");
        td_reply_word("mic");
        td_reply_u32(offset);
        td_reply_hex(bytes, 2u * n);
        td_reply_end();
    }
    td_reply_begin(id, "ok");
    td_reply_word("mic");
    td_reply_key_u32("n", (uint32_t)got);
    td_reply_key_u32("rate", rate);
    td_reply_end();
}

static void cmd_cam(const char *id, uint32_t nargs)
{
    if (nargs != 0u) {
        td_reply_error(id, "args");
        return;
    }
    const uint8_t *frame = 0;
    uint32_t width = 0u, height = 0u, bpp = 0u;
    const char *format = "";
    uint32_t started = g_driver->millis();
    if (!g_driver->camera_capture(&frame, &width, &height, &bpp, &format) || frame == 0) {
        reply_absent(id, "camera");
        return;
    }
    uint32_t bytes = width * height * bpp;
    /* Pixel values (two-byte formats: high byte first, as the camera sends them): a constant frame is no image. */
    uint32_t pixels = bpp == 1u || bpp == 2u ? width * height : 0u;
    uint32_t low = 0xFFFFu, high = 0u;
    uint64_t sum = 0u;
    for (uint32_t i = 0u; i < pixels; ++i) {
        uint32_t value = bpp == 1u ? frame[i] : ((uint32_t)frame[2u * i] << 8) | frame[2u * i + 1u];
        if (value < low) low = value;
        if (value > high) high = value;
        sum += value;
    }
    td_reply_begin(id, "ok");
    td_reply_word("cam");
    td_reply_key_u32("w", width);
    td_reply_key_u32("h", height);
    td_reply_key_u32("bpp", bpp);
    td_reply_key_str("format", format);
    td_reply_key_u32("bytes", bytes);
    td_reply_key_u32("min", pixels ? low : 0u);
    td_reply_key_u32("max", pixels ? high : 0u);
    td_reply_key_u32("mean", pixels ? (uint32_t)(sum / pixels) : 0u);
    td_reply_key_u32("crc", td_crc32_final(td_crc32_update(TD_CRC32_INIT, frame, bytes)));
    td_reply_key_u32("ms", g_driver->millis() - started);
    td_reply_end();
}

static void cmd_button(const char *id, char **args, uint32_t nargs)
{
    uint32_t wait_ms;
    if (nargs != 1u || td_parse_u32(args[0], &wait_ms, 10u) != 0) {
        td_reply_error(id, "args");
        return;
    }
    if (wait_ms == 0u || wait_ms > TD_SENSORS_MAX_BUTTON_MS) {
        reply_range(id, TD_SENSORS_MAX_BUTTON_MS);
        return;
    }
    int initial = g_driver->button_pressed();
    if (initial < 0) {
        reply_absent(id, "button");
        return;
    }
    uint32_t start = g_driver->millis();
    uint32_t elapsed = 0u;
    int pressed = 0;
    /* A press is the line going down after it was seen up (a button stuck down never counts). */
    int seen_up = !initial;
    while ((elapsed = g_driver->millis() - start) < wait_ms) {
        int now = g_driver->button_pressed();
        if (!now) {
            seen_up = 1;
        } else if (seen_up) {
            pressed = 1;
            break;
        }
        if (td_reply_idle_us() >= HEARTBEAT_US) {
            td_reply_begin(id, "data");
            td_reply_word("wait");
            td_reply_u32(elapsed);
            td_reply_end();
        }
        g_driver->sleep_ms(5u);
    }
    td_reply_begin(id, "ok");
    td_reply_word("button");
    td_reply_key_u32("pressed", (uint32_t)pressed);
    td_reply_key_u32("initial", initial ? 1u : 0u);
    td_reply_key_u32("ms", elapsed);
    td_reply_end();
}

static void cmd_sense(const char *id, uint32_t nargs)
{
    if (nargs != 0u) {
        td_reply_error(id, "args");
        return;
    }
    uint32_t bytes = 0u;
    uint8_t *input = td_protocol_input_target(&bytes);
    if (input == 0 || bytes == 0u) {
        td_reply_error(id, "engine");
        return;
    }
    int status = g_driver->fill_input(input, bytes);
    if (status != 0) {
        td_reply_begin(id, "err");
        td_reply_word("sense");
        td_reply_word(status > 0 ? "end" : "failed");
        td_reply_end();
        return;
    }
    td_protocol_input_loaded();
    td_reply_begin(id, "ok");
    td_reply_word("sense");
    td_reply_key_u32("bytes", bytes);
    td_reply_end();
}

int td_sensors_command(const char *id, const char *verb, char **args, uint32_t nargs)
{
    if (g_driver == 0) return 0;
    if (strcmp(verb, "sensors") == 0) {
        cmd_sensors(id, nargs);
    } else if (strcmp(verb, "imu") == 0) {
        cmd_imu(id, args, nargs);
    } else if (strcmp(verb, "mic") == 0) {
        cmd_mic(id, args, nargs);
    } else if (strcmp(verb, "cam") == 0) {
        cmd_cam(id, nargs);
    } else if (strcmp(verb, "button") == 0) {
        cmd_button(id, args, nargs);
    } else if (strcmp(verb, "sense") == 0 && g_driver->fill_input != 0) {
        cmd_sense(id, nargs);
    } else {
        return 0;
    }
    return 1;
}
