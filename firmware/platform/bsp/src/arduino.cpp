// Arduino API subset on the virtual board, the C++ runtime pieces a -fno-exceptions build needs,
// and main(), which runs setup() once and loop() forever as an Arduino core does.
#include <Arduino.h>

#include <new>

#include "td_virtual.h"

HardwareSerial Serial;

extern "C" {

// Global destructors are registered with __cxa_atexit, which names this module handle;
// -nostartfiles leaves it undefined.
void *__dso_handle = nullptr;

uint32_t micros(void) { return td_clock_micros(); }
uint32_t millis(void) { return td_clock_millis(); }
void delay(uint32_t ms) { td_clock_delay_ms(ms); }

void delayMicroseconds(uint32_t us)
{
    uint32_t start = td_clock_micros();
    while ((uint32_t)(td_clock_micros() - start) < us) {
    }
}

void __cxa_pure_virtual(void)
{
    abort();
}

}  // extern "C"

size_t Print::write(const uint8_t *data, size_t length)
{
    size_t written = 0;
    for (size_t i = 0; i < length; i++) {
        written += write(data[i]);
    }
    return written;
}

size_t Print::print_unsigned(unsigned long long value, int base)
{
    if (base < 2 || base > 16) {
        base = 10;
    }
    char text[65];
    size_t position = sizeof(text);
    do {
        text[--position] = "0123456789ABCDEF"[value % (unsigned)base];
        value /= (unsigned)base;
    } while (value != 0);
    return write((const uint8_t *)&text[position], sizeof(text) - position);
}

size_t Print::print(unsigned long value, int base) { return print_unsigned(value, base); }
size_t Print::print(unsigned long long value, int base) { return print_unsigned(value, base); }
size_t Print::print(long value, int base) { return print((long long)value, base); }

size_t Print::print(long long value, int base)
{
    if (base == 10 && value < 0) {
        return write((uint8_t)'-') + print_unsigned(0ull - (unsigned long long)value, 10);
    }
    return print_unsigned((unsigned long long)value, base);
}

size_t Print::print(double value, int digits)
{
    if (value != value) {
        return write("nan");
    }
    if (value > 4294967040.0 || value < -4294967040.0) {
        return write("ovf");  // as Arduino's Print does
    }
    size_t n = 0;
    if (value < 0.0) {
        n += write((uint8_t)'-');
        value = -value;
    }
    if (digits < 0) {
        digits = 0;
    }
    double rounding = 0.5;
    for (int i = 0; i < digits; i++) {
        rounding /= 10.0;
    }
    value += rounding;
    unsigned long whole = (unsigned long)value;
    double rest = value - (double)whole;
    n += print_unsigned(whole, 10);
    if (digits > 0) {
        n += write((uint8_t)'.');
    }
    for (int i = 0; i < digits; i++) {
        rest *= 10.0;
        unsigned digit = (unsigned)rest;
        n += write((uint8_t)('0' + digit));
        rest -= digit;
    }
    return n;
}

void HardwareSerial::begin(unsigned long baud) { td_uart_init((uint32_t)baud); }

int HardwareSerial::available()
{
    size_t count = td_uart_available();
    if (count == 0) {
        // Idle until the next interrupt: a sketch polling for input then costs QEMU no host CPU.
        td_uart_wait_for_input();
        count = td_uart_available();
    }
    return (int)count;
}

int HardwareSerial::peek() { return td_uart_peek_byte(); }
int HardwareSerial::read() { return td_uart_read_byte(); }

size_t HardwareSerial::readBytes(uint8_t *buffer, size_t length)
{
    size_t count = 0;
    uint32_t start = millis();
    while (count < length && (uint32_t)(millis() - start) < timeout_ms_) {
        int byte = td_uart_read_byte();
        if (byte < 0) {
            (void)available();
            continue;
        }
        buffer[count++] = (uint8_t)byte;
    }
    return count;
}

void HardwareSerial::flush() { td_uart_flush(); }

size_t HardwareSerial::write(uint8_t byte)
{
    td_uart_write_byte(byte);
    return 1;
}

size_t HardwareSerial::write(const uint8_t *data, size_t length)
{
    td_uart_write(data, length);
    return length;
}

// Allocation without exceptions: an out-of-memory new aborts with a marker line instead of throwing.
void *operator new(size_t size)
{
    void *memory = malloc(size == 0 ? 1 : size);
    if (memory == nullptr) {
        abort();
    }
    return memory;
}
void *operator new[](size_t size) { return operator new(size); }
void *operator new(size_t size, const std::nothrow_t &) noexcept { return malloc(size == 0 ? 1 : size); }
void *operator new[](size_t size, const std::nothrow_t &) noexcept { return malloc(size == 0 ? 1 : size); }
void operator delete(void *memory) noexcept { free(memory); }
void operator delete[](void *memory) noexcept { free(memory); }
void operator delete(void *memory, size_t) noexcept { free(memory); }
void operator delete[](void *memory, size_t) noexcept { free(memory); }

int main(void)
{
    setup();
    for (;;) {
        loop();
    }
}
