/* The subset of the Arduino API that tinydeploy's generated sketches use, for the virtual board:
 * setup()/loop(), Serial, micros(), millis(), delay(), digital pins. A sketch written against it builds unchanged
 * with a real Arduino core. The sensor libraries' stand-ins (Wire.h, PDM.h, Arduino_LSM9DS1.h,
 * Arduino_BMI270_BMM150.h, Arduino_OV767X.h) sit beside it; see firmware/platform/README.md. */
#ifndef TD_ARDUINO_H
#define TD_ARDUINO_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARDUINO_TINYDEPLOY_VIRTUAL 1

#define DEC 10
#define HEX 16
#define OCT 8
#define BIN 2

#ifndef F
#define F(text) (text)
#endif

#define LOW 0
#define HIGH 1
#define INPUT 0
#define OUTPUT 1
#define INPUT_PULLUP 2
#define INPUT_PULLDOWN 3
#define LED_BUILTIN 13
/* The TinyML shield's button is on D13 (beside the LED); on the virtual board its state comes from the sensor
 * feed. */
#define TD_VIRTUAL_BUTTON_PIN 13

typedef uint8_t byte;
typedef bool boolean;

#ifdef __cplusplus
extern "C" {
#endif

uint32_t micros(void);
uint32_t millis(void);
void delay(uint32_t ms);
void delayMicroseconds(uint32_t us);

void pinMode(uint8_t pin, uint8_t mode);
int digitalRead(uint8_t pin);
void digitalWrite(uint8_t pin, uint8_t value);

void setup(void);
void loop(void);

#ifdef __cplusplus
}

class Print {
public:
    virtual ~Print() = default;
    virtual size_t write(uint8_t byte) = 0;
    virtual size_t write(const uint8_t *data, size_t length);
    size_t write(const char *text) { return text == nullptr ? 0 : write((const uint8_t *)text, strlen(text)); }
    size_t write(const char *data, size_t length) { return write((const uint8_t *)data, length); }
    virtual void flush() {}

    size_t print(const char *text) { return write(text); }
    size_t print(char c) { return write((uint8_t)c); }
    size_t print(unsigned char value, int base = DEC) { return print((unsigned long)value, base); }
    size_t print(int value, int base = DEC) { return print((long)value, base); }
    size_t print(unsigned int value, int base = DEC) { return print((unsigned long)value, base); }
    size_t print(long value, int base = DEC);
    size_t print(unsigned long value, int base = DEC);
    size_t print(long long value, int base = DEC);
    size_t print(unsigned long long value, int base = DEC);
    size_t print(double value, int digits = 2);

    size_t println() { return write("\r\n"); }
    template <typename T> size_t println(T value) { size_t n = print(value); return n + println(); }
    template <typename T> size_t println(T value, int format) { size_t n = print(value, format); return n + println(); }

private:
    size_t print_unsigned(unsigned long long value, int base);
};

/* UART0 of the virtual board. begin() accepts any baud rate: QEMU's UART has no line rate. */
class HardwareSerial : public Print {
public:
    void begin(unsigned long baud);
    void begin(unsigned long baud, uint16_t config) { (void)config; begin(baud); }
    void end() {}
    int available();
    int peek();
    int read();
    size_t readBytes(uint8_t *buffer, size_t length);
    size_t readBytes(char *buffer, size_t length) { return readBytes((uint8_t *)buffer, length); }
    void setTimeout(unsigned long ms) { timeout_ms_ = ms; }
    int availableForWrite() { return 1; }
    void flush() override;
    size_t write(uint8_t byte) override;
    size_t write(const uint8_t *data, size_t length) override;
    using Print::write;
    explicit operator bool() const { return true; }

private:
    unsigned long timeout_ms_ = 1000;
};

extern HardwareSerial Serial;

#endif /* __cplusplus */

#endif /* TD_ARDUINO_H */
