/* The arrow cursor, kept the way the Mac ROM keeps it: the SCC interrupt counts mouse
 * steps into MTemp and sets CrsrNew; the VBL cursor task turns MTemp into RawMouse and
 * Mouse (pinned to CrsrPin) and redraws the cursor with save-under. A host may position
 * the cursor by writing MTemp and RawMouse and copying CrsrCouple into CrsrNew. */
#include "demo.h"

#define HOT_H 1
#define HOT_V 1

/* Arrow image (bit 15 = leftmost pixel); its mask is the image grown by one pixel. */
static const u16 arrow[16] = {
    0x0000, 0x4000, 0x6000, 0x7000, 0x7800, 0x7C00, 0x7E00, 0x7F00,
    0x7F80, 0x7C00, 0x6C00, 0x4600, 0x0600, 0x0300, 0x0300, 0x0000,
};
static u16 mask[16];

static u8 saved[16][3];
static s16 saved_x, saved_y; /* top-left of the drawn cursor */

void cursor_init(void)
{
    for (int r = 0; r < 16; r++) {
        u16 m = 0;
        for (int d = -1; d <= 1; d++) {
            int rr = r + d;
            if (rr < 0 || rr > 15) continue;
            u16 a = arrow[rr];
            m |= a | (u16)(a << 1) | (u16)(a >> 1);
        }
        mask[r] = m;
    }
    /* pinning rectangle: top, left, bottom, right */
    GLOB16(CrsrPin) = 0;
    GLOB16(CrsrPin + 2) = 0;
    GLOB16(CrsrPin + 4) = SCREEN_H;
    GLOB16(CrsrPin + 6) = SCREEN_W;
    PT_V(MTemp) = SCREEN_H / 2;
    PT_H(MTemp) = SCREEN_W / 2;
    PT_L(RawMouse) = PT_L(MTemp);
    PT_L(Mouse) = PT_L(MTemp);
    CrsrThresh = 6;
    CrsrScale = 0;
    CrsrCouple = 0xFF;
    CrsrNew = 0;
    CrsrBusy = 0;
    CrsrVis = 0;
    CrsrState = -1; /* hidden until the desk is drawn and calls show_cursor */
}

/* The screen bytes covered by row r of a cursor at (x, y): column bx + k for k in 0..2. */
static void erase(void)
{
    for (s16 r = 0; r < 16; r++) {
        s16 y = saved_y + r;
        if (y < 0 || y >= SCREEN_H) continue;
        s16 bx = saved_x >> 3;
        u8 *row = screen + ((u32)(u16)y << 6);
        for (s16 k = 0; k < 3; k++)
            if (bx + k >= 0 && bx + k < ROW_BYTES) row[bx + k] = saved[r][k];
    }
    CrsrVis = 0;
}

static void draw(void)
{
    s16 x = PT_H(Mouse) - HOT_H, y = PT_V(Mouse) - HOT_V;
    s16 bx = x >> 3; /* arithmetic shift: floor for negative x */
    u8 sh = (u8)(x - (bx << 3));
    saved_x = x;
    saved_y = y;
    for (s16 r = 0; r < 16; r++) {
        s16 yy = y + r;
        if (yy < 0 || yy >= SCREEN_H) continue;
        u32 d = ((u32)arrow[r] << 16) >> sh;
        u32 m = ((u32)mask[r] << 16) >> sh;
        u8 *row = screen + ((u32)(u16)yy << 6);
        for (s16 k = 0; k < 3; k++) {
            s16 c = bx + k;
            if (c < 0 || c >= ROW_BYTES) continue;
            u8 db = (u8)(d >> (24 - 8 * k)), mb = (u8)(m >> (24 - 8 * k));
            saved[r][k] = row[c];
            /* Macintosh cursor rule: mask clears to white, data then inverts */
            row[c] = (u8)((row[c] & ~mb) ^ db);
        }
    }
    GLOB16(CrsrRect) = y;
    GLOB16(CrsrRect + 2) = x;
    GLOB16(CrsrRect + 4) = y + 16;
    GLOB16(CrsrRect + 6) = x + 16;
    CrsrAddr = (u32)(screen + ((s32)y << 6) + bx);
    CrsrVis = 1;
}

static s16 pin(s16 v, s16 lo, s16 hi)
{
    return v < lo ? lo : (v >= hi ? hi - 1 : v);
}

/* Runs at every vertical blanking (level 1), may be interrupted by the SCC (level 2). */
void cursor_task(void)
{
    if (!CrsrNew || CrsrBusy) return;
    CrsrNew = 0;
    if (!CrsrCouple) return;
    /* MTemp is updated by the level-2 mouse interrupt: read-modify-write it with that
     * level masked so no step is lost. */
    u16 sr = irq_mask(2);
    s16 dv = PT_V(MTemp) - PT_V(RawMouse);
    s16 dh = PT_H(MTemp) - PT_H(RawMouse);
    if (CrsrScale) {
        s16 av = dv < 0 ? -dv : dv, ah = dh < 0 ? -dh : dh;
        if (av + ah > CrsrThresh) {
            dv *= 2;
            dh *= 2;
        }
    }
    s16 v = pin(PT_V(RawMouse) + dv, GLOB16(CrsrPin), GLOB16(CrsrPin + 4));
    s16 h = pin(PT_H(RawMouse) + dh, GLOB16(CrsrPin + 2), GLOB16(CrsrPin + 6));
    u32 p = ((u32)(u16)v << 16) | (u16)h;
    PT_L(RawMouse) = p;
    PT_L(MTemp) = p;
    irq_restore(sr);
    if (PT_L(Mouse) == p) return;
    PT_L(Mouse) = p;
    if (CrsrState == 0) {
        if (CrsrVis) erase();
        draw();
    }
}

void hide_cursor(void)
{
    CrsrBusy = 1;
    if (CrsrState == 0 && CrsrVis) erase();
    CrsrState--;
    CrsrBusy = 0;
}

/* Like hide_cursor, but leaves the cursor on screen unless it overlaps the rectangle that is
 * about to be drawn (QuickDraw's ShieldCursor), so drawing elsewhere does not make it flicker. */
void shield_cursor(s16 x, s16 y, s16 w, s16 h)
{
    CrsrBusy = 1;
    if (CrsrState == 0 && CrsrVis && saved_x < x + w && x < saved_x + 16 && saved_y < y + h &&
        y < saved_y + 16)
        erase();
    CrsrState--;
    CrsrBusy = 0;
}

void show_cursor(void)
{
    CrsrBusy = 1;
    if (CrsrState < 0 && ++CrsrState == 0) {
        /* the mouse may have moved while the cursor was left standing */
        if (CrsrVis && (saved_x != PT_H(Mouse) - HOT_H || saved_y != PT_V(Mouse) - HOT_V))
            erase();
        if (!CrsrVis) draw();
    }
    CrsrBusy = 0;
}
