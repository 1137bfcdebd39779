/* Reference strided copy: one element at a time, the source offset carried along as the index advances. */
#include "strided_copy.h"

#include <stddef.h>
#include <string.h>

void td_strided_copy(const td_strided_copy_params *params, const void *input, void *output)
{
    if (td_shape_is_empty(params->dims)) {
        return;
    }
    const size_t size = (size_t)params->element_bytes;
    const uint8_t *in = (const uint8_t *)input;
    uint8_t *out = (uint8_t *)output;
    int32_t index[TD_MAX_DIMS] = {0};
    int32_t source = params->start;
    int more = 1;
    while (more) {
        memmove(out, in + (ptrdiff_t)source * (ptrdiff_t)size, size); /* may share memory with the input */
        out += size;
        more = 0;
        for (int d = TD_MAX_DIMS - 1; d >= 0; --d) {
            if (++index[d] < params->dims[d]) {
                source += params->steps[d];
                more = 1;
                break;
            }
            source -= params->steps[d] * (params->dims[d] - 1);
            index[d] = 0;
        }
    }
}
