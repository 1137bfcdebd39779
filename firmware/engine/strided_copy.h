/* A strided gather of whole elements (any element size): output element i, in row-major order over `dims`, is
 * input element start + sum(index[d] * steps[d]). STRIDED_SLICE (a box with signed strides) and TRANSPOSE (steps
 * permuted) lower to it; no arithmetic, so one kernel serves every element type. */
#ifndef TD_STRIDED_COPY_H
#define TD_STRIDED_COPY_H

#include <stdint.h>

#include "td_shape.h"

typedef struct {
    int32_t dims[TD_MAX_DIMS];  /* the output shape */
    int32_t steps[TD_MAX_DIMS]; /* input elements per output index step (negative: backwards) */
    int32_t start;              /* input element of output element 0 */
    int32_t element_bytes;      /* 1, 2 or 4 */
} td_strided_copy_params;

/* When every step is positive and start >= 0, each output element's source lies at or after it (a box inside the
 * input): the output may then share the input's memory from the same address. */
void td_strided_copy(const td_strided_copy_params *params, const void *input, void *output);

#endif /* TD_STRIDED_COPY_H */
