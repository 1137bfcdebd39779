/* Board-support hooks the protocol uses for its RAM report. Each board layer may define them; the
 * protocol library provides weak defaults that answer 0 ("not measured on this board"). */
#ifndef TD_BSP_H
#define TD_BSP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Deepest stack use since boot in bytes (painted stack), 0 if unknown. */
uint32_t td_bsp_stack_high_water(void);

/* Largest heap extent since boot in bytes, 0 if unknown. */
uint32_t td_bsp_heap_high_water(void);

#ifdef __cplusplus
}
#endif

#endif /* TD_BSP_H */
