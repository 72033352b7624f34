//! The shared-memory mapping: the only module with `unsafe` code (plus, with the `tokio`
//! feature, handing owned descriptors to tokio's reactor).
//!
//! Another process writes the region concurrently, and it may be buggy or hostile. So the mapping
//! is never viewed as a `MacEmuIPCBuffer` reference: header words are read and written through
//! `AtomicU32`/`AtomicU64` views at fixed, layout-asserted offsets, and every value read is
//! validated by the caller before it is used as an index or a size. Bulk bytes (audio, frames)
//! are copied or borrowed by bounds-checked offsets.

use crate::abi::off;
use crate::abi::{
    MACEMU_BGRA_FRAME_SIZE, MACEMU_HEADER_SIZE, MACEMU_NUM_BUFFERS, MACEMU_VIDEO_SHM_SIZE,
};
use rustix::fd::OwnedFd;
use rustix::fs::Mode;
use rustix::mm::{MapFlags, ProtFlags};
use rustix::shm::OFlags;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::Arc;

/// Why a mapping could not be made.
#[derive(Debug)]
pub(crate) enum MapError {
    Io(rustix::io::Errno),
    /// The object is smaller than the layout needs.
    TooSmall {
        size: u64,
        needed: u64,
    },
    /// The object belongs to another user, is not a regular file, or others may write it.
    Untrusted(String),
}

impl From<rustix::io::Errno> for MapError {
    fn from(e: rustix::io::Errno) -> Self {
        MapError::Io(e)
    }
}

/// One mapping of a `/macemu-video-<pid>` object.
#[derive(Debug)]
pub(crate) struct ShmMap {
    ptr: NonNull<u8>,
    len: usize,
    /// Kept open by reader mappings to notice the owner shrinking the object (see `intact`).
    fd: Option<OwnedFd>,
    /// Whether this process owns frame writing (publisher); frames are then never borrowed
    /// shared from this mapping, only through [`FrameWriter`].
    writer: bool,
}

// SAFETY: the mapping is plain shared memory; all access goes through atomics or bounds-checked
// raw copies, and the only `&mut` borrow of frame memory is handed out by the unique
// `FrameWriter`, so sharing the handle between threads adds no aliasing.
unsafe impl Send for ShmMap {}
// SAFETY: as above; `&ShmMap` only exposes atomics, copies and (reader mappings) shared slices.
unsafe impl Sync for ShmMap {}

impl ShmMap {
    /// Creates `name` exclusively (mode 0600), sizes it to the full v4 layout and maps it
    /// read-write. Returns the mapping and the unique frame writer.
    pub(crate) fn create(name: &str) -> Result<(Arc<ShmMap>, FrameWriter), MapError> {
        let fd = rustix::shm::open(
            name,
            OFlags::CREATE | OFlags::EXCL | OFlags::RDWR,
            Mode::RUSR | Mode::WUSR,
        )?;
        // shm_open's mode is filtered by the umask, which only removes bits; enforce 0600 anyway.
        rustix::fs::fchmod(&fd, Mode::RUSR | Mode::WUSR)?;
        if let Err(e) = rustix::fs::ftruncate(&fd, MACEMU_VIDEO_SHM_SIZE as u64) {
            let _ = rustix::shm::unlink(name);
            return Err(e.into());
        }
        let map = match Self::map_fd(&fd, MACEMU_VIDEO_SHM_SIZE, true) {
            Ok(m) => m,
            Err(e) => {
                let _ = rustix::shm::unlink(name);
                return Err(e.into());
            }
        };
        let map = Arc::new(ShmMap {
            ptr: map,
            len: MACEMU_VIDEO_SHM_SIZE,
            fd: None,
            writer: true,
        });
        Ok((map.clone(), FrameWriter { map }))
    }

    /// Opens an existing object. `full` maps the whole layout read-write (a subscriber);
    /// otherwise only the header is mapped read-only (discovery).
    ///
    /// Only an object of our own uid is trusted: another local user could otherwise pose as the
    /// emulator and receive the keystrokes. The path is opened without following a symlink, and
    /// owner, type and mode are checked on the opened descriptor (no window between check and use).
    pub(crate) fn open(name: &str, full: bool) -> Result<ShmMap, MapError> {
        use rustix::fs::{FileType, OFlags as F};
        let access = if full { F::RDWR } else { F::RDONLY };
        let path = format!("{}{name}", crate::discovery::SHM_DIR);
        let fd = rustix::fs::open(
            path.as_str(),
            access | F::NOFOLLOW | F::CLOEXEC | F::NOCTTY | F::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::LOOP => MapError::Untrusted(format!("{path} is a symlink")),
            e => MapError::Io(e),
        })?;
        let st = rustix::fs::fstat(&fd)?;
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            return Err(MapError::Untrusted(format!("{path} is not a regular file")));
        }
        let uid = crate::sys::our_uid();
        if st.st_uid != uid {
            return Err(MapError::Untrusted(format!(
                "{path} belongs to uid {}, not to us (uid {uid})",
                st.st_uid
            )));
        }
        if st.st_mode & 0o022 != 0 {
            return Err(MapError::Untrusted(format!(
                "{path} is writable by other users (mode {:o})",
                st.st_mode & 0o777
            )));
        }
        let size = st.st_size.max(0) as u64;
        let needed = if full {
            MACEMU_VIDEO_SHM_SIZE
        } else {
            MACEMU_HEADER_SIZE
        };
        if size < needed as u64 {
            return Err(MapError::TooSmall {
                size,
                needed: needed as u64,
            });
        }
        let ptr = Self::map_fd(&fd, needed, full)?;
        Ok(ShmMap {
            ptr,
            len: needed,
            fd: Some(fd),
            writer: false,
        })
    }

    /// A full reader mapping of an object the caller created itself (the fuzzing probe).
    pub(crate) fn reader_from_fd(fd: OwnedFd) -> Result<ShmMap, MapError> {
        let size = rustix::fs::fstat(&fd)?.st_size.max(0) as u64;
        if size < MACEMU_VIDEO_SHM_SIZE as u64 {
            return Err(MapError::TooSmall {
                size,
                needed: MACEMU_VIDEO_SHM_SIZE as u64,
            });
        }
        let ptr = Self::map_fd(&fd, MACEMU_VIDEO_SHM_SIZE, true)?;
        Ok(ShmMap {
            ptr,
            len: MACEMU_VIDEO_SHM_SIZE,
            fd: Some(fd),
            writer: false,
        })
    }

    /// Whether the object still covers the whole mapping. The owner may shrink it (v4 peers are
    /// not bound to us), and touching a page past the end would raise SIGBUS: readers check this
    /// before each read of the mapping and treat a shrink as the emulator leaving. A shrink
    /// between this check and the read is not covered (see `Subscriber`).
    pub(crate) fn intact(&self) -> bool {
        match &self.fd {
            None => true,
            Some(fd) => rustix::fs::fstat(fd)
                .is_ok_and(|st| u64::try_from(st.st_size).is_ok_and(|s| s >= self.len as u64)),
        }
    }

    fn map_fd(fd: &OwnedFd, len: usize, writable: bool) -> Result<NonNull<u8>, rustix::io::Errno> {
        let prot = if writable {
            ProtFlags::READ | ProtFlags::WRITE
        } else {
            ProtFlags::READ
        };
        // SAFETY: a fresh shared mapping at an address the kernel picks; nothing in this process
        // aliases it. The object is at least `len` bytes (checked or just truncated by the caller),
        // so no access within `len` can fault with SIGBUS unless the owner shrinks it; readers
        // check for that before reading (`intact`).
        let p =
            unsafe { rustix::mm::mmap(std::ptr::null_mut(), len, prot, MapFlags::SHARED, fd, 0)? };
        Ok(NonNull::new(p.cast::<u8>()).expect("mmap never returns null on success"))
    }

    /// Whether the full layout is mapped (false for header-only discovery maps).
    pub(crate) fn is_full(&self) -> bool {
        self.len >= MACEMU_VIDEO_SHM_SIZE
    }

    /// The 32-bit header word at `offset` (a crate constant from `abi::off`).
    #[inline]
    pub(crate) fn u32(&self, offset: usize) -> &AtomicU32 {
        assert!(offset.is_multiple_of(4) && offset + 4 <= self.len.min(MACEMU_HEADER_SIZE));
        // SAFETY: in bounds and 4-aligned (the mapping is page-aligned); shared memory may be
        // changed by other processes at any time, which is exactly what an atomic tolerates.
        unsafe { &*self.ptr.as_ptr().add(offset).cast::<AtomicU32>() }
    }

    /// The 64-bit header word at `offset`.
    #[inline]
    pub(crate) fn u64(&self, offset: usize) -> &AtomicU64 {
        assert!(offset.is_multiple_of(8) && offset + 8 <= self.len.min(MACEMU_HEADER_SIZE));
        // SAFETY: in bounds and 8-aligned; see `u32`.
        unsafe { &*self.ptr.as_ptr().add(offset).cast::<AtomicU64>() }
    }

    /// Copies header bytes `[offset, offset + dst.len())` out (audio frames).
    pub(crate) fn read_bytes(&self, offset: usize, dst: &mut [u8]) {
        assert!(offset
            .checked_add(dst.len())
            .is_some_and(|end| end <= MACEMU_HEADER_SIZE.min(self.len)));
        // SAFETY: source range checked in bounds; `dst` is a distinct Rust buffer. The source may
        // change concurrently; a byte copy of shared memory yields some bytes, which callers
        // validate, and no reference to the source is created.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.ptr.as_ptr().add(offset),
                dst.as_mut_ptr(),
                dst.len(),
            )
        }
    }

    /// Copies `src` into header bytes at `offset` (audio frames, silence frame).
    pub(crate) fn write_bytes(&self, offset: usize, src: &[u8]) {
        assert!(offset
            .checked_add(src.len())
            .is_some_and(|end| end <= MACEMU_HEADER_SIZE.min(self.len)));
        assert!(self.writer, "only the publisher writes bulk header bytes");
        // SAFETY: destination range checked in bounds of a writable mapping; no Rust reference to
        // it exists (header memory is only reached through atomics and these copies).
        unsafe {
            std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr().add(offset), src.len())
        }
    }

    /// Borrows `len` bytes of frame buffer `index` for reading (subscriber mappings only).
    ///
    /// The caller holds a claim on `index` that our writer honours, so the bytes do not change
    /// while borrowed; a foreign writer that ignores claims could still change them, which can
    /// only produce wrong pixels, never an out-of-bounds access.
    pub(crate) fn frame(&self, index: usize, len: usize) -> &[u8] {
        assert!(
            !self.writer,
            "publisher mappings lend frames only through FrameWriter"
        );
        assert!(self.is_full() && index < MACEMU_NUM_BUFFERS && len <= MACEMU_BGRA_FRAME_SIZE);
        // SAFETY: index and length are in bounds of the full mapping (asserted above); this
        // process never writes frames through a reader mapping.
        unsafe {
            std::slice::from_raw_parts(
                self.ptr
                    .as_ptr()
                    .add(off::FRAMES + index * MACEMU_BGRA_FRAME_SIZE),
                len,
            )
        }
    }
}

impl Drop for ShmMap {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `mmap` returned; every slice handed out borrows `self`
        // (or the `FrameWriter`, which holds an `Arc` of `self`), so none outlives the mapping.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// The unique right to write frame buffers of a publisher mapping.
#[derive(Debug)]
pub(crate) struct FrameWriter {
    map: Arc<ShmMap>,
}

impl FrameWriter {
    /// Mutable view of the first `len` bytes of frame buffer `index`.
    pub(crate) fn frame_mut(&mut self, index: usize, len: usize) -> &mut [u8] {
        assert!(index < MACEMU_NUM_BUFFERS && len <= MACEMU_BGRA_FRAME_SIZE);
        // SAFETY: in bounds of the full mapping, which the `Arc` keeps alive; there is one
        // `FrameWriter` per publisher mapping and `&mut self` makes this the only live borrow of
        // its frame memory (publisher mappings never lend frames shared); our readers never read
        // a buffer the writer may pick (claim protocol in `video`).
        unsafe {
            std::slice::from_raw_parts_mut(
                self.map
                    .ptr
                    .as_ptr()
                    .add(off::FRAMES + index * MACEMU_BGRA_FRAME_SIZE),
                len,
            )
        }
    }
}

/// Registers an owned descriptor with tokio's reactor for readiness (tokio feature). Lives here
/// to keep every `unsafe` block of the crate in this module.
#[cfg(feature = "tokio")]
pub(crate) fn async_readable(fd: OwnedFd) -> std::io::Result<tokio::io::unix::AsyncFd<OwnedFd>> {
    // SAFETY: the `AsyncFd` takes ownership of `fd`, a descriptor this process duplicated for it
    // alone; nothing else closes or replaces it while it is registered.
    Ok(unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    }?)
}

impl crate::header::HeaderWords for ShmMap {
    fn u32(&self, offset: usize) -> &AtomicU32 {
        ShmMap::u32(self, offset)
    }

    fn u64(&self, offset: usize) -> &AtomicU64 {
        ShmMap::u64(self, offset)
    }
}
