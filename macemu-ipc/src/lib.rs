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
    pub fn is_empty(&self) -> bool {
        self.width == 0
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
