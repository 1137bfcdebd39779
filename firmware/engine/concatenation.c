/* Reference CONCATENATION: for each outer index, each input's contiguous chunk in turn. */
#include "concatenation.h"

#include <stddef.h>
#include <string.h>

void td_concatenation_s8(const td_concatenation_params *params, const int8_t *const *inputs, int8_t *output)
{
    int8_t *out = output;
    for (int32_t outer = 0; outer < params->outer; ++outer) {
        for (int32_t i = 0; i < params->inputs; ++i) {
            const size_t chunk = (size_t)params->chunks[i];
            memcpy(out, inputs[i] + (size_t)outer * chunk, chunk);
            out += chunk;
        }
    }
}
