/* N-dimensional index helpers for shape-generic ops (broadcasting, reductions, padding, concatenation).
 * Shapes are padded in front with 1s to TD_MAX_DIMS dimensions by the generator. */
#ifndef TD_SHAPE_H
#define TD_SHAPE_H

#include <stddef.h>
#include <stdint.h>

#define TD_MAX_DIMS 6

/* Advance a row-major index over dims; returns 0 once every position has been visited. */
static inline int td_next_index(int32_t index[TD_MAX_DIMS], const int32_t dims[TD_MAX_DIMS])
{
    for (int d = TD_MAX_DIMS - 1; d >= 0; --d) {
        if (++index[d] < dims[d]) {
            return 1;
        }
        index[d] = 0;
    }
    return 0;
}

/* Element offset of an index under per-dimension element strides (0 strides broadcast). */
static inline size_t td_offset(const int32_t index[TD_MAX_DIMS], const int32_t strides[TD_MAX_DIMS])
{
    size_t offset = 0;
    for (int d = 0; d < TD_MAX_DIMS; ++d) {
        offset += (size_t)index[d] * (size_t)strides[d];
    }
    return offset;
}

static inline int td_shape_is_empty(const int32_t dims[TD_MAX_DIMS])
{
    for (int d = 0; d < TD_MAX_DIMS; ++d) {
        if (dims[d] <= 0) {
            return 1;
        }
    }
    return 0;
}

#endif /* TD_SHAPE_H */
