/* The protocol's sensor commands (docs/protocol.md, "Sensor commands"): `sensors`, `imu`, `mic`, `cam`, `button`,
 * `sense`. Portable C99 like the rest of the protocol; the sensors themselves are reached through a driver table
 * that a kit sketch fills with its Arduino libraries (firmware/kit/td_kit.cpp). A sketch enables the commands by
 * setting td_protocol_config.extra_command to td_sensors_command. */
#ifndef TD_SENSORS_H
#define TD_SENSORS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bounds, so that one command cannot hold the device for long or overrun a buffer. */
#define TD_SENSORS_MAX_IMU_SAMPLES 200u     /* `imu N` */
#define TD_SENSORS_MAX_MIC_SAMPLES 4096u    /* `mic N`: the driver's capture buffer */
#define TD_SENSORS_MAX_MIC_SKIP 16000u      /* `mic N SKIP` */
#define TD_SENSORS_MAX_BUTTON_MS 60000u     /* `button MS` */
#define TD_SENSORS_IMU_SAMPLE_TIMEOUT_MS 250u
#define TD_SENSORS_MIC_SAMPLES_PER_LINE 32u

typedef struct td_sensor_driver {
    const char *kit;          /* the kit profile's name */
    uint32_t built_revision;  /* the board revision whose IMU library the firmware has (1 or 2) */
    int simulated;            /* 1: the sensors are simulated (the virtual board's stand-ins) */
    /* The revision the board's sensor bus shows: 1, 2, or 0 when neither revision's IMU answers. */
    uint32_t (*probe_revision)(void);
    /* Starts the IMU (later calls return the first result): 1 when it answered. */
    int (*imu_begin)(void);
    /* One accelerometer (g) and gyroscope (dps) sample, waiting at most timeout_ms: 1 when one came. */
    int (*imu_read)(float accel[3], float gyro[3], uint32_t timeout_ms);
    /* One magnetometer sample (uT), waiting at most timeout_ms: 1 when one came. */
    int (*magnet_read)(float field[3], uint32_t timeout_ms);
    /* Records `count` microphone samples after dropping `skip` (the microphone settling), into a buffer the driver
     * owns (at least TD_SENSORS_MAX_MIC_SAMPLES), waiting at most timeout_ms. Returns the samples recorded, or -1
     * when the microphone did not start. */
    int32_t (*mic_capture)(uint32_t count, uint32_t skip, uint32_t timeout_ms, const int16_t **samples,
                           uint32_t *rate_hz);
    /* Takes one camera frame into a buffer the driver owns: 1 when the camera started. */
    int (*camera_capture)(const uint8_t **frame, uint32_t *width, uint32_t *height, uint32_t *bytes_per_pixel,
                          const char **format);
    /* 1 while the button is down; -1 when the kit has none. */
    int (*button_pressed)(void);
    uint32_t (*millis)(void);
    void (*sleep_ms)(uint32_t ms);
    /* Optional (sensor replay firmware): fills the model's input from the input sensor. 0: filled, 1: the sensor
     * has no more data, -1: it failed. */
    int (*fill_input)(uint8_t *input, uint32_t bytes);
} td_sensor_driver;

/* Keep the driver (it must outlive the protocol). */
void td_sensors_init(const td_sensor_driver *driver);

/* td_protocol_config.extra_command: answers the sensor verbs, returns 0 for any other verb. */
int td_sensors_command(const char *id, const char *verb, char **args, uint32_t nargs);

#ifdef __cplusplus
}
#endif

#endif /* TD_SENSORS_H */
