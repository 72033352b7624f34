//! Compact-Mac video timing and screen buffers.
//!
//! The dot clock is 15.6672 MHz (two dots per CPU clock). A scan line is 512 visible dots plus
//! 192 of horizontal blanking = 704 dots = 352 CPU clocks; a frame is 342 visible lines plus 28
//! of vertical blanking = 370 lines = 130,240 CPU clocks, so the refresh rate is
//! 7,833,600 / 130,240 = 60.1474 Hz. The VBL interrupt (VIA CA1) comes at the start of vertical
//! blanking. The screen is 512 x 342 at 1 bit per pixel (1 = black), 64 bytes a line, read from
//! RAM top - 0x5900 (main buffer, VIA PA6 = 1) or RAM top - 0xD900 (alternate, PA6 = 0).
//!
//! # Sharing RAM with the CPU
//!
//! The video circuitry reads the screen from the same RAM as the CPU, one word (16 pixels) every
//! 8 clocks of the visible part of a line, and the two take turns every four clocks: during the
//! 256 visible clocks of each of the 342 visible lines the CPU gets every other 4-clock RAM slot,
//! and it has the RAM to itself during blanking (as Apple's designers described it in 1984: of
//! each memory cycle the video takes one half and the processor the other; Snow and Clock Signal
//! model the same slots). Only RAM is shared: ROM and devices answer at full speed. Once per
//! line, at the end of horizontal blanking, the circuitry also fetches the sound/disk-speed word
//! (per the BBU ERS timing MAME documents), which takes one more video slot on every line,
//! blanking or not. [`ram_delay`] turns these rules into the clocks a CPU RAM cycle waits: a
//! cycle starting in the video's half of a slot waits for the CPU's half. Bus-bound code thus
//! loses about a third of its speed in a frame (the "as much as 35 %" and "6 MHz effective"
//! usually quoted for the 7.8336 MHz machines).

/// Visible pixels per line.
pub const WIDTH: usize = 512;
/// Visible lines.
pub const HEIGHT: usize = 342;
/// Bytes per screen line.
pub const ROW_BYTES: usize = WIDTH / 8;
/// Bytes of one screen buffer.
pub const SCREEN_BYTES: usize = ROW_BYTES * HEIGHT;
/// CPU clocks per scan line (704 dots at two dots a clock).
pub const CYCLES_PER_LINE: u64 = 352;
/// CPU clocks of the visible part of a line.
pub const VISIBLE_CYCLES: u64 = 256;
/// Lines per frame including vertical blanking.
pub const LINES_PER_FRAME: u64 = 370;
/// CPU clocks per frame.
pub const CYCLES_PER_FRAME: u64 = CYCLES_PER_LINE * LINES_PER_FRAME;
/// Offset of the main screen below the top of RAM.
pub const MAIN_SCREEN_OFFSET: u32 = 0x5900;
/// Offset of the alternate screen below the top of RAM.
pub const ALT_SCREEN_OFFSET: u32 = 0xD900;

/// CPU clocks of one RAM slot pair: four for the video circuitry, then four for the CPU.
pub const RAM_SLOT_CYCLES: u64 = 8;
/// Clock within a line at which the sound/disk-speed word is fetched: the video half of the
/// last slot of horizontal blanking.
pub const SOUND_FETCH_CLOCK: u64 = CYCLES_PER_LINE - RAM_SLOT_CYCLES;

/// Clocks a CPU RAM cycle that wants to start at `clock` (0..352) of a line waits for the video
/// circuitry; `visible_line` is false in vertical blanking. A cycle that starts in the CPU's half
/// of a slot goes ahead; one in the video's half waits for the CPU's half.
#[inline(always)]
pub fn ram_delay(visible_line: bool, clock: u64) -> u64 {
    let half = RAM_SLOT_CYCLES / 2;
    let shared = (visible_line && clock < VISIBLE_CYCLES)
        || (SOUND_FETCH_CLOCK..SOUND_FETCH_CLOCK + half).contains(&clock);
    let phase = clock % RAM_SLOT_CYCLES;
    if shared && phase < half {
        half - phase
    } else {
        0
    }
}

/// Where the beam is at a given cycle (frames start at cycle 0 with visible line 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Beam {
    /// Line within the frame, 0..370 (342.. is vertical blanking).
    pub line: u64,
    /// CPU clock within the line, 0..352 (256.. is horizontal blanking).
    pub clock: u64,
}

impl Beam {
    pub fn at(cycle: u64) -> Beam {
        let pos = cycle % CYCLES_PER_FRAME;
        Beam {
            line: pos / CYCLES_PER_LINE,
            clock: pos % CYCLES_PER_LINE,
        }
    }

    /// Horizontal blanking: the H4 signal on VIA PB6.
    pub fn in_hblank(self) -> bool {
        self.clock >= VISIBLE_CYCLES
    }

    /// Vertical blanking.
    pub fn in_vblank(self) -> bool {
        self.line >= HEIGHT as u64
    }

    /// Clocks a CPU RAM cycle starting here waits (see [`ram_delay`]).
    pub fn ram_delay(self) -> u64 {
        ram_delay(!self.in_vblank(), self.clock)
    }
}

/// Start address of the screen buffer for a RAM size; `main` follows VIA PA6.
pub fn screen_base(ram_size: u32, main: bool) -> u32 {
    ram_size
        - if main {
            MAIN_SCREEN_OFFSET
        } else {
            ALT_SCREEN_OFFSET
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_rate_is_60_15_hz() {
        let hz = super::super::CPU_HZ as f64 / CYCLES_PER_FRAME as f64;
        assert!((hz - 60.1474).abs() < 0.0001, "{hz}");
    }

    #[test]
    fn beam_positions() {
        assert_eq!(Beam::at(0), Beam { line: 0, clock: 0 });
        assert!(!Beam::at(255).in_hblank());
        assert!(Beam::at(256).in_hblank());
        assert!(!Beam::at(341 * CYCLES_PER_LINE + 351).in_vblank());
        assert!(Beam::at(342 * CYCLES_PER_LINE).in_vblank());
        assert_eq!(Beam::at(CYCLES_PER_FRAME + 353), Beam { line: 1, clock: 1 });
    }

    #[test]
    fn screen_addresses_match_inside_macintosh() {
        // A 128K Mac has ScrnBase 0x1A700; a 4 MiB Plus 0x3FA700.
        assert_eq!(screen_base(0x20000, true), 0x1A700);
        assert_eq!(screen_base(0x400000, true), 0x3FA700);
        assert_eq!(screen_base(0x400000, false), 0x3F2700);
    }
}
