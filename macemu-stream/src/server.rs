//! Ties it together on tokio: the HTTP API, WebSocket signaling with one peer per viewer, the media
//! thread (frames → H.264 or PNG, encoded once for all viewers) and the audio thread (20 ms pull →
//! Opus), and the supervision that attaches to the emulator and re-attaches when it comes back.

use crate::audio::{AudioEncoder, AudioPacket, PACKET_FRAMES};
use crate::datachannel::{self, Cursor, PingEcho, PngHeader};
use crate::http::{self, Control, EmulatorAction, HttpConfig};
use crate::input::InputTranslator;
use crate::limits::{KeyframeGate, Limits};
use crate::origin::{OriginPolicy, RequestHeaders};
use crate::peer::{self, PeerEvent, PeerOptions, VideoOut};
use crate::signaling::{self, SignalAction, SignalInput, SignalingSession};
use crate::supervisor::{self, EmulatorProcess};
use crate::video::convert::Converter;
use crate::video::h264::{EncodedFrame, H264Config, H264Encoder, PictureEncoder};
use crate::video::png::{PngBander, PngPlanner, MAX_PNG_MESSAGE};
use crate::video::policy::{Decision, EncodePolicy};
use crate::video::repeat::Repeater;
use crate::video::rtp::MediaClock;
use crate::video::{FrameRef, PixelFormat, Rect};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use macemu_ipc::drive::{DriveCommand, DriveReport, WireSlot};
use macemu_ipc::{
    realtime_us, Command, EmulatorState, InputMessage, InputQueue, IpcError, MouseMode, Subscriber,
};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::sync::{broadcast, mpsc, OwnedSemaphorePermit, Semaphore};

mod whep_host;

/// The video codecs this build can stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    Png,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::Png => "png",
        }
    }
}

impl FromStr for Codec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "h264" | "h.264" | "avc" => Ok(Codec::H264),
            "png" => Ok(Codec::Png),
            "av1" => {
                Err("this server was not built with AV1 (no AV1 encoder); use h264 or png".into())
            }
            "vp9" | "webp" => Err(format!(
                "this server was not built with {s}; use h264 or png"
            )),
            _ => Err(format!("unknown codec {s:?}; use h264 or png")),
        }
    }
}

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
    /// lost packets heal, ping echoes flow, and the browser keeps seeing a live stream.
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
            refresh: Duration::from_millis(150),
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

/// Encoder refreshes of an unchanged picture before repeats take over: rate control may have coded a
/// change coarsely, and one more pass lets the encoder sharpen it.
const ENCODED_REFRESHES: u32 = 1;

/// One viewer as the media threads see it.
struct ViewerSlot {
    video: mpsc::Sender<VideoOut>,
    audio: mpsc::Sender<AudioPacket>,
    png: bool,
    connected: bool,
    /// After a dropped H.264 frame the viewer gets nothing until the next keyframe.
    waiting_key: bool,
}

/// Input messages waiting for a stuck emulator, at most; further ones are dropped.
const INPUT_QUEUE: usize = 256;

struct EmuLink {
    pid: u32,
    /// Never blocks: a writer thread talks to the emulator (a stuck one must not stall a worker).
    sender: InputQueue,
    width: u32,
    height: u32,
    state: Option<EmulatorState>,
    /// The emulator's frame counter, as of the last frame read.
    frame_count: u64,
    /// Mouse latency the emulator measured (average in 0.1 ms, samples).
    mouse_latency: (u32, u32),
}

#[derive(Default)]
struct Stats {
    frames_in: AtomicU64,
    frames_encoded: AtomicU64,
    keyframes: AtomicU64,
    repeats: AtomicU64,
    bytes_out: AtomicU64,
    dropped: AtomicU64,
    encode_us_last: AtomicU64,
    audio_packets: AtomicU64,
    audio_skipped: AtomicU64,
    audio_underruns: AtomicU64,
    reconnects: AtomicU64,
    ping_rtt_hint_us: AtomicU64,
    fps_milli: AtomicU64,
    kbps: AtomicU64,
}

/// State shared by the HTTP API, signaling sessions and media threads.
pub struct Hub {
    codec: Mutex<Codec>,
    viewers: Mutex<HashMap<String, ViewerSlot>>,
    keyframe: AtomicBool,
    emulator: Mutex<Option<EmuLink>>,
    audio_source: Mutex<Option<macemu_ipc::AudioSubscriber>>,
    mouse_mode: Mutex<MouseMode>,
    stats: Stats,
    codec_tx: broadcast::Sender<Codec>,
    shutdown: AtomicBool,
    process: EmulatorProcess,
    started: Instant,
    keyframe_interval: Duration,
    /// The attached emulator's drives as it last reported them.
    drives: Mutex<BTreeMap<WireSlot, DriveReport>>,
}

impl Hub {
    fn new(cfg: &ServeConfig) -> Arc<Self> {
        Arc::new(Self {
            codec: Mutex::new(cfg.codec),
            viewers: Mutex::new(HashMap::new()),
            keyframe: AtomicBool::new(true),
            emulator: Mutex::new(None),
            audio_source: Mutex::new(None),
            mouse_mode: Mutex::new(MouseMode::Absolute),
            stats: Stats::default(),
            codec_tx: broadcast::channel(8).0,
            shutdown: AtomicBool::new(false),
            process: EmulatorProcess::new(cfg.emulator_cmd.clone()),
            started: Instant::now(),
            keyframe_interval: cfg.limits.keyframe_interval,
            drives: Mutex::new(BTreeMap::new()),
        })
    }

    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn codec(&self) -> Codec {
        *Self::lock(&self.codec)
    }

    fn request_keyframe(&self) {
        self.keyframe.store(true, Relaxed);
    }

    fn connected_viewers(&self, png: bool) -> bool {
        Self::lock(&self.viewers)
            .values()
            .any(|v| v.connected && v.png == png)
    }

    /// Sends input to the emulator, if one is attached. Mouse mode is remembered for later emulators.
    fn send_input(&self, msg: &InputMessage) {
        if let InputMessage::MouseMode(m) = msg {
            *Self::lock(&self.mouse_mode) = *m;
        }
        let sender = Self::lock(&self.emulator)
            .as_ref()
            .map(|e| e.sender.clone());
        if let Some(s) = sender {
            if let Err(e) = s.send(msg) {
                tracing::debug!("input not delivered: {e}");
            }
        }
    }

    /// Sends viewer input, never blocking: the emulator link queues it for its writer thread.
    fn queue_input(&self, msg: InputMessage) {
        self.send_input(&msg);
    }

    /// Hands an H.264 frame or PNG message to every connected viewer of that kind, never blocking.
    fn broadcast_video(&self, out: &VideoOut) {
        let (png, key) = match out {
            VideoOut::H264 { keyframe, .. } => (false, *keyframe),
            VideoOut::Png(_) => (true, false),
            VideoOut::Meta(_) => {
                // Metadata alone (a ping echo on a static screen): best effort, no keyframe logic.
                for v in Self::lock(&self.viewers).values() {
                    if v.connected && !v.png {
                        let _ = v.video.try_send(out.clone());
                    }
                }
                return;
            }
        };
        let mut need_key = false;
        for v in Self::lock(&self.viewers).values_mut() {
            if !v.connected || v.png != png {
                continue;
            }
            if v.waiting_key && !key && !png {
                continue;
            }
            match v.video.try_send(out.clone()) {
                Ok(()) => v.waiting_key = false,
                Err(_) => {
                    self.stats.dropped.fetch_add(1, Relaxed);
                    if !png {
                        v.waiting_key = true;
                        need_key = true;
                    }
                }
            }
        }
        if need_key {
            self.request_keyframe();
        }
    }

    /// Somebody is connected to hear audio.
    fn listening(&self) -> bool {
        Self::lock(&self.viewers).values().any(|v| v.connected)
    }

    fn broadcast_audio(&self, pkt: &AudioPacket) {
        for v in Self::lock(&self.viewers).values() {
            if v.connected {
                let _ = v.audio.try_send(pkt.clone());
            }
        }
    }

    fn status_json(&self) -> Value {
        let emu = Self::lock(&self.emulator);
        let s = &self.stats;
        let viewers = Self::lock(&self.viewers);
        let state_name = |st: EmulatorState| match st {
            EmulatorState::Stopped => "stopped",
            EmulatorState::Running => "running",
            EmulatorState::Paused => "paused",
        };
        let managed = self.process.pid();
        let mut v = json!({
            "emulator": match emu.as_ref() {
                Some(e) => json!({
                    "connected": true, "pid": e.pid, "width": e.width, "height": e.height,
                    "state": e.state.map(state_name),
                }),
                None => json!({"connected": false, "managed_pid": managed}),
            },
            "codec": self.codec().name(),
            "peers": viewers.values().filter(|v| v.connected).count(),
            "peers_negotiating": viewers.values().filter(|v| !v.connected).count(),
            "fps": s.fps_milli.load(Relaxed) as f64 / 1000.0,
            "bitrate_kbps": s.kbps.load(Relaxed),
            "frames_in": s.frames_in.load(Relaxed),
            "frames_encoded": s.frames_encoded.load(Relaxed),
            "keyframes": s.keyframes.load(Relaxed),
            "repeats": s.repeats.load(Relaxed),
            "frames_dropped": s.dropped.load(Relaxed),
            "encode_ms_last": s.encode_us_last.load(Relaxed) as f64 / 1000.0,
            "audio": {
                "packets": s.audio_packets.load(Relaxed),
                "silent_skipped": s.audio_skipped.load(Relaxed),
                "underruns": s.audio_underruns.load(Relaxed),
            },
            "emulator_reconnects": s.reconnects.load(Relaxed),
            "latency": {"emulator_ping_us": s.ping_rtt_hint_us.load(Relaxed)},
            "mouse_mode": http::mouse_mode_name(*Self::lock(&self.mouse_mode)),
            "uptime_s": self.started.elapsed().as_secs(),
            // The v4 server's fields.
            "emulator_connected": emu.is_some(),
            "emulator_running": managed.is_some()
                || emu.as_ref().is_some_and(|e| e.state == Some(EmulatorState::Running)),
            "emulator_pid": emu.as_ref().map_or(0, |e| e.pid),
        });
        if let Some(e) = emu.as_ref() {
            v["video"] = json!({
                "width": e.width, "height": e.height, "frame_count": e.frame_count,
                "state": e.state.map_or(0, |st| st as u32),
            });
            v["mouse_latency_ms"] = json!(f64::from(e.mouse_latency.0) / 10.0);
            v["mouse_latency_samples"] = json!(e.mouse_latency.1);
        }
        v
    }
}

impl Control for Hub {
    fn status(&self) -> Value {
        self.status_json()
    }
    fn codec(&self) -> String {
        Hub::codec(self).name().into()
    }
    fn set_codec(&self, codec: &str) -> Result<(), String> {
        let c: Codec = codec.parse()?;
        let changed = {
            let mut g = Self::lock(&self.codec);
            std::mem::replace(&mut *g, c) != c
        };
        if changed {
            tracing::info!(codec = c.name(), "codec switched; viewers reconnect");
            let _ = self.codec_tx.send(c);
            self.request_keyframe();
        }
        Ok(())
    }
    fn drives(&self) -> Option<Vec<DriveReport>> {
        Self::lock(&self.emulator).as_ref()?;
        Some(Self::lock(&self.drives).values().cloned().collect())
    }
    fn mouse_mode(&self) -> MouseMode {
        *Self::lock(&self.mouse_mode)
    }
    fn set_mouse_mode(&self, mode: MouseMode) {
        self.send_input(&InputMessage::MouseMode(mode));
    }
    fn drive(&self, cmd: DriveCommand) -> Result<(), String> {
        let sender = Self::lock(&self.emulator)
            .as_ref()
            .map(|e| e.sender.clone());
        let Some(s) = sender else {
            return Err("no emulator is attached".into());
        };
        s.send_drive(&cmd).map_err(|e| e.to_string())
    }

    fn emulator(&self, action: EmulatorAction) -> Result<String, String> {
        let attached = Self::lock(&self.emulator).as_ref().map(|e| e.pid);
        match action {
            EmulatorAction::Start => match attached {
                Some(pid) => {
                    self.send_input(&InputMessage::Command(Command::Start));
                    Ok(format!("emulator {pid} told to start"))
                }
                None => self
                    .process
                    .start()
                    .map(|pid| format!("emulator launched (pid {pid})"))
                    .map_err(|e| {
                        format!(
                            "cannot launch {}: {e}",
                            self.process.command_line().join(" ")
                        )
                    }),
            },
            EmulatorAction::Stop => {
                self.send_input(&InputMessage::Command(Command::Stop));
                if self.process.stop() {
                    Ok("emulator process stopped".into())
                } else if attached.is_some() {
                    Ok("emulator told to stop".into())
                } else {
                    Err("no emulator attached".into())
                }
            }
            EmulatorAction::Restart => {
                if self.process.pid().is_some() || attached.is_none() {
                    self.process
                        .restart()
                        .map(|pid| format!("emulator relaunched (pid {pid})"))
                        .map_err(|e| format!("cannot launch: {e}"))
                } else {
                    self.send_input(&InputMessage::Command(Command::Reset));
                    Ok("emulator (not launched by this server) told to reset".into())
                }
            }
            EmulatorAction::Reset => match attached {
                Some(_) => {
                    self.send_input(&InputMessage::Command(Command::Reset));
                    Ok("emulator reset".into())
                }
                None => Err("no emulator attached".into()),
            },
        }
    }
}

/// A running server: its addresses and a way to stop it.
pub struct ServerHandle {
    pub http_addr: SocketAddr,
    pub signaling_addr: SocketAddr,
    pub token: Option<String>,
    hub: Arc<Hub>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl ServerHandle {
    pub fn status(&self) -> Value {
        self.hub.status_json()
    }

    /// Stops the listeners and media threads (and an emulator this server launched).
    pub async fn shutdown(mut self) {
        self.hub.shutdown.store(true, Relaxed);
        for t in self.tasks.drain(..) {
            t.abort();
        }
        let threads = std::mem::take(&mut self.threads);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
        let peers: Vec<_> = Hub::lock(&self.hub.viewers).drain().collect();
        drop(peers);
        let hub = self.hub.clone();
        let _ = tokio::task::spawn_blocking(move || hub.process.stop_and_wait()).await;
    }
}

fn is_loopback(ip: &IpAddr) -> bool {
    ip.is_loopback()
}

/// Starts everything; returns once both listeners are bound.
pub async fn start(mut cfg: ServeConfig) -> Result<ServerHandle, ServeError> {
    if !is_loopback(&cfg.bind) && cfg.token.is_none() {
        return Err(ServeError::NoToken);
    }
    if cfg.token.as_deref() == Some("") {
        cfg.token = None;
    }
    let hub = Hub::new(&cfg);
    let api = Arc::new(peer::build_api(&cfg.peer)?);

    let bind = |port| async move {
        let addr = SocketAddr::new(cfg.bind, port);
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Bind { addr, source })
    };
    let http_l = bind(cfg.http_port).await?;
    let sig_l = bind(cfg.signaling_port).await?;
    let http_addr = http_l.local_addr().map_err(|source| ServeError::Bind {
        addr: SocketAddr::new(cfg.bind, cfg.http_port),
        source,
    })?;
    let signaling_addr = sig_l.local_addr().map_err(|source| ServeError::Bind {
        addr: SocketAddr::new(cfg.bind, cfg.signaling_port),
        source,
    })?;

    let policy = Arc::new(
        OriginPolicy::new(
            cfg.bind,
            http_addr.port(),
            &cfg.allow_hosts,
            &cfg.allow_origins,
            cfg.token.is_some(),
        )
        .with_own_port(signaling_addr.port()),
    );
    let http_cfg = HttpConfig {
        policy: (*policy).clone(),
        token: cfg.token.clone(),
        signaling_port: signaling_addr.port(),
        prefs_file: cfg.prefs_file.clone(),
        rom_dirs: cfg.rom_dirs.clone(),
        disk_dirs: cfg.disk_dirs.clone(),
        max_upload: cfg.limits.max_upload,
        extra: json!({
            "bind": cfg.bind.to_string(),
            "http_port": http_addr.port(),
            "emulator_command": hub.process.command_line(),
            "auto_start": cfg.auto_start,
            "target_pid": cfg.target_pid,
            "stun": cfg.peer.stun,
        }),
    };
    let whep = Arc::new(whep_host::WhepHost {
        hub: hub.clone(),
        api: api.clone(),
        opts: cfg.peer.clone(),
        queue_len: cfg.limits.queue_len,
    });
    // WHEP bodies are SDP, not JSON: its routes get the Host and Origin checks of the
    // signaling upgrade (a browser cannot send application/sdp cross-site without a preflight).
    let whep_routes =
        crate::whep::router(cfg.token.clone(), whep).layer(axum::middleware::from_fn_with_state(
            Arc::new(http_cfg.policy.clone()),
            http::check_host_and_origin,
        ));
    let app = http::router(http_cfg, hub.clone() as Arc<dyn Control>).merge(whep_routes);
    let limits = cfg.limits;
    let sig_state = Arc::new(SigState {
        hub: hub.clone(),
        api,
        opts: cfg.peer.clone(),
        token: cfg.token.clone(),
        policy,
        limits,
        sessions: Arc::new(Semaphore::new(limits.max_sessions)),
        peers: Arc::new(Semaphore::new(limits.max_viewers)),
    });
    let sig_app = axum::Router::new()
        .route("/", axum::routing::get(ws_handler))
        .route("/{*path}", axum::routing::get(ws_handler))
        .with_state(sig_state);

    let tasks = vec![
        tokio::spawn(http::serve_limited(http_l, app, limits, "HTTP")),
        tokio::spawn(http::serve_limited(sig_l, sig_app, limits, "signaling")),
    ];

    if cfg.auto_start
        && cfg.target_pid.is_none()
        && macemu_ipc::list_emulators().iter().all(|e| !e.alive)
    {
        match hub.process.start() {
            Ok(pid) => tracing::info!(pid, "auto-started the emulator"),
            Err(e) => tracing::error!(
                "--auto-start: cannot launch {}: {e}",
                hub.process.command_line().join(" ")
            ),
        }
    }

    let rt = tokio::runtime::Handle::current();
    let mut threads = Vec::new();
    {
        let hub = hub.clone();
        let cfg = cfg.clone();
        threads.push(
            std::thread::Builder::new()
                .name("macemu-video".into())
                .spawn(move || media_thread(hub, cfg))
                .expect("spawning the media thread"),
        );
    }
    {
        let hub = hub.clone();
        threads.push(
            std::thread::Builder::new()
                .name("macemu-audio".into())
                .spawn(move || audio_thread(hub, rt))
                .expect("spawning the audio thread"),
        );
    }
    Ok(ServerHandle {
        http_addr,
        signaling_addr,
        token: cfg.token,
        hub,
        tasks,
        threads,
    })
}

// ---------------------------------------------------------------------------------------------------
// Media: attach to the emulator, encode frames once, fan out.

fn pixel_format(p: macemu_ipc::PixelFormat) -> PixelFormat {
    match p {
        macemu_ipc::PixelFormat::Argb => PixelFormat::Argb,
        macemu_ipc::PixelFormat::Bgra => PixelFormat::Bgra,
    }
}

fn rect(r: macemu_ipc::Rect) -> Rect {
    Rect::new(r.x, r.y, r.width, r.height)
}

fn attach(hub: &Hub, cfg: &ServeConfig) -> Option<Subscriber> {
    let found = macemu_ipc::list_emulators();
    let pid = supervisor::choose_pid(cfg.target_pid, hub.process.pid(), &found)?;
    match Subscriber::connect(pid) {
        Ok(sub) => {
            let info = found.iter().find(|e| e.pid == pid);
            tracing::info!(pid, "attached to the emulator");
            let sender = match sub.sender().queued(INPUT_QUEUE) {
                Ok(q) => q,
                Err(e) => {
                    tracing::error!(pid, "cannot start the input writer: {e}");
                    return None;
                }
            };
            // The mouse mode chosen by viewers outlives emulator restarts.
            let _ = sender.send(&InputMessage::MouseMode(*Hub::lock(&hub.mouse_mode)));
            // Our emulator answers with its drives and reports each change; a v4 one skips it.
            Hub::lock(&hub.drives).clear();
            let _ = sender.send_drive(&DriveCommand::Query);
            *Hub::lock(&hub.audio_source) = Some(sub.audio());
            *Hub::lock(&hub.emulator) = Some(EmuLink {
                pid,
                sender,
                width: info.map_or(0, |i| i.width),
                height: info.map_or(0, |i| i.height),
                state: sub.state().ok(),
                frame_count: 0,
                mouse_latency: sub.mouse_latency(),
            });
            hub.stats.reconnects.fetch_add(1, Relaxed);
            hub.request_keyframe();
            Some(sub)
        }
        Err(e) => {
            tracing::debug!(pid, "cannot attach: {e}");
            None
        }
    }
}

fn detach(hub: &Hub, why: &IpcError) {
    tracing::warn!("emulator detached: {why}");
    *Hub::lock(&hub.emulator) = None;
    *Hub::lock(&hub.audio_source) = None;
    Hub::lock(&hub.drives).clear();
}

/// Keeps the newest report of each drive; a report about no drive (a command that failed before
/// it reached one) is only logged.
fn note_drive_reports(hub: &Hub, reports: Vec<DriveReport>) {
    let mut drives = Hub::lock(&hub.drives);
    for r in reports {
        if let Some(e) = &r.error {
            tracing::warn!(drive = ?r.slot.map(|s| s.to_string()), "drive: {e}");
        }
        if r.ejected_by_mac {
            tracing::info!(drive = ?r.slot.map(|s| s.to_string()), "the Mac ejected its disk");
        }
        if let Some(slot) = r.slot {
            drives.insert(slot, r);
        }
    }
}

/// Per-codec encoder state kept across frames.
struct Encoders {
    conv: Converter,
    h264: H264Encoder,
    policy: EncodePolicy,
    png: PngPlanner,
    bander: PngBander,
    /// RTP timestamps of the H.264 track.
    clock: MediaClock,
    /// Refreshes of an unchanged picture without the encoder.
    repeat: Repeater,
    /// Encoder pictures of the current content (1 = just the change itself).
    encodes_of_picture: u32,
    /// Dirty area not yet converted (frames skipped while nobody watched).
    pending: Rect,
    last_ping_sent: u32,
    cursor: Cursor,
    ping: PingEcho,
    codec: Codec,
    fps_window: (Instant, u64, u64),
}

impl Encoders {
    fn new(cfg: &ServeConfig, codec: Codec) -> Self {
        Self {
            conv: Converter::new(),
            h264: H264Encoder::new(cfg.h264),
            policy: EncodePolicy::new(cfg.refresh),
            png: PngPlanner::new(4, cfg.png_refresh),
            bander: PngBander::new(MAX_PNG_MESSAGE),
            clock: MediaClock::new(),
            repeat: Repeater::new(),
            encodes_of_picture: 0,
            pending: Rect::default(),
            last_ping_sent: 0,
            cursor: Cursor::default(),
            ping: PingEcho::default(),
            codec,
            fps_window: (Instant::now(), 0, 0),
        }
    }
}

fn media_thread(hub: Arc<Hub>, cfg: ServeConfig) {
    let mut sub: Option<Subscriber> = None;
    let mut enc = Encoders::new(&cfg, hub.codec());
    let mut keyframe_gate = KeyframeGate::new(hub.keyframe_interval);
    let mut next_scan = Instant::now();
    while !hub.shutdown.load(Relaxed) {
        let Some(s) = sub.as_mut() else {
            if Instant::now() >= next_scan {
                sub = attach(&hub, &cfg);
                if sub.is_some() {
                    enc = Encoders::new(&cfg, hub.codec());
                }
                next_scan = Instant::now() + supervisor::SCAN_PERIOD;
            } else {
                std::thread::sleep(Duration::from_millis(50));
            }
            // Relaunch an auto-started emulator that died.
            if cfg.auto_start
                && sub.is_none()
                && hub.process.pid().is_none()
                && cfg.target_pid.is_none()
            {
                let _ = hub.process.start();
            }
            continue;
        };
        let codec = hub.codec();
        if codec != enc.codec {
            enc = Encoders::new(&cfg, codec);
        }
        // Requests wait for the gate, so a PLI flood from one viewer cannot make every picture a
        // keyframe; those made meanwhile are served by the next one.
        if hub.keyframe.load(Relaxed) && keyframe_gate.try_pass(Instant::now()) {
            hub.keyframe.store(false, Relaxed);
            enc.policy.request_keyframe();
            enc.png.force_full();
        }
        let mut idle = false;
        let mut gone = None;
        match s.wait_frame(Duration::from_millis(100)) {
            Ok(Some(view)) => {
                let now = Instant::now();
                let t5 = realtime_us();
                hub.stats.frames_in.fetch_add(1, Relaxed);
                enc.cursor = Cursor {
                    x: view.cursor_x,
                    y: view.cursor_y,
                    visible: view.cursor_visible,
                };
                if let Some(p) = view.ping {
                    // Server → emulator → frame → server, on the server's clock.
                    if p.t2_server_us > 0 && t5 >= p.t2_server_us {
                        hub.stats
                            .ping_rtt_hint_us
                            .store(t5 - p.t2_server_us, Relaxed);
                    }
                    enc.ping = PingEcho {
                        sequence: p.sequence,
                        t: [
                            p.t1_browser_ms,
                            p.t2_server_us,
                            p.t3_emulator_us,
                            p.t4_frame_us,
                            t5,
                            0,
                            0,
                        ],
                    };
                }
                let frame = FrameRef {
                    data: view.data,
                    width: view.width,
                    height: view.height,
                    stride: view.stride,
                    format: pixel_format(view.pixel_format),
                };
                let dirty = rect(view.dirty);
                if let Some(e) = Hub::lock(&hub.emulator).as_mut() {
                    e.width = view.width;
                    e.height = view.height;
                    e.frame_count = view.frame_count;
                }
                if let Err(e) =
                    process_frame(&hub, &mut enc, &frame, dirty, now, (view.timestamp_us, t5))
                {
                    tracing::warn!("frame dropped: {e}");
                }
            }
            Ok(None) => idle = true,
            Err(e) => gone = Some(e),
        }
        let reports = s.take_drive_reports();
        if !reports.is_empty() {
            note_drive_reports(&hub, reports);
        }
        if let Some(e) = gone {
            detach(&hub, &e);
            sub = None;
            next_scan = Instant::now();
            continue;
        }
        if idle {
            let now = Instant::now();
            if enc.codec == Codec::H264 {
                let viewers = hub.connected_viewers(false);
                let have = enc.conv.picture().is_some();
                if let Decision::Encode { keyframe } = enc.policy.on_idle(now, viewers, have) {
                    let t5 = realtime_us();
                    if let Err(e) = encode_h264(&hub, &mut enc, keyframe, false, (None, t5)) {
                        tracing::warn!("refresh failed: {e}");
                    }
                }
            }
            if let Ok(st) = s.state() {
                if let Some(e) = Hub::lock(&hub.emulator).as_mut() {
                    e.state = Some(st);
                    e.mouse_latency = s.mouse_latency();
                }
            }
        }
        update_rates(&hub, &mut enc);
    }
}

fn update_rates(hub: &Hub, enc: &mut Encoders) {
    let (t0, f0, b0) = enc.fps_window;
    let el = t0.elapsed();
    if el >= Duration::from_secs(1) {
        let f = hub.stats.frames_encoded.load(Relaxed);
        let b = hub.stats.bytes_out.load(Relaxed);
        hub.stats.fps_milli.store(
            ((f - f0) as f64 * 1000.0 / el.as_secs_f64()) as u64,
            Relaxed,
        );
        hub.stats.kbps.store(
            ((b - b0) as f64 * 8.0 / 1000.0 / el.as_secs_f64()) as u64,
            Relaxed,
        );
        enc.fps_window = (Instant::now(), f, b);
    }
}

fn process_frame(
    hub: &Hub,
    enc: &mut Encoders,
    frame: &FrameRef<'_>,
    dirty: Rect,
    now: Instant,
    (capture_us, t5): (u64, u64),
) -> Result<(), crate::video::VideoError> {
    frame.validate()?;
    match enc.codec {
        Codec::H264 => {
            let viewers = hub.connected_viewers(false);
            enc.pending = enc
                .pending
                .union(&dirty.clamp_to(frame.width, frame.height));
            let decision = enc.policy.on_frame(now, !dirty.is_empty(), viewers);
            if let Decision::Encode { keyframe } = decision {
                let changed = !enc.pending.is_empty();
                enc.conv.update(frame, enc.pending, false)?;
                enc.pending = Rect::default();
                encode_h264(hub, enc, keyframe, changed, (Some(capture_us), t5))?;
            } else if viewers && enc.ping.sequence != enc.last_ping_sent {
                // A static screen sends no frame to carry the echo: it goes alone.
                enc.last_ping_sent = enc.ping.sequence;
                let mut ping = enc.ping;
                let t = realtime_us();
                ping.t[5] = t;
                ping.t[6] = t;
                let meta = datachannel::encode_h264_meta(&enc.cursor, &ping);
                hub.broadcast_video(&VideoOut::Meta(Bytes::copy_from_slice(&meta)));
            }
        }
        Codec::Png => {
            if !hub.connected_viewers(true) {
                return Ok(());
            }
            let planned = enc.png.plan(now, dirty, frame.width, frame.height);
            // A new ping echo goes out even on a static screen, on a 1×1 rectangle.
            let rect = planned.or_else(|| {
                (enc.ping.sequence != enc.last_ping_sent).then(|| Rect::new(0, 0, 1, 1))
            });
            let Some(r) = rect else { return Ok(()) };
            let bands = enc.bander.encode(frame, r)?;
            let t6 = realtime_us();
            hub.stats
                .encode_us_last
                .store(t6.saturating_sub(t5), Relaxed);
            hub.stats.frames_encoded.fetch_add(1, Relaxed);
            enc.last_ping_sent = enc.ping.sequence;
            let mut msgs = Vec::with_capacity(bands.len());
            for (b, png) in bands {
                let t7 = realtime_us();
                let mut ping = enc.ping;
                if ping.sequence != 0 {
                    ping.t[5] = t6;
                    ping.t[6] = t7;
                }
                let hdr = PngHeader {
                    frame_ready_ms: t5 / 1000,
                    dirty_x: b.x,
                    dirty_y: b.y,
                    dirty_width: b.width,
                    dirty_height: b.height,
                    frame_width: frame.width,
                    frame_height: frame.height,
                    send_ms: t7 / 1000,
                    cursor: enc.cursor,
                    ping,
                };
                let msg = Bytes::from(hdr.encode_with(&png));
                hub.stats.bytes_out.fetch_add(msg.len() as u64, Relaxed);
                msgs.push(msg);
            }
            hub.broadcast_video(&VideoOut::Png(Arc::new(msgs)));
        }
    }
    Ok(())
}

/// Sends the current picture: the encoder's rendering of it, or, when it is a refresh of a picture
/// the encoder has already refined once, a repeat built without the encoder.
fn encode_h264(
    hub: &Hub,
    enc: &mut Encoders,
    keyframe: bool,
    changed: bool,
    (capture_us, t5): (Option<u64>, u64),
) -> Result<(), crate::video::VideoError> {
    let Some(pic) = enc.conv.picture() else {
        return Ok(());
    };
    let ts_ms = realtime_us() / 1000;
    let started = Instant::now();
    let repeat = (!keyframe && !changed && enc.encodes_of_picture > ENCODED_REFRESHES)
        .then(|| enc.repeat.repeat())
        .flatten();
    let f = match repeat {
        Some(data) => {
            hub.stats.repeats.fetch_add(1, Relaxed);
            EncodedFrame {
                data,
                keyframe: false,
            }
        }
        None => {
            let encoded = enc.h264.encode(pic, keyframe, ts_ms)?;
            let Some(f) = encoded else {
                enc.policy.record_encode_time(started.elapsed());
                return Ok(());
            };
            enc.encodes_of_picture = if changed {
                1
            } else {
                enc.encodes_of_picture.saturating_add(1)
            };
            match enc.repeat.pass(&f.data) {
                Ok(data) => EncodedFrame {
                    data,
                    keyframe: f.keyframe,
                },
                Err(e) => {
                    // Cannot happen with the encoder's own stream; an IDR puts everything right.
                    tracing::warn!("{e}; sending a keyframe instead");
                    enc.policy.request_keyframe();
                    return Ok(());
                }
            }
        }
    };
    enc.policy.record_encode_time(started.elapsed());
    let t6 = realtime_us();
    let rtp_timestamp = enc.clock.stamp(capture_us, t5);
    hub.stats
        .encode_us_last
        .store(t6.saturating_sub(t5), Relaxed);
    hub.stats.frames_encoded.fetch_add(1, Relaxed);
    hub.stats.bytes_out.fetch_add(f.data.len() as u64, Relaxed);
    if f.keyframe {
        hub.stats.keyframes.fetch_add(1, Relaxed);
    }
    let mut ping = enc.ping;
    if ping.sequence != 0 {
        ping.t[5] = t6;
        ping.t[6] = realtime_us();
    }
    enc.last_ping_sent = ping.sequence;
    let meta = Bytes::copy_from_slice(&datachannel::encode_h264_meta(&enc.cursor, &ping));
    hub.broadcast_video(&VideoOut::H264 {
        data: f.data,
        rtp_timestamp,
        keyframe: f.keyframe,
        meta,
    });
    Ok(())
}

fn audio_thread(hub: Arc<Hub>, _rt: tokio::runtime::Handle) {
    let mut enc = match AudioEncoder::new(96_000) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("audio disabled: {e}");
            return;
        }
    };
    let period = Duration::from_millis(20);
    let mut next = Instant::now() + period;
    // The 20 ms slot number: the RTP timestamp follows it, so skipped silence still takes its time.
    let mut slot: u64 = 0;
    while !hub.shutdown.load(Relaxed) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next += period;
        slot += 1;
        // After a long stall (suspend, debugger) do not try to catch up with a burst.
        if Instant::now() > next + period * 5 {
            next = Instant::now() + period;
        }
        if !hub.listening() {
            // Nobody to hear it: neither ask the emulator for sound nor encode. Old sound is dropped so
            // the next viewer starts with what plays then.
            enc.clear();
            continue;
        }
        let sender = Hub::lock(&hub.emulator).as_ref().map(|e| e.sender.clone());
        {
            let mut src = Hub::lock(&hub.audio_source);
            if let (Some(a), Some(s)) = (src.as_mut(), sender) {
                // Pull model: ask for the next 20 ms, take what the ring holds now.
                let _ = s.send(&InputMessage::AudioRequest {
                    samples: PACKET_FRAMES as u32,
                });
                // Take everything the ring holds (at most its 3 frames), so a late frame is not left
                // behind to lag the stream by a packet forever.
                for _ in 0..3 {
                    match a.read_audio() {
                        Ok(f) if !f.silence => {
                            if let Err(e) = enc.push(f.rate, f.channels, &f.samples) {
                                tracing::debug!("audio frame skipped: {e}");
                            }
                        }
                        Ok(_) => break,
                        Err(e) => {
                            tracing::debug!("audio: {e}");
                            *src = None;
                            break;
                        }
                    }
                }
            }
        }
        match enc.next_packet() {
            Ok(Some(data)) => {
                hub.stats.audio_packets.fetch_add(1, Relaxed);
                hub.broadcast_audio(&AudioPacket { data, slot });
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("Opus: {e}"),
        }
        hub.stats.audio_skipped.store(enc.skipped, Relaxed);
        hub.stats.audio_underruns.store(enc.underruns, Relaxed);
    }
}

// ---------------------------------------------------------------------------------------------------
// Signaling: one WebSocket client, one signaling session, at most one peer at a time.

struct SigState {
    hub: Arc<Hub>,
    api: Arc<webrtc::api::API>,
    opts: PeerOptions,
    token: Option<String>,
    policy: Arc<OriginPolicy>,
    limits: Limits,
    /// One permit per open signaling session.
    sessions: Arc<Semaphore>,
    /// One permit per peer connection (viewer).
    peers: Arc<Semaphore>,
}

async fn ws_handler(
    State(st): State<Arc<SigState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // Browsers let any page open a WebSocket to any host: the Origin and Host are what tell ours apart.
    let get = |n: axum::http::HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
    let seen = RequestHeaders {
        host: get(axum::http::header::HOST),
        origin: get(axum::http::header::ORIGIN),
        ..Default::default()
    };
    if let Err(r) = st.policy.check_websocket(&seen) {
        tracing::debug!("signaling upgrade refused: {r}");
        let code = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::FORBIDDEN);
        return (code, r.to_string()).into_response();
    }
    if !http::authorized(st.token.as_deref(), q.as_deref(), &headers) {
        return (StatusCode::UNAUTHORIZED, "missing or wrong token").into_response();
    }
    let Ok(permit) = st.sessions.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many signaling sessions (at most {})",
                st.limits.max_sessions
            ),
        )
            .into_response();
    };
    // Signaling messages are a few KiB; the frame limit matters as much as the message limit.
    let max = st.limits.ws_max_message.min(signaling::MAX_MESSAGE_LEN);
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            signaling_session(st, socket).await;
            drop(permit);
        })
}

static SESSION_COUNTER: AtomicU64 = AtomicU64::new(0);

struct ActivePeer {
    id: String,
    pc: Arc<webrtc::peer_connection::RTCPeerConnection>,
    events: mpsc::Receiver<PeerEvent>,
    input: InputTranslator,
    _slot: OwnedSemaphorePermit,
}

async fn close_peer(hub: &Hub, p: ActivePeer) {
    let ActivePeer {
        id,
        pc,
        events,
        mut input,
        _slot,
    } = p;
    // Callbacks waiting for room in the event queue give up once it is gone, so close cannot wait on them.
    drop(events);
    for m in input.release_all() {
        hub.queue_input(m);
    }
    Hub::lock(&hub.viewers).remove(&id);
    let _ = pc.close().await;
}

async fn signaling_session(st: Arc<SigState>, mut ws: WebSocket) {
    let hub = st.hub.clone();
    let tag = format!("p{}", SESSION_COUNTER.fetch_add(1, Relaxed) + 1);
    let mut session =
        SignalingSession::with_queue_limit(hub.codec().name(), &tag, st.limits.queue_len);
    let mut codec_rx = hub.codec_tx.subscribe();
    let mut peer: Option<ActivePeer> = None;
    // Until an answer is applied the session holds resources for nothing: it gets this long.
    let timeout = st.limits.negotiation_timeout;
    let mut deadline = Some(tokio::time::Instant::now() + timeout);
    loop {
        let input = tokio::select! {
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => {
                tracing::debug!(session = %tag, "negotiation timed out; closing the session");
                let msg = signaling::ServerMessage::Error {
                    message: format!("negotiation timed out after {} s", timeout.as_secs_f64()),
                };
                let _ = ws.send(Message::Text(msg.to_json().into())).await;
                break;
            },
            m = ws.recv() => match m {
                Some(Ok(Message::Text(t))) => match signaling::parse_client_message(t.as_str()) {
                    Ok(msg) => SignalInput::Client(msg),
                    Err(e) => {
                        let _ = ws.send(Message::Text(signaling::ServerMessage::Error { message: e.to_string() }.to_json().into())).await;
                        continue;
                    }
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            },
            ev = async {
                match peer.as_mut() {
                    Some(p) => p.events.recv().await,
                    None => std::future::pending().await,
                }
            } => match ev {
                Some(PeerEvent::LocalCandidate { candidate, mid }) => SignalInput::LocalCandidate { candidate, mid },
                Some(PeerEvent::Input(b)) => {
                    if let Some(p) = peer.as_mut() {
                        match datachannel::parse_client_message(&b) {
                            Ok(ev) => {
                                if let Some(m) = p.input.translate(ev, realtime_us()) {
                                    hub.queue_input(m);
                                }
                            }
                            Err(e) => tracing::debug!("input message ignored: {e}"),
                        }
                    }
                    continue;
                }
                Some(PeerEvent::Text(t)) => {
                    tracing::debug!(text = %t.chars().take(200).collect::<String>(), "DataChannel text message ignored");
                    continue;
                }
                Some(PeerEvent::KeyframeRequest) => {
                    hub.request_keyframe();
                    continue;
                }
                Some(PeerEvent::Connected) => {
                    if let Some(p) = peer.as_ref() {
                        if let Some(v) = Hub::lock(&hub.viewers).get_mut(&p.id) {
                            v.connected = true;
                        }
                        tracing::info!(peer = %p.id, "viewer connected");
                    }
                    hub.request_keyframe();
                    continue;
                }
                Some(PeerEvent::Closed) | None => {
                    if let Some(p) = peer.take() {
                        tracing::info!(peer = %p.id, "viewer's peer connection closed");
                        close_peer(&hub, p).await;
                    }
                    continue;
                }
            },
            c = codec_rx.recv() => match c {
                Ok(c) => {
                    session.set_codec(c.name());
                    SignalInput::CodecChanged
                }
                Err(_) => continue,
            },
        };
        let mut queue = vec![input];
        while let Some(input) = queue.pop() {
            for action in session.handle(input) {
                match action {
                    SignalAction::Send(m) => {
                        if ws.send(Message::Text(m.to_json().into())).await.is_err() {
                            break;
                        }
                    }
                    SignalAction::CreatePeer { peer_id, codec } => {
                        if let Some(p) = peer.take() {
                            close_peer(&hub, p).await;
                        }
                        let png = codec == "png";
                        let Ok(slot) = st.peers.clone().try_acquire_owned() else {
                            queue.push(SignalInput::PeerFailed(format!(
                                "the server has its maximum of {} viewers",
                                st.limits.max_viewers
                            )));
                            continue;
                        };
                        let (tx, rx) = mpsc::channel(st.limits.queue_len.max(1));
                        match peer::create_peer(&st.api, &st.opts, png, tx).await {
                            Ok((h, sdp)) => {
                                Hub::lock(&hub.viewers).insert(
                                    peer_id.clone(),
                                    ViewerSlot {
                                        video: h.video,
                                        audio: h.audio,
                                        png,
                                        connected: false,
                                        waiting_key: false,
                                    },
                                );
                                peer = Some(ActivePeer {
                                    id: peer_id,
                                    pc: h.pc,
                                    events: rx,
                                    input: InputTranslator::new(*Hub::lock(&hub.mouse_mode)),
                                    _slot: slot,
                                });
                                queue.push(SignalInput::OfferReady(sdp));
                            }
                            Err(e) => queue.push(SignalInput::PeerFailed(e.to_string())),
                        }
                    }
                    SignalAction::ApplyAnswer(sdp) => {
                        if let Some(p) = peer.as_ref() {
                            if let Err(e) = peer::apply_answer(&p.pc, sdp).await {
                                queue.push(SignalInput::PeerFailed(format!("bad answer: {e}")));
                            }
                        }
                    }
                    SignalAction::AddRemoteCandidate { candidate, mid } => {
                        if let Some(p) = peer.as_ref() {
                            if let Err(e) = peer::add_candidate(&p.pc, candidate, mid).await {
                                tracing::debug!("remote candidate ignored: {e}");
                            }
                        }
                    }
                    SignalAction::ClosePeer => {
                        if let Some(p) = peer.take() {
                            close_peer(&hub, p).await;
                        }
                    }
                }
            }
        }
        deadline = match (session.state(), deadline) {
            (signaling::SessionState::Established, _) => None,
            (_, Some(d)) => Some(d),
            (_, None) => Some(tokio::time::Instant::now() + timeout),
        };
    }
    if let Some(p) = peer.take() {
        close_peer(&hub, p).await;
    }
}
