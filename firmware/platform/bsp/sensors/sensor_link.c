/* The sensor link (td_sensor_link.h): requests and answers travel through two named pipes in QEMU's working
 * directory, read and written with semihosting file calls. The host's sensor feed creates the pipes and answers
 * at once; QEMU is stopped while it does, so an answer costs no virtual time and a camera frame arrives in one
 * read (a second CMSDK UART would carry ~8 KB/s: QEMU hands it one byte per main-loop turn). Without a feed the
 * pipes do not exist and the board has no sensors.
 *
 * Request (board -> host), 7 bytes:  A5 kind seq count_lo count_hi arg_lo arg_hi
 * Answer (host -> board):            5A kind seq status len0 len1 len2 len3  payload[len] */
#include <stdint.h>

#include "td_sensor_link.h"
#include "td_virtual.h"

#define REQUEST_SYNC 0xA5u
#define ANSWER_SYNC 0x5Au
#define ANSWER_HEADER 8u

#define SYS_OPEN 0x01u
#define SYS_WRITE 0x05u
#define SYS_READ 0x06u
#define MODE_READ_BINARY 1u
#define MODE_APPEND_BINARY 9u /* "ab": O_WRONLY | O_CREAT | O_APPEND, never truncates */

static const char request_path[] = "tinydeploy-sensors.req";
static const char answer_path[] = "tinydeploy-sensors.ans";

static int link_state; /* 0: not opened yet, 1: open, -1: no feed */
static int request_handle = -1;
static int answer_handle = -1;
static uint8_t next_seq;

static td_sensor_kit kit;
static int kit_known;

static int semihost(uint32_t operation, const void *block)
{
    register uint32_t r0 __asm("r0") = operation;
    register const void *r1 __asm("r1") = block;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int)r0;
}

static int open_file(const char *path, uint32_t length, uint32_t mode)
{
    const uint32_t block[3] = {(uint32_t)(uintptr_t)path, mode, length};
    return semihost(SYS_OPEN, block);
}

/* Reads exactly `length` bytes (a pipe may hand them over in parts); 0 on success. */
static int read_all(uint8_t *data, uint32_t length)
{
    while (length > 0u) {
        uint32_t block[3] = {(uint32_t)answer_handle, (uint32_t)(uintptr_t)data, length};
        uint32_t missing = (uint32_t)semihost(SYS_READ, block);
        if (missing >= length) {
            return -1; /* end of file: the feed went away */
        }
        data += length - missing;
        length = missing;
    }
    return 0;
}

static int write_all(const uint8_t *data, uint32_t length)
{
    const uint32_t block[3] = {(uint32_t)request_handle, (uint32_t)(uintptr_t)data, length};
    return semihost(SYS_WRITE, block) == 0 ? 0 : -1;
}

static int link_open(void)
{
    if (link_state == 0) {
        /* The answer pipe first, read-only: if it is missing there is no feed, and nothing gets created. */
        answer_handle = open_file(answer_path, sizeof(answer_path) - 1u, MODE_READ_BINARY);
        if (answer_handle >= 0) {
            request_handle = open_file(request_path, sizeof(request_path) - 1u, MODE_APPEND_BINARY);
        }
        link_state = answer_handle >= 0 && request_handle >= 0 ? 1 : -1;
    }
    return link_state == 1;
}

static uint32_t irq_save(void)
{
    uint32_t primask;
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    return primask;
}

static void irq_restore(uint32_t primask)
{
    __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
}

int td_sensor_request(uint8_t kind, uint16_t count, uint16_t arg, void *dest, uint32_t capacity,
                      uint32_t *received)
{
    if (received != 0) {
        *received = 0;
    }
    /* One exchange at a time: the tick's requests (the microphone) must not split the sketch's. Interrupts stay
     * masked only while QEMU waits for the host, which takes no virtual time. */
    uint32_t primask = irq_save();
    if (!link_open()) {
        irq_restore(primask);
        return TD_LINK_NONE;
    }
    uint8_t seq = next_seq++;
    const uint8_t request[7] = {REQUEST_SYNC, kind, seq, (uint8_t)count, (uint8_t)(count >> 8), (uint8_t)arg,
                                (uint8_t)(arg >> 8)};
    uint8_t header[ANSWER_HEADER];
    int status = TD_LINK_NONE;
    if (write_all(request, sizeof(request)) == 0 && read_all(header, sizeof(header)) == 0 &&
        header[0] == ANSWER_SYNC && header[1] == kind && header[2] == seq) {
        uint32_t length = (uint32_t)header[4] | ((uint32_t)header[5] << 8) | ((uint32_t)header[6] << 16) |
                          ((uint32_t)header[7] << 24);
        uint32_t kept = length < capacity ? length : capacity;
        int ok = dest == 0 || kept == 0u || read_all((uint8_t *)dest, kept) == 0;
        for (uint32_t rest = length - kept; ok && rest > 0u;) { /* more than the buffer holds: dropped */
            uint8_t scrap[64];
            uint32_t part = rest < sizeof(scrap) ? rest : (uint32_t)sizeof(scrap);
            ok = read_all(scrap, part) == 0;
            rest -= part;
        }
        if (ok) {
            status = (int)header[3];
            if (received != 0) {
                *received = kept;
            }
        }
    }
    if (status == TD_LINK_NONE) {
        link_state = -1; /* a broken link stays broken: the sensors are gone, as if unplugged */
    }
    irq_restore(primask);
    return status;
}

const td_sensor_kit *td_sensor_kit_info(void)
{
    if (!kit_known) {
        uint8_t answer[2] = {0, 0};
        uint32_t received = 0;
        if (td_sensor_request(TD_SENSOR_HELLO, 0, 0, answer, sizeof(answer), &received) == TD_LINK_OK &&
            received == sizeof(answer)) {
            kit.revision = answer[0];
            kit.parts = answer[1];
        }
        kit_known = 1;
    }
    return &kit;
}
