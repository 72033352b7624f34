/* The demo desk: menu bar with a clock, a window with text, an echo area for typed keys,
 * a status line and a button that plays a tone. Everything is drawn by the main loop;
 * the cursor is moved by the VBL task. All state starts from fixed values, so the same
 * inputs at the same emulated times give the same frames. */
#include "demo.h"

#define MENU_H 20
#define WIN_X 56
#define WIN_Y 52
#define WIN_W 400
#define WIN_H 248
#define TB_X (WIN_X + 10)            /* echo area */
#define TB_Y (WIN_Y + 58)
#define TB_W (WIN_W - 20)
#define TB_LINES 8
#define TB_H (TB_LINES * LINE_H + 8)
#define STATUS_Y (TB_Y + TB_H + 10)
#define BTN_W 64
#define BTN_H 22
#define BTN_X (WIN_X + WIN_W - BTN_W - 16)
#define BTN_Y (WIN_Y + WIN_H - BTN_H - 14)
#define CLOCK_X 440

static const char *const menus[] = {"macemu", "File", "Edit", "Sound"};
#define N_MENUS 4
static s16 menu_x[N_MENUS + 1];

#define LINE_MAX 80
static char lines[TB_LINES][LINE_MAX];
static u8 line_len[TB_LINES];
static u8 cur_line;
static s16 caret_x;
static u8 caret_on;
static u8 btn_down;
static s8 menu_down;
static u8 last_key, key_seen;
static u32 shown_mouse;
static u8 seconds, disk_due;

/* ---- number formatting (no library) ---- */
static char *put_hex(char *p, u32 v, u8 digits)
{
    for (s8 i = (s8)(digits - 1); i >= 0; i--) {
        u8 d = (u8)((v >> (4 * i)) & 15);
        *p++ = (char)(d < 10 ? '0' + d : 'A' + d - 10);
    }
    return p;
}

static char *put_dec(char *p, u32 v)
{
    char tmp[10];
    u8 n = 0;
    do {
        u16 r;
        v = udivmod16(v, 10, &r);
        tmp[n++] = (char)('0' + r);
    } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

static char *put2(char *p, u16 v)
{
    u16 ones;
    u32 tens = udivmod16(v, 10, &ones);
    *p++ = (char)('0' + tens);
    *p++ = (char)('0' + ones);
    return p;
}

static char *put_str(char *p, const char *s)
{
    while (*s) *p++ = *s++;
    return p;
}

/* ---- menu bar and clock ---- */
static void draw_clock(void)
{
    char buf[12], *p = buf;
    u16 sec, min, hour;
    u32 t = udivmod16(Time, 60, &sec);
    t = udivmod16(t, 60, &min);
    (void)udivmod16(t, 24, &hour);
    p = put2(p, hour);
    *p++ = ':';
    p = put2(p, min);
    *p++ = ':';
    p = put2(p, sec);
    *p = 0;
    fill_rect(CLOCK_X, 2, SCREEN_W - CLOCK_X - 6, MENU_H - 4, pat_white, OP_COPY);
    draw_text(CLOCK_X + 8, 6, buf, 1, OP_OR);
}

static void draw_menu_bar(void)
{
    fill_rect(0, 0, SCREEN_W, MENU_H - 1, pat_white, OP_COPY);
    fill_rect(0, MENU_H - 1, SCREEN_W, 1, pat_black, OP_COPY);
    s16 x = 10;
    for (u8 i = 0; i < N_MENUS; i++) {
        menu_x[i] = x;
        x = draw_text(x + 8, 6, menus[i], 1, OP_OR) + 8;
    }
    menu_x[N_MENUS] = x;
    draw_clock();
}

/* The screen's rounded corners, as on the Macintosh. */
static void draw_corners(void)
{
    static const u8 run[5] = {5, 3, 2, 1, 1};
    for (s16 r = 0; r < 5; r++) {
        fill_rect(0, r, run[r], 1, pat_black, OP_COPY);
        fill_rect(SCREEN_W - run[r], r, run[r], 1, pat_black, OP_COPY);
        fill_rect(0, SCREEN_H - 1 - r, run[r], 1, pat_black, OP_COPY);
        fill_rect(SCREEN_W - run[r], SCREEN_H - 1 - r, run[r], 1, pat_black, OP_COPY);
    }
}

/* ---- window ---- */
static void draw_window(void)
{
    static const char title[] = "macemu demo";
    fill_rect(WIN_X, WIN_Y, WIN_W, WIN_H, pat_white, OP_COPY);
    frame_rect(WIN_X, WIN_Y, WIN_W, WIN_H);
    fill_rect(WIN_X + 2, WIN_Y + WIN_H, WIN_W - 1, 1, pat_black, OP_COPY); /* drop shadow */
    fill_rect(WIN_X + WIN_W, WIN_Y + 2, 1, WIN_H - 1, pat_black, OP_COPY);
    for (s16 y = WIN_Y + 4; y <= WIN_Y + 14; y += 2)
        fill_rect(WIN_X + 2, y, WIN_W - 4, 1, pat_black, OP_COPY);
    fill_rect(WIN_X, WIN_Y + 18, WIN_W, 1, pat_black, OP_COPY);
    /* close box */
    fill_rect(WIN_X + 8, WIN_Y + 3, 13, 13, pat_white, OP_COPY);
    frame_rect(WIN_X + 9, WIN_Y + 4, 11, 11);
    /* title */
    s16 tw = text_width(title, 1);
    s16 tx = WIN_X + (WIN_W - tw) / 2;
    fill_rect(tx - 6, WIN_Y + 2, tw + 12, 15, pat_white, OP_COPY);
    draw_text(tx, WIN_Y + 5, title, 1, OP_OR);

    draw_text(WIN_X + 10, WIN_Y + 26, "This ROM drives the Mac Plus VIA, SCC, RTC, keyboard", 0, OP_OR);
    draw_text(WIN_X + 10, WIN_Y + 37, "and sound buffer. Type: keys echo below. Click Beep", 0, OP_OR);
    draw_text(WIN_X + 10, WIN_Y + 48, "for a 601 Hz tone.", 0, OP_OR);
    frame_rect(TB_X, TB_Y, TB_W, TB_H);
    round_rect(BTN_X, BTN_Y, BTN_W, BTN_H, 1);
    draw_text(BTN_X + (BTN_W - text_width("Beep", 1)) / 2, BTN_Y + 7, "Beep", 1, OP_OR);
}

static void invert_button(void)
{
    for (s16 r = 1; r < BTN_H - 1; r++) {
        s16 e = r < BTN_H - 1 - r ? r : BTN_H - 1 - r;
        s16 a = e == 1 ? 3 : (e == 2 ? 2 : 1);
        fill_rect(BTN_X + a, BTN_Y + r, BTN_W - 2 * a, 1, pat_black, OP_XOR);
    }
}

static void invert_menu(s8 i)
{
    fill_rect(menu_x[i], 0, menu_x[i + 1] - menu_x[i], MENU_H - 1, pat_black, OP_XOR);
}

/* ---- status line: mouse, last key, keyboard model, RAM; each field redrawn alone ---- */
enum { ST_MOUSE, ST_KEY, ST_KBD, ST_RAM };
static const s16 field_x[4] = {TB_X, TB_X + 110, TB_X + 180, TB_X + 280};
static const s16 field_w[4] = {110, 70, 100, 100};

static void draw_field(u8 f)
{
    char buf[24], *p = buf;
    switch (f) {
    case ST_MOUSE:
        shown_mouse = PT_L(Mouse);
        p = put_str(p, "Mouse ");
        p = put_dec(p, (u16)(shown_mouse & 0xFFFF));
        *p++ = ',';
        p = put_dec(p, (u16)(shown_mouse >> 16));
        break;
    case ST_KEY:
        if (key_seen) {
            p = put_str(p, "Key $");
            p = put_hex(p, last_key, 2);
        } else {
            p = put_str(p, "Key --");
        }
        break;
    case ST_KBD:
        p = put_str(p, "Keyboard $");
        p = put_hex(p, KbdType, 2);
        break;
    default:
        p = put_str(p, "RAM ");
        p = put_dec(p, MemTop >> 10);
        p = put_str(p, "K");
        break;
    }
    *p = 0;
    shield_cursor(field_x[f], STATUS_Y, field_w[f], LINE_H);
    fill_rect(field_x[f], STATUS_Y, field_w[f], LINE_H, pat_white, OP_COPY);
    draw_text(field_x[f], STATUS_Y + 1, buf, 0, OP_OR);
    show_cursor();
}

/* ---- echo area: typing draws one glyph; only scrolling redraws lines ---- */
static s16 line_y(u8 l)
{
    return (s16)(TB_Y + 4 + l * LINE_H);
}

static s16 line_width(u8 l)
{
    s16 w = 0;
    for (u8 i = 0; i < line_len[l]; i++) w += char_width(lines[l][i], 0);
    return w;
}

static void toggle_caret(void)
{
    fill_rect(caret_x, line_y(cur_line) - 1, 1, LINE_H, pat_black, OP_XOR);
    caret_on ^= 1;
}

static void redraw_line(u8 l)
{
    fill_rect(TB_X + 1, line_y(l) - 1, TB_W - 2, LINE_H, pat_white, OP_COPY);
    s16 x = TB_X + 4;
    for (u8 i = 0; i < line_len[l]; i++) x += draw_char(x, line_y(l), lines[l][i], 0, OP_OR);
}

static void new_line(void)
{
    if (cur_line + 1 < TB_LINES) {
        cur_line++;
        line_len[cur_line] = 0;
    } else {
        for (u8 l = 0; l + 1 < TB_LINES; l++) {
            line_len[l] = line_len[l + 1];
            for (u8 i = 0; i < line_len[l]; i++) lines[l][i] = lines[l + 1][i];
        }
        line_len[cur_line] = 0;
        for (u8 l = 0; l < TB_LINES; l++) redraw_line(l);
    }
    caret_x = TB_X + 4;
}

static void type_char(char c)
{
    shield_cursor(TB_X, TB_Y, TB_W, TB_H);
    if (caret_on) toggle_caret();
    if (c == '\r') {
        new_line();
    } else if (c == '\b') {
        if (line_len[cur_line]) {
            char last = lines[cur_line][--line_len[cur_line]];
            caret_x -= char_width(last, 0);
            fill_rect(caret_x, line_y(cur_line) - 1, char_width(last, 0), LINE_H, pat_white, OP_COPY);
        } else if (cur_line) {
            cur_line--;
            caret_x = TB_X + 4 + line_width(cur_line);
        }
    } else {
        if (caret_x + char_width(c, 0) > TB_X + TB_W - 4 || line_len[cur_line] == LINE_MAX) new_line();
        lines[cur_line][line_len[cur_line]++] = c;
        caret_x += draw_char(caret_x, line_y(cur_line), c, 0, OP_OR);
    }
    toggle_caret();
    show_cursor();
}

/* ---- key codes to characters (US layout of the M0110 / M0110A) ---- */
static const char key_plain[0x33] =
    "asdfhgzxcv\0bqweryt123465=97-80]ou[ip\rlj'k;\\,/nm.\t `";
static const char key_shift[0x33] =
    "ASDFHGZXCV\0BQWERYT!@#$^%+(&_*)}OU{IP\rLJ\"K:|<?NM>\t ~";

static char key_to_char(u8 code, u8 mods)
{
    if (code < 0x33) {
        char c = (mods & MOD_SHIFT) ? key_shift[code] : key_plain[code];
        if ((mods & MOD_CAPS) && c >= 'a' && c <= 'z') c = (char)(c - 'a' + 'A');
        return c == '\t' ? ' ' : c;
    }
    switch (code) {
    case 0x33: return '\b';                 /* Backspace (Delete) */
    case 0x34: case 0x4C: return '\r';      /* Enter */
    case 0x41: return '.';
    case 0x43: return '*';
    case 0x45: return '+';
    case 0x4B: return '/';
    case 0x4E: return '-';
    case 0x51: return '=';
    case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57: case 0x58: case 0x59:
        return (char)('0' + code - 0x52);
    case 0x5B: return '8';
    case 0x5C: return '9';
    default: return 0;
    }
}

static u8 in_rect(u32 where, s16 x, s16 y, s16 w, s16 h)
{
    s16 v = (s16)(where >> 16), hh = (s16)(where & 0xFFFF);
    return hh >= x && hh < x + w && v >= y && v < y + h;
}

static void handle(const struct event *ev)
{
    switch (ev->what) {
    case EV_KEYDOWN: {
        KeyTime = Ticks;
        char c = key_to_char(ev->code, ev->mods);
        if (c) {
            KeyLast = (u8)c;
            type_char(c);
        }
        if (ev->code != last_key || !key_seen) {
            last_key = ev->code;
            key_seen = 1;
            draw_field(ST_KEY);
        }
        break;
    }
    case EV_KEYUP:
        if (ev->code == 0xFF) draw_field(ST_KBD); /* the keyboard answered Model */
        break;
    case EV_MOUSEDOWN:
        if (in_rect(ev->where, BTN_X, BTN_Y, BTN_W, BTN_H)) {
            shield_cursor(BTN_X, BTN_Y, BTN_W, BTN_H);
            invert_button();
            show_cursor();
            btn_down = 1;
            sound_start_tone();
        } else if ((s16)(ev->where >> 16) < MENU_H) {
            for (s8 i = 0; i < N_MENUS; i++)
                if (in_rect(ev->where, menu_x[i], 0, menu_x[i + 1] - menu_x[i], MENU_H)) {
                    shield_cursor(0, 0, SCREEN_W, MENU_H);
                    invert_menu(i);
                    show_cursor();
                    menu_down = i;
                }
        }
        break;
    case EV_MOUSEUP:
        shield_cursor(0, 0, SCREEN_W, SCREEN_H);
        if (btn_down) invert_button();
        btn_down = 0;
        if (menu_down >= 0) invert_menu(menu_down);
        menu_down = -1;
        show_cursor();
        break;
    case EV_SECOND:
        Time = rtc_read_seconds();
        shield_cursor(CLOCK_X, 0, SCREEN_W - CLOCK_X, MENU_H);
        draw_clock();
        show_cursor();
        if (++seconds % 2 == 0) disk_due = 1;
        break;
    }
}

void demo_main(void)
{
    screen = (u8 *)(MemTop - SCREEN_OFFSET);
    ScrnBase = (u32)screen;
    ScreenRow = ROW_BYTES;
    ROMBase = 0x400000;
    Ticks = 0;
    sound_init();
    cursor_init(); /* hidden until the desk is drawn */
    menu_down = -1;
    caret_x = TB_X + 4;

    fill_rect(0, 0, SCREEN_W, SCREEN_H, pat_gray, OP_COPY);
    Time = rtc_read_seconds();
    draw_menu_bar();
    draw_window();
    draw_corners();
    toggle_caret();
    input_init();
    for (u8 f = ST_MOUSE; f <= ST_RAM; f++) draw_field(f);
    show_cursor();
    iwm_init();
    irq_restore(0x2000);
    disk_poll(); /* with interrupts on: its waits count Ticks */

    for (;;) {
        struct event ev;
        irq_mask(7);
        if (!get_event(&ev)) {
            /* nothing to do: sleep until the next interrupt (STOP sets SR atomically) */
            __asm__ volatile("stop #0x2000" ::: "memory");
            if (PT_L(Mouse) != shown_mouse) draw_field(ST_MOUSE);
            continue;
        }
        irq_restore(0x2000);
        handle(&ev);
        if (disk_due) {
            disk_due = 0;
            disk_poll();
        }
    }
}

/* Any unexpected exception ends here: say which, then the start-up code halts. */
void system_error(u32 vector, u32 pc)
{
    char buf[48], *p = buf;
    CrsrState = -1;
    p = put_str(p, "System error: vector ");
    p = put_dec(p, vector);
    p = put_str(p, " at $");
    p = put_hex(p, pc, 6);
    *p = 0;
    s16 w = text_width(buf, 0) + 24;
    s16 x = (SCREEN_W - w) / 2;
    fill_rect(x, 150, w, 32, pat_white, OP_COPY);
    frame_rect(x, 150, w, 32);
    frame_rect(x + 2, 152, w - 4, 28);
    draw_text(x + 12, 162, buf, 0, OP_OR);
}
