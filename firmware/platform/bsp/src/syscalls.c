/* newlib system calls for the virtual board: stdout/stderr go to UART0, the heap grows from the end of
 * .bss towards the stack, and exit ends QEMU through semihosting. Also the stack and heap high-water
 * marks of td_bsp.h. */
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>

#include "td_bsp.h"
#include "td_virtual.h"

extern uint8_t end;          /* first byte after .bss: the heap starts here */
extern uint8_t __StackLimit; /* lowest address of the reserved stack */
extern uint8_t __StackTop;

#define STACK_PAINT 0xA5A5A5A5u

static uint8_t *heap_top = &end;
static uint8_t *heap_top_max = &end;

/* Declared here: newlib calls them, no header declares them. */
void *_sbrk(ptrdiff_t increment);
int _write(int fd, const void *data, size_t length);
int _read(int fd, void *data, size_t length);
int _close(int fd);
int _fstat(int fd, struct stat *st);
int _isatty(int fd);
int _lseek(int fd, int offset, int whence);
int _getpid(void);
int _kill(int pid, int signal);
void _exit(int status) __attribute__((noreturn));

void *_sbrk(ptrdiff_t increment)
{
    uint8_t *previous = heap_top;
    if (increment > 0 && (size_t)increment > (size_t)(&__StackLimit - heap_top)) {
        errno = ENOMEM; /* the heap may not grow into the stack reserve */
        return (void *)-1;
    }
    heap_top += increment;
    if (heap_top > heap_top_max) {
        heap_top_max = heap_top;
    }
    return previous;
}

/* Paints everything between the heap start and the current stack pointer, so the deepest stack use
 * can be found later even if the stack grew past its reserve. Runs before .bss users and malloc. */
__attribute__((noinline)) void td_memory_paint_stack(void)
{
    uint32_t *sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    for (uint32_t *word = (uint32_t *)(void *)&end; word < sp - 16; word++) {
        *word = STACK_PAINT;
    }
}

uint32_t td_bsp_stack_high_water(void)
{
    const uint32_t *word = (const uint32_t *)(const void *)heap_top_max;
    const uint32_t *top = (const uint32_t *)(const void *)&__StackTop;
    while (word < top && *word == STACK_PAINT) {
        word++;
    }
    return (uint32_t)((const uint8_t *)top - (const uint8_t *)word);
}

uint32_t td_bsp_heap_high_water(void)
{
    return (uint32_t)(heap_top_max - &end);
}

int _write(int fd, const void *data, size_t length)
{
    if (fd != 1 && fd != 2) {
        errno = EBADF;
        return -1;
    }
    td_uart_write(data, length);
    return (int)length;
}

int _read(int fd, void *data, size_t length)
{
    (void)fd;
    (void)data;
    (void)length;
    return 0; /* sketches read through Serial */
}

int _close(int fd)
{
    (void)fd;
    return -1;
}

int _fstat(int fd, struct stat *st)
{
    (void)fd;
    st->st_mode = S_IFCHR;
    return 0;
}

int _isatty(int fd)
{
    (void)fd;
    return 1;
}

int _lseek(int fd, int offset, int whence)
{
    (void)fd;
    (void)offset;
    (void)whence;
    return 0;
}

int _getpid(void)
{
    return 1;
}

int _kill(int pid, int signal)
{
    (void)pid;
    td_uart_write_string("\r\ntd-fault: abort\r\n"); /* abort() raises SIGABRT through here */
    td_uart_flush();
    td_semihosting_exit(128 + signal);
}

void _exit(int status)
{
    td_uart_flush();
    td_semihosting_exit(status);
}
