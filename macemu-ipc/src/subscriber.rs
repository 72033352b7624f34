//! Server side: maps an emulator's shared memory, receives its eventfds and sends input.

use crate::abi::*;
use crate::discovery::{control_socket_path, shm_name};
use crate::drive::{DriveReport, ReportDecoder};
use crate::error::{ConnectError, IpcError};
use crate::input::InputMessage;
use crate::publisher::{BUSY_BYTE, HANDSHAKE_BYTE};
use crate::shm::{MapError, ShmMap};
use crate::sys::{self, PeerState};
use crate::video::{claim_of, HeaderSnapshot, NO_CLAIM};
use crate::{audio, AudioFrame, EmulatorState, PixelFormat, Rect, STRIDE};
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Drive reports kept between two [`Subscriber::take_drive_reports`] calls.
const MAX_PENDING_REPORTS: usize = 64;

/// How long the handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long sending one input message may block before the emulator counts as stuck.
const SEND_TIMEOUT: Duration = Duration::from_secs(1);
/// Liveness is re-checked at least this often while waiting.
const LIVENESS_PERIOD: Duration = Duration::from_millis(100);
/// Attempts to get a consistent (claimed, seqlock-stable) frame before giving up.
const SNAPSHOT_ATTEMPTS: u32 = 20_000;

/// Ping timestamps echoed by the emulator with a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PingEcho {
    pub sequence: u32,
    pub t1_browser_ms: u64,
    pub t2_server_us: u64,
    pub t3_emulator_us: u64,
    /// When the emulator completed the frame that carries the echo.
    pub t4_frame_us: u64,
}

/// A published frame, borrowed zero-copy from the mapping. The emulator (ours) never writes this
/// buffer while the view lives: the view holds the reader claim and releases it on drop.
#[derive(Debug)]
pub struct FrameView<'a> {
    /// `height` rows of `stride` bytes; the first `width × 4` bytes of each row are pixels.
    pub data: &'a [u8],
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    pub pixel_format: PixelFormat,
    pub dirty: Rect,
    pub cursor_x: u16,
    pub cursor_y: u16,
    pub cursor_visible: bool,
    pub frame_count: u64,
    pub timestamp_us: u64,
    /// The latest answered ping (`None` until the emulator has answered one).
    pub ping: Option<PingEcho>,
    /// Buffer index (0..3) this frame lives in.
    pub index: usize,
    claim: &'a AtomicU32,
}

impl FrameView<'_> {
    /// Row `y` (`width × 4` bytes).
    pub fn row(&self, y: u32) -> &[u8] {
        let start = y as usize * self.stride;
        &self.data[start..start + self.width as usize * 4]
    }
}

impl Drop for FrameView<'_> {
    fn drop(&mut self) {
        self.claim.store(NO_CLAIM, SeqCst);
    }
}

#[derive(Debug)]
struct SenderInner {
    pid: u32,
    sock: UnixStream,
    lock: Mutex<()>,
}

/// Sends input messages to the emulator; cheap to clone, usable from any thread. Each message is
/// written whole under a lock, so messages from several threads never interleave.
#[derive(Clone, Debug)]
pub struct InputSender {
    inner: Arc<SenderInner>,
}

impl InputSender {
    pub fn send(&self, msg: &InputMessage) -> Result<(), IpcError> {
        self.send_raw(&msg.encode())
    }

    /// Sends several messages in one write.
    pub fn send_all(&self, msgs: &[InputMessage]) -> Result<(), IpcError> {
        let bytes: Vec<u8> = msgs.iter().flat_map(|m| m.encode()).collect();
        self.send_raw(&bytes)
    }

    fn send_raw(&self, bytes: &[u8]) -> Result<(), IpcError> {
        let _g = self.inner.lock.lock().unwrap_or_else(|e| e.into_inner());
        sys::send_all(&self.inner.sock, bytes).map_err(|e| match e {
            Errno::AGAIN => IpcError::SendTimeout,
            Errno::PIPE | Errno::CONNRESET | Errno::NOTCONN => IpcError::EmulatorGone {
                pid: self.inner.pid,
            },
            e => e.into(),
        })
    }
}

/// Input messages on their way to the emulator through a writer thread of their own: `send`
/// never blocks, so async workers and media threads can call it freely. A stuck emulator fills
/// the bounded queue and further messages are dropped (and counted) instead of piling up or
/// stalling the caller. Cheap to clone; the writer thread ends with the last clone.
#[derive(Clone, Debug)]
pub struct InputQueue {
    tx: std::sync::mpsc::SyncSender<Vec<u8>>,
    pid: u32,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl InputQueue {
    /// Queues one message. `Err(InputQueueFull)`: the emulator is not keeping up and the message
    /// was dropped; `Err(EmulatorGone)`: the writer stopped because the emulator went away.
    pub fn send(&self, msg: &InputMessage) -> Result<(), IpcError> {
        use std::sync::mpsc::TrySendError;
        match self.tx.try_send(msg.encode()) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, SeqCst);
                Err(IpcError::InputQueueFull)
            }
            Err(TrySendError::Disconnected(_)) => Err(IpcError::EmulatorGone { pid: self.pid }),
        }
    }

    /// Queues a drive command (an extension message v4 emulators skip).
    pub fn send_drive(&self, cmd: &crate::drive::DriveCommand) -> Result<(), IpcError> {
        use std::sync::mpsc::TrySendError;
        let bytes = cmd.encode().ok_or_else(|| {
            IpcError::InvalidArgument("a drive path must be UTF-8 and at most 4,096 bytes".into())
        })?;
        match self.tx.try_send(bytes) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(IpcError::InputQueueFull),
            Err(TrySendError::Disconnected(_)) => Err(IpcError::EmulatorGone { pid: self.pid }),
        }
    }

    /// Messages dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(SeqCst)
    }
}

impl InputSender {
    /// A non-blocking queue of at most `capacity` messages in front of this sender, written by a
    /// thread of its own.
    pub fn queued(&self, capacity: usize) -> std::io::Result<InputQueue> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(capacity.max(1));
        let sender = self.clone();
        let pid = self.inner.pid;
        std::thread::Builder::new()
            .name("macemu-input".into())
            .spawn(move || {
                while let Ok(bytes) = rx.recv() {
                    match sender.send_raw(&bytes) {
                        Ok(()) => {}
                        Err(IpcError::EmulatorGone { .. }) => break,
                        Err(e) => tracing::debug!(pid, "input not delivered: {e}"),
                    }
                }
            })?;
        Ok(InputQueue {
            tx,
            pid,
            dropped: Arc::new(std::sync::atomic::AtomicU64::new(0)),
        })
    }
}

/// Reads audio frames from its own thread; see [`Subscriber::audio`]. Only one consumer may
/// read the ring (it is single-producer, single-consumer).
#[derive(Debug)]
pub struct AudioSubscriber {
    map: Arc<ShmMap>,
    efd: Arc<OwnedFd>,
    sock: Arc<SenderInner>,
}

impl AudioSubscriber {
    /// The next audio frame, or the silence frame when the ring is empty.
    pub fn read_audio(&mut self) -> Result<AudioFrame, IpcError> {
        self.intact()?;
        // The eventfd is a semaphore: one count per frame pushed.
        sys::drain(self.efd.as_fd(), 1)?;
        audio::pop(&self.map)
    }

    fn intact(&self) -> Result<(), IpcError> {
        if self.map.intact() {
            Ok(())
        } else {
            Err(IpcError::EmulatorGone { pid: self.sock.pid })
        }
    }

    /// Waits up to `timeout` for a frame to read: at once when one is already queued, else
    /// until the emulator pushes one (its audio eventfd).
    pub fn wait_audio(&mut self, timeout: Duration) -> Result<bool, IpcError> {
        self.intact()?;
        if audio::pending(&self.map) {
            return Ok(true);
        }
        let [ready, sock] =
            sys::poll_readable([self.efd.as_fd(), self.sock.sock.as_fd()], timeout)?;
        if sock && sys::peer_state(&self.sock.sock) == PeerState::Closed {
            return Err(IpcError::EmulatorGone { pid: self.sock.pid });
        }
        Ok(ready)
    }
}

/// A connection to one emulator.
#[derive(Debug)]
pub struct Subscriber {
    pid: u32,
    map: Arc<ShmMap>,
    frame_efd: OwnedFd,
    audio_efd: Arc<OwnedFd>,
    sender: InputSender,
    last_frame_count: Option<u64>,
    gone: bool,
    /// Drive reports arrive on the socket (only after a `DriveCommand::Query`).
    reports: ReportDecoder,
    drive_reports: Vec<DriveReport>,
    #[cfg(feature = "tokio")]
    async_fds: Option<(
        tokio::io::unix::AsyncFd<OwnedFd>,
        tokio::io::unix::AsyncFd<OwnedFd>,
    )>,
}

impl Subscriber {
    /// Maps `/macemu-video-<pid>`, validates it as v4 does, connects `/tmp/macemu-<pid>.sock` and
    /// receives the two eventfds.
    pub fn connect(pid: u32) -> Result<Subscriber, ConnectError> {
        let name = shm_name(pid);
        let map = ShmMap::open(&name, true).map_err(|e| match e {
            MapError::Io(Errno::NOENT) => ConnectError::NotFound { name: name.clone() },
            MapError::Io(e) => e.into(),
            MapError::TooSmall { size, needed } => ConnectError::MappingTooSmall { size, needed },
            MapError::Untrusted(why) => ConnectError::Untrusted(why),
        })?;
        let snap = read_snapshot(&map);
        snap.validate_connect(pid)?;
        if !sys::pid_alive(pid) {
            return Err(ConnectError::NotAlive { pid });
        }
        let path = control_socket_path(pid);
        check_socket_owner(&path)?;
        let sock = UnixStream::connect(&path).map_err(|e| match e.raw_os_error() {
            Some(c)
                if c == Errno::NOENT.raw_os_error() || c == Errno::CONNREFUSED.raw_os_error() =>
            {
                ConnectError::SocketMissing { path: path.clone() }
            }
            _ => ConnectError::Io(e),
        })?;
        // The path check above can race with a rename; the peer's credentials cannot.
        let peer = sys::peer_uid(&sock)?;
        if peer != sys::our_uid() {
            return Err(ConnectError::Untrusted(format!(
                "the process listening on {path} runs as uid {peer}, not as us (uid {})",
                sys::our_uid()
            )));
        }
        sock.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
        let (byte, mut fds) = match sys::recv_with_fds(sock.as_fd()) {
            Ok(Some(x)) => x,
            Ok(None) => return Err(ConnectError::Handshake("emulator closed the socket".into())),
            Err(Errno::AGAIN) => {
                return Err(ConnectError::Handshake("no handshake within 2 s".into()))
            }
            Err(e) => return Err(e.into()),
        };
        match byte {
            HANDSHAKE_BYTE => {}
            BUSY_BYTE => return Err(ConnectError::Busy),
            b => {
                return Err(ConnectError::Handshake(format!(
                    "unexpected handshake byte {b:#04x}"
                )))
            }
        }
        if fds.len() != 2 {
            return Err(ConnectError::Handshake(format!(
                "expected 2 eventfds, got {} fds",
                fds.len()
            )));
        }
        let audio_efd = fds.pop().expect("two fds");
        let frame_efd = fds.pop().expect("two fds");
        if !sys::is_eventfd(frame_efd.as_fd()) || !sys::is_eventfd(audio_efd.as_fd()) {
            return Err(ConnectError::Handshake(
                "passed descriptors are not eventfds".into(),
            ));
        }
        // Blocking eventfds from the peer would turn every drain into a wait that never ends.
        sys::set_nonblocking(frame_efd.as_fd())?;
        sys::set_nonblocking(audio_efd.as_fd())?;
        sock.set_read_timeout(None)?;
        sock.set_write_timeout(Some(SEND_TIMEOUT))?;
        tracing::info!(
            pid,
            width = snap.width,
            height = snap.height,
            "ipc: connected to emulator"
        );
        Ok(Subscriber {
            pid,
            map: Arc::new(map),
            frame_efd,
            audio_efd: Arc::new(audio_efd),
            sender: InputSender {
                inner: Arc::new(SenderInner {
                    pid,
                    sock,
                    lock: Mutex::new(()),
                }),
            },
            last_frame_count: None,
            gone: false,
            reports: ReportDecoder::default(),
            drive_reports: Vec::new(),
            #[cfg(feature = "tokio")]
            async_fds: None,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// A sender for input messages (clone it freely).
    pub fn sender(&self) -> InputSender {
        self.sender.clone()
    }

    /// An audio reader for another thread (use either it or [`Subscriber::read_audio`]).
    pub fn audio(&self) -> AudioSubscriber {
        AudioSubscriber {
            map: self.map.clone(),
            efd: self.audio_efd.clone(),
            sock: self.sender.inner.clone(),
        }
    }

    /// The emulator's run state.
    pub fn state(&self) -> Result<EmulatorState, IpcError> {
        self.check_alive()?;
        if !self.map.intact() {
            return Err(IpcError::EmulatorGone { pid: self.pid });
        }
        let v = self.map.u32(off::STATE).load(SeqCst);
        EmulatorState::from_u32(v).ok_or(IpcError::CorruptShm {
            field: "state",
            value: v.into(),
        })
    }

    /// Mouse-latency statistics published by the emulator (average in 0.1 ms, samples).
    pub fn mouse_latency(&self) -> (u32, u32) {
        if !self.map.intact() {
            return (0, 0);
        }
        (
            self.map.u32(off::MOUSE_LAT_AVG).load(SeqCst),
            self.map.u32(off::MOUSE_LAT_SAMPLES).load(SeqCst),
        )
    }

    /// Sets the v4 `capture_trigger` flag (asks the emulator to capture audio for debugging).
    pub fn set_capture_trigger(&self, on: bool) {
        if !self.map.intact() {
            return;
        }
        self.map.u32(off::CAPTURE_TRIGGER).store(on as u32, SeqCst);
    }

    /// Whether the emulator is still there (process exists, socket open).
    pub fn is_alive(&self) -> bool {
        !self.gone
            && self.map.intact()
            && sys::pid_alive(self.pid)
            && sys::peer_state(&self.sender.inner.sock) != PeerState::Closed
    }

    fn check_alive(&self) -> Result<(), IpcError> {
        if self.is_alive() {
            Ok(())
        } else {
            Err(IpcError::EmulatorGone { pid: self.pid })
        }
    }

    /// Reads one audio frame (silence when the ring is empty).
    pub fn read_audio(&mut self) -> Result<AudioFrame, IpcError> {
        self.check_mapping()?;
        sys::drain(self.audio_efd.as_fd(), 1)?;
        audio::pop(&self.map)
    }

    /// Waits up to `timeout` for a frame newer than the last one returned and borrows it. The
    /// first call after connecting returns the current frame at once if there is one.
    /// `Ok(None)`: timeout. `Err(EmulatorGone)`: reconnect.
    pub fn wait_frame(&mut self, timeout: Duration) -> Result<Option<FrameView<'_>>, IpcError> {
        let deadline = Instant::now() + timeout;
        loop {
            self.check_mapping()?;
            if self.has_new_frame() {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let [efd, sock] = sys::poll_readable(
                [self.frame_efd.as_fd(), self.sender.inner.sock.as_fd()],
                left.min(LIVENESS_PERIOD),
            )?;
            if efd {
                sys::drain(self.frame_efd.as_fd(), 256)?;
            }
            if sock || !efd {
                self.check_gone()?;
            }
        }
        self.check_mapping()?;
        self.snapshot().map(Some)
    }

    /// Fails (for good) when the emulator is gone or has shrunk its shared memory below the v4
    /// layout: reading the mapping then would raise SIGBUS, so a shrink counts as leaving.
    ///
    /// Remaining race: a shrink between this check and the reads that follow it still faults.
    /// Our emulator never shrinks; only a hostile or broken peer of the same uid could, and it
    /// would have to hit a window of microseconds.
    fn check_mapping(&mut self) -> Result<(), IpcError> {
        if !self.gone && !self.map.intact() {
            self.gone = true;
            tracing::warn!(
                pid = self.pid,
                "ipc: the emulator shrank its shared memory below the v4 layout; detaching"
            );
        }
        if self.gone {
            return Err(IpcError::EmulatorGone { pid: self.pid });
        }
        Ok(())
    }

    fn has_new_frame(&self) -> bool {
        let fc = self.map.u64(off::FRAME_COUNT).load(SeqCst);
        match self.last_frame_count {
            None => fc > 0,
            Some(last) => fc != last,
        }
    }

    /// Drive reports received since the last call (see [`crate::drive`]). They are read while
    /// waiting for frames, so a caller of [`Subscriber::wait_frame`] sees them within one wait.
    pub fn take_drive_reports(&mut self) -> Vec<DriveReport> {
        std::mem::take(&mut self.drive_reports)
    }

    /// Marks the emulator gone if its socket closed or its process is gone. What the emulator
    /// sends meanwhile is read as drive reports (v4 emulators send nothing after the handshake);
    /// anything else is discarded.
    fn check_gone(&mut self) -> Result<(), IpcError> {
        let sock = &self.sender.inner.sock;
        let mut closed = false;
        loop {
            match sys::peer_state(sock) {
                PeerState::Closed => {
                    closed = true;
                    break;
                }
                PeerState::Readable => {
                    let mut buf = [0u8; 512];
                    match sys::recv_nonblocking(sock, &mut buf) {
                        Ok(0) => {
                            closed = true;
                            break;
                        }
                        Ok(n) => self.reports.push(&buf[..n]),
                        Err(_) => {}
                    }
                    while let Some(r) = self.reports.next() {
                        match r {
                            Ok(r) => {
                                // Bounded: of a flood of reports the newest are kept.
                                if self.drive_reports.len() == MAX_PENDING_REPORTS {
                                    self.drive_reports.remove(0);
                                }
                                self.drive_reports.push(r)
                            }
                            Err(e) => tracing::debug!(pid = self.pid, "ipc: bad drive report: {e}"),
                        }
                    }
                }
                PeerState::Open => break,
            }
        }
        if closed || !sys::pid_alive(self.pid) {
            self.gone = true;
            tracing::info!(pid = self.pid, "ipc: emulator gone");
            return Err(IpcError::EmulatorGone { pid: self.pid });
        }
        Ok(())
    }

    /// Claims the ready buffer and reads its metadata consistently (see `video`).
    fn snapshot(&mut self) -> Result<FrameView<'_>, IpcError> {
        snapshot_in(&self.map, &mut self.last_frame_count, SNAPSHOT_ATTEMPTS)
    }

    /// Async frame wait on tokio: the next frame newer than the last one returned.
    #[cfg(feature = "tokio")]
    pub async fn next_frame(&mut self) -> Result<FrameView<'_>, IpcError> {
        self.check_mapping()?;
        if self.async_fds.is_none() {
            let efd: OwnedFd = self.frame_efd.try_clone()?;
            let sock: OwnedFd = self.sender.inner.sock.as_fd().try_clone_to_owned()?;
            self.async_fds = Some((
                crate::shm::async_readable(efd)?,
                crate::shm::async_readable(sock)?,
            ));
        }
        loop {
            self.check_mapping()?;
            if self.has_new_frame() {
                break;
            }
            let (efd, sock) = self.async_fds.as_ref().expect("set above");
            let check = tokio::select! {
                g = efd.readable() => {
                    let mut g = g?;
                    sys::drain(efd.get_ref().as_fd(), 256)?;
                    g.clear_ready();
                    false
                }
                g = sock.readable() => {
                    g?.clear_ready();
                    true
                }
                _ = tokio::time::sleep(LIVENESS_PERIOD) => true,
            };
            if check {
                self.check_gone()?;
            }
        }
        self.check_mapping()?;
        self.snapshot()
    }
}

/// The control socket must be a socket of our own uid, not a symlink to one.
fn check_socket_owner(path: &str) -> Result<(), ConnectError> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let md = match std::fs::symlink_metadata(path) {
        Ok(md) => md,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ConnectError::SocketMissing { path: path.into() })
        }
        Err(e) => return Err(e.into()),
    };
    if !md.file_type().is_socket() {
        return Err(ConnectError::Untrusted(format!("{path} is not a socket")));
    }
    if md.uid() != sys::our_uid() {
        return Err(ConnectError::Untrusted(format!(
            "{path} belongs to uid {}, not to us (uid {})",
            md.uid(),
            sys::our_uid()
        )));
    }
    Ok(())
}

/// Claims the ready buffer of `m` and reads its metadata consistently (see `video`), trying up to
/// `attempts` times; `last` is the frame count of the last frame returned.
pub(crate) fn snapshot_in<'a>(
    m: &'a ShmMap,
    last: &mut Option<u64>,
    attempts: u32,
) -> Result<FrameView<'a>, IpcError> {
    let claim = m.u32(off::CLAIM);
    let mut last_err = IpcError::Unstable;
    for attempt in 0..attempts {
        if attempt > 64 {
            std::thread::yield_now();
        }
        let s1 = m.u32(off::SEQLOCK).load(SeqCst);
        if s1 & 1 == 1 {
            std::hint::spin_loop();
            continue;
        }
        let r = m.u32(off::READY_INDEX).load(SeqCst);
        if r as usize >= MACEMU_NUM_BUFFERS {
            // Possibly a transient scribble; a persistent one is reported below.
            last_err = IpcError::CorruptShm {
                field: "ready_index",
                value: r.into(),
            };
            continue;
        }
        claim.store(claim_of(r as usize), SeqCst);
        if m.u32(off::READY_INDEX).load(SeqCst) != r {
            continue;
        }
        let snap = read_snapshot(m);
        let ping_seq = m.u32(off::PING_SEQUENCE).load(SeqCst);
        let ping = (ping_seq != 0).then(|| PingEcho {
            sequence: ping_seq,
            t1_browser_ms: m.u64(off::PING_T1).load(SeqCst),
            t2_server_us: m.u64(off::PING_T2).load(SeqCst),
            t3_emulator_us: m.u64(off::PING_T3).load(SeqCst),
            t4_frame_us: m.u64(off::PING_T4).load(SeqCst),
        });
        if m.u32(off::SEQLOCK).load(SeqCst) != s1 {
            continue;
        }
        let meta = match snap.frame_meta() {
            Ok(meta) if meta.index == r as usize => meta,
            Ok(_) => continue,
            Err(e) => {
                claim.store(NO_CLAIM, SeqCst);
                // Consume the frame so a broken header does not spin the caller.
                *last = Some(snap.frame_count);
                return Err(e);
            }
        };
        *last = Some(meta.frame_count);
        let len = STRIDE * meta.height as usize;
        return Ok(FrameView {
            data: m.frame(meta.index, len),
            width: meta.width,
            height: meta.height,
            stride: STRIDE,
            pixel_format: meta.pixel_format,
            dirty: meta.dirty,
            cursor_x: meta.cursor_x,
            cursor_y: meta.cursor_y,
            cursor_visible: meta.cursor_visible,
            frame_count: meta.frame_count,
            timestamp_us: meta.timestamp_us,
            ping,
            index: meta.index,
            claim,
        });
    }
    claim.store(NO_CLAIM, SeqCst);
    *last = Some(m.u64(off::FRAME_COUNT).load(SeqCst));
    Err(last_err)
}

fn read_snapshot(m: &ShmMap) -> HeaderSnapshot {
    let cursor = m.u32(off::CURSOR_XY).load(SeqCst).to_ne_bytes();
    HeaderSnapshot {
        magic: m.u32(off::MAGIC).load(SeqCst),
        version: m.u32(off::VERSION).load(SeqCst),
        pid: m.u32(off::PID).load(SeqCst),
        state: m.u32(off::STATE).load(SeqCst),
        width: m.u32(off::WIDTH).load(SeqCst),
        height: m.u32(off::HEIGHT).load(SeqCst),
        pixel_format: m.u32(off::PIXEL_FORMAT).load(SeqCst),
        dirty: [
            m.u32(off::DIRTY_X).load(SeqCst),
            m.u32(off::DIRTY_Y).load(SeqCst),
            m.u32(off::DIRTY_W).load(SeqCst),
            m.u32(off::DIRTY_H).load(SeqCst),
        ],
        cursor_x: u16::from_ne_bytes([cursor[0], cursor[1]]),
        cursor_y: u16::from_ne_bytes([cursor[2], cursor[3]]),
        cursor_visible: m.u32(off::CURSOR_VIS).load(SeqCst).to_ne_bytes()[0],
        ready_index: m.u32(off::READY_INDEX).load(SeqCst),
        frame_count: m.u64(off::FRAME_COUNT).load(SeqCst),
        timestamp_us: m.u64(off::TIMESTAMP_US).load(SeqCst),
    }
}
