//! Audio: emulator frames (any of the Mac's rates, mono or stereo) → 48 kHz stereo → Opus 20 ms packets.
//!
//! Resampling uses libsamplerate, rebuilt whenever a frame arrives with another rate or channel count, so
//! a rate change mid-stream just continues. A small FIFO absorbs the jitter between the emulator's frames
//! and the 20 ms packet clock; when it runs dry the packet is silence and the FIFO refills to a cushion
//! before sound resumes (one clean gap instead of crackling).
//!
//! Silence is not encoded 50 times a second. After [`SILENCE_HANGOVER`] packets of digital silence
//! (enough for the encoder to flush the tail of the last sound), only every [`SILENCE_KEEPALIVE`]th
//! 20 ms slot is encoded and sent; the others are skipped, as Opus DTX does (RFC 7587 §3.1.3). The
//! RTP timestamp still advances by the skipped slots ([`OpusPacketizer`]), so a receiver's jitter
//! buffer sees a pause in the talk, not lost packets, and the first packet of new sound carries the
//! marker bit. Sound returns within one packet.

use bytes::Bytes;
use std::collections::VecDeque;
use thiserror::Error;

pub const OUT_RATE: u32 = 48_000;
/// Samples per channel in one 20 ms packet.
pub const PACKET_FRAMES: usize = 960;
/// Stereo frames kept before sound (re)starts: 30 ms.
const CUSHION_FRAMES: usize = 1440;
/// Beyond this much queued audio (120 ms) the oldest is dropped to keep latency bounded.
const MAX_QUEUED_FRAMES: usize = 5760;
/// Silent packets still encoded and sent after sound (200 ms), before packets thin out.
pub const SILENCE_HANGOVER: u32 = 10;
/// While silent, one 20 ms slot in this many is sent (every 400 ms, Opus DTX's rhythm), so the
/// stream never looks dead to a receiver.
pub const SILENCE_KEEPALIVE: u32 = 20;
/// Below half a 16-bit step nothing is audible: such a packet is digital silence.
const SILENCE_LEVEL: f32 = 0.5 / 32768.0;

#[derive(Debug, Error)]
pub enum AudioError {
    #[error("unsupported audio format: {rate} Hz, {channels} channels")]
    BadFormat { rate: u32, channels: u32 },
    #[error("audio frame has {len} samples, not a whole number of {channels}-channel frames")]
    Ragged { len: usize, channels: u32 },
    #[error("resampler: {0}")]
    Resample(String),
    #[error("Opus: {0}")]
    Opus(String),
}

/// Turns big-endian S16 bytes (the shared-memory format) into native samples.
pub fn s16be_to_native(bytes: &[u8], out: &mut Vec<i16>) {
    out.clear();
    out.extend(
        bytes
            .chunks_exact(2)
            .map(|b| i16::from_be_bytes([b[0], b[1]])),
    );
}

/// S16 samples as floats in [-1, 1).
fn to_float(samples: &[i16]) -> Vec<f32> {
    samples.iter().map(|&s| f32::from(s) / 32768.0).collect()
}

/// libsamplerate through its C API. (The `samplerate` crate's `process` drops the input the
/// converter did not consume in one call, which loses audio on every frame.)
struct Converter {
    state: *mut libsamplerate_sys::SRC_STATE,
    channels: usize,
    ratio: f64,
    out: Vec<f32>,
}

// SAFETY: the converter state is owned by this value alone and only used through `&mut self`.
unsafe impl Send for Converter {}

impl Converter {
    fn new(from: u32, channels: u32) -> Result<Self, AudioError> {
        let mut err = 0;
        // SAFETY: plain constructor call; a null result is checked below.
        let state = unsafe {
            libsamplerate_sys::src_new(
                libsamplerate_sys::SRC_SINC_FASTEST as i32,
                channels as i32,
                &mut err,
            )
        };
        if state.is_null() {
            return Err(AudioError::Resample(format!("src_new failed ({err})")));
        }
        Ok(Self {
            state,
            channels: channels as usize,
            ratio: OUT_RATE as f64 / from as f64,
            out: Vec::new(),
        })
    }

    /// Converts all of `input` (interleaved), returning what the converter produced.
    fn process(&mut self, mut input: &[f32]) -> Result<Vec<f32>, AudioError> {
        let mut produced = Vec::new();
        let ch = self.channels;
        while input.len() >= ch {
            let frames_in = input.len() / ch;
            let cap = (frames_in as f64 * self.ratio) as usize + 64;
            self.out.resize(cap * ch, 0.0);
            let mut d = libsamplerate_sys::SRC_DATA {
                data_in: input.as_ptr(),
                data_out: self.out.as_mut_ptr(),
                input_frames: frames_in as _,
                output_frames: cap as _,
                input_frames_used: 0,
                output_frames_gen: 0,
                end_of_input: 0,
                src_ratio: self.ratio,
            };
            // SAFETY: `state` is live; the in/out pointers and frame counts describe the slices above.
            let e = unsafe { libsamplerate_sys::src_process(self.state, &mut d) };
            if e != 0 {
                return Err(AudioError::Resample(format!("src_process error {e}")));
            }
            let used = (d.input_frames_used as usize).min(frames_in);
            produced.extend_from_slice(&self.out[..d.output_frames_gen as usize * ch]);
            if used == 0 && d.output_frames_gen == 0 {
                break;
            }
            input = &input[used * ch..];
        }
        Ok(produced)
    }
}

impl Drop for Converter {
    fn drop(&mut self) {
        // SAFETY: `state` came from src_new and is deleted exactly once.
        unsafe {
            libsamplerate_sys::src_delete(self.state);
        }
    }
}

struct Resampler {
    rate: u32,
    channels: u32,
    src: Option<Converter>,
    /// Zero input frames fed in a row: once the converter's filter holds nothing else, more zeros
    /// become zeros at 48 kHz without running it.
    zeros_fed: usize,
    /// Output frames owed but not yet emitted while bypassing (the fraction of the rate ratio).
    owed: f64,
    /// Input frames that took the bypass.
    bypassed: u64,
}

pub struct AudioEncoder {
    opus: opus::Encoder,
    resampler: Option<Resampler>,
    fifo: VecDeque<f32>,
    primed: bool,
    out: Vec<u8>,
    /// Slots of digital silence in a row.
    silent_run: u32,
    pub underruns: u64,
    /// Slots not sent because they were silent.
    pub skipped: u64,
}

/// One 20 ms slot's Opus packet. `slot` counts the slots of the audio clock; skipped slots leave gaps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioPacket {
    pub data: Bytes,
    pub slot: u64,
}

impl AudioEncoder {
    pub fn new(bitrate_bps: i32) -> Result<Self, AudioError> {
        let mut opus =
            opus::Encoder::new(OUT_RATE, opus::Channels::Stereo, opus::Application::Audio)
                .map_err(|e| AudioError::Opus(e.to_string()))?;
        opus.set_bitrate(opus::Bitrate::Bits(bitrate_bps))
            .map_err(|e| AudioError::Opus(e.to_string()))?;
        Ok(Self {
            opus,
            resampler: None,
            fifo: VecDeque::new(),
            primed: false,
            out: vec![0; 4000],
            silent_run: 0,
            underruns: 0,
            skipped: 0,
        })
    }

    /// Emulator frames of silence that skipped the resampler.
    pub fn bypassed_frames(&self) -> u64 {
        self.resampler.as_ref().map_or(0, |r| r.bypassed)
    }

    /// Forgets queued audio (nobody is listening); the next sound starts after a fresh cushion.
    pub fn clear(&mut self) {
        self.fifo.clear();
        self.primed = false;
    }

    /// Stereo frames waiting to be encoded.
    pub fn queued_frames(&self) -> usize {
        self.fifo.len() / 2
    }

    /// Adds one emulator frame of interleaved native samples.
    pub fn push(&mut self, rate: u32, channels: u32, samples: &[i16]) -> Result<(), AudioError> {
        if !(8_000..=192_000).contains(&rate) || !(1..=2).contains(&channels) {
            return Err(AudioError::BadFormat { rate, channels });
        }
        if !samples.len().is_multiple_of(channels as usize) {
            return Err(AudioError::Ragged {
                len: samples.len(),
                channels,
            });
        }
        if samples.is_empty() {
            return Ok(());
        }
        let fresh = !matches!(&self.resampler, Some(r) if r.rate == rate && r.channels == channels);
        if fresh {
            let src = if rate == OUT_RATE {
                None
            } else {
                Some(Converter::new(rate, channels)?)
            };
            self.resampler = Some(Resampler {
                rate,
                channels,
                src,
                zeros_fed: 0,
                owed: 0.0,
                bypassed: 0,
            });
        }
        let r = self.resampler.as_mut().expect("set above");
        let frames = samples.len() / channels as usize;
        let silent = samples.iter().all(|&s| s == 0);
        // A tenth of a second of zeros flushes any sinc filter libsamplerate has.
        let flushed = r.zeros_fed >= rate as usize / 10;
        r.zeros_fed = if silent { r.zeros_fed + frames } else { 0 };
        let resampled = match &mut r.src {
            Some(_) if silent && flushed => {
                r.bypassed += frames as u64;
                r.owed += frames as f64 * OUT_RATE as f64 / rate as f64;
                let n = r.owed as usize;
                r.owed -= n as f64;
                vec![0f32; n * channels as usize]
            }
            Some(src) => src.process(&to_float(samples))?,
            None => to_float(samples),
        };
        if channels == 1 {
            for s in resampled {
                self.fifo.push_back(s);
                self.fifo.push_back(s);
            }
        } else {
            self.fifo.extend(resampled);
        }
        let excess = self.fifo.len().saturating_sub(MAX_QUEUED_FRAMES * 2);
        self.fifo.drain(..excess);
        Ok(())
    }

    /// The next 20 ms of Opus: queued audio, or silence while there is not enough. `None` when the
    /// slot is silent and skipped (see the module notes); the encoder does no work for it.
    pub fn next_packet(&mut self) -> Result<Option<Bytes>, AudioError> {
        let need = PACKET_FRAMES * 2;
        if !self.primed && self.fifo.len() >= CUSHION_FRAMES * 2 {
            self.primed = true;
        }
        let mut pcm = vec![0f32; need];
        if self.primed && self.fifo.len() >= need {
            for (d, s) in pcm.iter_mut().zip(self.fifo.drain(..need)) {
                *d = s;
            }
        } else if self.primed {
            self.primed = false;
            self.underruns += 1;
        }
        if pcm.iter().all(|s| s.abs() < SILENCE_LEVEL) {
            self.silent_run = self.silent_run.saturating_add(1);
            if self.silent_run > SILENCE_HANGOVER
                && !(self.silent_run - SILENCE_HANGOVER).is_multiple_of(SILENCE_KEEPALIVE)
            {
                self.skipped += 1;
                return Ok(None);
            }
        } else {
            self.silent_run = 0;
        }
        let n = self
            .opus
            .encode_float(&pcm, &mut self.out)
            .map_err(|e| AudioError::Opus(e.to_string()))?;
        Ok(Some(Bytes::copy_from_slice(&self.out[..n])))
    }
}

/// Opus RTP packets for one receiver (RFC 7587): one packet per slot, the 48 kHz timestamp derived from
/// the slot number so skipped silence advances it, sequence numbers without gaps, and the marker bit on
/// the first packet after a gap (the start of a talkspurt).
pub struct OpusPacketizer {
    sequence: u16,
    timestamp0: u32,
    last_slot: Option<u64>,
}

impl OpusPacketizer {
    /// Random first values, as RFC 3550 asks, are the caller's choice.
    pub fn new(first_sequence: u16, first_timestamp: u32) -> Self {
        Self {
            sequence: first_sequence,
            timestamp0: first_timestamp,
            last_slot: None,
        }
    }

    pub fn packetize(&mut self, p: &AudioPacket) -> webrtc::rtp::packet::Packet {
        let marker = self.last_slot.is_none_or(|l| p.slot != l.wrapping_add(1));
        self.last_slot = Some(p.slot);
        let header = webrtc::rtp::header::Header {
            version: 2,
            marker,
            sequence_number: self.sequence,
            // The RTP clock wraps at 2^32 ticks; slots past that wrap with it.
            timestamp: self
                .timestamp0
                .wrapping_add((p.slot as u32).wrapping_mul(PACKET_FRAMES as u32)),
            ..Default::default()
        };
        self.sequence = self.sequence.wrapping_add(1);
        webrtc::rtp::packet::Packet {
            header,
            payload: p.data.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Power of `freq` in `x` (Goertzel), normalised by the signal's energy.
    fn tone_share(x: &[f32], rate: f32, freq: f32) -> f32 {
        let w = 2.0 * std::f32::consts::PI * freq / rate;
        let (mut s1, mut s2) = (0f32, 0f32);
        for &v in x {
            let s = v + 2.0 * w.cos() * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        let p = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
        let e: f32 = x.iter().map(|v| v * v).sum();
        p / (e * x.len() as f32 / 2.0)
    }

    fn tone(rate: u32, channels: u32, freq: f32, frames: usize, phase0: usize) -> Vec<i16> {
        let mut v = Vec::new();
        for i in 0..frames {
            let s = (((i + phase0) as f32 * freq * 2.0 * std::f32::consts::PI / rate as f32).sin()
                * 12000.0) as i16;
            for _ in 0..channels {
                v.push(s);
            }
        }
        v
    }

    fn decode_left(dec: &mut opus::Decoder, pkt: &[u8]) -> Vec<f32> {
        let mut out = vec![0f32; PACKET_FRAMES * 2];
        let n = dec.decode_float(pkt, &mut out, false).unwrap();
        assert_eq!(n, PACKET_FRAMES);
        out.chunks_exact(2).map(|c| c[0]).collect()
    }

    #[test]
    fn tones_survive_resampling_and_opus_through_a_rate_change() {
        let mut enc = AudioEncoder::new(96_000).unwrap();
        let mut dec = opus::Decoder::new(48_000, opus::Channels::Stereo).unwrap();
        // 22050 Hz mono at 440 Hz for 0.6 s, then 44100 Hz stereo at 1000 Hz, in 20 ms emulator frames.
        let mut heard = Vec::new();
        let mut phase = 0;
        for _ in 0..30 {
            enc.push(22_050, 1, &tone(22_050, 1, 440.0, 441, phase))
                .unwrap();
            phase += 441;
            heard.push((
                440.0,
                decode_left(&mut dec, &enc.next_packet().unwrap().unwrap()),
            ));
        }
        phase = 0;
        for _ in 0..30 {
            enc.push(44_100, 2, &tone(44_100, 2, 1000.0, 882, phase))
                .unwrap();
            phase += 882;
            heard.push((
                1000.0,
                decode_left(&mut dec, &enc.next_packet().unwrap().unwrap()),
            ));
        }
        // Skip the start-up and the switch-over (codec and resampler delays); the steady packets must
        // carry the tone that was sent and not the other one.
        for (i, (f, pcm)) in heard.iter().enumerate() {
            if i < 8 || (30..38).contains(&i) {
                continue;
            }
            let other = if *f == 440.0 { 1000.0 } else { 440.0 };
            let hit = tone_share(pcm, 48_000.0, *f);
            assert!(hit > 0.8, "packet {i}: {f} Hz share {hit:.2}");
            assert!(tone_share(pcm, 48_000.0, other) < 0.05, "packet {i}");
        }
        assert_eq!(enc.underruns, 0);
    }

    #[test]
    fn silence_when_nothing_comes_and_bad_formats_error() {
        let mut enc = AudioEncoder::new(64_000).unwrap();
        let mut dec = opus::Decoder::new(48_000, opus::Channels::Stereo).unwrap();
        for _ in 0..5 {
            let pcm = decode_left(&mut dec, &enc.next_packet().unwrap().unwrap());
            assert!(pcm.iter().all(|s| s.abs() < 1e-3));
        }
        assert!(matches!(
            enc.push(44_100, 3, &[0; 6]),
            Err(AudioError::BadFormat { .. })
        ));
        assert!(matches!(
            enc.push(0, 2, &[0; 6]),
            Err(AudioError::BadFormat { .. })
        ));
        assert!(matches!(
            enc.push(44_100, 2, &[0; 5]),
            Err(AudioError::Ragged { .. })
        ));
    }

    #[test]
    fn silence_thins_out_and_sound_returns_at_once() {
        let mut enc = AudioEncoder::new(96_000).unwrap();
        let mut dec = opus::Decoder::new(48_000, opus::Channels::Stereo).unwrap();
        // 0.6 s of tone, 3 s of nothing from the emulator, then the tone again.
        let mut sent = Vec::new();
        let mut heard = Vec::new();
        let mut phase = 0;
        for slot in 0..240 {
            if !(30..180).contains(&slot) {
                enc.push(48_000, 2, &tone(48_000, 2, 440.0, 960, phase))
                    .unwrap();
                phase += 960;
            }
            let pkt = enc.next_packet().unwrap();
            sent.push(pkt.is_some());
            // A receiver conceals a missing slot; in silence that must stay silent.
            let mut out = vec![0f32; PACKET_FRAMES * 2];
            let n = match &pkt {
                Some(p) => dec.decode_float(p, &mut out, false).unwrap(),
                None => dec.decode_float(&[], &mut out, false).unwrap(),
            };
            assert_eq!(n, PACKET_FRAMES);
            heard.push(out.chunks_exact(2).map(|c| c[0]).collect::<Vec<f32>>());
        }
        // The FIFO holds the cushion, so sound continues for a few slots after the last push; find where
        // silence starts from what was sent.
        let first_silent = (30..60)
            .find(|&i| heard[i].iter().all(|s| s.abs() < 1e-3))
            .unwrap();
        let quiet_from = first_silent + SILENCE_HANGOVER as usize + 2;
        let sent_in_quiet = sent[quiet_from..180].iter().filter(|&&s| s).count();
        let slots = 180 - quiet_from;
        assert!(
            sent_in_quiet <= slots / SILENCE_KEEPALIVE as usize + 1 && sent_in_quiet >= 1,
            "{sent_in_quiet} of {slots} silent slots sent"
        );
        assert_eq!(enc.skipped as usize, sent.iter().filter(|&&s| !s).count());
        assert!(enc.skipped >= 120, "skipped {}", enc.skipped);
        for (i, pcm) in heard.iter().enumerate().take(180).skip(first_silent) {
            assert!(pcm.iter().all(|s| s.abs() < 1e-3), "slot {i} not silent");
        }
        // Sound is back as soon as the cushion refills (two slots), and every slot of it is sent.
        assert!(sent[182..].iter().all(|&s| s));
        for (i, pcm) in heard.iter().enumerate().skip(190) {
            let hit = tone_share(pcm, 48_000.0, 440.0);
            assert!(hit > 0.8, "slot {i}: 440 Hz share {hit:.2}");
        }
    }

    #[test]
    fn resampler_bypass_on_silence_keeps_the_rate_and_the_tone() {
        let mut enc = AudioEncoder::new(96_000).unwrap();
        let mut dec = opus::Decoder::new(48_000, opus::Channels::Stereo).unwrap();
        // 22050 Hz mono: 0.4 s of tone, 2 s of zeros (bypassed once the filter is flushed), 1 s of tone.
        let (mut produced, mut phase) = (0usize, 0usize);
        let mut heard = Vec::new();
        for slot in 0..170 {
            let frame = if (20..120).contains(&slot) {
                vec![0i16; 441]
            } else {
                let t = tone(22_050, 1, 440.0, 441, phase);
                phase += 441;
                t
            };
            let before = enc.queued_frames();
            enc.push(22_050, 1, &frame).unwrap();
            produced += enc.queued_frames() - before;
            let mut out = vec![0f32; PACKET_FRAMES * 2];
            match enc.next_packet().unwrap() {
                Some(p) => dec.decode_float(&p, &mut out, false).unwrap(),
                None => dec.decode_float(&[], &mut out, false).unwrap(),
            };
            heard.push(out.chunks_exact(2).map(|c| c[0]).collect::<Vec<f32>>());
        }
        // 441 frames at 22050 Hz are exactly 960 at 48 kHz; the converter may hold back its delay.
        let want = 170 * PACKET_FRAMES;
        assert!(
            produced <= want && produced + 64 >= want,
            "{produced} of {want} frames"
        );
        assert_eq!(enc.underruns, 0);
        assert!(enc.skipped > 50, "skipped {}", enc.skipped);
        let bypassed = enc.bypassed_frames();
        assert!(bypassed >= 90 * 441, "{bypassed} frames bypassed");
        for (i, pcm) in heard.iter().enumerate().skip(130) {
            let hit = tone_share(pcm, 48_000.0, 440.0);
            assert!(hit > 0.8, "slot {i}: 440 Hz share {hit:.2}");
        }
    }

    #[test]
    fn opus_rtp_keeps_time_across_skipped_slots() {
        let mut p = OpusPacketizer::new(65_534, u32::MAX - 960);
        let pkts: Vec<_> = [0u64, 1, 2, 40, 41]
            .iter()
            .map(|&slot| {
                p.packetize(&AudioPacket {
                    data: Bytes::from_static(&[0xF8, 0xFF, 0xFE]),
                    slot,
                })
            })
            .collect();
        let seq: Vec<u16> = pkts.iter().map(|p| p.header.sequence_number).collect();
        assert_eq!(seq, vec![65_534, 65_535, 0, 1, 2]);
        let ts: Vec<u32> = pkts.iter().map(|p| p.header.timestamp).collect();
        assert_eq!(
            ts,
            vec![
                u32::MAX - 960,
                u32::MAX,
                959,
                959 + 38 * 960,
                959 + 39 * 960
            ]
        );
        let marker: Vec<bool> = pkts.iter().map(|p| p.header.marker).collect();
        assert_eq!(marker, vec![true, false, false, true, false]);
        assert!(pkts.iter().all(|p| p.payload[..] == [0xF8, 0xFF, 0xFE]));
    }

    #[test]
    fn queue_stays_bounded() {
        let mut enc = AudioEncoder::new(64_000).unwrap();
        for _ in 0..100 {
            enc.push(48_000, 2, &[0; 1920]).unwrap();
        }
        assert!(enc.queued_frames() <= MAX_QUEUED_FRAMES);
    }

    #[test]
    fn big_endian_conversion() {
        let mut out = Vec::new();
        s16be_to_native(&[0x12, 0x34, 0xFF, 0xFE], &mut out);
        assert_eq!(out, vec![0x1234, -2]);
    }
}
