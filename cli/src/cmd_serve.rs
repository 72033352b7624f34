//! `macemu-cli serve`: the streaming server (WebRTC H.264/Opus, PNG mode, HTTP API, browser client).

use anyhow::Context;
use clap::Args;
use macemu_stream::limits::Limits;
use macemu_stream::peer::PeerOptions;
use macemu_stream::server::{self, Codec, ServeConfig};
use macemu_stream::video::rtp::PlayoutDelay;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Environment variable holding the access token (keeps it out of the process list).
const TOKEN_ENV: &str = "MACEMU_TOKEN";

#[derive(Args)]
pub struct ServeArgs {
    /// HTTP port: the browser client and the /api endpoints.
    #[arg(short = 'p', long, default_value_t = 8080)]
    pub http_port: u16,
    /// WebSocket signaling port (`--signaling` is the v4 server's spelling).
    #[arg(short = 's', long, visible_alias = "signaling", default_value_t = 8090)]
    pub signaling_port: u16,
    /// Attach to the emulator with this pid (otherwise the first one found; re-scanned every 500 ms).
    #[arg(long, visible_alias = "pid")]
    pub target_pid: Option<u32>,
    /// Launch the emulator (--emulator) when none is running, and again when it exits.
    #[arg(long, conflicts_with = "no_auto_start")]
    pub auto_start: bool,
    /// Do not launch an emulator, only attach to running ones (the default; the v4 server's flag).
    #[arg(short = 'n', long)]
    pub no_auto_start: bool,
    /// Video codec: h264 (WebRTC video track) or png (dirty rectangles on the DataChannel).
    #[arg(long, default_value = "h264", value_parser = parse_codec)]
    pub codec: Codec,
    /// How long browsers may hold video frames before showing them (RTP playout-delay): 0 shows each
    /// frame as soon as it is decoded (interactive use); `auto` lets the browser buffer, for lossy or
    /// jittery networks; MIN-MAX bounds the buffer (ms, in 10 ms steps).
    #[arg(long, default_value = "0", value_name = "MS|MIN-MAX|auto")]
    pub playout_delay: PlayoutDelay,
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
    /// Visible in the process list: prefer --token-file or the MACEMU_TOKEN environment variable.
    #[arg(long, conflicts_with = "token_file")]
    pub token: Option<String>,
    /// Read the access token from this file (first line).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Another name or address browsers may reach the server by (Host header), besides loopback
    /// and --bind (repeatable).
    #[arg(long = "allow-host", value_name = "HOST")]
    pub allow_hosts: Vec<String>,
    /// Another page origin (scheme://host[:port]) that may use signaling and the API (repeatable).
    #[arg(long = "allow-origin", value_name = "ORIGIN")]
    pub allow_origins: Vec<String>,
    /// Viewers (peer connections) at once.
    #[arg(long, default_value_t = Limits::default().max_viewers)]
    pub max_viewers: usize,
    /// Signaling WebSocket sessions at once.
    #[arg(long, default_value_t = Limits::default().max_sessions)]
    pub max_sessions: usize,
    /// Seconds a signaling session has to complete its answer before it is closed.
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().negotiation_timeout.as_secs_f64())]
    pub negotiation_timeout: f64,
    /// Largest signaling WebSocket message in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::default().ws_max_message)]
    pub ws_max_message: usize,
    /// Length of the per-viewer event queue and of the ICE candidates held before the answer.
    #[arg(long, default_value_t = Limits::default().queue_len)]
    pub queue_len: usize,
    /// Open TCP connections per listener (HTTP, signaling); more are closed at once.
    #[arg(long, default_value_t = Limits::default().max_connections)]
    pub max_connections: usize,
    /// Seconds a client has to send a request header (also on idle keep-alive connections).
    #[arg(long, value_name = "SECS", default_value_t = Limits::default().header_timeout.as_secs_f64())]
    pub header_timeout: f64,
    /// At most one forced keyframe per this many milliseconds, whatever the viewers request.
    #[arg(long, value_name = "MS", default_value_t = Limits::default().keyframe_interval.as_millis() as u64)]
    pub keyframe_interval_ms: u64,
    /// Largest disk image the page may upload into the first --disks folder, in MiB (0: none).
    #[arg(long, value_name = "MIB", default_value_t = Limits::default().max_upload >> 20)]
    pub max_upload_mib: u64,
    /// Emulator command for --auto-start and /api/emulator/start, split on spaces
    /// (default: this program's `emulate`; a BasiliskII built with v4 IPC works too).
    #[arg(short = 'e', long, value_name = "CMD")]
    pub emulator: Option<String>,
    /// The emulator preferences file that GET/POST /api/prefs may read and write (and nothing else).
    #[arg(short = 'P', long, value_name = "FILE")]
    pub prefs: Option<PathBuf>,
    /// Folder of ROM images offered by /api/storage (repeatable).
    #[arg(long = "roms", value_name = "DIR")]
    pub rom_dirs: Vec<PathBuf>,
    /// Folder of disk images offered by /api/storage and insertable through /api/drives
    /// (repeatable; `--images` is the v4 server's spelling).
    #[arg(long = "disks", visible_alias = "images", value_name = "DIR")]
    pub disk_dirs: Vec<PathBuf>,
    /// H.264 target bitrate in kbit/s (default: scaled with the screen size).
    #[arg(long)]
    pub bitrate_kbps: Option<u32>,
    /// How often an unchanged screen is re-sent (H.264; a few bytes a picture), so a lost packet is
    /// noticed and healed that soon and the browser keeps a live stream (ms; default: the server's).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(5..=10_000))]
    pub refresh_ms: Option<u64>,
}

impl std::fmt::Debug for ServeArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeArgs")
            .field("http_port", &self.http_port)
            .field("signaling_port", &self.signaling_port)
            .field("bind", &self.bind)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("token_file", &self.token_file)
            .field("allow_hosts", &self.allow_hosts)
            .field("allow_origins", &self.allow_origins)
            .field("codec", &self.codec)
            .finish_non_exhaustive()
    }
}

fn parse_codec(s: &str) -> Result<Codec, String> {
    s.parse()
}

/// The token from --token, else --token-file, else MACEMU_TOKEN; empty means none.
fn resolve_token(
    flag: Option<String>,
    file: Option<&std::path::Path>,
    env: Option<String>,
) -> anyhow::Result<Option<String>> {
    let t = match (flag, file) {
        (Some(t), _) => Some(t),
        (None, Some(p)) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading --token-file {}", p.display()))?;
            let first = text.lines().next().unwrap_or("").trim().to_owned();
            anyhow::ensure!(!first.is_empty(), "--token-file {} is empty", p.display());
            Some(first)
        }
        (None, None) => env,
    };
    Ok(t.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()))
}

fn seconds(name: &str, v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v).map_err(|_| anyhow::anyhow!("--{name} {v}: not a duration"))
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut token = resolve_token(
        args.token,
        args.token_file.as_deref(),
        std::env::var(TOKEN_ENV).ok(),
    )?;
    anyhow::ensure!(
        args.max_viewers > 0 && args.max_sessions > 0 && args.max_connections > 0,
        "--max-viewers, --max-sessions and --max-connections must be at least 1"
    );
    let limits = Limits {
        max_viewers: args.max_viewers,
        max_sessions: args.max_sessions,
        negotiation_timeout: seconds("negotiation-timeout", args.negotiation_timeout)?,
        ws_max_message: args.ws_max_message.max(1024),
        queue_len: args.queue_len.max(1),
        max_connections: args.max_connections,
        header_timeout: seconds("header-timeout", args.header_timeout)?,
        keyframe_interval: Duration::from_millis(args.keyframe_interval_ms),
        max_upload: args.max_upload_mib.saturating_mul(1 << 20),
    };
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
        allow_hosts: args.allow_hosts,
        allow_origins: args.allow_origins,
        limits,
        codec: args.codec,
        target_pid: args.target_pid,
        auto_start: args.auto_start,
        emulator_cmd: emulator_command(args.emulator.as_deref(), args.prefs.as_deref())?,
        peer: PeerOptions {
            stun: args.enable_stun.then_some(args.stun_server),
            // Same-host viewers (and Chromium with --allow-loopback-in-peer-connection) need these.
            include_loopback: true,
            loopback_only: false,
            playout_delay: args.playout_delay,
        },
        prefs_file: args.prefs,
        rom_dirs: args.rom_dirs,
        disk_dirs: args.disk_dirs,
        h264: macemu_stream::video::h264::H264Config {
            bitrate_bps: args.bitrate_kbps.map(|k| k.saturating_mul(1000)),
            ..Default::default()
        },
        refresh: args
            .refresh_ms
            .map_or(ServeConfig::default().refresh, Duration::from_millis),
        ..ServeConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // The handlers are in place before the URL is printed: a signal sent as soon as it appears
        // still shuts down cleanly.
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
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
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        h.shutdown().await;
        anyhow::Ok(())
    })
}

/// The emulator command line: `--emulator` (an existing program path as it is, spaces and all;
/// otherwise split like a shell does, quotes included), or this executable's `emulate`; given
/// `--config <prefs>` when there is a prefs file, as the v4 server passes it, so the emulator starts
/// with the ROM and disks the browser's picker saved.
fn emulator_command(
    emulator: Option<&str>,
    prefs: Option<&std::path::Path>,
) -> anyhow::Result<Vec<String>> {
    let mut cmd: Vec<String> = match emulator {
        Some(c) if std::path::Path::new(c).is_file() => vec![c.to_owned()],
        Some(c) => shlex::split(c)
            .filter(|v| !v.is_empty())
            .with_context(|| format!("--emulator {c:?}: unbalanced quotes or empty"))?,
        None if prefs.is_some() => {
            let exe = std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| "macemu-cli".into());
            vec![exe, "emulate".into()]
        }
        None => Vec::new(),
    };
    if let (Some(p), false) = (prefs, cmd.is_empty()) {
        cmd.push("--config".into());
        cmd.push(p.display().to_string());
    }
    Ok(cmd)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_emulator_gets_the_prefs_file() {
        use std::path::Path;
        let cmd = |e, p| emulator_command(e, p).unwrap();
        assert!(cmd(None, None).is_empty(), "the built-in default");
        let own = cmd(None, Some(Path::new("/p/prefs")));
        assert_eq!(own[1..], ["emulate", "--config", "/p/prefs"]);
        assert_eq!(
            cmd(Some("BasiliskII --nogui true"), Some(Path::new("/p/prefs"))),
            ["BasiliskII", "--nogui", "true", "--config", "/p/prefs"]
        );
        assert_eq!(cmd(Some("emu"), None), ["emu"]);
        // A quoted path with spaces, as a shell would take it.
        assert_eq!(
            cmd(Some("'/opt/Basilisk II/BasiliskII' --nogui true"), None),
            ["/opt/Basilisk II/BasiliskII", "--nogui", "true"]
        );
        // An existing program whose path has spaces, given unquoted.
        let dir = std::env::temp_dir().join(format!("macemu emu {}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("Basilisk II");
        std::fs::write(&exe, b"#!/bin/sh\n").unwrap();
        let exe_s = exe.display().to_string();
        assert_eq!(cmd(Some(&exe_s), None), vec![exe_s]);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(emulator_command(Some("'unbalanced"), None).is_err());
    }

    #[test]
    fn the_v4_servers_spellings_are_accepted() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let a = Cli::try_parse_from([
            "serve", "-p", "9000", "-s", "9001", "--pid", "42", "-n", "-e", "emu --x", "-P",
            "/p/prefs", "--roms", "/r", "--images", "/d",
        ])
        .unwrap()
        .serve;
        assert_eq!(
            (a.http_port, a.signaling_port, a.target_pid),
            (9000, 9001, Some(42))
        );
        assert!(a.no_auto_start && !a.auto_start);
        assert_eq!(a.emulator.as_deref(), Some("emu --x"));
        assert_eq!(a.prefs, Some(PathBuf::from("/p/prefs")));
        assert_eq!(
            (a.rom_dirs, a.disk_dirs),
            (vec![PathBuf::from("/r")], vec![PathBuf::from("/d")])
        );
        let a = Cli::try_parse_from(["serve", "--signaling", "7000", "--http-port", "7001"])
            .unwrap()
            .serve;
        assert_eq!((a.http_port, a.signaling_port), (7001, 7000));
        assert!(Cli::try_parse_from(["serve", "--auto-start", "-n"]).is_err());
    }

    #[test]
    fn token_from_flag_then_file_then_environment() {
        let dir = std::env::temp_dir().join(format!("macemu-token-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("token");
        std::fs::write(&file, "from-file\nignored\n").unwrap();
        let env = || Some("from-env".to_owned());
        assert_eq!(
            resolve_token(Some("flag".into()), Some(&file), env()).unwrap(),
            Some("flag".into())
        );
        assert_eq!(
            resolve_token(None, Some(&file), env()).unwrap(),
            Some("from-file".into())
        );
        assert_eq!(
            resolve_token(None, None, env()).unwrap(),
            Some("from-env".into())
        );
        assert_eq!(resolve_token(None, None, Some(" ".into())).unwrap(), None);
        std::fs::write(&file, "\n").unwrap();
        assert!(
            resolve_token(None, Some(&file), None).is_err(),
            "empty file"
        );
        assert!(resolve_token(None, Some(&dir.join("missing")), None).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn debug_output_never_shows_the_token() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            serve: ServeArgs,
        }
        let cli = Cli::try_parse_from(["x", "--token", "s3cr3t-t0ken"]).unwrap();
        let shown = format!("{:?}", cli.serve);
        assert!(!shown.contains("s3cr3t-t0ken"), "{shown}");
        assert!(shown.contains("<set>"));
        let cfg = ServeConfig {
            token: cli.serve.token.clone(),
            ..ServeConfig::default()
        };
        assert!(!format!("{cfg:?}").contains("s3cr3t-t0ken"));
        assert!(!format!("{cfg:#?}").contains("s3cr3t-t0ken"));
    }
}
