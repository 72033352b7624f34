//! The exact v4 binary layout (`ipc_protocol.h`), as `#[repr(C)]` types and constants.
//!
//! Every offset and size is checked at compile time against the table measured from the original
//! header with gcc on x86-64 (`docs/ipc-v4-abi.md`). These types describe memory; the live shared
//! mapping is only ever accessed through [`crate::shm`], field by field, never as a Rust reference
//! to the whole struct (another process writes it concurrently).

use bytemuck::{Pod, Zeroable};
use core::mem::{align_of, offset_of, size_of};

/// Shared-memory name prefix; the full name is `/macemu-video-<pid>`.
pub const MACEMU_VIDEO_SHM_PREFIX: &str = "/macemu-video-";
/// Control-socket path prefix; the full path is `/tmp/macemu-<pid>.sock`.
pub const MACEMU_CONTROL_SOCK_PREFIX: &str = "/tmp/macemu-";
/// Control-socket path suffix.
pub const MACEMU_CONTROL_SOCK_SUFFIX: &str = ".sock";

/// `"MEM4"`.
pub const MACEMU_VIDEO_MAGIC: u32 = 0x4D454D34;
pub const MACEMU_IPC_VERSION: u32 = 4;
pub const MACEMU_MAX_WIDTH: u32 = 1920;
pub const MACEMU_MAX_HEIGHT: u32 = 1080;
/// One frame buffer: the maximum resolution at 4 bytes per pixel.
pub const MACEMU_BGRA_FRAME_SIZE: usize = 8_294_400;
pub const MACEMU_NUM_BUFFERS: usize = 3;

pub const MACEMU_STATE_STOPPED: u32 = 0;
pub const MACEMU_STATE_RUNNING: u32 = 1;
pub const MACEMU_STATE_PAUSED: u32 = 2;

/// Bytes A,R,G,B (Mac native 32-bit).
pub const MACEMU_PIXFMT_ARGB: u32 = 0;
/// Bytes B,G,R,A.
pub const MACEMU_PIXFMT_BGRA: u32 = 1;

pub const MACEMU_AUDIO_FORMAT_NONE: u32 = 0;
/// Big-endian signed 16-bit PCM, as the Mac produces it.
pub const MACEMU_AUDIO_FORMAT_PCM_S16: u32 = 1;
pub const MACEMU_AUDIO_MAX_SAMPLE_RATE: u32 = 48_000;
pub const MACEMU_AUDIO_MAX_CHANNELS: u32 = 2;
pub const MACEMU_AUDIO_FRAME_MS: u32 = 20;
/// 20 ms at 48 kHz.
pub const MACEMU_AUDIO_MAX_SAMPLES_PER_FRAME: u32 = 960;
/// 960 samples × 2 channels × 2 bytes.
pub const MACEMU_AUDIO_MAX_FRAME_SIZE: usize = 3840;
/// Legacy double-buffer count (fields kept for layout; the frame ring replaced them).
pub const MACEMU_AUDIO_NUM_BUFFERS: u32 = 2;
/// Audio frame ring: full when `(w + 1) % 3 == r`, empty when `r == w`.
pub const MACEMU_AUDIO_FRAME_RING_SIZE: usize = 3;

pub const MACEMU_INPUT_KEY: u8 = 1;
pub const MACEMU_INPUT_MOUSE: u8 = 2;
pub const MACEMU_INPUT_COMMAND: u8 = 3;
pub const MACEMU_INPUT_PING: u8 = 4;
pub const MACEMU_INPUT_AUDIO_REQUEST: u8 = 5;
pub const MACEMU_INPUT_MOUSE_MODE: u8 = 6;

pub const MACEMU_KEY_DOWN: u8 = 0x01;
pub const MACEMU_KEY_UP: u8 = 0x00;

pub const MACEMU_MOUSE_LEFT: u8 = 0x01;
pub const MACEMU_MOUSE_RIGHT: u8 = 0x02;
pub const MACEMU_MOUSE_MIDDLE: u8 = 0x04;
/// In `MacEmuMouseInput.hdr.flags`: x/y are absolute coordinates, else deltas.
pub const MACEMU_MOUSE_ABSOLUTE: u8 = 0x10;

pub const MACEMU_CMD_START: u8 = 1;
pub const MACEMU_CMD_STOP: u8 = 2;
pub const MACEMU_CMD_RESET: u8 = 3;
pub const MACEMU_CMD_PAUSE: u8 = 4;
pub const MACEMU_CMD_RESUME: u8 = 5;

/// A 32-bit word that C declares `_Atomic uint32_t` and C++ `std::atomic<uint32_t>`: same size and
/// alignment as `uint32_t`. Rust code never touches it by value inside the mapping; it goes
/// through `AtomicU32` views in [`crate::shm`].
#[repr(transparent)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct MacEmuAtomicU32(pub u32);

/// One 20 ms (at most) audio frame in the shared ring.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub struct MacEmuAudioFrame {
    /// 11025, 22050, 44100 or 48000.
    pub sample_rate: u32,
    /// 1 or 2.
    pub channels: u32,
    /// Samples per channel in this frame (≤ 960).
    pub samples: u32,
    /// `MACEMU_AUDIO_FORMAT_*`.
    pub format: u32,
    pub timestamp_us: u64,
    pub _padding: [u32; 2],
    /// Interleaved big-endian S16.
    pub data: [u8; MACEMU_AUDIO_MAX_FRAME_SIZE],
}

/// Ping timestamps echoed to the server (an anonymous struct in the original header).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct MacEmuPingTimestamps {
    pub t1_browser_ms: u64,
    pub t2_server_us: u64,
    pub t3_emulator_us: u64,
    pub t4_frame_us: u64,
}

/// The whole shared region (24,898,880 bytes).
///
/// `_reserved` carries our reader claim (0 = none, `i + 1` = frame `i` is being read); old peers
/// write it as zero and ignore it, which keeps them working unchanged.
#[repr(C)]
#[derive(Clone, Copy, Zeroable)]
pub struct MacEmuIPCBuffer {
    pub magic: u32,
    pub version: u32,
    pub pid: u32,
    pub state: u32,
    pub width: u32,
    pub height: u32,
    pub pixel_format: u32,
    pub _reserved: u32,
    pub dirty_x: u32,
    pub dirty_y: u32,
    pub dirty_width: u32,
    pub dirty_height: u32,
    pub cursor_x: u16,
    pub cursor_y: u16,
    pub cursor_visible: u8,
    pub _cursor_reserved: [u8; 3],
    pub write_index: u32,
    pub ready_index: u32,
    pub frame_count: u64,
    pub timestamp_us: u64,
    pub mouse_latency_avg_ms: MacEmuAtomicU32,
    pub mouse_latency_samples: MacEmuAtomicU32,
    pub ping_timestamps: MacEmuPingTimestamps,
    pub ping_sequence: MacEmuAtomicU32,
    pub frame_ready_eventfd: i32,
    pub audio_sample_rate: u32,
    pub audio_channels: u32,
    pub audio_format: u32,
    pub audio_samples_in_frame: u32,
    pub audio_write_index: u32,
    pub audio_ready_index: u32,
    pub audio_frame_count: u64,
    pub audio_timestamp_us: u64,
    pub audio_ready_eventfd: i32,
    pub audio_frame_write_idx: MacEmuAtomicU32,
    pub audio_frame_read_idx: MacEmuAtomicU32,
    pub audio_frame_ring: [MacEmuAudioFrame; MACEMU_AUDIO_FRAME_RING_SIZE],
    pub audio_silence_frame: MacEmuAudioFrame,
    pub capture_trigger: MacEmuAtomicU32,
    pub frames: [[u8; MACEMU_BGRA_FRAME_SIZE]; MACEMU_NUM_BUFFERS],
}

/// Total size of the shared region.
pub const MACEMU_VIDEO_SHM_SIZE: usize = size_of::<MacEmuIPCBuffer>();
/// Fixed frame stride in bytes (1920 × 4).
pub const MACEMU_BGRA_STRIDE: usize = MACEMU_MAX_WIDTH as usize * 4;
/// Size of everything before `frames`: what must be mapped to validate and read metadata.
pub const MACEMU_HEADER_SIZE: usize = offset_of!(MacEmuIPCBuffer, frames);
/// The four bytes of compiler padding after `audio_frame_read_idx` (180..184). Our publisher
/// uses them as a sequence lock around metadata updates (odd while it writes); old peers never
/// look there, and a zero there means "no sequence lock" which our reader tolerates.
pub const MACEMU_SEQLOCK_OFFSET: usize = 180;

/// Input message header (4 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct MacEmuInputHeader {
    pub r#type: u8,
    pub flags: u8,
    pub _reserved: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct MacEmuKeyInput {
    pub hdr: MacEmuInputHeader,
    pub mac_keycode: u8,
    pub modifiers: u8,
    pub _reserved: u16,
}

/// 24 bytes: four bytes of compiler padding before `timestamp_ms`, as in C.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Zeroable)]
pub struct MacEmuMouseInput {
    pub hdr: MacEmuInputHeader,
    pub x: i16,
    pub y: i16,
    pub buttons: u8,
    pub _reserved: [u8; 3],
    pub timestamp_ms: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct MacEmuCommandInput {
    pub hdr: MacEmuInputHeader,
    pub command: u8,
    pub _reserved: [u8; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct MacEmuPingInput {
    pub hdr: MacEmuInputHeader,
    pub sequence: u32,
    pub t1_browser_send_ms: u64,
    pub t2_server_recv_us: u64,
    pub t3_emulator_recv_us: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct MacEmuAudioRequestInput {
    pub hdr: MacEmuInputHeader,
    pub requested_samples: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Pod, Zeroable)]
pub struct MacEmuMouseModeInput {
    pub hdr: MacEmuInputHeader,
    pub mode: u8,
    pub _reserved: [u8; 3],
}

/// Any input message (32 bytes, 8-aligned).
#[repr(C)]
#[derive(Clone, Copy, Zeroable)]
pub union MacEmuInput {
    pub hdr: MacEmuInputHeader,
    pub key: MacEmuKeyInput,
    pub mouse: MacEmuMouseInput,
    pub cmd: MacEmuCommandInput,
    pub ping: MacEmuPingInput,
    pub audio_req: MacEmuAudioRequestInput,
    pub mouse_mode: MacEmuMouseModeInput,
}

macro_rules! layout {
    ($t:ty, size $s:expr, align $a:expr; $($f:ident @ $o:expr),* $(,)?) => {
        const _: () = {
            assert!(size_of::<$t>() == $s);
            assert!(align_of::<$t>() == $a);
            $(assert!(offset_of!($t, $f) == $o);)*
        };
    };
}

layout!(MacEmuAudioFrame, size 3872, align 8;
    sample_rate @ 0, channels @ 4, samples @ 8, format @ 12, timestamp_us @ 16, _padding @ 24,
    data @ 32);
layout!(MacEmuIPCBuffer, size 24_898_880, align 8;
    magic @ 0, version @ 4, pid @ 8, state @ 12, width @ 16, height @ 20, pixel_format @ 24,
    _reserved @ 28, dirty_x @ 32, dirty_y @ 36, dirty_width @ 40, dirty_height @ 44,
    cursor_x @ 48, cursor_y @ 50, cursor_visible @ 52, _cursor_reserved @ 53, write_index @ 56,
    ready_index @ 60, frame_count @ 64, timestamp_us @ 72, mouse_latency_avg_ms @ 80,
    mouse_latency_samples @ 84, ping_timestamps @ 88, ping_sequence @ 120,
    frame_ready_eventfd @ 124, audio_sample_rate @ 128, audio_channels @ 132, audio_format @ 136,
    audio_samples_in_frame @ 140, audio_write_index @ 144, audio_ready_index @ 148,
    audio_frame_count @ 152, audio_timestamp_us @ 160, audio_ready_eventfd @ 168,
    audio_frame_write_idx @ 172, audio_frame_read_idx @ 176, audio_frame_ring @ 184,
    audio_silence_frame @ 11800, capture_trigger @ 15672, frames @ 15676);
layout!(MacEmuPingTimestamps, size 32, align 8;
    t1_browser_ms @ 0, t2_server_us @ 8, t3_emulator_us @ 16, t4_frame_us @ 24);
layout!(MacEmuInputHeader, size 4, align 2; r#type @ 0, flags @ 1, _reserved @ 2);
layout!(MacEmuKeyInput, size 8, align 2; hdr @ 0, mac_keycode @ 4, modifiers @ 5, _reserved @ 6);
layout!(MacEmuMouseInput, size 24, align 8;
    hdr @ 0, x @ 4, y @ 6, buttons @ 8, _reserved @ 9, timestamp_ms @ 16);
layout!(MacEmuCommandInput, size 8, align 2; hdr @ 0, command @ 4, _reserved @ 5);
layout!(MacEmuPingInput, size 32, align 8;
    hdr @ 0, sequence @ 4, t1_browser_send_ms @ 8, t2_server_recv_us @ 16,
    t3_emulator_recv_us @ 24);
layout!(MacEmuAudioRequestInput, size 8, align 4; hdr @ 0, requested_samples @ 4);
layout!(MacEmuMouseModeInput, size 8, align 2; hdr @ 0, mode @ 4, _reserved @ 5);
layout!(MacEmuInput, size 32, align 8;);

const _: () = {
    assert!(MACEMU_BGRA_FRAME_SIZE == (MACEMU_MAX_WIDTH * MACEMU_MAX_HEIGHT * 4) as usize);
    assert!(
        MACEMU_AUDIO_MAX_FRAME_SIZE
            == (MACEMU_AUDIO_MAX_SAMPLES_PER_FRAME * MACEMU_AUDIO_MAX_CHANNELS * 2) as usize
    );
    assert!(
        MACEMU_AUDIO_MAX_SAMPLES_PER_FRAME
            == MACEMU_AUDIO_MAX_SAMPLE_RATE * MACEMU_AUDIO_FRAME_MS / 1000
    );
    // The sequence word sits exactly in the compiler padding between the ring indices and the ring.
    assert!(offset_of!(MacEmuIPCBuffer, audio_frame_read_idx) + 4 == MACEMU_SEQLOCK_OFFSET);
    assert!(offset_of!(MacEmuIPCBuffer, audio_frame_ring) == MACEMU_SEQLOCK_OFFSET + 4);
};

/// Field offsets used by [`crate::shm`] (named once, here, next to the asserted layout).
pub(crate) mod off {
    use super::*;
    pub(crate) const MAGIC: usize = offset_of!(MacEmuIPCBuffer, magic);
    pub(crate) const VERSION: usize = offset_of!(MacEmuIPCBuffer, version);
    pub(crate) const PID: usize = offset_of!(MacEmuIPCBuffer, pid);
    pub(crate) const STATE: usize = offset_of!(MacEmuIPCBuffer, state);
    pub(crate) const WIDTH: usize = offset_of!(MacEmuIPCBuffer, width);
    pub(crate) const HEIGHT: usize = offset_of!(MacEmuIPCBuffer, height);
    pub(crate) const PIXEL_FORMAT: usize = offset_of!(MacEmuIPCBuffer, pixel_format);
    pub(crate) const CLAIM: usize = offset_of!(MacEmuIPCBuffer, _reserved);
    pub(crate) const DIRTY_X: usize = offset_of!(MacEmuIPCBuffer, dirty_x);
    pub(crate) const DIRTY_Y: usize = offset_of!(MacEmuIPCBuffer, dirty_y);
    pub(crate) const DIRTY_W: usize = offset_of!(MacEmuIPCBuffer, dirty_width);
    pub(crate) const DIRTY_H: usize = offset_of!(MacEmuIPCBuffer, dirty_height);
    /// cursor_x (u16), cursor_y (u16) as one 32-bit word.
    pub(crate) const CURSOR_XY: usize = offset_of!(MacEmuIPCBuffer, cursor_x);
    /// cursor_visible plus the three reserved bytes, as one 32-bit word.
    pub(crate) const CURSOR_VIS: usize = offset_of!(MacEmuIPCBuffer, cursor_visible);
    pub(crate) const WRITE_INDEX: usize = offset_of!(MacEmuIPCBuffer, write_index);
    pub(crate) const READY_INDEX: usize = offset_of!(MacEmuIPCBuffer, ready_index);
    pub(crate) const FRAME_COUNT: usize = offset_of!(MacEmuIPCBuffer, frame_count);
    pub(crate) const TIMESTAMP_US: usize = offset_of!(MacEmuIPCBuffer, timestamp_us);
    pub(crate) const MOUSE_LAT_AVG: usize = offset_of!(MacEmuIPCBuffer, mouse_latency_avg_ms);
    pub(crate) const MOUSE_LAT_SAMPLES: usize = offset_of!(MacEmuIPCBuffer, mouse_latency_samples);
    pub(crate) const PING_T1: usize = offset_of!(MacEmuIPCBuffer, ping_timestamps);
    pub(crate) const PING_T2: usize = PING_T1 + 8;
    pub(crate) const PING_T3: usize = PING_T1 + 16;
    pub(crate) const PING_T4: usize = PING_T1 + 24;
    pub(crate) const PING_SEQUENCE: usize = offset_of!(MacEmuIPCBuffer, ping_sequence);
    pub(crate) const FRAME_EVENTFD: usize = offset_of!(MacEmuIPCBuffer, frame_ready_eventfd);
    pub(crate) const AUDIO_SAMPLE_RATE: usize = offset_of!(MacEmuIPCBuffer, audio_sample_rate);
    pub(crate) const AUDIO_CHANNELS: usize = offset_of!(MacEmuIPCBuffer, audio_channels);
    pub(crate) const AUDIO_FORMAT: usize = offset_of!(MacEmuIPCBuffer, audio_format);
    pub(crate) const AUDIO_SAMPLES_IN_FRAME: usize =
        offset_of!(MacEmuIPCBuffer, audio_samples_in_frame);
    pub(crate) const AUDIO_WRITE_INDEX: usize = offset_of!(MacEmuIPCBuffer, audio_write_index);
    pub(crate) const AUDIO_READY_INDEX: usize = offset_of!(MacEmuIPCBuffer, audio_ready_index);
    pub(crate) const AUDIO_FRAME_COUNT: usize = offset_of!(MacEmuIPCBuffer, audio_frame_count);
    pub(crate) const AUDIO_TIMESTAMP_US: usize = offset_of!(MacEmuIPCBuffer, audio_timestamp_us);
    pub(crate) const AUDIO_EVENTFD: usize = offset_of!(MacEmuIPCBuffer, audio_ready_eventfd);
    pub(crate) const AUDIO_W: usize = offset_of!(MacEmuIPCBuffer, audio_frame_write_idx);
    pub(crate) const AUDIO_R: usize = offset_of!(MacEmuIPCBuffer, audio_frame_read_idx);
    pub(crate) const SEQLOCK: usize = MACEMU_SEQLOCK_OFFSET;
    pub(crate) const AUDIO_RING: usize = offset_of!(MacEmuIPCBuffer, audio_frame_ring);
    pub(crate) const AUDIO_SILENCE: usize = offset_of!(MacEmuIPCBuffer, audio_silence_frame);
    pub(crate) const CAPTURE_TRIGGER: usize = offset_of!(MacEmuIPCBuffer, capture_trigger);
    pub(crate) const FRAMES: usize = offset_of!(MacEmuIPCBuffer, frames);
    pub(crate) const AUDIO_FRAME_SIZE: usize = size_of::<MacEmuAudioFrame>();
    pub(crate) const AF_DATA: usize = offset_of!(MacEmuAudioFrame, data);
}
