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
use axum::routing::{get, post, put};
use axum::{Json, Router};
use include_dir::{include_dir, Dir};
use macemu_ipc::drive::{DriveCommand, DriveReport, WireSlot};
use macemu_ipc::MouseMode;
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
    /// The attached emulator's drives as last reported (`None`: no emulator attached).
    fn drives(&self) -> Option<Vec<DriveReport>>;
    /// The viewers' mouse mode, which outlives emulator restarts.
    fn mouse_mode(&self) -> MouseMode;
    /// Sets the mouse mode and tells the attached emulator.
    fn set_mouse_mode(&self, mode: MouseMode);
}

/// Static configuration of the HTTP side. Its `Debug` never shows the token.
#[derive(Clone, Default)]
pub struct HttpConfig {
    pub token: Option<String>,
    pub signaling_port: u16,
    pub prefs_file: Option<PathBuf>,
    pub rom_dirs: Vec<PathBuf>,
    pub disk_dirs: Vec<PathBuf>,
    /// Largest disk image `PUT /api/disks/{name}` takes (0: uploads refused).
    pub max_upload: u64,
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
            .field("max_upload", &self.max_upload)
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
        .route("/api/config", get(config).post(config_post))
        .route("/api/storage", get(storage))
        .route("/api/prefs", get(prefs_get).post(prefs_post))
        .route("/api/status", get(status))
        .route("/api/codec", get(codec_get).post(codec_post))
        .route("/api/emulator/{action}", post(emulator))
        .route("/api/drives", get(drives))
        .route("/api/drives/{drive}/{action}", post(drive))
        .route("/api/disks/{name}", put(disk_upload))
        .route("/api/log", post(client_log))
        // The v4 server's spellings, beside ours.
        .route("/api/restart", post(restart_v4))
        .route("/api/error", post(client_error))
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

/// The value of the last `key value` line of a BasiliskII-style prefs text (`#` lines are comments).
fn pref_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let (k, v) = l.split_once(char::is_whitespace)?;
            (k == key && !l.starts_with('#')).then(|| v.trim())
        })
        .next_back()
}

/// `text` with its `key` lines replaced by one `key value` line, where the first was (or at the end).
fn with_pref(text: &str, key: &str, value: &str) -> String {
    let mut out = String::with_capacity(text.len() + key.len() + value.len() + 2);
    let mut done = false;
    for l in text.lines() {
        let is_key = l.split_whitespace().next() == Some(key);
        if is_key && done {
            continue;
        }
        if is_key {
            out.push_str(&format!("{key} {value}"));
            done = true;
        } else {
            out.push_str(l);
        }
        out.push('\n');
    }
    if !done {
        out.push_str(&format!("{key} {value}\n"));
    }
    out
}

pub(crate) fn mouse_mode_name(m: MouseMode) -> &'static str {
    match m {
        MouseMode::Absolute => "absolute",
        MouseMode::Relative => "relative",
    }
}

/// `WxH` within the v4 frame limits (1920×1080).
fn parse_resolution(s: &str) -> Option<(u32, u32)> {
    let (w, h) = s.split_once('x')?;
    let (w, h) = (w.parse::<u32>().ok()?, h.parse::<u32>().ok()?);
    ((1..=1920).contains(&w) && (1..=1080).contains(&h)).then_some((w, h))
}

/// A `screen` pref (`ipc/W/H`, `win/W/H`…) as `WxH`.
fn screen_resolution(screen: &str) -> Option<String> {
    let mut it = screen.split('/').skip(1);
    let (w, h) = (it.next()?, it.next()?);
    parse_resolution(&format!("{w}x{h}")).map(|(w, h)| format!("{w}x{h}"))
}

async fn read_prefs(c: &HttpConfig) -> String {
    match &c.prefs_file {
        Some(p) => tokio::fs::read_to_string(p).await.unwrap_or_default(),
        None => String::new(),
    }
}

/// `GET /api/config`: ours, plus the v4 fields `webcodec`, `mousemode` and `resolution` (from the
/// prefs file, else the live values) and its debug flags.
async fn config(State(st): State<Shared>) -> Response {
    let c = &st.cfg;
    let prefs = read_prefs(c).await;
    let codec = st.control.codec();
    let webcodec = pref_value(&prefs, "webcodec").unwrap_or(&codec);
    let live_mode = mouse_mode_name(st.control.mouse_mode());
    let mousemode = pref_value(&prefs, "mousemode").unwrap_or(live_mode);
    let resolution = pref_value(&prefs, "screen")
        .and_then(screen_resolution)
        .unwrap_or_else(|| "512x342".into());
    Json(json!({
        "codec": codec,
        "codecs": ["h264", "png"],
        "signaling_port": c.signaling_port,
        "prefs_file": c.prefs_file,
        "rom_dirs": c.rom_dirs,
        "disk_dirs": c.disk_dirs,
        "token_required": c.token.is_some(),
        "max_upload_bytes": c.max_upload,
        "server": c.extra,
        "webcodec": webcodec,
        "mousemode": mousemode,
        "resolution": resolution,
        "debug_connection": false,
        "debug_mode_switch": false,
        "debug_perf": false,
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    mousemode: Option<String>,
    webcodec: Option<String>,
    resolution: Option<String>,
}

/// `POST /api/config` (v4): `{"mousemode": "absolute"|"relative", "webcodec": "h264"|"png",
/// "resolution": "WxH"}`, any of them. Each is checked first; then the codec and mouse mode apply
/// at once, and all are saved in the prefs file (`mousemode`, `webcodec`, `screen ipc/W/H`) when
/// there is one.
async fn config_post(State(st): State<Shared>, body: Bytes) -> Response {
    let b: ConfigBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return err(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"mousemode\", \"webcodec\", \"resolution\"}}: {e}"),
            )
        }
    };
    let mode = match b.mousemode.as_deref() {
        None => None,
        Some("absolute") => Some(MouseMode::Absolute),
        Some("relative") => Some(MouseMode::Relative),
        Some(m) => {
            return err(
                StatusCode::BAD_REQUEST,
                format!("mousemode {m:?}: absolute or relative"),
            )
        }
    };
    if let Some(c) = b.webcodec.as_deref() {
        if !matches!(c, "h264" | "png") {
            return err(
                StatusCode::BAD_REQUEST,
                format!("webcodec {c:?}: h264 or png"),
            );
        }
    }
    let res = match b.resolution.as_deref() {
        None => None,
        Some(r) => match parse_resolution(r) {
            Some(wh) => Some(wh),
            None => {
                return err(
                    StatusCode::BAD_REQUEST,
                    format!("resolution {r:?}: WIDTHxHEIGHT up to 1920x1080"),
                )
            }
        },
    };
    if mode.is_none() && b.webcodec.is_none() && res.is_none() {
        return err(
            StatusCode::BAD_REQUEST,
            "no setting given (mousemode, webcodec, resolution)",
        );
    }
    let mut saved = false;
    if let Some(p) = st.cfg.prefs_file.clone() {
        let mut text = read_prefs(&st.cfg).await;
        if let Some(m) = mode {
            text = with_pref(&text, "mousemode", mouse_mode_name(m));
        }
        if let Some(c) = &b.webcodec {
            text = with_pref(&text, "webcodec", c);
        }
        if let Some((w, h)) = res {
            text = with_pref(&text, "screen", &format!("ipc/{w}/{h}"));
        }
        let write = tokio::task::spawn_blocking(move || {
            macemu_ipc::fsutil::write_file_atomic(&p, text.as_bytes(), 0o644)
        });
        match write.await {
            Ok(Ok(())) => saved = true,
            Ok(Err(e)) => {
                return err(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("saving the prefs: {e}"),
                )
            }
            Err(e) => {
                return err(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("saving the prefs: {e}"),
                )
            }
        }
    }
    if let Some(m) = mode {
        st.control.set_mouse_mode(m);
    }
    if let Some(c) = &b.webcodec {
        if let Err(e) = st.control.set_codec(c) {
            return err(StatusCode::BAD_REQUEST, e);
        }
    }
    Json(json!({"success": true, "ok": true, "saved": saved})).into_response()
}

/// Folders deeper than this below a ROM or disk folder are not searched.
const MAX_DEPTH: usize = 8;
/// At most this many files are listed per folder tree.
const MAX_LISTED: usize = 4096;

/// Regular files under `dir`, searched recursively without following symlinks (nor listing
/// hidden names), as `(path relative to dir with '/' separators, size)`, sorted.
fn walk(dir: &FsPath) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    let mut stack = vec![(dir.to_path_buf(), String::new(), 0usize)];
    while let Some((d, rel, depth)) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            if name.starts_with('.') {
                continue;
            }
            // The entry's own type: a symlink is neither a file nor a folder here.
            let Ok(md) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            if md.is_dir() && depth < MAX_DEPTH {
                stack.push((e.path(), r, depth + 1));
            } else if md.is_file() && out.len() < MAX_LISTED {
                out.push((r, md.len()));
            }
        }
    }
    out.sort();
    out
}

fn has_extension(name: &str, exts: &[&str]) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, e)| exts.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// Disk images as `/api/storage` lists them (the v4 server's extensions, plus DiskCopy's).
const DISK_EXTENSIONS: &[&str] = &[
    "img", "dsk", "hfv", "toast", "image", "dc42", "diskcopy", "hda",
];
/// CD-ROM images.
const CDROM_EXTENSIONS: &[&str] = &["iso", "toast"];

/// A ROM file's stored checksum (the first big-endian long) and, when the contents match it and
/// it names a known model, that model.
fn rom_identity(path: &FsPath) -> Option<(String, Option<&'static str>)> {
    use std::io::Read;
    let f = std::fs::File::open(path).ok()?;
    let mut image = Vec::new();
    f.take(macemu_core::rom::MAX_ROM_SIZE as u64 + 1)
        .read_to_end(&mut image)
        .ok()?;
    let stored = u32::from_be_bytes(image.get(..4)?.try_into().ok()?);
    let genuine = macemu_core::rom::compute_checksum(&image) == stored;
    let model = genuine
        .then(|| macemu_core::rom::model_name(stored))
        .flatten();
    Some((format!("{stored:08x}"), model))
}

/// The v4 listing: `roms` (with `checksum`, lowercase hex as v4 prints it, and `model`), `disks`
/// and `cdroms`, each searched recursively; `name` is the path inside its folder.
fn storage_listing(c: &HttpConfig) -> Value {
    let mut roms = Vec::new();
    for d in &c.rom_dirs {
        for (name, size) in walk(d) {
            let mut r = json!({"name": name, "size": size, "dir": d});
            if let Some((checksum, model)) = rom_identity(&d.join(&name)) {
                r["checksum"] = json!(checksum);
                r["model"] = json!(model);
            }
            roms.push(r);
        }
    }
    let (mut disks, mut cdroms) = (Vec::new(), Vec::new());
    for d in &c.disk_dirs {
        for (name, size) in walk(d) {
            let r = json!({"name": name, "size": size, "dir": d});
            if has_extension(&name, CDROM_EXTENSIONS) {
                cdroms.push(r.clone());
            }
            if has_extension(&name, DISK_EXTENSIONS) {
                disks.push(r);
            }
        }
    }
    json!({
        "roms": roms,
        "disks": disks,
        "cdroms": cdroms,
        "romsPath": c.rom_dirs.first(),
        "imagesPath": c.disk_dirs.first(),
    })
}

async fn storage(State(st): State<Shared>) -> Response {
    // Walking folders and reading ROMs is file system work: not on an async worker.
    let st2 = st.clone();
    match tokio::task::spawn_blocking(move || storage_listing(&st2.cfg)).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => err(StatusCode::INTERNAL_SERVER_ERROR, format!("listing: {e}")),
    }
}

/// One drive for the page: `{drive, empty, name, bytes, format, read_only, ejected_by_mac, error}`.
fn drive_json(r: &DriveReport) -> Value {
    let m = r.media.as_ref();
    json!({
        "drive": r.slot.map(|s| s.to_string()),
        "empty": m.is_none(),
        "name": m.map(|m| m.name.as_str()),
        "bytes": m.map(|m| m.bytes),
        "format": m.map(|m| m.format.as_str()),
        "read_only": m.is_some_and(|m| m.read_only),
        "ejected_by_mac": r.ejected_by_mac,
        "error": r.error,
    })
}

/// `GET /api/drives`: each drive of the attached emulator as it last reported it (an emulator
/// without drive reports, such as BasiliskII, lists none).
async fn drives(State(st): State<Shared>) -> Response {
    let list = st.control.drives();
    Json(json!({
        "attached": list.is_some(),
        "drives": list.unwrap_or_default().iter().map(drive_json).collect::<Vec<_>>(),
        "max_upload_bytes": st.cfg.max_upload,
    }))
    .into_response()
}

/// A name an upload may create: plain (no folders), visible, not too long, and a disk or CD-ROM
/// image's, as `/api/storage` lists them.
fn upload_name_ok(name: &str) -> bool {
    !name.starts_with('.')
        && name.len() <= 255
        && !name.contains(['/', '\\'])
        && !name.chars().any(char::is_control)
        && (has_extension(name, DISK_EXTENSIONS) || has_extension(name, CDROM_EXTENSIONS))
}

/// What the request task hands the writer thread.
enum Piece {
    Data(Bytes),
    /// The whole body arrived: commit. Without it the file is discarded.
    End,
}

/// `PUT /api/disks/{name}` (`Content-Type: application/octet-stream`): a disk image from the page,
/// streamed into the first disk folder under a new name; an existing file is never replaced. At
/// most `max_upload` bytes; the file is fsynced and visible only when complete, before the answer.
async fn disk_upload(State(st): State<Shared>, Path(name): Path<String>, req: Request) -> Response {
    let c = &st.cfg;
    if c.max_upload == 0 {
        return err(
            StatusCode::FORBIDDEN,
            "uploads are turned off (--max-upload-mib 0)",
        );
    }
    let Some(dir) = c.disk_dirs.first() else {
        return err(
            StatusCode::CONFLICT,
            "no disk folder to upload into (serve --disks DIR)",
        );
    };
    if !upload_name_ok(&name) {
        return err(
            StatusCode::BAD_REQUEST,
            format!(
                "{name:?} is not a plain disk image name (.{}; CD-ROM .{})",
                DISK_EXTENSIONS.join(", ."),
                CDROM_EXTENSIONS.join(", .")
            ),
        );
    }
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > c.max_upload) {
        return err(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("disk images up to {} bytes", c.max_upload),
        );
    }
    let path = dir.join(&name);
    if disk_file(&c.disk_dirs, &name).is_some() {
        return err(StatusCode::CONFLICT, format!("{name:?} already exists"));
    }
    // The file system work runs on a blocking thread, fed through a short queue.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Piece>(4);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<u64> {
        let mut f = macemu_ipc::fsutil::NewFile::create(&path, 0o644)?;
        let mut n = 0u64;
        while let Some(p) = rx.blocking_recv() {
            match p {
                Piece::Data(b) => {
                    f.write_all(&b)?;
                    n += b.len() as u64;
                }
                Piece::End => {
                    f.commit()?;
                    return Ok(n);
                }
            }
        }
        Err(std::io::Error::other("upload cut off"))
    });
    let mut body = req.into_body().into_data_stream();
    let mut total = 0u64;
    let mut refusal = None;
    while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
        match chunk {
            Ok(b) => {
                total += b.len() as u64;
                if total > c.max_upload {
                    refusal = Some(err(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("disk images up to {} bytes", c.max_upload),
                    ));
                    break;
                }
                if tx.send(Piece::Data(b)).await.is_err() {
                    break; // the writer failed; its error is the answer
                }
            }
            Err(e) => {
                refusal = Some(err(StatusCode::BAD_REQUEST, format!("upload cut off: {e}")));
                break;
            }
        }
    }
    if refusal.is_none() {
        let _ = tx.send(Piece::End).await;
    }
    drop(tx);
    let written = writer.await;
    if let Some(r) = refusal {
        return r;
    }
    match written {
        Ok(Ok(n)) => {
            tracing::info!(file = %name, bytes = n, "disk image uploaded");
            (
                StatusCode::CREATED,
                Json(json!({"ok": true, "file": name, "size": n})),
            )
                .into_response()
        }
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            err(StatusCode::CONFLICT, format!("{name:?} already exists"))
        }
        Ok(Err(e)) => {
            tracing::warn!(file = %name, "upload failed: {e}");
            err(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot store {name:?}: {e}"),
            )
        }
        Err(e) => err(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("upload writer: {e}"),
        ),
    }
}

#[derive(Deserialize)]
struct InsertBody {
    /// A file in one of the disk folders, by its name there (as `/api/storage` lists it).
    file: String,
    #[serde(default)]
    read_only: bool,
}

/// The image `name` names inside the configured disk folders, as `/api/storage` lists it: a path
/// relative to a folder whose every part is a plain visible name (no `..`, no absolute path), with
/// no symlink on the way, ending at a regular file; the first folder that has it wins. Nothing
/// else is reachable.
fn disk_file(dirs: &[PathBuf], name: &str) -> Option<PathBuf> {
    let parts: Vec<&str> = name.split('/').collect();
    let plain = |p: &&str| !p.is_empty() && !p.starts_with('.') && !p.contains(['\\', '\0']);
    if parts.len() > MAX_DEPTH + 1 || !parts.iter().all(plain) {
        return None;
    }
    dirs.iter().find_map(|d| {
        let mut p = d.clone();
        for (i, part) in parts.iter().enumerate() {
            p.push(part);
            let md = std::fs::symlink_metadata(&p).ok()?;
            let last = i + 1 == parts.len();
            if (last && !md.is_file()) || (!last && !md.is_dir()) {
                return None;
            }
        }
        std::path::absolute(&p).ok()
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

/// Client text as it goes to our log: no control characters, bounded in length.
fn log_line(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_LOG_LINE)
        .collect()
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
    let clean = log_line(&message);
    match level.as_str() {
        "error" => tracing::error!(target: "client", "{clean}"),
        "warn" => tracing::warn!(target: "client", "{clean}"),
        _ => tracing::info!(target: "client", "{clean}"),
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `POST /api/restart` (v4): resets the emulated Mac, as the v4 server does.
async fn restart_v4(State(st): State<Shared>) -> Response {
    let control = st.control.clone();
    match tokio::task::spawn_blocking(move || control.emulator(EmulatorAction::Reset)).await {
        Ok(Ok(message)) => {
            Json(json!({"success": true, "ok": true, "message": message})).into_response()
        }
        Ok(Err(m)) => err(StatusCode::CONFLICT, m),
        Err(e) => err(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("restart failed: {e}"),
        ),
    }
}

/// `POST /api/error` (v4): a page's JavaScript error, `{message, stack, url, line, col, type}`,
/// logged as one bounded line without control characters.
async fn client_error(body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let field = |k: &str| -> String {
        match &v[k] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    };
    let mut line = format!("{}: {}", field("type"), field("message"));
    if !field("url").is_empty() {
        line += &format!(" at {}:{}:{}", field("url"), field("line"), field("col"));
    }
    if !field("stack").is_empty() {
        line += &format!(" | {}", field("stack").replace('\n', " | "));
    }
    let clean = log_line(&line);
    tracing::error!(target: "client", "{clean}");
    Json(json!({"ok": true})).into_response()
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
        reports: Mutex<Option<Vec<DriveReport>>>,
        mouse: Mutex<Option<MouseMode>>,
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
        fn drives(&self) -> Option<Vec<DriveReport>> {
            self.reports.lock().unwrap().clone()
        }
        fn mouse_mode(&self) -> MouseMode {
            self.mouse.lock().unwrap().unwrap_or(MouseMode::Absolute)
        }
        fn set_mouse_mode(&self, mode: MouseMode) {
            *self.mouse.lock().unwrap() = Some(mode);
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
            max_upload: 64 * 1024,
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

    #[test]
    fn prefs_lines_are_read_and_replaced_in_place() {
        let text = "rom /r\n# mousemode relative\nmousemode  absolute\nscreen win/640/480\nmousemode relative\n";
        assert_eq!(pref_value(text, "mousemode"), Some("relative"));
        assert_eq!(pref_value(text, "rom"), Some("/r"));
        assert_eq!(pref_value(text, "webcodec"), None);
        assert_eq!(screen_resolution("win/640/480").as_deref(), Some("640x480"));
        assert_eq!(screen_resolution("ipc/4000/480"), None);
        let t = with_pref(text, "mousemode", "absolute");
        assert_eq!(
            t,
            "rom /r\n# mousemode relative\nmousemode absolute\nscreen win/640/480\n"
        );
        assert_eq!(
            with_pref("rom /r", "webcodec", "png"),
            "rom /r\nwebcodec png\n"
        );
    }

    #[tokio::test]
    async fn v4_config_is_read_from_and_saved_to_the_prefs_file() {
        let e = env(None);
        let (_, b, _) = call(&e.app, "GET", "/api/config", "", None).await;
        let v = json_of(&b);
        assert_eq!(
            (
                v["webcodec"].as_str(),
                v["mousemode"].as_str(),
                v["resolution"].as_str()
            ),
            (Some("h264"), Some("absolute"), Some("512x342"))
        );
        assert_eq!(v["debug_perf"], false);
        let json = Some("application/json");
        let (s, b, _) = call(
            &e.app,
            "POST",
            "/api/config",
            r#"{"mousemode":"relative","webcodec":"png","resolution":"640x480"}"#,
            json,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&b));
        assert_eq!(json_of(&b)["success"], true);
        assert_eq!(
            std::fs::read_to_string(e.dir.join("prefs")).unwrap(),
            "rom /x\nmousemode relative\nwebcodec png\nscreen ipc/640/480\n"
        );
        // Applied at once too.
        assert_eq!(e.fake.mouse_mode(), MouseMode::Relative);
        assert_eq!(e.fake.codec(), "png");
        let (_, b, _) = call(&e.app, "GET", "/api/config", "", None).await;
        let v = json_of(&b);
        assert_eq!(
            (
                v["webcodec"].as_str(),
                v["mousemode"].as_str(),
                v["resolution"].as_str()
            ),
            (Some("png"), Some("relative"), Some("640x480"))
        );
        // Bad values change nothing.
        for body in [
            r#"{"mousemode":"sideways"}"#,
            r#"{"webcodec":"av1"}"#,
            r#"{"resolution":"4096x4096"}"#,
            r#"{"resolution":"640x480","mousemode":"bad"}"#,
            r#"{"path":"/etc/passwd"}"#,
            r#"{}"#,
        ] {
            let (s, _, _) = call(&e.app, "POST", "/api/config", body, json).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        }
        assert_eq!(
            std::fs::read_to_string(e.dir.join("prefs")).unwrap(),
            "rom /x\nmousemode relative\nwebcodec png\nscreen ipc/640/480\n"
        );
    }

    #[tokio::test]
    async fn v4_restart_and_error_routes() {
        let e = env(None);
        let json = Some("application/json");
        let (s, b, _) = call(&e.app, "POST", "/api/restart", "{}", json).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(json_of(&b)["success"], true);
        assert_eq!(*e.fake.actions.lock().unwrap(), [EmulatorAction::Reset]);
        let (s, b, _) = call(
            &e.app,
            "POST",
            "/api/error",
            r#"{"message":"x is undefined","stack":"at f\nat g","url":"app.js","line":3,"col":9,"type":"TypeError"}"#,
            json,
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(json_of(&b)["ok"], true);
        // A cross-site form cannot restart the emulator through the v4 spelling either.
        let (s, _, _) = call(&e.app, "POST", "/api/restart", "x", Some("text/plain")).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(e.fake.actions.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn drive_states_as_the_emulator_reported_them() {
        use macemu_ipc::drive::ReportedMedia;
        let e = env(None);
        let (_, b, _) = call(&e.app, "GET", "/api/drives", "", None).await;
        let v = json_of(&b);
        assert_eq!(v["attached"], false);
        assert_eq!(v["drives"], json!([]));
        assert_eq!(v["max_upload_bytes"], 64 * 1024);
        *e.fake.reports.lock().unwrap() = Some(vec![
            DriveReport {
                slot: Some(WireSlot::Floppy(0)),
                media: Some(ReportedMedia {
                    name: "System 6.dsk".into(),
                    bytes: 819_284,
                    read_only: true,
                    format: "DiskCopy 4.2".into(),
                }),
                ejected_by_mac: false,
                error: None,
            },
            DriveReport {
                slot: Some(WireSlot::Scsi(3)),
                media: None,
                ejected_by_mac: true,
                error: Some("no such file".into()),
            },
        ]);
        let (_, b, _) = call(&e.app, "GET", "/api/drives", "", None).await;
        let v = json_of(&b);
        assert_eq!(v["attached"], true);
        assert_eq!(
            v["drives"],
            json!([
                {"drive": "floppy0", "empty": false, "name": "System 6.dsk", "bytes": 819_284,
                 "format": "DiskCopy 4.2", "read_only": true, "ejected_by_mac": false, "error": null},
                {"drive": "scsi3", "empty": true, "name": null, "bytes": null, "format": null,
                 "read_only": false, "ejected_by_mac": true, "error": "no such file"},
            ])
        );
    }

    #[tokio::test]
    async fn uploads_create_new_images_in_the_disk_folder_only() {
        let e = env(None);
        let raw = Some("application/octet-stream");
        let image: String = (0..40_000)
            .map(|i| char::from(b'a' + (i % 26) as u8))
            .collect();
        let (s, b, _) = call(&e.app, "PUT", "/api/disks/New%20Disk.img", &image, raw).await;
        assert_eq!(s, StatusCode::CREATED, "{}", String::from_utf8_lossy(&b));
        assert_eq!(json_of(&b)["size"], 40_000);
        assert_eq!(
            std::fs::read(e.dir.join("disks/New Disk.img")).unwrap(),
            image.as_bytes()
        );
        // The page then inserts it by name.
        let (s, _, _) = call(
            &e.app,
            "POST",
            "/api/drives/floppy0/insert",
            r#"{"file": "New Disk.img"}"#,
            Some("application/json"),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        // Never replaces a file; names are plain image names; bodies are bounded and raw.
        let big = "x".repeat(64 * 1024 + 1);
        for (uri, body, ctype, code) in [
            ("/api/disks/New%20Disk.img", "other", raw, 409),
            ("/api/disks/system.dsk", "other", raw, 409),
            ("/api/disks/..%2Fprefs.img", "x", raw, 400),
            ("/api/disks/.hidden.img", "x", raw, 400),
            ("/api/disks/run.sh", "x", raw, 400),
            ("/api/disks/noext", "x", raw, 400),
            ("/api/disks/big.img", big.as_str(), raw, 413),
            ("/api/disks/form.img", "x", Some("text/plain"), 415),
            (
                "/api/disks/form.img",
                "x",
                Some("multipart/form-data; boundary=x"),
                415,
            ),
        ] {
            let (s, b, _) = call(&e.app, "PUT", uri, body, ctype).await;
            assert_eq!(s.as_u16(), code, "{uri}: {}", String::from_utf8_lossy(&b));
        }
        // Without a length the body is counted as it streams, and cut off at the limit.
        let req = HttpRequest::builder()
            .method("PUT")
            .uri("/api/disks/liar.img")
            .header("host", "127.0.0.1:8080")
            .header("content-type", "application/octet-stream")
            .body(Body::from(big.clone()))
            .unwrap();
        let resp = e.app.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // A foreign page cannot upload.
        let (s, _, _) = call_with(
            &e.app,
            "PUT",
            "/api/disks/evil.img",
            "x",
            &[
                ("host", "127.0.0.1:8080"),
                ("origin", "http://evil.example.com"),
                ("content-type", "application/octet-stream"),
            ],
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let mut names: Vec<String> = std::fs::read_dir(e.dir.join("disks"))
            .unwrap()
            .map(|d| d.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["New Disk.img", "sub", "system.dsk"],
            "no partial or temporary files"
        );
        assert_eq!(
            std::fs::read(e.dir.join("disks/system.dsk")).unwrap(),
            vec![0u8; 1024]
        );
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
                r#"{"file": "sub/../prefs"}"#,
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

    /// A ROM-sized image (not Apple's code) whose words sum to `checksum`, stored in front.
    fn image_with_checksum(checksum: u32) -> Vec<u8> {
        let mut image = vec![0u8; 128 * 1024];
        let mut left = checksum;
        for w in image[4..].chunks_exact_mut(2) {
            let v = left.min(0xFFFF);
            w.copy_from_slice(&(v as u16).to_be_bytes());
            left -= v;
        }
        image[..4].copy_from_slice(&checksum.to_be_bytes());
        image
    }

    #[tokio::test]
    async fn storage_lists_the_configured_folders_recursively_as_v4_does() {
        let e = env(None);
        std::fs::create_dir_all(e.dir.join("roms/apple")).unwrap();
        std::fs::write(
            e.dir.join("roms/apple/plus3.rom"),
            image_with_checksum(0x4D1F_8172),
        )
        .unwrap();
        std::fs::write(e.dir.join("roms/.hidden.rom"), b"x").unwrap();
        std::fs::write(e.dir.join("disks/sub/cd.iso"), b"iso").unwrap();
        std::fs::write(e.dir.join("disks/sub/both.toast"), b"toast").unwrap();
        std::fs::write(e.dir.join("disks/notes.txt"), b"not an image").unwrap();
        std::os::unix::fs::symlink(e.dir.join("secret.txt"), e.dir.join("disks/out.img")).unwrap();
        std::os::unix::fs::symlink(&e.dir, e.dir.join("disks/loop")).unwrap();
        let (s, b, _) = call(&e.app, "GET", "/api/storage", "", None).await;
        assert_eq!(s, StatusCode::OK);
        let v = json_of(&b);
        let names = |k: &str| -> Vec<String> {
            v[k].as_array()
                .unwrap()
                .iter()
                .map(|r| r["name"].as_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(names("roms"), ["apple/plus3.rom", "plus.rom"]);
        // The stored checksum as v4 prints it; the model only when the contents match it.
        assert_eq!(v["roms"][0]["checksum"], "4d1f8172");
        assert_eq!(v["roms"][0]["model"], "Macintosh Plus");
        assert_eq!(v["roms"][1]["checksum"], "4d1f8172");
        assert_eq!(v["roms"][1]["model"], Value::Null);
        // Sub-folders are searched; symlinks, hidden and other files are not listed.
        assert_eq!(
            names("disks"),
            ["sub/both.toast", "sub/hidden.dsk", "system.dsk"]
        );
        assert_eq!(names("cdroms"), ["sub/both.toast", "sub/cd.iso"]);
        assert_eq!(v["disks"][2]["size"], 1024);
        // What is listed can be inserted by that name; nothing reached through a symlink can.
        let insert = |file: &'static str| {
            let app = e.app.clone();
            async move {
                let body = format!(r#"{{"file": "{file}"}}"#);
                call(
                    &app,
                    "POST",
                    "/api/drives/scsi0/insert",
                    &body,
                    Some("application/json"),
                )
                .await
                .0
            }
        };
        assert_eq!(insert("sub/hidden.dsk").await, StatusCode::OK);
        for bad in [
            "out.img",
            "loop/disks/system.dsk",
            "sub/../system.dsk",
            "/system.dsk",
            "sub",
        ] {
            assert_eq!(insert(bad).await, StatusCode::NOT_FOUND, "{bad}");
        }
        let cmds = e.fake.drives.lock().unwrap().clone();
        assert_eq!(cmds.len(), 1);
        let DriveCommand::Insert { path, .. } = &cmds[0] else {
            panic!("{cmds:?}")
        };
        assert_eq!(
            *path,
            std::path::absolute(e.dir.join("disks/sub/hidden.dsk")).unwrap()
        );
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
