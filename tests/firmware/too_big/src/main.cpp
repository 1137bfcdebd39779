// A sketch whose 300 KB of static data cannot fit the Nano 33 BLE's 256 KB of RAM.
#include <Arduino.h>

static uint8_t arena[300 * 1024];

void setup()
{
    Serial.begin(115200);
    arena[micros() % sizeof(arena)] = 1;
    Serial.println(arena[0]);
}

void loop() {}
