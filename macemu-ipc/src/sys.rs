//! Thin safe wrappers over the system calls the protocol uses (via rustix; no `unsafe` here).

use rustix::event::{EventfdFlags, PollFd, PollFlags};
use rustix::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use rustix::io::Errno;
use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::time::Duration;

/// Whether process `pid` exists and is ours to signal (`kill(pid, 0)`). A permission error means
/// the process belongs to another user: not an emulator we may attach to, so not alive for us.
pub fn pid_alive(pid: u32) -> bool {
    let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    rustix::process::test_kill_process(p).is_ok()
}

/// Our effective uid: the owner every shared-memory object, socket and peer must have.
pub(crate) fn our_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The uid of the process at the other end of a connected Unix socket (SO_PEERCRED, taken by
/// the kernel at connect time, so it cannot be forged by the peer).
pub(crate) fn peer_uid(sock: impl AsFd) -> Result<u32, Errno> {
    Ok(rustix::net::sockopt::socket_peercred(sock)?.uid.as_raw())
}

/// Makes a descriptor non-blocking: a peer may hand over blocking eventfds, and one blocking
/// read on them would stall the reader for good.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    let flags = rustix::fs::fcntl_getfl(fd)?;
    rustix::fs::fcntl_setfl(fd, flags | rustix::fs::OFlags::NONBLOCK)
}

/// `eventfd(0, EFD_NONBLOCK | EFD_SEMAPHORE)` (close-on-exec too).
pub(crate) fn new_eventfd() -> Result<OwnedFd, Errno> {
    rustix::event::eventfd(
        0,
        EventfdFlags::NONBLOCK | EventfdFlags::SEMAPHORE | EventfdFlags::CLOEXEC,
    )
}

/// Adds 1 to an eventfd. A full counter (EAGAIN) means the reader is far behind; the frame is
/// still published, so it is not an error.
pub(crate) fn signal(efd: BorrowedFd<'_>) -> Result<(), Errno> {
    match rustix::io::write(efd, &1u64.to_ne_bytes()) {
        Ok(_) | Err(Errno::AGAIN) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Consumes up to `max` pending events (semaphore mode: one per read). Returns how many.
pub(crate) fn drain(efd: BorrowedFd<'_>, max: usize) -> Result<usize, Errno> {
    let mut buf = [0u8; 8];
    for n in 0..max {
        match rustix::io::read(efd, &mut buf) {
            Ok(_) => {}
            Err(Errno::AGAIN) => return Ok(n),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(max)
}

/// Waits until one of `fds` is readable (or hung up) or `timeout` passes; returns readiness
/// per fd. EINTR counts as a spurious wakeup.
pub(crate) fn poll_readable<const N: usize>(
    fds: [BorrowedFd<'_>; N],
    timeout: Duration,
) -> Result<[bool; N], Errno> {
    let mut pfds = fds.map(|fd| PollFd::from_borrowed_fd(fd, PollFlags::IN));
    let ts = rustix::time::Timespec::try_from(timeout).unwrap_or(rustix::time::Timespec {
        tv_sec: i64::MAX,
        tv_nsec: 0,
    });
    match rustix::event::poll(&mut pfds, Some(&ts)) {
        Ok(_) | Err(Errno::INTR) => {}
        Err(e) => return Err(e),
    }
    Ok(std::array::from_fn(|i| !pfds[i].revents().is_empty()))
}

/// Whether `fd` is an eventfd (checked through /proc, Linux).
pub(crate) fn is_eventfd(fd: BorrowedFd<'_>) -> bool {
    is_eventfd_raw(fd.as_raw_fd())
}

/// Whether the fd number `fd` names an eventfd of this process: for fd numbers read from
/// shared memory, which the other side could have rewritten.
pub fn is_eventfd_raw(fd: i32) -> bool {
    fd >= 0
        && std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .map(|p| p.to_string_lossy() == "anon_inode:[eventfd]")
            .unwrap_or(false)
}

/// Sends the v4 handshake: one byte plus SCM_RIGHTS [video eventfd, audio eventfd].
pub(crate) fn send_with_fds(
    sock: BorrowedFd<'_>,
    byte: u8,
    fds: &[BorrowedFd<'_>],
) -> Result<(), Errno> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(2))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    if !fds.is_empty() && !control.push(SendAncillaryMessage::ScmRights(fds)) {
        return Err(Errno::NOBUFS);
    }
    let payload = [byte];
    rustix::net::sendmsg(
        sock,
        &[IoSlice::new(&payload)],
        &mut control,
        SendFlags::NOSIGNAL,
    )?;
    Ok(())
}

/// Receives the handshake: `None` on EOF, else the byte and every fd passed with it.
pub(crate) fn recv_with_fds(sock: BorrowedFd<'_>) -> Result<Option<(u8, Vec<OwnedFd>)>, Errno> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let got = loop {
        match rustix::net::recvmsg(
            sock,
            &mut [IoSliceMut::new(&mut byte)],
            &mut control,
            RecvFlags::CMSG_CLOEXEC,
        ) {
            Err(Errno::INTR) => continue,
            other => break other?,
        }
    };
    let mut fds = Vec::new();
    for msg in control.drain() {
        if let RecvAncillaryMessage::ScmRights(rights) = msg {
            fds.extend(rights);
        }
    }
    if got.bytes == 0 {
        return Ok(None);
    }
    Ok(Some((byte[0], fds)))
}

/// State of a connected stream socket, checked without consuming data.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum PeerState {
    Open,
    /// Data is waiting to be read.
    Readable,
    Closed,
}

pub(crate) fn peer_state(sock: impl AsFd) -> PeerState {
    let mut b = [0u8; 1];
    match rustix::net::recv(sock, &mut b, RecvFlags::PEEK | RecvFlags::DONTWAIT) {
        Ok((0, _)) => PeerState::Closed,
        Ok(_) => PeerState::Readable,
        Err(Errno::AGAIN) | Err(Errno::INTR) => PeerState::Open,
        Err(_) => PeerState::Closed,
    }
}

/// Writes all of `buf` (no SIGPIPE). Blocks up to the socket's send timeout.
pub(crate) fn send_all(sock: impl AsFd, mut buf: &[u8]) -> Result<(), Errno> {
    while !buf.is_empty() {
        match rustix::net::send(&sock, buf, SendFlags::NOSIGNAL) {
            Ok(n) => buf = &buf[n..],
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Non-blocking read of whatever is available: `Ok(0)` is EOF, `Err(AGAIN)` nothing yet.
pub(crate) fn recv_nonblocking(sock: impl AsFd, buf: &mut [u8]) -> Result<usize, Errno> {
    loop {
        match rustix::net::recv(&sock, &mut *buf, RecvFlags::DONTWAIT) {
            Ok((n, _)) => return Ok(n),
            Err(Errno::INTR) => {}
            Err(e) => return Err(e),
        }
    }
}
