/* The real-time clock's serial protocol on VIA port B: rTCEnb (PB2, active low) frames a
 * transfer, the CPU drives rTCClk (PB1) and the RTC samples rTCData (PB0) on its rising
 * edge, most significant bit first. A command byte is 1rrrrr01 to read register r (0-3:
 * the seconds counter, least significant byte first); for a read, the RTC then drives
 * the data line and each bit is read after the clock has gone high. */
#include "demo.h"

static void rtc_send(u8 b)
{
    for (s8 i = 7; i >= 0; i--) {
        u8 v = (u8)(vBufB & ~(rTCClk | rTCData));
        if ((b >> i) & 1) v |= rTCData;
        vBufB = v;              /* clock low, data set up */
        vBufB = (u8)(v | rTCClk); /* rising edge: the RTC takes the bit */
    }
}

static u8 rtc_recv(void)
{
    u8 b = 0;
    for (s8 i = 7; i >= 0; i--) {
        vBufB = (u8)(vBufB & ~rTCClk);
        vBufB = (u8)(vBufB | rTCClk);
        b = (u8)((b << 1) | (vBufB & rTCData));
    }
    return b;
}

static u8 rtc_read_reg(u8 reg)
{
    u16 sr = irq_mask(7); /* port B is shared with the interrupt handlers' reads */
    vBufB = (u8)(vBufB & ~rTCEnb);
    rtc_send((u8)(0x81 | (reg << 2)));
    vDirB = (u8)(vDirB & ~rTCData); /* let the RTC drive the data line */
    u8 b = rtc_recv();
    vBufB = (u8)(vBufB | rTCEnb);
    vDirB = (u8)(vDirB | rTCData);
    irq_restore(sr);
    return b;
}

/* Reads the 32-bit seconds counter until two reads agree, so a carry between bytes
 * during the read cannot tear it. */
u32 rtc_read_seconds(void)
{
    u32 prev = 0;
    for (int tries = 0; tries < 4; tries++) {
        u32 s = 0;
        for (s8 r = 3; r >= 0; r--) s = (s << 8) | rtc_read_reg((u8)r);
        if (tries && s == prev) return s;
        prev = s;
    }
    return prev;
}
