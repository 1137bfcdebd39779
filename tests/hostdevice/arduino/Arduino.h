/* Just enough of the Arduino API to compile the generated sketch in a test (the real core comes with the
 * board's PlatformIO framework). */
#ifndef ARDUINO_H_TEST_STUB
#define ARDUINO_H_TEST_STUB

#include <stddef.h>
#include <stdint.h>

class HardwareSerialStub {
public:
    void begin(unsigned long baud) { (void)baud; }
    int available() { return 0; }
    int read() { return -1; }
    size_t write(const uint8_t *data, size_t len) { (void)data; return len; }
};

extern HardwareSerialStub Serial;
unsigned long micros(void);

#endif
