//! The Mac Plus plays 22,254.5 samples a second, a rate the v4 audio ring cannot carry (it allows
//! 11,025 / 22,050 / 44,100 / 48,000 Hz). Converting 1 % down to 22,050 Hz keeps the pitch right;
//! linear interpolation is plenty for an 8-bit source this close to the target rate.

use std::collections::VecDeque;

/// Streaming fractional-rate converter for one mono channel of 16-bit samples.
#[derive(Debug, Clone)]
pub struct Resampler {
    /// Input samples per output sample.
    step: f64,
    /// Position of the next output sample, in input samples from `pending[0]`.
    pos: f64,
    pending: VecDeque<i16>,
}

impl Resampler {
    pub fn new(input_rate: f64, output_rate: f64) -> Self {
        assert!(
            input_rate > 0.0 && output_rate > 0.0,
            "rates must be positive"
        );
        Resampler {
            step: input_rate / output_rate,
            pos: 0.0,
            pending: VecDeque::new(),
        }
    }

    /// Queues input samples.
    pub fn push(&mut self, input: &[i16]) {
        self.pending.extend(input.iter().copied());
    }

    /// Input samples waiting to be converted.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Output samples that can be produced now.
    pub fn available(&self) -> usize {
        let len = self.pending.len() as f64;
        if len < 2.0 {
            return 0;
        }
        // Output k needs input index floor(pos + k*step) + 1 < len.
        let last = len - 2.0 - self.pos;
        if last < 0.0 {
            0
        } else {
            (last / self.step).floor() as usize + 1
        }
    }

    /// Produces up to `out.len()` samples; returns how many were written.
    pub fn pull(&mut self, out: &mut [i16]) -> usize {
        let n = out.len().min(self.available());
        for slot in out.iter_mut().take(n) {
            let i = self.pos as usize;
            let frac = self.pos - i as f64;
            let a = f64::from(self.pending[i]);
            let b = f64::from(self.pending[i + 1]);
            *slot = (a + (b - a) * frac).round() as i16;
            self.pos += self.step;
        }
        let consumed = (self.pos as usize).min(self.pending.len());
        self.pending.drain(..consumed);
        self.pos -= consumed as f64;
        n
    }

    /// Drops all but the newest `keep` input samples (a listener that stopped asking must not make
    /// the queue grow, nor hear stale sound when it comes back).
    pub fn trim(&mut self, keep: usize) {
        if self.pending.len() > keep {
            let drop = self.pending.len() - keep;
            self.pending.drain(..drop);
            self.pos = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_is_converted_exactly_over_time() {
        let mut r = Resampler::new(22_254.5, 22_050.0);
        let mut produced = 0usize;
        let mut out = vec![0i16; 1000];
        // Ten seconds of input in Mac-frame-sized chunks (370 samples per 60.15 Hz frame).
        let chunks = 22_254.5 * 10.0 / 370.0;
        for _ in 0..chunks as usize {
            r.push(&[0; 370]);
            produced += r.pull(&mut out);
        }
        let input_secs = (chunks as usize * 370) as f64 / 22_254.5;
        let expected = input_secs * 22_050.0;
        assert!(
            (produced as f64 - expected).abs() < 3.0,
            "{produced} vs {expected}"
        );
    }

    #[test]
    fn a_sine_keeps_its_frequency() {
        let mut r = Resampler::new(22_254.5, 22_050.0);
        let f = 440.0;
        let input: Vec<i16> = (0..22_254)
            .map(|i| ((i as f64 * f * std::f64::consts::TAU / 22_254.5).sin() * 10_000.0) as i16)
            .collect();
        r.push(&input);
        let mut out = vec![0i16; 30_000];
        let n = r.pull(&mut out);
        // Count rising zero crossings over the output: one per period.
        let crossings = out[..n]
            .windows(2)
            .filter(|w| w[0] < 0 && w[1] >= 0)
            .count();
        let seconds = n as f64 / 22_050.0;
        let measured = crossings as f64 / seconds;
        assert!((measured - f).abs() < 2.0, "measured {measured} Hz");
        // Linear interpolation between samples of a 440 Hz tone stays within a few LSB of ideal.
        for (k, &s) in out[..n].iter().enumerate().step_by(97) {
            let ideal = (k as f64 * f * std::f64::consts::TAU / 22_050.0).sin() * 10_000.0;
            assert!(
                (f64::from(s) - ideal).abs() < 40.0,
                "sample {k}: {s} vs {ideal}"
            );
        }
    }

    #[test]
    fn trim_bounds_the_queue() {
        let mut r = Resampler::new(2.0, 1.0);
        r.push(&[1; 10_000]);
        r.trim(100);
        assert_eq!(r.pending(), 100);
        let mut out = [0i16; 10];
        assert_eq!(r.pull(&mut out), 10);
        assert!(out.iter().all(|&s| s == 1));
    }
}
