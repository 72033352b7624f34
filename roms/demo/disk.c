/* The disk list: at start-up and every two seconds the internal and external floppy drives
 * and SCSI IDs 0-6 are probed; for each disk found its volume's master directory block
 * (block 2 of the volume) is read and a line shows the volume name, or the error code.
 * The lines sit in a strip below the window that is drawn only while a disk is present, so
 * with no disks the desk looks as it always did. */
#include "demo.h"

#define N_SLOTS 9  /* floppy 1, floppy 2, SCSI 0..6 */
#define LINE_LEN 48
#define STRIP_X 8
#define STRIP_Y 303
#define STRIP_W (SCREEN_W - 16)
#define STRIP_H (3 * LINE_H + 2)
#define COLS 2
#define ROWS 3
#define COL_W (STRIP_W / COLS)

static char text[N_SLOTS][LINE_LEN];
static u8 present[N_SLOTS];
static u8 floppy_ok[2], floppy_tries[2];
static char drawn[COLS * ROWS][LINE_LEN];
static u8 n_drawn;
static u8 block[524]; /* a floppy sector (12 tag + 512 data bytes) or a SCSI block */

static char *put_str(char *p, const char *s)
{
    while (*s) *p++ = *s++;
    return p;
}

static char *put_num(char *p, s16 v)
{
    char tmp[6];
    u8 n = 0;
    u16 u = (u16)(v < 0 ? -v : v);
    if (v < 0) *p++ = '-';
    do {
        u16 r;
        u = (u16)udivmod16(u, 10, &r);
        tmp[n++] = (char)('0' + r);
    } while (u);
    while (n) *p++ = tmp[--n];
    return p;
}

/* "<label>: <volume name> (<kind>)" from a master directory block: HFS ($4244) and MFS
 * ($D2D7) both keep the name's length at +$24 and the name at +$25. The name is cut short
 * (ending in "...") if the line would not fit its column. */
static void describe(char *out, const char *label, const u8 *mdb, const char *size)
{
    char *p = put_str(out, label);
    u16 sig = (u16)((mdb[0] << 8) | mdb[1]);
    if (sig != 0x4244 && sig != 0xD2D7) {
        put_str(p, "no Mac volume")[0] = 0;
        return;
    }
    char tail[16], *t = put_str(tail, sig == 0x4244 ? " (HFS" : " (MFS");
    if (size) t = put_str(put_str(t, ", "), size);
    put_str(t, ")")[0] = 0;
    u8 len = mdb[0x24] > 27 ? 27 : mdb[0x24];
    s16 room = COL_W - 8 - text_width(label, 0) - text_width(tail, 0);
    for (u8 i = 0; i < len; i++) {
        char c = mdb[0x25 + i] ? (char)mdb[0x25 + i] : '?';
        if (char_width(c, 0) > room - (i + 1 < len ? text_width("...", 0) : 0)) {
            p = put_str(p, "...");
            break;
        }
        room -= char_width(c, 0);
        *p++ = c;
    }
    put_str(p, tail)[0] = 0;
}

static void error_line(char *out, const char *label, s16 err)
{
    char *p = put_str(out, label);
    p = put_num(put_str(p, "error "), err);
    *p = 0;
}

static u8 same(const char *a, const char *b)
{
    while (*a && *a == *b) a++, b++;
    return *a == *b;
}

static void copy(char *d, const char *s)
{
    while ((*d++ = *s++)) {
    }
}

static void redraw_if_changed(void)
{
    u8 n = 0, changed = 0;
    for (u8 s = 0; s < N_SLOTS && n < COLS * ROWS; s++) {
        if (!present[s]) continue;
        if (n >= n_drawn || !same(drawn[n], text[s])) changed = 1;
        copy(drawn[n++], text[s]);
    }
    if (n != n_drawn) changed = 1;
    n_drawn = n;
    if (!changed) return;
    shield_cursor(STRIP_X, STRIP_Y, STRIP_W + 1, STRIP_H + 1);
    if (n == 0) {
        fill_rect(STRIP_X, STRIP_Y, STRIP_W + 1, STRIP_H + 1, pat_gray, OP_COPY);
    } else {
        fill_rect(STRIP_X, STRIP_Y, STRIP_W, STRIP_H, pat_white, OP_COPY);
        frame_rect(STRIP_X, STRIP_Y, STRIP_W, STRIP_H);
        fill_rect(STRIP_X + 1, STRIP_Y + STRIP_H, STRIP_W, 1, pat_black, OP_COPY); /* shadow */
        fill_rect(STRIP_X + STRIP_W, STRIP_Y + 1, 1, STRIP_H, pat_black, OP_COPY);
        for (u8 i = 0; i < n; i++)
            draw_text((s16)(STRIP_X + 6 + (i / ROWS) * COL_W), (s16)(STRIP_Y + 3 + (i % ROWS) * LINE_H),
                      drawn[i], 0, OP_OR);
    }
    show_cursor();
}

void disk_poll(void)
{
    static const char *const floppy_label[2] = {"Floppy 1: ", "Floppy 2: "};
    for (u8 d = 0; d < 2; d++) {
        /* A disk read once is not read again until it changes; a failed read is tried at
         * three polls, then its error stays up. */
        u8 reread = !floppy_ok[d] && floppy_tries[d] < 3;
        u8 format = 0;
        s16 r = floppy_probe(d, reread, block, &format);
        if (r == FLOPPY_NONE) {
            present[d] = 0;
            floppy_ok[d] = 0;
            floppy_tries[d] = 0;
            continue;
        }
        if (r == FLOPPY_SAME) continue;
        present[d] = 1;
        floppy_tries[d]++;
        floppy_ok[d] = r == 0;
        if (r)
            error_line(text[d], floppy_label[d], r);
        else
            describe(text[d], floppy_label[d], block + 12, (format & 0x20) ? "800K" : "400K");
    }
    for (u8 id = 0; id < 7; id++) {
        char label[10], *p = put_str(label, "SCSI ");
        *p++ = (char)('0' + id);
        put_str(p, ": ")[0] = 0;
        s16 r = scsi_probe(id, block);
        if (r != 0 && r != SCSI_NONE) r = scsi_probe(id, block); /* one retry, as a driver would */
        u8 s = (u8)(2 + id);
        present[s] = r != SCSI_NONE;
        if (r == SCSI_NO_HFS)
            copy(put_str(text[s], label), "no HFS partition");
        else if (r >= 0x100) /* a status other than GOOD */
            put_num(put_str(put_str(text[s], label), "status "), (s16)(r & 0xFF))[0] = 0;
        else if (r)
            error_line(text[s], label, r);
        else
            describe(text[s], label, block, 0);
    }
    redraw_if_changed();
}
