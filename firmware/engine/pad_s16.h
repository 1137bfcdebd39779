/* PAD / PADV2 of an int16 tensor (the padding value: the output zero point unless given). */
#ifndef TD_PAD_S16_H
#define TD_PAD_S16_H

#include <stdint.h>

#include "pad.h"

void td_pad_s16(const td_pad_params *params, const int16_t *input, int16_t *output);

#endif /* TD_PAD_S16_H */
