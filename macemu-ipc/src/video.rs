//! The video handoff protocol as pure functions: header validation and the tear-free buffer
//! choice. No I/O here, so it is unit-tested and fuzzed directly.
//!
//! ## Tear-free triple buffering on the v4 layout
//!
//! v4 rotates `write_index = (write_index + 1) % 3` blindly, so a reader that falls more than one
//! frame behind can be overwritten mid-read. We keep the layout and everything an old peer sees,
//! and add a reader claim in the spare `_reserved` word (0 = none, `i + 1` = buffer `i`):
//!
//! * reader: `r = ready_index; claim = r + 1; if ready_index != r { retry }`, read, `claim = 0`;
//! * writer (on publish): `ready_index = current; c = claim;` next write buffer is the first of
//!   `current + 1`, `current + 2` (mod 3) that is not `c`.
//!
//! All of these are sequentially consistent operations. If the writer's read of `claim` missed
//! the reader's store, the reader's re-read of `ready_index` comes later in the single total
//! order and sees the writer's newer `ready_index` (≠ the buffer being picked), so the reader
//! retries; otherwise the writer sees the claim and avoids the buffer. Three buffers always leave
//! one that is neither ready nor claimed. An old reader never claims and gets v4 behaviour.
//!
//! Metadata (size, format, dirty rect, cursor, ping) is written by our publisher inside a
//! sequence lock kept in the compiler padding at bytes 180..184 (odd while writing), so a reader
//! gets the metadata of exactly the frame it claimed. A v4 writer leaves that word 0.

use crate::abi::{
    MACEMU_IPC_VERSION, MACEMU_MAX_HEIGHT, MACEMU_MAX_WIDTH, MACEMU_NUM_BUFFERS, MACEMU_VIDEO_MAGIC,
};
use crate::error::{ConnectError, IpcError};
use crate::{EmulatorState, PixelFormat, Rect};

/// Claim word value for "no claim".
pub const NO_CLAIM: u32 = 0;

/// Encodes a claim of buffer `index`.
pub fn claim_of(index: usize) -> u32 {
    index as u32 + 1
}

/// Decodes a claim word; garbage (a hostile or foreign value) counts as no claim, which only
/// weakens the guarantee for that foreign reader, never our bounds.
pub fn claimed_index(word: u32) -> Option<usize> {
    (1..=MACEMU_NUM_BUFFERS as u32)
        .contains(&word)
        .then(|| (word - 1) as usize)
}

/// The next buffer to write after publishing `ready`: never `ready`, never the claimed one;
/// `ready + 1` when free (exactly v4's rotation when nobody claims).
pub fn pick_next_write(ready: usize, claimed: Option<usize>) -> usize {
    let first = (ready + 1) % MACEMU_NUM_BUFFERS;
    if Some(first) != claimed {
        first
    } else {
        (ready + 2) % MACEMU_NUM_BUFFERS
    }
}

/// Every header field a reader uses, as read (not yet trusted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeaderSnapshot {
    pub magic: u32,
    pub version: u32,
    pub pid: u32,
    pub state: u32,
    pub width: u32,
    pub height: u32,
    pub pixel_format: u32,
    pub dirty: [u32; 4],
    pub cursor_x: u16,
    pub cursor_y: u16,
    pub cursor_visible: u8,
    pub ready_index: u32,
    pub frame_count: u64,
    pub timestamp_us: u64,
}

/// Validated metadata of one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameMetaSnapshot {
    pub index: usize,
    pub width: u32,
    pub height: u32,
    pub pixel_format: PixelFormat,
    pub dirty: Rect,
    pub cursor_x: u16,
    pub cursor_y: u16,
    pub cursor_visible: bool,
    pub frame_count: u64,
    pub timestamp_us: u64,
}

fn corrupt(field: &'static str, value: impl Into<u64>) -> IpcError {
    IpcError::CorruptShm {
        field,
        value: value.into(),
    }
}

impl HeaderSnapshot {
    /// Reads a snapshot from raw header bytes (native-endian, v4 offsets); `None` if too short.
    pub fn from_bytes(b: &[u8]) -> Option<HeaderSnapshot> {
        use crate::abi::off;
        let u32_at = |o: usize| {
            b.get(o..o + 4)
                .map(|s| u32::from_ne_bytes(s.try_into().expect("4")))
        };
        let u64_at = |o: usize| {
            b.get(o..o + 8)
                .map(|s| u64::from_ne_bytes(s.try_into().expect("8")))
        };
        let cursor = u32_at(off::CURSOR_XY)?.to_ne_bytes();
        Some(HeaderSnapshot {
            magic: u32_at(off::MAGIC)?,
            version: u32_at(off::VERSION)?,
            pid: u32_at(off::PID)?,
            state: u32_at(off::STATE)?,
            width: u32_at(off::WIDTH)?,
            height: u32_at(off::HEIGHT)?,
            pixel_format: u32_at(off::PIXEL_FORMAT)?,
            dirty: [
                u32_at(off::DIRTY_X)?,
                u32_at(off::DIRTY_Y)?,
                u32_at(off::DIRTY_W)?,
                u32_at(off::DIRTY_H)?,
            ],
            cursor_x: u16::from_ne_bytes([cursor[0], cursor[1]]),
            cursor_y: u16::from_ne_bytes([cursor[2], cursor[3]]),
            cursor_visible: *b.get(off::CURSOR_VIS)?,
            ready_index: u32_at(off::READY_INDEX)?,
            frame_count: u64_at(off::FRAME_COUNT)?,
            timestamp_us: u64_at(off::TIMESTAMP_US)?,
        })
    }

    /// The v4 connect-time validation (`macemu_validate_ipc_buffer`), as typed errors.
    pub fn validate_connect(&self, expected_pid: u32) -> Result<(), ConnectError> {
        if self.magic != MACEMU_VIDEO_MAGIC {
            return Err(ConnectError::BadMagic { found: self.magic });
        }
        if self.version != MACEMU_IPC_VERSION {
            return Err(ConnectError::BadVersion {
                found: self.version,
            });
        }
        if self.pid != expected_pid {
            return Err(ConnectError::BadPid {
                expected: expected_pid,
                found: self.pid,
            });
        }
        if self.width > MACEMU_MAX_WIDTH || self.height > MACEMU_MAX_HEIGHT {
            return Err(ConnectError::BadSize {
                width: self.width,
                height: self.height,
            });
        }
        Ok(())
    }

    /// The run state, or a typed error for an impossible value.
    pub fn state(&self) -> Result<EmulatorState, IpcError> {
        EmulatorState::from_u32(self.state).ok_or_else(|| corrupt("state", self.state))
    }

    /// Validates everything needed to hand out frame `ready_index`: the index, size, pixel format
    /// and dirty rectangle. Anything impossible is a typed error, never a panic or a wild read.
    pub fn frame_meta(&self) -> Result<FrameMetaSnapshot, IpcError> {
        let index = self.ready_index as usize;
        if index >= MACEMU_NUM_BUFFERS {
            return Err(corrupt("ready_index", self.ready_index));
        }
        if self.width == 0 || self.width > MACEMU_MAX_WIDTH {
            return Err(corrupt("width", self.width));
        }
        if self.height == 0 || self.height > MACEMU_MAX_HEIGHT {
            return Err(corrupt("height", self.height));
        }
        let pixel_format = PixelFormat::from_u32(self.pixel_format)
            .ok_or_else(|| corrupt("pixel_format", self.pixel_format))?;
        let [x, y, w, h] = self.dirty;
        let dirty = Rect {
            x,
            y,
            width: w,
            height: h,
        };
        // width 0 means "nothing changed" whatever the other fields say.
        let dirty = if w == 0 {
            Rect {
                x: 0,
                y: 0,
                width: 0,
                height: 0,
            }
        } else {
            dirty
        };
        if !dirty.fits(self.width, self.height) {
            return Err(corrupt("dirty_rect", (u64::from(x) << 32) | u64::from(w)));
        }
        Ok(FrameMetaSnapshot {
            index,
            width: self.width,
            height: self.height,
            pixel_format,
            dirty,
            cursor_x: self.cursor_x,
            cursor_y: self.cursor_y,
            cursor_visible: self.cursor_visible != 0,
            frame_count: self.frame_count,
            timestamp_us: self.timestamp_us,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_write_avoids_ready_and_claim() {
        for ready in 0..3 {
            assert_eq!(
                pick_next_write(ready, None),
                (ready + 1) % 3,
                "v4 rotation without claims"
            );
            for claimed in 0..3 {
                let n = pick_next_write(ready, Some(claimed));
                assert_ne!(n, ready);
                assert_ne!(n, claimed);
            }
        }
    }

    #[test]
    fn claim_words() {
        assert_eq!(claimed_index(NO_CLAIM), None);
        for i in 0..3 {
            assert_eq!(claimed_index(claim_of(i)), Some(i));
        }
        assert_eq!(claimed_index(4), None);
        assert_eq!(claimed_index(u32::MAX), None);
    }

    fn good() -> HeaderSnapshot {
        HeaderSnapshot {
            magic: MACEMU_VIDEO_MAGIC,
            version: 4,
            pid: 42,
            width: 512,
            height: 342,
            pixel_format: 1,
            dirty: [0, 0, 512, 342],
            frame_count: 1,
            ..Default::default()
        }
    }

    #[test]
    fn connect_validation_matches_v4_codes() {
        assert!(good().validate_connect(42).is_ok());
        let codes = |h: HeaderSnapshot| h.validate_connect(42).unwrap_err().v4_code();
        assert_eq!(codes(HeaderSnapshot { magic: 1, ..good() }), Some(-1));
        assert_eq!(
            codes(HeaderSnapshot {
                version: 3,
                ..good()
            }),
            Some(-2)
        );
        assert_eq!(codes(HeaderSnapshot { pid: 43, ..good() }), Some(-3));
        assert_eq!(
            codes(HeaderSnapshot {
                width: 1921,
                ..good()
            }),
            Some(-4)
        );
        assert_eq!(
            codes(HeaderSnapshot {
                height: 1081,
                ..good()
            }),
            Some(-4)
        );
    }

    #[test]
    fn hostile_values_are_typed_errors() {
        let field = |h: HeaderSnapshot| match h.frame_meta() {
            Err(IpcError::CorruptShm { field, .. }) => field,
            other => panic!("expected CorruptShm, got {other:?}"),
        };
        assert_eq!(
            field(HeaderSnapshot {
                ready_index: 3,
                ..good()
            }),
            "ready_index"
        );
        assert_eq!(
            field(HeaderSnapshot {
                width: 5000,
                ..good()
            }),
            "width"
        );
        assert_eq!(
            field(HeaderSnapshot {
                height: 0,
                ..good()
            }),
            "height"
        );
        assert_eq!(
            field(HeaderSnapshot {
                pixel_format: 7,
                ..good()
            }),
            "pixel_format"
        );
        assert_eq!(
            field(HeaderSnapshot {
                dirty: [u32::MAX, 0, 2, 1],
                ..good()
            }),
            "dirty_rect"
        );
        assert_eq!(
            field(HeaderSnapshot {
                dirty: [0, 300, 1, 43],
                ..good()
            }),
            "dirty_rect"
        );
        assert!(
            HeaderSnapshot {
                dirty: [999, 999, 0, 7],
                ..good()
            }
            .frame_meta()
            .unwrap()
            .dirty
            .width
                == 0
        );
        assert!(matches!(
            HeaderSnapshot { state: 9, ..good() }.state(),
            Err(IpcError::CorruptShm { .. })
        ));
    }
}
