/* A toy engine behind td_engine.h for testing the protocol on the host, with two inputs and two outputs:
 * output 0 = input 0 reversed, output 1 = each byte of input 1 plus one. Like TFLM it overwrites its inputs
 * during invoke, so an output after several inferences is not of the loaded inputs. */
#define _POSIX_C_SOURCE 199309L
#include <string.h>
#include <time.h>

#include "td_engine.h"

#define TOY_INPUT_BYTES 300u
#define TOY_SECOND_BYTES 5u
#define TOY_ACTIVATION_BYTES 4096u
#define TOY_USED_BYTES 3000u

static uint8_t g_input[TOY_INPUT_BYTES];
static uint8_t g_second[TOY_SECOND_BYTES];
static uint8_t g_output[TOY_INPUT_BYTES];
static uint8_t g_second_output[TOY_SECOND_BYTES];

int toy_fail_init; /* set by main to exercise the engine-failure path */

int td_engine_init(void) { return toy_fail_init ? -7 : 0; }

int td_engine_invoke(void)
{
    for (uint32_t i = 0; i < TOY_INPUT_BYTES; ++i) {
        g_output[i] = g_input[TOY_INPUT_BYTES - 1u - i];
    }
    for (uint32_t i = 0; i < TOY_SECOND_BYTES; ++i) {
        g_second_output[i] = (uint8_t)(g_second[i] + 1u);
    }
    memset(g_input, 0x55, sizeof g_input);
    memset(g_second, 0xAA, sizeof g_second);
    struct timespec pause = {0, 300000}; /* 300 us, so latencies are measurably non-zero */
    nanosleep(&pause, 0);
    return 0;
}

uint32_t td_engine_input_count(void) { return 2u; }

uint32_t td_engine_output_count(void) { return 2u; }

uint8_t *td_engine_input_tensor(uint32_t index, uint32_t *bytes)
{
    *bytes = index == 0u ? TOY_INPUT_BYTES : index == 1u ? TOY_SECOND_BYTES : 0u;
    return index == 0u ? g_input : index == 1u ? g_second : 0;
}

const uint8_t *td_engine_output_tensor(uint32_t index, uint32_t *bytes)
{
    *bytes = index == 0u ? TOY_INPUT_BYTES : index == 1u ? TOY_SECOND_BYTES : 0u;
    return index == 0u ? g_output : index == 1u ? g_second_output : 0;
}

int8_t *td_engine_input(uint32_t *bytes) { return (int8_t *)td_engine_input_tensor(0u, bytes); }

const int8_t *td_engine_output(uint32_t *bytes) { return (const int8_t *)td_engine_output_tensor(0u, bytes); }

uint32_t td_engine_activation_bytes(void) { return TOY_ACTIVATION_BYTES; }

uint32_t td_engine_used_bytes(void) { return TOY_USED_BYTES; }

uint32_t td_engine_profile_steps(void) { return 0u; }

uint32_t td_engine_profile_us(uint32_t step) { return step * 0u; }

void td_engine_profile_reset(void) {}

const char *td_engine_name(void) { return "toy"; }
