//! The Plus's sound: once per scan line the video circuitry fetches one word of the sound buffer
//! and its high byte goes to an 8-bit DAC (the low byte drives the floppy speed PWM). That is
//! 370 samples a frame, 7,833,600 / 352 = 22,254.5 samples a second. VIA PA2..0 set the
//! amplifier volume and PB7 = 0 enables the output. The buffer is at RAM top - 0x300 (main,
//! PA3 = 1) or RAM top - 0x5F00 (alternate, PA3 = 0).

use super::video::LINES_PER_FRAME;

/// Samples per frame (one per scan line).
pub const SAMPLES_PER_FRAME: usize = LINES_PER_FRAME as usize;
/// Sample rate in Hz (CPU clock / 352).
pub const SAMPLE_RATE_HZ: f64 = super::CPU_HZ as f64 / 352.0;
/// Offset of the main sound buffer below the top of RAM.
pub const MAIN_SOUND_OFFSET: u32 = 0x300;
/// Offset of the alternate sound buffer below the top of RAM.
pub const ALT_SOUND_OFFSET: u32 = 0x5F00;

/// Start address of the sound buffer for a RAM size; `main` follows VIA PA3.
pub fn sound_base(ram_size: u32, main: bool) -> u32 {
    ram_size
        - if main {
            MAIN_SOUND_OFFSET
        } else {
            ALT_SOUND_OFFSET
        }
}

/// Turns a DAC byte into signed 16-bit PCM. The byte is unsigned around 0x80; volume 7 is full
/// scale and each step down divides the amplitude (volume v gives 1 / (8 - v), the approximation
/// Mini vMac documents for the Plus amplifier); disabled sound is silence.
pub fn pcm(byte: u8, volume: u8, enabled: bool) -> i16 {
    if !enabled {
        return 0;
    }
    let centred = (i32::from(byte) - 128) * 256;
    (centred / (8 - i32::from(volume & 7))) as i16
}

/// Collects the samples of the frame being drawn.
#[derive(Clone, Debug)]
pub struct SoundDma {
    samples: [i16; SAMPLES_PER_FRAME],
    /// The finished previous frame.
    last: [i16; SAMPLES_PER_FRAME],
}

impl Default for SoundDma {
    fn default() -> Self {
        Self::new()
    }
}

impl SoundDma {
    pub fn new() -> SoundDma {
        SoundDma {
            samples: [0; SAMPLES_PER_FRAME],
            last: [0; SAMPLES_PER_FRAME],
        }
    }

    /// Stores the sample fetched on `line` (0..370).
    pub fn fetch(&mut self, line: usize, byte: u8, volume: u8, enabled: bool) {
        if let Some(s) = self.samples.get_mut(line) {
            *s = pcm(byte, volume, enabled);
        }
    }

    /// The frame is complete: its samples become [`SoundDma::frame`].
    pub fn end_frame(&mut self) {
        self.last = self.samples;
    }

    /// The 370 samples of the last complete frame.
    pub fn frame(&self) -> &[i16; SAMPLES_PER_FRAME] {
        &self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_and_sizes() {
        assert!((SAMPLE_RATE_HZ - 22_254.545).abs() < 0.001);
        assert_eq!(SAMPLES_PER_FRAME, 370);
        assert_eq!(sound_base(0x400000, true), 0x3FFD00);
        assert_eq!(sound_base(0x400000, false), 0x3FA100);
    }

    #[test]
    fn pcm_scaling() {
        assert_eq!(pcm(0x80, 7, true), 0);
        assert_eq!(pcm(0xFF, 7, true), 127 * 256);
        assert_eq!(pcm(0x00, 7, true), -128 * 256);
        assert_eq!(pcm(0xFF, 0, true), 127 * 256 / 8);
        assert_eq!(pcm(0xFF, 7, false), 0);
        // Louder volume never gives a smaller amplitude.
        for v in 0..7 {
            assert!(pcm(0xF0, v, true) <= pcm(0xF0, v + 1, true));
        }
    }

    #[test]
    fn frames_double_buffer() {
        let mut s = SoundDma::new();
        s.fetch(0, 0xFF, 7, true);
        s.fetch(369, 0x00, 7, true);
        s.fetch(370, 0xFF, 7, true); // out of range: ignored
        assert_eq!(s.frame()[0], 0);
        s.end_frame();
        assert_eq!(s.frame()[0], 127 * 256);
        assert_eq!(s.frame()[369], -128 * 256);
    }
}
