/* The virtual board's sensor link: requests for sensor data go to the host's sensor feed
 * (tinydeploy/sensors/feed.py) and its answers come back, through two named pipes QEMU opens for the board
 * (semihosting). The sensor shims (PDM.h,
 * Arduino_LSM9DS1.h, Arduino_BMI270_BMM150.h, Arduino_OV767X.h, Wire.h, digitalRead) are built on it; sketches
 * never use it directly. The wire format is in firmware/platform/README.md ("Sensors"). */
#ifndef TD_SENSOR_LINK_H
#define TD_SENSOR_LINK_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* What a request asks for (the request's kind byte). */
#define TD_SENSOR_HELLO 'H'  /* the virtual kit: revision and parts present */
#define TD_SENSOR_MOTION 'A' /* `count` accelerometer + gyroscope samples: 6 x int16 raw counts each */
#define TD_SENSOR_MAGNET 'M' /* one magnetometer sample: 3 x int16 raw counts */
#define TD_SENSOR_AUDIO 'P'  /* `count` microphone samples, int16; arg = sample rate in Hz */
#define TD_SENSOR_FRAME 'C'  /* one camera frame; arg = resolution << 8 | format (| 0x8000: test pattern) */
#define TD_SENSOR_BUTTON 'B' /* the button: one byte, 1 = pressed */

/* Parts of the virtual kit (the hello answer's mask). */
#define TD_PART_IMU 0x01u
#define TD_PART_MAGNET 0x02u
#define TD_PART_MIC 0x04u
#define TD_PART_CAMERA 0x08u
#define TD_PART_BUTTON 0x10u

/* Request results. */
#define TD_LINK_OK 0
#define TD_LINK_END 1      /* the feed has no (more) data of this kind: a cut stream, an ended recording */
#define TD_LINK_REFUSED 2  /* the feed cannot serve this request (e.g. another sample rate than recorded) */
#define TD_LINK_NONE -1    /* no feed attached (or it went away) */

typedef struct td_sensor_kit {
    uint8_t revision; /* 1 or 2 (Nano 33 BLE Sense Rev1/Rev2), 0: no feed */
    uint8_t parts;    /* TD_PART_* mask */
} td_sensor_kit;

/* The virtual kit, asked once (later calls return the cached answer; no feed: revision 0, no parts). */
const td_sensor_kit *td_sensor_kit_info(void);

/* Asks for data and returns with the answer (the host answers at once; QEMU waits for it, so no virtual time
 * passes). The payload goes to dest (bytes beyond capacity are dropped); *received says how many arrived.
 * Callable from thread mode and from interrupts. */
int td_sensor_request(uint8_t kind, uint16_t count, uint16_t arg, void *dest, uint32_t capacity,
                      uint32_t *received);

#ifdef __cplusplus
}
#endif

#endif /* TD_SENSOR_LINK_H */
