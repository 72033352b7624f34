//! PNG mode: the changed rectangle as an RGB PNG, sent on the unordered, unreliable DataChannel.
//!
//! Messages can be lost or arrive out of order, so the planner never relies on one message: each message
//! covers the union of the last few frames' dirty rectangles (a loss or a late older message is painted
//! over by the next ones), this repair goes on for a few frames after the screen stops changing, and a full
//! frame goes out periodically. A stale region therefore lives at most `full_every`, normally a frame.

use super::{FrameRef, Rect, VideoError};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Largest PNG put into one DataChannel message; bigger rectangles are cut into pieces.
///
/// With `maxRetransmits: 0` an SCTP message is abandoned once its first transmission is out, and the
/// FORWARD-TSN that follows makes the receiver discard any message it has only partly received, so a
/// message spread over more chunks than the congestion window lets out at once is lost every time.
/// A message that fits one DATA chunk (1200 bytes of payload at webrtc-rs's 1228-byte SCTP MTU, minus
/// the 113-byte header) is delivered or lost on its own, which is what the repair scheme below assumes.
pub const MAX_PNG_MESSAGE: usize = 1080;

/// Encodes `r` of `frame` as an 8-bit RGB PNG with fast compression into `out`.
pub fn encode_rect(
    frame: &FrameRef<'_>,
    r: Rect,
    out: &mut Vec<u8>,
    rgb: &mut Vec<u8>,
) -> Result<(), VideoError> {
    frame.validate()?;
    let r = r.clamp_to(frame.width, frame.height);
    if r.is_empty() {
        return Err(VideoError::Png("empty rectangle".into()));
    }
    rgb.clear();
    rgb.reserve(r.width as usize * r.height as usize * 3);
    let (ro, go, bo) = match frame.format {
        super::PixelFormat::Argb => (1, 2, 3),
        super::PixelFormat::Bgra => (2, 1, 0),
    };
    for y in r.y..r.y + r.height {
        let start = y as usize * frame.stride + r.x as usize * 4;
        for p in frame.data[start..start + r.width as usize * 4].chunks_exact(4) {
            rgb.extend_from_slice(&[p[ro], p[go], p[bo]]);
        }
    }
    out.clear();
    let mut enc = png::Encoder::new(&mut *out, r.width, r.height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.set_compression(png::Compression::Fast);
    let mut w = enc
        .write_header()
        .map_err(|e| VideoError::Png(e.to_string()))?;
    w.write_image_data(rgb)
        .map_err(|e| VideoError::Png(e.to_string()))?;
    w.finish().map_err(|e| VideoError::Png(e.to_string()))?;
    Ok(())
}

/// Cuts a rectangle into pieces whose PNGs fit `max` bytes. The piece size comes from the bytes per
/// pixel seen so far, so most pieces are encoded once; a piece that still comes out too big is halved.
#[derive(Debug)]
pub struct PngBander {
    max: usize,
    bytes_per_px: f64,
    rgb: Vec<u8>,
}

impl PngBander {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            bytes_per_px: 0.05,
            rgb: Vec::new(),
        }
    }

    /// The pieces of `r` (clamped to the frame), top to bottom, left to right, each with its PNG.
    pub fn encode(
        &mut self,
        frame: &FrameRef<'_>,
        r: Rect,
    ) -> Result<Vec<(Rect, Vec<u8>)>, VideoError> {
        let r = r.clamp_to(frame.width, frame.height);
        let mut out = Vec::new();
        if r.is_empty() {
            return Ok(out);
        }
        // Before planning pieces: a frame whose sizes lie about its buffer would otherwise have its
        // whole claimed area (up to 2^32 × 2^32) cut into pieces first and fail only when encoding.
        frame.validate()?;
        // Aim at 70% of the limit so small variations rarely force a second encode.
        let budget = ((self.max as f64 * 0.7) / self.bytes_per_px.max(1e-3)).max(1.0) as u64;
        let mut todo = Vec::new();
        if budget >= r.width as u64 {
            let rows = (budget / r.width as u64).clamp(1, r.height as u64) as u32;
            let mut y = r.y + r.height;
            while y > r.y {
                let top = r.y.max(y.saturating_sub(rows));
                todo.push(Rect::new(r.x, top, r.width, y - top));
                y = top;
            }
        } else {
            let cols = budget as u32;
            for y in (r.y..r.y + r.height).rev() {
                let mut x = r.x + r.width;
                while x > r.x {
                    let left = r.x.max(x.saturating_sub(cols));
                    todo.push(Rect::new(left, y, x - left, 1));
                    x = left;
                }
            }
        }
        let (mut bytes, mut px) = (0usize, 0u64);
        while let Some(p) = todo.pop() {
            let mut png = Vec::new();
            encode_rect(frame, p, &mut png, &mut self.rgb)?;
            bytes += png.len();
            px += p.width as u64 * p.height as u64;
            if png.len() > self.max && p.height > 1 {
                let top = p.height / 2;
                todo.push(Rect::new(p.x, p.y + top, p.width, p.height - top));
                todo.push(Rect::new(p.x, p.y, p.width, top));
            } else if png.len() > self.max && p.width > 1 {
                let left = p.width / 2;
                todo.push(Rect::new(p.x + left, p.y, p.width - left, p.height));
                todo.push(Rect::new(p.x, p.y, left, p.height));
            } else {
                out.push((p, png));
            }
        }
        if px > 0 {
            let seen = bytes as f64 / px as f64;
            self.bytes_per_px = 0.5 * self.bytes_per_px + 0.5 * seen;
        }
        Ok(out)
    }
}

/// Decides which rectangle each frame sends.
#[derive(Debug)]
pub struct PngPlanner {
    history: VecDeque<Rect>,
    window: usize,
    full_every: Duration,
    last_full: Option<Instant>,
    size: (u32, u32),
}

impl PngPlanner {
    /// `window`: how many frames a change is re-sent for; `full_every`: period of full frames.
    pub fn new(window: usize, full_every: Duration) -> Self {
        Self {
            history: VecDeque::new(),
            window: window.max(1),
            full_every,
            last_full: None,
            size: (0, 0),
        }
    }

    /// A new viewer needs everything.
    pub fn force_full(&mut self) {
        self.last_full = None;
    }

    /// The rectangle to send for a frame of `width`×`height` whose own dirty rectangle is `dirty`.
    pub fn plan(&mut self, now: Instant, dirty: Rect, width: u32, height: u32) -> Option<Rect> {
        let full = Rect::new(0, 0, width, height);
        if self.size != (width, height) {
            self.size = (width, height);
            self.last_full = None;
            self.history.clear();
        }
        if self
            .last_full
            .is_none_or(|t| now.duration_since(t) >= self.full_every)
        {
            self.last_full = Some(now);
            self.history.clear();
            return Some(full);
        }
        self.history.push_back(dirty.clamp_to(width, height));
        while self.history.len() > self.window {
            self.history.pop_front();
        }
        let u = self.history.iter().fold(Rect::default(), |a, r| a.union(r));
        (!u.is_empty()).then_some(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::PixelFormat;

    fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
        let mut r = dec.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    #[test]
    fn rectangle_round_trips_through_a_png_decoder() {
        let (w, h, stride) = (40u32, 30u32, 200usize);
        for fmt in [PixelFormat::Bgra, PixelFormat::Argb] {
            let mut data = vec![0u8; stride * h as usize];
            for y in 0..h as usize {
                for x in 0..w as usize {
                    let (r, g, b) = (x as u8 * 5, y as u8 * 7, (x ^ y) as u8);
                    let px = if fmt == PixelFormat::Bgra {
                        [b, g, r, 255]
                    } else {
                        [255, r, g, b]
                    };
                    data[y * stride + x * 4..][..4].copy_from_slice(&px);
                }
            }
            let f = FrameRef {
                data: &data,
                width: w,
                height: h,
                stride,
                format: fmt,
            };
            let mut out = Vec::new();
            encode_rect(&f, Rect::new(3, 4, 10, 6), &mut out, &mut Vec::new()).unwrap();
            let (pw, ph, px) = decode(&out);
            assert_eq!((pw, ph), (10, 6));
            for y in 0..6u32 {
                for x in 0..10u32 {
                    let (r, g, b) = f.rgb_at(3 + x, 4 + y);
                    let i = ((y * 10 + x) * 3) as usize;
                    assert_eq!(&px[i..i + 3], &[r, g, b]);
                }
            }
        }
    }

    #[test]
    fn a_frame_lying_about_its_size_is_refused_before_any_piece_is_planned() {
        // Found by the png_dirty_rect fuzzer: 16.9 M × 168 M pixels claimed over a 1 KiB buffer
        // once made the bander list billions of pieces before the first encode failed.
        let data = vec![0u8; 1024];
        let f = FrameRef {
            data: &data,
            width: 0x0102_1e28,
            height: 0x0a04_0301,
            stride: 64,
            format: PixelFormat::Bgra,
        };
        let mut b = PngBander::new(MAX_PNG_MESSAGE);
        assert!(b.encode(&f, Rect::new(0, 0, u32::MAX, u32::MAX)).is_err());
        // Nothing to send stays an empty answer, as for an honest frame.
        assert!(b.encode(&f, Rect::default()).unwrap().is_empty());
    }

    #[test]
    fn large_rectangles_split_into_bands_that_tile_it() {
        let (w, h) = (512u32, 342u32);
        // Noise does not compress: the full frame is far above the limit.
        let mut x = 0x1234_5678u32;
        let data: Vec<u8> = (0..w * h * 4)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let f = FrameRef {
            data: &data,
            width: w,
            height: h,
            stride: w as usize * 4,
            format: PixelFormat::Bgra,
        };
        let bands = PngBander::new(60 * 1024)
            .encode(&f, Rect::new(0, 0, w, h))
            .unwrap();
        assert!(bands.len() > 1);
        let mut y = 0;
        for (r, png) in &bands {
            assert!(png.len() <= 60 * 1024);
            assert_eq!((r.x, r.y, r.width), (0, y, w));
            y += r.height;
            assert_eq!(decode(png).1, r.height);
        }
        assert_eq!(y, h);
        // With the real limit even single rows of noise split, and the pieces still tile the frame.
        let pieces = PngBander::new(MAX_PNG_MESSAGE)
            .encode(&f, Rect::new(0, 0, w, h))
            .unwrap();
        let mut covered = vec![0u8; (w * h) as usize];
        for (r, png) in &pieces {
            assert!(
                png.len() <= MAX_PNG_MESSAGE || r.width == 1,
                "{r:?}: {} bytes",
                png.len()
            );
            for y in r.y..r.y + r.height {
                for x in r.x..r.x + r.width {
                    covered[(y * w + x) as usize] += 1;
                }
            }
        }
        assert!(covered.iter().all(|&c| c == 1));
    }

    #[test]
    fn planner_resends_recent_changes_and_full_frames() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut p = PngPlanner::new(3, Duration::from_secs(2));
        assert_eq!(
            p.plan(ms(0), Rect::default(), 512, 342),
            Some(Rect::new(0, 0, 512, 342))
        );
        let a = Rect::new(10, 10, 8, 8);
        let b = Rect::new(100, 50, 8, 8);
        assert_eq!(p.plan(ms(16), a, 512, 342), Some(a));
        assert_eq!(
            p.plan(ms(33), b, 512, 342),
            Some(a.union(&b)),
            "a lost message of a is repaired"
        );
        // The screen stops changing: the recent changes are still re-sent for the window, then nothing.
        assert_eq!(p.plan(ms(50), Rect::default(), 512, 342), Some(a.union(&b)));
        assert_eq!(p.plan(ms(66), Rect::default(), 512, 342), Some(b));
        assert_eq!(p.plan(ms(83), Rect::default(), 512, 342), None);
        assert_eq!(
            p.plan(ms(2100), Rect::default(), 512, 342),
            Some(Rect::new(0, 0, 512, 342))
        );
        // A new size or a new viewer gets a full frame at once.
        assert_eq!(
            p.plan(ms(2116), Rect::default(), 640, 480),
            Some(Rect::new(0, 0, 640, 480))
        );
        p.force_full();
        assert_eq!(
            p.plan(ms(2132), a, 640, 480),
            Some(Rect::new(0, 0, 640, 480))
        );
    }
}
