//! ARGB/BGRA → I420 (BT.601, limited range: what an H.264 stream without VUI is decoded as).
//!
//! The I420 picture persists between frames and only the rows of the dirty rectangle are converted again,
//! so a blinking caret costs a few rows instead of the whole screen.

use super::{FrameRef, PixelFormat, Rect, VideoError};
use yuv::{BufferStoreMut, YuvConversionMode, YuvPlanarImageMut, YuvRange, YuvStandardMatrix};

/// A planar 4:2:0 picture with even dimensions.
#[derive(Debug, Clone)]
pub struct I420 {
    pub width: usize,
    pub height: usize,
    pub y: Vec<u8>,
    pub u: Vec<u8>,
    pub v: Vec<u8>,
}

impl I420 {
    pub fn new(width: usize, height: usize) -> Self {
        let (cw, ch) = (width / 2, height / 2);
        Self {
            width,
            height,
            y: vec![16; width * height],
            u: vec![128; cw * ch],
            v: vec![128; cw * ch],
        }
    }
}

impl openh264::formats::YUVSource for I420 {
    fn dimensions(&self) -> (usize, usize) {
        (self.width, self.height)
    }
    fn strides(&self) -> (usize, usize, usize) {
        (self.width, self.width / 2, self.width / 2)
    }
    fn y(&self) -> &[u8] {
        &self.y
    }
    fn u(&self) -> &[u8] {
        &self.u
    }
    fn v(&self) -> &[u8] {
        &self.v
    }
}

/// Keeps the I420 picture of the latest frame up to date.
#[derive(Debug, Default)]
pub struct Converter {
    pic: Option<I420>,
    scratch: Vec<u8>,
}

impl Converter {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current picture, if any frame was converted.
    pub fn picture(&self) -> Option<&I420> {
        self.pic.as_ref()
    }

    /// Converts `dirty` of `frame` (the whole frame when the size changed or `full` is set). The encoded
    /// size is the frame size rounded down to even numbers. Returns true when the picture was (re)created.
    pub fn update(
        &mut self,
        frame: &FrameRef<'_>,
        dirty: Rect,
        full: bool,
    ) -> Result<bool, VideoError> {
        frame.validate()?;
        let (w, h) = ((frame.width & !1) as usize, (frame.height & !1) as usize);
        let fresh = !matches!(&self.pic, Some(p) if p.width == w && p.height == h);
        if fresh {
            self.pic = Some(I420::new(w, h));
        }
        let rows = if fresh || full {
            0..h
        } else {
            let d = dirty.clamp_to(w as u32, h as u32);
            if d.is_empty() {
                return Ok(false);
            }
            // Chroma rows cover two luma rows: widen to even boundaries.
            let y0 = (d.y as usize) & !1;
            let y1 = ((d.y + d.height) as usize + 1).min(h) & !1;
            y0..y1.max(y0 + 2).min(h)
        };
        let pic = self.pic.as_mut().expect("allocated above");
        convert_rows(frame, pic, rows.start, rows.end, &mut self.scratch)?;
        Ok(fresh)
    }
}

/// Converts luma rows `y0..y1` (both even) of `frame` into `pic`.
fn convert_rows(
    frame: &FrameRef<'_>,
    pic: &mut I420,
    y0: usize,
    y1: usize,
    scratch: &mut Vec<u8>,
) -> Result<(), VideoError> {
    if y1 <= y0 {
        return Ok(());
    }
    let src = &frame.data[y0 * frame.stride..];
    match frame.format {
        PixelFormat::Bgra => convert_block(pic, y0, y1, src, frame.stride, true),
        PixelFormat::Argb => {
            // A,R,G,B read one byte later is R,G,B,(next pixel's A): RGBA with a don't-care alpha, no copy.
            // The converter wants whole row pairs in its slice, which the byte shift costs the last pair,
            // so that pair goes through a swizzled copy.
            let head = y1 - y0 - 2;
            if head > 0 {
                convert_block(pic, y0, y0 + head, &src[1..], frame.stride, false)?;
            }
            let w = pic.width;
            scratch.clear();
            for row in head..head + 2 {
                let r = &src[row * frame.stride..row * frame.stride + w * 4];
                for p in r.chunks_exact(4) {
                    scratch.extend_from_slice(&[p[1], p[2], p[3], 255]);
                }
            }
            convert_block(pic, y0 + head, y1, scratch, w * 4, false)
        }
    }
}

/// Converts rows `y0..y1` of `pic` from `src` (BGRA when `bgra`, else RGBA) whose first row is `y0`.
fn convert_block(
    pic: &mut I420,
    y0: usize,
    y1: usize,
    src: &[u8],
    stride: usize,
    bgra: bool,
) -> Result<(), VideoError> {
    let w = pic.width;
    let cw = w / 2;
    let mut planar = YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(&mut pic.y[y0 * w..y1 * w]),
        y_stride: w as u32,
        u_plane: BufferStoreMut::Borrowed(&mut pic.u[(y0 / 2) * cw..(y1 / 2) * cw]),
        u_stride: cw as u32,
        v_plane: BufferStoreMut::Borrowed(&mut pic.v[(y0 / 2) * cw..(y1 / 2) * cw]),
        v_stride: cw as u32,
        width: w as u32,
        height: (y1 - y0) as u32,
    };
    let (range, matrix, mode) = (
        YuvRange::Limited,
        YuvStandardMatrix::Bt601,
        YuvConversionMode::Balanced,
    );
    let r = if bgra {
        yuv::bgra_to_yuv420(&mut planar, src, stride as u32, range, matrix, mode)
    } else {
        yuv::rgba_to_yuv420(&mut planar, src, stride as u32, range, matrix, mode)
    };
    r.map_err(|e| VideoError::Convert(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// BT.601 limited-range luma, computed from the standard's coefficients.
    fn luma(r: u8, g: u8, b: u8) -> f64 {
        16.0 + (65.481 * r as f64 + 128.553 * g as f64 + 24.966 * b as f64) / 255.0
    }

    fn frame_bytes(
        w: usize,
        h: usize,
        stride: usize,
        fmt: PixelFormat,
        f: impl Fn(usize, usize) -> (u8, u8, u8),
    ) -> Vec<u8> {
        let mut v = vec![0u8; stride * h];
        for y in 0..h {
            for x in 0..w {
                let (r, g, b) = f(x, y);
                let px = match fmt {
                    PixelFormat::Argb => [255, r, g, b],
                    PixelFormat::Bgra => [b, g, r, 255],
                };
                v[y * stride + x * 4..][..4].copy_from_slice(&px);
            }
        }
        v
    }

    #[test]
    fn both_formats_give_bt601_luma() {
        let pattern = |x: usize, y: usize| ((x * 16) as u8, (y * 16) as u8, ((x + y) * 8) as u8);
        for (fmt, stride) in [
            (PixelFormat::Bgra, 64),
            (PixelFormat::Argb, 64),
            (PixelFormat::Argb, 32),
        ] {
            let bytes = frame_bytes(8, 6, stride, fmt, pattern);
            let f = FrameRef {
                data: &bytes,
                width: 8,
                height: 6,
                stride,
                format: fmt,
            };
            let mut c = Converter::new();
            assert!(c.update(&f, Rect::default(), false).unwrap());
            let p = c.picture().unwrap();
            for y in 0..6 {
                for x in 0..8 {
                    let (r, g, b) = pattern(x, y);
                    let got = p.y[y * 8 + x] as f64;
                    assert!(
                        (got - luma(r, g, b)).abs() <= 1.5,
                        "{fmt:?} ({x},{y}): {got} vs {}",
                        luma(r, g, b)
                    );
                }
            }
        }
    }

    #[test]
    fn only_dirty_rows_are_converted() {
        let w = 16;
        let white = frame_bytes(w, 8, w * 4, PixelFormat::Bgra, |_, _| (255, 255, 255));
        let black = frame_bytes(w, 8, w * 4, PixelFormat::Bgra, |_, _| (0, 0, 0));
        let mut c = Converter::new();
        let fw = FrameRef {
            data: &white,
            width: w as u32,
            height: 8,
            stride: w * 4,
            format: PixelFormat::Bgra,
        };
        c.update(&fw, Rect::default(), false).unwrap();
        let fb = FrameRef { data: &black, ..fw };
        // Row 3 changed: rows 2..4 (the chroma pair) are redone, the rest keeps the old picture.
        c.update(&fb, Rect::new(5, 3, 1, 1), false).unwrap();
        let p = c.picture().unwrap();
        for y in 0..8 {
            let want = if (2..4).contains(&y) { 16 } else { 235 };
            assert!(
                (p.y[y * w] as i32 - want).abs() <= 1,
                "row {y}: {}",
                p.y[y * w]
            );
        }
    }

    #[test]
    fn odd_sizes_round_down_and_bad_buffers_error() {
        let bytes = vec![0u8; 7 * 4 * 5];
        let f = FrameRef {
            data: &bytes,
            width: 7,
            height: 5,
            stride: 28,
            format: PixelFormat::Bgra,
        };
        let mut c = Converter::new();
        c.update(&f, Rect::default(), false).unwrap();
        assert_eq!(
            (c.picture().unwrap().width, c.picture().unwrap().height),
            (6, 4)
        );
        let f = FrameRef { height: 6, ..f };
        assert!(c.update(&f, Rect::default(), true).is_err());
    }
}
