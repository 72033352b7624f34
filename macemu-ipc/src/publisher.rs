//! Emulator side: owns the shared memory, the eventfds and the control socket.

use crate::abi::*;
use crate::discovery::{control_socket_path, shm_name};
use crate::drive::{DriveCommand, DriveReport};
use crate::error::IpcError;
use crate::header::{self, FrameCursor};
use crate::input::{InputDecoder, InputMessage};
use crate::shm::{FrameWriter, MapError, ShmMap};
use crate::sys::{self, PeerState};
use crate::{audio, realtime_us, EmulatorState, PixelFormat, Rect, STRIDE};
use rustix::fd::{AsFd, OwnedFd};
use rustix::io::Errno;
use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Pids with a live `Publisher` in this process (a second one for the same pid is an error).
static LIVE: Mutex<Option<HashSet<u32>>> = Mutex::new(None);

fn live_insert(pid: u32) -> bool {
    LIVE.lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(pid)
}

fn live_remove(pid: u32) {
    if let Some(s) = LIVE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        s.remove(&pid);
    }
}

#[derive(Clone, Copy, Debug)]
struct PendingPing {
    sequence: u32,
    t1: u64,
    t2: u64,
    t3: u64,
}

/// Resources shared by the three publisher parts; dropping the last part unlinks them.
#[derive(Debug)]
struct Shared {
    pid: u32,
    map: Arc<ShmMap>,
    shm_name: String,
    socket_path: PathBuf,
    frame_efd: OwnedFd,
    audio_efd: OwnedFd,
    /// A ping received by the input listener, echoed with the next published frame.
    pending_ping: Mutex<Option<PendingPing>>,
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.map.u32(off::STATE).store(MACEMU_STATE_STOPPED, SeqCst);
        let _ = rustix::shm::unlink(self.shm_name.as_str());
        let _ = std::fs::remove_file(&self.socket_path);
        live_remove(self.pid);
        tracing::debug!(
            pid = self.pid,
            "ipc: unlinked {} and {}",
            self.shm_name,
            self.socket_path.display()
        );
    }
}

/// The emulator's IPC endpoint. Split it into per-thread parts with [`Publisher::split`].
#[derive(Debug)]
pub struct Publisher {
    frames: FramePublisher,
    audio: AudioPublisher,
    input: InputListener,
}

impl Publisher {
    /// Creates `/macemu-video-<pid>` (0600, exclusive) and `/tmp/macemu-<pid>.sock` (0600). A
    /// leftover of a dead process is replaced; one owned by a live process is an error.
    pub fn create(pid: u32) -> Result<Publisher, IpcError> {
        Self::create_with_size(pid, 0, 0)
    }

    /// As [`Publisher::create`], announcing an initial frame size (as v4's init does).
    pub fn create_with_size(pid: u32, width: u32, height: u32) -> Result<Publisher, IpcError> {
        if width > MACEMU_MAX_WIDTH || height > MACEMU_MAX_HEIGHT {
            return Err(IpcError::InvalidFrameSize { width, height });
        }
        let name = shm_name(pid);
        if !live_insert(pid) {
            return Err(IpcError::OwnedByLiveProcess { name, pid });
        }
        match Self::create_inner(pid, &name, width, height) {
            Ok(p) => Ok(p),
            Err(e) => {
                live_remove(pid);
                Err(e)
            }
        }
    }

    fn create_inner(pid: u32, name: &str, width: u32, height: u32) -> Result<Publisher, IpcError> {
        let frame_efd = sys::new_eventfd()?;
        let audio_efd = sys::new_eventfd()?;
        let (map, writer) = match ShmMap::create(name) {
            Err(MapError::Io(Errno::EXIST)) => {
                // Our own pid cannot have a live owner besides us (checked above): a leftover
                // of an earlier process that had this pid.
                if pid != std::process::id() && sys::pid_alive(pid) {
                    return Err(IpcError::OwnedByLiveProcess {
                        name: name.to_owned(),
                        pid,
                    });
                }
                tracing::info!(pid, "ipc: replacing leftover {name} of a dead process");
                let _ = rustix::shm::unlink(name);
                ShmMap::create(name)
            }
            other => other,
        }
        .map_err(|e| match e {
            MapError::Io(e) => IpcError::from(e),
            // `create` sizes and owns the object itself; these are reported, never expected.
            MapError::TooSmall { size, needed } => IpcError::InvalidArgument(format!(
                "new shared memory is {size} bytes, needs {needed}"
            )),
            MapError::Untrusted(why) => IpcError::InvalidArgument(why),
        })?;
        // From here on, `Shared::drop` unlinks on any error.
        let socket_path = PathBuf::from(control_socket_path(pid));
        let shared = Arc::new(Shared {
            pid,
            map,
            shm_name: name.to_owned(),
            socket_path,
            frame_efd,
            audio_efd,
            pending_ping: Mutex::new(None),
        });
        init_header(&shared, width, height);
        let listener = bind_private(&shared.socket_path)?;
        listener.set_nonblocking(true)?;
        tracing::info!(
            pid,
            "ipc: publishing {} and listening on {}",
            shared.shm_name,
            shared.socket_path.display()
        );
        Ok(Publisher {
            frames: FramePublisher {
                shared: shared.clone(),
                writer,
                cursor: FrameCursor::default(),
                pending: None,
            },
            audio: AudioPublisher {
                shared: shared.clone(),
                w: 0,
            },
            input: InputListener {
                shared,
                listener,
                conn: None,
                buf: vec![0; 4096],
            },
        })
    }

    /// The pid this publisher serves.
    pub fn pid(&self) -> u32 {
        self.frames.shared.pid
    }

    /// Splits into the frame, audio and input parts (each `Send`, for its own thread).
    pub fn split(self) -> (FramePublisher, AudioPublisher, InputListener) {
        (self.frames, self.audio, self.input)
    }

    pub fn frames(&mut self) -> &mut FramePublisher {
        &mut self.frames
    }

    pub fn audio(&mut self) -> &mut AudioPublisher {
        &mut self.audio
    }

    pub fn input(&mut self) -> &mut InputListener {
        &mut self.input
    }
}

fn init_header(s: &Shared, width: u32, height: u32) {
    use rustix::fd::AsRawFd;
    header::init(
        &*s.map,
        s.pid,
        width,
        height,
        s.frame_efd.as_raw_fd(),
        s.audio_efd.as_raw_fd(),
    );
}

/// Binds the control socket race-free with mode 0600: bind inside a private 0700 directory,
/// chmod, then rename into place (replacing any leftover). The directory is made beside the
/// socket so the rename never crosses filesystems.
fn bind_private(path: &std::path::Path) -> Result<UnixListener, IpcError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let dir = parent.join(format!(
        ".macemu-bind-{}-{}",
        std::process::id(),
        realtime_us()
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    let tmp = dir.join("s");
    let result = (|| {
        let l = UnixListener::bind(&tmp)?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
        std::fs::rename(&tmp, path)?;
        Ok(l)
    })();
    let _ = std::fs::remove_file(&tmp);
    let _ = std::fs::remove_dir(&dir);
    result
}

/// Metadata published with a frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameMeta {
    /// Changed region; `width == 0` means nothing changed.
    pub dirty: Rect,
    pub cursor_x: u16,
    pub cursor_y: u16,
    pub cursor_visible: bool,
}

/// The frame buffer to fill: `height` rows of `stride` bytes, the first `width × 4` of each used.
#[derive(Debug)]
pub struct FrameMut<'a> {
    pub data: &'a mut [u8],
    pub stride: usize,
    pub width: u32,
    pub height: u32,
}

impl FrameMut<'_> {
    /// Row `y` (`width × 4` bytes).
    pub fn row_mut(&mut self, y: u32) -> &mut [u8] {
        let start = y as usize * self.stride;
        &mut self.data[start..start + self.width as usize * 4]
    }
}

/// Writes frames (one thread).
#[derive(Debug)]
pub struct FramePublisher {
    shared: Arc<Shared>,
    writer: FrameWriter,
    /// The buffer being written and the sequence: our own state, never re-read from shared
    /// memory.
    cursor: FrameCursor,
    pending: Option<(u32, u32, PixelFormat)>,
}

impl FramePublisher {
    /// The buffer to fill next, for a `width`×`height` frame in `format`. Its previous content is
    /// an older frame (the emulator redraws; publish says what changed).
    pub fn frame_mut(
        &mut self,
        width: u32,
        height: u32,
        format: PixelFormat,
    ) -> Result<FrameMut<'_>, IpcError> {
        if width == 0 || height == 0 || width > MACEMU_MAX_WIDTH || height > MACEMU_MAX_HEIGHT {
            return Err(IpcError::InvalidFrameSize { width, height });
        }
        self.pending = Some((width, height, format));
        let data = self
            .writer
            .frame_mut(self.cursor.write_index, STRIDE * height as usize);
        Ok(FrameMut {
            data,
            stride: STRIDE,
            width,
            height,
        })
    }

    /// Publishes the frame filled through [`FramePublisher::frame_mut`]: metadata, timestamps,
    /// ping echo, tear-free buffer swap, then the eventfd.
    pub fn publish(&mut self, meta: &FrameMeta) -> Result<(), IpcError> {
        let (width, height, format) = self.pending.ok_or(IpcError::NoFrame)?;
        let d = meta.dirty;
        if d.width != 0 && !d.fits(width, height) {
            return Err(IpcError::InvalidDirtyRect {
                x: d.x,
                y: d.y,
                w: d.width,
                h: d.height,
                width,
                height,
            });
        }
        let now = realtime_us();
        let ping = self
            .shared
            .pending_ping
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        header::complete_frame(&*self.shared.map, &mut self.cursor, now, |m| {
            m.u32(off::WIDTH).store(width, SeqCst);
            m.u32(off::HEIGHT).store(height, SeqCst);
            m.u32(off::PIXEL_FORMAT).store(format as u32, SeqCst);
            m.u32(off::DIRTY_X).store(d.x, SeqCst);
            m.u32(off::DIRTY_Y).store(d.y, SeqCst);
            m.u32(off::DIRTY_W).store(d.width, SeqCst);
            m.u32(off::DIRTY_H).store(d.height, SeqCst);
            let cursor = u32::from_ne_bytes({
                let [a, b] = meta.cursor_x.to_ne_bytes();
                let [c, e] = meta.cursor_y.to_ne_bytes();
                [a, b, c, e]
            });
            m.u32(off::CURSOR_XY).store(cursor, SeqCst);
            m.u32(off::CURSOR_VIS).store(
                u32::from_ne_bytes([meta.cursor_visible as u8, 0, 0, 0]),
                SeqCst,
            );
            if let Some(p) = ping {
                m.u64(off::PING_T1).store(p.t1, SeqCst);
                m.u64(off::PING_T2).store(p.t2, SeqCst);
                m.u64(off::PING_T3).store(p.t3, SeqCst);
                m.u64(off::PING_T4).store(now, SeqCst);
                m.u32(off::PING_SEQUENCE).store(p.sequence, SeqCst);
            }
        });
        sys::signal(self.shared.frame_efd.as_fd())?;
        Ok(())
    }

    /// Sets the run state shown to servers.
    pub fn set_state(&self, state: EmulatorState) {
        self.shared.map.u32(off::STATE).store(state as u32, SeqCst);
    }

    /// Publishes mouse-latency statistics (average in 0.1 ms units, sample count).
    pub fn set_mouse_latency(&self, avg_tenths_ms: u32, samples: u32) {
        self.shared
            .map
            .u32(off::MOUSE_LAT_AVG)
            .store(avg_tenths_ms, SeqCst);
        self.shared
            .map
            .u32(off::MOUSE_LAT_SAMPLES)
            .store(samples, SeqCst);
    }

    /// Size of the frame being drawn (set by the last `frame_mut`).
    pub fn pending_size(&self) -> Option<(u32, u32)> {
        self.pending.map(|(w, h, _)| (w, h))
    }

    /// Frames published so far.
    pub fn frame_count(&self) -> u64 {
        self.cursor.frame_count
    }
}

/// Pushes audio frames (one thread).
#[derive(Debug)]
pub struct AudioPublisher {
    shared: Arc<Shared>,
    w: usize,
}

impl AudioPublisher {
    /// Pushes one frame: rate in {11025, 22050, 44100, 48000}, 1–2 channels, at most 960 samples
    /// per channel, interleaved native `i16` (stored big-endian S16). `Ok(false)`: ring full.
    pub fn push(
        &mut self,
        rate: u32,
        channels: u32,
        interleaved: &[i16],
    ) -> Result<bool, IpcError> {
        let pushed = audio::push(
            &self.shared.map,
            &mut self.w,
            rate,
            channels,
            interleaved,
            realtime_us(),
        )?;
        if pushed {
            sys::signal(self.shared.audio_efd.as_fd())?;
        }
        Ok(pushed)
    }
}

#[derive(Debug)]
struct Conn {
    stream: UnixStream,
    decoder: InputDecoder,
    /// The server asked for drive reports (a v4 server never does, and never reads the socket).
    reports: bool,
    /// Report bytes the socket did not take yet; sent before anything newer.
    out: Vec<u8>,
}

/// Report bytes held for a server that does not read; beyond this, new reports are dropped.
const MAX_REPORT_BACKLOG: usize = 64 * 1024;

/// Receives input messages from the connected server (one thread). Also accepts servers: a new
/// server replaces one that has gone; while one is connected, others get a "busy" handshake.
#[derive(Debug)]
pub struct InputListener {
    shared: Arc<Shared>,
    listener: UnixListener,
    conn: Option<Conn>,
    buf: Vec<u8>,
}

/// Handshake byte telling a second server that another one is connected.
pub(crate) const BUSY_BYTE: u8 = b'B';
/// v4 handshake byte.
pub(crate) const HANDSHAKE_BYTE: u8 = b'E';

impl InputListener {
    /// Whether a server is connected.
    pub fn connected(&self) -> bool {
        self.conn.is_some()
    }

    fn accept_pending(&mut self) -> Result<(), IpcError> {
        loop {
            let stream = match self.listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            // The socket is 0600, but a server of another user must never get the eventfds or
            // feed input even if the mode was loosened: the kernel's record of the peer decides.
            match sys::peer_uid(&stream) {
                Ok(uid) if uid == sys::our_uid() => {}
                Ok(uid) => {
                    tracing::warn!(
                        uid,
                        "ipc: refused a server of another user (uid {uid}, we are {})",
                        sys::our_uid()
                    );
                    continue;
                }
                Err(e) => {
                    tracing::warn!("ipc: refused a server whose uid cannot be read: {e}");
                    continue;
                }
            }
            if let Some(c) = &self.conn {
                if sys::peer_state(&c.stream) != PeerState::Closed {
                    tracing::warn!("ipc: a second server tried to connect; told it we are busy");
                    let _ = sys::send_with_fds(stream.as_fd(), BUSY_BYTE, &[]);
                    continue;
                }
                tracing::info!("ipc: previous server gone, accepting the new one");
            }
            let fds = [self.shared.frame_efd.as_fd(), self.shared.audio_efd.as_fd()];
            if let Err(e) = sys::send_with_fds(stream.as_fd(), HANDSHAKE_BYTE, &fds) {
                tracing::warn!("ipc: handshake with a server failed: {e}");
                continue;
            }
            stream.set_nonblocking(true)?;
            tracing::info!("ipc: server connected");
            self.conn = Some(Conn {
                stream,
                decoder: InputDecoder::new(),
                reports: false,
                out: Vec::new(),
            });
        }
    }

    /// The next input message if one is available (non-blocking). Also accepts servers and
    /// answers pings (t3 recorded; t1..t4 echoed with the next frame). A malformed message is an
    /// `Err(IpcError::Decode)` and is skipped; keep polling.
    pub fn poll(&mut self) -> Result<Option<InputMessage>, IpcError> {
        self.accept_pending()?;
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Ok(None);
            };
            if !conn.out.is_empty() {
                Self::flush_reports(conn);
            }
            if let Some(msg) = conn.decoder.next() {
                return Ok(Some(self.handle(msg?)));
            }
            match sys::recv_nonblocking(&conn.stream, &mut self.buf) {
                Ok(0) => {
                    tracing::info!("ipc: server disconnected");
                    self.conn = None;
                    // A server queued behind the old one can be accepted right away.
                    self.accept_pending()?;
                }
                Ok(n) => conn.decoder.push(&self.buf[..n]),
                Err(Errno::AGAIN) => return Ok(None),
                Err(e) => {
                    tracing::warn!("ipc: control socket error {e}; dropping the server");
                    self.conn = None;
                }
            }
        }
    }

    /// Drive commands received since the last call (see [`crate::drive`]). A `Query` also turns
    /// on drive reports to this server.
    pub fn take_drive_commands(&mut self) -> Vec<DriveCommand> {
        let Some(c) = self.conn.as_mut() else {
            return Vec::new();
        };
        let cmds = c.decoder.take_drive_commands();
        if cmds.contains(&DriveCommand::Query) {
            c.reports = true;
        }
        cmds
    }

    /// Sends a drive report to the server if it asked for reports. Never blocks: what the
    /// socket does not take now is kept (up to a bound) and sent first next time.
    pub fn send_drive_report(&mut self, report: &DriveReport) -> bool {
        let Some(c) = self.conn.as_mut() else {
            return false;
        };
        if !c.reports {
            return false;
        }
        let bytes = report.encode();
        if c.out.len() + bytes.len() > MAX_REPORT_BACKLOG {
            tracing::warn!("ipc: the server reads no drive reports; one dropped");
            return false;
        }
        c.out.extend_from_slice(&bytes);
        Self::flush_reports(c);
        true
    }

    fn flush_reports(c: &mut Conn) {
        while !c.out.is_empty() {
            match (&c.stream).write(&c.out) {
                Ok(0) => break,
                Ok(n) => {
                    c.out.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }

    fn handle(&self, msg: InputMessage) -> InputMessage {
        if let InputMessage::Ping {
            sequence,
            t1_browser_ms,
            t2_server_us,
            ..
        } = msg
        {
            let t3 = realtime_us();
            *self
                .shared
                .pending_ping
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(PendingPing {
                sequence,
                t1: t1_browser_ms,
                t2: t2_server_us,
                t3,
            });
            return InputMessage::Ping {
                sequence,
                t1_browser_ms,
                t2_server_us,
                t3_emulator_us: t3,
            };
        }
        msg
    }

    /// Blocks up to `timeout` for the next message.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<InputMessage>, IpcError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(m) = self.poll()? {
                return Ok(Some(m));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            match &self.conn {
                Some(c) => sys::poll_readable([self.listener.as_fd(), c.stream.as_fd()], left)
                    .map(|_| ())?,
                None => sys::poll_readable([self.listener.as_fd()], left).map(|_| ())?,
            }
        }
    }

    /// A blocking iterator over incoming messages (waits indefinitely; errors are yielded).
    pub fn incoming(&mut self) -> impl Iterator<Item = Result<InputMessage, IpcError>> + '_ {
        std::iter::from_fn(move || loop {
            match self.recv_timeout(Duration::from_secs(3600)) {
                Ok(Some(m)) => return Some(Ok(m)),
                Ok(None) => continue,
                Err(e) => return Some(Err(e)),
            }
        })
    }
}
