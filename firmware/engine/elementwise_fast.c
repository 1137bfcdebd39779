/* Fast ADD (elementwise_fast.h): tabulated input rescaling, folded output requantization. */
#include "elementwise_fast.h"

#include <stddef.h>

#include "td_quant.h"

static TD_NOINLINE TD_HOT void add_run(const td_add_fast_params *params, const int8_t *input1,
                                       const int8_t *input2, int32_t *tables, int8_t *output)
{
    int32_t *first = tables + 128, *second = tables + 256 + 128; /* indexed by the int8 value */
    for (int32_t value = -128; value < 128; ++value) {
        first[value] = td_multiply_by_quantized_multiplier((value + params->input1_offset) * (1 << params->left_shift),
                                                           params->input1_multiplier, params->input1_shift);
        second[value] = td_multiply_by_quantized_multiplier(
            (value + params->input2_offset) * (1 << params->left_shift), params->input2_multiplier,
            params->input2_shift);
    }
    const td_mat_quant *q = &params->quant;
    const uint32_t shifts = (uint32_t)params->output_shifts;
    const int32_t multiplier = params->output_multiplier, round = params->output_round;
    const int32_t count = params->count;
    if (q->folded) {
        const int32_t up = (int32_t)(shifts & 0xFFu), right = (int32_t)((shifts >> 8) & 0xFFu);
        for (int32_t i = 0; i < count; ++i) {
            const int32_t a = (int32_t)((uint32_t)(first[input1[i]] + second[input2[i]]) << up);
            output[i] = (int8_t)td_ssat8(td_smmlar(a, multiplier, round + (a >> 31)) >> right);
        }
        return;
    }
    for (int32_t i = 0; i < count; ++i) {
        output[i] = td_mat_output(q, first[input1[i]] + second[input2[i]], shifts, multiplier, round);
    }
}

void td_add_fast_s8(const td_add_fast_params *params, const int8_t *input1, const int8_t *input2,
                    int32_t *scratch, int8_t *output)
{
    if (scratch != NULL) {
        add_run(params, input1, input2, scratch, output);
        return;
    }
    int32_t tables[TD_ADD_FAST_SCRATCH_BYTES / 4];
    add_run(params, input1, input2, tables, output);
}
