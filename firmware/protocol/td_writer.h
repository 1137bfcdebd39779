/* Buffered text output to the serial port, shared by the tinydeploy protocol and the MLPerf Tiny runner protocol:
 * characters collect in the writer's buffer and go out through its write callback when it fills or on a flush.
 * With counts_crc set, the CRC-32 of what td_writer_char/str/u32/i32 put is kept running in `crc` (the framed
 * protocol's line checksum); td_writer_byte puts a character outside it. */
#ifndef TD_WRITER_H
#define TD_WRITER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct td_writer {
    char *buffer;
    uint32_t capacity;
    uint32_t length;
    uint32_t crc;
    int counts_crc;
    void (*write)(const char *data, uint32_t len);
} td_writer;

void td_writer_flush(td_writer *writer);
void td_writer_byte(td_writer *writer, char c);
void td_writer_char(td_writer *writer, char c);
void td_writer_str(td_writer *writer, const char *s);
void td_writer_u32(td_writer *writer, uint32_t value);
void td_writer_i32(td_writer *writer, int32_t value);

#ifdef __cplusplus
}
#endif

#endif /* TD_WRITER_H */
