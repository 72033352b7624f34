//! What `serve` is configured with, and why it may fail to start.

use crate::codec::Codec;
use crate::limits::Limits;
use crate::peer::{self, PeerOptions};
use crate::video::h264::H264Config;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;
use thiserror::Error;

/// Everything `serve` is configured with. Its `Debug` shows whether a token is set, never the token.
#[derive(Clone)]
pub struct ServeConfig {
    pub bind: IpAddr,
    pub http_port: u16,
    pub signaling_port: u16,
    pub token: Option<String>,
    /// Extra names or addresses the server may be reached by (`Host`), besides loopback and `bind`.
    pub allow_hosts: Vec<String>,
    /// Extra page origins that may open the signaling WebSocket and call the API.
    pub allow_origins: Vec<String>,
    pub limits: Limits,
    pub codec: Codec,
    pub target_pid: Option<u32>,
    pub auto_start: bool,
    /// Emulator command line for `--auto-start` and `/api/emulator/start`; empty: `<this exe> emulate`.
    pub emulator_cmd: Vec<String>,
    pub peer: PeerOptions,
    pub prefs_file: Option<std::path::PathBuf>,
    pub rom_dirs: Vec<std::path::PathBuf>,
    pub disk_dirs: Vec<std::path::PathBuf>,
    pub h264: H264Config,
    /// A static screen is re-sent this often as an H.264 P picture (after one encoder refresh, a repeat
    /// of all-skipped macroblocks built without the encoder: about 10 bytes, under a microsecond), so
    /// lost packets heal, ping echoes flow, and the browser keeps seeing a live stream. 50 ms: a packet
    /// lost from the last change is noticed (and NACKed) within 50 ms, and the encoder's sharpening
    /// pass follows a change by as much; a refresh with no news carries no DataChannel message, so 20
    /// a second cost what 7 used to (PERFORMANCE.md, "CPU while the screen is static").
    pub refresh: Duration,
    /// In PNG mode, a static screen's full frame is re-sent this often (heals lost rectangles).
    pub png_refresh: Duration,
}

impl std::fmt::Debug for ServeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("bind", &self.bind)
            .field("http_port", &self.http_port)
            .field("signaling_port", &self.signaling_port)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("allow_hosts", &self.allow_hosts)
            .field("allow_origins", &self.allow_origins)
            .field("limits", &self.limits)
            .field("codec", &self.codec)
            .field("target_pid", &self.target_pid)
            .field("auto_start", &self.auto_start)
            .field("emulator_cmd", &self.emulator_cmd)
            .field("peer", &self.peer)
            .field("prefs_file", &self.prefs_file)
            .field("rom_dirs", &self.rom_dirs)
            .field("disk_dirs", &self.disk_dirs)
            .field("h264", &self.h264)
            .field("refresh", &self.refresh)
            .field("png_refresh", &self.png_refresh)
            .finish()
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            http_port: 8080,
            signaling_port: 8090,
            token: None,
            allow_hosts: Vec::new(),
            allow_origins: Vec::new(),
            limits: Limits::default(),
            codec: Codec::H264,
            target_pid: None,
            auto_start: false,
            emulator_cmd: Vec::new(),
            peer: PeerOptions::default(),
            prefs_file: None,
            rom_dirs: Vec::new(),
            disk_dirs: Vec::new(),
            h264: H264Config::default(),
            refresh: Duration::from_millis(50),
            png_refresh: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Peer(#[from] peer::PeerError),
    #[error("a non-loopback --bind needs a token")]
    NoToken,
}
