/* Shared declarations of the demo ROM's modules. */
#ifndef DEMO_H
#define DEMO_H
#include "mac.h"

/* ---- gfx.c: 1-bit drawing on the 512x342 screen ---- */
extern u8 *screen;
enum { OP_COPY, OP_XOR, OP_OR, OP_BIC };
extern const u8 pat_gray[8], pat_black[8], pat_white[8];
void fill_rect(s16 x, s16 y, s16 w, s16 h, const u8 *pat, u8 op);
void frame_rect(s16 x, s16 y, s16 w, s16 h);
void round_rect(s16 x, s16 y, s16 w, s16 h, u8 fill_white);
s16 text_width(const char *s, u8 bold);
s16 char_width(char c, u8 bold);
s16 draw_char(s16 x, s16 y, char c, u8 bold, u8 op);
s16 draw_text(s16 x, s16 y, const char *s, u8 bold, u8 op);
#define FONT_ROWS 9
#define LINE_H 11

/* ---- cursor.c: arrow cursor with save-under, moved by the VBL cursor task ---- */
void cursor_init(void);
void cursor_task(void);   /* VBL: MTemp -> RawMouse -> Mouse, redraw */
void hide_cursor(void);   /* nestable, like QuickDraw's HideCursor/ShowCursor */
void shield_cursor(s16 x, s16 y, s16 w, s16 h);
void show_cursor(void);

/* ---- input.c: VIA interrupts, keyboard protocol, SCC mouse, event queue ---- */
enum { EV_NONE, EV_KEYDOWN, EV_KEYUP, EV_MOUSEDOWN, EV_MOUSEUP, EV_SECOND };
#define MOD_SHIFT 1
#define MOD_CAPS 2
#define MOD_OPTION 4
#define MOD_CMD 8
struct event {
    u8 what;
    u8 code;      /* key code */
    u8 mods;      /* MOD_* at the time of the event */
    u8 pad;
    u32 where;    /* Mouse (v << 16 | h) at the time of the event */
};
void input_init(void);
int get_event(struct event *ev);
extern volatile u8 kbd_model_seen;

/* ---- rtc.c: RTC serial protocol over VIA port B ---- */
u32 rtc_read_seconds(void);

/* ---- sound.c: tone into the sound buffer ---- */
void sound_init(void);
void sound_start_tone(void);
void sound_vbl(void);
extern volatile u8 tone_playing;

/* ---- iwm.c: floppy drives through the IWM ---- */
#define FLOPPY_NONE 1 /* no drive, or no disk in it */
#define FLOPPY_SAME 2 /* the disk read before is still in place */
void iwm_init(void);
s16 floppy_probe(u8 drive, u8 reread, u8 *block2, u8 *format);

/* ---- scsi.c: SCSI disks through the NCR 5380 ---- */
#define SCSI_NONE 2     /* scCommErr: no target answered selection */
#define SCSI_NO_HFS 0x7F /* partitioned, but no Apple_HFS partition */
s16 scsi_probe(u8 id, u8 *block2);

/* ---- disk.c: the disk list ---- */
void disk_poll(void);

/* ---- desk.c ---- */
void system_error(u32 vector, u32 pc);
#endif
