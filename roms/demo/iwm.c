/* The Plus's floppy drives through the IWM, driven the way the Plus ROM's .Sony driver does:
 * mode $1F, drive registers addressed by CA0-2 and SEL (VIA PA5), commands strobed on LSTRB,
 * nibbles polled at q6L until bit 7 is set, address fields D5 AA 96 and data fields D5 AA AD
 * with the 6-and-2 decoding and its three-byte checksum.
 *
 * Errors are the Mac OS numbers the Sony driver returns (Inside Macintosh II, "Disk Driver"),
 * so a line on the screen names the same failure the real ROM would report. */
#include "demo.h"

/* Switch n (A12..A9) at $DFE1FF + n * $200; every access flips the switch first. */
#define IWM_BASE 0xDFE1FFUL
#define IWM(n) REG8(IWM_BASE + (u32)(n) * 0x200UL)
enum {
    ph0L, ph0H, ph1L, ph1H, ph2L, ph2H, ph3L, ph3H,
    mtrOff, mtrOn, intDrive, extDrive, q6L, q6H, q7L, q7H
};

/* Drive registers as (CA2 CA1 CA0 SEL): sense lines ... */
#define S_CSTIN 0x1     /* 0 = disk in place */
#define S_STEP 0x2      /* 0 = step in progress */
#define S_TK0 0x5       /* 0 = head on track 0 */
#define S_SWITCHED 0x6  /* 1 = disk changed */
#define S_RDDATA0 0x8   /* read lower head */
#define S_READY 0xD     /* 0 = ready */
#define S_INSTALLED 0xE /* 0 = drive connected */
/* ... and commands (CA2 is the value written) */
#define C_DIR_IN 0x0    /* step toward track 79 */
#define C_STEP 0x2
#define C_MOTOR_ON 0x4
#define C_DIR_OUT 0x8   /* step toward track 0 */
#define C_CLR_SWITCHED 0x9
#define C_MOTOR_OFF 0xC

#define IWM_MODE 0x1F  /* latch, async, no motor-off timer, fast, 8 MHz: what the Plus ROM sets */

static u8 denib[128]; /* disk byte & $7F -> 6-bit value, $FF if not a data nibble */
static const u8 nib_table[64] = {
    0x96, 0x97, 0x9A, 0x9B, 0x9D, 0x9E, 0x9F, 0xA6, 0xA7, 0xAB, 0xAC, 0xAD, 0xAE, 0xAF, 0xB2, 0xB3,
    0xB4, 0xB5, 0xB6, 0xB7, 0xB9, 0xBA, 0xBB, 0xBC, 0xBD, 0xBE, 0xBF, 0xCB, 0xCD, 0xCE, 0xCF, 0xD3,
    0xD6, 0xD7, 0xD9, 0xDA, 0xDB, 0xDC, 0xDD, 0xDE, 0xDF, 0xE5, 0xE6, 0xE7, 0xE9, 0xEA, 0xEB, 0xEC,
    0xED, 0xEE, 0xEF, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE, 0xFF};

/* Raw data field after D5 AA AD and its sector nibble: 699 data + 4 checksum nibbles. */
#define DATA_NIBS 699
static u8 raw[DATA_NIBS + 4];

/* Puts (CA2 CA1 CA0 SEL) on the drive lines in the ROM's order: CA0 = CA1 = 1 first, so no
 * intermediate address is a command LSTRB could latch, then CA2, SEL, CA0, CA1. */
static void drive_addr(u8 reg)
{
    (void)IWM(ph0H);
    (void)IWM(ph1H);
    (void)IWM((reg & 8) ? ph2H : ph2L);
    if (reg & 1)
        vBufA |= vHeadSel;
    else
        vBufA &= (u8)~vHeadSel;
    (void)IWM((reg & 2) ? ph0H : ph0L);
    (void)IWM((reg & 4) ? ph1H : ph1L);
}

/* Status register (Q6 = 1, Q7 = 0): bit 7 is the addressed sense line. */
static u8 sense(u8 reg)
{
    drive_addr(reg);
    (void)IWM(q6H);
    return (u8)(IWM(q7L) >> 7);
}

/* One LSTRB pulse with interrupts masked, as the ROM does, so the pulse stays short. */
static void command(u8 reg)
{
    u16 sr = irq_mask(7);
    drive_addr(reg);
    (void)IWM(ph3H);
    (void)IWM(ph3L);
    irq_restore(sr);
}

/* Mode $1F: with ENABLE off, wait until the status shows it off (b5 = 0), write the mode
 * through q7H and read it back from the status until it sticks. */
static s16 set_mode(void)
{
    (void)IWM(mtrOff);
    (void)IWM(q6H);
    for (u32 tries = 0; tries < 131072UL; tries++) {
        u8 st = IWM(q7L);
        if (st & 0x20) continue;
        if ((st & 0x1F) == IWM_MODE) return 0;
        IWM(q7H) = IWM_MODE;
    }
    return -77; /* initIWMErr */
}

static u8 ticks_since(u32 t0, u32 n)
{
    return Ticks - t0 >= n;
}

/* Waits (interrupts on, so Ticks runs) until sense `reg` reads `want`, at most `ticks`. */
static u8 wait_sense(u8 reg, u8 want, u16 ticks)
{
    u32 t0 = Ticks;
    while (sense(reg) != want)
        if (ticks_since(t0, ticks)) return 0;
    return 1;
}

/* Head to track 0: step outward until TK0, at most 80 steps (the drive has 80 tracks). */
static s16 recalibrate(void)
{
    if (sense(S_TK0) == 0) return 0;
    command(C_DIR_OUT);
    for (u8 i = 0; i < 80; i++) {
        command(C_STEP);
        if (!wait_sense(S_STEP, 1, 6)) return -75; /* cantStepErr */
        if (sense(S_TK0) == 0) return 0;
    }
    return -76; /* tk0BadErr */
}

/* Next disk byte from the data register (q6L, Q7 = 0), or -1 if none arrives: with the
 * motor off or no disk turning, bit 7 never sets. A read that returns bit 7 = 1 clears it. */
static s16 nibble(void)
{
    for (u16 n = 2048; n; n--) {
        u8 b = IWM(q6L);
        if (b & 0x80) return b;
    }
    return -1;
}

static s16 value(s16 b)
{
    return b < 0 ? -1 : (s16)denib[b & 0x7F] == 0xFF ? -1 : denib[b & 0x7F];
}

/* 6-and-2 decoding of the data field into 12 tag + 512 data bytes. Each group is a nibble of
 * high bits and three 6-bit nibbles; the bytes are unscrambled with three running sums CA, CB,
 * CC (CA rotated each group, carries chained CC -> CB -> CA); the last group holds two bytes.
 * The four nibbles after the data are the sums. Returns 0 or badDCksum (-72). */
static s16 decode_data(u8 *out)
{
    u16 ca = 0, cb = 0, cc = 0, i = 0, o = 0;
    for (;;) {
        s16 hi = value(raw[i]), v0 = value(raw[i + 1]), v1 = value(raw[i + 2]);
        if ((hi | v0 | v1) < 0) return -72;
        u8 e0 = (u8)(v0 | ((hi << 2) & 0xC0)), e1 = (u8)(v1 | ((hi << 4) & 0xC0));
        ca = (u16)((ca << 1) | (ca >> 7)) & 0xFF;
        u8 c = (u8)(ca & 1);
        u8 b0 = (u8)(e0 ^ ca);
        cc += (u16)(b0 + c);
        c = (u8)(cc >> 8);
        cc &= 0xFF;
        u8 b1 = (u8)(e1 ^ cc);
        cb += (u16)(b1 + c);
        c = (u8)(cb >> 8);
        cb &= 0xFF;
        out[o++] = b0;
        out[o++] = b1;
        if (o == 524) {
            i += 3;
            break;
        }
        s16 v2 = value(raw[i + 3]);
        if (v2 < 0) return -72;
        u8 b2 = (u8)((v2 | ((hi << 6) & 0xC0)) ^ cb);
        ca = (u16)(ca + b2 + c) & 0xFF;
        out[o++] = b2;
        i += 4;
    }
    s16 s0 = value(raw[i]), s1 = value(raw[i + 1]), s2 = value(raw[i + 2]), s3 = value(raw[i + 3]);
    if (s0 != (s16)(((ca >> 6) & 3) | ((cb >> 4) & 0x0C) | ((cc >> 2) & 0x30)) ||
        s1 != (s16)(cc & 0x3F) || s2 != (s16)(cb & 0x3F) || s3 != (s16)(ca & 0x3F))
        return -72;
    return 0;
}

/* Reads one sector of track 0 under the lower head: address fields are searched with
 * interrupts on; from a D5 to the end of its data field they are masked, since at 16 us a
 * disk byte an interrupt handler would lose nibbles. out gets 12 tag + 512 data bytes;
 * *format gets the address field's format byte ($02 400K, $22 800K). */
static s16 read_sector(u8 sector, u8 *out, u8 *format)
{
    s16 err = -81; /* sectNFErr: the sector never came by */
    drive_addr(S_RDDATA0);
    (void)IWM(q7L);
    for (u8 headers = 0; headers < 36; headers++) {
        u16 n = 0;
        u16 sr;
        for (;;) {
            s16 b = nibble();
            if (b < 0) return -66; /* noNybErr */
            if (++n > 1500) return -67; /* noAdrMkErr */
            if (b != 0xD5) continue;
            sr = irq_mask(7);
            if (nibble() == 0xAA && nibble() == 0x96) break;
            irq_restore(sr);
        }
        s16 t = value(nibble()), s = value(nibble()), h = value(nibble()), f = value(nibble());
        s16 sum = value(nibble());
        if ((t | s | h | f | sum) < 0 || (t ^ s ^ h ^ f ^ sum) != 0) {
            irq_restore(sr);
            err = -69; /* badCksmErr */
            continue;
        }
        if (nibble() != 0xDE || nibble() != 0xAA) {
            irq_restore(sr);
            err = -70; /* badBtSlpErr */
            continue;
        }
        if (t != 0 || h != 0) { /* track 0, side 0 (H = side << 5 | track >> 6) */
            irq_restore(sr);
            return -80; /* seekErr */
        }
        if (s != sector) {
            irq_restore(sr);
            continue;
        }
        /* The data mark must follow within 48 nibbles. */
        u8 found = 0;
        for (u8 k = 0; k < 48 && !found; k++)
            if (nibble() == 0xD5 && nibble() == 0xAA && nibble() == 0xAD) found = 1;
        if (!found) {
            irq_restore(sr);
            return -71; /* noDtaMkErr */
        }
        s16 ds = value(nibble());
        for (u16 k = 0; k < DATA_NIBS + 4; k++) {
            s16 b = nibble();
            if (b < 0) break;
            raw[k] = (u8)b;
        }
        u8 tail_ok = nibble() == 0xDE && nibble() == 0xAA;
        irq_restore(sr);
        if (ds != sector) return -71;
        err = decode_data(out);
        if (err) return err;
        if (!tail_ok) return -73; /* badDBtSlp */
        *format = (u8)f;
        return 0;
    }
    return err;
}

void iwm_init(void)
{
    for (u8 i = 0; i < 128; i++) denib[i] = 0xFF;
    for (u8 v = 0; v < 64; v++) denib[nib_table[v] & 0x7F] = v;
}

/* Looks at drive 0 (internal) or 1 (external). Returns FLOPPY_NONE (no drive or no disk),
 * FLOPPY_SAME (the disk read last time is still in place) or, after reading block 2, 0 or a
 * Sony driver error. `reread` asks for a read even if the disk did not change. */
s16 floppy_probe(u8 drive, u8 reread, u8 *block2, u8 *format)
{
    s16 err = set_mode();
    if (err) return err;
    (void)IWM(drive ? extDrive : intDrive);
    (void)IWM(mtrOn); /* ENABLE: the selected drive answers */
    if (sense(S_INSTALLED) != 0 || sense(S_CSTIN) != 0) {
        (void)IWM(mtrOff);
        return FLOPPY_NONE;
    }
    if (sense(S_SWITCHED)) {
        command(C_CLR_SWITCHED);
        reread = 1;
    }
    if (!reread) {
        (void)IWM(mtrOff);
        return FLOPPY_SAME;
    }
    command(C_MOTOR_ON);
    (void)wait_sense(S_READY, 0, 60); /* as in the ROM, not ready in time is no error */
    err = recalibrate();
    if (!err) {
        (void)wait_sense(S_READY, 0, 30);
        for (u8 tries = 0; tries < 3; tries++) {
            err = read_sector(2, block2, format);
            if (!err) break;
        }
    }
    command(C_MOTOR_OFF);
    (void)IWM(mtrOff);
    return err;
}
