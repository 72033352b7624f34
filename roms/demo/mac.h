/* Mac Plus hardware addresses and the low-memory globals the demo ROM keeps.
 * Hardware: Guide to the Macintosh Family Hardware (2nd ed.), Inside Macintosh III.
 * Globals: Inside Macintosh (SysEqu / QuickDraw equates); addresses are fixed by the
 * Macintosh system software, so programs and hosts can read and write them directly. */
#ifndef MAC_H
#define MAC_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned long u32;
typedef signed char s8;
typedef short s16;
typedef long s32;

#define REG8(a) (*(volatile u8 *)(a))
#define REG16(a) (*(volatile u16 *)(a))
#define REG32(a) (*(volatile u32 *)(a))
#define GLOB8(a) (*(volatile u8 *)(a))
#define GLOB16(a) (*(volatile s16 *)(a))
#define GLOB32(a) (*(volatile u32 *)(a))

/* ---- VIA 6522: register n at VIA_BASE + n * 0x200 (odd bytes, lower data lines) ---- */
#define VIA_BASE 0xEFE1FEUL
#define vBufB REG8(VIA_BASE + 0x0000)  /* port B data */
#define vDirB REG8(VIA_BASE + 0x0400)  /* port B direction (1 = output) */
#define vDirA REG8(VIA_BASE + 0x0600)  /* port A direction */
#define vT1C REG8(VIA_BASE + 0x0800)   /* timer 1 counter low */
#define vT1CH REG8(VIA_BASE + 0x0A00)  /* timer 1 counter high */
#define vT2C REG8(VIA_BASE + 0x1000)   /* timer 2 counter low */
#define vT2CH REG8(VIA_BASE + 0x1200)  /* timer 2 counter high */
#define vSR REG8(VIA_BASE + 0x1400)    /* shift register (keyboard) */
#define vACR REG8(VIA_BASE + 0x1600)   /* auxiliary control */
#define vPCR REG8(VIA_BASE + 0x1800)   /* peripheral control */
#define vIFR REG8(VIA_BASE + 0x1A00)   /* interrupt flags */
#define vIER REG8(VIA_BASE + 0x1C00)   /* interrupt enable */
#define vBufA REG8(VIA_BASE + 0x1E00)  /* port A data, no handshake */

/* Port A */
#define vSound 0x07    /* PA0-2: sound volume */
#define vSndPg2 0x08   /* PA3: 1 = main sound buffer, 0 = alternate */
#define vOverlay 0x10  /* PA4: 1 = ROM overlays RAM at 0 */
#define vHeadSel 0x20  /* PA5: disk head select */
#define vPage2 0x40    /* PA6: 1 = main screen buffer, 0 = alternate */
#define vSCCWReq 0x80  /* PA7: SCC wait/request (input) */
/* Port B */
#define rTCData 0x01   /* PB0: RTC serial data */
#define rTCClk 0x02    /* PB1: RTC data clock */
#define rTCEnb 0x04    /* PB2: RTC enable, active low */
#define vSW 0x08       /* PB3: mouse switch, 0 = pressed (input) */
#define vX2 0x10       /* PB4: mouse X quadrature (input) */
#define vY2 0x20       /* PB5: mouse Y quadrature (input) */
#define vH4 0x40       /* PB6: horizontal blanking (input) */
#define vSndEnb 0x80   /* PB7: sound enable, active low */

/* IFR / IER bits */
#define ifCA2 0x01  /* one-second interrupt from the RTC */
#define ifCA1 0x02  /* vertical blanking */
#define ifSR 0x04   /* keyboard shift register */
#define ifCB2 0x08
#define ifCB1 0x10
#define ifT2 0x20
#define ifT1 0x40
#define ifIRQ 0x80  /* IFR: any; IER: 1 = set the written bits, 0 = clear them */

/* ACR shift-register modes (bits 4-2) */
#define acrSRMask 0x1C
#define acrSRInExt 0x0C   /* shift in under external clock (CB1 from the keyboard) */
#define acrSROutExt 0x1C  /* shift out under external clock */

/* ---- SCC Z8530: reads at 0x9FFFF8 + off, writes at 0xBFFFF9 + off ---- */
#define SCC_RD 0x9FFFF8UL
#define SCC_WR 0xBFFFF9UL
#define SCC_B_CTL 0
#define SCC_A_CTL 2
#define SCC_B_DATA 4
#define SCC_A_DATA 6
#define rr0DCD 0x08  /* RR0 bit 3: DCD input level (mouse X1 on A, Y1 on B) */

/* ---- Screen and sound buffers, relative to the top of RAM ---- */
#define SCREEN_OFFSET 0x5900UL
#define ALT_SCREEN_OFFSET 0xD900UL
#define SOUND_OFFSET 0x0300UL
#define ALT_SOUND_OFFSET 0x5F00UL
#define SCREEN_W 512
#define SCREEN_H 342
#define ROW_BYTES 64
#define SOUND_WORDS 370

/* ---- Low-memory globals (Inside Macintosh) ---- */
#define MemTop GLOB32(0x108)      /* end of RAM */
#define ScreenRow GLOB16(0x106)   /* rowBytes of the screen */
#define Ticks GLOB32(0x16A)       /* 1/60 s ticks since start-up */
#define MBTicks GLOB32(0x16E)     /* Ticks at the last button transition */
#define MBState GLOB8(0x172)      /* bit 7: 1 = button up, 0 = down */
#define KeyMapAddr 0x174UL        /* 16 bytes: bit (k & 7) of byte k >> 3 = key k down */
#define KeyLast GLOB16(0x184)     /* ASCII of the last key */
#define KeyTime GLOB32(0x186)     /* Ticks when KeyLast arrived */
#define VIAGlob GLOB32(0x1D4)     /* VIA base */
#define SCCRdGlob GLOB32(0x1D8)   /* SCC read base */
#define SCCWrGlob GLOB32(0x1DC)   /* SCC write base */
#define Time GLOB32(0x20C)        /* seconds since 1 Jan 1904 */
#define KbdType GLOB8(0x21E)      /* keyboard model byte (answer to Model) */
#define SdVolume GLOB8(0x260)     /* speaker volume 0-7 */
#define SoundBase GLOB32(0x266)   /* sound buffer */
#define ROMBase GLOB32(0x2AE)
#define SCCASts GLOB8(0x2CE)      /* RR0 at the last channel A ext/status interrupt */
#define SCCBSts GLOB8(0x2CF)      /* RR0 at the last channel B ext/status interrupt */
#define ScrnBase GLOB32(0x824)    /* main screen */
#define MTemp 0x828UL             /* Point: mouse as counted by the interrupt handler */
#define RawMouse 0x82CUL          /* Point: unscaled mouse */
#define Mouse 0x830UL             /* Point: processed (pinned) mouse */
#define CrsrPin 0x834UL           /* Rect: cursor pinning rectangle */
#define CrsrRect 0x83CUL          /* Rect: where the cursor is drawn */
#define CrsrAddr GLOB32(0x888)    /* screen address of the saved area */
#define CrsrVis GLOB8(0x8CC)      /* cursor drawn on screen */
#define CrsrBusy GLOB8(0x8CD)     /* cursor locked out (being changed) */
#define CrsrNew GLOB8(0x8CE)      /* mouse moved: cursor task must run */
#define CrsrCouple GLOB8(0x8CF)   /* cursor follows the mouse */
#define CrsrState GLOB16(0x8D0)   /* nesting: 0 = shown, < 0 hidden */
#define CrsrObscure GLOB8(0x8D2)
#define CrsrScale GLOB8(0x8D3)    /* nonzero: double fast movements */
#define CrsrThresh GLOB16(0x8EC)  /* delta above which CrsrScale doubles */

/* Point fields: vertical first (high word), then horizontal */
#define PT_V(p) GLOB16(p)
#define PT_H(p) GLOB16((p) + 2)
#define PT_L(p) GLOB32(p)

/* Status-register helpers */
static inline u16 irq_mask(u16 level)
{
    u16 old;
    __asm__ volatile("move.w %%sr,%0" : "=d"(old));
    __asm__ volatile("move.w %0,%%sr" ::"d"((u16)((old & 0xF8FF) | (level << 8))) : "memory", "cc");
    return old;
}
static inline void irq_restore(u16 sr)
{
    __asm__ volatile("move.w %0,%%sr" ::"d"(sr) : "memory", "cc");
}

/* 32-by-16 unsigned division with the 68000's DIVU.W, split so the quotient never
 * overflows (no libgcc needed). */
static inline u32 udivmod16(u32 n, u16 d, u16 *rem)
{
    u32 hi = n >> 16, lo = n & 0xFFFF, t;
    __asm__("divu.w %1,%0" : "=d"(t) : "d"(d), "0"(hi) : "cc");
    u32 qhi = t & 0xFFFF;
    u32 r = t >> 16;
    u32 t2 = (r << 16) | lo;
    __asm__("divu.w %1,%0" : "=d"(t2) : "d"(d), "0"(t2) : "cc");
    *rem = (u16)(t2 >> 16);
    return (qhi << 16) | (t2 & 0xFFFF);
}

#endif
