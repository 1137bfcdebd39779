/* Fast FULLY_CONNECTED: each input row against blocks of four output channels with SMLAD (td_dot.h). */
#include "fully_connected_fast.h"

#include <stddef.h>

TD_HOT void td_fully_connected_fast_s8(const td_fully_connected_fast_params *params, const int8_t *input,
                                       int8_t *output)
{
    const int32_t groups = (params->input_depth + 3) / 4;
    for (int32_t batch = 0; batch < params->batches; ++batch) {
        const td_segment row = {input + (size_t)batch * (size_t)params->input_depth, params->input_depth, 0};
        td_dot_row(&params->requant, &row, 1, params->weights, groups, params->output_depth,
                   output + (size_t)batch * (size_t)params->output_depth);
    }
}
