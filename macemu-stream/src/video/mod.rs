//! Video: pixel conversion, the H.264 encoder for screen content, the PNG dirty-rectangle encoder, and
//! the policy deciding when to encode at all.

pub mod convert;
pub mod h264;
pub mod pipeline;
pub mod png;
pub mod policy;
pub mod repeat;
pub mod rtp;

use thiserror::Error;

/// The pixel byte order and rectangles are the shared-memory protocol's own, from the emulator's
/// converter to the encoders.
pub use macemu_ipc::{PixelFormat, Rect};

/// A borrowed frame: `height` rows of `stride` bytes, 4 bytes a pixel.
#[derive(Debug, Clone, Copy)]
pub struct FrameRef<'a> {
    pub data: &'a [u8],
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    pub format: PixelFormat,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum VideoError {
    #[error("frame {width}x{height} with stride {stride} does not fit its {len}-byte buffer")]
    FrameTooSmall {
        width: u32,
        height: u32,
        stride: usize,
        len: usize,
    },
    #[error("frame size {0}x{1} is not supported (needs 2..=4096 pixels each way)")]
    BadSize(u32, u32),
    #[error("H.264 encoder: {0}")]
    Encoder(String),
    #[error("color conversion: {0}")]
    Convert(String),
    #[error("PNG encoder: {0}")]
    Png(String),
}

impl<'a> FrameRef<'a> {
    /// Checks that the buffer really holds the frame it claims (sizes come from shared memory).
    pub fn validate(&self) -> Result<(), VideoError> {
        if self.width < 2 || self.height < 2 || self.width > 4096 || self.height > 4096 {
            return Err(VideoError::BadSize(self.width, self.height));
        }
        let row = self.width as usize * 4;
        let need = self
            .stride
            .checked_mul(self.height as usize - 1)
            .and_then(|n| n.checked_add(row));
        match need {
            Some(n) if self.stride >= row && n <= self.data.len() => Ok(()),
            _ => Err(VideoError::FrameTooSmall {
                width: self.width,
                height: self.height,
                stride: self.stride,
                len: self.data.len(),
            }),
        }
    }

    /// The (R, G, B) of one pixel.
    pub fn rgb_at(&self, x: u32, y: u32) -> (u8, u8, u8) {
        let o = y as usize * self.stride + x as usize * 4;
        let p = &self.data[o..o + 4];
        match self.format {
            PixelFormat::Argb => (p[1], p[2], p[3]),
            PixelFormat::Bgra => (p[2], p[1], p[0]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rect_union_and_clamp() {
        let a = Rect::new(10, 10, 5, 5);
        let b = Rect::new(0, 12, 3, 20);
        assert_eq!(a.union(&b), Rect::new(0, 10, 15, 22));
        assert_eq!(a.union(&Rect::default()), a);
        assert_eq!(
            Rect::new(500, 300, 100, 100).clamp_to(512, 342),
            Rect::new(500, 300, 12, 42)
        );
        assert!(Rect::new(u32::MAX, 0, u32::MAX, 9)
            .clamp_to(512, 342)
            .is_empty());
        // Untrusted sides never overflow: the union saturates at the coordinate range.
        let huge = Rect::new(u32::MAX - 1, 5, u32::MAX, 1);
        assert_eq!(huge.union(&a), Rect::new(10, 5, u32::MAX - 10, 10));
    }

    #[test]
    fn validate_rejects_lying_sizes() {
        let buf = vec![0u8; 7680 * 10];
        let f = FrameRef {
            data: &buf,
            width: 1920,
            height: 10,
            stride: 7680,
            format: PixelFormat::Bgra,
        };
        assert!(f.validate().is_ok());
        let f = FrameRef { height: 11, ..f };
        assert!(matches!(
            f.validate(),
            Err(VideoError::FrameTooSmall { .. })
        ));
        let f = FrameRef {
            width: 1921,
            height: 10,
            ..f
        };
        assert!(f.validate().is_err());
        let f = FrameRef { width: 0, ..f };
        assert_eq!(f.validate(), Err(VideoError::BadSize(0, 10)));
    }
}
