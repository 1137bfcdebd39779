/* The device side of the protocol as a host program: serial bytes on stdin/stdout (a pseudo-terminal in
 * the tests), the same td_protocol.c the boards run, and the toy engine. */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "td_bsp.h"
#include "td_engine.h"
#include "td_protocol.h"

extern int toy_fail_init;

static void write_stdout(const char *data, uint32_t len)
{
    while (len > 0u) {
        ssize_t written = write(STDOUT_FILENO, data, len);
        if (written <= 0) {
            _exit(3);
        }
        data += written;
        len -= (uint32_t)written;
    }
}

static uint32_t micros_monotonic(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint32_t)((uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u);
}

/* A strong definition overrides the protocol library's weak default (the stack one stays at 0). */
uint32_t td_bsp_heap_high_water(void) { return 777u; }

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--fail-init") == 0) toy_fail_init = 1;
    }
    static const td_protocol_config config = {
        "hostpc", "toy \"model\" *=% \xe2\x98\x83", "0123456789abcdef", "test-build", write_stdout,
        micros_monotonic, "int8,uint8", "int8,int16", 0, 0,
    };
    /* Boot noise, including a line that mimics the prefix but fails the checksum. */
    static const char noise[] = "\x00\xff boot: host device\r\n@td - ready proto=2*00000000\r\npartial banner ";
    write_stdout(noise, sizeof noise - 1u);
    int status = td_engine_init();
    td_protocol_init(&config);
    td_protocol_announce(status);
    uint8_t buffer[512];
    for (;;) {
        ssize_t got = read(STDIN_FILENO, buffer, sizeof buffer);
        if (got <= 0) {
            return 0;
        }
        td_protocol_feed(buffer, (uint32_t)got);
    }
}
