//! Shared by the opt-in tests that boot a user's own Apple ROM and system disk: recognising the
//! Finder's desktop on the 512×342 screen, and timing the boot.

use macemu_core::mac::MacPlus;
use std::time::{Duration, Instant};

const ROW_BYTES: usize = 64;
/// Two emulated minutes: a Plus boots System 6 from floppy, or System 7 from SCSI, in well under one.
pub const MAX_FRAMES: u64 = 60 * 120;
/// The Plus's refresh rate (Hz).
pub const FRAME_RATE: f64 = 60.15;

fn black_fraction(screen: &[u8], row: usize) -> f64 {
    let r = &screen[row * ROW_BYTES..(row + 1) * ROW_BYTES];
    f64::from(r.iter().map(|b| b.count_ones()).sum::<u32>()) / 512.0
}

/// The Finder's menu bar: rows 2–17 mostly white (menu titles), row 19 a black line across the
/// screen. It can only appear once the boot blocks, the System file and the Finder were read.
pub fn menu_bar_shown(screen: &[u8]) -> bool {
    (2..18).all(|y| black_fraction(screen, y) < 0.35) && black_fraction(screen, 19) > 0.95
}

/// Saves the 1-bit screen as a PBM for a person to look at.
pub fn write_pbm(path: &std::path::Path, screen: &[u8]) {
    let mut out = b"P4\n512 342\n".to_vec();
    out.extend_from_slice(screen);
    let _ = std::fs::write(path, out);
}

/// Runs `mac` at full speed until the menu bar shows (checked once per emulated second) or
/// [`MAX_FRAMES`] pass; the frame it showed on and the wall time taken.
pub fn boot_to_finder(mac: &mut MacPlus) -> (Option<u64>, Duration) {
    let t0 = Instant::now();
    for _ in 0..MAX_FRAMES {
        let r = mac.run_frame();
        if r.frame.is_multiple_of(60) && menu_bar_shown(mac.screen()) {
            return (Some(r.frame), t0.elapsed());
        }
    }
    (None, t0.elapsed())
}

/// The boot benchmark's line: emulated seconds, wall seconds, and their ratio.
pub fn report(what: &str, frame: u64, wall: Duration) {
    let emulated = frame as f64 / FRAME_RATE;
    println!(
        "{what}: menu bar after {emulated:.1} s of emulated time in {:.2} s of wall time \
         ({:.1} emulated seconds per wall second)",
        wall.as_secs_f64(),
        emulated / wall.as_secs_f64()
    );
}
