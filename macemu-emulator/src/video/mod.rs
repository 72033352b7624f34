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

pub use macemu_core::machine::{Palette, SourceFormat};
use multiversion::multiversion;
use std::fmt;

/// Largest frame the shared-memory protocol carries.
pub const MAX_WIDTH: usize = 1920;
pub const MAX_HEIGHT: usize = 1080;

/// The output pixels' byte order and the changed region are the shared-memory protocol's own.
pub use macemu_ipc::{PixelFormat, Rect};

fn encode(order: PixelFormat, rgb: u32) -> [u8; 4] {
    let [_, r, g, b] = rgb.to_be_bytes();
    match order {
        PixelFormat::Argb => [0xFF, r, g, b],
        PixelFormat::Bgra => [b, g, r, 0xFF],
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

/// Bounds of the changed rows and source byte columns.
struct DirtyAcc {
    y0: usize,
    y1: usize,
    b0: usize,
    b1: usize,
}

impl DirtyAcc {
    fn new() -> DirtyAcc {
        DirtyAcc {
            y0: usize::MAX,
            y1: 0,
            b0: usize::MAX,
            b1: 0,
        }
    }

    fn add(&mut self, y: usize, first: usize, last: usize) {
        self.y0 = self.y0.min(y);
        self.y1 = y;
        self.b0 = self.b0.min(first);
        self.b1 = self.b1.max(last);
    }

    /// Byte columns to pixel columns.
    fn rect(&self, bpp: usize, width: usize) -> Rect {
        if self.y0 == usize::MAX {
            return Rect::default();
        }
        let x0 = self.b0 * 8 / bpp;
        let x1 = ((self.b1 + 1) * 8).div_ceil(bpp).min(width);
        Rect {
            x: x0 as u32,
            y: self.y0 as u32,
            width: (x1 - x0) as u32,
            height: (self.y1 - self.y0 + 1) as u32,
        }
    }
}

/// Output pixels for each of the 256 source byte values, by depth (8, 4 or 2 pixels a byte).
#[derive(Clone, Debug, Default)]
enum Lut {
    #[default]
    None,
    B1(Box<[[u8; 32]; 256]>),
    B2(Box<[[u8; 16]; 256]>),
    B4(Box<[[u8; 8]; 256]>),
}

fn build_lut<const C: usize>(colours: &[[u8; 4]; 256], bpp: usize) -> Box<[[u8; C]; 256]> {
    let mut t = Box::new([[0u8; C]; 256]);
    let mask = (1u8 << bpp) - 1;
    for (byte, entry) in t.iter_mut().enumerate() {
        for (p, px) in entry.chunks_exact_mut(4).enumerate() {
            let shift = 8 - bpp * (p + 1);
            let idx = ((byte as u8) >> shift) & mask;
            px.copy_from_slice(&colours[usize::from(idx)]);
        }
    }
    t
}

/// Expands whole source bytes; `d` holds `s.len()` entries of `C` bytes.
#[multiversion(targets("x86_64+avx2", "x86_64+ssse3"))]
fn expand<const C: usize>(lut: &[[u8; C]; 256], s: &[u8], d: &mut [u8]) {
    for (o, &b) in d.chunks_exact_mut(C).zip(s) {
        o.copy_from_slice(&lut[usize::from(b)]);
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Setup {
    width: usize,
    height: usize,
    format: SourceFormat,
    order: PixelFormat,
    palette: Palette,
}

/// Converts frames and tracks what changed. Reuse one per output.
#[derive(Clone, Debug)]
pub struct Converter {
    setup: Option<Setup>,
    /// Packed copy of the previous source rows.
    prev: Vec<u8>,
    /// Indexed formats below 8 bpp: the output bytes for every possible source byte.
    lut: Lut,
    /// Palette entries already encoded in the output byte order.
    colours: Box<[[u8; 4]; 256]>,
}

impl Default for Converter {
    fn default() -> Self {
        Converter {
            setup: None,
            prev: Vec::new(),
            lut: Lut::None,
            colours: Box::new([[0; 4]; 256]),
        }
    }
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
        order: PixelFormat,
        dst: &mut [u8],
        dst_stride: usize,
        scope: Scope,
    ) -> Result<Rect, VideoError> {
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
        let mut acc = DirtyAcc::new();
        match scope {
            Scope::Full => {
                // One pass: each source row is compared and converted while it is in cache.
                for y in 0..h {
                    let s = &src.data[y * src.stride..y * src.stride + row_bytes];
                    self.diff_row(y, s, full, &mut acc);
                    let d = &mut dst[y * dst_stride..y * dst_stride + out_row];
                    self.convert_row(src.format, s, d, 0, w);
                }
                Ok(acc.rect(src.format.bits_per_pixel(), w))
            }
            Scope::DirtyOnly => {
                for y in 0..h {
                    let s = &src.data[y * src.stride..y * src.stride + row_bytes];
                    self.diff_row(y, s, full, &mut acc);
                }
                let dirty = acc.rect(src.format.bits_per_pixel(), w);
                let (x0, x1) = (dirty.x as usize, (dirty.x + dirty.width) as usize);
                for y in dirty.y as usize..(dirty.y + dirty.height) as usize {
                    let s = &src.data[y * src.stride..y * src.stride + row_bytes];
                    let d = &mut dst[y * dst_stride..y * dst_stride + out_row];
                    self.convert_row(src.format, s, d, x0, x1);
                }
                Ok(dirty)
            }
        }
    }

    fn prepare(&mut self, setup: &Setup) {
        for (c, &rgb) in self.colours.iter_mut().zip(setup.palette.0.iter()) {
            *c = encode(setup.order, rgb);
        }
        self.lut = match setup.format {
            SourceFormat::Indexed1 => Lut::B1(build_lut(&self.colours, 1)),
            SourceFormat::Indexed2 => Lut::B2(build_lut(&self.colours, 2)),
            SourceFormat::Indexed4 => Lut::B4(build_lut(&self.colours, 4)),
            _ => Lut::None,
        };
    }

    /// Compares row `y` with the previous frame's, stores the new one, widens `acc`.
    fn diff_row(&mut self, y: usize, s: &[u8], full: bool, acc: &mut DirtyAcc) {
        let n = s.len();
        let p = &mut self.prev[y * n..(y + 1) * n];
        if full {
            p.copy_from_slice(s);
            acc.add(y, 0, n - 1);
            return;
        }
        if s == p {
            return;
        }
        // `s != p`, so a first and a last differing byte exist.
        let f = s
            .iter()
            .zip(p.iter())
            .position(|(a, b)| a != b)
            .unwrap_or(0);
        let l = n
            - 1
            - s.iter()
                .rev()
                .zip(p.iter().rev())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
        p.copy_from_slice(s);
        acc.add(y, f, l);
    }

    /// Converts pixels `x0..x1` of one row (`x0` on a source byte boundary).
    fn convert_row(&self, format: SourceFormat, s: &[u8], d: &mut [u8], x0: usize, x1: usize) {
        let bpp = format.bits_per_pixel();
        if bpp < 8 {
            let ppb = 8 / bpp;
            let first = x0 / ppb;
            let whole = (x1 - first * ppb) / ppb;
            let src = &s[first..first + whole];
            let out = &mut d[x0 * 4..(x0 + whole * ppb) * 4];
            match &self.lut {
                Lut::B1(t) => expand(t, src, out),
                Lut::B2(t) => expand(t, src, out),
                Lut::B4(t) => expand(t, src, out),
                Lut::None => {}
            }
            let done = (first + whole) * ppb;
            if done < x1 {
                // Partial last byte (width not a multiple of the pixels per byte).
                let b = s[first + whole];
                let rest = (x1 - done) * 4;
                let o = &mut d[done * 4..done * 4 + rest];
                match &self.lut {
                    Lut::B1(t) => o.copy_from_slice(&t[usize::from(b)][..rest]),
                    Lut::B2(t) => o.copy_from_slice(&t[usize::from(b)][..rest]),
                    Lut::B4(t) => o.copy_from_slice(&t[usize::from(b)][..rest]),
                    Lut::None => {}
                }
            }
            return;
        }
        let order = self.setup.as_ref().map_or(PixelFormat::Bgra, |s| s.order);
        let out = &mut d[x0 * 4..x1 * 4];
        match format {
            SourceFormat::Indexed8 => {
                let colours: &[[u8; 4]; 256] = &self.colours;
                for (o, &b) in out.chunks_exact_mut(4).zip(&s[x0..x1]) {
                    o.copy_from_slice(&colours[usize::from(b)]);
                }
            }
            SourceFormat::Rgb555 => {
                let src = &s[x0 * 2..x1 * 2];
                match order {
                    PixelFormat::Bgra => convert_555::<true>(src, out),
                    PixelFormat::Argb => convert_555::<false>(src, out),
                }
            }
            _ => {
                let src = &s[x0 * 4..x1 * 4];
                match order {
                    PixelFormat::Bgra => convert_8888::<true>(src, out),
                    PixelFormat::Argb => convert_8888::<false>(src, out),
                }
            }
        }
    }
}

/// 32-bit `x R G B` to BGRA (bytes reversed in each pixel) or ARGB (in place), alpha 0xFF.
/// Written pixel by pixel on fixed-size arrays so the compiler vectorises it; compiled also for
/// SSSE3 and AVX2 (byte shuffles), chosen at run time.
#[multiversion(targets("x86_64+avx2", "x86_64+ssse3"))]
fn convert_8888<const BGRA: bool>(src: &[u8], out: &mut [u8]) {
    for (o, i) in out.chunks_exact_mut(4).zip(src.chunks_exact(4)) {
        let i: [u8; 4] = [i[0], i[1], i[2], i[3]];
        let px = if BGRA {
            u32::from_be_bytes(i) | 0xFF00_0000
        } else {
            u32::from_le_bytes(i) | 0xFF
        };
        o.copy_from_slice(&px.to_le_bytes());
    }
}

#[multiversion(targets("x86_64+avx2", "x86_64+ssse3"))]
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
