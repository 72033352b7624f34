/* Input hardware: VIA interrupts (VBL on CA1, one-second on CA2, keyboard shift register),
 * the M0110 keyboard protocol, the SCC mouse quadrature interrupts and the mouse button.
 * Handlers turn what they see into events for the main loop and keep the low-memory
 * globals (Ticks, Time, MBState, KeyMap, MTemp, ...) current, as the Mac ROM does. */
#include "demo.h"

/* ---- event queue: filled at interrupt level, drained by the main loop ---- */
#define QLEN 128
static struct event queue[QLEN];
static volatile u8 q_head, q_tail;

static void post(u8 what, u8 code, u8 mods)
{
    u8 next = (u8)((q_tail + 1) & (QLEN - 1));
    if (next == q_head) return; /* full: drop, as the Mac's event queue drops its oldest */
    struct event *e = &queue[q_tail];
    e->what = what;
    e->code = code;
    e->mods = mods;
    e->pad = 0;
    e->where = PT_L(Mouse);
    q_tail = next;
}

int get_event(struct event *ev)
{
    if (q_head == q_tail) return 0;
    *ev = queue[q_head];
    q_head = (u8)((q_head + 1) & (QLEN - 1));
    return 1;
}

/* ---- keyboard: M0110 protocol over the VIA shift register ----
 * The Mac clocks nothing itself: the keyboard drives CB1. To send a command the ROM puts
 * the shift register in "shift out under external clock" and writes the byte; when the
 * keyboard has clocked in 8 bits the SR flag rises. It then switches to "shift in under
 * external clock" and the keyboard clocks back one answer byte. */
#define KBD_INQUIRY 0x10
#define KBD_INSTANT 0x14
#define KBD_MODEL 0x16
#define KBD_NULL 0x7B
#define KBD_KEYPAD 0x79

enum { KS_IDLE, KS_SENDING, KS_RECEIVING };
static volatile u8 kbd_state, kbd_cmd;
static volatile u32 kbd_since;
volatile u8 kbd_model_seen;

static u8 key_down(u8 code)
{
    return (GLOB8(KeyMapAddr + (code >> 3)) >> (code & 7)) & 1;
}

static u8 modifiers(void)
{
    return (u8)((key_down(0x38) ? MOD_SHIFT : 0) | (key_down(0x39) ? MOD_CAPS : 0) |
                (key_down(0x3A) ? MOD_OPTION : 0) | (key_down(0x37) ? MOD_CMD : 0));
}

static void kbd_send(u8 cmd)
{
    vACR = (u8)((vACR & ~acrSRMask) | acrSROutExt);
    vSR = cmd;
    kbd_cmd = cmd;
    kbd_state = KS_SENDING;
    kbd_since = Ticks;
}

/* A key transition byte: bit 7 = released, bits 6-1 = key number, bit 0 = 1. Keypad keys
 * (after the 0x79 prefix) are numbered from 0x40. */
static void kbd_transition(u8 b, u8 keypad)
{
    u8 code = (u8)((b >> 1) & 0x3F);
    if (keypad) code |= 0x40;
    volatile u8 *byte = &GLOB8(KeyMapAddr + (code >> 3));
    u8 bit = (u8)(1 << (code & 7));
    if (b & 0x80) {
        *byte &= (u8)~bit;
        post(EV_KEYUP, code, modifiers());
    } else {
        *byte |= bit;
        post(EV_KEYDOWN, code, modifiers());
    }
}

static void kbd_sr_interrupt(void)
{
    if (kbd_state == KS_SENDING) {
        /* command gone: listen for the answer. The flag is cleared (SR read) before the
         * mode changes: an answer the keyboard clocks in right after the switch (one held
         * back while interrupts were masked) then raises it again instead of being lost. */
        (void)vSR;
        vACR = (u8)((vACR & ~acrSRMask) | acrSRInExt);
        kbd_state = KS_RECEIVING;
        kbd_since = Ticks;
        return;
    }
    u8 b = vSR;
    if (kbd_state != KS_RECEIVING) return;
    if (kbd_cmd == KBD_MODEL) {
        KbdType = b;
        kbd_model_seen = 1;
        post(EV_KEYUP, 0xFF, 0); /* tells the desk to show the model */
        kbd_send(KBD_INQUIRY);
        return;
    }
    if (b == KBD_KEYPAD && kbd_cmd == KBD_INQUIRY) {
        /* keypad (or M0110A arrow) key: its code comes with the next command */
        kbd_send(KBD_INSTANT);
        return;
    }
    if (b != KBD_NULL) kbd_transition(b, kbd_cmd == KBD_INSTANT);
    kbd_send(KBD_INQUIRY);
}

/* ---- mouse button and the periodic tasks, at every vertical blanking ---- */
static void vbl_task(void)
{
    Ticks = Ticks + 1;
    cursor_task();
    u8 up = (vBufB & vSW) ? 0x80 : 0x00;
    if (up != MBState) {
        MBState = up;
        MBTicks = Ticks;
        post(up ? EV_MOUSEUP : EV_MOUSEDOWN, 0, modifiers());
    }
    sound_vbl();
    /* No answer for 2 s (a keyboard answers an Inquiry within 0.25 s): start over. */
    if (kbd_state != KS_IDLE && Ticks - kbd_since > 120) kbd_send(KBD_MODEL);
}

void via_interrupt(void)
{
    u8 f = (u8)(vIFR & vIER & 0x7F);
    if (f & ifSR) kbd_sr_interrupt(); /* SR access clears its flag */
    if (f & ifCA1) {
        vIFR = ifCA1;
        vbl_task();
    }
    if (f & ifCA2) {
        vIFR = ifCA2;
        Time = Time + 1;
        post(EV_SECOND, 0, 0);
    }
    if (f & (ifT1 | ifT2 | ifCB1 | ifCB2)) vIFR = (u8)(f & (ifT1 | ifT2 | ifCB1 | ifCB2));
}

/* ---- mouse: X1 -> DCD of channel A, Y1 -> DCD of channel B; X2/Y2 on VIA port B ---- */
static inline u8 scc_read(u8 ctl, u8 reg)
{
    volatile u8 *w = (volatile u8 *)(SCC_WR + ctl);
    volatile u8 *r = (volatile u8 *)(SCC_RD + ctl);
    if (reg) *w = reg;
    return *r;
}

static inline void scc_write(u8 ctl, u8 reg, u8 val)
{
    volatile u8 *w = (volatile u8 *)(SCC_WR + ctl);
    if (reg) *w = reg;
    *w = val;
}

/* One ext/status interrupt of a channel: a DCD edge is one mouse step. After the edge, X2
 * differs from the DCD level (RR0 bit 3) when the mouse moved right and equals it when it
 * moved left; Y2 equals it when the mouse moved down and differs when it moved up. */
static void mouse_ext(u8 ctl)
{
    u8 rr0 = scc_read(ctl, 0);
    volatile u8 *last = ctl == SCC_A_CTL ? &SCCASts : &SCCBSts;
    u8 changed = (u8)(rr0 ^ *last);
    *last = rr0;
    scc_write(ctl, 0, 0x10); /* reset ext/status interrupts: unlatch RR0 */
    if (!(changed & rr0DCD)) return;
    u8 dcd = (rr0 & rr0DCD) ? 1 : 0;
    u8 pb = vBufB;
    if (ctl == SCC_A_CTL) {
        u8 x2 = (pb & vX2) ? 1 : 0;
        PT_H(MTemp) += dcd == x2 ? -1 : 1;
    } else {
        u8 y2 = (pb & vY2) ? 1 : 0;
        PT_V(MTemp) += dcd == y2 ? 1 : -1;
    }
    CrsrNew = CrsrCouple;
}

void scc_interrupt(void)
{
    for (int i = 0; i < 4; i++) {
        /* RR2 read through channel B: the interrupt vector modified by status (bits 3-1) */
        u8 v = (u8)(scc_read(SCC_B_CTL, 2) & 0x0E);
        if (v == 0x0A) mouse_ext(SCC_A_CTL);
        else if (v == 0x02) mouse_ext(SCC_B_CTL);
        else break;
    }
    /* Anything the vector did not name (e.g. two edges in a row): compare both channels. */
    mouse_ext(SCC_A_CTL);
    mouse_ext(SCC_B_CTL);
}

static void scc_init(void)
{
    (void)REG8(SCC_RD + SCC_B_CTL); /* a control read resets the register pointer */
    (void)REG8(SCC_RD + SCC_A_CTL);
    scc_write(SCC_A_CTL, 9, 0xC0); /* hardware reset of both channels */
    static const u8 ch_init[] = {
        4, 0x4C,  /* x16 clock, 2 stop bits, no parity (serial ports stay idle) */
        11, 0x50, /* clocks from the baud-rate generator */
        15, 0x08, /* ext/status interrupts on DCD only */
        0, 0x10,  /* reset ext/status twice (the first may be latched) */
        0, 0x10,
        1, 0x01,  /* ext/status interrupt enable */
    };
    for (u8 ch = 0; ch < 2; ch++) {
        u8 ctl = ch ? SCC_A_CTL : SCC_B_CTL;
        for (u8 i = 0; i < sizeof ch_init; i += 2) scc_write(ctl, ch_init[i], ch_init[i + 1]);
    }
    SCCASts = scc_read(SCC_A_CTL, 0);
    SCCBSts = scc_read(SCC_B_CTL, 0);
    scc_write(SCC_A_CTL, 9, 0x0A); /* master interrupt enable, no vector on acknowledge */
}

void input_init(void)
{
    VIAGlob = VIA_BASE;
    SCCRdGlob = SCC_RD;
    SCCWrGlob = SCC_WR;
    for (u8 i = 0; i < 16; i++) GLOB8(KeyMapAddr + i) = 0;
    KbdType = 0; /* until the keyboard answers Model */
    MBState = (vBufB & vSW) ? 0x80 : 0x00;
    q_head = q_tail = 0;
    scc_init();
    vPCR = 0x00;  /* CA1 (VBL), CA2 (one-second), CB1/CB2 (keyboard): negative edges */
    vACR = 0x00;  /* timers one-shot, no latching, shift register off */
    vIFR = 0x7F;
    vIER = (u8)(ifIRQ | ifCA1 | ifCA2 | ifSR);
    kbd_model_seen = 0;
    kbd_send(KBD_MODEL); /* Model also resets the keyboard */
}
