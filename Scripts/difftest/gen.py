#!/usr/bin/env python3
"""Random-instruction program generator for the differential test of the CPU against QEMU.

Writes a bare-metal MIPS32r2 little-endian program (PREFIX.S) that runs N random blocks and
prints, after each, every GPR, HI, LO, a checksum of the scratch memory and the exceptions the
block took; and a listing (PREFIX.lst) with each block's input values and instructions, used to
report a mismatch. The program is a pure function of the seed and the options. Standard library
only. See Docs/differential-testing.md for the design.

Usage: gen.py --seed S [--blocks N] [--min-insns A] [--max-insns B] [--allow CLASS]... -o PREFIX
       gen.py --seed S --words HEX[,HEX...] [--words ...] [--set REG=VALUE]... -o PREFIX  (probe)
       gen.py --seed S --survey --blocks N -o PREFIX           (one random word per block)

A seed gives the same program only with the same version of this file.
"""

import argparse
import random
import sys

# ---------------------------------------------------------------------------------------------
# Registers
# ---------------------------------------------------------------------------------------------

NAMES = ["zero", "at", "v0", "v1", "a0", "a1", "a2", "a3", "t0", "t1", "t2", "t3", "t4", "t5",
         "t6", "t7", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "t8", "t9", "k0", "k1", "gp",
         "sp", "fp", "ra"]
GP = 28                     # reserved: base of scratch area A, never written by a block
K0, K1 = 26, 27             # reserved: the exception handler clobbers them
DEST = [r for r in range(1, 32) if r not in (K0, K1, GP)]   # loaded with random values, dumped
SRC = DEST + [0, GP]

# ---------------------------------------------------------------------------------------------
# Memory layout (all fixed, in kseg0; physical = virtual - 0x80000000)
# ---------------------------------------------------------------------------------------------

AREA_A = 0x80400000         # scratch area A: 512 bytes, reached through $gp = AREA_A + 0x100
AREA_SIZE = 512
GP_VALUE = AREA_A + 0x100
AREA_B_PHYS = 0x00401000    # scratch area B: 512 bytes, reached through the TLB (see below)
AREA_B = 0x80000000 | AREA_B_PHYS
HARNESS = 0x80402000        # harness variables (see the layout in HARNESS_ASM)
MAX_LOG = 8                 # exceptions recorded per block (all are counted)

# Mapped windows, addressed as offset($zero) (the TLB is set up by the prologue):
#   0x0000-0x1FFF, 0x6000-0x7FFF, 0xFFFF8000-0xFFFFFFFF (kseg3): no entry -> TLB refill
#   0x2000-0x3FFF: an entry with V=0 -> TLB invalid (general vector)
#   0x4000-0x4FFF: area B page, V=1 D=1;  0x5000-0x5FFF: the same page, V=1 D=0 -> TLB Mod
#   0xFFFFE000-0xFFFFEFFF (kseg3): area A page, V=1 D=1 (an alias of $gp's area)
#   0xFFFFF000-0xFFFFFFFF: V=0 -> TLB invalid
#   0xFFFFC000-0xFFFFCFFF: area B, 0xFFFFD000-0xFFFFDFFF: area A, both V=1 D=1 but not global:
#   only for ASID 0x5A (EntryHi is set per block: a hit or a refill)
WIN_RW = 0x4000
WIN_RO = 0x5000
WIN_A = -0x2000
WIN_ASID = -0x4000
ASID = 0x5A

# ---------------------------------------------------------------------------------------------
# Encoding helpers
# ---------------------------------------------------------------------------------------------


def R(rs, rt, rd, sa, funct, op=0):
    return (op << 26) | (rs << 21) | (rt << 16) | (rd << 11) | (sa << 6) | funct


def I(op, rs, rt, imm):
    return (op << 26) | (rs << 21) | (rt << 16) | (imm & 0xFFFF)


def reg(r):
    return "$" + NAMES[r]


def s16(v):
    v &= 0xFFFF
    return v - 0x10000 if v & 0x8000 else v


ALU3 = {"add": 32, "addu": 33, "sub": 34, "subu": 35, "and": 36, "or": 37, "xor": 38, "nor": 39,
        "slt": 42, "sltu": 43, "movz": 10, "movn": 11}
SHIFT_IMM = {"sll": (0, 0), "srl": (0, 2), "sra": (0, 3), "rotr": (1, 2)}     # (rs field, funct)
SHIFT_VAR = {"sllv": (0, 4), "srlv": (0, 6), "srav": (0, 7), "rotrv": (1, 6)}  # (sa field, funct)
ALU_IMM = {"addi": 8, "addiu": 9, "slti": 10, "sltiu": 11, "andi": 12, "ori": 13, "xori": 14}
MULDIV = {"mult": (0, 24), "multu": (0, 25), "div": (0, 26), "divu": (0, 27),
          "madd": (28, 0), "maddu": (28, 1), "msub": (28, 4), "msubu": (28, 5)}
TRAP_REG = {"tge": 48, "tgeu": 49, "tlt": 50, "tltu": 51, "teq": 52, "tne": 54}
TRAP_IMM = {"tgei": 8, "tgeiu": 9, "tlti": 10, "tltiu": 11, "teqi": 12, "tnei": 14}
LOADS = {"lb": (32, 1), "lbu": (36, 1), "lh": (33, 2), "lhu": (37, 2), "lw": (35, 4),
         "lwl": (34, 0), "lwr": (38, 0), "ll": (48, 4)}
STORES = {"sb": (40, 1), "sh": (41, 2), "sw": (43, 4), "swl": (42, 0), "swr": (46, 0),
          "sc": (56, 4)}
BR2 = {"beq": 4, "bne": 5, "beql": 20, "bnel": 21}                  # rs, rt, target
BR1 = {"blez": (6, None), "bgtz": (7, None), "blezl": (22, None), "bgtzl": (23, None),
       "bltz": (1, 0), "bgez": (1, 1), "bltzl": (1, 2), "bgezl": (1, 3),
       "bltzal": (1, 16), "bgezal": (1, 17), "bltzall": (1, 18), "bgezall": (1, 19)}
# CP0 registers whose value is the same on every correct 24Kc emulator (no Count, Random,
# Compare or Cause, which depend on timing).
MFC0_REGS = [(0, 0, "Index"), (2, 0, "EntryLo0"), (3, 0, "EntryLo1"), (4, 0, "Context"),
             (5, 0, "PageMask"), (6, 0, "Wired"), (7, 0, "HWREna"), (8, 0, "BadVAddr"),
             (10, 0, "EntryHi"), (12, 0, "Status"), (12, 1, "IntCtl"), (12, 2, "SRSCtl"),
             (14, 0, "EPC"), (15, 0, "PRId"), (15, 1, "EBase"), (16, 0, "Config"),
             (16, 1, "Config1"), (16, 2, "Config2"), (16, 3, "Config3"), (17, 0, "LLAddr"),
             (30, 0, "ErrorEPC")]

INTERESTING = [0, 1, 2, 0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF, 0x80000000, 0x80000001, 0x7FFFFFFE,
               0xFFFF, 0x8000, 0x7FFF, 0xFFFF8000, 0xFFFF7FFF, 0x10000, 0xFF, 0x80, 0xFFFFFF80,
               0x55555555, 0xAAAAAAAA, 0x0000FFFF, 0xFFFF0000, 0x00FF00FF, 31, 32, 33]

# Classes of instruction or situation the generator leaves out by default, because QEMU and a
# correct Magritte may legitimately differ there. `--allow CLASS` puts one back, to look at it.
EXCLUDABLE = {
    # UNPREDICTABLE or implementation-dependent in the MIPS32 manual
    "unpaired-sc": "SC not directly after an LL of the same address (only instructions that do "
                   "not touch memory in between): UNPREDICTABLE; QEMU keeps the link after a "
                   "failed SC and compares values",
    "noncanonical": "random words with nonzero must-be-zero fields of a defined instruction "
                    "(sll with rs != 0, mult with rd != 0, ...): QEMU ignores the fields, "
                    "Magritte's decoder raises RI",
    "aderr-context": "mfc0 Context: an Address Error (a user or supervisor access to a kernel "
                     "segment) leaves Context.BadVPN2 UNPREDICTABLE; QEMU sets it, Magritte "
                     "leaves it, and the prologue cannot reset it (read-only)",
    # QEMU departs from the manual and Magritte follows the manual, on purpose (the same cases
    # as GuestProgramTests.manualOverQEMU)
    "qemu-misaligned-sc": "SC to a misaligned address raises AdES; QEMU fails the SC silently",
    "qemu-nop-branch": "a never-taken branch on constant operands (bne r,r; bltz/bgtz/bltzal "
                       "$zero) still has a delay slot (BD=1 there); QEMU compiles it as a NOP",
    "qemu-cop": "COP2 instructions and COP1 ones with an rs QEMU does not decode raise "
                "Coprocessor Unusable (CU1/CU2 = 0); QEMU raises RI",
    "qemu-reserved": "SPECIAL funct 5, opcode 0x1E (MDMX), SPECIAL3 DSP ASE and BSHFL "
                     "encodings with a zero destination: RI on a 24Kc; QEMU executes them as NOPs",
    "qemu-rdhwr29": "RDHWR $29 (UserLocal) raises RI without Config3.ULRI; QEMU reads it",
    "qemu-lladdr": "mfc0 LLAddr: ERET leaves LLAddr alone; QEMU zeroes it",
    "qemu-srsgpr": "RDPGPR/WRPGPR with one register set read/write the current GPRs; QEMU "
                   "goes through CPU state memory behind its code generator's back and sees or "
                   "leaves stale values",
    "qemu-mips16": "a jump to an odd address raises AdEL (no MIPS16e); QEMU's 24Kc has "
                   "MIPS16e and switches to it",
    "qemu-config1": "mfc0 Config1: CA (MIPS16e) is clear, Magritte has no MIPS16e; QEMU's 24Kc "
                    "claims it",
}

# Classes left out because they expose a known Magritte bug that is reported and still open
# (see Docs/differential-testing.md, "Known open mismatches"). Remove an entry when the core is
# fixed; `--allow NAME` reproduces it.
KNOWN_OPEN = {}

# COP1 rs values QEMU 7.2 decodes on a 24Kc (MFC1 CFC1 MFHC1 MTC1 CTC1 MTHC1 BC1 BC1ANY2/4,
# rs 13, S D W L): Coprocessor Unusable there, RI for the other rs values.
QEMU_COP1_RS = {0, 2, 3, 4, 6, 7, 8, 9, 10, 13, 16, 17, 20, 21}
# SPECIAL3 functions a 24Kc implements (EXT, INS, BSHFL, RDHWR); the others are RI, but QEMU
# executes DSP ones with a zero destination as NOPs.
SPECIAL3_24KC = {0, 4, 32, 59}


class Slot:
    """One instruction slot of a block."""
    __slots__ = ("word", "text", "kind", "target", "no_target", "link", "sub")

    def __init__(self, word=None, text="", kind="plain", no_target=False):
        self.word = word        # the encoding (None for jumps and la halves, which the
        self.text = text        # assembler encodes from labels)
        self.kind = kind        # plain | branch | jump | la_hi | la_lo | jr
        self.target = None      # slot index (0..n, n = landing pad) for control transfers
        self.no_target = no_target  # a branch must not land here (middle of an la group)
        self.link = None        # for la_hi/la_lo: the register loaded
        self.sub = None         # jump: the mnemonic; la_hi/la_lo: a misalignment added to the
        #                         target; plain: "llsc"/"fixed" for slots never to be patched


class Generator:
    def __init__(self, seed, min_insns, max_insns, allowed):
        self.rng = random.Random(seed)
        self.min_insns = min_insns
        self.max_insns = max_insns
        self.allowed = set(allowed)
        self.excluded = (set(EXCLUDABLE) | set(KNOWN_OPEN)) - self.allowed
        self.inputs = {}
        self.fixed_words = None     # probe mode: [[word, ...] per block]
        self.fixed_inputs = {}      # probe mode: register number or "hi"/"lo" -> value
        self.survey = False         # survey mode: each block is one random word
        self.mode = None            # every block in this mode (else a random one per block)

    # ---- operands ----

    def dst(self):
        if self.rng.random() < 0.04:
            return 0                 # the result must vanish, the exceptions must not
        return self.rng.choice(DEST)

    def src(self):
        r = self.rng.random()
        if r < 0.06:
            return 0
        return self.rng.choice(DEST)

    def imm16(self):
        r = self.rng.random()
        if r < 0.3:
            return self.rng.choice([0, 1, 0xFFFF, 0x7FFF, 0x8000, 0xFFFE, 0x8001, 2, 31, 32])
        if r < 0.55:
            return self.rng.randint(0, 64) if self.rng.random() < 0.5 else (-self.rng.randint(1, 64)) & 0xFFFF
        if r < 0.75:
            # the low half of a register's input value: equal compares, zero results
            v = self.inputs.get(self.rng.choice(DEST), 0)
            return v & 0xFFFF
        return self.rng.getrandbits(16)

    def value(self):
        r = self.rng.random()
        if r < 0.35:
            return self.rng.choice(INTERESTING)
        if r < 0.5:
            return self.rng.randint(0, 40)
        if r < 0.6:
            return (-self.rng.randint(1, 40)) & 0xFFFFFFFF
        if r < 0.7:
            b = self.rng.randint(0, 31)
            return [1 << b, (1 << b) - 1, (~(1 << b)) & 0xFFFFFFFF][self.rng.randint(0, 2)]
        if r < 0.75:
            return GP_VALUE + self.rng.randint(-256, 255)   # an address in area A
        return self.rng.getrandbits(32)

    # ---- plain (non-control) instructions ----

    def plain(self):
        """One random instruction that does not transfer control: (word, text)."""
        rng = self.rng
        kinds = [("alu3", 16), ("shimm", 6), ("shvar", 5), ("aluimm", 10), ("lui", 2),
                 ("hilo", 4), ("muldiv", 7), ("mul", 2), ("clzo", 2), ("bits", 7), ("misc", 1),
                 ("trapr", 2), ("trapi", 2), ("sysbrk", 1), ("load", 12), ("store", 9),
                 ("pref", 0.5), ("rdhwr", 0.5), ("cp0", 1.5), ("random", 4)]
        k = rng.choices([a for a, _ in kinds], [w for _, w in kinds])[0]
        return getattr(self, "gen_" + k)()

    def gen_alu3(self):
        m = self.rng.choice(list(ALU3))
        d, s, t = self.dst(), self.src(), self.src()
        return R(s, t, d, 0, ALU3[m]), f"{m} {reg(d)}, {reg(s)}, {reg(t)}"

    def gen_shimm(self):
        m = self.rng.choice(list(SHIFT_IMM))
        rs, f = SHIFT_IMM[m]
        d, t = self.dst(), self.src()
        sa = self.rng.choice([0, 1, 31, 16, self.rng.randint(0, 31)])
        return R(rs, t, d, sa, f), f"{m} {reg(d)}, {reg(t)}, {sa}"

    def gen_shvar(self):
        m = self.rng.choice(list(SHIFT_VAR))
        sa, f = SHIFT_VAR[m]
        d, t, s = self.dst(), self.src(), self.src()
        return R(s, t, d, sa, f), f"{m} {reg(d)}, {reg(t)}, {reg(s)}"

    def gen_aluimm(self):
        m = self.rng.choice(list(ALU_IMM))
        t, s, imm = self.dst(), self.src(), self.imm16()
        shown = imm if m in ("andi", "ori", "xori") else s16(imm)
        return I(ALU_IMM[m], s, t, imm), f"{m} {reg(t)}, {reg(s)}, {shown}"

    def gen_lui(self):
        t, imm = self.dst(), self.imm16()
        return I(15, 0, t, imm), f"lui {reg(t)}, 0x{imm:x}"

    def gen_hilo(self):
        m = self.rng.choice(["mfhi", "mflo", "mthi", "mtlo"])
        if m in ("mfhi", "mflo"):
            d = self.dst()
            return R(0, 0, d, 0, 16 if m == "mfhi" else 18), f"{m} {reg(d)}"
        s = self.src()
        return R(s, 0, 0, 0, 17 if m == "mthi" else 19), f"{m} {reg(s)}"

    def gen_muldiv(self):
        m = self.rng.choice(list(MULDIV))
        op, f = MULDIV[m]
        s, t = self.src(), self.src()
        return R(s, t, 0, 0, f, op=op), f"{m} {reg(s)}, {reg(t)}"

    def gen_mul(self):
        d, s, t = self.dst(), self.src(), self.src()
        return R(s, t, d, 0, 2, op=28), f"mul {reg(d)}, {reg(s)}, {reg(t)}"

    def gen_clzo(self):
        m = self.rng.choice(["clz", "clo"])
        d, s = self.dst(), self.src()
        # MIPS32r2: rt must equal rd (UNPREDICTABLE otherwise)
        return R(s, d, d, 0, 32 if m == "clz" else 33, op=28), f"{m} {reg(d)}, {reg(s)}"

    def gen_bits(self):
        rng = self.rng
        m = rng.choice(["seb", "seh", "wsbh", "ext", "ins", "ext", "ins"])
        if m in ("seb", "seh", "wsbh"):
            d, t = self.dst(), self.src()
            sa = {"seb": 16, "seh": 24, "wsbh": 2}[m]
            return R(0, t, d, sa, 32, op=31), f"{m} {reg(d)}, {reg(t)}"
        t, s = self.dst(), self.src()
        pos = rng.choice([0, 0, rng.randint(0, 31)])
        size = rng.randint(1, 32 - pos)
        if rng.random() < 0.2:
            size = 32 - pos
        if m == "ext":
            return R(s, t, size - 1, pos, 0, op=31), f"ext {reg(t)}, {reg(s)}, {pos}, {size}"
        return R(s, t, pos + size - 1, pos, 4, op=31), f"ins {reg(t)}, {reg(s)}, {pos}, {size}"

    def gen_misc(self):
        m = self.rng.choice(["nop", "ssnop", "ehb", "sync", "sync", "pause"])
        if m == "nop":
            return 0, "nop"
        if m == "sync":
            st = self.rng.choice([0, 0, 4, 0x10, 0x11, 0x13, 0x12, self.rng.randint(0, 31)])
            return R(0, 0, 0, st, 15), f"sync 0x{st:x}"
        sa = {"ssnop": 1, "ehb": 3, "pause": 5}[m]
        return R(0, 0, 0, sa, 0), m

    def gen_trapr(self):
        m = self.rng.choice(list(TRAP_REG))
        s, t = self.src(), self.src()
        code = self.rng.choice([0, self.rng.getrandbits(10)])
        return (s << 21) | (t << 16) | (code << 6) | TRAP_REG[m], f"{m} {reg(s)}, {reg(t)}, {code}"

    def gen_trapi(self):
        m = self.rng.choice(list(TRAP_IMM))
        s, imm = self.src(), self.imm16()
        return I(1, s, TRAP_IMM[m], imm), f"{m} {reg(s)}, {s16(imm)}"

    def gen_sysbrk(self):
        m = self.rng.choice(["syscall", "break"])
        code = self.rng.choice([0, self.rng.getrandbits(20)])
        return (code << 6) | (12 if m == "syscall" else 13), f"{m} 0x{code:x}"

    def address(self, size, allow_misaligned=True):
        """(base register, offset) for a memory access of `size` bytes (0 = any alignment)."""
        rng = self.rng
        r = rng.random()
        if r < 0.78:
            base, off = GP, rng.randint(-256, 255 - max(size, 4) + 1)
        elif r < 0.94:
            base = 0
            w = rng.random()
            if w < 0.25:
                off = WIN_A + rng.randint(0, AREA_SIZE - 4)
            elif w < 0.4:
                off = WIN_RO + rng.randint(0, AREA_SIZE - 4)
            elif w < 0.55:
                off = WIN_ASID + rng.choice([0, 0x1000]) + rng.randint(0, AREA_SIZE - 4)
            else:
                off = WIN_RW + rng.randint(0, AREA_SIZE - 4)
        else:
            base = 0
            off = rng.choice([rng.randint(0, 0x1FFF), rng.randint(0x2000, 0x3FFF),
                              rng.randint(0x6000, 0x7FFF), rng.randint(0x8000, 0xBFFF),
                              rng.randint(0xF000, 0xFFFF)])
            off = s16(off)
        if size > 1:
            off &= ~(size - 1)
            if allow_misaligned and rng.random() < 0.12:
                off += rng.randint(1, size - 1)
        return base, off

    def gen_load(self):
        m = self.rng.choice(list(LOADS) + ["lwl", "lwr", "lw"])
        op, size = LOADS[m]
        t = self.dst()
        base, off = self.address(size)
        return I(op, base, t, off), f"{m} {reg(t)}, {off}({reg(base)})"

    def gen_store(self):
        stores = list(STORES) + ["swl", "swr", "sw"]
        if "unpaired-sc" in self.excluded:
            stores.remove("sc")     # only in ll/sc groups (see llsc)
        m = self.rng.choice(stores)
        op, size = STORES[m]
        t = self.src()
        misaligned_ok = not (m == "sc" and "qemu-misaligned-sc" in self.excluded)
        base, off = self.address(size, misaligned_ok)
        return I(op, base, t, off), f"{m} {reg(t)}, {off}({reg(base)})"

    def gen_pref(self):
        hint = self.rng.randint(0, 31)
        base, off = self.address(1)
        return I(51, base, hint, off), f"pref {hint}, {off}({reg(base)})"

    def gen_rdhwr(self):
        # 0 CPUNum, 1 SYNCI_Step, 3 CCRes; 2 (CC) is timing; 4-31 are RI on a 24Kc
        hw = self.rng.choice([0, 1, 3, 3, 29, self.rng.randint(4, 31)])
        while hw == 2 or (hw == 29 and "qemu-rdhwr29" in self.excluded):
            hw = self.rng.randint(0, 31)
        t = self.dst()
        return R(0, t, hw, 0, 59, op=31), f"rdhwr {reg(t)}, ${hw}"

    def gen_cp0(self):
        rng = self.rng
        r = rng.random()
        t = self.dst()
        if r < 0.6:
            n, sel, name = rng.choice(MFC0_REGS)
            while (name == "LLAddr" and "qemu-lladdr" in self.excluded) or \
                    (name == "Config1" and "qemu-config1" in self.excluded) or \
                    (name == "Context" and "aderr-context" in self.excluded):
                n, sel, name = rng.choice(MFC0_REGS)
            return (16 << 26) | (t << 16) | (n << 11) | sel, f"mfc0 {reg(t)}, ${n}, {sel}  # {name}"
        if r < 0.85:
            # Status.IM is 0, so EI cannot let an interrupt in
            if rng.random() < 0.5:
                return 0x41606000 | (t << 16), f"di {reg(t)}"
            return 0x41606020 | (t << 16), f"ei {reg(t)}"
        if "qemu-srsgpr" in self.excluded:
            return self.gen_cp0()
        s = self.src()
        if rng.random() < 0.5:
            return (16 << 26) | (10 << 21) | (s << 16) | (t << 11), f"rdpgpr {reg(t)}, {reg(s)}"
        return (16 << 26) | (14 << 21) | (s << 16) | (t << 11), f"wrpgpr {reg(t)}, {reg(s)}"

    def gen_random(self):
        rng = self.rng
        while True:
            if rng.random() < 0.5:
                w = rng.getrandbits(32)
            else:
                # a defined instruction with a few bits flipped
                w, _ = self.plain_nonrandom()
                for _ in range(rng.randint(1, 3)):
                    w ^= 1 << rng.randint(0, 31)
            ok, why = random_word_ok(w, self.excluded)
            if ok:
                return w, f".word 0x{w:08x}  # random"

    def plain_nonrandom(self):
        while True:
            w, text = self.plain()
            if not text.startswith(".word"):
                return w, text

    # ---- blocks ----

    def block(self, k):
        """Returns the slots of block k (and sets self.inputs)."""
        rng = self.rng
        self.inputs = {}
        regs = list(DEST)
        for r in regs:
            self.inputs[r] = self.value()
        # some registers equal to others, so that beq/teq/movz… take both ways
        for _ in range(rng.randint(0, 4)):
            a, b = rng.sample(regs, 2)
            self.inputs[a] = self.inputs[b]
        self.inputs["hi"] = self.value()
        self.inputs["lo"] = self.value()
        for name, v in self.fixed_inputs.items():
            self.inputs[name] = v
        if self.fixed_words is not None:
            # a probe: block k is the k-th given list of words, nothing random
            return [Slot(w, f".word 0x{w:08x}") for w in self.fixed_words[k]]
        if self.survey:
            # a survey of random words: one per block
            w, text = self.gen_random()
            return [Slot(w, text)]

        n = rng.randint(self.min_insns, self.max_insns)
        slots = []
        while len(slots) < n:
            r = rng.random()
            room = n - len(slots)
            if r < 0.16 and room >= 2:
                self.branch(slots)
            elif r < 0.19 and room >= 4:
                self.indirect(slots)
            elif r < 0.22 and room >= 3:
                self.llsc(slots)
            else:
                w, text = self.plain()
                slots.append(Slot(w, text))
        n = len(slots)
        # resolve forward targets: any slot after the branch (the delay slot included, which
        # then runs twice) up to the landing pad n, but never the middle of an la group
        allowed = [i for i in range(n) if not slots[i].no_target] + [n]
        for i, s in enumerate(slots):
            if s.kind in ("branch", "jump", "la_hi"):
                first = i + 1 if s.kind != "la_hi" else i + 3
                choices = [j for j in allowed if j >= first]
                near = [j for j in choices if j <= first + 4]
                s.target = rng.choice(near if near and rng.random() < 0.6 else choices)
        for i, s in enumerate(slots):
            if s.kind == "la_hi" and s.sub:
                s.target = i + 2     # see indirect(): the jr itself, + 1..3
            if s.kind == "la_lo":
                s.target = slots[i - 1].target
            if s.kind == "branch":
                off = s.target - (i + 1)
                s.word |= off & 0xFFFF
                s.text += f"{off:+d}  # -> +{4 * s.target:03x}"
        return slots

    def branch(self, slots):
        rng = self.rng
        r = rng.random()
        if r < 0.35:
            m = rng.choice(list(BR2))
            s, t = self.src(), self.src()
            if rng.random() < 0.1:
                s = t = 0
            while m == "bne" and s == t and "qemu-nop-branch" in self.excluded:
                s, t = self.src(), self.src()
            slot = Slot(I(BR2[m], s, t, 0), f"{m} {reg(s)}, {reg(t)}, ", kind="branch")
        elif r < 0.8:
            m = rng.choice(list(BR1))
            op, rt = BR1[m]
            s = self.src()
            if m in ("bltzal", "bgezal", "bltzall", "bgezall"):
                while s == 31:       # rs = 31 is UNPREDICTABLE for the linking branches
                    s = self.src()
                if rng.random() < 0.2:
                    s = 0            # BAL (bgezal $zero), or a never-taken bltzal
            if m in ("bltz", "bgtz", "bltzal") and "qemu-nop-branch" in self.excluded:
                while s in (0, 31) if m == "bltzal" else s == 0:
                    s = self.src()
            slot = Slot(I(op, s, 0 if rt is None else rt, 0), f"{m} {reg(s)}, ", kind="branch")
        else:
            m = rng.choice(["j", "jal"])
            slot = Slot(None, m, kind="jump")
            slot.sub = m
        slots.append(slot)
        self.delay_slot(slots)

    def indirect(self, slots):
        """la $r, target; jr/jalr(.hb) $r; delay slot."""
        rng = self.rng
        r = self.rng.choice(DEST)
        x = rng.random()
        if x < 0.04:
            # a fetch fault at the target: misaligned (AdEL), or an unmapped page (TLB refill
            # or invalid); the handler ends the block (EPC is outside it)
            bad = rng.choice([0x00001000, 0x00002004, 0xFFFFF008])
            slots.append(Slot(I(15, 0, r, bad >> 16), f"lui {reg(r)}, 0x{bad >> 16:x}"))
            slots.append(Slot(I(13, r, r, bad), f"ori {reg(r)}, {reg(r)}, 0x{bad & 0xFFFF:x}",
                              no_target=True))
            slots[-1].sub = slots[-2].sub = "fixed"     # not to be patched (see emit_block)
        else:
            hi = Slot(None, "", kind="la_hi")
            lo = Slot(None, "", kind="la_lo", no_target=True)
            hi.link = lo.link = r
            if x < 0.08:
                # a misaligned target: AdEL on fetch. The jr's own address + 2, so that every
                # faulting address is fetched once (QEMU sets BadVAddr when it translates the
                # fetch, not each time the translation runs); odd addresses are MIPS16e on QEMU
                odd = "qemu-mips16" not in self.excluded and rng.random() < 0.5
                hi.sub = lo.sub = rng.choice([1, 3]) if odd else 2
            slots.extend([hi, lo])
        hb = rng.random() < 0.2
        if rng.random() < 0.5:
            w = R(r, 0, 0, 16 if hb else 0, 8)
            text = f"jr{'.hb' if hb else ''} {reg(r)}"
        else:
            d = self.dst()
            while d == r:            # jalr rd == rs is UNPREDICTABLE
                d = self.dst()
            w = R(r, 0, d, 16 if hb else 0, 9)
            text = f"jalr{'.hb' if hb else ''} {reg(d)}, {reg(r)}"
        slots.append(Slot(w, text, kind="jr", no_target=True))
        self.delay_slot(slots)

    def llsc(self, slots):
        """ll; 0-2 instructions that do not access memory; sc at the same address. No branch
        lands after the ll, so the sc always follows it (an exception in between makes the
        sc fail, through eret, which is defined)."""
        rng = self.rng
        t = self.dst()
        base, off = self.address(4, allow_misaligned="qemu-misaligned-sc" not in self.excluded)
        first = len(slots)
        slots.append(Slot(I(48, base, t, off), f"ll {reg(t)}, {off}({reg(base)})"))
        for _ in range(rng.randint(0, 2)):
            while True:
                w, text = self.plain()
                if text.split()[0] not in LOADS and text.split()[0] not in STORES \
                        and not text.startswith("pref"):
                    break
            slots.append(Slot(w, text, no_target=True))
        t2 = self.dst()
        if "unpaired-sc" not in self.excluded and rng.random() < 0.2:
            base, off = self.address(4, allow_misaligned="qemu-misaligned-sc" not in self.excluded)
        slots.append(Slot(I(56, base, t2, off), f"sc {reg(t2)}, {off}({reg(base)})", no_target=True))
        for s in slots[first:]:
            s.sub = "llsc"           # not to be patched (see emit_block)

    def delay_slot(self, slots):
        w, text = self.plain()
        slots.append(Slot(w, text))


def random_word_ok(w, excluded):
    """(ok, reason): whether a random word may go into a block. Never a control transfer, a
    memory access through a random base, a CP0 instruction, a write to $gp or anything
    time-dependent; nothing of the excluded classes."""
    op, rs, rt, rd, sa, funct = w >> 26, (w >> 21) & 31, (w >> 16) & 31, (w >> 11) & 31, (w >> 6) & 31, w & 63
    if rt == GP or rd == GP:
        return False, "may write $gp"
    if op == 0:
        if funct in (8, 9):
            return False, "jr/jalr"
        if funct == 5 and "qemu-reserved" in excluded:
            return False, "qemu-reserved"
        if "noncanonical" in excluded and not special_canonical(rs, rt, rd, sa, funct):
            return False, "noncanonical"
        return True, ""
    if op == 1:
        if rt in (0, 1, 2, 3, 16, 17, 18, 19):
            return False, "REGIMM branch"
        return True, ""
    if op in (2, 3, 4, 5, 6, 7, 20, 21, 22, 23, 29):
        return False, "branch/jump/jalx"
    if op == 16:
        return False, "COP0"
    if op in (17, 18) and rs in (8, 9, 10):
        return False, "BC1/BC2"
    if "qemu-cop" in excluded and (op == 18 or (op == 17 and rs not in QEMU_COP1_RS)):
        return False, "qemu-cop"
    if op == 15 and rs != 0 and "noncanonical" in excluded:
        return False, "noncanonical"
    if op == 28:
        if funct == 63:
            return False, "SDBBP"
        if "noncanonical" in excluded:
            if funct in (0, 1, 4, 5) and (rd != 0 or sa != 0):
                return False, "noncanonical"
            if funct in (2, 32, 33) and sa != 0:
                return False, "noncanonical"
        return True, ""
    if op == 30 and "qemu-reserved" in excluded:
        return False, "qemu-reserved"
    if op == 31:
        if funct == 59 and rd == 2:
            return False, "rdhwr CC"
        if funct == 59 and rd == 29 and "qemu-rdhwr29" in excluded:
            return False, "qemu-rdhwr29"
        if "qemu-reserved" in excluded:
            if funct not in SPECIAL3_24KC and (rd == 0 or rt == 0):
                return False, "qemu-reserved"
            if funct == 32 and sa not in (2, 16, 24) and rd == 0:
                return False, "qemu-reserved"
        if "noncanonical" in excluded and funct == 59 and (rs != 0 or sa != 0):
            return False, "noncanonical"
        if "noncanonical" in excluded and funct == 32 and rs != 0:
            return False, "noncanonical"
        return True, ""
    if op in (32, 33, 34, 35, 36, 37, 38, 40, 41, 42, 43, 46, 47, 48, 56):
        return False, "memory access / cache"
    return True, ""


def special_canonical(rs, rt, rd, sa, funct):
    """False for a SPECIAL word with a nonzero must-be-zero field of a defined instruction."""
    if funct in (0, 3):
        return rs == 0
    if funct == 2:
        return rs in (0, 1)
    if funct in (4, 7, 10, 11, 32, 33, 34, 35, 36, 37, 38, 39, 42, 43):
        return sa == 0
    if funct == 6:
        return sa in (0, 1)
    if funct == 15:
        return rs == 0 and rt == 0 and rd == 0
    if funct in (16, 18):
        return rs == 0 and rt == 0 and sa == 0
    if funct in (17, 19):
        return rt == 0 and rd == 0 and sa == 0
    if funct in (24, 25, 26, 27):
        return rd == 0 and sa == 0
    return True


# ---------------------------------------------------------------------------------------------
# The fixed part of the program
# ---------------------------------------------------------------------------------------------

HARNESS_ASM = r"""
# Harness variables at HARNESS (k0 points there in the handler):
#   0x00 saved t0-t3 (handler)   0x10 start of the current block   0x14 its landing pad
#   0x18 exceptions taken in the current block
#   0x20 log: MAX_LOG entries of 5 words (Cause.BD|CE|ExcCode | vector, CE only for CpU,
#        EPC - block start,
#        BadVAddr, EntryHi, Context; the last three only for ExcCode 1-5 / 1-3, else 0)
#   0x100 GPRs 0-31 after the block, 0x180 HI, 0x184 LO
#   0x188 the number the dump prints for the block, 0x18C where to go after the dump,
#   0x190 the kseg0 address of the landing pad + 4 (0x10/0x14 hold the addresses the block
#   runs at: its useg alias for user and supervisor blocks)
    .equ H_START, 0x10
    .equ H_PAD, 0x14
    .equ H_COUNT, 0x18
    .equ H_LOG, 0x20
    .equ H_REGS, 0x100
    .equ H_HI, 0x180
    .equ H_LO, 0x184
    .equ H_ID, 0x188
    .equ H_NEXT, 0x18C
    .equ H_PADK, 0x190

    .set noreorder
    .set noat
    .option pic0
    .text
    .globl _start
_start:
    # exception vectors: refill (EBase+0x000) and general (EBase+0x180)
    lui     $8, %hi(vec_refill)
    addiu   $8, $8, %lo(vec_refill)
    lui     $9, 0x8000
    jal     copy4
    nop
    lui     $8, %hi(vec_general)
    addiu   $8, $8, %lo(vec_general)
    lui     $9, 0x8000
    jal     copy4
    ori     $9, $9, 0x180
    lui     $8, 0x8000
    mtc0    $8, $15, 1              # EBase = 0x80000000
    mtc0    $0, $13                 # Cause: IV = 0
    mtc0    $0, $12                 # Status: kernel mode, BEV = ERL = EXL = IE = 0, IM = 0
    ehb
    # TLB: every entry unique and unmatchable (kseg0 VPNs), then the two windows
    mtc0    $0, $5                  # PageMask
    mtc0    $0, $6                  # Wired
    mtc0    $0, $2
    mtc0    $0, $3
    mtc0    $0, $4                  # Context
    mfc0    $10, $16, 1             # Config1.MMUSize
    srl     $10, $10, 25
    andi    $10, $10, 63
    lui     $11, 0x8000
1:  sll     $12, $10, 13
    addu    $12, $12, $11
    mtc0    $12, $10                # EntryHi
    mtc0    $10, $0                 # Index
    ehb
    tlbwi
    bnez    $10, 1b
    addiu   $10, $10, -1
    mtc0    $0, $0                  # entry 0: 0x4000 -> area B (D=1), 0x5000 -> area B (D=0)
    ori     $12, $0, 0x4000
    mtc0    $12, $10
    lui     $12, %hi(AREA_B_PFN << 6 | 0x1F)
    ori     $12, $12, %lo(AREA_B_PFN << 6 | 0x1F)
    mtc0    $12, $2                 # C=3 D V G
    lui     $12, %hi(AREA_B_PFN << 6 | 0x1B)
    ori     $12, $12, %lo(AREA_B_PFN << 6 | 0x1B)
    mtc0    $12, $3                 # C=3 V G
    ehb
    tlbwi
    ori     $12, $0, 2
    mtc0    $12, $0                 # entry 2: 0xFFFFE000 -> area A (D=1), 0xFFFFF000 V=0
    addiu   $12, $0, -0x2000
    mtc0    $12, $10
    lui     $12, %hi(AREA_A_PFN << 6 | 0x1F)
    ori     $12, $12, %lo(AREA_A_PFN << 6 | 0x1F)
    mtc0    $12, $2
    ori     $12, $0, 1
    mtc0    $12, $3
    ehb
    tlbwi
    ori     $12, $0, 3
    mtc0    $12, $0                 # entry 3: 0xFFFFC000 -> area B, 0xFFFFD000 -> area A,
    addiu   $12, $0, -0x4000 + ASID # D=1, for ASID 0x5A only
    mtc0    $12, $10
    lui     $12, %hi(AREA_B_PFN << 6 | 0x1E)
    ori     $12, $12, %lo(AREA_B_PFN << 6 | 0x1E)
    mtc0    $12, $2
    lui     $12, %hi(AREA_A_PFN << 6 | 0x1E)
    ori     $12, $12, %lo(AREA_A_PFN << 6 | 0x1E)
    mtc0    $12, $3
    ehb
    tlbwi
    ori     $12, $0, 1
    mtc0    $12, $0                 # entry 1: 0x2000-0x3FFF, V=0
    ori     $12, $0, 0x2000
    mtc0    $12, $10
    ori     $12, $0, 1
    mtc0    $12, $2                 # G only
    mtc0    $12, $3
    ehb
    tlbwi
    ori     $12, $0, 4
    mtc0    $12, $0                 # entry 4: useg 0x10000000-0x11FFFFFF -> physical 0-32 MiB
    lui     $12, 0x1000             # (16 MiB pages): the code and area A for user and
    mtc0    $12, $10                # supervisor blocks
    lui     $12, 0x01FF
    ori     $12, $12, 0xE000
    mtc0    $12, $5                 # PageMask 16 MiB
    ori     $12, $0, 0x1F
    mtc0    $12, $2                 # PFN 0, C=3 D V G
    lui     $12, %hi(0x1000 << 6 | 0x1F)
    ori     $12, $12, %lo(0x1000 << 6 | 0x1F)
    mtc0    $12, $3                 # PFN 0x1000
    ehb
    tlbwi
    mtc0    $0, $5
    mtc0    $0, $10                 # EntryHi: VPN 0, ASID 0
    mtc0    $0, $2
    mtc0    $0, $3
    ehb
    lui     $4, %hi(str_begin)
    jal     putstr
    addiu   $4, $4, %lo(str_begin)
    j       blocks
    nop

copy4:                              # copies 4 words from $8 to $9
    lw      $10, 0($8)
    sw      $10, 0($9)
    lw      $10, 4($8)
    sw      $10, 4($9)
    lw      $10, 8($8)
    sw      $10, 8($9)
    lw      $10, 12($8)
    jr      $31
    sw      $10, 12($9)

vec_refill:
    lui     $26, %hi(exc_common)
    addiu   $26, $26, %lo(exc_common)
    jr      $26
    ori     $27, $0, 1
vec_general:
    lui     $26, %hi(exc_common)
    addiu   $26, $26, %lo(exc_common)
    jr      $26
    ori     $27, $0, 0

# Records the exception and resumes after the faulting instruction, or at the block's
# landing pad when it was in a delay slot (Cause.BD).
exc_common:
    lui     $26, %hi(HARNESS)
    addiu   $26, $26, %lo(HARNESS)
    sw      $8, 0($26)
    sw      $9, 4($26)
    sw      $10, 8($26)
    sw      $11, 12($26)
    mfc0    $8, $14                 # the landing pad's syscall: continue at the pad's
    lw      $9, H_PAD($26)          # kseg0 address + 4, in kernel mode (not logged)
    bne     $8, $9, 1f
    mfc0    $9, $13
    andi    $9, $9, 0x7C
    xori    $9, $9, 8 << 2
    bnez    $9, 1f
    mfc0    $9, $12
    ori     $9, $9, 0x18
    xori    $9, $9, 0x18            # KSU = kernel
    mtc0    $9, $12
    b       7f
    lw      $8, H_PADK($26)
1:  lw      $8, H_COUNT($26)
    addiu   $9, $8, 1
    sw      $9, H_COUNT($26)
    sltiu   $9, $8, MAX_LOG
    beqz    $9, 9f
    sll     $9, $8, 4
    sll     $10, $8, 2
    addu    $9, $9, $10
    addu    $9, $9, $26             # $9 = entry - H_LOG
    mfc0    $10, $13                # BD, CE (only meaningful for CpU), ExcCode | vector
    lui     $11, 0xB000
    ori     $11, $11, 0x7C
    and     $10, $10, $11
    andi    $11, $10, 0x7C
    xori    $11, $11, 11 << 2
    beqz    $11, 1f
    lui     $11, 0x3000
    nor     $11, $11, $0
    and     $10, $10, $11
1:  or      $10, $10, $27
    sw      $10, H_LOG($9)
    mfc0    $11, $14
    lw      $8, H_START($26)
    subu    $11, $11, $8
    sw      $11, H_LOG+4($9)
    sw      $0, H_LOG+8($9)
    sw      $0, H_LOG+12($9)
    sw      $0, H_LOG+16($9)
    andi    $10, $10, 0x7C
    srl     $10, $10, 2
    addiu   $10, $10, -1            # ExcCode - 1
    sltiu   $11, $10, 5
    beqz    $11, 9f
    nop
    mfc0    $11, $8
    sw      $11, H_LOG+8($9)        # BadVAddr for Mod, TLBL, TLBS, AdEL, AdES
    sltiu   $11, $10, 3
    beqz    $11, 9f
    nop
    mfc0    $11, $10
    sw      $11, H_LOG+12($9)       # EntryHi and Context for Mod, TLBL, TLBS
    mfc0    $11, $4
    sw      $11, H_LOG+16($9)
9:  mfc0    $8, $13
    bltz    $8, 8f                  # Cause.BD
    mfc0    $9, $14
    lw      $10, H_START($26)       # so does a fetch fault (EPC outside the block, or
    lw      $11, H_PAD($26)         # misaligned), rather than trying the next word
    subu    $10, $9, $10
    subu    $11, $11, $9
    or      $10, $10, $11
    andi    $11, $9, 3
    subu    $11, $0, $11
    or      $10, $10, $11
    bltz    $10, 8f
    nop
    b       7f
    addiu   $8, $9, 4
8:  lw      $8, H_PAD($26)
7:  mtc0    $8, $14
    ehb
    lw      $8, 0($26)
    lw      $9, 4($26)
    lw      $10, 8($26)
    lw      $11, 12($26)
    eret

# fill($4 = nonzero seed): xorshift32 values into areas A and B
fill:
    lui     $8, %hi(AREA_A)
    addiu   $8, $8, %lo(AREA_A)
    addiu   $9, $8, AREA_SIZE
    lui     $10, %hi(AREA_B)
    addiu   $10, $10, %lo(AREA_B)
1:  sll     $11, $4, 13
    xor     $4, $4, $11
    srl     $11, $4, 17
    xor     $4, $4, $11
    sll     $11, $4, 5
    xor     $4, $4, $11
    sw      $4, 0($8)
    sw      $4, 0($10)
    addiu   $8, $8, 4
    bne     $8, $9, 1b
    addiu   $10, $10, 4
    jr      $31
    nop

# csum($4 = address, $5 = words) -> $2: c = rotl(c, 5) ^ word
csum:
    move    $2, $0
1:  lw      $8, 0($4)
    sll     $9, $2, 5
    srl     $2, $2, 27
    or      $2, $2, $9
    xor     $2, $2, $8
    addiu   $5, $5, -1
    bnez    $5, 1b
    addiu   $4, $4, 4
    jr      $31
    nop

# putc($4): the 16550 at ISA port 0x3F8 (0xB80003F8); waits for LSR.THRE
putc:
    lui     $25, 0xB800
1:  lbu     $24, 0x3FD($25)
    andi    $24, $24, 0x20
    beqz    $24, 1b
    nop
    jr      $31
    sb      $4, 0x3F8($25)

# putstr($4 = NUL-terminated string)
putstr:
    move    $15, $31
    move    $14, $4
1:  lbu     $4, 0($14)
    beqz    $4, 2f
    nop
    jal     putc
    addiu   $14, $14, 1
    b       1b
    nop
2:  jr      $15
    nop

# puthex($4 = value, $5 = digits)
puthex:
    move    $15, $31
    move    $14, $4
    sll     $13, $5, 2
1:  addiu   $13, $13, -4
    srlv    $12, $14, $13
    andi    $12, $12, 15
    sltiu   $11, $12, 10
    bnez    $11, 2f
    addiu   $4, $12, 48
    addiu   $4, $12, 87
2:  jal     putc
    nop
    bnez    $13, 1b
    nop
    jr      $15
    nop

# put_field($4 = string, $5 = value): prints the string then the value in 8 hex digits
put_field:
    move    $16, $31
    jal     putstr
    move    $17, $5
    move    $4, $17
    jal     puthex
    ori     $5, $0, 8
    jr      $16
    nop

# dump($4 = block number): prints the line for a block from the saved state
dump:
    move    $23, $31
    move    $18, $4
    lui     $22, %hi(HARNESS)
    addiu   $22, $22, %lo(HARNESS)
    jal     putc
    ori     $4, $0, 'B'
    move    $4, $18
    jal     puthex
    ori     $5, $0, 4
    lui     $4, %hi(str_count)
    jal     putstr
    addiu   $4, $4, %lo(str_count)
    lw      $19, H_COUNT($22)
    move    $4, $19
    jal     puthex
    ori     $5, $0, 2
    sltiu   $8, $19, MAX_LOG + 1
    bnez    $8, 1f
    nop
    ori     $19, $0, MAX_LOG
1:  addiu   $20, $22, H_LOG
2:  beqz    $19, 3f
    nop
    lui     $4, %hi(str_exc)
    addiu   $4, $4, %lo(str_exc)
    jal     put_field
    lw      $5, 0($20)
    ori     $21, $0, 4
    addiu   $20, $20, 4
4:  ori     $4, $0, ':'
    jal     putc
    nop
    lw      $4, 0($20)
    jal     puthex
    ori     $5, $0, 8
    addiu   $21, $21, -1
    bnez    $21, 4b
    addiu   $20, $20, 4
    b       2b
    addiu   $19, $19, -1
3:
"""

HARNESS_TAIL = r"""
    lui     $4, %hi(AREA_A)
    addiu   $4, $4, %lo(AREA_A)
    jal     csum
    ori     $5, $0, AREA_SIZE / 4
    lui     $4, %hi(str_ma)
    addiu   $4, $4, %lo(str_ma)
    jal     put_field
    move    $5, $2
    lui     $4, %hi(AREA_B)
    addiu   $4, $4, %lo(AREA_B)
    jal     csum
    ori     $5, $0, AREA_SIZE / 4
    lui     $4, %hi(str_mb)
    addiu   $4, $4, %lo(str_mb)
    jal     put_field
    move    $5, $2
    jal     putc
    ori     $4, $0, 10
    jr      $23
    nop

finish:
    lui     $4, %hi(str_end)
    jal     putstr
    addiu   $4, $4, %lo(str_end)
    lui     $8, 0xBF00
    ori     $9, $0, 0x42
    sb      $9, 0x500($8)           # Malta SOFTRES: power off
1:  b       1b
    nop
"""


def harness(blocks_label_count):
    out = [HARNESS_ASM]
    # the register part of dump(), unrolled
    for r in DEST + [GP]:
        out.append(f"    lui     $4, %hi(str_r{r})\n    addiu   $4, $4, %lo(str_r{r})\n"
                   f"    jal     put_field\n    lw      $5, H_REGS+{4 * r}($22)\n")
    for name, off in (("hi", "H_HI"), ("lo", "H_LO")):
        out.append(f"    lui     $4, %hi(str_{name})\n    addiu   $4, $4, %lo(str_{name})\n"
                   f"    jal     put_field\n    lw      $5, {off}($22)\n")
    out.append(HARNESS_TAIL)
    out.append("\n    .section .rodata\n")
    out.append('str_begin: .asciz "DIFFTEST BEGIN\\n"\n')
    out.append('str_end: .asciz "DIFFTEST END\\n"\n')
    out.append('str_count: .asciz " n="\n')
    out.append('str_exc: .asciz " e="\n')
    out.append('str_ma: .asciz " ma="\n')
    out.append('str_mb: .asciz " mb="\n')
    out.append('str_hi: .asciz " hi="\n')
    out.append('str_lo: .asciz " lo="\n')
    for r in DEST + [GP]:
        out.append(f'str_r{r}: .asciz " {NAMES[r]}="\n')
    out.append("    .text\n")
    return "".join(out)


def li(r, v):
    return [f"    lui     ${r}, 0x{(v >> 16) & 0xFFFF:x}", f"    ori     ${r}, ${r}, 0x{v & 0xFFFF:x}"]


MODES = {"kernel": 0, "supervisor": 1, "user": 2}
USEG_ALIAS = 0x70000000     # kseg0 address - this = its alias in TLB entry 4's useg window


def at(label, mode):
    """The address a block in `mode` runs `label` at (kernel: kseg0; else the useg alias)."""
    return label if mode == "kernel" else f"{label} - 0x{USEG_ALIAS:x}"


def emit_prologue(asm, k, run_id, next_label, seed, cp0, inputs, mode):
    """Sets up a run of block k: harness variables, the areas, EntryHi (VPN2 and ASID),
    Context (PTEBase) and HWREna, the input registers; then, for a user or supervisor block,
    enters that mode at the block's start through eret (a kernel block falls through)."""
    a = asm.append
    entryhi, context, hwrena = cp0
    asm.extend(li(8, entryhi))
    a("    mtc0    $8, $10")
    asm.extend(li(8, context))
    a("    mtc0    $8, $4")
    a(f"    ori     $8, $0, 0x{hwrena:x}")
    a("    mtc0    $8, $7")
    a("    ehb")
    a("    lui     $26, %hi(HARNESS)")
    a("    addiu   $26, $26, %lo(HARNESS)")
    for var, label in (("H_START", at(f"blk{k}_start", mode)), ("H_PAD", at(f"blk{k}_pad", mode)),
                       ("H_PADK", f"blk{k}_pad + 4"), ("H_NEXT", next_label)):
        a(f"    lui     $8, %hi({label})")
        a(f"    addiu   $8, $8, %lo({label})")
        a(f"    sw      $8, {var}($26)")
    a(f"    ori     $8, $0, 0x{run_id:x}")
    a("    sw      $8, H_ID($26)")
    a("    sw      $0, H_COUNT($26)")
    asm.extend(li(4, seed))
    a("    jal     fill")
    a("    nop")
    asm.extend(li(1, inputs["hi"]))
    a("    mthi    $1")
    asm.extend(li(1, inputs["lo"]))
    a("    mtlo    $1")
    asm.extend(li(GP, GP_VALUE if mode == "kernel" else GP_VALUE - USEG_ALIAS))
    for r in DEST:
        asm.extend(li(r, inputs[r]))
    if mode != "kernel":
        start = at(f"blk{k}_start", mode)
        a(f"    lui     $26, %hi({start})")
        a(f"    addiu   $26, $26, %lo({start})")
        a("    mtc0    $26, $14")
        a(f"    ori     $27, $0, 0x{2 | MODES[mode] << 3:x}       # EXL, KSU = {mode}")
        a("    mtc0    $27, $12")
        a("    ehb")
        a("    eret")


RERUN = 0x8000      # added to the block number of a patched re-run


def emit_block(k, gen, asm, lst, next_label):
    """Block k: prologue, slots, landing pad. One block in ten then runs a second time after
    the harness rewrote one of its (already executed) instructions, through kseg0 or the kseg1
    alias: the CPU must not run the stale decode (QEMU retranslates; a store to a page of code
    must invalidate what Magritte decoded there). That run's line is numbered k + 0x8000."""
    slots = gen.block(k)
    inputs = gen.inputs
    seed = gen.rng.getrandbits(32) | 1
    asid = ASID if gen.rng.random() < 0.6 else gen.rng.getrandbits(8)
    cp0 = (gen.rng.getrandbits(19) << 13 | asid, gen.rng.getrandbits(32), gen.rng.getrandbits(4))
    mode = gen.mode or gen.rng.choices(list(MODES), [60, 15, 25])[0]
    n = len(slots)
    patchable = [i for i, s in enumerate(slots) if s.kind == "plain" and s.sub is None]
    if any(s.kind == "la_hi" and s.sub for s in slots):
        patchable = []      # a misaligned fetch runs again: QEMU's BadVAddr would be stale
    rerun = None
    if gen.fixed_words is None and not gen.survey and patchable and gen.rng.random() < 0.1:
        j = gen.rng.choice(patchable)
        w, text = gen.plain()
        rerun = (j, w, text, gen.rng.random() < 0.5)
    lbl = lambda i: f"blk{k}_pad" if i == n else f".Lb{k}_{i}"
    a = asm.append
    a(f"\n# ---- block {k} ----")
    a(f"blk{k}:")
    emit_prologue(asm, k, k, f"blk{k}_rerun" if rerun else next_label, seed, cp0, inputs, mode)
    a(f"blk{k}_start:")
    listing = []
    for i, s in enumerate(slots):
        a(f"{lbl(i)}:")
        if s.kind == "jump":
            a(f"    {s.sub}       {lbl(s.target)}")
            text = f"{s.sub} +{4 * s.target:03x}"
        elif s.kind in ("la_hi", "la_lo"):
            bias = f" + {s.sub}" if s.sub else ""
            target = f"{at(lbl(s.target), mode)}{bias}"
            shown = f"+{4 * s.target:03x}{bias}"
            if s.kind == "la_hi":
                a(f"    lui     ${s.link}, %hi({target})")
                text = f"lui {reg(s.link)}, %hi({shown})"
            else:
                a(f"    addiu   ${s.link}, ${s.link}, %lo({target})")
                text = f"addiu {reg(s.link)}, {reg(s.link)}, %lo({shown})"
        else:
            a(f"    .word   0x{s.word:08x}    # {s.text}")
            text = s.text
        word = "--------" if s.word is None else f"{s.word:08x}"
        listing.append(f"  +{4 * i:03x}  {word}  {text}")
    a(f"blk{k}_pad:")
    a("    syscall                       # back to kernel mode, at the kseg0 address")
    a("    lui     $26, %hi(HARNESS)")
    a("    addiu   $26, $26, %lo(HARNESS)")
    for r in range(1, 32):
        if r not in (K0, K1):
            a(f"    sw      ${r}, H_REGS+{4 * r}($26)")
    a("    mfhi    $1")
    a("    sw      $1, H_HI($26)")
    a("    mflo    $1")
    a("    sw      $1, H_LO($26)")
    a("    jal     dump")
    a("    lw      $4, H_ID($26)")
    a("    lui     $26, %hi(HARNESS)")
    a("    addiu   $26, $26, %lo(HARNESS)")
    a("    lw      $8, H_NEXT($26)")
    a("    jr      $8")
    a("    nop")
    inputs_line = ("  in " + " ".join(f"{NAMES[r]}=0x{inputs[r]:08x}" for r in DEST)
                   + f" hi=0x{inputs['hi']:08x} lo=0x{inputs['lo']:08x}")
    setup = (f"mode {mode} fill 0x{seed:08x} EntryHi 0x{cp0[0]:08x} Context 0x{cp0[1]:08x} "
             f"HWREna 0x{cp0[2]:x}")
    lst.append(f"block {k} insns {n} {setup}")
    lst.append(inputs_line)
    lst.extend(listing)
    if rerun:
        j, w, text, kseg1 = rerun
        alias = " + 0x20000000" if kseg1 else ""
        a(f"blk{k}_rerun:")
        a(f"    lui     $8, %hi({lbl(j)}{alias})")
        a(f"    addiu   $8, $8, %lo({lbl(j)}{alias})")
        asm.extend(li(9, w))
        a(f"    sw      $9, 0($8)              # +{4 * j:03x} becomes {text}")
        emit_prologue(asm, k, k + RERUN, next_label, seed, cp0, inputs, mode)
        if mode == "kernel":
            a(f"    j       blk{k}_start")
            a("    nop")
        lst.append(f"block {k + RERUN} insns {n} {setup} (block {k} again after "
                   f"+{4 * j:03x} was rewritten through {'kseg1' if kseg1 else 'kseg0'})")
        lst.append(inputs_line)
        listing[j] = f"  +{4 * j:03x}  {w:08x}  {text}  # rewritten"
        lst.extend(listing)


def generate(seed, blocks, min_insns, max_insns, allowed, words=None, inputs=None, survey=False,
             mode=None):
    gen = Generator(seed, min_insns, max_insns, allowed)
    gen.survey = survey
    gen.mode = mode or ("kernel" if words is not None or survey else None)
    if words is not None:
        gen.fixed_words = words
        blocks = len(words)
    gen.fixed_inputs = inputs or {}
    asm = [f"# generated by Scripts/difftest/gen.py --seed {seed} --blocks {blocks} "
           f"--min-insns {min_insns} --max-insns {max_insns}"
           + "".join(f" --allow {c}" for c in sorted(allowed)) + "; do not edit",
           f"    .equ HARNESS, 0x{HARNESS:08x}",
           f"    .equ AREA_A, 0x{AREA_A:08x}",
           f"    .equ AREA_B, 0x{AREA_B:08x}",
           f"    .equ AREA_B_PFN, 0x{AREA_B_PHYS >> 12:x}",
           f"    .equ AREA_A_PFN, 0x{(AREA_A & 0x1FFFFFFF) >> 12:x}",
           f"    .equ ASID, 0x{ASID:x}",
           f"    .equ AREA_SIZE, {AREA_SIZE}",
           f"    .equ MAX_LOG, {MAX_LOG}",
           harness(blocks),
           "blocks:"]
    lst = [f"seed {seed} blocks {blocks} excluded {','.join(sorted(gen.excluded)) or '-'}"]
    for k in range(blocks):
        emit_block(k, gen, asm, lst, f"blk{k + 1}" if k + 1 < blocks else "finish")
    text = "\n".join(asm) + "\n"
    words = sum(1 for line in text.splitlines() if line.startswith("    ")
                and (not line.lstrip().startswith((".", "#")) or line.lstrip().startswith(".word")))
    if 0x80100000 + 4 * words + 0x4000 > AREA_A:
        raise SystemExit(f"gen.py: the program ({4 * words} bytes of code) would overlap the "
                         f"scratch areas at 0x{AREA_A:08x}: use fewer blocks or instructions")
    return text, "\n".join(lst) + "\n"


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--blocks", type=int, default=100)
    p.add_argument("--min-insns", type=int, default=10)
    p.add_argument("--max-insns", type=int, default=30)
    p.add_argument("--allow", action="append", default=[],
                   choices=sorted(set(EXCLUDABLE) | set(KNOWN_OPEN)),
                   help="put back a class excluded by default")
    p.add_argument("--words", action="append", metavar="HEX[,HEX...]",
                   help="probe: a block made of exactly these words (no branches!); repeatable, "
                        "one block each; the input values still come from the seed")
    p.add_argument("--set", action="append", default=[], metavar="REG=VALUE",
                   help="probe: input value of a register (name or number, or hi/lo) in every block")
    p.add_argument("--survey", action="store_true",
                   help="each block is a single random word (to map where emulators disagree)")
    p.add_argument("--mode", choices=list(MODES),
                   help="run every block in this mode (default: kernel for --words and --survey, "
                        "else a random mode per block)")
    p.add_argument("-o", "--output", required=True, help="output prefix (PREFIX.S, PREFIX.lst)")
    args = p.parse_args(argv)
    words = None
    if args.words:
        words = [[int(w, 16) for w in group.split(",")] for group in args.words]
        for group in words:
            for w in group:
                op = w >> 26
                if op in (2, 3, 4, 5, 6, 7, 20, 21, 22, 23, 29) or (op == 1 and (w >> 16) & 31 in (0, 1, 2, 3, 16, 17, 18, 19)) \
                        or (op == 0 and w & 63 in (8, 9)):
                    p.error(f"--words: 0x{w:08x} is a branch or jump")
    inputs = {}
    for item in args.set:
        name, _, value = item.partition("=")
        name = name.strip().lstrip("$")
        key = name if name in ("hi", "lo") else (NAMES.index(name) if name in NAMES else int(name))
        if key not in DEST and key not in ("hi", "lo"):
            p.error(f"--set: {name} is not a register the blocks load")
        inputs[key] = int(value, 0) & 0xFFFFFFFF
    if not 1 <= args.blocks <= 4000:
        p.error("--blocks must be 1...4000")
    if not 2 <= args.min_insns <= args.max_insns <= 200:
        p.error("need 2 <= --min-insns <= --max-insns <= 200")
    asm, lst = generate(args.seed, args.blocks, args.min_insns, args.max_insns, args.allow, words, inputs, args.survey,
                        args.mode)
    with open(args.output + ".S", "w") as f:
        f.write(asm)
    with open(args.output + ".lst", "w") as f:
        f.write(lst)


if __name__ == "__main__":
    main(sys.argv[1:])
