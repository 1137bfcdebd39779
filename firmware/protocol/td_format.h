/* Decimal formatting without printf, shared by the tinydeploy protocol and the MLPerf Tiny commands. */
#ifndef TD_FORMAT_H
#define TD_FORMAT_H

#include <stdint.h>

#define TD_FORMAT_I32_MAX 11u /* "-2147483648" */

/* Writes the decimal digits of value into out (room for TD_FORMAT_I32_MAX chars, no terminator); returns how many. */
static inline uint32_t td_format_u32(char *out, uint32_t value)
{
    char reversed[10];
    uint32_t n = 0u;
    do {
        reversed[n++] = (char)('0' + (value % 10u));
        value /= 10u;
    } while (value != 0u);
    for (uint32_t i = 0u; i < n; ++i) {
        out[i] = reversed[n - 1u - i];
    }
    return n;
}

static inline uint32_t td_format_i32(char *out, int32_t value)
{
    if (value < 0) {
        out[0] = '-';
        return 1u + td_format_u32(out + 1, (uint32_t)0u - (uint32_t)value);
    }
    return td_format_u32(out, (uint32_t)value);
}

#endif /* TD_FORMAT_H */
