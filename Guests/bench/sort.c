// Benchmark: sorting 32-bit keys. Each round fills an array from a PRNG, sorts one copy with
// quicksort (median of three, insertion sort below 16 elements, recursion on the smaller side)
// and another with heapsort, checks both are sorted and identical, and folds a checksum.
#include "rt.h"

/* Hot kernels start on their own 4 KiB page, so that the code layout (and which loops straddle a
 * page boundary) does not move when the runtime in Guests/lib grows. */
#define HOT __attribute__((noinline, aligned(4096)))

#define COUNT 100000
#define ROUNDS 6

static u32 a[COUNT], b[COUNT];
static volatile u32 seed = 0x1234567u;

static u32 xorshift32(u32 *s) {
    u32 x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

static void insertion_sort(u32 *v, int n) {
    for (int i = 1; i < n; i++) {
        u32 x = v[i];
        int j = i - 1;
        while (j >= 0 && v[j] > x) {
            v[j + 1] = v[j];
            j--;
        }
        v[j + 1] = x;
    }
}

static inline void swap(u32 *x, u32 *y) {
    u32 t = *x;
    *x = *y;
    *y = t;
}

HOT static void quicksort(u32 *v, int n) {
    while (n > 16) {
        int mid = n / 2;
        if (v[mid] < v[0]) swap(&v[mid], &v[0]);
        if (v[n - 1] < v[0]) swap(&v[n - 1], &v[0]);
        if (v[n - 1] < v[mid]) swap(&v[n - 1], &v[mid]);
        u32 pivot = v[mid];
        int i = 0, j = n - 1;
        for (;;) {
            while (v[i] < pivot) i++;
            while (v[j] > pivot) j--;
            if (i >= j) break;
            swap(&v[i], &v[j]);
            i++;
            j--;
        }
        /* v[0..j] <= pivot <= v[j+1..n-1]: recurse on the smaller part, loop on the larger */
        int left = j + 1, right = n - left;
        if (left < right) {
            quicksort(v, left);
            v += left;
            n = right;
        } else {
            quicksort(v + left, right);
            n = left;
        }
    }
    insertion_sort(v, n);
}

static void sift_down(u32 *v, int root, int n) {
    u32 x = v[root];
    for (;;) {
        int child = 2 * root + 1;
        if (child >= n) break;
        if (child + 1 < n && v[child + 1] > v[child]) child++;
        if (v[child] <= x) break;
        v[root] = v[child];
        root = child;
    }
    v[root] = x;
}

HOT static void heapsort(u32 *v, int n) {
    for (int i = n / 2 - 1; i >= 0; i--) sift_down(v, i, n);
    for (int end = n - 1; end > 0; end--) {
        swap(&v[0], &v[end]);
        sift_down(v, 0, end);
    }
}

static u32 unsorted(const u32 *v, int n) {
    u32 bad = 0;
    for (int i = 1; i < n; i++) bad += v[i - 1] > v[i];
    return bad;
}

int main(void) {
    u32 s = seed, sum = 0, bad = 0;
    for (int r = 0; r < ROUNDS; r++) {
        /* alternate full-range keys and keys with many duplicates */
        u32 mask = r & 1 ? 0x3FF : 0xFFFFFFFFu;
        for (int i = 0; i < COUNT; i++) a[i] = b[i] = xorshift32(&s) & mask;
        quicksort(a, COUNT);
        heapsort(b, COUNT);
        bad += unsorted(a, COUNT) + unsorted(b, COUNT);
        u32 h = 2166136261u;
        for (int i = 0; i < COUNT; i++) {
            if (a[i] != b[i]) bad++;
            h = (h ^ a[i]) * 16777619u;
        }
        sum = (sum << 5 | sum >> 27) ^ h;
        printf("sort: round %u min %08x median %08x max %08x hash %08x\n", r + 1, a[0], a[COUNT / 2], a[COUNT - 1], h);
    }
    printf("sort: %u keys, %u rounds, errors %u, checksum %08x\n", COUNT, ROUNDS, bad, sum);
    return 0;
}
