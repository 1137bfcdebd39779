/* CMSDK APB UART0 of the mps2-an386 (0x40004000), wired by QEMU to the first -serial backend.
 * Received bytes go into a ring buffer from the RX interrupt; while it is full the interrupt is masked
 * and QEMU holds further bytes back in its socket, so nothing is lost. */
#include <stdint.h>

#include "td_virtual.h"

#define UART0_BASE 0x40004000u
#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u))
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))
#define UART_INTCLEAR (*(volatile uint32_t *)(UART0_BASE + 0x0Cu))
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))

#define STATE_TX_FULL (1u << 0)
#define STATE_RX_FULL (1u << 1)
#define CTRL_TX_EN (1u << 0)
#define CTRL_RX_EN (1u << 1)
#define CTRL_RX_INT_EN (1u << 3)
#define INT_RX (1u << 1)

#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)
#define NVIC_ISPR0 (*(volatile uint32_t *)0xE000E200u)
#define UART0_RX_IRQ 0u

#define RX_BUFFER_SIZE 256u /* a power of two */

static volatile uint8_t rx_buffer[RX_BUFFER_SIZE];
static volatile uint32_t rx_head; /* written by the interrupt */
static volatile uint32_t rx_tail; /* written by the reader */

void UART0_RX_Handler(void);

void td_uart_init(uint32_t baud)
{
    if (baud == 0) {
        baud = 115200;
    }
    UART_CTRL = 0;
    UART_BAUDDIV = TD_SYSCLK_HZ / baud; /* QEMU ignores the rate; set it as real hardware needs */
    rx_head = rx_tail = 0;
    UART_INTCLEAR = INT_RX;
    UART_CTRL = CTRL_TX_EN | CTRL_RX_EN | CTRL_RX_INT_EN;
    NVIC_ISER0 = 1u << UART0_RX_IRQ;
}

void UART0_RX_Handler(void)
{
    /* Clear first, then drain: a byte that lands after the drain raises the interrupt again. */
    UART_INTCLEAR = INT_RX;
    while ((UART_STATE & STATE_RX_FULL) != 0) {
        if (rx_head - rx_tail >= RX_BUFFER_SIZE) {
            UART_CTRL &= ~CTRL_RX_INT_EN; /* full: leave the byte in the UART until the reader catches up */
            return;
        }
        rx_buffer[rx_head % RX_BUFFER_SIZE] = (uint8_t)UART_DATA;
        rx_head = rx_head + 1;
    }
}

size_t td_uart_available(void)
{
    return (size_t)(rx_head - rx_tail);
}

void td_uart_wait_for_input(void)
{
    /* Masked check-then-sleep: an interrupt that comes between them still ends the WFI. */
    uint32_t primask;
    __asm volatile("mrs %0, primask\n\tcpsid i" : "=r"(primask)::"memory");
    if (rx_head == rx_tail) {
        __asm volatile("wfi" ::: "memory");
    }
    __asm volatile("msr primask, %0" ::"r"(primask) : "memory");
}

int td_uart_peek_byte(void)
{
    if (rx_head == rx_tail) {
        return -1;
    }
    return rx_buffer[rx_tail % RX_BUFFER_SIZE];
}

int td_uart_read_byte(void)
{
    if (rx_head == rx_tail) {
        return -1;
    }
    uint8_t byte = rx_buffer[rx_tail % RX_BUFFER_SIZE];
    rx_tail = rx_tail + 1;
    if ((UART_CTRL & CTRL_RX_INT_EN) == 0) {
        UART_CTRL |= CTRL_RX_INT_EN; /* room again: take the bytes QEMU held back */
        NVIC_ISPR0 = 1u << UART0_RX_IRQ;
    }
    return byte;
}

void td_uart_write_byte(uint8_t byte)
{
    while ((UART_STATE & STATE_TX_FULL) != 0) {
    }
    UART_DATA = byte;
}

void td_uart_write(const void *data, size_t length)
{
    const uint8_t *bytes = (const uint8_t *)data;
    for (size_t i = 0; i < length; i++) {
        td_uart_write_byte(bytes[i]);
    }
}

void td_uart_write_string(const char *text)
{
    while (*text != '\0') {
        td_uart_write_byte((uint8_t)*text++);
    }
}

void td_uart_flush(void)
{
    while ((UART_STATE & STATE_TX_FULL) != 0) {
    }
}
