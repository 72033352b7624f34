//! The Macintosh Plus board: memory map, device wiring, interrupts and the run loop.
//!
//! # Driving a machine
//!
//! ```no_run
//! use macemu_core::mac::MacPlus;
//! # let rom = vec![0u8; 128 * 1024];
//! let mut mac = MacPlus::new(&rom, 4 << 20).expect("ROM and RAM size");
//! mac.set_rtc_seconds(3_800_000_000);       // the driver converts its clock to Mac seconds
//! // mac.set_xpram(&saved);                 // restore parameter RAM from the driver's file
//! loop {
//!     // input from the driver's event queue, between frames:
//!     mac.key(0x00, true);                  // Mac virtual key code, down
//!     mac.mouse_move_relative(3, -1);       // quadrature through the SCC, like a real mouse
//!     mac.mouse_button(true);
//!     let report = mac.run_frame();         // one video frame: 130,240 CPU clocks, 1/60.15 s
//!     let screen: &[u8] = mac.screen();     // 512 x 342, 1 bpp, 64 bytes a row, 1 = black
//!     let audio: &[i16; 370] = mac.audio_frame(); // 22,254.5 Hz mono PCM of that frame
//!     # let _ = (report, screen, audio);
//!     if mac.take_xpram_changed() { /* save mac.xpram() */ }
//!     # break;
//! }
//! ```
//!
//! The core never reads the wall clock and never sleeps: the driver paces `run_frame` (60.15
//! times a second for real time, or back to back for maximum speed) and owns every thread.
//! Everything inside is deterministic: the same ROM, inputs and frame count give the same
//! screen.
//!
//! # Timing
//!
//! Time is CPU clocks since power-on. The CPU runs instruction by instruction; between
//! instructions the board handles its events at their exact cycle: every scan-line boundary
//! (352 clocks: sound DMA fetch, VBL edges, one-second edges, keyboard and mouse) and the next VIA
//! timer expiry. The VIA is advanced lazily in E-clock ticks (clock / 10) and brought up to date
//! before every register access, so timer reads and interrupt times are exact to the instruction.
//!
//! RAM is shared with the video circuitry (see [`super::video`]): a CPU cycle on RAM that starts
//! while the circuitry has the RAM waits for the CPU's slot. The core reports when each bus cycle
//! starts within its instruction (`Bus::cycle_start`) and adds the board's waits to the
//! instruction's clocks (`Bus::take_wait_cycles`), so the 68000's own timing stays untouched and
//! loop-timed software runs at the real machine's pace.

use crate::bus::{Bus, BusError, FunctionCode, InterruptAck};
use crate::cpu::{disassemble, Cpu, CpuModel, Instruction, RunState};
use crate::floppy::FloppyImage;
use crate::storage::{DiskError, DriveSlot, MediaInfo};

use super::iwm::Iwm;
use super::keyboard::{self, Keyboard};
use super::macos::AbsoluteMouse;
use super::rtc::{Rtc, XPRAM_SIZE};
use super::scc::{Channel, Scc};
use super::scsi::Scsi;
use super::sound::{self, SoundDma, SAMPLES_PER_FRAME};
use super::via::{self, Via};
use super::video::{self, Beam, CYCLES_PER_FRAME, CYCLES_PER_LINE};
use super::{CPU_HZ, E_CLOCK_DIVIDER};
use crate::scsi::ScsiDisk;

use std::fmt;

/// Why a machine cannot be built.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MachineError {
    /// RAM must be 1, 2, 2.5 or 4 MiB (the Plus's SIMM configurations).
    RamSize { bytes: usize },
    /// The ROM image must be a power of two from 4 KiB to 128 KiB (it is mirrored).
    RomSize { bytes: usize },
}

impl fmt::Display for MachineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MachineError::RamSize { bytes } => {
                write!(
                    f,
                    "RAM size {bytes} bytes: a Mac Plus takes 1, 2, 2.5 or 4 MiB"
                )
            }
            MachineError::RomSize { bytes } => write!(
                f,
                "ROM image of {bytes} bytes: expected a power of two up to 128 KiB"
            ),
        }
    }
}

impl std::error::Error for MachineError {}

/// Mouse buttons the Plus knows: one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MouseButton {
    Up,
    Down,
}

/// What happened during one [`MacPlus::run_frame`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameReport {
    /// Frames completed since power-on (this one included).
    pub frame: u64,
    /// CPU clocks this call ran (one frame, 130,240, give or take the last instruction).
    pub cycles: u64,
    /// CPU clocks since power-on.
    pub total_cycles: u64,
    /// The CPU's state at the end of the frame.
    pub cpu: RunState,
    /// The screen buffer the video circuitry showed (true = main, VIA PA6).
    pub main_screen: bool,
}

/// One mouse quadrature edge per axis at most every 8 lines (~360 µs), the fastest a real Plus
/// mouse produces (about 284 µs measured, per snow's notes), so the ROM's handler keeps up. The
/// spacing holds across frames too: the slots are every 8th line since power-on.
const MOUSE_LINES: u64 = 8;
/// Mouse slots (of `MOUSE_LINES` lines) to wait for an unserviced edge: about two frames.
const MOUSE_STALL_LIMIT: u32 = 92;
/// Time for the keyboard to clock a command byte out of the VIA (8 bits at ~400 µs).
const KBD_COMMAND_CYCLES: u64 = CPU_HZ * 32 / 10_000;
/// How far past its boundary a frame may run to let the VBL interrupt handler finish (lines:
/// 5.6 ms; with the demo ROM frames end up to 1.5 ms past their boundary).
const VBL_GRACE_LINES: u64 = 128;
/// Line at which vertical blanking (and the VBL interrupt) starts.
const VBL_LINE: u64 = video::HEIGHT as u64;
/// The VSYNC pulse lasts a few lines; CA1 returns high at this line.
const VSYNC_END_LINE: u64 = VBL_LINE + 4;

/// End of the ROM's address window.
const ROM_WINDOW_END: u32 = 0x44_0000;
/// Where RAM appears while the ROM overlay is on.
const OVERLAY_RAM_BASE: u32 = 0x60_0000;
/// The 2.5 MiB configuration: 1 MiB SIMMs in bank A (the first 2 MiB) and 256 KiB SIMMs in
/// bank B, which decode only 19 address bits and so repeat every 512 KiB from 0x200000.
const BANK_B: u32 = 0x20_0000;
const BANK_B_256K_MASK: u32 = 0x7_FFFF;
/// RAM sizes the board's SIMM sockets can hold.
pub const RAM_SIZES: [usize; 4] = [1 << 20, 2 << 20, 5 << 19, 4 << 20];

/// Everything on the bus: memory, devices and the board's clock. Implements [`Bus`].
pub struct Board {
    ram: Vec<u8>,
    ram_mask: u32,
    rom: Vec<u8>,
    rom_mask: u32,
    overlay: bool,

    via: Via,
    rtc: Rtc,
    scc: Scc,
    iwm: Iwm,
    scsi: Scsi,
    keyboard: Keyboard,
    sound: SoundDma,

    /// CPU clocks since power-on (the start of the current instruction while one runs).
    now: u64,
    /// Clocks the running instruction had used when its current bus cycle started.
    bus_clk: u32,
    /// Wait states the video circuitry imposed on the running instruction so far.
    wait: u32,
    /// Start of the last line handled, and whether it is a visible one: the beam position of a
    /// RAM cycle without a division.
    line_at: u64,
    line_visible: bool,
    /// E-clock ticks already applied to the VIA.
    via_e: u64,
    next_line: u64,
    next_via: u64,
    next_event: u64,
    next_second: u64,
    kbd_shift_started: Option<u64>,
    /// When the VIA entered shift-in under external clock (the keyboard may send), if it is in it.
    kbd_listening_since: Option<u64>,
    /// The answer byte the keyboard is clocking into the VIA, and the cycle its last bit lands.
    kbd_receiving: Option<(u8, u64)>,

    mouse_dx: i32,
    mouse_dy: i32,
    mouse_stall_x: u32,
    mouse_stall_y: u32,
    mouse_x2: bool,
    mouse_y2: bool,
    mouse_button: bool,
    /// OS-level absolute mouse (see `macos`), when the driver opted in.
    os_mouse: Option<AbsoluteMouse>,
    interrupt_switch: bool,
    frame: u64,
}

impl Board {
    fn new(rom: &[u8], ram_size: usize) -> Result<Board, MachineError> {
        if !RAM_SIZES.contains(&ram_size) {
            return Err(MachineError::RamSize { bytes: ram_size });
        }
        if !rom.len().is_power_of_two() || !(4096..=128 * 1024).contains(&rom.len()) {
            return Err(MachineError::RomSize { bytes: rom.len() });
        }
        let mut b = Board {
            ram: vec![0; ram_size],
            // Every address bit up to the installed size decodes; 2.5 MiB decodes all 22.
            ram_mask: (ram_size.next_power_of_two() - 1) as u32,
            rom: rom.to_vec(),
            rom_mask: (rom.len() - 1) as u32,
            overlay: true,
            via: Via::new(),
            rtc: Rtc::new(),
            scc: Scc::new(),
            iwm: Iwm::new(),
            scsi: Scsi::new(),
            keyboard: Keyboard::new(),
            sound: SoundDma::new(),
            now: 0,
            bus_clk: 0,
            wait: 0,
            line_at: 0,
            line_visible: true,
            via_e: 0,
            next_line: 0,
            next_via: u64::MAX,
            next_event: 0,
            next_second: CPU_HZ,
            kbd_shift_started: None,
            kbd_listening_since: None,
            kbd_receiving: None,
            mouse_dx: 0,
            mouse_dy: 0,
            mouse_stall_x: 0,
            mouse_stall_y: 0,
            mouse_x2: false,
            mouse_y2: false,
            mouse_button: false,
            os_mouse: None,
            interrupt_switch: false,
            frame: 0,
        };
        b.drive_via_inputs();
        Ok(b)
    }

    fn ram_size(&self) -> u32 {
        self.ram.len() as u32
    }

    /// RAM index of bus address `a`: RAM repeats through the 4 MiB window, and a 2.5 MiB
    /// machine's bank B repeats every 512 KiB (only there is the masked address past the end).
    #[inline(always)]
    fn ram_index(&self, a: u32) -> usize {
        let i = a & self.ram_mask;
        if (i as usize) < self.ram.len() {
            i as usize
        } else {
            (BANK_B | (i & BANK_B_256K_MASK)) as usize
        }
    }

    // ---- wiring ----------------------------------------------------------------------------

    /// Input pins of the VIA that do not depend on the beam: SCC W/REQ, mouse, RTC data.
    fn drive_via_inputs(&mut self) {
        // PA7: SCC wait/request, inactive (high) with no serial traffic.
        self.via.set_port_a_input(0x80, 0x80);
        let mut pb = 0u8;
        if !self.mouse_button {
            pb |= 0x08; // PB3: 0 = button pressed
        }
        if self.mouse_x2 {
            pb |= 0x10;
        }
        if self.mouse_y2 {
            pb |= 0x20;
        }
        if self.rtc.sending() && self.rtc.data_out() {
            pb |= 0x01;
        } else if !self.rtc.sending() {
            pb |= 0x01; // released data line floats high
        }
        self.via.set_port_b_input(0x39, pb);
    }

    /// After the VIA's outputs may have changed: overlay and RTC lines follow.
    fn via_outputs_changed(&mut self) {
        let pa = self.via.port_a();
        self.overlay = pa & 0x10 != 0;
        let pb = self.via.port_b();
        let data_in = pb & 0x01 != 0;
        self.rtc
            .update_lines(pb & 0x04 != 0, pb & 0x02 != 0, data_in);
        self.drive_via_inputs();
        // The keyboard clocks a command out once the VIA offers one.
        match (self.via.pending_shift_out(), self.kbd_shift_started) {
            (Some(_), None) => self.kbd_shift_started = Some(self.now),
            (None, Some(_)) => self.kbd_shift_started = None,
            _ => {}
        }
        // The keyboard sends its answer only into a VIA in shift-in mode; one that leaves the
        // mode mid-byte loses it, and the keyboard sends it again once the VIA listens.
        let listening = self.via.sr_mode() == via::SR_MODE_IN_EXTERNAL;
        match (listening, self.kbd_listening_since) {
            (true, None) => self.kbd_listening_since = Some(self.now),
            (false, Some(_)) => {
                self.kbd_listening_since = None;
                if let Some((b, _)) = self.kbd_receiving.take() {
                    self.keyboard.unpoll(b, self.now);
                }
            }
            _ => {}
        }
    }

    fn main_screen(&self) -> bool {
        self.via.port_a() & 0x40 != 0
    }

    fn screen(&self) -> &[u8] {
        let base = video::screen_base(self.ram_size(), self.main_screen()) as usize;
        &self.ram[base..base + video::SCREEN_BYTES]
    }

    // ---- time ------------------------------------------------------------------------------

    fn sync_via(&mut self) {
        let target = self.now / E_CLOCK_DIVIDER;
        if target > self.via_e {
            let mut ticks = target - self.via_e;
            while ticks > 0 {
                let step = ticks.min(u64::from(u32::MAX)) as u32;
                self.via.advance(step);
                ticks -= u64::from(step);
            }
            self.via_e = target;
        }
    }

    fn schedule(&mut self) {
        self.next_via = match self.via.ticks_to_next_event() {
            Some(t) => (self.via_e + u64::from(t)) * E_CLOCK_DIVIDER,
            None => u64::MAX,
        };
        let kbd = self.kbd_receiving.map_or(u64::MAX, |(_, done)| done);
        self.next_event = self.next_line.min(self.next_via).min(kbd);
    }

    /// Handles everything due at or before `now`.
    fn process_events(&mut self) {
        self.sync_via();
        while self.next_line <= self.now {
            let at = self.next_line;
            self.next_line += CYCLES_PER_LINE;
            self.line_start(at);
        }
        self.keyboard_byte_landed();
        self.schedule();
    }

    fn line_start(&mut self, at: u64) {
        let line = Beam::at(at).line;
        self.line_at = at;
        self.line_visible = line < video::HEIGHT as u64;
        // Sound DMA: one word per line.
        let pa = self.via.port_a();
        let pb = self.via.port_b();
        let addr = sound::sound_base(self.ram_size(), pa & 0x08 != 0) + 2 * line as u32;
        let byte = self.ram[self.ram_index(addr)];
        self.sound
            .fetch(line as usize, byte, pa & 0x07, pb & 0x80 == 0);
        // Each line's horizontal blanking is one PB6 pulse (T2 pulse-counting mode).
        self.via.pulse_pb6();
        if line == VBL_LINE {
            self.via.set_ca1(false);
            self.apply_absolute_mouse();
        } else if line == VSYNC_END_LINE {
            self.via.set_ca1(true);
        }
        if line == video::LINES_PER_FRAME - 1 {
            self.sound.end_frame();
            self.frame += 1;
        }
        // RTC one-second output: falls on the second (CA2 interrupt), rises half a second later.
        if at >= self.next_second {
            self.next_second += CPU_HZ;
            self.rtc.tick_second();
            self.via.set_ca2(false);
        } else if at >= self.next_second - CPU_HZ / 2 {
            self.via.set_ca2(true);
        }
        self.keyboard_service(at);
        // Slots count lines since power-on, not within the frame: 370 lines are not a multiple
        // of 8, so a slot at every 8th line of the frame would put line 0 two lines after line
        // 368, an edge 90 µs after the last one, before the ROM has read its X2/Y2.
        if (at / CYCLES_PER_LINE).is_multiple_of(MOUSE_LINES) {
            self.mouse_service();
        }
    }

    fn keyboard_service(&mut self, now: u64) {
        if let Some(start) = self.kbd_shift_started {
            if now >= start + KBD_COMMAND_CYCLES {
                self.kbd_shift_started = None;
                if let Some(cmd) = self.via.finish_shift_out() {
                    self.keyboard.command(cmd, now);
                }
            }
        }
        if let (None, Some(since)) = (self.kbd_receiving, self.kbd_listening_since) {
            if let Some((b, ready)) = self.keyboard.poll_at(now) {
                // The eight bits start when the answer is ready and the VIA listens.
                let done = ready.max(since) + keyboard::BYTE_TO_MAC_CYCLES;
                self.kbd_receiving = Some((b, done));
            }
        }
    }

    /// The keyboard's last bit is in the shift register: SR interrupt.
    fn keyboard_byte_landed(&mut self) {
        if let Some((b, done)) = self.kbd_receiving {
            if self.now >= done {
                self.kbd_receiving = None;
                let taken = self.via.shift_in_external(b);
                debug_assert!(taken, "a byte is only clocked into a listening VIA");
            }
        }
    }

    /// Turns pending relative motion into quadrature edges: X1/Y1 on SCC DCD A/B, X2/Y2 on VIA
    /// PB4/PB5. Moving right leaves X2 != X1 after the edge, left X2 == X1; down Y2 == Y1, up
    /// Y2 != Y1 (the phase relation MAME and snow use with the Plus ROM).
    fn mouse_service(&mut self) {
        // Wait for the ROM to service each edge, but not forever: software that enabled DCD
        // interrupts and never resets them (or polls with interrupts masked) still gets motion.
        let stalled = |stall: &mut u32, want: bool, pending: bool| {
            if want && pending {
                *stall += 1;
                if *stall < MOUSE_STALL_LIMIT {
                    return true;
                }
            }
            *stall = 0;
            false
        };
        let pending_a = self.scc.ext_pending(Channel::A);
        let pending_b = self.scc.ext_pending(Channel::B);
        let wait_x = stalled(&mut self.mouse_stall_x, self.mouse_dx != 0, pending_a);
        let wait_y = stalled(&mut self.mouse_stall_y, self.mouse_dy != 0, pending_b);
        if self.mouse_dx != 0 && !wait_x {
            let x1 = !self.scc.dcd(Channel::A);
            let right = self.mouse_dx > 0;
            self.mouse_x2 = if right { !x1 } else { x1 };
            self.mouse_dx -= self.mouse_dx.signum();
            self.drive_via_inputs();
            self.scc.set_dcd(Channel::A, x1);
        }
        if self.mouse_dy != 0 && !wait_y {
            let y1 = !self.scc.dcd(Channel::B);
            let down = self.mouse_dy > 0;
            self.mouse_y2 = if down { y1 } else { !y1 };
            self.mouse_dy -= self.mouse_dy.signum();
            self.drive_via_inputs();
            self.scc.set_dcd(Channel::B, y1);
        }
    }

    /// The OS helpers' absolute mouse, once the system runs (overlay off and the VBL interrupt
    /// enabled, i.e. after the RAM test).
    fn apply_absolute_mouse(&mut self) {
        if let Some(m) = &mut self.os_mouse {
            let ready = !self.overlay && self.via.ier() & via::irq::CA1 != 0;
            m.apply(&mut self.ram, ready);
        }
    }

    // ---- address decoding ------------------------------------------------------------------

    fn via_access(&mut self) {
        self.sync_via();
        // H4 follows the beam.
        let h4 = Beam::at(self.now).in_hblank();
        self.via.set_port_b_input(0x40, if h4 { 0x40 } else { 0 });
    }

    fn after_device_access(&mut self) {
        self.schedule();
    }

    /// A CPU cycle on RAM starts: it waits while the video circuitry has the RAM.
    #[inline(always)]
    fn ram_cycle(&mut self) {
        let t = self.now + u64::from(self.bus_clk + self.wait);
        let clock = t.wrapping_sub(self.line_at);
        let delay = if clock < CYCLES_PER_LINE {
            video::ram_delay(self.line_visible, clock)
        } else {
            // A long instruction ran into a line the board has not handled yet.
            Beam::at(t).ram_delay()
        };
        self.wait += delay as u32;
    }

    /// Whether a CPU cycle at `a` (24 bits) reaches RAM.
    #[inline(always)]
    fn is_ram(&self, a: u32) -> bool {
        if self.overlay {
            a >> 21 == OVERLAY_RAM_BASE >> 21
        } else {
            a < 0x40_0000
        }
    }

    /// RAM index of `addr` in the overlay's RAM window at 0x600000: the window starts at RAM
    /// offset 0 whatever the RAM size (masking the bus address instead would start a 4 MiB
    /// machine's window at 0x200000, where A21 lands).
    #[inline]
    fn overlay_ram_index(&self, addr: u32) -> usize {
        self.ram_index(addr - OVERLAY_RAM_BASE)
    }

    fn read8(&mut self, addr: u32) -> u8 {
        let addr = addr & 0x00FF_FFFF;
        match addr >> 19 {
            // 0x000000..0x3FFFFF: RAM, or ROM while the overlay is on.
            0x00..=0x07 => {
                if self.overlay {
                    self.rom[(addr & self.rom_mask) as usize]
                } else {
                    self.ram[self.ram_index(addr)]
                }
            }
            // 0x400000..0x43FFFF: ROM, repeated in the 256 KiB its sockets decode. Above that
            // nothing answers, which is how the ROM tells a Plus (SCSI) from a 512Ke: it
            // compares the longs at 0x420000 and 0x440000.
            0x08 if addr < ROM_WINDOW_END => self.rom[(addr & self.rom_mask) as usize],
            // 0x580000..0x5FFFFF: NCR 5380 (register in A6-A4, A9 = DACK for pseudo-DMA).
            0x0B => self.scsi.read(addr),
            // 0x600000..0x7FFFFF: RAM while the overlay is on (the ROM sizes memory there).
            0x0C..=0x0F if self.overlay => self.ram[self.overlay_ram_index(addr)],
            // 0x800000..0x9FFFFF: SCC read.
            0x10..=0x13 => self.scc.read(addr),
            // 0xC00000..0xDFFFFF: IWM.
            0x18..=0x1B => {
                let sel = self.via.port_a() & 0x20 != 0;
                self.iwm.read(addr, sel, self.now)
            }
            // 0xE80000..0xEFFFFF: VIA, register n at 0xEFE1FE + n * 0x200.
            0x1D => {
                self.via_access();
                let v = self.via.read(((addr >> 9) & 0xF) as u8);
                self.after_device_access();
                v
            }
            // Everything else is open bus on the Plus (no bus error generator).
            _ => 0,
        }
    }

    fn write8(&mut self, addr: u32, v: u8) {
        let addr = addr & 0x00FF_FFFF;
        match addr >> 19 {
            // Writes under the overlay hit ROM and are lost.
            0x00..=0x07 if !self.overlay => {
                let a = self.ram_index(addr);
                self.ram[a] = v;
            }
            0x0B => self.scsi.write(addr, v),
            0x0C..=0x0F if self.overlay => {
                let a = self.overlay_ram_index(addr);
                self.ram[a] = v;
            }
            // 0xA00000..0xBFFFFF: SCC write.
            0x14..=0x17 => {
                self.scc.write(addr, v);
            }
            0x18..=0x1B => {
                let sel = self.via.port_a() & 0x20 != 0;
                self.iwm.write(addr, v, sel, self.now);
            }
            0x1D => {
                self.via_access();
                self.via.write(((addr >> 9) & 0xF) as u8, v);
                self.via_outputs_changed();
                self.after_device_access();
            }
            _ => {}
        }
    }

    /// `read8` without its side effects: RAM and ROM as the CPU would see them now (overlay
    /// included); `None` for the devices, whose reads move their state (the VIA's interrupt
    /// flags, the SCC's register pointer, the IWM's and SCSI's latches), and for open bus.
    fn peek8(&self, addr: u32) -> Option<u8> {
        let addr = addr & 0x00FF_FFFF;
        match addr >> 19 {
            0x00..=0x07 if self.overlay => Some(self.rom[(addr & self.rom_mask) as usize]),
            0x00..=0x07 => Some(self.ram[self.ram_index(addr)]),
            0x08 if addr < ROM_WINDOW_END => Some(self.rom[(addr & self.rom_mask) as usize]),
            0x0C..=0x0F if self.overlay => Some(self.ram[self.overlay_ram_index(addr)]),
            _ => None,
        }
    }

    fn interrupt_level_now(&self) -> u8 {
        if self.interrupt_switch {
            4
        } else if self.scc.irq() {
            2
        } else if self.via.irq() {
            1
        } else {
            0
        }
    }

    fn reset_devices_now(&mut self) {
        self.sync_via();
        self.via.reset();
        self.scc.hardware_reset();
        self.iwm.reset(self.now);
        self.scsi.reset();
        self.kbd_shift_started = None;
        self.via_outputs_changed();
        self.schedule();
    }
}

#[cfg(test)]
#[path = "floppy_bus_tests.rs"]
mod floppy_bus_tests;

impl Bus for Board {
    #[inline]
    fn read_byte(&mut self, _fc: FunctionCode, addr: u32) -> Result<u8, BusError> {
        let a = addr & 0x00FF_FFFF;
        if self.is_ram(a) {
            self.ram_cycle();
        }
        Ok(self.read8(a))
    }

    #[inline]
    fn read_word(&mut self, _fc: FunctionCode, addr: u32) -> Result<u16, BusError> {
        let a = addr & 0x00FF_FFFF;
        // Fast paths for memory; devices answer on one byte lane, mirrored on the other.
        if a < 0x40_0000 {
            let (mem, i) = if self.overlay {
                (&self.rom, (a & self.rom_mask) as usize)
            } else {
                self.ram_cycle();
                (&self.ram, self.ram_index(a))
            };
            return Ok(u16::from_be_bytes([mem[i], mem[i + 1]]));
        }
        if (0x40_0000..ROM_WINDOW_END).contains(&a) {
            let i = (a & self.rom_mask) as usize;
            return Ok(u16::from_be_bytes([self.rom[i], self.rom[i + 1]]));
        }
        match a >> 19 {
            // The overlay's RAM window (open bus without the overlay): two bytes, one cycle.
            0x0C..=0x0F => {
                if self.overlay {
                    self.ram_cycle();
                }
                Ok(u16::from_be_bytes([self.read8(a), self.read8(a + 1)]))
            }
            // VIA and SCC read on the upper byte (even address), IWM/SCSI on the lower one.
            0x10..=0x13 | 0x1D => {
                let v = self.read8(a);
                Ok(u16::from_be_bytes([v, v]))
            }
            _ => {
                let v = self.read8(a + 1);
                Ok(u16::from_be_bytes([v, v]))
            }
        }
    }

    #[inline]
    fn write_byte(&mut self, _fc: FunctionCode, addr: u32, value: u8) -> Result<(), BusError> {
        let a = addr & 0x00FF_FFFF;
        if self.is_ram(a) {
            self.ram_cycle();
        }
        self.write8(a, value);
        Ok(())
    }

    #[inline]
    fn write_word(&mut self, _fc: FunctionCode, addr: u32, value: u16) -> Result<(), BusError> {
        let a = addr & 0x00FF_FFFF;
        if a < 0x40_0000 && !self.overlay {
            self.ram_cycle();
            let i = self.ram_index(a);
            self.ram[i..i + 2].copy_from_slice(&value.to_be_bytes());
            return Ok(());
        }
        let [hi, lo] = value.to_be_bytes();
        match a >> 19 {
            0x00..=0x07 | 0x0C..=0x0F => {
                if self.is_ram(a) {
                    self.ram_cycle();
                }
                self.write8(a, hi);
                self.write8(a + 1, lo);
            }
            // VIA on the upper byte lane; SCC writes, IWM and SCSI on the lower one.
            0x1D => self.write8(a, hi),
            _ => self.write8(a + 1, lo),
        }
        Ok(())
    }

    #[inline(always)]
    fn cycle_start(&mut self, clk: u32) {
        self.bus_clk = clk;
    }

    #[inline]
    fn take_wait_cycles(&mut self) -> u32 {
        std::mem::take(&mut self.wait)
    }

    #[inline]
    fn interrupt_level(&mut self) -> u8 {
        self.interrupt_level_now()
    }

    fn interrupt_ack(&mut self, _level: u8) -> InterruptAck {
        // The Plus asserts VPA for every interrupt acknowledge: autovectors only.
        InterruptAck::Autovector
    }

    fn reset_devices(&mut self) {
        self.reset_devices_now();
    }

    fn peek_byte(&self, addr: u32) -> Option<u8> {
        self.peek8(addr)
    }
}

/// A Macintosh Plus: 68000 plus [`Board`].
pub struct MacPlus {
    cpu: Cpu,
    board: Board,
}

impl MacPlus {
    /// Builds a powered-on machine: `rom` (normally 128 KiB) and `ram_size` bytes of RAM (1, 2 or
    /// 4 MiB). The CPU is reset, so the first instruction comes from the ROM's reset vector.
    pub fn new(rom: &[u8], ram_size: usize) -> Result<MacPlus, MachineError> {
        let board = Board::new(rom, ram_size)?;
        let mut mac = MacPlus {
            cpu: Cpu::new(CpuModel::M68000),
            board,
        };
        mac.cpu.reset(&mut mac.board);
        Ok(mac)
    }

    /// The reset button: devices to their reset state, ROM overlay back on, CPU reset. RAM,
    /// the clock and parameter RAM survive, as on the real machine.
    pub fn reset(&mut self) {
        self.board.reset_devices_now();
        self.board.keyboard = Keyboard::new();
        self.board.mouse_dx = 0;
        self.board.mouse_dy = 0;
        if let Some(m) = &mut self.board.os_mouse {
            m.cancel();
        }
        self.cpu.reset(&mut self.board);
    }

    /// Runs CPU and devices for `cycles` CPU clocks (the last instruction may overrun a little;
    /// the overrun is taken from the next call). Returns the clocks actually run.
    pub fn run_cycles(&mut self, cycles: u64) -> u64 {
        let start = self.board.now;
        let end = start + cycles;
        self.run_until(end);
        self.board.now - start
    }

    fn run_until(&mut self, end: u64) {
        let b = &mut self.board;
        loop {
            if b.now >= b.next_event {
                b.process_events();
            }
            if b.now >= end {
                break;
            }
            match self.cpu.run_state() {
                RunState::Running => {
                    let c = self.cpu.step(b);
                    b.now += u64::from(c);
                }
                RunState::Stopped => {
                    // STOP: nothing happens until an event raises an interrupt; skip to it.
                    let c = self.cpu.step(b);
                    b.now += u64::from(c);
                    if self.cpu.run_state() == RunState::Stopped {
                        b.now = b.now.max(b.next_event.min(end));
                    }
                }
                RunState::Halted => b.now = b.next_event.min(end),
            }
        }
    }

    /// Runs to the end of the current video frame (the next multiple of 130,240 clocks since
    /// power-on) and reports. Afterwards [`MacPlus::screen`] and [`MacPlus::audio_frame`] hold
    /// that frame's picture and sound.
    pub fn run_frame(&mut self) -> FrameReport {
        let start = self.board.now;
        let end = (start / CYCLES_PER_FRAME + 1) * CYCLES_PER_FRAME;
        self.run_until(end);
        // The frame is finished when the machine has left its vertical-blank interrupt: what the
        // VBL tasks draw (the cursor, moved at this blank) is on the display from the next scan
        // on, so it belongs to this picture and not to one a frame later. Bounded, for handlers
        // that run long; the next frame still ends on its own boundary.
        let grace = end + VBL_GRACE_LINES * CYCLES_PER_LINE;
        while self.in_interrupt_handler()
            && self.cpu.run_state() == RunState::Running
            && self.board.now < grace
        {
            self.run_until(self.board.now + 1);
        }
        FrameReport {
            frame: self.board.frame,
            cycles: self.board.now - start,
            total_cycles: self.board.now,
            cpu: self.cpu.run_state(),
            main_screen: self.board.main_screen(),
        }
    }

    /// Whether the CPU runs an interrupt handler of the Plus's levels (1 VIA, 2 SCC, 3 both): its
    /// mask is one of those levels. Mask 7 is start-up code or a critical section, not a handler.
    fn in_interrupt_handler(&self) -> bool {
        (1..=3).contains(&((self.cpu.sr() >> 8) & 7))
    }

    /// The 1-bpp screen buffer the video circuitry shows now: 342 rows of 64 bytes, MSB = left
    /// pixel, 1 = black.
    pub fn screen(&self) -> &[u8] {
        self.board.screen()
    }

    /// The 370 PCM samples (22,254.5 Hz, mono) of the last complete frame.
    pub fn audio_frame(&self) -> &[i16; SAMPLES_PER_FRAME] {
        self.board.sound.frame()
    }

    /// Key down/up by Macintosh virtual key code (ADB codes; the arrows become the M0110A's
    /// keypad arrows). Returns false for keys the Plus keyboard lacks or repeated transitions.
    pub fn key(&mut self, mac_code: u8, down: bool) -> bool {
        self.board.keyboard.key(mac_code, down)
    }

    /// Releases every held key.
    pub fn release_all_keys(&mut self) {
        self.board.keyboard.release_all();
    }

    /// Moves the mouse by (dx, dy) counts (right and down positive), delivered as quadrature
    /// interrupts over the following lines. Large backlogs are clamped to one screen's worth.
    pub fn mouse_move_relative(&mut self, dx: i32, dy: i32) {
        let b = &mut self.board;
        b.mouse_dx = b.mouse_dx.saturating_add(dx).clamp(-1024, 1024);
        b.mouse_dy = b.mouse_dy.saturating_add(dy).clamp(-1024, 1024);
    }

    /// Opts into the OS-level helpers of [`super::macos`]: absolute mouse positioning and the
    /// cursor position, through the Mac OS's low-memory globals.
    pub fn enable_os_helpers(&mut self) {
        self.board
            .os_mouse
            .get_or_insert_with(AbsoluteMouse::default);
    }

    /// Puts the cursor at (x, y) through the low-memory mouse globals (MTemp, RawMouse and
    /// CrsrNew), applied at the next VBL once the system has set up its interrupts. Cancels
    /// pending relative motion. False (and nothing happens) unless the OS helpers are on.
    pub fn mouse_move_absolute(&mut self, x: i16, y: i16) -> bool {
        let b = &mut self.board;
        let Some(m) = &mut b.os_mouse else {
            return false;
        };
        m.request(x, y);
        b.mouse_dx = 0;
        b.mouse_dy = 0;
        true
    }

    /// The mouse button (VIA PB3).
    pub fn mouse_button(&mut self, down: bool) {
        self.board.mouse_button = down;
        self.board.drive_via_inputs();
    }

    /// The programmer's interrupt switch (level-4 interrupt while pressed).
    pub fn interrupt_switch(&mut self, pressed: bool) {
        self.board.interrupt_switch = pressed;
    }

    /// Puts `image` into floppy drive `drive` (0 internal, 1 external). The Mac notices it the
    /// way it notices a real disk (its driver polls the drive's disk-in-place line).
    pub fn insert_floppy(&mut self, drive: u8, image: FloppyImage) -> Result<(), DiskError> {
        self.board.iwm.insert(drive, image, self.board.now)
    }

    /// Takes the disk out of floppy drive `drive` without asking the Mac (the eject button a
    /// real Plus lacks). Every sector the Mac wrote is already in the image.
    pub fn eject_floppy(&mut self, drive: u8) -> Result<(), DiskError> {
        self.board.iwm.eject(drive, self.board.now).map(drop)
    }

    /// What floppy drive `drive` holds.
    pub fn floppy_info(&self, drive: u8) -> Option<MediaInfo> {
        self.board.iwm.info(drive)
    }

    /// Floppy drives whose disk the Mac ejected since the last call (the image is closed).
    pub fn take_floppy_ejects(&mut self) -> Vec<u8> {
        self.board.iwm.take_ejects()
    }

    /// Writes by the Mac that did not reach an image since the last call, by drive, each with
    /// the reason.
    pub fn take_write_errors(&mut self) -> Vec<(DriveSlot, String)> {
        let floppies = self.board.iwm.take_write_errors().into_iter();
        let scsi = self.board.scsi.take_write_errors().into_iter();
        floppies
            .map(|(n, e)| (DriveSlot::Floppy(n), e))
            .chain(scsi.map(|(id, e)| (DriveSlot::Scsi(id), e)))
            .collect()
    }

    /// The cursor position the system keeps in RawMouse (x, y), for the driver's cursor metadata;
    /// `None` unless the OS helpers are on.
    pub fn cursor_position(&self) -> Option<(i16, i16)> {
        self.board
            .os_mouse
            .as_ref()
            .map(|_| AbsoluteMouse::cursor(&self.board.ram))
    }

    /// Sets the clock, in seconds since 1904-01-01 00:00 local time.
    pub fn set_rtc_seconds(&mut self, seconds: u32) {
        self.board.rtc.set_seconds(seconds);
    }

    /// The clock, in seconds since 1904-01-01 00:00 local time.
    pub fn rtc_seconds(&self) -> u32 {
        self.board.rtc.seconds()
    }

    /// Parameter RAM (256 bytes), for the driver to save.
    pub fn xpram(&self) -> &[u8; XPRAM_SIZE] {
        self.board.rtc.xpram()
    }

    /// Loads parameter RAM saved earlier.
    pub fn set_xpram(&mut self, data: &[u8; XPRAM_SIZE]) {
        self.board.rtc.set_xpram(data);
    }

    /// True once after the Mac wrote new values into parameter RAM.
    pub fn take_xpram_changed(&mut self) -> bool {
        self.board.rtc.take_xpram_changed()
    }

    /// RAM size in bytes.
    pub fn ram_size(&self) -> usize {
        self.board.ram.len()
    }

    /// All of RAM (read-only), for debuggers and tests.
    pub fn ram(&self) -> &[u8] {
        &self.board.ram
    }

    /// Whether the ROM overlay at address 0 is on.
    pub fn overlay(&self) -> bool {
        self.board.overlay
    }

    /// CPU clocks since power-on.
    pub fn cycles(&self) -> u64 {
        self.board.now
    }

    /// Frames completed since power-on.
    pub fn frames(&self) -> u64 {
        self.board.frame
    }

    /// Puts `disk` on the SCSI bus at `id` (0–6; 7 is the Mac itself). The ROM looks for boot
    /// disks from ID 6 down to 0 at startup; a disk attached later is found by software that
    /// scans the bus (SCSI Probe, HD SC Setup).
    pub fn attach_scsi(&mut self, id: u8, disk: ScsiDisk) -> Result<(), DiskError> {
        self.board.scsi.attach(id, Box::new(disk))
    }

    /// Takes the disk at `id` off the bus, as if it were switched off.
    pub fn detach_scsi(&mut self, id: u8) -> Result<(), DiskError> {
        self.board.scsi.detach(id).map(drop)
    }

    /// What the SCSI disk at `id` holds, `None` for an empty ID.
    pub fn scsi_info(&self, id: u8) -> Option<MediaInfo> {
        self.board.scsi.info(id)
    }

    /// The byte at `addr` without a bus cycle: RAM and ROM as the CPU sees them now, `None`
    /// for device registers and open bus (see [`Bus::peek_byte`]).
    pub fn peek_byte(&self, addr: u32) -> Option<u8> {
        self.board.peek_byte(addr)
    }

    /// The word at `addr` without a bus cycle (see [`MacPlus::peek_byte`]).
    pub fn peek_word(&self, addr: u32) -> Option<u16> {
        self.board.peek_word(addr)
    }

    /// The instruction at `addr`, read without bus cycles; `None` when a word of it is not in
    /// RAM or ROM.
    pub fn disassemble(&self, addr: u32) -> Option<Instruction> {
        disassemble(&mut |a| self.board.peek_word(a), addr)
    }

    /// One CPU step (an instruction, an exception or interrupt entry, or a stopped or halted
    /// CPU's 4 idle clocks), after the device events due by now. Returns the clocks used.
    pub fn step(&mut self) -> u64 {
        let b = &mut self.board;
        if b.now >= b.next_event {
            b.process_events();
        }
        let c = u64::from(self.cpu.step(b));
        b.now += c;
        c
    }

    /// The CPU (registers, run state).
    pub fn cpu(&self) -> &Cpu {
        &self.cpu
    }

    /// Mutable access to the CPU, for debuggers.
    pub fn cpu_mut(&mut self) -> &mut Cpu {
        &mut self.cpu
    }
}

#[cfg(test)]
mod board_tests;

#[cfg(test)]
mod scsi_tests;
