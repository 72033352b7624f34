//! Ties it together on tokio: the HTTP API, WebSocket signaling with one peer per viewer
//! ([`session`]), the media thread (frames → H.264 or PNG, encoded once for all viewers) and the audio
//! thread (20 ms pull → Opus) ([`media`]), all meeting in the [`Hub`], and the supervision that
//! attaches to the emulator and re-attaches when it comes back.

use crate::http::{self, Control, HttpConfig};
use crate::origin::OriginPolicy;
use crate::peer;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tokio::sync::Semaphore;

mod config;
mod hub;
mod media;
mod session;
mod whep_host;

pub use crate::codec::Codec;
pub use config::{ServeConfig, ServeError};
pub use hub::Hub;

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
    let sig_state = Arc::new(session::SigState {
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
        .route("/", axum::routing::get(session::ws_handler))
        .route("/{*path}", axum::routing::get(session::ws_handler))
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
                .spawn(move || media::media_thread(hub, cfg))
                .expect("spawning the media thread"),
        );
    }
    {
        let hub = hub.clone();
        threads.push(
            std::thread::Builder::new()
                .name("macemu-audio".into())
                .spawn(move || media::audio_thread(hub, rt))
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
