//! The audio frame ring (3 frames of at most 20 ms), both ends. Samples are stored big-endian
//! S16 as the Mac makes them; the API speaks native `i16`.

use crate::abi::*;
use crate::error::IpcError;
use crate::shm::ShmMap;
use std::sync::atomic::Ordering::SeqCst;

/// Sample rates the v4 server understands.
pub const VALID_RATES: [u32; 4] = [11_025, 22_050, 44_100, 48_000];

/// One audio frame, owned, native-endian samples.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AudioFrame {
    pub rate: u32,
    pub channels: u32,
    /// Interleaved samples (`frames × channels`).
    pub samples: Vec<i16>,
    pub timestamp_us: u64,
    /// True when the ring was empty and this is the v4 silence frame (48 kHz stereo, 960 zeros).
    pub silence: bool,
}

impl AudioFrame {
    /// The v4 silence frame.
    pub fn silence() -> AudioFrame {
        AudioFrame {
            rate: 48_000,
            channels: 2,
            samples: vec![0; 960 * 2],
            timestamp_us: 0,
            silence: true,
        }
    }

    /// Samples per channel.
    pub fn frames(&self) -> usize {
        self.samples.len() / self.channels.max(1) as usize
    }
}

/// Checks the parameters of a frame to publish; returns samples per channel.
pub(crate) fn validate_push(
    rate: u32,
    channels: u32,
    interleaved: &[i16],
) -> Result<u32, IpcError> {
    if !VALID_RATES.contains(&rate) {
        return Err(IpcError::InvalidAudio(format!(
            "sample rate {rate} is not 11025/22050/44100/48000"
        )));
    }
    if !(1..=MACEMU_AUDIO_MAX_CHANNELS).contains(&channels) {
        return Err(IpcError::InvalidAudio(format!(
            "{channels} channels (1 or 2 allowed)"
        )));
    }
    if !interleaved.len().is_multiple_of(channels as usize) {
        return Err(IpcError::InvalidAudio(format!(
            "{} samples do not divide into {channels} channels",
            interleaved.len()
        )));
    }
    let per_channel = interleaved.len() / channels as usize;
    if per_channel > MACEMU_AUDIO_MAX_SAMPLES_PER_FRAME as usize {
        return Err(IpcError::InvalidAudio(format!(
            "{per_channel} samples per channel (at most 960)"
        )));
    }
    Ok(per_channel as u32)
}

/// Byte offset of ring slot `i`.
fn slot(i: usize) -> usize {
    off::AUDIO_RING + i * off::AUDIO_FRAME_SIZE
}

fn ring_index(map: &ShmMap, offset: usize, field: &'static str) -> Result<usize, IpcError> {
    let v = map.u32(offset).load(SeqCst);
    if v as usize >= MACEMU_AUDIO_FRAME_RING_SIZE {
        return Err(IpcError::CorruptShm {
            field,
            value: v.into(),
        });
    }
    Ok(v as usize)
}

/// Producer side: writes slot `w` unless the ring is full. `w` is the producer's own index.
pub(crate) fn push(
    map: &ShmMap,
    w: &mut usize,
    rate: u32,
    channels: u32,
    interleaved: &[i16],
    timestamp_us: u64,
) -> Result<bool, IpcError> {
    let per_channel = validate_push(rate, channels, interleaved)?;
    let r = ring_index(map, off::AUDIO_R, "audio_frame_read_idx")?;
    let next = (*w + 1) % MACEMU_AUDIO_FRAME_RING_SIZE;
    if next == r {
        return Ok(false);
    }
    let mut frame = MacEmuAudioFrame {
        sample_rate: rate,
        channels,
        samples: per_channel,
        format: MACEMU_AUDIO_FORMAT_PCM_S16,
        timestamp_us,
        _padding: [0; 2],
        data: [0; MACEMU_AUDIO_MAX_FRAME_SIZE],
    };
    for (dst, s) in frame.data.chunks_exact_mut(2).zip(interleaved) {
        dst.copy_from_slice(&s.to_be_bytes());
    }
    let used = off::AF_DATA + interleaved.len() * 2;
    map.write_bytes(slot(*w), &bytemuck::bytes_of(&frame)[..used]);
    // Legacy per-frame fields, for v4 tools that display them.
    map.u32(off::AUDIO_SAMPLE_RATE).store(rate, SeqCst);
    map.u32(off::AUDIO_CHANNELS).store(channels, SeqCst);
    map.u32(off::AUDIO_FORMAT)
        .store(MACEMU_AUDIO_FORMAT_PCM_S16, SeqCst);
    map.u32(off::AUDIO_SAMPLES_IN_FRAME)
        .store(per_channel, SeqCst);
    map.u64(off::AUDIO_TIMESTAMP_US).store(timestamp_us, SeqCst);
    map.u64(off::AUDIO_FRAME_COUNT).fetch_add(1, SeqCst);
    *w = next;
    // Publishing the write index makes the slot visible (release, via SeqCst).
    map.u32(off::AUDIO_W).store(next as u32, SeqCst);
    Ok(true)
}

/// Consumer side: whether a frame is waiting. Corrupt indices count as waiting, so the
/// caller's next [`pop`] reports them.
pub(crate) fn pending(map: &ShmMap) -> bool {
    match (
        ring_index(map, off::AUDIO_R, "audio_frame_read_idx"),
        ring_index(map, off::AUDIO_W, "audio_frame_write_idx"),
    ) {
        (Ok(r), Ok(w)) => r != w,
        _ => true,
    }
}

/// Consumer side: the next frame, or silence when the ring is empty. Every field is validated.
pub(crate) fn pop(map: &ShmMap) -> Result<AudioFrame, IpcError> {
    let r = ring_index(map, off::AUDIO_R, "audio_frame_read_idx")?;
    let w = ring_index(map, off::AUDIO_W, "audio_frame_write_idx")?;
    if r == w {
        return Ok(AudioFrame::silence());
    }
    let mut raw = MacEmuAudioFrame::zeroed();
    map.read_bytes(slot(r), bytemuck::bytes_of_mut(&mut raw));
    let bad = |field: &'static str, value: u32| IpcError::CorruptShm {
        field,
        value: value.into(),
    };
    if !VALID_RATES.contains(&raw.sample_rate) {
        return Err(bad("audio_frame.sample_rate", raw.sample_rate));
    }
    if !(1..=MACEMU_AUDIO_MAX_CHANNELS).contains(&raw.channels) {
        return Err(bad("audio_frame.channels", raw.channels));
    }
    if raw.samples > MACEMU_AUDIO_MAX_SAMPLES_PER_FRAME {
        return Err(bad("audio_frame.samples", raw.samples));
    }
    if raw.format != MACEMU_AUDIO_FORMAT_PCM_S16 {
        return Err(bad("audio_frame.format", raw.format));
    }
    let n = (raw.samples * raw.channels) as usize;
    let samples = raw.data[..n * 2]
        .chunks_exact(2)
        .map(|b| i16::from_be_bytes([b[0], b[1]]))
        .collect();
    map.u32(off::AUDIO_R)
        .store(((r + 1) % MACEMU_AUDIO_FRAME_RING_SIZE) as u32, SeqCst);
    Ok(AudioFrame {
        rate: raw.sample_rate,
        channels: raw.channels,
        samples,
        timestamp_us: raw.timestamp_us,
        silence: false,
    })
}

/// Writes the v4 silence frame (48 kHz, stereo, 960 zero samples).
use bytemuck::Zeroable;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_validation() {
        assert!(validate_push(44_100, 2, &[0; 1764]).is_ok());
        assert!(validate_push(44_100, 2, &[0; 1920]).is_ok());
        assert!(matches!(
            validate_push(8000, 1, &[0; 10]),
            Err(IpcError::InvalidAudio(_))
        ));
        assert!(matches!(
            validate_push(48_000, 3, &[0; 9]),
            Err(IpcError::InvalidAudio(_))
        ));
        assert!(matches!(
            validate_push(48_000, 0, &[]),
            Err(IpcError::InvalidAudio(_))
        ));
        assert!(matches!(
            validate_push(48_000, 2, &[0; 3]),
            Err(IpcError::InvalidAudio(_))
        ));
        assert!(matches!(
            validate_push(48_000, 1, &[0; 961]),
            Err(IpcError::InvalidAudio(_))
        ));
    }
}
