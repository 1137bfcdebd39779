// Digital pins of the virtual board (Arduino.h): plain levels, except the TinyML shield's button (D13), whose state
// comes from the sensor feed.
#include <Arduino.h>

#include "td_sensor_link.h"

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
