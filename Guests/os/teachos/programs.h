/* teachos: the built-in user programs, started in this order (pid 1, 2, ...). */
#ifndef TEACHOS_PROGRAMS_H
#define TEACHOS_PROGRAMS_H

struct program {
    const char *name; /* at most 10 characters, for the summary's columns */
    u32 main;         /* user address of int main(int arg) */
    u32 arg;
};
extern const struct program programs[];

#endif
