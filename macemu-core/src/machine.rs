//! The seam between a machine model and whoever drives it.
//!
//! [`Machine`] is everything the emulator process needs from a model: running to a deadline, the
//! screen, the sound of the last frame, input, parameter RAM, the clock, reset and drives. The
//! emulator holds a `Box<dyn Machine>` built from the [`MODELS`] registry, so a new model (SE,
//! Mac II) is a type in this crate plus one registry entry; the emulator does not change.
//!
//! Dynamic dispatch costs one indirect call per frame or per input event; the CPU's hot loop is
//! inside `run_frame`, monomorphic.

use crate::mac::machine::{FrameReport, MacPlus, MachineError};
use crate::storage::{Backing, DiskError, DriveEvent, DriveInfo, DriveSlot};
use std::fmt;

/// Pixel layout of a source framebuffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    Indexed1,
    Indexed2,
    Indexed4,
    Indexed8,
    /// 16 bpp, big-endian `x RRRRR GGGGG BBBBB`.
    Rgb555,
    /// 32 bpp, big-endian `x R G B`.
    Xrgb8888,
}

impl SourceFormat {
    pub fn bits_per_pixel(self) -> usize {
        match self {
            SourceFormat::Indexed1 => 1,
            SourceFormat::Indexed2 => 2,
            SourceFormat::Indexed4 => 4,
            SourceFormat::Indexed8 => 8,
            SourceFormat::Rgb555 => 16,
            SourceFormat::Xrgb8888 => 32,
        }
    }

    /// Bytes holding one row of `width` pixels.
    pub fn row_bytes(self, width: usize) -> usize {
        (width * self.bits_per_pixel()).div_ceil(8)
    }
}

/// Up to 256 colours as 0x00RRGGBB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Palette(pub [u32; 256]);

impl Palette {
    /// Compact-Mac monochrome: 0 = white, 1 = black.
    pub const MONO: Palette = {
        let mut p = [0u32; 256];
        p[0] = 0x00FF_FFFF;
        Palette(p)
    };

    /// Compact-Mac monochrome: 0 = white, 1 = black.
    pub fn mono() -> Palette {
        Palette::MONO
    }

    /// Evenly spaced greys for `bits` per pixel, index 0 white (as the Mac's default CLUTs).
    pub fn grey(bits: u32) -> Palette {
        let n = 1u32 << bits.min(8);
        let mut p = [0u32; 256];
        for (i, c) in p.iter_mut().take(n as usize).enumerate() {
            let v = 255 - (i as u32 * 255) / (n - 1);
            *c = (v << 16) | (v << 8) | v;
        }
        Palette(p)
    }
}

/// The picture a machine shows now, borrowed from it.
#[derive(Clone, Copy, Debug)]
pub struct Screen<'a> {
    pub width: usize,
    pub height: usize,
    /// Bytes from one row to the next.
    pub row_bytes: usize,
    /// Pixel layout, and so the depth.
    pub format: SourceFormat,
    /// Colours of the indexed formats (ignored by the direct ones).
    pub palette: &'a Palette,
    /// The framebuffer: `height` rows of `row_bytes`.
    pub data: &'a [u8],
}

/// The sound a machine produces.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AudioFormat {
    /// Samples per second per channel.
    pub rate_hz: f64,
    /// Interleaved channels in [`Machine::audio_frame`].
    pub channels: u16,
}

/// Parameter RAM of the wrong size for this machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NvramSizeError {
    pub expected: usize,
    pub got: usize,
}

impl fmt::Display for NvramSizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "parameter RAM of {} bytes; this machine keeps {}",
            self.got, self.expected
        )
    }
}

impl std::error::Error for NvramSizeError {}

/// A Macintosh model as its driver sees it. Every method is cheap except the two `run_` ones;
/// none panics on input.
pub trait Machine: Send {
    /// The registry entry this machine was built from.
    fn model(&self) -> &'static Model;

    // ---- time ----------------------------------------------------------------------------

    /// CPU clocks per second.
    fn clock_hz(&self) -> u64;
    /// Video frames per second, the rate a real-time driver calls [`Machine::run_frame`] at.
    fn frame_hz(&self) -> f64;
    /// Runs to the end of the current video frame; afterwards [`Machine::screen`] and
    /// [`Machine::audio_frame`] hold that frame's picture and sound.
    fn run_frame(&mut self) -> FrameReport;
    /// Runs `cycles` CPU clocks (the last instruction may overrun; taken from the next call).
    /// Returns the clocks run.
    fn run_cycles(&mut self, cycles: u64) -> u64;
    /// The reset button: RAM, clock and parameter RAM survive.
    fn reset(&mut self);

    // ---- output --------------------------------------------------------------------------

    /// The picture the video circuitry shows now.
    fn screen(&self) -> Screen<'_>;
    /// Rate and channels of [`Machine::audio_frame`].
    fn audio_format(&self) -> AudioFormat;
    /// The samples of the last complete frame, interleaved by channel.
    fn audio_frame(&self) -> &[i16];

    // ---- input ---------------------------------------------------------------------------

    /// Key down/up by Macintosh virtual key code. False for keys the model's keyboard lacks
    /// or a repeated transition.
    fn key(&mut self, mac_code: u8, down: bool) -> bool;
    fn release_all_keys(&mut self);
    /// Moves the mouse by counts (right and down positive), as the hardware sees motion.
    fn mouse_relative(&mut self, dx: i32, dy: i32);
    fn mouse_button(&mut self, down: bool);
    /// The programmer's interrupt switch.
    fn interrupt_switch(&mut self, pressed: bool);

    // ---- OS-level helpers (see `mac::macos`) -----------------------------------------------

    /// Opts into the helpers that work through the Mac OS's low-memory globals rather than the
    /// hardware. False when the model has none.
    fn enable_os_helpers(&mut self) -> bool;
    /// Puts the cursor at (x, y) through the OS. False when the helpers are off.
    fn mouse_absolute(&mut self, x: i16, y: i16) -> bool;
    /// Where the OS shows the cursor; `None` when the helpers are off.
    fn cursor_position(&self) -> Option<(i16, i16)>;

    // ---- non-volatile state ----------------------------------------------------------------

    /// Parameter RAM, for the driver to save.
    fn nvram(&self) -> &[u8];
    /// Loads parameter RAM saved earlier.
    fn set_nvram(&mut self, data: &[u8]) -> Result<(), NvramSizeError>;
    /// True once after the Mac wrote new values into parameter RAM.
    fn take_nvram_changed(&mut self) -> bool;
    /// The clock, in seconds since 1904-01-01 00:00 local time.
    fn rtc_seconds(&self) -> u32;
    fn set_rtc_seconds(&mut self, seconds: u32);

    // ---- drives --------------------------------------------------------------------------

    /// Inserts a disk image into `slot`.
    fn insert_disk(&mut self, slot: DriveSlot, media: Box<dyn Backing>) -> Result<(), DiskError>;
    /// Ejects the disk in `slot`, as the eject command of the host's user.
    fn eject_disk(&mut self, slot: DriveSlot) -> Result<(), DiskError>;
    /// Every drive of the machine and what it holds.
    fn drives(&self) -> Vec<DriveInfo>;
    /// What happened in the drives from inside the Mac since the last call (the system ejected
    /// a disk, a write failed to reach its image), each with what the drive holds now.
    fn take_drive_events(&mut self) -> Vec<DriveEvent>;
}

/// Builds a powered-on machine from a ROM image and a RAM size.
type BuildFn = fn(&[u8], usize) -> Result<Box<dyn Machine>, MachineError>;

/// One entry of the model registry.
pub struct Model {
    /// The name users pass (`--model plus`).
    pub name: &'static str,
    /// What it is, for help texts.
    pub description: &'static str,
    /// RAM sizes the model takes, in bytes, the first the default.
    pub ram_sizes: &'static [usize],
    build: BuildFn,
}

impl fmt::Debug for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Model").field("name", &self.name).finish()
    }
}

impl Model {
    /// Builds a powered-on machine from a ROM image and a RAM size.
    pub fn build(&self, rom: &[u8], ram_size: usize) -> Result<Box<dyn Machine>, MachineError> {
        (self.build)(rom, ram_size)
    }

    /// The registry entry called `name` (case-insensitive).
    pub fn by_name(name: &str) -> Option<&'static Model> {
        MODELS
            .iter()
            .copied()
            .find(|m| m.name.eq_ignore_ascii_case(name))
    }

    /// The model used when none is named: the Mac Plus.
    pub fn default_model() -> &'static Model {
        MODELS.first().copied().unwrap_or(&PLUS)
    }

    /// The default RAM size.
    pub fn default_ram(&self) -> usize {
        self.ram_sizes.first().copied().unwrap_or(0)
    }
}

/// The Macintosh Plus.
pub static PLUS: Model = Model {
    name: "plus",
    description: "Macintosh Plus (68000, 512x342 mono, 22,254.5 Hz sound)",
    ram_sizes: &[4 << 20, 5 << 19, 2 << 20, 1 << 20],
    build: |rom, ram| Ok(Box::new(MacPlus::new(rom, ram)?)),
};

/// Every model this crate emulates; the first is the default. A new model is one line here.
pub static MODELS: &[&Model] = &[&PLUS];
