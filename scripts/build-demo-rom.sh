#!/bin/sh
# Rebuilds roms/demo.rom (the 128 KiB demo ROM) from roms/demo/ with Debian's
# gcc-m68k-linux-gnu. The build is reproducible: fixed flags, no timestamps or build ids,
# source paths mapped away, a linker script that fixes every address.
#
#   scripts/build-demo-rom.sh            build into roms/demo.rom
#   scripts/build-demo-rom.sh OUT.rom    build elsewhere (the tests compare with roms/demo.rom)
#
# Building into roms/demo.rom also records the toolchain versions in roms/demo/TOOLCHAIN.
#
# Environment: M68K_PREFIX (default m68k-linux-gnu-), KEEP_BUILD=1 keeps the build directory
# (ELF and map file) and prints its path.
set -eu

root=$(cd "$(dirname "$0")/.." && pwd)
src="$root/roms/demo"
out=${1:-"$root/roms/demo.rom"}
prefix=${M68K_PREFIX:-m68k-linux-gnu-}
CC=${prefix}gcc
OBJCOPY=${prefix}objcopy

command -v "$CC" >/dev/null 2>&1 || { echo "build-demo-rom: $CC not found (apt-get install gcc-m68k-linux-gnu)" >&2; exit 2; }

build=$(mktemp -d "${TMPDIR:-/tmp}/demo-rom.XXXXXX")
[ "${KEEP_BUILD:-}" = 1 ] || trap 'rm -rf "$build"' EXIT

export LC_ALL=C SOURCE_DATE_EPOCH=0
CFLAGS="-m68000 -mstrict-align -O2 -fno-store-merging -fno-tree-loop-distribute-patterns -std=gnu11 -ffreestanding -nostdlib -fno-builtin -fno-pic -fomit-frame-pointer
  -fno-asynchronous-unwind-tables -fno-ident --param=min-pagesize=0 -Wall -Wextra -Werror -Wno-unused-parameter
  -ffile-prefix-map=$src=roms/demo -ffile-prefix-map=$build=build"

awk -f "$src/font2asm.awk" "$src/font.txt" >"$build/font.S"

# Compile in the build directory with relative names, in a fixed order.
cd "$build"
objs=""
for f in start.S gfx.c cursor.c input.c rtc.c sound.c iwm.c scsi.c disk.c desk.c; do
  o="${f%.*}.o"
  $CC $CFLAGS -I"$src" -Wa,-m68000 -c "$src/$f" -o "$o"
  objs="$objs $o"
done
$CC $CFLAGS -Wa,-m68000 -c font.S -o font.o
$CC $CFLAGS -T "$src/link.ld" -Wl,--build-id=none -Wl,-Map=demo.map -Wl,--no-warn-rwx-segments -Wl,-z,noexecstack \
  -o demo.elf $objs font.o
$OBJCOPY -O binary --pad-to 0x420000 --gap-fill 0xFF demo.elf demo.bin

size=$(wc -c <demo.bin)
[ "$size" -eq 131072 ] || { echo "build-demo-rom: image is $size bytes, want 131072 (code too big?)" >&2; exit 1; }

# Apple's ROM checksum: the 32-bit sum of the big-endian words from offset 4 to the end,
# stored in the first long.
sum=$(od -An -v -tu1 -j4 demo.bin | awk '
  { for (i = 1; i <= NF; i += 2) { s += $i * 256 + $(i + 1); if (s >= 4294967296) s -= 4294967296 } }
  END { printf "%08x", s }')
# POSIX printf knows octal escapes only: write the four bytes as \ooo.
octal=$(printf '%s' "$sum" | awk '{ for (i = 1; i <= 8; i += 2) printf "\\%03o", index("0123456789abcdef", substr($0, i, 1)) * 16 + index("0123456789abcdef", substr($0, i + 1, 1)) - 17 }')
printf "$octal" | dd of=demo.bin bs=1 count=4 conv=notrunc 2>/dev/null

mkdir -p "$(dirname "$out")"
cp demo.bin "$out"
chmod 0644 "$out"
# The image depends on the compiler and assembler versions: record them next to the checked-in
# ROM so the test can tell a stale image from a different toolchain.
toolchain=$($CC --version | head -1; ${prefix}as --version | head -1)
if [ "$#" -eq 0 ]; then
  printf '%s\n' "$toolchain" >"$src/TOOLCHAIN"
fi
echo "build-demo-rom: $out (checksum $sum)"
[ "${KEEP_BUILD:-}" != 1 ] || echo "build-demo-rom: build files kept in $build"
