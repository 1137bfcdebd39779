/* Reference MAXIMUM / MINIMUM. */
#include "maximum_minimum.h"

#include <stddef.h>

#define TD_BINARY_SELECT(name, type, pick)                                                                  \
    void name(const td_broadcast *shape, const type *input1, const type *input2, type *output)            \
    {                                                                                                       \
        if (td_shape_is_empty(shape->dims)) {                                                               \
            return;                                                                                         \
        }                                                                                                   \
        int32_t index[TD_MAX_DIMS] = {0};                                                                   \
        size_t position = 0;                                                                                \
        do {                                                                                                \
            const type a = input1[td_offset(index, shape->strides1)];                                       \
            const type b = input2[td_offset(index, shape->strides2)];                                       \
            output[position++] = (pick) ? a : b;                                                            \
        } while (td_next_index(index, shape->dims));                                                        \
    }

TD_BINARY_SELECT(td_maximum_s8, int8_t, a > b)
TD_BINARY_SELECT(td_minimum_s8, int8_t, a < b)
TD_BINARY_SELECT(td_maximum_s16, int16_t, a > b)
TD_BINARY_SELECT(td_minimum_s16, int16_t, a < b)
