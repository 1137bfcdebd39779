/* Fast FULLY_CONNECTED: each input row widened once into int16 pairs, then every block of four output channels
 * against the int8 weights (td_dot.h channels4). */
#include "fully_connected_fast.h"

#include <stddef.h>

static TD_NOINLINE void fully_connected_run(const td_fully_connected_fast_params *params, const int8_t *input,
                                            uint32_t *pairs, int8_t *output)
{
    const uint32_t offset = td_offset_pair(params->quant.input_offset);
    const int32_t whole = params->input_depth / 4, tail = params->input_depth % 4;
    for (int32_t batch = 0; batch < params->batches; ++batch) {
        const int8_t *row = input + (size_t)batch * (size_t)params->input_depth;
        td_widen(row, whole, offset, pairs, 2);
        if (tail) {
            td_widen_tail(row + (size_t)whole * 4u, tail, offset, pairs + (size_t)whole * 2u);
        }
        td_mat_pixel(pairs, params->groups, params->weights, params->records, params->output_depth,
                     &params->quant, output + (size_t)batch * (size_t)params->output_depth);
    }
}

void td_fully_connected_fast_s8(const td_fully_connected_fast_params *params, const int8_t *input,
                                int32_t *scratch, int8_t *output)
{
    const int32_t bytes = 8 * params->groups;
    if (params->groups <= 0 || params->groups != (params->input_depth + 3) / 4 ||
        (scratch == NULL && bytes > TD_STACK_SCRATCH_MAX)) {
        return; /* the generator never emits these */
    }
    if (scratch != NULL) {
        fully_connected_run(params, input, (uint32_t *)scratch, output);
        return;
    }
    uint32_t words[2 * params->groups]; /* on the stack: at most TD_STACK_SCRATCH_MAX bytes */
    fully_connected_run(params, input, words, output);
}
