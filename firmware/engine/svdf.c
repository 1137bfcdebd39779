/* Reference integer SVDF, bit-exact with TFLM's: shift the activation state one step back in time, append the
 * feature projection of the input (requantized to the state's scale), then each unit sums its rank filters'
 * dot products of the state with the time weights, adds the bias and requantizes to int8. Like TFLM's integer
 * kernel, the fused activation is not applied (the output is only clamped to int8). */
#include "svdf.h"

#include <stddef.h>
#include <string.h>

#include "td_quant.h"

/* Sums wrap like the reference's int32 adds instead of being undefined on overflow. */
static inline int32_t wrap_add(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }

/* The newest feature value of every filter, requantized and clamped to the state type's range [low, high]. */
static int32_t feature(const td_svdf_params *params, const int8_t *row, int32_t filter, int32_t low, int32_t high)
{
    const int8_t *weights = params->feature_weights + (size_t)filter * (size_t)params->input_size;
    int32_t dot = 0;
    for (int32_t i = 0; i < params->input_size; ++i) {
        dot = wrap_add(dot, (int32_t)weights[i] * ((int32_t)row[i] - params->input_zero_point));
    }
    dot = td_multiply_by_quantized_multiplier(dot, params->feature_multiplier, params->feature_shift);
    return params->state_zero_point + td_clamp_i32(dot, low, high);
}

/* A unit's sum (bias plus its rank filters' dot products) requantized to int8. */
static int8_t unit_output(const td_svdf_params *params, int32_t acc)
{
    acc = td_multiply_by_quantized_multiplier(acc, params->output_multiplier, params->output_shift);
    return td_saturate_i8(acc + params->output_zero_point);
}

void td_svdf_s8(const td_svdf_params *params, const int8_t *input, int8_t *state, int8_t *output)
{
    const size_t memory = (size_t)params->memory;
    const size_t batch_state = (size_t)params->filters * memory;
    const size_t total = (size_t)params->batches * batch_state;
    if (total > 1u) {
        memmove(state, state + 1, (total - 1u) * sizeof(*state));
    }
    for (int32_t b = 0; b < params->batches; ++b) {
        const int8_t *row = input + (size_t)b * (size_t)params->input_size;
        int8_t *batch = state + (size_t)b * batch_state;
        for (int32_t f = 0; f < params->filters; ++f) {
            /* Stored as the reference does: zero point added after the clamp, then narrowed (wrapping). */
            batch[(size_t)f * memory + memory - 1u] = (int8_t)feature(params, row, f, INT8_MIN, INT8_MAX);
        }
        for (int32_t unit = 0; unit < params->units; ++unit) {
            int32_t acc = params->bias != NULL ? params->bias[unit] : 0;
            for (int32_t r = 0; r < params->rank; ++r) {
                const size_t filter = (size_t)unit * (size_t)params->rank + (size_t)r;
                const int8_t *weights = params->time_weights + filter * memory;
                const int8_t *values = batch + filter * memory;
                int32_t dot = 0;
                for (size_t j = 0; j < memory; ++j) {
                    dot = wrap_add(dot, (int32_t)weights[j] * ((int32_t)values[j] - params->state_zero_point));
                }
                acc = wrap_add(acc, dot);
            }
            output[(size_t)b * (size_t)params->units + (size_t)unit] = unit_output(params, acc);
        }
    }
}

void td_svdf_s16_state(const td_svdf_params *params, const int8_t *input, int16_t *state, int8_t *output)
{
    const size_t memory = (size_t)params->memory;
    const size_t batch_state = (size_t)params->filters * memory;
    const size_t total = (size_t)params->batches * batch_state;
    if (total > 1u) {
        memmove(state, state + 1, (total - 1u) * sizeof(*state));
    }
    for (int32_t b = 0; b < params->batches; ++b) {
        const int8_t *row = input + (size_t)b * (size_t)params->input_size;
        int16_t *batch = state + (size_t)b * batch_state;
        for (int32_t f = 0; f < params->filters; ++f) {
            batch[(size_t)f * memory + memory - 1u] = (int16_t)feature(params, row, f, INT16_MIN, INT16_MAX);
        }
        for (int32_t unit = 0; unit < params->units; ++unit) {
            int32_t acc = params->bias != NULL ? params->bias[unit] : 0;
            for (int32_t r = 0; r < params->rank; ++r) {
                const size_t filter = (size_t)unit * (size_t)params->rank + (size_t)r;
                const int16_t *weights = params->time_weights16 + filter * memory;
                const int16_t *values = batch + filter * memory;
                int32_t dot = 0;
                for (size_t j = 0; j < memory; ++j) {
                    dot = wrap_add(dot, (int32_t)weights[j] * ((int32_t)values[j] - params->state_zero_point));
                }
                acc = wrap_add(acc, dot);
            }
            output[(size_t)b * (size_t)params->units + (size_t)unit] = unit_output(params, acc);
        }
    }
}
