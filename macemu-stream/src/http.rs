//! The HTTP API and the embedded browser client (axum), and the token check shared with signaling.
//!
//! The server's live state is reached through the small [`Control`] trait, so the API is tested against a
//! fake. File access is limited to what the configuration names: `POST /api/prefs` writes exactly the
//! configured prefs file (atomically), `/api/storage` lists only the configured ROM and disk folders.

use crate::limits::Limits;
use crate::origin::{OriginPolicy, RequestHeaders};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use include_dir::{include_dir, Dir};
use macemu_ipc::drive::{DriveCommand, WireSlot};
use serde::Deserialize;
use serde_json::{json, Value};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

/// The browser client, embedded at build time.
pub static WEB: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/web");

/// Request bodies above this are refused (413); prefs files are small text.
pub const MAX_BODY: usize = 256 * 1024;
/// Longest client log line kept.
const MAX_LOG_LINE: usize = 2000;

/// Emulator process actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmulatorAction {
    Start,
    Stop,
    Restart,
    Reset,
}

/// What the HTTP API needs from the running server.
pub trait Control: Send + Sync + 'static {
    /// Emulator state, pid, connection, fps, bitrate, peers, latency.
    fn status(&self) -> Value;
    /// Current codec name.
    fn codec(&self) -> String;
    /// Switches the codec; peers get `reconnect`. Errors are user-facing messages.
    fn set_codec(&self, codec: &str) -> Result<(), String>;
    fn emulator(&self, action: EmulatorAction) -> Result<String, String>;
    /// Sends a drive command (insert a disk image, eject) to the attached emulator.
    fn drive(&self, cmd: DriveCommand) -> Result<(), String>;
}

/// Static configuration of the HTTP side. Its `Debug` never shows the token.
#[derive(Clone, Default)]
pub struct HttpConfig {
    pub token: Option<String>,
    pub signaling_port: u16,
    pub prefs_file: Option<PathBuf>,
    pub rom_dirs: Vec<PathBuf>,
    pub disk_dirs: Vec<PathBuf>,
    /// Extra facts for `/api/config` (emulator command, STUN, bind address…).
    pub extra: Value,
    /// Which hosts and origins may use the API (checked before the token).
    pub policy: OriginPolicy,
}

impl std::fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpConfig")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("signaling_port", &self.signaling_port)
            .field("prefs_file", &self.prefs_file)
            .field("rom_dirs", &self.rom_dirs)
            .field("disk_dirs", &self.disk_dirs)
            .field("extra", &self.extra)
            .field("policy", &self.policy)
            .finish()
    }
}

struct AppState {
    cfg: HttpConfig,
    control: Arc<dyn Control>,
}

type Shared = Arc<AppState>;

/// Constant-time comparison, so response timing does not reveal the token.
fn same_token(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The token a request carries: `?token=`, `Authorization: Bearer`, or the `macemu_token` cookie.
pub fn request_token(query: Option<&str>, headers: &HeaderMap) -> Option<String> {
    if let Some(q) = query {
        for pair in q.split('&') {
            if let Some(v) = pair.strip_prefix("token=") {
                return Some(percent_decode(v));
            }
        }
    }
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return Some(t.trim().to_owned());
        }
    }
    let cookies = headers.get_all(header::COOKIE);
    for c in cookies.iter().filter_map(|v| v.to_str().ok()) {
        for part in c.split(';') {
            if let Some(t) = part.trim().strip_prefix("macemu_token=") {
                return Some(t.to_owned());
            }
        }
    }
    None
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() && s.is_char_boundary(i + 3) {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a request is allowed under `required` (None: no token needed).
pub fn authorized(required: Option<&str>, query: Option<&str>, headers: &HeaderMap) -> bool {
    match required {
        None => true,
        Some(want) => request_token(query, headers).is_some_and(|got| same_token(&got, want)),
    }
}

async fn auth(State(st): State<Shared>, req: Request, next: Next) -> Response {
    if !authorized(st.cfg.token.as_deref(), req.uri().query(), req.headers()) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "missing or wrong token"})),
        )
            .into_response();
    }
    let set_cookie = st
        .cfg
        .token
        .clone()
        .filter(|_| req.uri().query().is_some_and(|q| q.contains("token=")));
    let mut resp = next.run(req).await;
    // A page opened with ?token= keeps working for its later requests (same host, any port).
    if let Some(t) = set_cookie {
        if let Ok(v) = format!("macemu_token={t}; Path=/; HttpOnly; SameSite=Strict").parse() {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    resp
}

/// The headers the origin policy reads.
fn policy_headers(h: &HeaderMap) -> RequestHeaders<'_> {
    let get = |n: header::HeaderName| h.get(n).and_then(|v| v.to_str().ok());
    RequestHeaders {
        host: get(header::HOST),
        origin: get(header::ORIGIN),
        sec_fetch_site: h.get("sec-fetch-site").and_then(|v| v.to_str().ok()),
        content_type: get(header::CONTENT_TYPE),
        has_body: h.contains_key(header::TRANSFER_ENCODING)
            || get(header::CONTENT_LENGTH).is_some_and(|l| l.trim() != "0"),
    }
}

fn refused(req: &Request, r: crate::origin::Refusal) -> Response {
    tracing::debug!(method = %req.method(), path = req.uri().path(), "request refused: {r}");
    let code = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::FORBIDDEN);
    err(code, r.to_string())
}

/// Middleware: refuses requests for another host (DNS rebinding) and cross-site or non-JSON state
/// changes, before the token is looked at. See [`crate::origin`].
async fn check_origin(State(st): State<Shared>, req: Request, next: Next) -> Response {
    let verdict = st
        .cfg
        .policy
        .check_http(req.method().as_str(), &policy_headers(req.headers()));
    match verdict {
        Ok(()) => next.run(req).await,
        Err(r) => refused(&req, r),
    }
}

/// Host, and Origin when a browser sends one: for routes whose bodies are not JSON (WHEP's SDP).
pub async fn check_host_and_origin(
    State(policy): State<Arc<OriginPolicy>>,
    req: Request,
    next: Next,
) -> Response {
    match policy.check_websocket(&policy_headers(req.headers())) {
        Ok(()) => next.run(req).await,
        Err(r) => refused(&req, r),
    }
}

/// Serves `app` on `listener` over HTTP/1.1 (with upgrades, for WebSockets), holding at most
/// `limits.max_connections` connections (more are closed at once) and closing a connection whose
/// request header does not arrive within `limits.header_timeout`, idle keep-alive ones included.
pub async fn serve_limited(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    what: &'static str,
) {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors or a connection reset before accept: wait, do not spin.
                tracing::debug!("{what}: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "{what}: {} connections open; closing a new one", limits.max_connections);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let svc = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let mut b = hyper::server::conn::http1::Builder::new();
            b.timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let conn = b
                .serve_connection(TokioIo::new(stream), svc)
                .with_upgrades();
            if let Err(e) = conn.await {
                tracing::trace!(%peer, "{what} connection: {e}");
            }
            drop(slot);
        });
    }
}

fn err(code: StatusCode, msg: impl Into<String>) -> Response {
    (code, Json(json!({"error": msg.into()}))).into_response()
}

/// The API and static-file router.
pub fn router(cfg: HttpConfig, control: Arc<dyn Control>) -> Router {
    let st: Shared = Arc::new(AppState { cfg, control });
    Router::new()
        .route("/", get(index))
        .route("/api/config", get(config))
        .route("/api/storage", get(storage))
        .route("/api/prefs", get(prefs_get).post(prefs_post))
        .route("/api/status", get(status))
        .route("/api/codec", get(codec_get).post(codec_post))
        .route("/api/emulator/{action}", post(emulator))
        .route("/api/drives/{drive}/{action}", post(drive))
        .route("/api/log", post(client_log))
        .route("/{*path}", get(static_file))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn_with_state(st.clone(), auth))
        .layer(middleware::from_fn_with_state(st.clone(), check_origin))
        .with_state(st)
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        _ => "application/octet-stream",
    }
}

fn serve_embedded(path: &str) -> Response {
    match WEB.get_file(path) {
        Some(f) => (
            [
                (header::CONTENT_TYPE, content_type(path)),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            f.contents(),
        )
            .into_response(),
        None => err(StatusCode::NOT_FOUND, format!("no such file: {path}")),
    }
}

async fn index() -> Response {
    serve_embedded("index.html")
}

async fn static_file(Path(path): Path<String>) -> Response {
    if path.starts_with("api/") {
        return err(StatusCode::NOT_FOUND, "no such endpoint");
    }
    // Lookups are in the embedded tree only; no file system is reachable from here.
    serve_embedded(path.trim_start_matches('/'))
}

async fn config(State(st): State<Shared>) -> Response {
    let c = &st.cfg;
    Json(json!({
        "codec": st.control.codec(),
        "codecs": ["h264", "png"],
        "signaling_port": c.signaling_port,
        "prefs_file": c.prefs_file,
        "rom_dirs": c.rom_dirs,
        "disk_dirs": c.disk_dirs,
        "token_required": c.token.is_some(),
        "server": c.extra,
    }))
    .into_response()
}

/// Regular files directly inside `dir` (no recursion, no symlinks out of it), sorted by name.
fn list_dir(dir: &FsPath) -> Vec<Value> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<(String, u64)> = rd
        .flatten()
        .filter_map(|e| {
            let md = std::fs::symlink_metadata(e.path()).ok()?;
            let name = e.file_name().into_string().ok()?;
            (md.is_file() && !name.starts_with('.')).then_some((name, md.len()))
        })
        .collect();
    v.sort();
    v.into_iter()
        .map(|(name, size)| json!({"name": name, "size": size}))
        .collect()
}

fn rom_checksum(path: &FsPath) -> Option<String> {
    // The classic Mac ROM checksum is the first big-endian long of the image.
    let mut f = std::fs::File::open(path).ok()?;
    let mut b = [0u8; 4];
    std::io::Read::read_exact(&mut f, &mut b).ok()?;
    Some(format!("{:08X}", u32::from_be_bytes(b)))
}

async fn storage(State(st): State<Shared>) -> Response {
    let c = &st.cfg;
    let mut roms = Vec::new();
    for d in &c.rom_dirs {
        for mut r in list_dir(d) {
            if let Some(name) = r["name"].as_str() {
                if let Some(sum) = rom_checksum(&d.join(name)) {
                    r["checksum"] = json!(sum);
                }
            }
            r["dir"] = json!(d);
            roms.push(r);
        }
    }
    let mut disks = Vec::new();
    for d in &c.disk_dirs {
        for mut r in list_dir(d) {
            r["dir"] = json!(d);
            disks.push(r);
        }
    }
    Json(json!({
        "roms": roms,
        "disks": disks,
        "romsPath": c.rom_dirs.first(),
        "imagesPath": c.disk_dirs.first(),
    }))
    .into_response()
}

#[derive(Deserialize)]
struct InsertBody {
    /// A file in one of the disk folders, by its name there (as `/api/storage` lists it).
    file: String,
    #[serde(default)]
    read_only: bool,
}

/// The image `name` names inside the configured disk folders: a plain file name (no folders, no
/// `..`), found as a regular file in the first folder that has it. Nothing else is reachable.
fn disk_file(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    let plain =
        !name.is_empty() && !name.contains(['/', '\\', '\0']) && name != "." && name != "..";
    if !plain {
        return None;
    }
    dirs.iter().find_map(|d| {
        let p = d.join(name);
        let meta = std::fs::symlink_metadata(&p).ok()?;
        meta.is_file()
            .then(|| std::path::absolute(&p).ok())
            .flatten()
    })
}

/// `POST /api/drives/{floppy0|floppy1|scsi0..scsi6}/{insert|eject}`; insert takes
/// `{"file": NAME, "read_only": BOOL}` with NAME in a disk folder.
async fn drive(
    State(st): State<Shared>,
    Path((drive, action)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let Some(slot) = WireSlot::parse(&drive) else {
        return err(
            StatusCode::NOT_FOUND,
            format!("no drive {drive:?} (floppy0, floppy1, scsi0 to scsi6)"),
        );
    };
    let cmd = match action.as_str() {
        "eject" => DriveCommand::Eject { slot },
        "insert" => {
            let b: InsertBody = match serde_json::from_slice(&body) {
                Ok(b) => b,
                Err(e) => {
                    return err(
                        StatusCode::BAD_REQUEST,
                        format!("insert takes {{\"file\": NAME, \"read_only\": BOOL}}: {e}"),
                    )
                }
            };
            let dirs = st.cfg.disk_dirs.clone();
            let name = b.file.clone();
            let found = tokio::task::spawn_blocking(move || disk_file(&dirs, &name))
                .await
                .ok()
                .flatten();
            let Some(path) = found else {
                return err(
                    StatusCode::NOT_FOUND,
                    format!("no disk image {:?} in the disk folders", b.file),
                );
            };
            DriveCommand::Insert {
                slot,
                read_only: b.read_only,
                path,
            }
        }
        _ => return err(StatusCode::NOT_FOUND, "drive actions: insert, eject"),
    };
    match st.control.drive(cmd) {
        Ok(()) => Json(json!({"ok": true, "drive": drive, "action": action})).into_response(),
        Err(e) => err(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn prefs_get(State(st): State<Shared>) -> Response {
    let Some(p) = &st.cfg.prefs_file else {
        return err(StatusCode::NOT_FOUND, "no prefs file configured (--prefs)");
    };
    match std::fs::read_to_string(p) {
        Ok(content) => Json(json!({"path": p, "content": content})).into_response(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Json(json!({"path": p, "content": ""})).into_response()
        }
        Err(e) => err(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading {}: {e}", p.display()),
        ),
    }
}

#[derive(Deserialize)]
struct PrefsBody {
    content: String,
}

async fn prefs_post(State(st): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(p) = &st.cfg.prefs_file else {
        return err(StatusCode::NOT_FOUND, "no prefs file configured (--prefs)");
    };
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let content = if is_json {
        match serde_json::from_slice::<PrefsBody>(&body) {
            Ok(b) => b.content,
            Err(e) => {
                return err(
                    StatusCode::BAD_REQUEST,
                    format!("expected {{\"content\": …}}: {e}"),
                )
            }
        }
    } else {
        match String::from_utf8(body.to_vec()) {
            Ok(s) => s,
            Err(_) => return err(StatusCode::BAD_REQUEST, "prefs must be UTF-8 text"),
        }
    };
    if content.contains('\0') {
        return err(StatusCode::BAD_REQUEST, "prefs must be text");
    }
    // Atomic, durable, never through a symlink, mode kept; file I/O off the async workers.
    let (path, bytes) = (p.clone(), content.clone().into_bytes());
    let r = tokio::task::spawn_blocking(move || {
        macemu_ipc::fsutil::write_file_atomic(&path, &bytes, 0o644)
    })
    .await
    .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    match r {
        Ok(()) => Json(json!({"ok": true, "path": p, "bytes": content.len()})).into_response(),
        Err(e) => err(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("writing {}: {e}", p.display()),
        ),
    }
}

async fn status(State(st): State<Shared>) -> Response {
    Json(st.control.status()).into_response()
}

async fn codec_get(State(st): State<Shared>) -> Response {
    Json(json!({"codec": st.control.codec()})).into_response()
}

#[derive(Deserialize)]
struct CodecBody {
    codec: String,
}

async fn codec_post(State(st): State<Shared>, body: Bytes) -> Response {
    let c = match serde_json::from_slice::<CodecBody>(&body) {
        Ok(b) => b.codec,
        Err(e) => {
            return err(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"codec\": \"h264\"|\"png\"}}: {e}"),
            )
        }
    };
    match st.control.set_codec(&c) {
        Ok(()) => Json(json!({"ok": true, "codec": st.control.codec()})).into_response(),
        Err(m) => err(StatusCode::BAD_REQUEST, m),
    }
}

async fn emulator(State(st): State<Shared>, Path(action): Path<String>) -> Response {
    let a = match action.as_str() {
        "start" => EmulatorAction::Start,
        "stop" => EmulatorAction::Stop,
        "restart" => EmulatorAction::Restart,
        "reset" => EmulatorAction::Reset,
        _ => {
            return err(
                StatusCode::NOT_FOUND,
                format!("unknown emulator action {action:?}"),
            )
        }
    };
    // Starting and stopping a process waits for it: not on an async worker.
    let control = st.control.clone();
    match tokio::task::spawn_blocking(move || control.emulator(a)).await {
        Ok(Ok(message)) => Json(json!({"ok": true, "message": message})).into_response(),
        Ok(Err(m)) => err(StatusCode::CONFLICT, m),
        Err(e) => err(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("emulator action failed: {e}"),
        ),
    }
}

async fn client_log(body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    let (level, message) = match serde_json::from_str::<Value>(&text) {
        Ok(v) => (
            v["level"].as_str().unwrap_or("info").to_owned(),
            v["message"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| v.to_string()),
        ),
        Err(_) => ("info".to_owned(), text.into_owned()),
    };
    // Client text goes to our log: strip control characters and bound its length.
    let clean: String = message
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_LOG_LINE)
        .collect();
    match level.as_str() {
        "error" => tracing::error!(target: "client", "{clean}"),
        "warn" => tracing::warn!(target: "client", "{clean}"),
        _ => tracing::info!(target: "client", "{clean}"),
    }
    StatusCode::NO_CONTENT.into_response()
}

/// Makes a random token (hex, 128 bits).
pub fn generate_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request as HttpRequest;
    use http_body_util::BodyExt;
    use std::sync::Mutex;
    use tower::ServiceExt;

    /// A stand-in for the running server that records what the API asked of it.
    #[derive(Default)]
    struct Fake {
        codec: Mutex<String>,
        actions: Mutex<Vec<EmulatorAction>>,
        drives: Mutex<Vec<DriveCommand>>,
    }

    impl Control for Fake {
        fn status(&self) -> Value {
            json!({"emulator": {"connected": true, "pid": 42, "state": "running"}, "codec": self.codec(), "peers": 1, "fps": 60.0})
        }
        fn codec(&self) -> String {
            self.codec.lock().unwrap().clone()
        }
        fn set_codec(&self, c: &str) -> Result<(), String> {
            match c {
                "h264" | "png" => {
                    *self.codec.lock().unwrap() = c.into();
                    Ok(())
                }
                "av1" => Err("this server was not built with AV1".into()),
                _ => Err(format!("unknown codec {c}")),
            }
        }
        fn emulator(&self, a: EmulatorAction) -> Result<String, String> {
            self.actions.lock().unwrap().push(a);
            Ok(format!("{a:?}"))
        }
        fn drive(&self, cmd: DriveCommand) -> Result<(), String> {
            self.drives.lock().unwrap().push(cmd);
            Ok(())
        }
    }

    struct Env {
        dir: PathBuf,
        fake: Arc<Fake>,
        app: Router,
    }

    fn env(token: Option<&str>) -> Env {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "macemu-http-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("roms")).unwrap();
        std::fs::create_dir_all(dir.join("disks/sub")).unwrap();
        std::fs::write(dir.join("roms/plus.rom"), [0x4D, 0x1F, 0x81, 0x72, 0, 0]).unwrap();
        std::fs::write(dir.join("disks/system.dsk"), vec![0u8; 1024]).unwrap();
        std::fs::write(dir.join("disks/sub/hidden.dsk"), b"x").unwrap();
        std::fs::write(dir.join("secret.txt"), b"do not serve").unwrap();
        std::fs::write(dir.join("prefs"), "rom /x\n").unwrap();
        let fake = Arc::new(Fake {
            codec: Mutex::new("h264".into()),
            ..Default::default()
        });
        let cfg = HttpConfig {
            token: token.map(str::to_owned),
            signaling_port: 8090,
            prefs_file: Some(dir.join("prefs")),
            rom_dirs: vec![dir.join("roms")],
            disk_dirs: vec![dir.join("disks")],
            extra: json!({}),
            policy: OriginPolicy::default(),
        };
        let app = router(cfg, fake.clone() as Arc<dyn Control>);
        Env { dir, fake, app }
    }

    /// A request as the server's own page (or curl) sends it: `Host: 127.0.0.1:8080`.
    async fn call(
        app: &Router,
        method: &str,
        uri: &str,
        body: &str,
        ctype: Option<&str>,
    ) -> (StatusCode, Vec<u8>, HeaderMap) {
        let mut h: Vec<(&str, &str)> = vec![("host", "127.0.0.1:8080")];
        if let Some(c) = ctype {
            h.push(("content-type", c));
        }
        call_with(app, method, uri, body, &h).await
    }

    /// A request with exactly these headers (a `content-length` is added for a body).
    async fn call_with(
        app: &Router,
        method: &str,
        uri: &str,
        body: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, Vec<u8>, HeaderMap) {
        let mut b = HttpRequest::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        if !body.is_empty() {
            b = b.header(header::CONTENT_LENGTH, body.len());
        }
        let resp = app
            .clone()
            .oneshot(b.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        (status, bytes, headers)
    }

    fn json_of(b: &[u8]) -> Value {
        serde_json::from_slice(b).unwrap()
    }

    #[tokio::test]
    async fn static_client_is_served_from_the_binary() {
        let e = env(None);
        let (s, body, h) = call(&e.app, "GET", "/", "", None).await;
        assert_eq!(s, StatusCode::OK);
        assert!(h[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert_eq!(body, WEB.get_file("index.html").unwrap().contents());
        for f in WEB.files() {
            let p = f.path().to_str().unwrap();
            let (s, body, _) = call(&e.app, "GET", &format!("/{p}"), "", None).await;
            assert_eq!(s, StatusCode::OK, "{p}");
            assert_eq!(body, f.contents());
        }
        assert_eq!(
            call(&e.app, "GET", "/nope.js", "", None).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call(&e.app, "GET", "/../secret.txt", "", None).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call(&e.app, "GET", "/%2e%2e/secret.txt", "", None).await.0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn config_status_and_codec() {
        let e = env(None);
        let (s, b, _) = call(&e.app, "GET", "/api/config", "", None).await;
        assert_eq!(s, StatusCode::OK);
        let v = json_of(&b);
        assert_eq!(v["signaling_port"], 8090);
        assert_eq!(v["codec"], "h264");
        let (_, b, _) = call(&e.app, "GET", "/api/status", "", None).await;
        assert_eq!(json_of(&b)["emulator"]["pid"], 42);
        let (s, _, _) = call(
            &e.app,
            "POST",
            "/api/codec",
            r#"{"codec":"png"}"#,
            Some("application/json"),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(e.fake.codec(), "png");
        let (s, b, _) = call(
            &e.app,
            "POST",
            "/api/codec",
            r#"{"codec":"av1"}"#,
            Some("application/json"),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert!(json_of(&b)["error"].as_str().unwrap().contains("AV1"));
        assert_eq!(
            call(
                &e.app,
                "POST",
                "/api/codec",
                "garbage",
                Some("application/json")
            )
            .await
            .0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            call(&e.app, "POST", "/api/codec", "garbage", None).await.0,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a body needs a JSON content type"
        );
        let (_, b, _) = call(&e.app, "GET", "/api/codec", "", None).await;
        assert_eq!(json_of(&b)["codec"], "png");
    }

    #[tokio::test]
    async fn drive_commands_name_only_files_in_the_disk_folders() {
        let e = env(None);
        let json = Some("application/json");
        let ok = call(
            &e.app,
            "POST",
            "/api/drives/floppy1/insert",
            r#"{"file": "system.dsk", "read_only": true}"#,
            json,
        )
        .await;
        assert_eq!(ok.0, StatusCode::OK);
        let (s, _, _) = call(&e.app, "POST", "/api/drives/scsi6/eject", "", None).await;
        assert_eq!(s, StatusCode::OK);
        let expected_path = std::path::absolute(e.dir.join("disks/system.dsk")).unwrap();
        assert_eq!(
            *e.fake.drives.lock().unwrap(),
            [
                DriveCommand::Insert {
                    slot: WireSlot::Floppy(1),
                    read_only: true,
                    path: expected_path
                },
                DriveCommand::Eject {
                    slot: WireSlot::Scsi(6)
                }
            ]
        );
        // Paths outside the folders, sub-folders, missing files, unknown drives and actions.
        for (uri, body, code) in [
            ("/api/drives/floppy0/insert", r#"{"file": "../prefs"}"#, 404),
            (
                "/api/drives/floppy0/insert",
                r#"{"file": "/etc/passwd"}"#,
                404,
            ),
            (
                "/api/drives/floppy0/insert",
                r#"{"file": "sub/hidden.dsk"}"#,
                404,
            ),
            ("/api/drives/floppy0/insert", r#"{"file": "none.dsk"}"#, 404),
            (
                "/api/drives/floppy0/insert",
                r#"{"path": "system.dsk"}"#,
                400,
            ),
            (
                "/api/drives/floppy2/insert",
                r#"{"file": "system.dsk"}"#,
                404,
            ),
            ("/api/drives/scsi7/eject", "", 404),
            ("/api/drives/floppy0/format", "", 404),
        ] {
            let ct = if body.is_empty() { None } else { json };
            let (s, _, _) = call(&e.app, "POST", uri, body, ct).await;
            assert_eq!(s.as_u16(), code, "{uri} {body}");
        }
        assert_eq!(e.fake.drives.lock().unwrap().len(), 2);
        // A cross-site form post cannot insert a disk.
        let (s, _, _) = call_with(
            &e.app,
            "POST",
            "/api/drives/floppy0/eject",
            "x",
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://evil.example.com"),
                ("content-type", "text/plain"),
            ],
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }

    #[tokio::test]
    async fn storage_lists_only_configured_folders() {
        let e = env(None);
        let (s, b, _) = call(&e.app, "GET", "/api/storage", "", None).await;
        assert_eq!(s, StatusCode::OK);
        let v = json_of(&b);
        let roms: Vec<&str> = v["roms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        let disks: Vec<&str> = v["disks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(roms, ["plus.rom"]);
        assert_eq!(v["roms"][0]["checksum"], "4D1F8172");
        assert_eq!(disks, ["system.dsk"], "no sub-folders, nothing outside");
        assert_eq!(v["disks"][0]["size"], 1024);
    }

    #[tokio::test]
    async fn prefs_read_and_write_only_the_configured_file() {
        let e = env(None);
        let (_, b, _) = call(&e.app, "GET", "/api/prefs", "", None).await;
        assert_eq!(json_of(&b)["content"], "rom /x\n");
        let (s, _, _) = call(
            &e.app,
            "POST",
            "/api/prefs",
            r#"{"content":"rom /y\ndisk /d\n","path":"/etc/passwd"}"#,
            Some("application/json"),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            std::fs::read_to_string(e.dir.join("prefs")).unwrap(),
            "rom /y\ndisk /d\n"
        );
        // A text/plain body is what a cross-site form can send without a preflight: refused.
        let (s, _, _) = call(
            &e.app,
            "POST",
            "/api/prefs",
            "plain text\n",
            Some("text/plain"),
        )
        .await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(
            std::fs::read_to_string(e.dir.join("prefs")).unwrap(),
            "rom /y\ndisk /d\n"
        );
        let (s, _, _) = call(
            &e.app,
            "POST",
            "/api/prefs",
            "{bad json",
            Some("application/json"),
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let big = format!(r#"{{"content":"{}"}}"#, "x".repeat(MAX_BODY));
        let (s, _, _) = call(&e.app, "POST", "/api/prefs", &big, Some("application/json")).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            std::fs::read_to_string(e.dir.join("prefs")).unwrap(),
            "rom /y\ndisk /d\n"
        );
        let leftovers: Vec<_> = std::fs::read_dir(&e.dir)
            .unwrap()
            .flatten()
            .map(|d| d.file_name())
            .collect();
        assert_eq!(leftovers.len(), 4, "no temporary files left: {leftovers:?}");
    }

    #[tokio::test]
    async fn prefs_write_follows_no_symlink_and_keeps_the_mode() {
        use std::os::unix::fs::PermissionsExt;
        let e = env(None);
        let prefs = e.dir.join("prefs");
        let post = |body: &'static str| {
            let app = e.app.clone();
            async move {
                call(&app, "POST", "/api/prefs", body, Some("application/json"))
                    .await
                    .0
            }
        };
        // The old fixed temporary name, planted as a symlink to a file the server must not touch.
        std::os::unix::fs::symlink(e.dir.join("secret.txt"), e.dir.join("prefs.macemu-tmp"))
            .unwrap();
        std::fs::set_permissions(&prefs, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert_eq!(post(r#"{"content":"rom /z\n"}"#).await, StatusCode::OK);
        assert_eq!(
            std::fs::read(e.dir.join("secret.txt")).unwrap(),
            b"do not serve"
        );
        assert_eq!(std::fs::read_to_string(&prefs).unwrap(), "rom /z\n");
        let mode = std::fs::metadata(&prefs).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640, "the prefs file keeps its mode");
        // A symlink in place of the prefs file is refused, its target left alone.
        std::fs::remove_file(&prefs).unwrap();
        std::os::unix::fs::symlink(e.dir.join("secret.txt"), &prefs).unwrap();
        assert_eq!(
            post(r#"{"content":"evil"}"#).await,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            std::fs::read(e.dir.join("secret.txt")).unwrap(),
            b"do not serve"
        );
    }

    #[tokio::test]
    async fn emulator_controls_and_log() {
        let e = env(None);
        for a in ["start", "stop", "restart", "reset"] {
            let (s, b, _) = call(
                &e.app,
                "POST",
                &format!("/api/emulator/{a}"),
                "{}",
                Some("application/json"),
            )
            .await;
            assert_eq!(s, StatusCode::OK);
            assert_eq!(json_of(&b)["ok"], true);
        }
        assert_eq!(
            *e.fake.actions.lock().unwrap(),
            [
                EmulatorAction::Start,
                EmulatorAction::Stop,
                EmulatorAction::Restart,
                EmulatorAction::Reset
            ]
        );
        assert_eq!(
            call(&e.app, "POST", "/api/emulator/explode", "", None)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            call(&e.app, "GET", "/api/emulator/start", "", None).await.0,
            StatusCode::METHOD_NOT_ALLOWED
        );
        let (s, _, _) = call(
            &e.app,
            "POST",
            "/api/log",
            r#"{"level":"error","message":"boom\u001b[31m"}"#,
            Some("application/json"),
        )
        .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }

    #[tokio::test]
    async fn token_on_every_route() {
        let e = env(Some("tok"));
        for (m, u) in [
            ("GET", "/"),
            ("GET", "/app.js"),
            ("GET", "/api/status"),
            ("GET", "/api/prefs"),
            ("POST", "/api/emulator/stop"),
            ("POST", "/api/log"),
        ] {
            assert_eq!(
                call(&e.app, m, u, "", None).await.0,
                StatusCode::UNAUTHORIZED,
                "{m} {u}"
            );
        }
        assert!(e.fake.actions.lock().unwrap().is_empty());
        let (s, _, h) = call(&e.app, "GET", "/?token=tok", "", None).await;
        assert_eq!(s, StatusCode::OK);
        let cookie = h[header::SET_COOKIE].to_str().unwrap();
        assert!(cookie.starts_with("macemu_token=tok;"), "{cookie}");
        assert!(cookie.contains("; HttpOnly"), "{cookie}");
        assert!(cookie.contains("; SameSite=Strict"), "{cookie}");
        assert_eq!(
            call(&e.app, "GET", "/api/status?token=to", "", None)
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        let mut hm = HeaderMap::new();
        hm.insert(header::AUTHORIZATION, "Bearer tok".parse().unwrap());
        assert!(authorized(Some("tok"), None, &hm));
        assert!(authorized(
            Some("a b"),
            Some("x=1&token=a%20b"),
            &HeaderMap::new()
        ));
        assert!(!authorized(Some("tok"), Some("token="), &HeaderMap::new()));
        assert_eq!(generate_token().len(), 32);
        assert!(!format!(
            "{:?}",
            HttpConfig {
                token: Some("tok-value".into()),
                ..Default::default()
            }
        )
        .contains("tok-value"));
    }

    #[tokio::test]
    async fn foreign_hosts_are_refused_on_every_route() {
        let e = env(None);
        // DNS rebinding: the page's own (attacker) name arrives as Host.
        for (m, u) in [
            ("GET", "/api/config"),
            ("GET", "/api/prefs"),
            ("GET", "/api/status"),
            ("GET", "/"),
            ("POST", "/api/emulator/restart"),
        ] {
            let (s, b, _) =
                call_with(&e.app, m, u, "", &[("host", "attacker.rebind.example")]).await;
            assert_eq!(s, StatusCode::FORBIDDEN, "{m} {u}");
            assert!(json_of(&b)["error"]
                .as_str()
                .unwrap()
                .contains("--allow-host"));
        }
        assert_eq!(
            call_with(&e.app, "GET", "/api/status", "", &[]).await.0,
            StatusCode::BAD_REQUEST,
            "no Host at all"
        );
        for h in ["127.0.0.1:8080", "localhost", "[::1]:8080"] {
            let (s, _, _) = call_with(&e.app, "GET", "/api/config", "", &[("host", h)]).await;
            assert_eq!(s, StatusCode::OK, "{h}");
        }
        assert!(e.fake.actions.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn cross_site_state_changes_are_refused() {
        let e = env(None);
        let host = ("host", "127.0.0.1:8080");
        // The request from the report: foreign Origin, text/plain body, no preflight.
        let (s, _, _) = call_with(
            &e.app,
            "POST",
            "/api/emulator/restart",
            "x",
            &[
                host,
                ("origin", "http://evil.example.com"),
                ("content-type", "text/plain"),
            ],
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        // No Origin, but the browser marks it cross-site.
        let (s, _, _) = call_with(
            &e.app,
            "POST",
            "/api/codec",
            r#"{"codec":"png"}"#,
            &[
                host,
                ("sec-fetch-site", "cross-site"),
                ("content-type", "application/json"),
            ],
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        // Our own origin, but a body type a form can send.
        for ct in ["text/plain", "application/x-www-form-urlencoded"] {
            let (s, _, _) = call_with(
                &e.app,
                "POST",
                "/api/log",
                "level=error",
                &[
                    host,
                    ("origin", "http://127.0.0.1:8080"),
                    ("content-type", ct),
                ],
            )
            .await;
            assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ct}");
        }
        assert!(e.fake.actions.lock().unwrap().is_empty());
        assert_eq!(e.fake.codec(), "h264");
        // What the page's fetch sends goes through; so does curl without a body.
        let page = [
            host,
            ("origin", "http://127.0.0.1:8080"),
            ("sec-fetch-site", "same-origin"),
            ("content-type", "application/json"),
        ];
        let (s, _, _) = call_with(&e.app, "POST", "/api/emulator/restart", "{}", &page).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _, _) = call_with(&e.app, "POST", "/api/codec", r#"{"codec":"png"}"#, &page).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _, _) = call_with(&e.app, "POST", "/api/emulator/reset", "", &[host]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            *e.fake.actions.lock().unwrap(),
            [EmulatorAction::Restart, EmulatorAction::Reset]
        );
        assert_eq!(e.fake.codec(), "png");
    }

    /// The page's fetches are JSON (so the policy above lets them through).
    #[test]
    fn the_page_posts_json() {
        let app = std::str::from_utf8(WEB.get_file("app.js").unwrap().contents()).unwrap();
        let api = app
            .split("async function api(")
            .nth(1)
            .and_then(|r| r.split("\n}\n").next())
            .expect("app.js has api()");
        assert!(
            api.contains("'Content-Type'] = 'application/json'"),
            "{api}"
        );
        assert!(api.contains("JSON.stringify(body)"));
        assert_eq!(
            app.matches("fetch(").count(),
            1,
            "every request goes through api()"
        );
    }
}
