/* Reference PAD, int8 and int16: every output element is either the padding value or its input element. */
#include "pad.h"

#include <stddef.h>

/* Where output element `index` comes from in the input; returns 0 when it lies in the padding. */
static int source_of(const td_pad_params *params, const int32_t index[TD_MAX_DIMS], size_t *source)
{
    size_t offset = 0;
    for (int d = 0; d < TD_MAX_DIMS; ++d) {
        const int32_t at = index[d] - params->before[d];
        if (at < 0 || at >= params->input_dims[d]) {
            return 0;
        }
        offset = offset * (size_t)params->input_dims[d] + (size_t)at;
    }
    *source = offset;
    return 1;
}

void td_pad_s8(const td_pad_params *params, const int8_t *input, int8_t *output)
{
    int32_t index[TD_MAX_DIMS] = {0};
    size_t source = 0;
    for (int more = !td_shape_is_empty(params->output_dims); more; more = td_next_index(index, params->output_dims)) {
        *output++ = source_of(params, index, &source) ? input[source] : (int8_t)params->value;
    }
}

void td_pad_s16(const td_pad_params *params, const int16_t *input, int16_t *output)
{
    int32_t index[TD_MAX_DIMS] = {0};
    size_t source = 0;
    for (int more = !td_shape_is_empty(params->output_dims); more; more = td_next_index(index, params->output_dims)) {
        *output++ = source_of(params, index, &source) ? input[source] : (int16_t)params->value;
    }
}
