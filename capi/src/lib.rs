//! C ABI of `macemu-ipc`: `libmacemu_ipc.a` / `.so` with the generated `include/macemu_ipc.h`.
//!
//! Two layers:
//! * the v4 helpers of BasiliskII's `ipc_protocol.h` (`macemu_init_ipc_buffer`,
//!   `macemu_frame_complete`, ...) as exported functions with the same names and meaning, so the
//!   header is a drop-in; `macemu_frame_complete` additionally honours our readers' claim, so a
//!   C emulator gets tear-free frames too;
//! * a handle API for new code (`macemu_publisher_*`), the Rust `Publisher` behind an opaque
//!   pointer, with `macemu_last_error()` for failures.
//!
//! This is an FFI layer: raw pointers come from C, and each dereference says why it is sound.

use ipc::abi::*;
use ipc::header::{self, FrameCursor, HeaderWords};
use ipc::{
    AudioPublisher, FrameMeta, FramePublisher, InputListener, IpcError, PixelFormat, Publisher,
    Rect,
};
use std::cell::RefCell;
use std::ffi::{c_char, c_int, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::{addr_of, addr_of_mut, null_mut};
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64};
use std::sync::Mutex;
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// v4 helpers (drop-in for ipc_protocol.h)
// ---------------------------------------------------------------------------------------------

/// `&AtomicU32` view of a `uint32_t`-sized field of a live buffer.
///
/// # Safety
/// `p` must point to a 4-aligned field inside a buffer that stays mapped for `'a`.
unsafe fn a32<'a>(p: *const u32) -> &'a AtomicU32 {
    // SAFETY: guaranteed by the caller; AtomicU32 has the size and alignment of u32.
    unsafe { AtomicU32::from_ptr(p.cast_mut()) }
}

/// # Safety
/// As [`a32`], 8-aligned.
unsafe fn a64<'a>(p: *const u64) -> &'a AtomicU64 {
    // SAFETY: guaranteed by the caller.
    unsafe { AtomicU64::from_ptr(p.cast_mut()) }
}

/// The header of a caller's buffer, word by word, for the shared header writer.
struct RawHeader(*mut MacEmuIPCBuffer);

impl RawHeader {
    /// # Safety
    /// `buf` must point to a whole `MacEmuIPCBuffer` that stays mapped while this lives.
    unsafe fn new(buf: *mut MacEmuIPCBuffer) -> RawHeader {
        RawHeader(buf)
    }
}

impl HeaderWords for RawHeader {
    fn u32(&self, offset: usize) -> &AtomicU32 {
        assert!(offset.is_multiple_of(4) && offset + 4 <= MACEMU_HEADER_SIZE);
        // SAFETY: in bounds of the header of a whole buffer (`new`'s contract) and 4-aligned
        // (the buffer is 8-aligned); another process may change it, which an atomic tolerates.
        unsafe { a32(self.0.cast::<u8>().add(offset).cast()) }
    }

    fn u64(&self, offset: usize) -> &AtomicU64 {
        assert!(offset.is_multiple_of(8) && offset + 8 <= MACEMU_HEADER_SIZE);
        // SAFETY: as `u32`, 8-aligned.
        unsafe { a64(self.0.cast::<u8>().add(offset).cast()) }
    }
}

/// Pointer to frame buffer `index`, or NULL when `buf` is NULL or `index` ≥ 3 (v4 did not check;
/// an index read from shared memory must not become a wild pointer).
///
/// # Safety
/// `buf` must be NULL or point to a whole `MacEmuIPCBuffer`.
#[no_mangle]
pub unsafe extern "C" fn macemu_get_frame_ptr(buf: *mut MacEmuIPCBuffer, index: u32) -> *mut u8 {
    if buf.is_null() || index as usize >= MACEMU_NUM_BUFFERS {
        return null_mut();
    }
    // SAFETY: `buf` points to a whole buffer (caller) and `index` is in range; no reference to
    // the frame memory is created.
    unsafe {
        addr_of_mut!((*buf).frames)
            .cast::<u8>()
            .add(index as usize * MACEMU_BGRA_FRAME_SIZE)
    }
}

/// The fixed frame stride in bytes (1920 × 4).
#[no_mangle]
pub extern "C" fn macemu_get_bgra_stride() -> c_int {
    MACEMU_BGRA_STRIDE as c_int
}

/// The buffer the emulator writes next (`frames[write_index]`), NULL if the index is corrupt.
///
/// # Safety
/// `buf` must be NULL or point to a whole `MacEmuIPCBuffer`.
#[no_mangle]
pub unsafe extern "C" fn macemu_get_write_frame(buf: *mut MacEmuIPCBuffer) -> *mut u8 {
    if buf.is_null() {
        return null_mut();
    }
    // SAFETY: `buf` is valid (caller); the field is 4-aligned.
    let idx = unsafe { a32(addr_of!((*buf).write_index)) }.load(SeqCst);
    // SAFETY: as above.
    unsafe { macemu_get_frame_ptr(buf, idx) }
}

/// The most recently completed frame (`frames[ready_index]`), NULL if the index is corrupt.
///
/// # Safety
/// `buf` must be NULL or point to a whole `MacEmuIPCBuffer`.
#[no_mangle]
pub unsafe extern "C" fn macemu_get_ready_frame(buf: *mut MacEmuIPCBuffer) -> *mut u8 {
    if buf.is_null() {
        return null_mut();
    }
    // SAFETY: `buf` is valid (caller); the field is 4-aligned.
    let idx = unsafe { a32(addr_of!((*buf).ready_index)) }.load(SeqCst);
    // SAFETY: as above.
    unsafe { macemu_get_frame_ptr(buf, idx) }
}

/// Same as [`macemu_get_ready_frame`] (v4 name for server code).
///
/// # Safety
/// `buf` must be NULL or point to a whole `MacEmuIPCBuffer`.
#[no_mangle]
pub unsafe extern "C" fn macemu_get_ready_bgra(buf: *mut MacEmuIPCBuffer) -> *mut u8 {
    // SAFETY: same contract.
    unsafe { macemu_get_ready_frame(buf) }
}

/// Bytes of pixel data for a `width`×`height` frame without stride padding.
#[no_mangle]
pub extern "C" fn macemu_actual_bgra_size(width: u32, height: u32) -> usize {
    width as usize * height as usize * 4
}

/// Emulator: the frame in `frames[write_index]` is complete. As v4: stores the timestamp, sets
/// `ready_index = write_index`, advances `write_index`, increments `frame_count` and signals
/// the frame eventfd. Unlike v4, the next write buffer skips one claimed by a reader (and a
/// corrupt `write_index` is treated as 0), so readers that claim never see a torn frame.
///
/// # Safety
/// `buf` must be NULL or point to a whole `MacEmuIPCBuffer` initialised by
/// [`macemu_init_ipc_buffer`] (or a v4 emulator).
#[no_mangle]
pub unsafe extern "C" fn macemu_frame_complete(buf: *mut MacEmuIPCBuffer, timestamp_us: u64) {
    if buf.is_null() {
        return;
    }
    // SAFETY: `buf` points to a whole buffer (caller).
    let h = unsafe { RawHeader::new(buf) };
    let mut cursor = FrameCursor::load(&h);
    header::complete_frame(&h, &mut cursor, timestamp_us, |_| {});
    // SAFETY: the eventfd field is naturally aligned in the asserted layout; the fd number is
    // the emulator's own, as in v4.
    unsafe {
        let efd = AtomicI32::from_ptr(addr_of_mut!((*buf).frame_ready_eventfd)).load(SeqCst);
        // The fd number is read from memory the server can write: signal it only if it is
        // an eventfd of this process, never an arbitrary file the number may now name.
        if efd >= 0 && ipc::is_eventfd(efd) {
            let fd = rustix::fd::BorrowedFd::borrow_raw(efd);
            let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
        }
    }
}

/// Emulator: initialises a buffer as v4 does (magic, version, pid, stopped, size, BGRA, indices 0,
/// dirty = whole frame, ping and stats zero, two eventfds created, audio ring zero, silence frame
/// 48 kHz stereo 960 samples). The eventfds are -1 if they cannot be created.
///
/// # Safety
/// `buf` must be NULL or point to a whole writable `MacEmuIPCBuffer`.
#[no_mangle]
pub unsafe extern "C" fn macemu_init_ipc_buffer(
    buf: *mut MacEmuIPCBuffer,
    pid: u32,
    width: u32,
    height: u32,
) {
    if buf.is_null() {
        return;
    }
    let new_efd = || {
        use rustix::event::{eventfd, EventfdFlags};
        use rustix::fd::IntoRawFd;
        // The fd is handed to C (stored in the buffer), which owns it from here on.
        eventfd(0, EventfdFlags::NONBLOCK | EventfdFlags::SEMAPHORE)
            .map_or(-1, |fd| fd.into_raw_fd())
    };
    // SAFETY: `buf` points to a whole writable buffer (caller); the header is written through
    // atomics, never through a reference to the whole buffer (which may be shared memory another
    // process already maps).
    let h = unsafe { RawHeader::new(buf) };
    header::init(&h, pid, width, height, new_efd(), new_efd());
}

/// Server: v4 validation. 0 ok, -1 bad magic, -2 bad version, -3 pid mismatch, -4 size over
/// 1920×1080; -5 for a NULL pointer.
///
/// # Safety
/// `buf` must be NULL or point to at least the header of a `MacEmuIPCBuffer`.
#[no_mangle]
pub unsafe extern "C" fn macemu_validate_ipc_buffer(
    buf: *const MacEmuIPCBuffer,
    expected_pid: u32,
) -> c_int {
    if buf.is_null() {
        return -5;
    }
    // SAFETY: `buf` points to a header (caller); aligned fields read atomically.
    let (magic, version, pid, width, height) = unsafe {
        (
            a32(addr_of!((*buf).magic)).load(SeqCst),
            a32(addr_of!((*buf).version)).load(SeqCst),
            a32(addr_of!((*buf).pid)).load(SeqCst),
            a32(addr_of!((*buf).width)).load(SeqCst),
            a32(addr_of!((*buf).height)).load(SeqCst),
        )
    };
    if magic != MACEMU_VIDEO_MAGIC {
        -1
    } else if version != MACEMU_IPC_VERSION {
        -2
    } else if pid != expected_pid {
        -3
    } else if width > MACEMU_MAX_WIDTH || height > MACEMU_MAX_HEIGHT {
        -4
    } else {
        0
    }
}

// ---------------------------------------------------------------------------------------------
// Handle API
// ---------------------------------------------------------------------------------------------

thread_local! {
    static LAST_ERROR: RefCell<CString> = RefCell::new(CString::default());
}

fn set_error(msg: impl std::fmt::Display) {
    let s = CString::new(msg.to_string().replace('\0', " ")).unwrap_or_default();
    LAST_ERROR.with(|e| *e.borrow_mut() = s);
}

/// Runs `f`, turning errors and panics into `fallback` plus `macemu_last_error()`.
fn guard<T>(fallback: T, f: impl FnOnce() -> Result<T, IpcError>) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            set_error(e);
            fallback
        }
        Err(_) => {
            set_error("internal error (panic)");
            fallback
        }
    }
}

/// The last error of a `macemu_publisher_*` call on this thread ("" if none). Valid until the
/// next call on this thread.
#[no_mangle]
pub extern "C" fn macemu_last_error() -> *const c_char {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// An emulator-side endpoint: shared memory, eventfds and control socket. The three parts
/// (frames, audio, input) may be used from three different threads.
pub struct MacEmuPublisher {
    frames: Mutex<FramePublisher>,
    audio: Mutex<AudioPublisher>,
    input: Mutex<InputListener>,
}

/// Metadata of a published frame.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct MacEmuFrameInfo {
    pub dirty_x: u32,
    pub dirty_y: u32,
    /// 0 = nothing changed.
    pub dirty_width: u32,
    pub dirty_height: u32,
    pub cursor_x: u16,
    pub cursor_y: u16,
    pub cursor_visible: u8,
    pub _reserved: [u8; 3],
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Creates `/macemu-video-<pid>` and `/tmp/macemu-<pid>.sock` announcing a `width`×`height`
/// screen. NULL on failure (see `macemu_last_error`). Call `macemu_publisher_poll_input`
/// regularly: it also accepts servers.
#[no_mangle]
pub extern "C" fn macemu_publisher_create(
    pid: u32,
    width: u32,
    height: u32,
) -> *mut MacEmuPublisher {
    guard(null_mut(), || {
        let (frames, audio, input) = Publisher::create_with_size(pid, width, height)?.split();
        Ok(Box::into_raw(Box::new(MacEmuPublisher {
            frames: Mutex::new(frames),
            audio: Mutex::new(audio),
            input: Mutex::new(input),
        })))
    })
}

/// Destroys a publisher: unlinks the shared memory and the socket. NULL is ignored.
///
/// # Safety
/// `p` must be NULL or a pointer from `macemu_publisher_create`, not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn macemu_publisher_destroy(p: *mut MacEmuPublisher) {
    if !p.is_null() {
        // SAFETY: `p` came from `Box::into_raw` and ownership returns here (caller contract).
        drop(unsafe { Box::from_raw(p) });
    }
}

/// The buffer to draw the next frame into (`height` rows of `*stride` bytes), valid until the
/// next `macemu_publisher_publish`. `pixel_format` is `MACEMU_PIXFMT_*`. NULL on error.
///
/// # Safety
/// `p` must be a live publisher; `stride` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn macemu_publisher_frame(
    p: *const MacEmuPublisher,
    width: u32,
    height: u32,
    pixel_format: u32,
    stride: *mut u32,
) -> *mut u8 {
    // SAFETY: a live publisher (caller contract).
    let Some(p) = (unsafe { p.as_ref() }) else {
        set_error("null publisher");
        return null_mut();
    };
    guard(null_mut(), || {
        let fmt = PixelFormat::from_u32(pixel_format)
            .ok_or_else(|| IpcError::InvalidArgument(format!("pixel format {pixel_format}")))?;
        let mut frames = lock(&p.frames);
        let f = frames.frame_mut(width, height, fmt)?;
        if !stride.is_null() {
            // SAFETY: non-null and writable (caller contract).
            unsafe { stride.write(f.stride as u32) };
        }
        Ok(f.data.as_mut_ptr())
    })
}

/// Publishes the frame drawn into the buffer from `macemu_publisher_frame`. `info` NULL means
/// the whole frame changed and no cursor. 0 ok, -1 error.
///
/// # Safety
/// `p` must be a live publisher; `info` NULL or readable.
#[no_mangle]
pub unsafe extern "C" fn macemu_publisher_publish(
    p: *const MacEmuPublisher,
    info: *const MacEmuFrameInfo,
) -> c_int {
    // SAFETY: a live publisher / readable info (caller contract).
    let (Some(p), info) = (unsafe { p.as_ref() }, unsafe { info.as_ref() }) else {
        set_error("null publisher");
        return -1;
    };
    guard(-1, || {
        let mut frames = lock(&p.frames);
        let meta = match info {
            Some(i) => FrameMeta {
                dirty: Rect {
                    x: i.dirty_x,
                    y: i.dirty_y,
                    width: i.dirty_width,
                    height: i.dirty_height,
                },
                cursor_x: i.cursor_x,
                cursor_y: i.cursor_y,
                cursor_visible: i.cursor_visible != 0,
            },
            None => {
                let (w, h) = frames.pending_size().ok_or(IpcError::NoFrame)?;
                FrameMeta {
                    dirty: Rect::full(w, h),
                    ..Default::default()
                }
            }
        };
        frames.publish(&meta)?;
        Ok(0)
    })
}

/// Sets the run state (`MACEMU_STATE_*`). 0 ok, -1 invalid state.
///
/// # Safety
/// `p` must be a live publisher.
#[no_mangle]
pub unsafe extern "C" fn macemu_publisher_set_state(
    p: *const MacEmuPublisher,
    state: u32,
) -> c_int {
    // SAFETY: a live publisher (caller contract).
    let Some(p) = (unsafe { p.as_ref() }) else {
        set_error("null publisher");
        return -1;
    };
    guard(-1, || {
        let s = ipc::EmulatorState::from_u32(state)
            .ok_or_else(|| IpcError::InvalidArgument(format!("state {state}")))?;
        lock(&p.frames).set_state(s);
        Ok(0)
    })
}

/// Pushes one audio frame of `count` interleaved native S16 samples (`count / channels` per
/// channel ≤ 960; rate 11025/22050/44100/48000; 1–2 channels). 1 pushed, 0 ring full, -1 error.
///
/// # Safety
/// `p` must be a live publisher; `samples` must point to `count` readable values (or be NULL
/// with `count == 0`).
#[no_mangle]
pub unsafe extern "C" fn macemu_publisher_push_audio(
    p: *const MacEmuPublisher,
    rate: u32,
    channels: u32,
    samples: *const i16,
    count: usize,
) -> c_int {
    // SAFETY: a live publisher (caller contract).
    let Some(p) = (unsafe { p.as_ref() }) else {
        set_error("null publisher");
        return -1;
    };
    let data: &[i16] = if count == 0 {
        &[]
    } else if samples.is_null() {
        set_error("null samples");
        return -1;
    } else {
        // SAFETY: `count` readable samples (caller contract).
        unsafe { std::slice::from_raw_parts(samples, count) }
    };
    guard(-1, || {
        Ok(lock(&p.audio).push(rate, channels, data)? as c_int)
    })
}

fn deliver(msg: Option<ipc::InputMessage>, out: *mut MacEmuInput) -> c_int {
    match msg {
        None => 0,
        Some(m) => {
            let bytes = m.encode();
            // SAFETY: `out` is writable for a whole MacEmuInput (32 bytes ≥ any message), per
            // the callers' contract; bytes are copied, no reference to `*out` is made.
            unsafe {
                out.write(<MacEmuInput as bytemuck::Zeroable>::zeroed());
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.cast::<u8>(), bytes.len());
            }
            1
        }
    }
}

/// Takes the next input message without blocking (also accepts servers and records pings).
/// 1 message written to `*out` (read `out->hdr.type`), 0 none, -1 error (a malformed message
/// is skipped; keep polling).
///
/// # Safety
/// `p` must be a live publisher; `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn macemu_publisher_poll_input(
    p: *const MacEmuPublisher,
    out: *mut MacEmuInput,
) -> c_int {
    // SAFETY: a live publisher (caller contract).
    let Some(p) = (unsafe { p.as_ref() }) else {
        set_error("null publisher");
        return -1;
    };
    if out.is_null() {
        set_error("null output");
        return -1;
    }
    guard(-1, || Ok(deliver(lock(&p.input).poll()?, out)))
}

/// As `macemu_publisher_poll_input`, waiting up to `timeout_ms` for a message.
///
/// # Safety
/// `p` must be a live publisher; `out` must be writable.
#[no_mangle]
pub unsafe extern "C" fn macemu_publisher_wait_input(
    p: *const MacEmuPublisher,
    out: *mut MacEmuInput,
    timeout_ms: u32,
) -> c_int {
    // SAFETY: a live publisher (caller contract).
    let Some(p) = (unsafe { p.as_ref() }) else {
        set_error("null publisher");
        return -1;
    };
    if out.is_null() {
        set_error("null output");
        return -1;
    }
    guard(-1, || {
        Ok(deliver(
            lock(&p.input).recv_timeout(Duration::from_millis(timeout_ms.into()))?,
            out,
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::fd::{AsRawFd, FromRawFd, OwnedFd};

    /// A server can rewrite the eventfd numbers in shared memory; the C helper must then not
    /// write its 8 bytes into whatever file that number names.
    #[test]
    fn frame_complete_signals_only_its_eventfd() {
        let words = std::mem::size_of::<MacEmuIPCBuffer>().div_ceil(8);
        let mut mem = vec![0u64; words];
        let buf = mem.as_mut_ptr().cast::<MacEmuIPCBuffer>();
        // SAFETY: a zeroed, 8-aligned block as large as the buffer.
        unsafe { macemu_init_ipc_buffer(buf, std::process::id(), 64, 64) };
        // SAFETY: initialised above; both fds were just created and are owned here.
        let (video, audio) = unsafe {
            (
                OwnedFd::from_raw_fd((*buf).frame_ready_eventfd),
                OwnedFd::from_raw_fd((*buf).audio_ready_eventfd),
            )
        };
        // SAFETY: a live buffer.
        unsafe { macemu_frame_complete(buf, 1) };
        let mut count = [0u8; 8];
        rustix::io::read(&video, &mut count).unwrap();
        assert_eq!(
            u64::from_ne_bytes(count),
            1,
            "the frame eventfd is signalled"
        );

        let path = std::env::temp_dir().join(format!("macemu-capi-fd-{}", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        // SAFETY: a live buffer; the field is plain data.
        unsafe {
            (*buf).frame_ready_eventfd = file.as_raw_fd();
            macemu_frame_complete(buf, 2);
        }
        let len = std::fs::metadata(&path).unwrap().len();
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            len, 0,
            "a regular file named by a rewritten fd is left alone"
        );
        // SAFETY: a live buffer.
        let frames = unsafe { (*buf).frame_count };
        assert_eq!(frames, 2, "the frame itself is still published");
        drop((video, audio));
    }
}
