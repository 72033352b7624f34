//! The Mac Plus board with the real CPU, driven by tiny ROM images assembled by hand here.
//!
//! Independent truth: instruction encodings from the M68000 Programmer's Reference Manual, the
//! memory map and VIA wiring from the Guide to the Macintosh Family Hardware, the timing from
//! the Plus's 7.8336 MHz clock, 352 clocks a line and 370 lines a frame.

use macemu_core::cpu::RunState;
use macemu_core::mac::MacPlus;

const MIB: usize = 1 << 20;
const CYCLES_PER_FRAME: u64 = 352 * 370;

// VIA registers: 0xEFE1FE + n * 0x200.
const VIA_DDRA: u32 = 0xEFE7FE;
const VIA_T1CL: u32 = 0xEFE9FE;
const VIA_T1CH: u32 = 0xEFEBFE;
const VIA_SR: u32 = 0xEFF5FE;
const VIA_ACR: u32 = 0xEFF7FE;
const VIA_ORB: u32 = 0xEFE1FE;
// SCC: channel A control, read and write addresses.
const SCC_A_CTL_RD: u32 = 0x9FFFFA;
const SCC_A_CTL_WR: u32 = 0xBFFFFB;
const VIA_IFR: u32 = 0xEFFBFE;
const VIA_IER: u32 = 0xEFFDFE;
const VIA_ORA: u32 = 0xEFFFFE;

/// A tiny assembler for the handful of instructions the tests need.
#[derive(Default)]
struct Asm {
    words: Vec<u16>,
}

impl Asm {
    fn pc(&self) -> u32 {
        0x400000 + 2 * self.words.len() as u32
    }
    fn w(&mut self, ws: &[u16]) -> &mut Self {
        self.words.extend_from_slice(ws);
        self
    }
    fn long(&mut self, v: u32) -> &mut Self {
        self.w(&[(v >> 16) as u16, v as u16])
    }
    /// MOVE.B #imm,(abs).L
    fn move_b_imm_abs(&mut self, imm: u8, addr: u32) -> &mut Self {
        self.w(&[0x13FC, u16::from(imm)]).long(addr)
    }
    /// MOVE.L #imm,(abs).L
    fn move_l_imm_abs(&mut self, imm: u32, addr: u32) -> &mut Self {
        self.w(&[0x23FC]).long(imm).long(addr)
    }
    /// MOVEA.L #imm,A7
    fn movea_sp(&mut self, imm: u32) -> &mut Self {
        self.w(&[0x2E7C]).long(imm)
    }
    /// MOVE.W #imm,SR
    fn move_sr(&mut self, imm: u16) -> &mut Self {
        self.w(&[0x46FC, imm])
    }
    /// ADDQ.L #1,(abs).L
    fn addq1_abs(&mut self, addr: u32) -> &mut Self {
        self.w(&[0x52B9]).long(addr)
    }
    /// STOP #imm
    fn stop(&mut self, sr: u16) -> &mut Self {
        self.w(&[0x4E72, sr])
    }
    /// BRA.S to `target`
    fn bra(&mut self, target: u32) -> &mut Self {
        let disp = target as i64 - (self.pc() as i64 + 2);
        self.w(&[0x6000 | (disp as i8 as u8 as u16)])
    }
    /// BTST #bit,(abs).L
    fn btst_abs(&mut self, bit: u16, addr: u32) -> &mut Self {
        self.w(&[0x0839, bit]).long(addr)
    }
    /// BEQ.S to `target`
    fn beq(&mut self, target: u32) -> &mut Self {
        let disp = target as i64 - (self.pc() as i64 + 2);
        self.w(&[0x6700 | (disp as i8 as u8 as u16)])
    }
    /// MOVE.B (abs).L,(abs).L
    fn move_b_abs_abs(&mut self, src: u32, dst: u32) -> &mut Self {
        self.w(&[0x13F9]).long(src).long(dst)
    }
    fn rte(&mut self) -> &mut Self {
        self.w(&[0x4E73])
    }

    fn rom(&self) -> Vec<u8> {
        let mut rom = vec![0u8; 128 * 1024];
        for (i, w) in self.words.iter().enumerate() {
            rom[2 * i..2 * i + 2].copy_from_slice(&w.to_be_bytes());
        }
        rom
    }
}

/// Reset vectors, then: overlay off through VIA PA4, stack in RAM, a level-1 handler that counts
/// into RAM 0x100 and acknowledges `ack_flags` in the IFR, the VIA interrupts in `ier` enabled,
/// then `idle` forever.
fn program(ier: u8, ack_flags: u8, extra_setup: impl Fn(&mut Asm), use_stop: bool) -> Vec<u8> {
    let mut a = Asm::default();
    a.long(0x0008_0000).long(0x0040_0010); // SSP, PC
    a.w(&[0; 4]); // pad to 0x10
    assert_eq!(a.pc(), 0x400010);
    a.move_b_imm_abs(0x7F, VIA_DDRA);
    // PA6 main screen, PA4 = 0 overlay off, PA3 main sound, volume 7.
    a.move_b_imm_abs(0x4F, VIA_ORA);
    a.movea_sp(0x0008_0000);
    let handler_slot = a.words.len() + 1; // the immediate of the next instruction
    a.move_l_imm_abs(0, 0x64); // level-1 autovector, patched below
    extra_setup(&mut a);
    a.move_b_imm_abs(0x80 | ier, VIA_IER);
    a.move_sr(0x2000);
    let idle = a.pc();
    if use_stop {
        a.stop(0x2000);
    }
    a.bra(idle);
    let handler = a.pc();
    a.addq1_abs(0x100);
    a.move_b_imm_abs(ack_flags, VIA_IFR);
    a.rte();
    a.words[handler_slot] = (handler >> 16) as u16;
    a.words[handler_slot + 1] = handler as u16;
    a.rom()
}

fn counter(mac: &MacPlus) -> u32 {
    u32::from_be_bytes(mac.ram()[0x100..0x104].try_into().unwrap())
}

#[test]
fn reset_reads_vectors_through_the_overlay_then_the_rom_switches_it_off() {
    let rom = program(0x02, 0x02, |_| {}, false);
    let mut mac = MacPlus::new(&rom, 4 * MIB).unwrap();
    assert!(mac.overlay(), "overlay is on after reset");
    let r = mac.cpu().regs();
    assert_eq!(r.pc, 0x400010, "PC from the ROM seen at address 4");
    assert_eq!(r.ssp, 0x80000);
    mac.run_cycles(200);
    assert!(!mac.overlay(), "writing PA4 = 0 removes the overlay");
    // RAM is now at 0: the program stored the handler address at the level-1 vector.
    assert_ne!(&mac.ram()[0x64..0x68], &[0, 0, 0, 0]);
}

#[test]
fn vbl_interrupt_once_per_frame() {
    for use_stop in [false, true] {
        let rom = program(0x02, 0x02, |_| {}, use_stop);
        let mut mac = MacPlus::new(&rom, MIB).unwrap();
        for n in 1..=30u32 {
            let rep = mac.run_frame();
            assert_eq!(rep.frame, u64::from(n));
            // Frames end on frame boundaries, give or take the last instruction's clocks.
            let end = u64::from(n) * CYCLES_PER_FRAME;
            assert!(
                (end..end + 200).contains(&rep.total_cycles),
                "{}",
                rep.total_cycles
            );
            assert_eq!(counter(&mac), n, "one VBL per frame (stop: {use_stop})");
        }
        if use_stop {
            assert_eq!(mac.cpu().run_state(), RunState::Stopped);
        }
    }
}

#[test]
fn one_second_interrupt_counts_seconds() {
    // CA2 (flag 0x01) only.
    let rom = program(0x01, 0x01, |_| {}, true);
    let mut mac = MacPlus::new(&rom, 2 * MIB).unwrap();
    mac.set_rtc_seconds(1000);
    // 60.15 frames a second: after 302 frames (5.02 s) five seconds have passed.
    for _ in 0..302 {
        mac.run_frame();
    }
    assert_eq!(counter(&mac), 5);
    assert_eq!(mac.rtc_seconds(), 1005);
}

#[test]
fn via_timer1_free_running_interrupt_rate() {
    // T1 free-running with latch 7832: period 7834 E ticks = 78,340 CPU clocks = 100.0 Hz.
    let rom = program(
        0x40,
        0x40,
        |a| {
            a.move_b_imm_abs(0x40, VIA_ACR);
            a.move_b_imm_abs((7832 & 0xFF) as u8, VIA_T1CL);
            a.move_b_imm_abs((7832 >> 8) as u8, VIA_T1CH);
        },
        true,
    );
    let mut mac = MacPlus::new(&rom, 4 * MIB).unwrap();
    let total = 78_340 * 200 + 30_000;
    mac.run_cycles(total);
    // The timer started a few hundred clocks in; exactly 200 periods fit after it.
    assert_eq!(counter(&mac), 200);
}

#[test]
fn mouse_button_and_keyboard_reach_the_via() {
    let rom = program(0x00, 0x00, |_| {}, false);
    let mut mac = MacPlus::new(&rom, 4 * MIB).unwrap();
    mac.run_frame();
    assert!(mac.key(0x00, true));
    assert!(!mac.key(0x00, true), "a held key is not pressed again");
    assert!(mac.key(0x00, false));
    mac.mouse_button(true);
    mac.run_frame();
    // XPRAM round trip through the API.
    let mut x = [0u8; 256];
    x[0x10] = 0xA8;
    mac.set_xpram(&x);
    assert_eq!(mac.xpram()[0x10], 0xA8);
    assert!(!mac.take_xpram_changed());
}

#[test]
fn bad_sizes_are_errors() {
    let rom = program(0, 0, |_| {}, false);
    assert!(MacPlus::new(&rom, 3 * MIB).is_err());
    assert!(MacPlus::new(&rom[..1000], 4 * MIB).is_err());
    let e = MacPlus::new(&rom, 512 * 1024).err().unwrap();
    assert!(e.to_string().contains("1, 2, 2.5 or 4 MiB"));
}

#[test]
fn sound_buffer_becomes_pcm() {
    // Fill the main sound buffer (4 MiB: 0x3FFD00) with 0xFF in the high bytes, enable sound
    // (PB7 = 0 as an output), volume 7.
    let rom = program(
        0x00,
        0x00,
        |a| {
            a.move_b_imm_abs(0x80, 0xEFE5FE); // DDRB: PB7 output
            a.move_b_imm_abs(0x00, 0xEFE1FE); // ORB: PB7 = 0, sound on
            for i in 0..370u32 {
                a.move_b_imm_abs(0xFF, 0x3FFD00 + 2 * i);
            }
        },
        false,
    );
    let mut mac = MacPlus::new(&rom, 4 * MIB).unwrap();
    mac.run_frame();
    mac.run_frame();
    assert!(
        mac.audio_frame().iter().all(|&s| s == 127 * 256),
        "{:?}",
        &mac.audio_frame()[..4]
    );
}

/// Sends `cmd` to the keyboard through the VIA shift register and stores the answer at `dst`,
/// polling the SR flag as the ROM's keyboard driver does.
fn kbd_exchange(a: &mut Asm, cmd: u8, dst: u32) {
    a.move_b_imm_abs(0x1C, VIA_ACR); // shift out under external clock
    a.move_b_imm_abs(cmd, VIA_SR);
    let w1 = a.pc();
    a.btst_abs(2, VIA_IFR);
    a.beq(w1);
    a.move_b_imm_abs(0x04, VIA_IFR); // the flag of the finished shift-out
    a.move_b_imm_abs(0x0C, VIA_ACR); // shift in under external clock
    let w2 = a.pc();
    a.btst_abs(2, VIA_IFR);
    a.beq(w2);
    a.move_b_abs_abs(VIA_SR, dst); // reading SR clears the flag
}

#[test]
fn keyboard_protocol_through_the_via_shift_register() {
    let rom = program(
        0x00,
        0x00,
        |a| {
            kbd_exchange(a, 0x16, 0x200); // Model
            kbd_exchange(a, 0x36, 0x201); // Test
            kbd_exchange(a, 0x10, 0x202); // Inquiry: waits for the key pressed below
            kbd_exchange(a, 0x10, 0x203); // Inquiry: the key's release
            kbd_exchange(a, 0x10, 0x204); // Inquiry: arrow key -> keypad prefix
            kbd_exchange(a, 0x14, 0x205); // Instant: the arrow's code
            kbd_exchange(a, 0x10, 0x206); // Inquiry: nothing within 1/4 s -> Null
        },
        false,
    );
    let mut mac = MacPlus::new(&rom, 4 * MIB).unwrap();
    mac.run_frame();
    assert_eq!(mac.ram()[0x200], 0x0B, "Model: M0110A");
    assert_eq!(mac.ram()[0x201], 0x7D, "Test: ACK");
    mac.run_frame();
    assert_eq!(mac.ram()[0x202], 0, "Inquiry still waiting");
    mac.key(0x00, true);
    mac.key(0x00, false);
    mac.key(0x7E, true); // up arrow
    for _ in 0..30 {
        mac.run_frame();
    }
    assert_eq!(mac.ram()[0x202], 0x01, "A down");
    assert_eq!(mac.ram()[0x203], 0x81, "A up");
    assert_eq!(mac.ram()[0x204], 0x79, "keypad prefix");
    assert_eq!(mac.ram()[0x205], 0x1B, "up arrow = keypad 0x4D");
    assert_eq!(mac.ram()[0x206], 0x7B, "Null after the Inquiry timeout");
}

/// A ROM that enables DCD external/status interrupts on SCC channel A (WR15 bit 3, WR1 bit 0, no
/// MIE) and then loops copying RR0A to 0x300, followed by `each_pass`.
fn dcd_watcher(each_pass: impl Fn(&mut Asm)) -> Vec<u8> {
    program(
        0x00,
        0x00,
        |a| {
            for v in [9u8, 0xC0, 15, 0x08, 1, 0x01, 0, 0x10] {
                a.move_b_imm_abs(v, SCC_A_CTL_WR);
            }
            let l = a.pc();
            a.move_b_abs_abs(SCC_A_CTL_RD, 0x300);
            each_pass(a);
            a.bra(l);
        },
        false,
    )
}

#[test]
fn mouse_edges_keep_eight_lines_apart_across_frames() {
    // Keep copying RR0A to 0x300 and resetting the ext/status latch, so every DCD edge shows and
    // none waits for service.
    let rom = dcd_watcher(|a| {
        a.move_b_imm_abs(0x10, SCC_A_CTL_WR);
    });
    let mut mac = MacPlus::new(&rom, 4 * MIB).unwrap();
    mac.run_frame();
    // 150 steps at one per 8 lines: 1,200 lines, more than three frames of 370.
    mac.mouse_move_relative(150, 0);
    let dcd = |m: &MacPlus| m.ram()[0x300] & 0x08 != 0;
    let mut last = dcd(&mac);
    let mut edges = Vec::new();
    let end = mac.cycles() + 4 * CYCLES_PER_FRAME;
    while mac.cycles() < end {
        mac.step();
        if dcd(&mac) != last {
            last = dcd(&mac);
            edges.push(mac.cycles());
        }
    }
    assert_eq!(edges.len(), 150);
    // The loop sees an edge within one pass (under 100 clocks), so the gaps are 8 lines give or
    // take that; frame ends (370 lines, not a multiple of 8) change nothing.
    let slot = 8 * 352;
    for (i, w) in edges.windows(2).enumerate() {
        let gap = w[1] - w[0];
        assert!(
            gap.abs_diff(slot) < 100,
            "edges {i} and {} are {gap} clocks apart (line {} of the frame)",
            i + 1,
            w[1] % CYCLES_PER_FRAME / 352
        );
    }
}

#[test]
fn mouse_quadrature_phase_on_scc_dcd_and_via() {
    // Keep copying RR0A to 0x300 and port B to 0x301.
    let rom = dcd_watcher(|a| {
        a.move_b_abs_abs(VIA_ORB, 0x301);
    });
    let mut mac = MacPlus::new(&rom, 4 * MIB).unwrap();
    mac.run_frame();
    let x1 = |m: &MacPlus| m.ram()[0x300] & 0x08 != 0;
    let x2 = |m: &MacPlus| m.ram()[0x301] & 0x10 != 0;
    let before = x1(&mac);
    mac.mouse_move_relative(1, 0);
    mac.run_frame();
    assert_ne!(x1(&mac), before, "one edge on DCD A");
    assert_ne!(x1(&mac), x2(&mac), "moving right: X2 differs from X1");
    // The ROM here never resets the ext/status latch: the next edge waits for it about two
    // frames, then comes anyway.
    // (RR0 keeps showing the latched DCD; X2 on the VIA shows the new phase.)
    let x2_first = x2(&mac);
    mac.mouse_move_relative(1, 0);
    mac.run_frame();
    assert_eq!(
        x2(&mac),
        x2_first,
        "the second edge waits while the first is unserviced"
    );
    mac.run_frame();
    mac.run_frame();
    assert_ne!(x2(&mac), x2_first, "then it comes");
    // The other direction, on a fresh machine.
    let mut mac = MacPlus::new(&rom, 4 * MIB).unwrap();
    mac.run_frame();
    mac.mouse_move_relative(-1, 0);
    mac.run_frame();
    assert_eq!(x1(&mac), x2(&mac), "moving left: X2 equals X1");
    // Mouse button on PB3 (0 = down).
    mac.mouse_button(true);
    mac.run_frame();
    assert_eq!(mac.ram()[0x301] & 0x08, 0);
}
