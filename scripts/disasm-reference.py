#!/usr/bin/env python3
"""Writes macemu-core/tests/data/disasm_objdump.txt: GNU objdump's disassembly of a sample of
68000 opcode words, the reference of macemu-core/tests/disasm.rs.

Every opcode word 0000-ffff is assembled into its own labelled 10-byte slot (the opcode and
four extension words) with m68k-linux-gnu-as, disassembled with
`m68k-linux-gnu-objdump -d -m m68k:68000`, and the first slot of each distinct shape of
objdump's text (mnemonic and operands with the numbers taken out) is kept, over two sets of
extension words. Needs binutils-m68k-linux-gnu (scripts/setup.sh installs it).

Usage: scripts/disasm-reference.py [OUTPUT]
"""
import os
import re
import subprocess
import sys
import tempfile

PER_SHAPE = 1
# The first three can be index words (of a source, or of a destination after a source): none has
# the 68020's scale or full-format bits.
EXTS = [(0xA802, 0x7080, 0x1804, 0x5678), (0x70FE, 0xF8F0, 0x8000, 0x0001)]


def slots(tmp, ext):
    src = os.path.join(tmp, "all.s")
    obj = os.path.join(tmp, "all.o")
    with open(src, "w") as f:
        for op in range(0x10000):
            words = ",".join("0x%04x" % w for w in (op,) + ext)
            f.write("s%04x: .short %s\n" % (op, words))
    subprocess.run(["m68k-linux-gnu-as", "-m68000", "-o", obj, src], check=True)
    out = subprocess.run(
        ["m68k-linux-gnu-objdump", "-d", "-m", "m68k:68000", obj],
        check=True, capture_output=True, text=True).stdout
    lines = out.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^[0-9a-f]+ <s([0-9a-f]{4})>:$", line)
        if m:
            addr, _, text = lines[i + 1].split("\t", 2)
            yield int(m.group(1), 16), int(addr.strip().rstrip(":"), 16), text.strip()


def shape(text):
    """objdump's text with register numbers and numbers taken out (a branch target is the
    last operand, in bare hexadecimal)."""
    mnem, _, ops = text.split(" <")[0].partition(" ")
    if mnem.startswith("b") or mnem.startswith("db"):
        ops = ops.rpartition(",")[0] + ",T"
    ops = re.sub(r"%(fp|sp)", "%a7", ops)
    ops = re.sub(r"%([ad])[0-7]", r"%\1", ops)
    return mnem + " " + re.sub(r"-?\b(0x[0-9a-f]+|[0-9]+)\b", "N", ops)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "macemu-core", "tests", "data", "disasm_objdump.txt")
    version = subprocess.run(["m68k-linux-gnu-objdump", "--version"], check=True,
                             capture_output=True, text=True).stdout.splitlines()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        seen = {}
        for ext in EXTS:
            for op, addr, text in slots(tmp, ext):
                # Line F is unimplemented on the 68000 whatever objdump makes of it.
                key = "line f" if op >> 12 == 0xF else shape(text)
                if seen.get(key, 0) < PER_SHAPE:
                    seen[key] = seen.get(key, 0) + 1
                    words = " ".join("%04x" % w for w in (op,) + ext)
                    rows.append("%x\t%s\t%s" % (addr, words, text))
    with open(out, "w") as f:
        f.write("# %s, -m m68k:68000; written by scripts/disasm-reference.py\n" % version)
        f.write("# address<TAB>opcode and extension words<TAB>objdump's text\n")
        f.write("\n".join(rows) + "\n")
    print("%d lines to %s" % (len(rows), out))


if __name__ == "__main__":
    main()
