//! Checks run on one fuzz input for the HTTP API (`macemu_stream::http::router`): an arbitrary
//! request against a real router over a scratch folder, with a recording fake of the server.
//! Shared by the `http_api` fuzz target and `macemu-stream/tests/fuzz_corpus.rs`.
//!
//! Input: one flag byte (bit 0: a token is required; bits 1–3: the method), then the request
//! target, header lines `name: value` and the body, in HTTP/1 text form (`\n` or `\r\n`).

use axum::body::Body;
use axum::http::{Request, StatusCode};
use macemu_ipc::drive::{DriveCommand, DriveReport};
use macemu_ipc::MouseMode;
use macemu_stream::http::{router, Control, EmulatorAction, HttpConfig};
use macemu_stream::origin::OriginPolicy;
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;

const TOKEN: &str = "fuzz-token-0123456789";
const SECRET: &[u8] = b"SECRET-NEVER-SERVED";
const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "HEAD", "OPTIONS", "DELETE", "PATCH", "POST",
];

#[derive(Default)]
struct Recorder {
    drives: Mutex<Vec<DriveCommand>>,
    actions: Mutex<Vec<EmulatorAction>>,
}

impl Control for Recorder {
    fn status(&self) -> Value {
        json!({"emulator": {"connected": true, "pid": 1}})
    }
    fn codec(&self) -> String {
        "h264".into()
    }
    fn set_codec(&self, codec: &str) -> Result<(), String> {
        match codec {
            "h264" | "png" => Ok(()),
            c => Err(format!("unknown codec {c}")),
        }
    }
    fn emulator(&self, action: EmulatorAction) -> Result<String, String> {
        self.actions.lock().unwrap().push(action);
        Ok("done".into())
    }
    fn drive(&self, cmd: DriveCommand) -> Result<(), String> {
        self.drives.lock().unwrap().push(cmd);
        Ok(())
    }
    fn drives(&self) -> Option<Vec<DriveReport>> {
        Some(Vec::new())
    }
    fn mouse_mode(&self) -> MouseMode {
        MouseMode::Absolute
    }
    fn set_mouse_mode(&self, _mode: MouseMode) {}
}

/// Every regular file under `dir` with its bytes, sorted by path.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(p);
            } else {
                let bytes = if t.is_symlink() {
                    b"<symlink>".to_vec()
                } else {
                    std::fs::read(&p).unwrap()
                };
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch() -> Scratch {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "macemu-fuzz-http-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("roms")).unwrap();
    std::fs::create_dir_all(dir.join("disks/sub")).unwrap();
    std::fs::write(dir.join("roms/plus.rom"), [0x4D, 0x1F, 0x81, 0x72]).unwrap();
    std::fs::write(dir.join("disks/system.dsk"), [0u8; 512]).unwrap();
    std::fs::write(dir.join("disks/sub/nested.dsk"), b"nested").unwrap();
    std::fs::write(dir.join("secret.txt"), SECRET).unwrap();
    std::os::unix::fs::symlink(dir.join("secret.txt"), dir.join("disks/link.img")).unwrap();
    std::fs::write(dir.join("prefs"), "rom plus.rom\n").unwrap();
    Scratch(dir)
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    })
}

/// The request the input describes, or `None` when it is not a valid HTTP request at all.
fn request(data: &[u8]) -> Option<(Request<Body>, bool)> {
    let (&flags, rest) = data.split_first()?;
    let text = String::from_utf8_lossy(rest);
    let (head, body) = match text.find("\n\n") {
        Some(i) => (&text[..i], text[i + 2..].as_bytes().to_vec()),
        None => (&text[..], Vec::new()),
    };
    let mut lines = head.lines();
    let target = lines.next()?.trim_end_matches('\r');
    let mut b = Request::builder()
        .method(METHODS[usize::from(flags >> 1) & 7])
        .uri(target);
    for l in lines {
        let (k, v) = l.trim_end_matches('\r').split_once(':')?;
        b = b.header(k.trim(), v.trim());
    }
    let req = b.body(Body::from(body)).ok()?;
    Some((req, flags & 1 != 0))
}

/// No panic; whatever the request, the router answers, and:
/// - files change only as the API documents: the prefs file by a successful `POST /api/prefs`, one
///   new image in the disk folder by a successful upload; nothing else is created, changed or
///   removed (no temporary files left), and no file outside the configured ones is ever served;
/// - a successful state change came with a Host of this server, no foreign Origin, a JSON (or, for
///   an upload, raw) body and, when one is required, the token;
/// - every drive command the API forwards names a regular file directly inside the disk folder.
pub fn http_api(data: &[u8]) {
    let Some((req, token_required)) = request(data) else {
        return;
    };
    let s = scratch();
    let dir = &s.0;
    let before = snapshot(dir);
    let recorder = Arc::new(Recorder::default());
    let cfg = HttpConfig {
        token: token_required.then(|| TOKEN.to_owned()),
        signaling_port: 8090,
        prefs_file: Some(dir.join("prefs")),
        rom_dirs: vec![dir.join("roms")],
        disk_dirs: vec![dir.join("disks")],
        max_upload: 4096,
        extra: json!({}),
        policy: OriginPolicy::new(
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            8080,
            &[],
            &[],
            token_required,
        ),
    };
    let app = router(cfg.clone(), recorder.clone() as Arc<dyn Control>);
    let method = req.method().as_str().to_owned();
    let path = req.uri().path().to_owned();
    let h = req.headers().clone();
    let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (status, body) = runtime().block_on(async move {
        let resp = app.oneshot(req).await.expect("routers are infallible");
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), 64 << 20)
            .await
            .expect("response body");
        (status, body)
    });

    assert!(
        !body.windows(SECRET.len()).any(|w| w == SECRET),
        "{method} {path} served a file outside the configured ones"
    );
    let after = snapshot(dir);
    let ok = status.is_success();
    let changed: Vec<&PathBuf> = after
        .iter()
        .filter(|a| !before.contains(a))
        .map(|(p, _)| p)
        .collect();
    let removed: Vec<&PathBuf> = before
        .iter()
        .filter(|(p, _)| !after.iter().any(|(q, _)| q == p))
        .map(|(p, _)| p)
        .collect();
    assert!(removed.is_empty(), "{method} {path} removed {removed:?}");
    for p in &changed {
        let prefs_write = **p == dir.join("prefs") && method == "POST" && path == "/api/prefs";
        let upload = p.parent() == Some(&dir.join("disks"))
            && method == "PUT"
            && path.starts_with("/api/disks/")
            && status == StatusCode::CREATED;
        assert!(
            ok && (prefs_write || upload),
            "{method} {path} ({status}) changed {}",
            p.display()
        );
    }

    let state_change = !matches!(method.as_str(), "GET" | "HEAD" | "OPTIONS");
    if ok && path.starts_with("/api/") {
        let host = header("host").unwrap_or_default();
        let name = match host.rsplit_once(':') {
            Some((n, p)) if !p.contains(']') => n,
            _ => host.as_str(),
        };
        assert!(
            loopback_name(name),
            "{method} {path} answered {status} to Host {host:?}"
        );
        if token_required {
            let auth = header("authorization").unwrap_or_default();
            let cookie = header("cookie").unwrap_or_default();
            assert!(
                auth.contains(TOKEN) || cookie.contains(TOKEN) || data_has_query_token(data),
                "{method} {path} answered {status} without the token"
            );
        }
    }
    if ok && state_change {
        if let Some(o) = header("origin") {
            assert!(own_origin(&o), "{method} {path} accepted Origin {o:?}");
        }
        if let Some(ct) = header("content-type") {
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            assert!(
                essence == "application/json"
                    || (method == "PUT" && essence == "application/octet-stream"),
                "{method} {path} accepted a {ct:?} body"
            );
        }
    }
    for cmd in recorder.drives.lock().unwrap().iter() {
        if let DriveCommand::Insert { path: p, .. } = cmd {
            let disks = std::path::absolute(dir.join("disks")).unwrap();
            let inside = p
                .strip_prefix(&disks)
                .expect("inserted a file outside the disk folder");
            let mut q = disks.clone();
            for c in inside.components() {
                assert!(
                    matches!(c, std::path::Component::Normal(_)),
                    "{}",
                    p.display()
                );
                q.push(c);
                let md = std::fs::symlink_metadata(&q).unwrap();
                assert!(
                    !md.is_symlink(),
                    "inserted through a symlink: {}",
                    p.display()
                );
            }
            assert!(
                std::fs::symlink_metadata(p).unwrap().is_file(),
                "{}",
                p.display()
            );
        }
    }
}

/// This server's names: loopback only (it is bound to 127.0.0.1 and allows no other host).
fn loopback_name(name: &str) -> bool {
    let n = name.trim().to_ascii_lowercase();
    matches!(n.trim_end_matches('.'), "127.0.0.1" | "localhost" | "[::1]")
}

/// The page this server serves: a loopback name on the HTTP port.
fn own_origin(origin: &str) -> bool {
    let o = origin.trim().to_ascii_lowercase();
    let Some(rest) = o
        .strip_prefix("http://")
        .or_else(|| o.strip_prefix("https://"))
    else {
        return false;
    };
    let rest = rest.trim_end_matches('/');
    rest.rsplit_once(':')
        .is_some_and(|(h, p)| p == "8080" && loopback_name(h))
}

/// Whether the request target carries the token as `token=…`.
fn data_has_query_token(data: &[u8]) -> bool {
    let text = String::from_utf8_lossy(data.get(1..).unwrap_or_default());
    let target = text.lines().next().unwrap_or_default();
    target.contains(&format!("token={TOKEN}"))
}
