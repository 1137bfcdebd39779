/* Time base: SysTick on the 25 MHz core clock, interrupting once per millisecond. Under
 * `-icount shift=4` this is QEMU's deterministic virtual time (16 ns per instruction). The DWT cycle
 * counter is not used: it reads 0 in QEMU 7.2. */
#include <stdint.h>

#include "td_virtual.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define ICSR_PENDSTSET (1u << 26)

#define TICKS_PER_MS (TD_SYSCLK_HZ / 1000u)
#define TICKS_PER_US (TD_SYSCLK_HZ / 1000000u)

static volatile uint32_t elapsed_ms;
static void (*volatile tick_hook)(uint32_t millis);

void SysTick_Handler(void);

void SysTick_Handler(void)
{
    elapsed_ms = elapsed_ms + 1;
    void (*tick)(uint32_t) = tick_hook;
    if (tick != 0) {
        tick(elapsed_ms);
    }
}

void td_clock_set_tick(void (*tick)(uint32_t millis))
{
    tick_hook = tick;
}

void td_clock_init(void)
{
    elapsed_ms = 0;
    SYST_RVR = TICKS_PER_MS - 1u;
    SYST_CVR = 0;
    SYST_CSR = 0x7u; /* enable, interrupt, core clock */
}

/* Milliseconds and the ticks into the current millisecond, read consistently even when the counter
 * has wrapped but its interrupt has not run yet (interrupts masked, or the wrap just happened). */
static void read_clock(uint32_t *ms, uint32_t *ticks)
{
    uint32_t primask;
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    uint32_t now_ms = elapsed_ms;
    uint32_t value = SYST_CVR;
    if ((SCB_ICSR & ICSR_PENDSTSET) != 0) {
        now_ms += 1u;
        value = SYST_CVR;
    }
    __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
    *ms = now_ms;
    *ticks = (TICKS_PER_MS - 1u) - value;
}

uint32_t td_clock_micros(void)
{
    uint32_t ms, ticks;
    read_clock(&ms, &ticks);
    return ms * 1000u + ticks / TICKS_PER_US;
}

uint32_t td_clock_millis(void)
{
    uint32_t ms, ticks;
    read_clock(&ms, &ticks);
    return ms;
}

/* Sleeps (WFI) through whole milliseconds and busy-waits only the last one: delay() then costs the host no CPU,
 * as on mbed where it sleeps the thread, and QEMU's virtual clock follows the host's while the CPU sleeps, so a
 * sketch waiting for a sensor in delay() waits about as long in real time. The result stays exact to the tick. */
void td_clock_delay_ms(uint32_t ms)
{
    for (; ms > 1000000u; ms -= 1000000u) { /* microseconds of longer delays would overflow */
        td_clock_delay_ms(1000000u);
    }
    uint32_t start = td_clock_micros();
    uint32_t total = ms * 1000u;
    while ((uint32_t)(td_clock_micros() - start) + 1000u < total) {
        __asm volatile("wfi" ::: "memory");
    }
    while ((uint32_t)(td_clock_micros() - start) < total) {
    }
}
