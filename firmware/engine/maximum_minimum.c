/* Reference MAXIMUM / MINIMUM. */
#include "maximum_minimum.h"

#include <stddef.h>

void td_maximum_s8(const td_broadcast *shape, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    td_broadcast_walk walk;
    for (int more = td_broadcast_begin(&walk, shape); more; more = td_broadcast_next(&walk, shape)) {
        *output++ = input1[walk.at1] > input2[walk.at2] ? input1[walk.at1] : input2[walk.at2];
    }
}

void td_minimum_s8(const td_broadcast *shape, const int8_t *input1, const int8_t *input2, int8_t *output)
{
    td_broadcast_walk walk;
    for (int more = td_broadcast_begin(&walk, shape); more; more = td_broadcast_next(&walk, shape)) {
        *output++ = input1[walk.at1] < input2[walk.at2] ? input1[walk.at1] : input2[walk.at2];
    }
}

void td_maximum_s16(const td_broadcast *shape, const int16_t *input1, const int16_t *input2, int16_t *output)
{
    td_broadcast_walk walk;
    for (int more = td_broadcast_begin(&walk, shape); more; more = td_broadcast_next(&walk, shape)) {
        *output++ = input1[walk.at1] > input2[walk.at2] ? input1[walk.at1] : input2[walk.at2];
    }
}

void td_minimum_s16(const td_broadcast *shape, const int16_t *input1, const int16_t *input2, int16_t *output)
{
    td_broadcast_walk walk;
    for (int more = td_broadcast_begin(&walk, shape); more; more = td_broadcast_next(&walk, shape)) {
        *output++ = input1[walk.at1] < input2[walk.at2] ? input1[walk.at1] : input2[walk.at2];
    }
}
