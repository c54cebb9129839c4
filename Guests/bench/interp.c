// Benchmark: a small stack-machine bytecode interpreter. Two bytecode programs (counting primes
// by trial division; summing Collatz sequence lengths) run under two dispatch loops: a C
// `switch` and direct threading through a table of label addresses (computed goto, an
// indirect jump per bytecode). Both loops must give the same results; they are printed.
#include "rt.h"

/* Hot kernels start on their own 4 KiB page, so that the code layout (and which loops straddle a
 * page boundary) does not move when the runtime in Guests/lib grows. */
#define HOT __attribute__((noinline, aligned(4096)))

#define PRIME_LIMIT 25000
#define COLLATZ_LIMIT 6000

/* One bytecode word: opcode in the low 8 bits, signed operand in the upper 24. */
enum {
    OP_HALT, OP_PUSH, OP_LOAD, OP_STORE, OP_INC, OP_DUP, OP_DROP,
    OP_ADD, OP_SUB, OP_MUL, OP_MODU, OP_AND, OP_SHR, OP_LTU, OP_GTU, OP_EQ,
    OP_JMP, OP_JZ, OP_JNZ,
    OP_COUNT
};

#define MAX_CODE 256
#define STACK 64
#define VARS 8

struct program {
    u32 code[MAX_CODE];
    int n;
};

static struct program primes, collatz;
static volatile u32 limit_primes = PRIME_LIMIT, limit_collatz = COLLATZ_LIMIT;

static int emit(struct program *p, u32 op, s32 arg) {
    p->code[p->n] = op | (u32)arg << 8;
    return p->n++;
}
static void patch(struct program *p, int at, int target) {
    p->code[at] = (p->code[at] & 0xFF) | (u32)target << 8;
}

/* vars: 0 = count, 1 = n, 2 = d, 3 = limit */
static void build_primes(struct program *p, u32 limit) {
    p->n = 0;
    emit(p, OP_PUSH, 0), emit(p, OP_STORE, 0);
    emit(p, OP_PUSH, 2), emit(p, OP_STORE, 1);
    emit(p, OP_PUSH, (s32)limit), emit(p, OP_STORE, 3);
    int loop_n = emit(p, OP_LOAD, 1);
    emit(p, OP_LOAD, 3), emit(p, OP_LTU, 0);
    int to_done = emit(p, OP_JZ, 0);
    emit(p, OP_PUSH, 2), emit(p, OP_STORE, 2);
    int loop_d = emit(p, OP_LOAD, 2);
    emit(p, OP_DUP, 0), emit(p, OP_MUL, 0), emit(p, OP_LOAD, 1), emit(p, OP_GTU, 0);
    int to_prime = emit(p, OP_JNZ, 0);
    emit(p, OP_LOAD, 1), emit(p, OP_LOAD, 2), emit(p, OP_MODU, 0);
    int to_next = emit(p, OP_JZ, 0);
    emit(p, OP_INC, 2), emit(p, OP_JMP, loop_d);
    patch(p, to_prime, emit(p, OP_INC, 0));
    patch(p, to_next, emit(p, OP_INC, 1));
    emit(p, OP_JMP, loop_n);
    patch(p, to_done, emit(p, OP_LOAD, 0));
    emit(p, OP_HALT, 0);
}

/* vars: 0 = total steps, 1 = i, 2 = x, 3 = limit */
static void build_collatz(struct program *p, u32 limit) {
    p->n = 0;
    emit(p, OP_PUSH, 0), emit(p, OP_STORE, 0);
    emit(p, OP_PUSH, 1), emit(p, OP_STORE, 1);
    emit(p, OP_PUSH, (s32)limit), emit(p, OP_STORE, 3);
    int loop_i = emit(p, OP_LOAD, 1);
    emit(p, OP_LOAD, 3), emit(p, OP_LTU, 0);
    int to_done = emit(p, OP_JZ, 0);
    emit(p, OP_LOAD, 1), emit(p, OP_STORE, 2);
    int loop_x = emit(p, OP_LOAD, 2);
    emit(p, OP_PUSH, 1), emit(p, OP_EQ, 0);
    int to_next = emit(p, OP_JNZ, 0);
    emit(p, OP_INC, 0);
    emit(p, OP_LOAD, 2), emit(p, OP_PUSH, 1), emit(p, OP_AND, 0);
    int to_odd = emit(p, OP_JNZ, 0);
    emit(p, OP_LOAD, 2), emit(p, OP_PUSH, 1), emit(p, OP_SHR, 0), emit(p, OP_STORE, 2);
    emit(p, OP_JMP, loop_x);
    patch(p, to_odd, emit(p, OP_LOAD, 2));
    emit(p, OP_PUSH, 3), emit(p, OP_MUL, 0), emit(p, OP_PUSH, 1), emit(p, OP_ADD, 0);
    emit(p, OP_STORE, 2), emit(p, OP_JMP, loop_x);
    patch(p, to_next, emit(p, OP_INC, 1));
    emit(p, OP_JMP, loop_i);
    patch(p, to_done, emit(p, OP_LOAD, 0));
    emit(p, OP_HALT, 0);
}

struct result {
    u32 value;
    u32 steps; /* bytecodes executed */
};

#define ARG ((s32)w >> 8)

HOT static struct result run_switch(const u32 *code) {
    u32 stack[STACK], vars[VARS] = {0};
    u32 *sp = stack;
    const u32 *ip = code;
    u32 steps = 0;
    for (;;) {
        u32 w = *ip++;
        steps++;
        switch (w & 0xFF) {
        case OP_HALT: return (struct result){sp[-1], steps};
        case OP_PUSH: *sp++ = (u32)ARG; break;
        case OP_LOAD: *sp++ = vars[ARG]; break;
        case OP_STORE: vars[ARG] = *--sp; break;
        case OP_INC: vars[ARG]++; break;
        case OP_DUP: sp[0] = sp[-1]; sp++; break;
        case OP_DROP: sp--; break;
        case OP_ADD: sp--; sp[-1] += sp[0]; break;
        case OP_SUB: sp--; sp[-1] -= sp[0]; break;
        case OP_MUL: sp--; sp[-1] *= sp[0]; break;
        case OP_MODU: sp--; sp[-1] = sp[0] ? sp[-1] % sp[0] : 0; break;
        case OP_AND: sp--; sp[-1] &= sp[0]; break;
        case OP_SHR: sp--; sp[-1] >>= sp[0] & 31; break;
        case OP_LTU: sp--; sp[-1] = sp[-1] < sp[0]; break;
        case OP_GTU: sp--; sp[-1] = sp[-1] > sp[0]; break;
        case OP_EQ: sp--; sp[-1] = sp[-1] == sp[0]; break;
        case OP_JMP: ip = code + ARG; break;
        case OP_JZ: if (*--sp == 0) ip = code + ARG; break;
        case OP_JNZ: if (*--sp != 0) ip = code + ARG; break;
        default: return (struct result){0xDEADDEAD, steps};
        }
    }
}

HOT static struct result run_threaded(const u32 *code) {
    static const void *const labels[OP_COUNT] = {
        &&op_halt, &&op_push, &&op_load, &&op_store, &&op_inc, &&op_dup, &&op_drop,
        &&op_add, &&op_sub, &&op_mul, &&op_modu, &&op_and, &&op_shr, &&op_ltu, &&op_gtu, &&op_eq,
        &&op_jmp, &&op_jz, &&op_jnz,
    };
    u32 stack[STACK], vars[VARS] = {0};
    u32 *sp = stack;
    const u32 *ip = code;
    u32 steps = 0, w;
#define NEXT                                                                                  \
    do {                                                                                      \
        w = *ip++;                                                                            \
        steps++;                                                                              \
        goto *labels[w & 0xFF];                                                               \
    } while (0)
    NEXT;
op_halt: return (struct result){sp[-1], steps};
op_push: *sp++ = (u32)ARG; NEXT;
op_load: *sp++ = vars[ARG]; NEXT;
op_store: vars[ARG] = *--sp; NEXT;
op_inc: vars[ARG]++; NEXT;
op_dup: sp[0] = sp[-1]; sp++; NEXT;
op_drop: sp--; NEXT;
op_add: sp--; sp[-1] += sp[0]; NEXT;
op_sub: sp--; sp[-1] -= sp[0]; NEXT;
op_mul: sp--; sp[-1] *= sp[0]; NEXT;
op_modu: sp--; sp[-1] = sp[0] ? sp[-1] % sp[0] : 0; NEXT;
op_and: sp--; sp[-1] &= sp[0]; NEXT;
op_shr: sp--; sp[-1] >>= sp[0] & 31; NEXT;
op_ltu: sp--; sp[-1] = sp[-1] < sp[0]; NEXT;
op_gtu: sp--; sp[-1] = sp[-1] > sp[0]; NEXT;
op_eq: sp--; sp[-1] = sp[-1] == sp[0]; NEXT;
op_jmp: ip = code + ARG; NEXT;
op_jz: if (*--sp == 0) ip = code + ARG; NEXT;
op_jnz: if (*--sp != 0) ip = code + ARG; NEXT;
#undef NEXT
}

static u32 report(const char *name, u32 limit, struct program *p) {
    struct result a = run_switch(p->code);
    struct result b = run_threaded(p->code);
    printf("interp: %s %u = %u (%u bytecodes), threaded %s\n", name, limit, a.value, a.steps,
           a.value == b.value && a.steps == b.steps ? "agrees" : "DIFFERS");
    return (a.value == b.value && a.steps == b.steps ? 0 : 1);
}

int main(void) {
    build_primes(&primes, limit_primes);
    build_collatz(&collatz, limit_collatz);
    u32 bad = report("primes below", limit_primes, &primes);
    bad += report("collatz steps below", limit_collatz, &collatz);
    printf("interp: mismatches %u\n", bad);
    return 0;
}
