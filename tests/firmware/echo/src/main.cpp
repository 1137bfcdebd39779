// Echo sketch for the virtual board's tests: a banner, then each received line echoed back with the
// micros() at which it arrived. Builds unchanged with a real Arduino core.
#include <Arduino.h>

#include "td_bsp.h"

static char line[128];
static void *volatile kept_block;  // keeps the compiler from removing the malloc/free pair
static size_t line_length;

void setup()
{
    Serial.begin(115200);
    Serial.print("echo-ready micros=");
    Serial.println(micros());
}

static void answer(void)
{
    if (strcmp(line, "crash") == 0) {
        volatile uint32_t *nowhere = (volatile uint32_t *)0xFFFFFFF0u;
        *nowhere = 1;  // a bus fault: the board must report it and stop
    }
    if (strcmp(line, "mem") == 0) {
        kept_block = malloc(1000);
        Serial.print("heap=");
        Serial.print(td_bsp_heap_high_water());
        Serial.print(" stack=");
        Serial.println(td_bsp_stack_high_water());
        free(kept_block);
        return;
    }
    if (strcmp(line, "float") == 0) {
        Serial.println(3.14159, 3);
        return;
    }
    if (strncmp(line, "delay ", 6) == 0) {
        uint32_t start = micros();
        delay((uint32_t)atoi(line + 6));
        Serial.print("delayed us=");
        Serial.println(micros() - start);
        return;
    }
    Serial.print("echo:");
    Serial.print(line);
    Serial.print(" micros=");
    Serial.println(micros());
}

void loop()
{
    while (Serial.available() > 0) {
        int c = Serial.read();
        if (c == '\n' || c == '\r') {
            if (line_length > 0) {
                line[line_length] = '\0';
                answer();
                line_length = 0;
            }
        } else if (line_length < sizeof(line) - 1) {
            line[line_length++] = (char)c;
        }
    }
}
