/* A toy engine behind td_engine.h for testing the protocol on the host: output = input reversed. Like
 * TFLM it overwrites its input during invoke, so the protocol must refill the input before every run. */
#define _POSIX_C_SOURCE 199309L
#include <string.h>
#include <time.h>

#include "td_engine.h"

#define TOY_INPUT_BYTES 300u
#define TOY_ACTIVATION_BYTES 4096u
#define TOY_USED_BYTES 3000u

static int8_t g_input[TOY_INPUT_BYTES];
static int8_t g_output[TOY_INPUT_BYTES];

int toy_fail_init; /* set by main to exercise the engine-failure path */

int td_engine_init(void) { return toy_fail_init ? -7 : 0; }

int td_engine_invoke(void)
{
    for (uint32_t i = 0; i < TOY_INPUT_BYTES; ++i) {
        g_output[i] = g_input[TOY_INPUT_BYTES - 1u - i];
    }
    memset(g_input, 0x55, sizeof g_input);
    struct timespec pause = {0, 300000}; /* 300 us, so latencies are measurably non-zero */
    nanosleep(&pause, 0);
    return 0;
}

int8_t *td_engine_input(uint32_t *bytes)
{
    *bytes = TOY_INPUT_BYTES;
    return g_input;
}

const int8_t *td_engine_output(uint32_t *bytes)
{
    *bytes = TOY_INPUT_BYTES;
    return g_output;
}

uint32_t td_engine_input_count(void) { return 1u; }

uint32_t td_engine_output_count(void) { return 1u; }

uint8_t *td_engine_input_tensor(uint32_t index, uint32_t *bytes)
{
    *bytes = index == 0u ? TOY_INPUT_BYTES : 0u;
    return index == 0u ? (uint8_t *)g_input : 0;
}

const uint8_t *td_engine_output_tensor(uint32_t index, uint32_t *bytes)
{
    *bytes = index == 0u ? TOY_INPUT_BYTES : 0u;
    return index == 0u ? (const uint8_t *)g_output : 0;
}

uint32_t td_engine_activation_bytes(void) { return TOY_ACTIVATION_BYTES; }

uint32_t td_engine_used_bytes(void) { return TOY_USED_BYTES; }

const char *td_engine_name(void) { return "toy"; }
