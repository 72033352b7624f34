# Converts font.txt (ASCII-art glyphs) into assembler data for the demo ROM:
#   font_width: one byte per glyph (0x20..0x7E), its width in pixels
#   font_bits:  FONT_ROWS bytes per glyph, leftmost pixel in bit 7
# Fails (exit 1) on a malformed glyph so a bad edit never builds a ROM.
BEGIN { rows = 9; n = 0; cur = -1 }
/^;/ || /^[ \t]*$/ { next }
/^:/ {
    if (cur >= 0 && got != rows) { printf "glyph %s: %d rows, want %d\n", hex, got, rows > "/dev/stderr"; bad = 1; exit 1 }
    hex = $2; cur = n; n++; got = 0; w = -1
    if (hex != sprintf("%X", 32 + cur)) { printf "glyph %s out of order (want %X)\n", hex, 32 + cur > "/dev/stderr"; bad = 1; exit 1 }
    next
}
{
    if (w < 0) { w = length($0); width[cur] = w }
    if (length($0) != w || w < 1 || w > 7) { printf "glyph %s row %d: bad width\n", hex, got > "/dev/stderr"; bad = 1; exit 1 }
    v = 0
    for (i = 1; i <= w; i++) {
        c = substr($0, i, 1)
        if (c == "#") v += 2 ^ (8 - i)
        else if (c != ".") { printf "glyph %s: bad character '%s'\n", hex, c > "/dev/stderr"; bad = 1; exit 1 }
    }
    bits[cur, got] = v; got++
}
END {
    if (bad) exit 1
    if (got != rows || n != 95) { printf "font: %d glyphs, last has %d rows\n", n, got > "/dev/stderr"; bad = 1; exit 1 }
    print "/* Generated from font.txt by font2asm.awk; do not edit. */"
    print "\t.section .rodata"
    print "\t.globl font_width, font_bits"
    print "font_width:"
    for (g = 0; g < n; g++) printf "\t.byte %d\n", width[g]
    print "font_bits:"
    for (g = 0; g < n; g++) {
        line = "\t.byte "
        for (r = 0; r < rows; r++) line = line sprintf("%s%d", r ? "," : "", bits[g, r])
        print line
    }
}
