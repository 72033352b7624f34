/* 1-bit drawing on the Mac Plus screen: 512x342, 64 bytes a row, bit 7 of a byte is its
 * leftmost pixel, 1 = black. Patterns are 8x8 and aligned to the screen. */
#include "demo.h"

u8 *screen;
const u8 pat_gray[8] = {0xAA, 0x55, 0xAA, 0x55, 0xAA, 0x55, 0xAA, 0x55};
const u8 pat_black[8] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
const u8 pat_white[8] = {0, 0, 0, 0, 0, 0, 0, 0};

extern const u8 font_width[95];
extern const u8 font_bits[95 * FONT_ROWS];

static inline void apply(u8 *d, u8 v, u8 m, u8 op)
{
    switch (op) {
    case OP_COPY: *d = (u8)((*d & ~m) | (v & m)); break;
    case OP_XOR: *d ^= (u8)(v & m); break;
    case OP_OR: *d |= (u8)(v & m); break;
    default: *d &= (u8)~(v & m); break;
    }
}

/* The whole bytes of a span. COPY, the common case (desktop, window backgrounds), stores
 * longs once the pointer is even. */
static void span_middle(u8 *p, s16 n, u8 v, u8 op)
{
    switch (op) {
    case OP_COPY:
        if (n >= 8) {
            if ((u32)p & 1) {
                *p++ = v;
                n--;
            }
            u32 vv = (u32)v * 0x01010101UL;
            u32 *l = (u32 *)p;
            for (s16 k = n >> 2; k > 0; k--) *l++ = vv;
            p = (u8 *)l;
            n &= 3;
        }
        while (n-- > 0) *p++ = v;
        break;
    case OP_XOR:
        while (n-- > 0) *p++ ^= v;
        break;
    case OP_OR:
        while (n-- > 0) *p++ |= v;
        break;
    default:
        while (n-- > 0) *p++ &= (u8)~v;
        break;
    }
}

void fill_rect(s16 x, s16 y, s16 w, s16 h, const u8 *pat, u8 op)
{
    s16 x1 = x + w, y1 = y + h;
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    if (x1 > SCREEN_W) x1 = SCREEN_W;
    if (y1 > SCREEN_H) y1 = SCREEN_H;
    if (x >= x1 || y >= y1) return;
    s16 bx0 = x >> 3, bx1 = (x1 - 1) >> 3;
    u8 lm = (u8)(0xFF >> (x & 7));
    u8 rm = (u8)(0xFF << (7 - ((x1 - 1) & 7)));
    if (bx0 == bx1) lm &= rm;
    u8 *row = screen + ((u32)(u16)y << 6) + bx0;
    for (s16 yy = y; yy < y1; yy++, row += ROW_BYTES) {
        u8 v = pat[yy & 7];
        apply(row, v, lm, op);
        if (bx1 > bx0) {
            span_middle(row + 1, bx1 - bx0 - 1, v, op);
            apply(row + (bx1 - bx0), v, rm, op);
        }
    }
}

void frame_rect(s16 x, s16 y, s16 w, s16 h)
{
    fill_rect(x, y, w, 1, pat_black, OP_COPY);
    fill_rect(x, y + h - 1, w, 1, pat_black, OP_COPY);
    fill_rect(x, y, 1, h, pat_black, OP_COPY);
    fill_rect(x + w - 1, y, 1, h, pat_black, OP_COPY);
}

/* A push button: rounded corners of radius 3 (rows 0..2 inset 3, 1, 1). */
void round_rect(s16 x, s16 y, s16 w, s16 h, u8 fill_white)
{
    static const u8 inset[3] = {3, 1, 1};
    for (s16 r = 0; r < h; r++) {
        s16 e = r < 3 ? r : (r >= h - 3 ? h - 1 - r : 3);
        s16 in = e < 3 ? inset[e] : 0;
        if (fill_white) fill_rect(x + in, y + r, w - 2 * in, 1, pat_white, OP_COPY);
        if (e == 0) {
            fill_rect(x + 3, y + r, w - 6, 1, pat_black, OP_COPY);
        } else if (e == 1) {
            fill_rect(x + 1, y + r, 2, 1, pat_black, OP_COPY);
            fill_rect(x + w - 3, y + r, 2, 1, pat_black, OP_COPY);
        } else {
            fill_rect(x + in, y + r, 1, 1, pat_black, OP_COPY);
            fill_rect(x + w - 1 - in, y + r, 1, 1, pat_black, OP_COPY);
        }
    }
}

static u8 glyph(char c)
{
    u8 u = (u8)c;
    return (u >= 0x20 && u < 0x7F) ? (u8)(u - 0x20) : (u8)('?' - 0x20);
}

s16 char_width(char c, u8 bold)
{
    return (s16)(font_width[glyph(c)] + 1 + (bold ? 1 : 0));
}

s16 text_width(const char *s, u8 bold)
{
    s16 w = 0;
    while (*s) w += char_width(*s++, bold);
    return w;
}

/* Draws one glyph with its top-left at (x, y); bold ORs in a copy one pixel right. */
s16 draw_char(s16 x, s16 y, char c, u8 bold, u8 op)
{
    u8 g = glyph(c);
    const u8 *bits = font_bits + (u16)g * FONT_ROWS;
    if (x >= 0 && x < SCREEN_W) {
        s16 bx = x >> 3;
        u8 sh = x & 7;
        u8 two = bx + 1 < ROW_BYTES;
        u8 *p = screen + ((u32)(u16)y << 6) + bx;
        for (s16 r = 0; r < FONT_ROWS; r++, p += ROW_BYTES) {
            s16 yy = y + r;
            u8 b = bits[r];
            if (!b || yy < 0 || yy >= SCREEN_H) continue;
            if (bold) b |= b >> 1;
            u16 v = (u16)((u16)b << 8) >> sh;
            u8 hi = (u8)(v >> 8), lo = (u8)v;
            switch (op) {
            case OP_OR:
                p[0] |= hi;
                if (two) p[1] |= lo;
                break;
            case OP_BIC:
                p[0] &= (u8)~hi;
                if (two) p[1] &= (u8)~lo;
                break;
            default:
                p[0] ^= hi;
                if (two) p[1] ^= lo;
                break;
            }
        }
    }
    return char_width(c, bold);
}

s16 draw_text(s16 x, s16 y, const char *s, u8 bold, u8 op)
{
    while (*s) x += draw_char(x, y, *s++, bold, op);
    return x;
}
