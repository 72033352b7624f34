//! `macemu-cli serve`: the streaming server (WebRTC H.264/Opus, PNG mode, HTTP API, browser client).

use clap::Args;
use macemu_stream::peer::PeerOptions;
use macemu_stream::server::{self, Codec, ServeConfig};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// HTTP port: the browser client and the /api endpoints.
    #[arg(long, default_value_t = 8080)]
    pub http_port: u16,
    /// WebSocket signaling port.
    #[arg(long, default_value_t = 8090)]
    pub signaling_port: u16,
    /// Attach to the emulator with this pid (otherwise the first one found; re-scanned every 500 ms).
    #[arg(long)]
    pub target_pid: Option<u32>,
    /// Launch the emulator (--emulator) when none is running, and again when it exits.
    #[arg(long)]
    pub auto_start: bool,
    /// Video codec: h264 (WebRTC video track) or png (dirty rectangles on the DataChannel).
    #[arg(long, default_value = "h264", value_parser = parse_codec)]
    pub codec: Codec,
    /// Offer a STUN server to browsers (for NAT traversal; off for LAN and same-host use).
    #[arg(long)]
    pub enable_stun: bool,
    /// The STUN server used with --enable-stun.
    #[arg(long, default_value = "stun:stun.l.google.com:19302")]
    pub stun_server: String,
    /// Address to listen on. Anything but loopback requires a token (generated and printed if not given).
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Access token for every HTTP and WebSocket request (`?token=`, `Authorization: Bearer`, or cookie).
    #[arg(long)]
    pub token: Option<String>,
    /// Emulator command for --auto-start and /api/emulator/start, split on spaces
    /// (default: this program's `emulate`; a BasiliskII built with v4 IPC works too).
    #[arg(long, value_name = "CMD")]
    pub emulator: Option<String>,
    /// The emulator preferences file that GET/POST /api/prefs may read and write (and nothing else).
    #[arg(long, value_name = "FILE")]
    pub prefs: Option<PathBuf>,
    /// Folder of ROM images offered by /api/storage (repeatable).
    #[arg(long = "roms", value_name = "DIR")]
    pub rom_dirs: Vec<PathBuf>,
    /// Folder of disk images offered by /api/storage (repeatable).
    #[arg(long = "disks", value_name = "DIR")]
    pub disk_dirs: Vec<PathBuf>,
    /// H.264 target bitrate in kbit/s (default: scaled with the screen size).
    #[arg(long)]
    pub bitrate_kbps: Option<u32>,
}

fn parse_codec(s: &str) -> Result<Codec, String> {
    s.parse()
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut token = args.token.filter(|t| !t.is_empty());
    let loopback = args.bind.is_loopback();
    if !loopback && token.is_none() {
        let t = macemu_stream::http::generate_token();
        eprintln!(
            "--bind {} is reachable from other hosts: access token {t}",
            args.bind
        );
        token = Some(t);
    }
    let cfg = ServeConfig {
        bind: args.bind,
        http_port: args.http_port,
        signaling_port: args.signaling_port,
        token,
        codec: args.codec,
        target_pid: args.target_pid,
        auto_start: args.auto_start,
        emulator_cmd: args
            .emulator
            .map(|c| c.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        peer: PeerOptions {
            stun: args.enable_stun.then_some(args.stun_server),
            // Same-host viewers (and Chromium with --allow-loopback-in-peer-connection) need these.
            include_loopback: true,
            loopback_only: false,
        },
        prefs_file: args.prefs,
        rom_dirs: args.rom_dirs,
        disk_dirs: args.disk_dirs,
        h264: macemu_stream::video::h264::H264Config {
            bitrate_bps: args.bitrate_kbps.map(|k| k.saturating_mul(1000)),
            ..Default::default()
        },
        ..ServeConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let h = server::start(cfg).await?;
        let host = if h.http_addr.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            h.http_addr.ip().to_string()
        };
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let url = match &h.token {
            Some(t) => format!("http://{host}:{}/?token={t}", h.http_addr.port()),
            None => format!("http://{host}:{}/", h.http_addr.port()),
        };
        tracing::info!(http = %h.http_addr, signaling = %h.signaling_addr, "serving");
        println!("macemu stream: open {url}");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        h.shutdown().await;
        anyhow::Ok(())
    })
}
