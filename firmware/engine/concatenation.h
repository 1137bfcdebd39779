/* CONCATENATION of tensors that share the output's type, scale and zero point (a pure copy of bytes). */
#ifndef TD_CONCATENATION_H
#define TD_CONCATENATION_H

#include <stdint.h>

typedef struct {
    int32_t inputs;        /* how many tensors */
    int32_t outer;         /* product of the dimensions before the axis */
    const int32_t *chunks; /* per input: bytes of its axis dimension times the dimensions after the axis */
} td_concatenation_params;

void td_concatenation_s8(const td_concatenation_params *params, const int8_t *const *inputs, int8_t *output);

#endif /* TD_CONCATENATION_H */
