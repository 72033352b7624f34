//! H.264 for screen content with openh264: Constrained Baseline (the `42e01f` the SDP offers), one slice
//! per frame, explicit bitrate and frame rate (with openh264's defaults it silently skips frames), IDR only
//! when asked (new viewer, PLI). One encoder serves every viewer.

use super::convert::I420;
use super::VideoError;
use bytes::Bytes;
use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Level,
    Profile, QpRange, RateControlMode, UsageType,
};
use openh264::{OpenH264API, Timestamp};
use std::time::{Duration, Instant};

/// One encoded access unit (Annex-B byte stream).
#[derive(Debug, Clone)]
pub struct EncodedFrame {
    pub data: Bytes,
    pub keyframe: bool,
}

/// Something that turns pictures into a compressed stream (H.264 today, AV1 later).
pub trait PictureEncoder: Send {
    /// Encodes `pic`; `None` when the encoder chose to drop the frame.
    fn encode(
        &mut self,
        pic: &I420,
        keyframe: bool,
        timestamp_ms: u64,
    ) -> Result<Option<EncodedFrame>, VideoError>;

    /// How long the latest `encode` took; it spaces the refreshes of a static screen (see
    /// [`super::policy`]). The encoder measures it, so the pipeline around it needs no clock.
    fn last_encode_time(&self) -> Duration {
        Duration::ZERO
    }
}

#[derive(Debug, Clone, Copy)]
pub struct H264Config {
    /// Target bitrate; `None` scales with the picture size.
    pub bitrate_bps: Option<u32>,
    pub max_fps: f32,
}

impl Default for H264Config {
    fn default() -> Self {
        Self {
            bitrate_bps: None,
            max_fps: 60.0,
        }
    }
}

/// Screen content needs more bits than camera video for legible text: about 4 bits per pixel per second,
/// at least 1.5 Mbit/s (≈1.5 Mbit/s at 512×342, 8.3 Mbit/s at 1080p).
pub fn default_bitrate(width: usize, height: usize) -> u32 {
    ((width * height * 4) as u32).max(1_500_000)
}

pub struct H264Encoder {
    cfg: H264Config,
    enc: Option<(Encoder, usize, usize)>,
    out: Vec<u8>,
    took: Duration,
}

impl H264Encoder {
    pub fn new(cfg: H264Config) -> Self {
        Self {
            cfg,
            enc: None,
            out: Vec::new(),
            took: Duration::ZERO,
        }
    }

    fn make(&self, w: usize, h: usize) -> Result<Encoder, VideoError> {
        let mbs = w.div_ceil(16) * h.div_ceil(16);
        // Level 3.1 allows 3600 macroblocks (1280×720); larger pictures need 4.0.
        let level = if mbs <= 3600 {
            Level::Level_3_1
        } else {
            Level::Level_4_0
        };
        let config = EncoderConfig::new()
            .usage_type(UsageType::ScreenContentRealTime)
            .profile(Profile::Baseline)
            .level(level)
            .bitrate(BitRate::from_bps(
                self.cfg
                    .bitrate_bps
                    .unwrap_or_else(|| default_bitrate(w, h)),
            ))
            .max_frame_rate(FrameRate::from_hz(self.cfg.max_fps))
            .rate_control_mode(RateControlMode::Bitrate)
            .skip_frames(false)
            .intra_frame_period(IntraFramePeriod::from_num_frames(0))
            .complexity(Complexity::Low)
            .qp(QpRange::new(10, 24))
            .scene_change_detect(true)
            .adaptive_quantization(false)
            .background_detection(false)
            .num_threads(1);
        Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| VideoError::Encoder(e.to_string()))
    }
}

impl PictureEncoder for H264Encoder {
    fn encode(
        &mut self,
        pic: &I420,
        keyframe: bool,
        timestamp_ms: u64,
    ) -> Result<Option<EncodedFrame>, VideoError> {
        let started = Instant::now();
        let r = self.encode_timed(pic, keyframe, timestamp_ms);
        self.took = started.elapsed();
        r
    }

    fn last_encode_time(&self) -> Duration {
        self.took
    }
}

impl H264Encoder {
    fn encode_timed(
        &mut self,
        pic: &I420,
        keyframe: bool,
        timestamp_ms: u64,
    ) -> Result<Option<EncodedFrame>, VideoError> {
        // A new size gets a new encoder, so its first frame is an IDR with fresh SPS/PPS.
        let fresh = !matches!(&self.enc, Some((_, w, h)) if *w == pic.width && *h == pic.height);
        if fresh {
            self.enc = Some((self.make(pic.width, pic.height)?, pic.width, pic.height));
        }
        let (enc, _, _) = self.enc.as_mut().expect("created above");
        if keyframe && !fresh {
            enc.force_intra_frame();
        }
        let bs = enc
            .encode_at(pic, Timestamp::from_millis(timestamp_ms))
            .map_err(|e| VideoError::Encoder(e.to_string()))?;
        let kind = bs.frame_type();
        tracing::trace!(?kind, "encoded");
        if matches!(kind, FrameType::Skip | FrameType::Invalid) {
            return Ok(None);
        }
        self.out.clear();
        bs.write_vec(&mut self.out);
        if self.out.is_empty() {
            return Ok(None);
        }
        Ok(Some(EncodedFrame {
            data: Bytes::copy_from_slice(&self.out),
            keyframe: matches!(kind, FrameType::IDR | FrameType::I),
        }))
    }
}

/// Splits an Annex-B stream into NAL units (without start codes).
pub fn nal_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i] == 0 && stream[i + 1] == 0 && stream[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &s) in starts.iter().enumerate() {
        let mut e = starts.get(k + 1).map_or(stream.len(), |&n| n - 3);
        // A 4-byte start code leaves one zero before the next 3-byte one.
        while k + 1 < starts.len() && e > s && stream[e - 1] == 0 {
            e -= 1;
        }
        out.push(&stream[s..e]);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use openh264::decoder::Decoder;
    use openh264::formats::YUVSource;

    /// A Mac-like screen: a menu bar, then lines of 5×7 pseudo-glyphs in a 6×12 cell grid, black on
    /// white; `typed` more glyphs appear at the end of the first text line (typing).
    pub(crate) fn test_picture(w: usize, h: usize, typed: usize) -> I420 {
        let mut p = I420::new(w, h);
        p.y.fill(235);
        for x in 0..w {
            p.y[19 * w + x] = 16; // menu bar underline
        }
        let mut seed = 0x2545_F491u32;
        for (line, y0) in (24..h.saturating_sub(12)).step_by(12).enumerate() {
            let glyphs = if line == 0 {
                20 + typed
            } else {
                (w / 6).saturating_sub(4 + line % 7 * 5)
            };
            for g in 0..glyphs.min(w / 6 - 1) {
                seed ^= seed << 13;
                seed ^= seed >> 17;
                seed ^= seed << 5;
                for gy in 0..7 {
                    for gx in 0..5 {
                        if (seed >> ((gy * 5 + gx) % 31)) & 1 == 1 {
                            p.y[(y0 + gy) * w + 6 + g * 6 + gx] = 16;
                        }
                    }
                }
            }
        }
        p
    }

    fn psnr(a: &[u8], b: &[u8]) -> f64 {
        let mse: f64 = a
            .iter()
            .zip(b)
            .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
            .sum::<f64>()
            / a.len() as f64;
        if mse == 0.0 {
            return 99.0;
        }
        10.0 * (255.0f64 * 255.0 / mse).log10()
    }

    #[test]
    fn constrained_baseline_stream_that_openh264_decodes_faithfully() {
        let (w, h) = (512, 342);
        let mut enc = H264Encoder::new(H264Config::default());
        let mut dec = Decoder::new().unwrap();
        let mut first = true;
        for i in 0..5 {
            let pic = test_picture(w, h, i);
            let f = enc
                .encode(&pic, false, i as u64 * 16)
                .unwrap()
                .expect("no frame skipped");
            assert_eq!(f.keyframe, first, "frame {i}");
            let nals = nal_units(&f.data);
            if first {
                let sps = nals
                    .iter()
                    .find(|n| n[0] & 0x1F == 7)
                    .expect("IDR carries an SPS");
                assert_eq!(sps[1], 66, "profile_idc baseline");
                assert_eq!(sps[3], 31, "level 3.1");
                assert!(nals.iter().any(|n| n[0] & 0x1F == 5), "IDR slice");
            }
            first = false;
            let decoded = dec
                .decode(&f.data)
                .unwrap()
                .expect("a picture per access unit");
            let (dw, dh) = decoded.dimensions();
            assert_eq!((dw, dh), (w, h));
            let (ys, _, _) = decoded.strides();
            let mut y_plane = Vec::with_capacity(w * h);
            for row in 0..h {
                y_plane.extend_from_slice(&decoded.y()[row * ys..row * ys + w]);
            }
            let q = psnr(&y_plane, &pic.y);

            assert!(q > 35.0, "frame {i}: PSNR {q:.1} dB");
        }
        let k = enc
            .encode(&test_picture(w, h, 9), true, 200)
            .unwrap()
            .unwrap();
        assert!(k.keyframe, "forced keyframe");
        assert!(nal_units(&k.data).iter().any(|n| n[0] & 0x1F == 5));
    }

    #[test]
    fn size_change_restarts_with_an_idr() {
        let mut enc = H264Encoder::new(H264Config::default());
        assert!(
            enc.encode(&test_picture(64, 48, 0), false, 0)
                .unwrap()
                .unwrap()
                .keyframe
        );
        assert!(
            !enc.encode(&test_picture(64, 48, 1), false, 16)
                .unwrap()
                .unwrap()
                .keyframe
        );
        assert!(
            enc.encode(&test_picture(96, 64, 1), false, 32)
                .unwrap()
                .unwrap()
                .keyframe
        );
    }

    #[test]
    fn nal_splitting() {
        let s = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 9,
        ];
        assert_eq!(
            nal_units(&s),
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 9][..]]
        );
    }
}
