/* SPLIT and SPLIT_V: the input cut along one axis into consecutive pieces, one per output (a pure copy of bytes,
 * any element type). The inverse of CONCATENATION. */
#ifndef TD_SPLIT_H
#define TD_SPLIT_H

#include <stdint.h>

typedef struct {
    int32_t outputs;       /* how many tensors */
    int32_t outer;         /* product of the dimensions before the axis */
    const int32_t *chunks; /* per output: bytes of its axis slice times the dimensions after the axis */
} td_split_params;

void td_split(const td_split_params *params, const uint8_t *input, uint8_t *const *outputs);

#endif /* TD_SPLIT_H */
