//! What an emulator writes into the v4 header: its initial state and the hand-over of each
//! frame. One implementation, used by the Rust [`crate::Publisher`] over its mapping and by the
//! C ABI (`macemu_init_ipc_buffer`, `macemu_frame_complete`) over a buffer the caller owns.

use crate::abi::{off, *};
use crate::video::{claimed_index, pick_next_write};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicU32, AtomicU64};

/// The header's words as atomics, at the byte offsets of the v4 layout. Implementations check
/// that an offset lies inside the header and is aligned.
pub trait HeaderWords {
    fn u32(&self, offset: usize) -> &AtomicU32;
    fn u64(&self, offset: usize) -> &AtomicU64;
}

/// The emulator's side of the frame rotation: the sequence-lock value, the buffer being written
/// and the frames published. The Rust publisher keeps its own copy and never re-reads these
/// from shared memory; a C emulator keeps none, so [`FrameCursor::load`] reads them back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameCursor {
    pub seq: u32,
    /// Always below `MACEMU_NUM_BUFFERS`.
    pub write_index: usize,
    pub frame_count: u64,
}

impl FrameCursor {
    /// The cursor as the header holds it; a corrupt `write_index` counts as 0.
    pub fn load(h: &(impl HeaderWords + ?Sized)) -> FrameCursor {
        let w = h.u32(off::WRITE_INDEX).load(SeqCst) as usize;
        FrameCursor {
            seq: h.u32(off::SEQLOCK).load(SeqCst),
            write_index: if w < MACEMU_NUM_BUFFERS { w } else { 0 },
            frame_count: h.u64(off::FRAME_COUNT).load(SeqCst),
        }
    }
}

/// Zeroes `len` bytes from `offset` (4-aligned, a multiple of 4) through 32-bit stores.
fn zero(h: &(impl HeaderWords + ?Sized), offset: usize, len: usize) {
    debug_assert!(offset.is_multiple_of(4) && len.is_multiple_of(4));
    for o in (offset..offset + len).step_by(4) {
        h.u32(o).store(0, SeqCst);
    }
}

/// Initialises a header as v4's `macemu_init_ipc_buffer` does: stopped, `width`×`height` BGRA,
/// indices 0, the whole frame dirty, ping and statistics zero, the audio ring empty and the
/// silence frame 48 kHz stereo 960 samples. Every field is written (the memory need not be
/// zeroed), the magic last so that a scanner never sees a valid magic on a half-written header.
pub fn init(
    h: &(impl HeaderWords + ?Sized),
    pid: u32,
    width: u32,
    height: u32,
    frame_eventfd: i32,
    audio_eventfd: i32,
) {
    const {
        assert!(off::AUDIO_RING.is_multiple_of(4) && off::AUDIO_SILENCE.is_multiple_of(4));
        assert!(off::AUDIO_FRAME_SIZE.is_multiple_of(4));
    }
    let w32 = |o: usize, v: u32| h.u32(o).store(v, SeqCst);
    w32(off::MAGIC, 0);
    w32(off::VERSION, MACEMU_IPC_VERSION);
    w32(off::PID, pid);
    w32(off::STATE, MACEMU_STATE_STOPPED);
    w32(off::WIDTH, width);
    w32(off::HEIGHT, height);
    w32(off::PIXEL_FORMAT, MACEMU_PIXFMT_BGRA);
    w32(off::CLAIM, 0);
    w32(off::DIRTY_X, 0);
    w32(off::DIRTY_Y, 0);
    w32(off::DIRTY_W, width);
    w32(off::DIRTY_H, height);
    w32(off::CURSOR_XY, 0);
    w32(off::CURSOR_VIS, 0);
    w32(off::WRITE_INDEX, 0);
    w32(off::READY_INDEX, 0);
    h.u64(off::FRAME_COUNT).store(0, SeqCst);
    h.u64(off::TIMESTAMP_US).store(0, SeqCst);
    w32(off::MOUSE_LAT_AVG, 0);
    w32(off::MOUSE_LAT_SAMPLES, 0);
    zero(h, off::PING_T1, size_of::<MacEmuPingTimestamps>());
    w32(off::PING_SEQUENCE, 0);
    w32(off::SEQLOCK, 0);
    w32(off::FRAME_EVENTFD, frame_eventfd as u32);
    w32(off::AUDIO_SAMPLE_RATE, 0);
    w32(off::AUDIO_CHANNELS, 0);
    w32(off::AUDIO_FORMAT, MACEMU_AUDIO_FORMAT_NONE);
    w32(off::AUDIO_SAMPLES_IN_FRAME, 0);
    w32(off::AUDIO_WRITE_INDEX, 0);
    w32(off::AUDIO_READY_INDEX, 0);
    h.u64(off::AUDIO_FRAME_COUNT).store(0, SeqCst);
    h.u64(off::AUDIO_TIMESTAMP_US).store(0, SeqCst);
    w32(off::AUDIO_EVENTFD, audio_eventfd as u32);
    w32(off::AUDIO_W, 0);
    w32(off::AUDIO_R, 0);
    zero(h, off::AUDIO_RING, off::AUDIO_SILENCE - off::AUDIO_RING);
    let mut silence = <MacEmuAudioFrame as bytemuck::Zeroable>::zeroed();
    silence.sample_rate = 48_000;
    silence.channels = 2;
    silence.samples = 960;
    silence.format = MACEMU_AUDIO_FORMAT_PCM_S16;
    for (i, word) in bytemuck::bytes_of(&silence).chunks_exact(4).enumerate() {
        let v = u32::from_ne_bytes(word.try_into().expect("4-byte chunk"));
        w32(off::AUDIO_SILENCE + 4 * i, v);
    }
    w32(off::MAGIC, MACEMU_VIDEO_MAGIC);
}

/// Hands over the frame in buffer `cursor.write_index`, as v4's `macemu_frame_complete` does,
/// inside the sequence lock: `meta` writes the frame's own fields (size, dirty rectangle,
/// cursor, ping echo), then the timestamp, `ready_index`, the next write buffer and
/// `frame_count`. Unlike v4, the next write buffer skips one a reader claims, so a reader that
/// claims never sees a torn frame. The caller signals the frame eventfd afterwards.
pub fn complete_frame<H: HeaderWords + ?Sized>(
    h: &H,
    cursor: &mut FrameCursor,
    timestamp_us: u64,
    meta: impl FnOnce(&H),
) {
    // Odd while this frame's fields are being written.
    cursor.seq = cursor.seq.wrapping_add(1) | 1;
    h.u32(off::SEQLOCK).store(cursor.seq, SeqCst);
    meta(h);
    let current = cursor.write_index % MACEMU_NUM_BUFFERS;
    h.u64(off::TIMESTAMP_US).store(timestamp_us, SeqCst);
    h.u32(off::READY_INDEX).store(current as u32, SeqCst);
    // Must follow the ready_index store (see `video` for the argument).
    let claimed = claimed_index(h.u32(off::CLAIM).load(SeqCst));
    cursor.write_index = pick_next_write(current, claimed);
    h.u32(off::WRITE_INDEX)
        .store(cursor.write_index as u32, SeqCst);
    cursor.frame_count = cursor.frame_count.wrapping_add(1);
    h.u64(off::FRAME_COUNT).store(cursor.frame_count, SeqCst);
    cursor.seq = cursor.seq.wrapping_add(1);
    h.u32(off::SEQLOCK).store(cursor.seq, SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::claim_of;

    /// A header in ordinary memory, 8-aligned.
    struct Mem(Vec<AtomicU64>);

    impl Mem {
        fn new() -> Mem {
            // Garbage everywhere: `init` must write every field itself.
            Mem((0..MACEMU_HEADER_SIZE.div_ceil(8))
                .map(|_| AtomicU64::new(0xA5A5_A5A5_A5A5_A5A5))
                .collect())
        }
    }

    impl HeaderWords for Mem {
        fn u32(&self, offset: usize) -> &AtomicU32 {
            assert!(offset.is_multiple_of(4) && offset + 4 <= MACEMU_HEADER_SIZE);
            // SAFETY: in bounds of the Vec's allocation, 4-aligned (the Vec is 8-aligned).
            unsafe { AtomicU32::from_ptr(self.0.as_ptr().cast::<u8>().add(offset) as *mut u32) }
        }
        fn u64(&self, offset: usize) -> &AtomicU64 {
            &self.0[offset / 8]
        }
    }

    #[test]
    fn init_writes_every_field_and_the_rotation_skips_a_claimed_buffer() {
        let h = Mem::new();
        init(&h, 42, 512, 342, 7, 8);
        let r32 = |o| h.u32(o).load(SeqCst);
        assert_eq!(r32(off::MAGIC), MACEMU_VIDEO_MAGIC);
        assert_eq!(
            (r32(off::PID), r32(off::WIDTH), r32(off::HEIGHT)),
            (42, 512, 342)
        );
        assert_eq!((r32(off::DIRTY_W), r32(off::DIRTY_H)), (512, 342));
        assert_eq!((r32(off::FRAME_EVENTFD), r32(off::AUDIO_EVENTFD)), (7, 8));
        assert_eq!(r32(off::AUDIO_RING), 0);
        assert_eq!(
            r32(off::AUDIO_SILENCE),
            48_000,
            "silence frame: sample_rate first"
        );
        assert_eq!(FrameCursor::load(&h), FrameCursor::default());

        // v4's rotation 0 → 1 → 2 → 0, each frame under an even-after sequence lock.
        let mut c = FrameCursor::load(&h);
        for (ready, next) in [(0, 1), (1, 2), (2, 0)] {
            complete_frame(&h, &mut c, 1000 + ready as u64, |h| {
                assert_eq!(h.u32(off::SEQLOCK).load(SeqCst) & 1, 1, "odd while writing");
            });
            assert_eq!(r32(off::READY_INDEX), ready);
            assert_eq!(r32(off::WRITE_INDEX), next);
            assert_eq!(r32(off::SEQLOCK) & 1, 0);
        }
        assert_eq!(h.u64(off::FRAME_COUNT).load(SeqCst), 3);
        // A reader holding buffer 1 is never handed to the writer.
        h.u32(off::CLAIM).store(claim_of(1), SeqCst);
        complete_frame(&h, &mut c, 2000, |_| {});
        assert_eq!((r32(off::READY_INDEX), r32(off::WRITE_INDEX)), (0, 2));
        // A C emulator's cursor comes back from memory; a corrupt index counts as 0.
        assert_eq!(FrameCursor::load(&h), c);
        h.u32(off::WRITE_INDEX).store(77, SeqCst);
        assert_eq!(FrameCursor::load(&h).write_index, 0);
    }
}
