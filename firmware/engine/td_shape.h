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

/* A binary op's output shape and where each output element's operands sit in its two inputs. */
typedef struct {
    int32_t dims[TD_MAX_DIMS];     /* the output shape */
    int32_t strides1[TD_MAX_DIMS]; /* element strides of input 1 per output dimension (0: broadcast) */
    int32_t strides2[TD_MAX_DIMS];
} td_broadcast;

/* A row-major walk over a td_broadcast's output: at1 and at2 are the element offsets of the current output
 * element's operands, kept up to date step by step (no multiplications per element). */
typedef struct {
    int32_t index[TD_MAX_DIMS];
    size_t at1, at2;
} td_broadcast_walk;

/* Starts a walk at the first output element; returns 0 when the output is empty (nothing to visit). */
static inline int td_broadcast_begin(td_broadcast_walk *walk, const td_broadcast *shape)
{
    for (int d = 0; d < TD_MAX_DIMS; ++d) {
        walk->index[d] = 0;
    }
    walk->at1 = 0;
    walk->at2 = 0;
    return !td_shape_is_empty(shape->dims);
}

/* Moves to the next output element; returns 0 once every element has been visited. */
static inline int td_broadcast_next(td_broadcast_walk *walk, const td_broadcast *shape)
{
    for (int d = TD_MAX_DIMS - 1; d >= 0; --d) {
        if (++walk->index[d] < shape->dims[d]) {
            walk->at1 += (size_t)shape->strides1[d];
            walk->at2 += (size_t)shape->strides2[d];
            return 1;
        }
        walk->index[d] = 0; /* back to the start of this dimension (unsigned arithmetic: exact modulo 2^n) */
        walk->at1 -= (size_t)(shape->dims[d] - 1) * (size_t)shape->strides1[d];
        walk->at2 -= (size_t)(shape->dims[d] - 1) * (size_t)shape->strides2[d];
    }
    return 0;
}

#endif /* TD_SHAPE_H */
