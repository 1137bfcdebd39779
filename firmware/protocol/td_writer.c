/* See td_writer.h. */
#include "td_writer.h"

#include "td_crc32.h"
#include "td_format.h"

void td_writer_flush(td_writer *writer)
{
    if (writer->length > 0u && writer->write != 0) {
        writer->write(writer->buffer, writer->length);
    }
    writer->length = 0u;
}

void td_writer_byte(td_writer *writer, char c)
{
    if (writer->length == writer->capacity) {
        td_writer_flush(writer);
    }
    writer->buffer[writer->length++] = c;
}

void td_writer_char(td_writer *writer, char c)
{
    if (writer->counts_crc) {
        writer->crc = td_crc32_update(writer->crc, &c, 1u);
    }
    td_writer_byte(writer, c);
}

void td_writer_str(td_writer *writer, const char *s)
{
    while (*s != '\0') {
        td_writer_char(writer, *s++);
    }
}

static void put_digits(td_writer *writer, const char *digits, uint32_t count)
{
    for (uint32_t i = 0u; i < count; ++i) {
        td_writer_char(writer, digits[i]);
    }
}

void td_writer_u32(td_writer *writer, uint32_t value)
{
    char digits[TD_FORMAT_I32_MAX];
    put_digits(writer, digits, td_format_u32(digits, value));
}

void td_writer_i32(td_writer *writer, int32_t value)
{
    char digits[TD_FORMAT_I32_MAX];
    put_digits(writer, digits, td_format_i32(digits, value));
}
