/* Reference SPLIT: for each outer index, each output's contiguous chunk in turn. */
#include "split.h"

#include <stddef.h>
#include <string.h>

void td_split(const td_split_params *params, const uint8_t *input, uint8_t *const *outputs)
{
    const uint8_t *in = input;
    for (int32_t outer = 0; outer < params->outer; ++outer) {
        for (int32_t i = 0; i < params->outputs; ++i) {
            const size_t chunk = (size_t)params->chunks[i];
            memcpy(outputs[i] + (size_t)outer * chunk, in, chunk);
            in += chunk;
        }
    }
}
