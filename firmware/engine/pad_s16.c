/* Reference int16 PAD: every output element is either the padding value or its input element. */
#include "pad_s16.h"

#include <stddef.h>

void td_pad_s16(const td_pad_params *params, const int16_t *input, int16_t *output)
{
    if (td_shape_is_empty(params->output_dims)) {
        return;
    }
    int32_t index[TD_MAX_DIMS] = {0};
    size_t position = 0;
    do {
        size_t source = 0;
        int inside = 1;
        for (int d = 0; d < TD_MAX_DIMS; ++d) {
            const int32_t at = index[d] - params->before[d];
            if (at < 0 || at >= params->input_dims[d]) {
                inside = 0;
                break;
            }
            source = source * (size_t)params->input_dims[d] + (size_t)at;
        }
        output[position++] = inside ? input[source] : (int16_t)params->value;
    } while (td_next_index(index, params->output_dims));
}
