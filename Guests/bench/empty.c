// Not a benchmark: returns at once, so Scripts/bench can measure the fixed cost of starting an
// emulator, loading an ELF and powering off, and subtract it from QEMU's times.
#include "rt.h"

int main(void) { return 0; }
