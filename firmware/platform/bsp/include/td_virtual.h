/* Internal interface of the virtual board's support layer (QEMU mps2-an386). Sketches use Arduino.h. */
#ifndef TD_VIRTUAL_H
#define TD_VIRTUAL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Peripheral clock of the mps2-an386 (CMSDK UART, SysTick): 25 MHz of QEMU virtual time. */
#define TD_SYSCLK_HZ 25000000u

/* Exit status QEMU returns after a fault, so a crash is distinguishable from a clean exit (0). */
#define TD_FAULT_EXIT_STATUS 3

void td_uart_init(uint32_t baud);
void td_uart_write_byte(uint8_t byte);
void td_uart_write(const void *data, size_t length);
void td_uart_write_string(const char *text);
int td_uart_read_byte(void);   /* -1 when no byte is waiting */
int td_uart_peek_byte(void);   /* -1 when no byte is waiting */
size_t td_uart_available(void);
/* Sleeps until the next interrupt (a received byte or the 1 ms tick) unless input is waiting. */
void td_uart_wait_for_input(void);
void td_uart_flush(void);

void td_clock_init(void);
uint32_t td_clock_micros(void);
uint32_t td_clock_millis(void);
void td_clock_delay_ms(uint32_t ms);
/* A function the 1 ms SysTick interrupt calls after counting the millisecond (the virtual microphone's block
 * clock); NULL removes it. */
void td_clock_set_tick(void (*tick)(uint32_t millis));

void td_memory_paint_stack(void);

/* Ends the QEMU process with `status` through semihosting; never returns. */
void td_semihosting_exit(int status) __attribute__((noreturn));

#ifdef __cplusplus
}
#endif

#endif /* TD_VIRTUAL_H */
