//! The macemu v4 IPC protocol: shared-memory frames and audio, eventfd signalling and binary input
//! messages over a Unix socket, for both the emulator ([`Publisher`]) and the server
//! ([`Subscriber`]).
//!
//! The byte layout is exactly v4 (`abi`), so BasiliskII and the original server interoperate with
//! either side. On top of it, frames are tear-free between our two sides: the reader claims the
//! frame it reads in the spare `_reserved` word and our writer never picks a claimed buffer
//! (see `video`). Nothing read from shared memory is trusted: every index, size, rate, channel
//! and sample count is validated into a typed error.

pub mod abi;
mod audio;
mod discovery;
pub mod drive;
mod error;
pub mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod header;
pub mod input;
mod publisher;
mod shm;
mod subscriber;
mod sys;
pub mod video;

pub use audio::{AudioFrame, VALID_RATES as AUDIO_RATES};
pub use discovery::{
    clean_stale, control_socket_path, list_emulators, shm_name, EmulatorInfo, Removed,
};
pub use error::{ConnectError, IpcError};
pub use input::{Command, InputDecoder, InputMessage, MouseMode};
pub use publisher::{
    AudioPublisher, FrameMeta, FrameMut, FramePublisher, InputListener, Publisher,
};
pub use subscriber::{AudioSubscriber, FrameView, InputQueue, InputSender, PingEcho, Subscriber};
pub use sys::{is_eventfd_raw as is_eventfd, pid_alive};

/// Emulator run state (`MACEMU_STATE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum EmulatorState {
    Stopped = 0,
    Running = 1,
    Paused = 2,
}

impl EmulatorState {
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => EmulatorState::Stopped,
            1 => EmulatorState::Running,
            2 => EmulatorState::Paused,
            _ => return None,
        })
    }
}

/// Byte order of the 32-bit pixels (`MACEMU_PIXFMT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum PixelFormat {
    /// Bytes A,R,G,B (Mac native 32-bit).
    Argb = 0,
    /// Bytes B,G,R,A.
    Bgra = 1,
}

impl PixelFormat {
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            0 => PixelFormat::Argb,
            1 => PixelFormat::Bgra,
            _ => return None,
        })
    }
}

/// A rectangle in frame pixels. `width == 0` means nothing changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    pub const fn new(x: u32, y: u32, width: u32, height: u32) -> Rect {
        Rect {
            x,
            y,
            width,
            height,
        }
    }

    /// No pixel: v4 says `width == 0`; a zero height holds none either.
    pub fn is_empty(&self) -> bool {
        self.width == 0 || self.height == 0
    }

    /// The smallest rectangle holding both (an empty side is ignored).
    pub fn union(&self, o: &Rect) -> Rect {
        if self.is_empty() {
            return *o;
        }
        if o.is_empty() {
            return *self;
        }
        let x0 = self.x.min(o.x);
        let y0 = self.y.min(o.y);
        let x1 = self
            .x
            .saturating_add(self.width)
            .max(o.x.saturating_add(o.width));
        let y1 = self
            .y
            .saturating_add(self.height)
            .max(o.y.saturating_add(o.height));
        Rect::new(x0, y0, x1 - x0, y1 - y0)
    }

    /// This rectangle cut to a `width`×`height` frame (saturating: values from shared memory are
    /// untrusted).
    pub fn clamp_to(&self, width: u32, height: u32) -> Rect {
        let x0 = self.x.min(width);
        let y0 = self.y.min(height);
        let x1 = self.x.saturating_add(self.width).min(width);
        let y1 = self.y.saturating_add(self.height).min(height);
        Rect::new(x0, y0, x1 - x0, y1 - y0)
    }

    /// The whole `width`×`height` frame.
    pub fn full(width: u32, height: u32) -> Rect {
        Rect {
            x: 0,
            y: 0,
            width,
            height,
        }
    }

    /// Whether the rectangle lies within a `width`×`height` frame (overflow-safe).
    pub fn fits(&self, width: u32, height: u32) -> bool {
        self.x.checked_add(self.width).is_some_and(|r| r <= width)
            && self.y.checked_add(self.height).is_some_and(|b| b <= height)
    }
}

/// Frame stride in bytes: always 1920 × 4.
pub const STRIDE: usize = abi::MACEMU_BGRA_STRIDE;

/// Microseconds since the Unix epoch (CLOCK_REALTIME), the clock v4 timestamps use.
pub fn realtime_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
