//! The server's reads of shared memory over arbitrary bytes, for the fuzz targets and their corpus
//! replay (`fuzz/src/ipc.rs`). Not part of the protocol API.

use crate::abi::{off, MACEMU_HEADER_SIZE, MACEMU_VIDEO_SHM_SIZE};
use crate::shm::{MapError, ShmMap};
use crate::subscriber::{snapshot_in, FrameView};
use crate::{audio, AudioFrame, IpcError};
use rustix::fd::{AsFd, OwnedFd};
use std::sync::atomic::Ordering::SeqCst;

/// Attempts per frame snapshot: enough to exercise every branch without the real reader's
/// patience (which yields for a writer stuck mid-update and would slow the fuzzer down).
const ATTEMPTS: u32 = 64;

/// A full-size reader mapping over an anonymous memory file whose header the caller sets.
#[derive(Debug)]
pub struct Probe {
    map: ShmMap,
    fd: OwnedFd,
}

impl Probe {
    pub fn new() -> std::io::Result<Probe> {
        let fd = rustix::fs::memfd_create("macemu-fuzz", rustix::fs::MemfdFlags::CLOEXEC)?;
        rustix::fs::ftruncate(&fd, MACEMU_VIDEO_SHM_SIZE as u64)?;
        let fd2 = fd.as_fd().try_clone_to_owned()?;
        let map = ShmMap::reader_from_fd(fd2).map_err(|e| match e {
            MapError::Io(e) => std::io::Error::from(e),
            other => std::io::Error::other(format!("{other:?}")),
        })?;
        Ok(Probe { map, fd })
    }

    /// Writes `bytes` over the header (the rest of the header zeroed; longer input cut off), as
    /// another process writing the shared memory would.
    pub fn set_header(&self, bytes: &[u8]) -> std::io::Result<()> {
        let mut h = vec![0u8; MACEMU_HEADER_SIZE];
        let n = bytes.len().min(h.len());
        h[..n].copy_from_slice(&bytes[..n]);
        let mut at = 0;
        while at < h.len() {
            at += rustix::io::pwrite(&self.fd, &h[at..], at as u64)?;
        }
        Ok(())
    }

    /// The server's frame snapshot (claim, seqlock, validation) after the frame count `last`.
    pub fn frame(&self, last: Option<u64>) -> Result<FrameView<'_>, IpcError> {
        let mut last = last;
        snapshot_in(&self.map, &mut last, ATTEMPTS)
    }

    /// The server's audio read: the next frame of the ring, or silence.
    pub fn audio(&self) -> Result<AudioFrame, IpcError> {
        audio::pop(&self.map)
    }

    /// The reader-claim word (released when a frame view is dropped).
    pub fn claim(&self) -> u32 {
        self.map.u32(off::CLAIM).load(SeqCst)
    }

    /// Resizes the object to `len` bytes; returns whether the reader still sees it as intact.
    pub fn resize(&self, len: u64) -> std::io::Result<bool> {
        rustix::fs::ftruncate(&self.fd, len)?;
        Ok(self.map.intact())
    }
}
