/* CRC-32 as zlib and Ethernet compute it (reflected polynomial 0xEDB88320), so the host checks lines with
 * Python's zlib.crc32. */
#ifndef TD_CRC32_H
#define TD_CRC32_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TD_CRC32_INIT 0xFFFFFFFFu

/* Continue a running CRC (start from TD_CRC32_INIT); finish with td_crc32_final. */
uint32_t td_crc32_update(uint32_t crc, const void *data, uint32_t len);

static inline uint32_t td_crc32_final(uint32_t crc) { return crc ^ 0xFFFFFFFFu; }

#ifdef __cplusplus
}
#endif

#endif /* TD_CRC32_H */
