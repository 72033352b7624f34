/* macemu demo ROM: ROM header, reset, RAM sizing, exception and interrupt entry.
 *
 * After reset the VIA overlay bit maps this ROM at 0 as well as at 0x400000, so the
 * 68000 fetches its reset SSP and PC from the first two longs here. As in Apple's ROMs
 * the first long is the ROM checksum (it doubles as a throw-away SSP) and the second is
 * the entry point, already an address in the 0x400000 image. */

#define VIA_BASE 0xEFE1FE
#define vBufB 0x0000
#define vDirB 0x0400
#define vDirA 0x0600
#define vIFR 0x1A00
#define vIER 0x1C00
#define vBufA 0x1E00
#define MemTop 0x108

        .section .header,"ax"
        .globl  rom_header
rom_header:
        .long   0                       /* checksum: sum of the words from offset 4, patched by the build */
        .long   _start                  /* reset PC */
        .word   0x0001                  /* version of this demo ROM */
        .ascii  "macemu demo ROM\0"
        .even

        .text
        .globl  _start
_start:
        move.w  #0x2700,%sr
        lea     VIA_BASE,%a0
        move.b  #0x7F,vIER(%a0)         /* no VIA interrupts yet */
        move.b  #0x7F,vIFR(%a0)
        /* Port A: main screen and sound buffers, overlay off, volume 5. Latch the data before
         * turning the pins into outputs so the overlay drops exactly once. */
        move.b  #0x4D,vBufA(%a0)
        move.b  #0x7F,vDirA(%a0)        /* PA7 (SCC W/REQ) stays an input */
        /* Port B: sound off (PB7 high), RTC disabled (PB2 high), clock and data high. */
        move.b  #0x87,vBufB(%a0)
        move.b  #0x87,vDirB(%a0)

        /* RAM is now at 0. It repeats every <size> bytes up to 0x3FFFFF, so the first
         * power of two whose write shows up at address 0 is the size (128 KiB .. 4 MiB).
         * A 2.5 MiB Plus decodes all 4 MiB, but its bank B (256 KiB SIMMs) repeats every
         * 512 KiB from 0x200000: checked below. */
        clr.l   0.w
        move.l  #0x20000,%d1
1:      movea.l %d1,%a1
        move.l  %d1,(%a1)
        cmp.l   0.w,%d1
        beq.s   2f
        add.l   %d1,%d1
        cmp.l   #0x400000,%d1
        bcs.s   1b
2:      cmp.l   #0x400000,%d1
        bne.s   8f
        movea.l #0x200000,%a1
        clr.l   (%a1)
        movea.l #0x280000,%a2
        move.l  %a2,(%a2)
        cmpa.l  (%a1),%a2
        bne.s   8f
        move.l  %a2,%d1
8:      move.l  %d1,MemTop.w
        movea.l %d1,%sp
        suba.l  #0xD900,%sp             /* stack grows down below the alternate screen */

        /* Initialised data to RAM, then clear .bss. */
        lea     __data_load,%a0
        lea     __data_start,%a1
        lea     __data_end,%a2
3:      cmpa.l  %a2,%a1
        bcc.s   4f
        move.w  (%a0)+,(%a1)+
        bra.s   3b
4:      lea     __bss_end,%a2
5:      cmpa.l  %a2,%a1
        bcc.s   6f
        clr.w   (%a1)+
        bra.s   5b

        /* Exception vectors in RAM: every vector 2..63 gets its own entry in exc_table (so
         * the handler knows the vector number); the autovectors are set below. Vectors 64 and
         * up are never used on a Mac (no device supplies a vector), and their space from 0x100
         * holds the system globals, so they are left alone. */
6:      lea     8.w,%a1
        lea     exc_table+8,%a0         /* entry n is at exc_table + 4n */
        moveq   #62-1,%d0
7:      move.l  %a0,(%a1)+
        addq.l  #4,%a0
        dbra    %d0,7b
        move.l  #int_ignore,24*4.w      /* spurious interrupt */
        move.l  #int_level1,25*4.w      /* VIA */
        move.l  #int_level2,26*4.w      /* SCC */
        move.l  #int_level3,27*4.w      /* VIA and SCC together */
        move.l  #int_ignore,28*4.w      /* level 4: interrupt switch */
        move.l  #int_ignore,29*4.w
        move.l  #int_ignore,30*4.w
        move.l  #int_ignore,31*4.w      /* level 7: NMI */

        jsr     demo_main
9:      stop    #0x2700
        bra.s   9b

/* Interrupt entry: save the registers C code may clobber, call the device handler. */
int_level1:
        movem.l %d0-%d1/%a0-%a1,-(%sp)
        jsr     via_interrupt
        movem.l (%sp)+,%d0-%d1/%a0-%a1
        rte
int_level2:
        movem.l %d0-%d1/%a0-%a1,-(%sp)
        jsr     scc_interrupt
        movem.l (%sp)+,%d0-%d1/%a0-%a1
        rte
int_level3:
        movem.l %d0-%d1/%a0-%a1,-(%sp)
        jsr     scc_interrupt
        jsr     via_interrupt
        movem.l (%sp)+,%d0-%d1/%a0-%a1
        rte
int_ignore:
        rte

/* One BSR per vector: the return address it pushes identifies the vector. */
        .globl  exc_table
exc_table:
        .rept   64
        bsr.w   exc_common
        .endr
exc_common:
        move.l  (%sp)+,%d0
        subi.l  #exc_table+4,%d0
        lsr.l   #2,%d0                  /* vector number */
        move.l  2(%sp),%d1              /* PC in the short frame (group 0 frames: IR/address first) */
        cmpi.w  #3,%d0
        bhi.s   1f
        move.l  10(%sp),%d1             /* bus and address errors push 8 more bytes */
1:      move.l  %d1,-(%sp)
        move.l  %d0,-(%sp)
        jsr     system_error
2:      stop    #0x2700
        bra.s   2b
