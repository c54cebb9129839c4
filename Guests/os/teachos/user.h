/* teachos user programs: the system call wrappers (user_crt.S) and a tiny libc (user_lib.c).
 * Only files named user_*.c / user_*.S run in user mode: the linker script puts them in the
 * user image at 0x00400000. They must not call kernel functions (the build checks this). */
#ifndef TEACHOS_USER_H
#define TEACHOS_USER_H

#include "abi.h"

typedef unsigned int u32;
typedef int s32;

/* System calls */
__attribute__((noreturn)) void exit(int status);
int write(int fd, const void *buf, u32 len);
int getpid(void);
int yield(void);
int sleep(u32 ticks);
void *sbrk(s32 increment); /* (void *)-1 on failure */
u32 time(void);            /* timer ticks since boot */

/* Library */
u32 strlen(const char *s);
void uprintf(const char *fmt, ...); /* %d %u %x %s %c %%, width, '0' and '-' flags */

/* Programs (user_programs.c) */
int prog_cpu(int arg);
int prog_syscalls(int arg);
int prog_memory(int arg);
int prog_sleeper(int arg);
int prog_cow(int arg);
int prog_bad(int arg);

enum {
    BAD_KERNEL_MEMORY,
    BAD_RESERVED_INSTRUCTION,
    BAD_TRAP,
    BAD_OVERFLOW,
    BAD_WRITE_TEXT,
    BAD_NULL,
    BAD_PRIVILEGED,
};

#endif
