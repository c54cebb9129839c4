// Benchmark: integer matrix multiply, C = A x B on 96x96 matrices of 32-bit words (arithmetic
// modulo 2^32), for several rounds. Even rounds use the i-j-k loop order (B walked by column,
// a 384-byte stride), odd rounds i-k-j (rows streamed); every round also checks one row of C
// by the other order. After each round A becomes C, so the rounds form a chain.
#include "rt.h"

/* Hot kernels start on their own 4 KiB page, so that the code layout (and which loops straddle a
 * page boundary) does not move when the runtime in Guests/lib grows. */
#define HOT __attribute__((noinline, aligned(4096)))

#define N 96
#define ROUNDS 60

static u32 A[N][N], B[N][N], C[N][N];
static volatile u32 seed = 0x9E3779B9u;

static u32 xorshift32(u32 *s) {
    u32 x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

HOT static void mul_ijk(void) {
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            u32 acc = 0;
            for (int k = 0; k < N; k++) acc += A[i][k] * B[k][j];
            C[i][j] = acc;
        }
}

HOT static void mul_ikj(void) {
    for (int i = 0; i < N; i++) {
        u32 *c = C[i];
        for (int j = 0; j < N; j++) c[j] = 0;
        for (int k = 0; k < N; k++) {
            u32 a = A[i][k];
            const u32 *b = B[k];
            for (int j = 0; j < N; j++) c[j] += a * b[j];
        }
    }
}

/* Recomputes row i of C by the straightforward formula; returns the number of wrong entries. */
static u32 check_row(int i) {
    u32 bad = 0;
    for (int j = 0; j < N; j++) {
        u32 acc = 0;
        for (int k = 0; k < N; k++) acc += A[i][k] * B[k][j];
        if (acc != C[i][j]) bad++;
    }
    return bad;
}

int main(void) {
    u32 s = seed;
    for (int i = 0; i < N; i++)
        for (int j = 0; j < N; j++) {
            A[i][j] = xorshift32(&s) & 0xFFFF;
            B[i][j] = (xorshift32(&s) & 0xFF) - 128;
        }
    u32 sum = 0, bad = 0;
    for (int r = 0; r < ROUNDS; r++) {
        if (r & 1) mul_ikj(); else mul_ijk();
        bad += check_row((r * 37) % N);
        u32 t = 0;
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                t = (t ^ C[i][j]) * 16777619u;
                A[i][j] = C[i][j] >> 7 ^ C[j][i];
            }
        sum = (sum << 3 | sum >> 29) ^ t;
        if (r % 10 == 9) printf("matmul: round %u hash %08x C[0][0] %08x C[95][95] %08x\n", r + 1, t, C[0][0], C[N - 1][N - 1]);
    }
    printf("matmul: %ux%u, %u rounds, mismatches %u, checksum %08x\n", N, N, ROUNDS, bad, sum);
    return 0;
}
