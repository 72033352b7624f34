//! Harness for the browser end-to-end tests: a private network namespace, `macemu-cli emulate` and
//! `serve`, headless Chromium driven over the DevTools protocol, and the emulator's own frame read
//! from its shared memory as the truth the page is compared with.
//!
//! Chromium gathers no ICE host candidate with only loopback, so the server and the browser run in a
//! namespace with one veth pair and a default route (see `docs/e2e-chromium.md`). The DevTools
//! connection is a pipe (`--remote-debugging-pipe`), so the test itself needs no network access into
//! the namespace; HTTP requests to the server are made by the page (`fetch`).

use serde_json::{json, Value};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

pub type Result<T> = std::result::Result<T, String>;

/// Serialises the heavy tests of one binary (emulator + server + browser each): run side by side on a
/// small machine they starve each other and their time limits stop meaning anything.
pub fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reports that a browser test cannot run here. It says so on stderr, and fails instead when
/// `MACEMU_REQUIRE_BROWSER` or `MACEMU_REQUIRE_ALL` is set (`.ci/run` sets them: there, a missing
/// browser must not pass as a green test).
pub fn skip(why: &str) {
    let test = std::thread::current()
        .name()
        .unwrap_or("a browser test")
        .to_owned();
    let msg = format!("SKIPPED {test}: {why}");
    if ["MACEMU_REQUIRE_BROWSER", "MACEMU_REQUIRE_ALL"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty() && x != "0"))
    {
        panic!("{msg} (and MACEMU_REQUIRE_BROWSER/MACEMU_REQUIRE_ALL is set)");
    }
    eprintln!("{msg}");
}

/// Why the page-only tests cannot run here, if they cannot (they need Chromium).
pub fn no_chromium() -> Option<String> {
    which("chromium")
        .is_none()
        .then(|| "`chromium` is not installed (scripts/setup.sh installs it)".into())
}

/// Why the e2e tests cannot run here, if they cannot (they need root, `ip` and Chromium).
pub fn unavailable() -> Option<String> {
    unavailable_without(&["ip", "chromium", "curl"])
}

/// Why a test that needs root (for a network namespace) and these programs cannot run here.
pub fn unavailable_without(tools: &[&str]) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !root {
        return Some("needs root for a network namespace".into());
    }
    for tool in tools {
        if which(tool).is_none() {
            return Some(format!(
                "`{tool}` is not installed (scripts/setup.sh installs it)"
            ));
        }
    }
    None
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

/// The workspace's target directory (where `macemu-cli` was built and where screenshots go).
pub fn target_dir() -> PathBuf {
    // The test binary lives in <target>/<profile>/deps/.
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors().nth(3).expect("target dir").to_path_buf()
}

pub use crate::cargo::cargo_command;

/// `macemu-cli` of the same profile as this test, built (or brought up to date) first: cargo builds a
/// package's binaries only for that package's own integration tests, and the tests using this live
/// in macemu-stream. `MACEMU_CLI` names a ready binary instead.
pub fn cli_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("MACEMU_CLI") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("no profile dir")?;
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(other) => other,
        None => return Err("no profile name".into()),
    };
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
    let out = cargo_command()
        .args([
            "build",
            "-q",
            "-p",
            "macemu-cli",
            "--bin",
            "macemu-cli",
            "--profile",
            profile,
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(target_dir())
        .output()
        .map_err(|e| format!("running cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building macemu-cli failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let p = profile_dir.join("macemu-cli");
    p.is_file()
        .then_some(p.clone())
        .ok_or_else(|| format!("{} was not built", p.display()))
}

/// `macemu-cli` ready for an end-to-end run, or None (with the reason printed) where this machine cannot
/// run one: not root, no Chromium, or a `macemu-cli` without `emulate`/`serve`. A failing build panics.
pub fn e2e_cli() -> Option<PathBuf> {
    if let Some(why) = unavailable() {
        skip(&why);
        return None;
    }
    let cli = cli_path().unwrap_or_else(|e| panic!("{e}"));
    if let Some(sub) = missing_subcommand(&cli, &["emulate", "serve"]) {
        skip(&format!("macemu-cli has no `{sub}` subcommand"));
        return None;
    }
    Some(cli)
}

/// The first of `subcommands` that `cli` does not have (the e2e tests need `emulate` and `serve`).
pub fn missing_subcommand(cli: &Path, subcommands: &[&str]) -> Option<String> {
    subcommands
        .iter()
        .find(|sub| {
            !Command::new(cli)
                .args([sub, "--help"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(|s| s.to_string())
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// A network namespace with a veth pair to the host and a default route; deleted on drop.
pub struct Netns {
    pub name: String,
    host_if: String,
}

impl Netns {
    /// `tag` keeps concurrent tests apart (names and subnets).
    pub fn create(tag: u8) -> Result<Netns> {
        let pid = std::process::id();
        let name = format!("me2e{tag}-{pid}");
        let host_if = format!("me{tag}h{}", pid % 100_000);
        let ns_if = format!("me{tag}n{}", pid % 100_000);
        let net = format!("10.{}.{}", 200 + tag, pid % 250);
        let ns = Netns {
            name: name.clone(),
            host_if: host_if.clone(),
        };
        run(Command::new("ip").args(["netns", "add", &name]))?;
        run(Command::new("ip").args(["-n", &name, "link", "set", "lo", "up"]))?;
        run(Command::new("ip").args([
            "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
        ]))?;
        run(Command::new("ip").args(["link", "set", &ns_if, "netns", &name]))?;
        run(Command::new("ip").args([
            "-n",
            &name,
            "addr",
            "add",
            &format!("{net}.1/24"),
            "dev",
            &ns_if,
        ]))?;
        run(Command::new("ip").args(["-n", &name, "link", "set", &ns_if, "up"]))?;
        run(Command::new("ip").args(["addr", "add", &format!("{net}.2/24"), "dev", &host_if]))?;
        run(Command::new("ip").args(["link", "set", &host_if, "up"]))?;
        run(Command::new("ip").args([
            "-n",
            &name,
            "route",
            "add",
            "default",
            "via",
            &format!("{net}.2"),
        ]))?;
        Ok(ns)
    }

    /// A command run inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// `curl` inside the namespace: the body, or None on any failure.
    pub fn curl(&self, url: &str) -> Option<String> {
        let out = self
            .command("curl")
            .args(["-sf", "--max-time", "2", url])
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        let _ = Command::new("ip")
            .args(["link", "del", &self.host_if])
            .stderr(Stdio::null())
            .status();
    }
}

/// A child process stopped on drop: SIGTERM (so it can clean up), then SIGKILL after a grace period.
pub struct Proc {
    pub child: Child,
    pub name: &'static str,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &'static str, mut cmd: Command, log: PathBuf) -> Result<Proc> {
        let f = File::create(&log).map_err(|e| e.to_string())?;
        let f2 = f.try_clone().map_err(|e| e.to_string())?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(f2)
            .spawn()
            .map_err(|e| format!("starting {name}: {e}"))?;
        Ok(Proc { child, name, log })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then wait up to `grace`, then SIGKILL.
    pub fn stop(&mut self, grace: Duration) {
        if !self.alive() {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status();
        let end = Instant::now() + grace;
        while Instant::now() < end {
            if !self.alive() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Polls `ready` every 100 ms for up to `timeout` while the process runs. The error says that it
    /// exited, or that it had not `done` (e.g. "answered …") in time, with the tail of its log.
    fn wait_ready(
        &mut self,
        timeout: Duration,
        done: &str,
        mut ready: impl FnMut() -> bool,
    ) -> Result<()> {
        let end = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "{} exited ({status}) before it had {done}:\n{}",
                    self.name,
                    self.tail()
                ));
            }
            if ready() {
                return Ok(());
            }
            if Instant::now() >= end {
                return Err(format!(
                    "{} had not {done} after {} s:\n{}",
                    self.name,
                    timeout.as_secs(),
                    self.tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The last lines of its log, for failure messages.
    pub fn tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop(Duration::from_secs(3));
    }
}

/// Polls `f` every 100 ms until it returns Some or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `macemu-cli emulate` or `serve` for a test, before it starts: [`Launch::emulate`] or
/// [`Launch::serve`], the test's own arguments, then [`Launch::start`], which returns once the process
/// is ready for the test (or says, with its log's tail, why it is not).
pub struct Launch<'a> {
    name: &'static str,
    cmd: Command,
    ready: Ready<'a>,
}

/// What [`Launch::start`] waits for.
enum Ready<'a> {
    /// `emulate`: its control socket `/tmp/macemu-<pid>.sock` exists (10 s at most).
    Socket,
    /// `serve`: `/api/status` answers inside the namespace (15 s at most).
    Status {
        ns: &'a Netns,
        http_port: u16,
        token: Option<String>,
    },
}

impl<'a> Launch<'a> {
    /// `macemu-cli emulate`: the demo ROM, unless the arguments name another.
    pub fn emulate(cli: &Path) -> Launch<'a> {
        let mut cmd = Command::new(cli);
        cmd.arg("emulate");
        Launch {
            name: "emulate",
            cmd,
            ready: Ready::Socket,
        }
    }

    /// `macemu-cli serve` inside `ns` on these ports, logging at `RUST_LOG=info` (see [`Launch::env`]).
    pub fn serve(ns: &'a Netns, cli: &Path, http_port: u16, signaling_port: u16) -> Launch<'a> {
        let mut cmd = ns.command(cli);
        cmd.arg("serve")
            .args(["--http-port", &http_port.to_string()])
            .args(["--signaling-port", &signaling_port.to_string()])
            .env("RUST_LOG", "info");
        Launch {
            name: "serve",
            cmd,
            ready: Ready::Status {
                ns,
                http_port,
                token: None,
            },
        }
    }

    pub fn args<S: AsRef<std::ffi::OsStr>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.cmd.args(args);
        self
    }

    /// An environment variable (a later one of the same name wins, e.g. `RUST_LOG`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.cmd.env(key, value);
        self
    }

    /// For `serve`: every request needs `token` (passed as `MACEMU_TOKEN`); the start-up check sends it.
    pub fn token(mut self, token: &str) -> Self {
        self.cmd.env("MACEMU_TOKEN", token);
        if let Ready::Status { token: t, .. } = &mut self.ready {
            *t = Some(token.to_owned());
        }
        self
    }

    /// Starts it with its output in `log` and waits until it is ready (see [`Launch`]).
    pub fn start(self, log: PathBuf) -> Result<Proc> {
        let mut p = Proc::spawn(self.name, self.cmd, log)?;
        match self.ready {
            Ready::Socket => {
                let sock = format!("/tmp/macemu-{}.sock", p.pid());
                p.wait_ready(Duration::from_secs(10), &format!("made {sock}"), || {
                    Path::new(&sock).exists()
                })?;
            }
            Ready::Status {
                ns,
                http_port,
                token,
            } => {
                let status = format!("http://127.0.0.1:{http_port}/api/status");
                let url = match &token {
                    Some(t) => format!("{status}?token={t}"),
                    None => status.clone(),
                };
                p.wait_ready(
                    Duration::from_secs(15),
                    &format!("answered {status}"),
                    || ns.curl(&url).is_some(),
                )?;
            }
        }
        Ok(p)
    }
}

/// A browser test's whole chain in a fresh namespace: `macemu-cli emulate` (the demo ROM), `serve`
/// attached to it, and Chromium, with their logs in a scratch folder. Dropped in field order: the
/// browser, the emulator, the server, then the folder and the namespace.
pub struct Chain {
    pub browser: Browser,
    pub emu: Proc,
    pub serve: Proc,
    pub tmp: TempDir,
    pub ns: Netns,
}

impl Chain {
    /// `tag` keeps concurrent tests apart (as in [`Netns::create`]), `name` names the scratch folder;
    /// `serve_args` are the test's own arguments to `serve`, after `--target-pid` and the ports.
    pub fn start(
        cli: &Path,
        tag: u8,
        name: &str,
        http_port: u16,
        signaling_port: u16,
        serve_args: &[&str],
    ) -> Result<Chain> {
        let ns = Netns::create(tag)?;
        let tmp = TempDir::new(name)?;
        let emu = Launch::emulate(cli).start(tmp.0.join("emulate.log"))?;
        let serve = Launch::serve(&ns, cli, http_port, signaling_port)
            .args(["--target-pid", &emu.pid().to_string()])
            .args(serve_args)
            .start(tmp.0.join("serve.log"))?;
        let browser = Browser::launch(Some(&ns), tmp.0.join("chromium.log"))?;
        Ok(Chain {
            browser,
            emu,
            serve,
            tmp,
            ns,
        })
    }
}

/// Headless Chromium with one page, driven over `--remote-debugging-pipe` (NUL-separated JSON).
pub struct Browser {
    proc: Proc,
    to_browser: ChildStdin,
    from_browser: Receiver<Value>,
    next_id: u64,
    session: String,
    _profile: TempDir,
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Result<TempDir> {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("macemu-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).map_err(|e| e.to_string())?;
        Ok(TempDir(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Injected before any page script: records every RTCPeerConnection, independently of the page's code.
const PC_HOOK: &str = r#"(() => {
  const Orig = window.RTCPeerConnection; window.__pcs = [];
  window.RTCPeerConnection = function (...a) { const pc = new Orig(...a); window.__pcs.push(pc); return pc; };
  window.RTCPeerConnection.prototype = Orig.prototype;
  Object.setPrototypeOf(window.RTCPeerConnection, Orig);
})();"#;

impl Browser {
    /// Starts Chromium (inside `ns` when given) with one blank page attached.
    pub fn launch(ns: Option<&Netns>, log: PathBuf) -> Result<Browser> {
        let profile = TempDir::new("chromium")?;
        let mut cmd = match ns {
            Some(ns) => ns.command("sh"),
            None => Command::new("sh"),
        };
        // fd 3 ← our stdin pipe (commands), fd 4 → our stdout pipe (replies).
        cmd.arg("-c")
            .arg("exec chromium \"$@\" 3<&0 4>&1 </dev/null >/dev/null")
            .arg("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-background-timer-throttling",
                "--disable-renderer-backgrounding",
                "--autoplay-policy=no-user-gesture-required",
                "--window-size=1280,800",
                "--remote-debugging-pipe",
            ]);
        cmd.arg(format!("--user-data-dir={}", profile.0.display()))
            .arg("about:blank");
        let f = File::create(&log).map_err(|e| e.to_string())?;
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(f)
            .spawn()
            .map_err(|e| format!("starting chromium: {e}"))?;
        let to_browser = child.stdin.take().ok_or("no stdin")?;
        let mut out = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || loop {
            let mut buf = Vec::new();
            match out.read_until(0, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    buf.pop();
                    if let Ok(v) = serde_json::from_slice::<Value>(&buf) {
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut b = Browser {
            proc: Proc {
                child,
                name: "chromium",
                log,
            },
            to_browser,
            from_browser: rx,
            next_id: 0,
            session: String::new(),
            _profile: profile,
        };
        let target = b.browser_call("Target.createTarget", json!({"url": "about:blank"}))?;
        let target_id = target["targetId"].as_str().ok_or("no targetId")?.to_owned();
        let att = b.browser_call(
            "Target.attachToTarget",
            json!({"targetId": target_id, "flatten": true}),
        )?;
        b.session = att["sessionId"].as_str().ok_or("no sessionId")?.to_owned();
        b.call("Page.enable", json!({}))?;
        b.call(
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": PC_HOOK}),
        )?;
        Ok(b)
    }

    fn send(&mut self, method: &str, params: Value, session: Option<String>) -> Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let Some(s) = session {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = serde_json::to_vec(&msg).map_err(|e| e.to_string())?;
        bytes.push(0);
        self.to_browser
            .write_all(&bytes)
            .map_err(|e| format!("{method}: browser pipe: {e}"))?;
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let v = self
                .from_browser
                .recv_timeout(left)
                .map_err(|_| format!("{method}: no reply from chromium"))?;
            if v["id"].as_u64() != Some(id) {
                continue; // an event
            }
            if let Some(e) = v.get("error") {
                return Err(format!("{method}: {e}"));
            }
            return Ok(v["result"].clone());
        }
    }

    pub fn browser_call(&mut self, method: &str, params: Value) -> Result<Value> {
        self.send(method, params, None)
    }

    /// A command to the page's session.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value> {
        let s = self.session.clone();
        self.send(method, params, Some(s))
    }

    /// Evaluates an expression in the page (promises awaited) and returns its JSON value.
    pub fn eval(&mut self, expr: &str) -> Result<Value> {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expr, "awaitPromise": true, "returnByValue": true, "userGesture": true}),
        )?;
        if let Some(ex) = r.get("exceptionDetails") {
            let text = ex["exception"]["description"]
                .as_str()
                .or(ex["text"].as_str())
                .unwrap_or("exception");
            return Err(format!("page: {text}"));
        }
        Ok(r["result"]["value"].clone())
    }

    pub fn navigate(&mut self, url: &str) -> Result<()> {
        self.call("Page.navigate", json!({"url": url})).map(|_| ())
    }

    pub fn screenshot(&mut self, path: &Path) -> Result<()> {
        let r = self.call("Page.captureScreenshot", json!({"format": "png"}))?;
        let data = base64_decode(r["data"].as_str().ok_or("no screenshot data")?)?;
        std::fs::write(path, data).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// A left click at a point of the viewport, in CSS pixels.
    pub fn click(&mut self, x: f64, y: f64) -> Result<()> {
        self.call(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseMoved", "x": x, "y": y}),
        )?;
        for ty in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": ty, "x": x, "y": y, "button": "left", "buttons": 1, "clickCount": 1}),
            )?;
            std::thread::sleep(Duration::from_millis(60));
        }
        Ok(())
    }

    /// One key press and release (`key_code` is the legacy keyCode, e.g. 65 for A).
    pub fn key(&mut self, key_code: u32, key: &str) -> Result<()> {
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyDown", "windowsVirtualKeyCode": key_code, "key": key, "text": key}),
        )?;
        std::thread::sleep(Duration::from_millis(60));
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyUp", "windowsVirtualKeyCode": key_code, "key": key}),
        )?;
        Ok(())
    }

    /// Inbound RTP stats of every RTCPeerConnection the page made (read through the injected hook).
    pub fn rtp_stats(&mut self) -> Result<RtpStats> {
        let v = self.eval(RTP_STATS)?;
        Ok(RtpStats {
            pcs: v["pcs"].as_u64().unwrap_or(0),
            frames_decoded: v["framesDecoded"].as_u64().unwrap_or(0),
            width: v["width"].as_u64().unwrap_or(0),
            height: v["height"].as_u64().unwrap_or(0),
            codec: v["codec"].as_str().unwrap_or("").to_owned(),
            audio_samples: v["audioSamples"].as_u64().unwrap_or(0),
            audio_energy: v["audioEnergy"].as_f64().unwrap_or(0.0),
        })
    }

    /// How many RTCPeerConnections the page made, and the video frames the newest one decoded.
    pub fn newest_peer(&mut self) -> Result<(u64, u64)> {
        let v = self.eval(
            "(async () => { const pcs = window.__pcs || []; const pc = pcs[pcs.length - 1]; let f = 0; \
             if (pc && pc.connectionState !== 'closed') (await pc.getStats()).forEach(r => { \
               if (r.type === 'inbound-rtp' && r.kind === 'video') f = Math.max(f, r.framesDecoded || 0); }); \
             return [pcs.length, f]; })()",
        )?;
        Ok((v[0].as_u64().unwrap_or(0), v[1].as_u64().unwrap_or(0)))
    }

    pub fn close(mut self) {
        let _ = self.browser_call("Browser.close", json!({}));
        self.proc.stop(Duration::from_secs(3));
    }
}

const RTP_STATS: &str = r#"(async () => {
  const out = {pcs: (window.__pcs || []).length, framesDecoded: 0, width: 0, height: 0, codec: '',
               audioSamples: 0, audioEnergy: 0};
  for (const pc of window.__pcs || []) {
    if (pc.connectionState === 'closed') continue;
    const st = await pc.getStats(); const codecs = {};
    st.forEach(r => { if (r.type === 'codec') codecs[r.id] = r.mimeType; });
    st.forEach(r => {
      if (r.type !== 'inbound-rtp') return;
      if (r.kind === 'video' && (r.framesDecoded || 0) >= out.framesDecoded) {
        out.framesDecoded = r.framesDecoded || 0; out.width = r.frameWidth || 0; out.height = r.frameHeight || 0;
        out.codec = codecs[r.codecId] || '';
      }
      if (r.kind === 'audio') {
        out.audioSamples = Math.max(out.audioSamples, r.totalSamplesReceived || 0);
        out.audioEnergy = Math.max(out.audioEnergy, r.totalAudioEnergy || 0);
      }
    });
  }
  return out;
})()"#;

#[derive(Debug, Clone, Default)]
pub struct RtpStats {
    pub pcs: u64,
    pub frames_decoded: u64,
    pub width: u64,
    pub height: u64,
    pub codec: String,
    pub audio_samples: u64,
    /// Sum over samples of the squared level (0..1); grows fast when a tone plays, barely in silence.
    pub audio_energy: f64,
}

/// Standard base64 (CDP's screenshots and our pixel transfers).
pub fn base64_decode(s: &str) -> Result<Vec<u8>> {
    let val = |c: u8| -> Result<u32> {
        Ok(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(format!("bad base64 byte {c}")),
        } as u32)
    };
    let bytes: Vec<u8> = s
        .bytes()
        .filter(|&c| c != b'=' && !c.is_ascii_whitespace())
        .collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c)? << (18 - 6 * i);
        }
        let take = chunk.len().saturating_sub(1);
        out.extend_from_slice(&n.to_be_bytes()[1..1 + take]);
    }
    Ok(out)
}

/// A grey-level picture (what the comparisons work on).
#[derive(Clone)]
pub struct Gray {
    pub width: usize,
    pub height: usize,
    pub px: Vec<u8>,
}

impl Gray {
    pub fn at(&self, x: usize, y: usize) -> u8 {
        self.px[y * self.width + x]
    }

    /// Mean over `b`×`b` blocks: makes the comparison indifferent to codec blur of 1-bit dither.
    pub fn blocks(&self, b: usize) -> Gray {
        let (w, h) = (self.width / b, self.height / b);
        let mut px = Vec::with_capacity(w * h);
        for by in 0..h {
            for bx in 0..w {
                let mut sum = 0u32;
                for y in by * b..(by + 1) * b {
                    for x in bx * b..(bx + 1) * b {
                        sum += self.at(x, y) as u32;
                    }
                }
                px.push((sum / (b * b) as u32) as u8);
            }
        }
        Gray {
            width: w,
            height: h,
            px,
        }
    }

    /// Share of pixels whose levels differ by more than `tol`.
    pub fn diff_share(&self, other: &Gray, tol: u8) -> f64 {
        assert_eq!((self.width, self.height), (other.width, other.height));
        let n = self
            .px
            .iter()
            .zip(&other.px)
            .filter(|(a, b)| a.abs_diff(**b) > tol)
            .count();
        n as f64 / self.px.len() as f64
    }

    /// Pixels that differ, as a mask.
    pub fn changed(&self, other: &Gray) -> Vec<bool> {
        self.px.iter().zip(&other.px).map(|(a, b)| a != b).collect()
    }

    /// Distinct levels (a blank or uniform picture has one).
    pub fn levels(&self) -> usize {
        let mut seen = [false; 256];
        self.px.iter().for_each(|&p| seen[p as usize] = true);
        seen.iter().filter(|&&s| s).count()
    }

    pub fn save_png(&self, path: &Path) -> Result<()> {
        let f = File::create(path).map_err(|e| e.to_string())?;
        let mut enc = png::Encoder::new(
            std::io::BufWriter::new(f),
            self.width as u32,
            self.height as u32,
        );
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| e.to_string())?;
        w.write_image_data(&self.px).map_err(|e| e.to_string())
    }
}

fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((r as u32 * 299 + g as u32 * 587 + b as u32 * 114) / 1000) as u8
}

/// The picture the page shows, drawn at frame resolution from the `<video>` (H.264) or taken from the
/// `<canvas>` (PNG mode), as grey levels.
pub fn page_picture(b: &mut Browser, png_mode: bool) -> Result<Gray> {
    let expr = format!(
        r#"(() => {{
      const png = {png_mode};
      const v = document.querySelector('video'), cv = document.querySelector('canvas');
      const w = png ? cv.width : v.videoWidth, h = png ? cv.height : v.videoHeight;
      if (!w || !h) return null;
      let data;
      if (png) data = cv.getContext('2d').getImageData(0, 0, w, h).data;
      else {{ const c = new OffscreenCanvas(w, h); const g = c.getContext('2d'); g.drawImage(v, 0, 0, w, h);
             data = g.getImageData(0, 0, w, h).data; }}
      const out = new Uint8Array(w * h);
      for (let i = 0; i < w * h; i++) out[i] = (data[4*i] * 299 + data[4*i+1] * 587 + data[4*i+2] * 114) / 1000;
      let s = ''; for (let i = 0; i < out.length; i += 0x8000) s += String.fromCharCode(...out.subarray(i, i + 0x8000));
      return {{w, h, b64: btoa(s)}};
    }})()"#
    );
    let v = b.eval(&expr)?;
    if v.is_null() {
        return Err("the page shows no picture yet".into());
    }
    let px = base64_decode(v["b64"].as_str().ok_or("no pixels")?)?;
    let (width, height) = (
        v["w"].as_u64().unwrap_or(0) as usize,
        v["h"].as_u64().unwrap_or(0) as usize,
    );
    if px.len() != width * height {
        return Err(format!(
            "page picture: {} bytes for {width}x{height}",
            px.len()
        ));
    }
    Ok(Gray { width, height, px })
}

// Shared-memory layout, from `docs/ipc-v4-abi.md` (read independently of our own crate).
const SHM_WIDTH: usize = 16;
const SHM_HEIGHT: usize = 20;
const SHM_PIXEL_FORMAT: usize = 24;
const SHM_READY_INDEX: usize = 60;
const SHM_FRAMES: usize = 15676;
const SHM_FRAME_SIZE: usize = 1920 * 1080 * 4;
const SHM_STRIDE: usize = 1920 * 4;
const PIXFMT_BGRA: u32 = 1;

/// The emulator's newest published frame, read from its shared memory file (the independent truth).
pub fn emulator_frame(pid: u32) -> Result<Gray> {
    let path = format!("/dev/shm/macemu-video-{pid}");
    let mut f = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    let mut head = vec![0u8; 64];
    f.read_exact(&mut head)
        .map_err(|e| format!("{path}: {e}"))?;
    let u32_at = |o: usize| u32::from_le_bytes([head[o], head[o + 1], head[o + 2], head[o + 3]]);
    let width = u32_at(SHM_WIDTH) as usize;
    let height = u32_at(SHM_HEIGHT) as usize;
    let format = u32_at(SHM_PIXEL_FORMAT);
    let ready = u32_at(SHM_READY_INDEX) as usize;
    if ready >= 3 || width == 0 || height == 0 || width > 1920 || height > 1080 {
        return Err(format!(
            "implausible shm header: {width}x{height} ready {ready}"
        ));
    }
    f.seek(SeekFrom::Start(
        (SHM_FRAMES + ready * SHM_FRAME_SIZE) as u64,
    ))
    .map_err(|e| e.to_string())?;
    let mut raw = vec![0u8; height * SHM_STRIDE];
    f.read_exact(&mut raw)
        .map_err(|e| format!("{path}: frame: {e}"))?;
    let mut px = Vec::with_capacity(width * height);
    for y in 0..height {
        for p in raw[y * SHM_STRIDE..][..width * 4].chunks_exact(4) {
            // BGRA: bytes B,G,R,A; ARGB: bytes A,R,G,B.
            px.push(if format == PIXFMT_BGRA {
                luma(p[2], p[1], p[0])
            } else {
                luma(p[1], p[2], p[3])
            });
        }
    }
    Ok(Gray { width, height, px })
}

/// Pixels that change by themselves (clock, blinking caret) over `span`: input effects are looked for
/// outside them.
pub fn restless_mask(pid: u32, span: Duration) -> Result<Vec<bool>> {
    let first = emulator_frame(pid)?;
    let mut mask = vec![false; first.px.len()];
    let end = Instant::now() + span;
    while Instant::now() < end {
        std::thread::sleep(Duration::from_millis(100));
        let f = emulator_frame(pid)?;
        for (m, c) in mask.iter_mut().zip(first.changed(&f)) {
            *m |= c;
        }
    }
    Ok(grow(&mask, first.width, 4))
}

/// Widens a mask by `r` pixels in each direction.
fn grow(mask: &[bool], width: usize, r: usize) -> Vec<bool> {
    let height = mask.len() / width;
    let mut out = vec![false; mask.len()];
    for y in 0..height {
        for x in 0..width {
            if mask[y * width + x] {
                for yy in y.saturating_sub(r)..(y + r + 1).min(height) {
                    for xx in x.saturating_sub(r)..(x + r + 1).min(width) {
                        out[yy * width + xx] = true;
                    }
                }
            }
        }
    }
    out
}

/// Number of pixels that differ between two frames outside `mask`.
pub fn changed_outside(a: &Gray, b: &Gray, mask: &[bool]) -> usize {
    a.px.iter()
        .zip(&b.px)
        .zip(mask)
        .filter(|((x, y), m)| x != y && !**m)
        .count()
}
