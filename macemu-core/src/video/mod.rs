//! Turns an emulated framebuffer into the 32-bit frame that goes to shared memory, and finds
//! the rectangle that changed since the previous frame.
//!
//! Sources are what Mac hardware scans out: 1, 2, 4 or 8 bits per pixel indexed through a
//! palette (MSB = leftmost pixel), 16 bits per pixel `xRRRRRGGGGGBBBBB` big-endian, or 32 bits
//! per pixel `xRGB` big-endian. The destination is 32 bits per pixel in BGRA or ARGB byte order
//! with any stride (the v4 shared-memory frame uses 7680 bytes), alpha always 0xFF.
//!
//! The dirty rectangle is computed on the source (a 1-bpp Mac screen is 21 KB, 32 times less than
//! its output), against a copy of the previous source the [`Converter`] keeps. A width of 0 means
//! nothing changed. Any change of geometry, format, palette or byte order makes the whole frame
//! dirty.

use std::fmt;

/// Largest frame the shared-memory protocol carries.
pub const MAX_WIDTH: usize = 1920;
pub const MAX_HEIGHT: usize = 1080;

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

/// Byte order of the 32-bit output pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PixelOrder {
    /// Bytes A, R, G, B (the Mac's native 32-bit layout).
    Argb,
    /// Bytes B, G, R, A.
    Bgra,
}

impl PixelOrder {
    fn encode(self, rgb: u32) -> [u8; 4] {
        let [_, r, g, b] = rgb.to_be_bytes();
        match self {
            PixelOrder::Argb => [0xFF, r, g, b],
            PixelOrder::Bgra => [b, g, r, 0xFF],
        }
    }
}

/// A borrowed source framebuffer.
#[derive(Clone, Copy, Debug)]
pub struct Source<'a> {
    pub data: &'a [u8],
    pub width: usize,
    pub height: usize,
    /// Bytes from one row to the next (at least the row's packed size).
    pub stride: usize,
    pub format: SourceFormat,
}

impl<'a> Source<'a> {
    /// The Mac Plus screen: 512 x 342, 1 bpp, 64 bytes a row.
    pub fn mac_plus(data: &'a [u8]) -> Source<'a> {
        Source {
            data,
            width: 512,
            height: 342,
            stride: 64,
            format: SourceFormat::Indexed1,
        }
    }
}

/// Up to 256 colours as 0x00RRGGBB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Palette(pub [u32; 256]);

impl Palette {
    /// Compact-Mac monochrome: 0 = white, 1 = black.
    pub fn mono() -> Palette {
        let mut p = [0u32; 256];
        p[0] = 0x00FF_FFFF;
        Palette(p)
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

/// A changed region in pixels; `width == 0` means nothing changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirtyRect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl DirtyRect {
    pub const NONE: DirtyRect = DirtyRect {
        x: 0,
        y: 0,
        width: 0,
        height: 0,
    };

    pub fn is_empty(&self) -> bool {
        self.width == 0
    }
}

/// Why a frame cannot be converted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VideoError {
    /// Width or height is 0 or above 1920 x 1080.
    BadSize { width: usize, height: usize },
    /// The source stride is shorter than a packed row.
    BadStride { stride: usize, row_bytes: usize },
    /// The source slice is too short for its geometry.
    SourceTooShort { needed: usize, got: usize },
    /// The destination slice or stride cannot hold the frame.
    DestinationTooSmall { needed: usize, got: usize },
}

impl fmt::Display for VideoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VideoError::BadSize { width, height } => {
                write!(f, "frame size {width}x{height} outside 1x1..1920x1080")
            }
            VideoError::BadStride { stride, row_bytes } => {
                write!(
                    f,
                    "source stride {stride} shorter than a row of {row_bytes} bytes"
                )
            }
            VideoError::SourceTooShort { needed, got } => {
                write!(f, "source has {got} bytes, the frame needs {needed}")
            }
            VideoError::DestinationTooSmall { needed, got } => {
                write!(
                    f,
                    "destination has {got} bytes (or stride), the frame needs {needed}"
                )
            }
        }
    }
}

impl std::error::Error for VideoError {}

/// Which part of the destination to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The whole frame (destinations that rotate, like the triple-buffered shm frames).
    Full,
    /// Only the dirty rectangle (a destination that keeps the previous frame).
    DirtyOnly,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Setup {
    width: usize,
    height: usize,
    format: SourceFormat,
    order: PixelOrder,
    palette: Palette,
}

/// Converts frames and tracks what changed. Reuse one per output.
#[derive(Clone, Debug, Default)]
pub struct Converter {
    setup: Option<Setup>,
    /// Packed copy of the previous source rows.
    prev: Vec<u8>,
    /// Indexed formats: the output bytes for every possible source byte.
    lut: Vec<u8>,
    /// Palette entries already encoded in the output byte order.
    colours: Vec<[u8; 4]>,
}

impl Converter {
    pub fn new() -> Converter {
        Converter::default()
    }

    /// Forgets the previous frame: the next conversion is wholly dirty.
    pub fn invalidate(&mut self) {
        self.setup = None;
    }

    /// Converts `src` into `dst` (rows `dst_stride` bytes apart) and returns the rectangle that
    /// differs from the previous call's source.
    pub fn convert(
        &mut self,
        src: &Source<'_>,
        palette: &Palette,
        order: PixelOrder,
        dst: &mut [u8],
        dst_stride: usize,
        scope: Scope,
    ) -> Result<DirtyRect, VideoError> {
        let (w, h) = (src.width, src.height);
        if w == 0 || h == 0 || w > MAX_WIDTH || h > MAX_HEIGHT {
            return Err(VideoError::BadSize {
                width: w,
                height: h,
            });
        }
        let row_bytes = src.format.row_bytes(w);
        if src.stride < row_bytes {
            return Err(VideoError::BadStride {
                stride: src.stride,
                row_bytes,
            });
        }
        let needed = src.stride * (h - 1) + row_bytes;
        if src.data.len() < needed {
            return Err(VideoError::SourceTooShort {
                needed,
                got: src.data.len(),
            });
        }
        let out_row = w * 4;
        let dst_needed = dst_stride * (h - 1) + out_row;
        if dst_stride < out_row || dst.len() < dst_needed {
            return Err(VideoError::DestinationTooSmall {
                needed: dst_needed,
                got: dst.len().min(dst_stride * h),
            });
        }

        let is_indexed = src.format.bits_per_pixel() <= 8;
        let setup = Setup {
            width: w,
            height: h,
            format: src.format,
            order,
            // Direct formats do not use the palette: do not let it invalidate them.
            palette: if is_indexed {
                palette.clone()
            } else {
                Palette([0; 256])
            },
        };
        let full = self.setup.as_ref() != Some(&setup);
        if full {
            self.prepare(&setup);
            self.prev.clear();
            self.prev.resize(row_bytes * h, 0);
            self.setup = Some(setup);
        }
        let dirty = self.diff(src, row_bytes, full);

        let (x0, x1, y0, y1) = match scope {
            Scope::Full => (0, w, 0, h),
            Scope::DirtyOnly if dirty.is_empty() => return Ok(dirty),
            Scope::DirtyOnly => (
                dirty.x as usize,
                (dirty.x + dirty.width) as usize,
                dirty.y as usize,
                (dirty.y + dirty.height) as usize,
            ),
        };
        for y in y0..y1 {
            let s = &src.data[y * src.stride..y * src.stride + row_bytes];
            let d = &mut dst[y * dst_stride..y * dst_stride + out_row];
            self.convert_row(src.format, s, d, x0, x1);
        }
        Ok(dirty)
    }

    fn prepare(&mut self, setup: &Setup) {
        self.colours = setup
            .palette
            .0
            .iter()
            .map(|&c| setup.order.encode(c))
            .collect();
        self.lut.clear();
        let bpp = setup.format.bits_per_pixel();
        if bpp <= 4 {
            // Every source byte expands to 8 / bpp pixels.
            let ppb = 8 / bpp;
            let mask = (1u8 << bpp) - 1;
            self.lut.reserve(256 * ppb * 4);
            for byte in 0..=255u8 {
                for p in 0..ppb {
                    let shift = 8 - bpp * (p + 1);
                    let idx = (byte >> shift) & mask;
                    self.lut.extend_from_slice(&self.colours[usize::from(idx)]);
                }
            }
        }
    }

    /// Compares with the previous rows, stores the new ones, returns the changed rectangle.
    fn diff(&mut self, src: &Source<'_>, row_bytes: usize, full: bool) -> DirtyRect {
        let h = src.height;
        let (mut y0, mut y1) = (usize::MAX, 0usize);
        let (mut b0, mut b1) = (usize::MAX, 0usize);
        for y in 0..h {
            let s = &src.data[y * src.stride..y * src.stride + row_bytes];
            let p = &mut self.prev[y * row_bytes..(y + 1) * row_bytes];
            if !full && s == p {
                continue;
            }
            let first = s.iter().zip(p.iter()).position(|(a, b)| a != b);
            let (f, l) = if full {
                (0, row_bytes - 1)
            } else {
                // `s != p`, so both ends exist.
                let f = first.unwrap_or(0);
                let l = row_bytes
                    - 1
                    - s.iter()
                        .rev()
                        .zip(p.iter().rev())
                        .position(|(a, b)| a != b)
                        .unwrap_or(0);
                (f, l)
            };
            p.copy_from_slice(s);
            y0 = y0.min(y);
            y1 = y;
            b0 = b0.min(f);
            b1 = b1.max(l);
        }
        if y0 == usize::MAX {
            return DirtyRect::NONE;
        }
        // Byte columns to pixel columns.
        let bpp = src.format.bits_per_pixel();
        let x0 = b0 * 8 / bpp;
        let x1 = ((b1 + 1) * 8).div_ceil(bpp).min(src.width);
        DirtyRect {
            x: x0 as u32,
            y: y0 as u32,
            width: (x1 - x0) as u32,
            height: (y1 - y0 + 1) as u32,
        }
    }

    /// Converts pixels `x0..x1` of one row.
    fn convert_row(&self, format: SourceFormat, s: &[u8], d: &mut [u8], x0: usize, x1: usize) {
        let bpp = format.bits_per_pixel();
        match format {
            SourceFormat::Indexed1 | SourceFormat::Indexed2 | SourceFormat::Indexed4 => {
                let ppb = 8 / bpp;
                let chunk = ppb * 4;
                // Whole source bytes covering x0..x1; the last may run past the width.
                let first = x0 / ppb;
                let last = x1.div_ceil(ppb);
                let d = &mut d[first * chunk..];
                let full_bytes = (x1 - first * ppb) / ppb;
                for (o, &b) in d.chunks_exact_mut(chunk).zip(&s[first..first + full_bytes]) {
                    let i = usize::from(b) * chunk;
                    o.copy_from_slice(&self.lut[i..i + chunk]);
                }
                if first + full_bytes < last {
                    // Partial last byte (width not a multiple of the pixels per byte).
                    let b = s[first + full_bytes];
                    let i = usize::from(b) * chunk;
                    let rest = (x1 - (first + full_bytes) * ppb) * 4;
                    d[full_bytes * chunk..full_bytes * chunk + rest]
                        .copy_from_slice(&self.lut[i..i + rest]);
                }
            }
            SourceFormat::Indexed8 => {
                for (o, &b) in d[x0 * 4..x1 * 4].chunks_exact_mut(4).zip(&s[x0..x1]) {
                    o.copy_from_slice(&self.colours[usize::from(b)]);
                }
            }
            SourceFormat::Rgb555 => {
                let order = self.setup.as_ref().map_or(PixelOrder::Bgra, |s| s.order);
                let src = &s[x0 * 2..x1 * 2];
                let out = &mut d[x0 * 4..x1 * 4];
                match order {
                    PixelOrder::Bgra => convert_555::<true>(src, out),
                    PixelOrder::Argb => convert_555::<false>(src, out),
                }
            }
            SourceFormat::Xrgb8888 => {
                let order = self.setup.as_ref().map_or(PixelOrder::Bgra, |s| s.order);
                let src = &s[x0 * 4..x1 * 4];
                let out = &mut d[x0 * 4..x1 * 4];
                match order {
                    PixelOrder::Bgra => {
                        for (o, i) in out.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
                            let v = u32::from_be_bytes([i[0], i[1], i[2], i[3]]) | 0xFF00_0000;
                            o.copy_from_slice(&v.to_le_bytes());
                        }
                    }
                    PixelOrder::Argb => {
                        for (o, i) in out.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
                            o.copy_from_slice(&[0xFF, i[1], i[2], i[3]]);
                        }
                    }
                }
            }
        }
    }
}

#[inline]
fn convert_555<const BGRA: bool>(src: &[u8], out: &mut [u8]) {
    for (o, i) in out.chunks_exact_mut(4).zip(src.chunks_exact(2)) {
        let v = u32::from(u16::from_be_bytes([i[0], i[1]]));
        // Five bits to eight: replicate the top bits into the low ones.
        let r = (v >> 10) & 0x1F;
        let g = (v >> 5) & 0x1F;
        let b = v & 0x1F;
        let (r, g, b) = (
            (r << 3) | (r >> 2),
            (g << 3) | (g >> 2),
            (b << 3) | (b >> 2),
        );
        let px = if BGRA {
            b | (g << 8) | (r << 16) | 0xFF00_0000
        } else {
            0xFF | (r << 8) | (g << 16) | (b << 24)
        };
        o.copy_from_slice(&px.to_le_bytes());
    }
}

#[cfg(test)]
mod tests;
