//! Typed errors of both sides.

use crate::input::DecodeError;

/// Errors of the running protocol (either side).
#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    #[error("frame size {width}x{height} is outside 1..=1920 x 1..=1080")]
    InvalidFrameSize { width: u32, height: u32 },
    #[error("dirty rectangle {x},{y} {w}x{h} does not fit the {width}x{height} frame")]
    InvalidDirtyRect {
        x: u32,
        y: u32,
        w: u32,
        h: u32,
        width: u32,
        height: u32,
    },
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    #[error("publish called before frame_mut: there is no frame to publish")]
    NoFrame,
    #[error("invalid audio frame: {0}")]
    InvalidAudio(String),
    /// A value read from shared memory is impossible (hostile or corrupted peer).
    #[error("shared memory field `{field}` holds {value}, which is impossible")]
    CorruptShm { field: &'static str, value: u64 },
    /// The frame metadata kept changing while being read (a writer stuck mid-update).
    #[error("frame metadata never became stable (writer stuck mid-update?)")]
    Unstable,
    /// The emulator exited or closed the control socket; reconnect with `Subscriber::connect`.
    #[error("emulator {pid} is gone")]
    EmulatorGone { pid: u32 },
    #[error("sending input timed out (the emulator is not reading its socket)")]
    SendTimeout,
    /// The emulator is not keeping up with its input queue; the message was dropped.
    #[error("input queue full (the emulator is not reading its socket); message dropped")]
    InputQueueFull,
    #[error("shared memory `{name}` belongs to live process {pid}")]
    OwnedByLiveProcess { name: String, pid: u32 },
    #[error("malformed input: {0}")]
    Decode(#[from] DecodeError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl From<rustix::io::Errno> for IpcError {
    fn from(e: rustix::io::Errno) -> Self {
        IpcError::Io(e.into())
    }
}

/// Why `Subscriber::connect` failed. Each case mirrors a v4 validation step.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("no shared memory `{name}` (no emulator with this pid)")]
    NotFound { name: String },
    #[error("bad magic {found:#010x} (expected 0x4d454d34 \"MEM4\")")]
    BadMagic { found: u32 },
    #[error("bad protocol version {found} (expected 4)")]
    BadVersion { found: u32 },
    #[error("shared memory names pid {found}, expected {expected}")]
    BadPid { expected: u32, found: u32 },
    #[error("frame size {width}x{height} exceeds 1920x1080")]
    BadSize { width: u32, height: u32 },
    #[error("shared memory is {size} bytes, the v4 layout needs {needed}")]
    MappingTooSmall { size: u64, needed: u64 },
    #[error("control socket `{path}` is missing or not listening")]
    SocketMissing { path: String },
    #[error("emulator {pid} is not running")]
    NotAlive { pid: u32 },
    #[error("another server is connected to this emulator")]
    Busy,
    #[error("handshake failed: {0}")]
    Handshake(String),
    /// The shared memory or socket is not ours (another user, a symlink, writable by others) or
    /// the process at the other end of the socket runs as another user.
    #[error("refusing an untrusted emulator: {0}")]
    Untrusted(String),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl From<rustix::io::Errno> for ConnectError {
    fn from(e: rustix::io::Errno) -> Self {
        ConnectError::Io(e.into())
    }
}

impl ConnectError {
    /// The v4 `macemu_validate_ipc_buffer` code for validation failures (-1..-4), else `None`.
    pub fn v4_code(&self) -> Option<i32> {
        match self {
            ConnectError::BadMagic { .. } => Some(-1),
            ConnectError::BadVersion { .. } => Some(-2),
            ConnectError::BadPid { .. } => Some(-3),
            ConnectError::BadSize { .. } => Some(-4),
            _ => None,
        }
    }
}
