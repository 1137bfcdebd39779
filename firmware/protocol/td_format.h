/* Decimal formatting without printf and number parsing, shared by the tinydeploy protocol and the MLPerf Tiny
 * commands. */
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

/* The value of one hex digit (either case), or -1. */
static inline int td_hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decimal without sign into *out, overflow-checked, at most max_digits digits (0: any number); 0 on success. */
static inline int td_parse_u32(const char *s, uint32_t *out, uint32_t max_digits)
{
    uint32_t value = 0u;
    uint32_t n = 0u;
    if (*s == '\0') return -1;
    for (; *s != '\0'; ++s, ++n) {
        if (*s < '0' || *s > '9' || (max_digits != 0u && n >= max_digits)) return -1;
        uint32_t digit = (uint32_t)(*s - '0');
        if (value > (0xFFFFFFFFu - digit) / 10u) return -1;
        value = value * 10u + digit;
    }
    *out = value;
    return 0;
}

#endif /* TD_FORMAT_H */
