/* Vector table, reset and fault handlers of the virtual board (Cortex-M4F on QEMU mps2-an386). */
#include <stdint.h>

#include "td_virtual.h"

extern uint32_t __data_load__, __data_start__, __data_end__, __bss_start__, __bss_end__, __StackTop;
extern int main(void);
extern void __libc_init_array(void);
extern void _exit(int status) __attribute__((noreturn));

void Reset_Handler(void) __attribute__((noreturn));
void HardFault_Handler(void);
void td_fault_report(const uint32_t *frame, uint32_t exc_return);
void Default_Handler(void);
void SysTick_Handler(void);
void UART0_RX_Handler(void);

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_MMFAR (*(volatile uint32_t *)0xE000ED34u)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)

typedef void (*vector_fn)(void);

/* 16 system exceptions + the mps2-an386's 32 external interrupts (UART0 RX is IRQ 0). */
__attribute__((section(".vectors"), used)) const vector_fn td_vector_table[16 + 32] = {
    (vector_fn)(uintptr_t)&__StackTop,
    Reset_Handler,
    Default_Handler,   /* NMI */
    HardFault_Handler,
    HardFault_Handler, /* MemManage (escalates anyway while disabled) */
    HardFault_Handler, /* BusFault */
    HardFault_Handler, /* UsageFault */
    0, 0, 0, 0,
    Default_Handler,   /* SVCall */
    Default_Handler,   /* DebugMon */
    0,
    Default_Handler,   /* PendSV */
    SysTick_Handler,
    UART0_RX_Handler,  /* IRQ 0 */
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler,
};

void Reset_Handler(void)
{
    SCB_CPACR |= 0xFu << 20; /* CP10/CP11 full access: the code is compiled for the FPU */
    __asm volatile("dsb\n\tisb" ::: "memory");

    uint32_t *src = &__data_load__;
    for (uint32_t *dst = &__data_start__; dst < &__data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &__bss_start__; dst < &__bss_end__;) {
        *dst++ = 0;
    }
    td_memory_paint_stack();
    td_clock_init();
    td_uart_init(115200);
    __libc_init_array();
    (void)main();
    _exit(0);
}

/* newlib's __libc_init_array calls these; -nostartfiles leaves them out. */
void _init(void) {}
void _fini(void) {}

/* Finds the stacked exception frame and hands it to td_fault_report. */
__attribute__((naked)) void HardFault_Handler(void)
{
    __asm volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "mov r1, lr\n\t"
        "b td_fault_report\n\t");
}

static void write_hex(const char *label, uint32_t value)
{
    static const char digits[] = "0123456789abcdef";
    char text[11] = {'0', 'x'};
    for (int i = 0; i < 8; i++) {
        text[2 + i] = digits[(value >> (28 - 4 * i)) & 0xFu];
    }
    text[10] = '\0';
    td_uart_write_string(label);
    td_uart_write_string(text);
}

/* Prints one marker line and ends QEMU with a non-zero status: a crash is visible, not a hang. */
void td_fault_report(const uint32_t *frame, uint32_t exc_return)
{
    td_uart_write_string("\r\ntd-fault: HardFault");
    write_hex(" pc=", frame[6]);
    write_hex(" lr=", frame[5]);
    write_hex(" cfsr=", SCB_CFSR);
    write_hex(" hfsr=", SCB_HFSR);
    write_hex(" bfar=", SCB_BFAR);
    write_hex(" exc_return=", exc_return);
    td_uart_write_string("\r\n");
    td_uart_flush();
    td_semihosting_exit(TD_FAULT_EXIT_STATUS);
}

void Default_Handler(void)
{
    td_uart_write_string("\r\ntd-fault: unexpected interrupt");
    write_hex(" vector=", SCB_ICSR & 0x1FFu);
    td_uart_write_string("\r\n");
    td_uart_flush();
    td_semihosting_exit(TD_FAULT_EXIT_STATUS);
}

void td_semihosting_exit(int status)
{
    /* SYS_EXIT_EXTENDED: a parameter block {ADP_Stopped_ApplicationExit, status} carries the status
     * (plain SYS_EXIT on 32-bit Arm can only say "success" or "failure"). */
    uint32_t block[2] = {0x20026u, (uint32_t)status};
    register uint32_t r0 __asm("r0") = 0x20u;
    register uint32_t *r1 __asm("r1") = block;
    __asm volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    for (;;) {
    }
}
