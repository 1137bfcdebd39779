/* Weak defaults for the board hooks in td_bsp.h: 0 means "not measured on this board". A board layer
 * overrides them with strong definitions. Kept in a file of their own so that a linker scanning archives
 * only pulls them in when no board object defines the hooks. */
#include "td_bsp.h"

#if defined(__GNUC__)
#define TD_WEAK __attribute__((weak))
#else
#define TD_WEAK
#endif

TD_WEAK uint32_t td_bsp_stack_high_water(void) { return 0; }

TD_WEAK uint32_t td_bsp_heap_high_water(void) { return 0; }
