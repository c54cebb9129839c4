#!/usr/bin/env python3
"""Compares the console transcripts of a differential-test program on QEMU and on Magritte.

Usage: compare.py EXPECTED.txt ACTUAL.txt PROGRAM.lst [--max-blocks N]

Exit status 0 when the transcripts agree, 1 when they differ (a report on stdout: per differing
block, its inputs, its instruction listing and the fields that differ), 2 when the expected
transcript is not a complete run of the harness (a generator or QEMU problem, not a CPU one).
"""

import argparse
import sys

EXC_NAMES = {0: "Int", 1: "Mod", 2: "TLBL", 3: "TLBS", 4: "AdEL", 5: "AdES", 6: "IBE", 7: "DBE",
             8: "Sys", 9: "Bp", 10: "RI", 11: "CpU", 12: "Ov", 13: "Tr", 23: "WATCH", 24: "MCheck"}


def read_lines(path):
    with open(path, "rb") as f:
        text = f.read().decode("latin-1")
    return [line for line in text.replace("\r", "").split("\n") if line]


def parse(line):
    """A block line -> (block number or None, ordered fields). Exceptions become e1, e2, ..."""
    tokens = line.split()
    if not tokens or not tokens[0].startswith("B"):
        return None, {"line": line}
    try:
        block = int(tokens[0][1:], 16)
    except ValueError:
        return None, {"line": line}
    fields = {}
    n = 0
    for t in tokens[1:]:
        key, _, value = t.partition("=")
        if key == "e":
            n += 1
            key = f"e{n}"
        fields[key] = value
    return block, fields


def describe_exception(value):
    """'cause:epcoff:badvaddr:entryhi:context' -> readable text."""
    parts = value.split(":")
    try:
        cause = int(parts[0], 16)
    except (ValueError, IndexError):
        return value
    code = (cause >> 2) & 31
    text = f"{EXC_NAMES.get(code, '?')}({code})"
    if cause >> 31:
        text += " BD"
    if code == 11:
        text += f" CE={(cause >> 28) & 3}"
    text += " refill-vector" if cause & 1 else ""
    if len(parts) > 1:
        off = int(parts[1], 16)
        off = off - (1 << 32) if off >> 31 else off
        text += f" at +{off:03x}" if off >= 0 else f" at {off}"
    if len(parts) > 2 and code in (1, 2, 3, 4, 5):
        text += f" BadVAddr={parts[2]}"
    if len(parts) > 4 and code in (1, 2, 3):
        text += f" EntryHi={parts[3]} Context={parts[4]}"
    return text


def listing(lst_lines, block):
    out, inside = [], False
    for line in lst_lines:
        if line.startswith("block "):
            inside = line.split()[1] == str(block)
        if inside:
            out.append(line)
    return out


def report_block(block, exp, act, lst_lines):
    out = [f"block {block}:" if block is not None else "line:"]
    out += ["  " + line for line in listing(lst_lines, block)] if block is not None else []
    out.append("  differs (QEMU / Magritte):")
    keys = list(exp) + [k for k in act if k not in exp]
    for k in keys:
        e, a = exp.get(k, "(none)"), act.get(k, "(none)")
        if e == a:
            continue
        if k.startswith("e") and k[1:].isdigit():
            out.append(f"    exception {k[1:]}: {describe_exception(e)} [{e}]")
            out.append(f"    {' ' * (len(k) + 10)}  / {describe_exception(a)} [{a}]")
        else:
            out.append(f"    {k}: {e} / {a}")
    return out


def instruction_at(lst_lines, block, offset):
    """The listing text of block's slot at byte offset, or ''."""
    for line in listing(lst_lines, block):
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0] == f"+{offset:03x}":
            return parts[2]
    return ""


def exception_offsets(fields):
    out = []
    for k, v in fields.items():
        if k.startswith("e") and k[1:].isdigit():
            try:
                out.append(int(v.split(":")[1], 16))
            except (IndexError, ValueError):
                pass
    return out


def triage(expected, actual, lst_lines):
    """One line per differing block: the block, the differing fields, and the instructions at
    the offsets of the exceptions that differ (for grouping a campaign's mismatches)."""
    out = []
    for e_line, a_line in zip(expected, actual):
        if e_line == a_line:
            continue
        be, fe = parse(e_line)
        ba, fa = parse(a_line)
        if be is None or be != ba:
            out.append(f"? {e_line[:60]} / {a_line[:60]}")
            continue
        keys = [k for k in list(fe) + [k for k in fa if k not in fe] if fe.get(k) != fa.get(k)]
        exc_e = {k: v for k, v in fe.items() if k in keys and k.startswith("e") and k[1:].isdigit()}
        exc_a = {k: v for k, v in fa.items() if k in keys and k.startswith("e") and k[1:].isdigit()}
        offs = sorted(set(exception_offsets(exc_e)) | set(exception_offsets(exc_a)))
        what = "; ".join(f"+{o:03x} {instruction_at(lst_lines, be, o)}" for o in offs[:2])
        excs = " | ".join(f"{describe_exception(exc_e.get(k, '-'))} / {describe_exception(exc_a.get(k, '-'))}"
                          for k in sorted(set(exc_e) | set(exc_a))[:2])
        out.append(f"block {be}: fields {' '.join(keys)} :: {excs} :: {what}")
    return out


def compare(expected, actual, lst_lines, max_blocks=3):
    """Returns (status, report lines)."""
    if not expected or expected[0] != "DIFFTEST BEGIN" or expected[-1] != "DIFFTEST END":
        return 2, ["the QEMU transcript is not a complete run of the harness:"] + expected[-5:]
    if expected == actual:
        return 0, []
    out = []
    differing = [i for i in range(max(len(expected), len(actual)))
                 if i >= len(expected) or i >= len(actual) or expected[i] != actual[i]]
    out.append(f"{len(differing)} of {len(expected)} lines differ")
    for i in differing[:max_blocks]:
        if i >= len(actual):
            out.append(f"Magritte's transcript ends at line {i + 1} (of {len(expected)}):")
            out.append("  expected: " + expected[i][:200])
            break
        if i >= len(expected):
            out.append("Magritte printed more: " + actual[i][:200])
            break
        be, fe = parse(expected[i])
        ba, fa = parse(actual[i])
        if be is None or be != ba:
            out.append(f"line {i + 1}:")
            out.append("  QEMU:     " + expected[i][:300])
            out.append("  Magritte: " + actual[i][:300])
            continue
        out += report_block(be, fe, fa, lst_lines)
    return 1, out


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("expected")
    p.add_argument("actual")
    p.add_argument("listing")
    p.add_argument("--max-blocks", type=int, default=3)
    p.add_argument("--triage", action="store_true",
                   help="one line per differing block instead of the report")
    args = p.parse_args(argv)
    if args.triage:
        out = triage(read_lines(args.expected), read_lines(args.actual), read_lines(args.listing))
        if out:
            print("\n".join(out))
        return 1 if out else 0
    status, out = compare(read_lines(args.expected), read_lines(args.actual),
                          read_lines(args.listing), args.max_blocks)
    if out:
        print("\n".join(out))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
