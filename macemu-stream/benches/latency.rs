//! Latency through the whole system in real Chromium (a bench binary, not a test: it reports figures).
//!
//! `cargo bench -p macemu-stream --bench latency [-- --secs 20 --trials 40 --loads 10]` (needs root,
//! `ip` and Chromium, like the e2e tests: the browser and `macemu-cli serve` run in a network
//! namespace). `--only present|photon|connect` runs one of the measurements; `--serve-log DIR` keeps
//! each `serve`'s log there (with `RUST_LOG` from the environment, default `warn`); `--demo` plays
//! `macemu-cli emulate` (demo ROM) for `connect` instead of the synthetic source.
//!
//! - **capture → present**, at 512×342, 1024×768 and 1920×1080, split into stages: this process
//!   publishes a 60.15 Hz picture that changes every frame (a moving block, the v4 protocol as any
//!   emulator speaks it) and `macemu-cli serve` streams it to the server's own page. Each video
//!   frame's RTP timestamp is its capture time (the frame-ready time the emulator wrote), so the
//!   page's `requestVideoFrameCallback` turns it back into an age at each point: frame ready in shm →
//!   last packet received → presented → expected display.
//! - **input → photon**, on `macemu-cli emulate` with the demo ROM: a key event dispatched to the page
//!   (`KeyboardEvent.timeStamp`) → the first presented frame whose "Key $kk" status field changed, and
//!   a mouse move (absolute mode) → the first presented frame in which the arrow moved. This includes
//!   the ROM's own handling (the M0110 keyboard exchange; the cursor drawn at the next VBL). Times run
//!   to `presentationTime` (the frame handed to the compositor) and, for reference, to headless
//!   Chromium's `expectedDisplayTime`, which on a static page is no display time (it can even precede
//!   the presentation); frames after each slow event are printed to show where it waited.
//! - **DataChannel round trip**: the page's pings (one a second): the whole echo through the emulator,
//!   and its network share (the round trip less the time the ping spent in server and emulator).
//! - **page load → first frame** (`connect`): `--loads` fresh loads of the server's page (cache off, a
//!   query that differs each time, `about:blank` and a second's pause between them so each starts
//!   with no viewer), against the same 60.15 Hz source at 512×342; each load split into the stages
//!   the page marks on its own clock (`window.macemu.timeline`, ms after navigation start). One load
//!   before them warms the browser up and is not counted.

use macemu_ipc::{FrameMeta, PixelFormat, Publisher, Rect};
use macemu_viewer::e2e::*;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const HTTP_PORT: u16 = 18280;
const SIGNALING_PORT: u16 = 18291;
/// The demo ROM's "Key $kk" status field (frame pixels x, y, w, h).
const KEY_FIELD: (u32, u32, u32, u32) = (160, 208, 90, 20);

struct Args {
    secs: u64,
    trials: usize,
    loads: usize,
    /// `connect` against `macemu-cli emulate` (demo ROM) instead of the synthetic source.
    demo: bool,
    only: Option<String>,
    serve_log: Option<PathBuf>,
}

fn args() -> Args {
    let mut a = Args {
        secs: 20,
        trials: 40,
        loads: 10,
        demo: false,
        only: None,
        serve_log: None,
    };
    let v: Vec<String> = std::env::args().collect();
    a.demo = v.iter().any(|x| x == "--demo");
    for w in v.windows(2) {
        match w[0].as_str() {
            "--secs" => a.secs = w[1].parse().unwrap_or(a.secs),
            "--trials" => a.trials = w[1].parse().unwrap_or(a.trials),
            "--loads" => a.loads = w[1].parse().unwrap_or(a.loads),
            "--only" => a.only = Some(w[1].clone()),
            "--serve-log" => a.serve_log = Some(PathBuf::from(&w[1])),
            _ => {}
        }
    }
    a
}

fn main() {
    // `cargo bench` passes `--bench`; anything else we do not know is ignored.
    let a = args();
    if let Some(o) = a.only.as_deref() {
        if !["present", "photon", "connect"].contains(&o) {
            eprintln!("--only takes present, photon or connect, not {o}");
            std::process::exit(2);
        }
    }
    let run = |what: &str| a.only.as_deref().is_none_or(|o| o == what);
    let Some(cli) = e2e_cli() else { return };
    let logs = a.serve_log.as_deref();
    let mut failed = false;
    let mut show = |what: &str, r: Result<String>| match r {
        Ok(r) => println!("{r}"),
        Err(e) => {
            failed = true;
            eprintln!("{what}: {e}");
        }
    };
    if run("present") {
        for (w, h) in [(512, 342), (1024, 768), (1920, 1080)] {
            show(
                &format!("capture → present {w}x{h}"),
                capture_to_present(&cli, w, h, a.secs, logs),
            );
        }
    }
    if run("photon") {
        show(
            "input → photon",
            input_to_photon(&cli, a.trials, a.secs, logs),
        );
    }
    if run("connect") {
        show(
            "page load → first frame",
            load_to_first_frame(&cli, a.loads, a.demo, logs),
        );
    }
    if failed {
        std::process::exit(1);
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "n {:>5}  p50 {:>6.1} ms  p90 {:>6.1} ms  p99 {:>6.1} ms  max {:>6.1} ms",
        v.len(),
        percentile(&v, 0.5),
        percentile(&v, 0.9),
        percentile(&v, 0.99),
        v.last().copied().unwrap_or(f64::NAN)
    )
}

/// A 60.15 Hz source under this process's pid: a mid-grey desktop with a 64×64 block moving one step a
/// frame, dirty rectangle = old ∪ new block, paced to absolute deadlines.
struct Source {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Result<u64>>>,
}

impl Source {
    fn start(w: u32, h: u32) -> Result<Source> {
        let publisher = Publisher::create_with_size(std::process::id(), w, h)
            .map_err(|e| format!("publisher: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || -> Result<u64> {
            let (mut frames, _audio, mut input) = publisher.split();
            frames.set_state(macemu_ipc::EmulatorState::Running);
            // The Mac Plus's 60.15 Hz: against the browser's 60 Hz display the phase sweeps through
            // every offset (a source locked to the display would measure one lucky or unlucky phase).
            let period = Duration::from_nanos(16_625_104);
            let steps = (w - 64) / 8;
            let block_x = |n: u64| (n % u64::from(steps)) as u32 * 8;
            let mut next = Instant::now();
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                while let Ok(Some(_)) = input.poll() {}
                let mut fm = frames
                    .frame_mut(w, h, PixelFormat::Bgra)
                    .map_err(|e| e.to_string())?;
                let bx = block_x(n);
                for y in 0..h {
                    let row = fm.row_mut(y);
                    row[..w as usize * 4].fill(0x80);
                    if (100..164).contains(&y) {
                        for px in row[bx as usize * 4..(bx as usize + 64) * 4].chunks_exact_mut(4) {
                            px.copy_from_slice(&[0x20, 0x20, 0xe0, 0xff]);
                        }
                    }
                }
                let dirty = if n == 0 {
                    Rect {
                        x: 0,
                        y: 0,
                        width: w,
                        height: h,
                    }
                } else {
                    let p = block_x(n - 1);
                    let x0 = p.min(bx);
                    Rect {
                        x: x0,
                        y: 100,
                        width: p.max(bx) + 64 - x0,
                        height: 64,
                    }
                };
                frames
                    .publish(&FrameMeta {
                        dirty,
                        cursor_x: 0,
                        cursor_y: 0,
                        cursor_visible: false,
                    })
                    .map_err(|e| e.to_string())?;
                n += 1;
                next += period;
                let now = Instant::now();
                if next > now {
                    std::thread::sleep(next - now);
                } else {
                    next = now; // fell behind: do not burst to catch up
                }
            }
            Ok(n)
        });
        Ok(Source {
            stop,
            thread: Some(thread),
        })
    }

    fn finish(mut self) -> Result<u64> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            _ => Err("source thread panicked".into()),
        }
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `macemu-cli serve` in a fresh namespace for the emulator `pid`, answering on its HTTP port.
struct Server {
    serve: Proc,
    tmp: TempDir,
    ns: Netns,
    /// Where to keep the log when done.
    keep_log: Option<PathBuf>,
}

impl Server {
    fn start(cli: &Path, pid: u32, tag: u8, logs: Option<&Path>, name: &str) -> Result<Server> {
        let ns = Netns::create(tag)?;
        let tmp = TempDir::new("latency")?;
        let log = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into());
        let serve = Launch::serve(&ns, cli, HTTP_PORT, SIGNALING_PORT)
            .args(["--codec", "h264", "--target-pid", &pid.to_string()])
            .env("RUST_LOG", &log)
            .start(tmp.0.join("serve.log"))?;
        let s = Server {
            serve,
            tmp,
            ns,
            keep_log: logs.map(|d| d.join(format!("serve-{name}.log"))),
        };
        Ok(s)
    }

    fn status(&self) -> Option<serde_json::Value> {
        let body = self
            .ns
            .curl(&format!("http://127.0.0.1:{HTTP_PORT}/api/status"))?;
        serde_json::from_str(&body).ok()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(to) = &self.keep_log {
            self.serve.stop(Duration::from_secs(3));
            let _ = std::fs::create_dir_all(to.parent().unwrap_or(Path::new(".")));
            if let Err(e) = std::fs::copy(&self.serve.log, to) {
                eprintln!("keeping {}: {e}", to.display());
            }
        }
    }
}

/// `serve` and Chromium on its page, playing.
struct Rig {
    browser: Browser,
    server: Server,
}

fn rig(cli: &Path, pid: u32, tag: u8, logs: Option<&Path>, name: &str) -> Result<Rig> {
    let server = Server::start(cli, pid, tag, logs, name)?;
    let mut browser = Browser::launch(Some(&server.ns), server.tmp.0.join("chromium.log"))?;
    browser.navigate(&format!("http://127.0.0.1:{HTTP_PORT}/"))?;
    wait_for(Duration::from_secs(30), || {
        browser.rtp_stats().ok().filter(|s| s.frames_decoded >= 10)
    })
    .ok_or_else(|| format!("no H.264 frames decoded in 30 s:\n{}", server.serve.tail()))?;
    Ok(Rig { browser, server })
}

/// Collects, for every presented frame, its age (page clock = server clock: same host) when the
/// browser received its last packet, when it was handed to the compositor (`presentationTime`, about
/// when the callback runs) and when it is expected on the display (`expectedDisplayTime`).
const C2P_PROBE: &str = r#"(async () => {
  const P = await import('/protocol.js');
  const v = document.querySelector('video');
  window.__c2p = { receive: [], present: [], display: [], toPresent: [], toDisplay: [] };
  const age = (m, t) => P.captureToPresentMs(m.rtpTimestamp, performance.timeOrigin + t);
  const cb = (now, m) => {
    if (m.rtpTimestamp !== undefined) {
      const d = age(m, m.expectedDisplayTime);
      if (d !== null) {
        window.__c2p.display.push(d);
        window.__c2p.present.push(age(m, m.presentationTime));
        if (m.receiveTime) {
          window.__c2p.receive.push(age(m, m.receiveTime));
          window.__c2p.toPresent.push(m.presentationTime - m.receiveTime);
        }
        window.__c2p.toDisplay.push(m.expectedDisplayTime - m.presentationTime);
      }
    }
    v.requestVideoFrameCallback(cb);
  };
  v.requestVideoFrameCallback(cb);
  return true;
})()"#;

fn numbers(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
        .unwrap_or_default()
}

fn capture_to_present(
    cli: &Path,
    w: u32,
    h: u32,
    secs: u64,
    logs: Option<&Path>,
) -> Result<String> {
    let source = Source::start(w, h)?;
    let mut r = rig(
        cli,
        std::process::id(),
        1,
        logs,
        &format!("present-{w}x{h}"),
    )?;
    let b = &mut r.browser;
    let size = b.rtp_stats()?;
    if (size.width, size.height) != (u64::from(w), u64::from(h)) {
        return Err(format!("page plays {}x{}", size.width, size.height));
    }
    std::thread::sleep(Duration::from_secs(3)); // jitter buffer settles
    b.eval(C2P_PROBE)?;
    // Pings every 100 ms during the window give the server-side stages of the same run.
    b.eval("(() => { const s = window.macemu.stats; s.echoes = []; s.startPings(s.send, 100); return true; })()")?;
    let f0 = b.rtp_stats()?.frames_decoded;
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let c2p = b.eval("window.__c2p")?;
    let ages = numbers(&c2p["display"]);
    let frames = b.rtp_stats()?.frames_decoded - f0;
    let window = start.elapsed().as_secs_f64();
    // Chromium's own per-frame means: jitter buffer, decode, first packet → decoded.
    let means = b.eval(
        "(async () => { let o = null; for (const pc of window.__pcs) (await pc.getStats()).forEach(r => { \
           if (r.type === 'inbound-rtp' && r.kind === 'video' && r.framesDecoded) o = { \
             jitter: 1000 * r.jitterBufferDelay / Math.max(1, r.jitterBufferEmittedCount), \
             decode: 1000 * r.totalDecodeTime / r.framesDecoded, \
             processing: r.totalProcessingDelay ? 1000 * r.totalProcessingDelay / r.framesDecoded : null, \
             assembly: r.totalAssemblyTime ? 1000 * r.totalAssemblyTime / Math.max(1, r.framesAssembledFromMultiplePackets) : null }; }); \
           return o; })()",
    )?;
    let echoes = b.eval("window.macemu.stats.echoes")?;
    let published = source.finish()?;
    drop(r);
    if ages.len() < 10 {
        return Err(format!("only {} frames had an age", ages.len()));
    }
    let stage = |key: &str| -> Vec<f64> {
        echoes
            .as_array()
            .map(|a| a.iter().filter_map(|e| e[key].as_f64()).collect())
            .unwrap_or_default()
    };
    let mean = |k: &str| {
        means[k]
            .as_f64()
            .map_or("–".into(), |v| format!("{v:.1} ms"))
    };
    let rows = [
        ("frame ready → server wake (pings)", stage("wakeMs")),
        ("wake → converted and encoded (pings)", stage("encodeMs")),
        ("encoded → sent (pings)", stage("sendMs")),
        ("capture → last packet received", numbers(&c2p["receive"])),
        (
            "last packet received → presented",
            numbers(&c2p["toPresent"]),
        ),
        (
            "presented → expected display (vsync)",
            numbers(&c2p["toDisplay"]),
        ),
        ("capture → presented", numbers(&c2p["present"])),
        ("capture → expected display", ages),
    ];
    let mut out = format!(
        "capture → present {w}x{h}: decoded {:.1} fps over {:.0} s (source 60.15 Hz, {published} frames published)\n",
        frames as f64 / window,
        window,
    );
    for (name, v) in rows {
        out += &format!("  {name:<40} {}\n", summary(v));
    }
    out += &format!(
        "  Chromium's means per frame: jitter buffer {}, decode {}, first packet → decoded {}, assembly {}\n",
        mean("jitter"),
        mean("decode"),
        mean("processing"),
        mean("assembly"),
    );
    out += &format!(
        "  ping echo through the emulator {}\n  DataChannel round trip (network share) {}",
        summary(stage("rttMs")),
        summary(stage("networkMs"))
    );
    Ok(out)
}

/// The page's ping echoes so far: whole round trip and its network (DataChannel) share.
fn ping_figures(b: &mut Browser) -> Result<String> {
    // The page keeps the newest echo; sample it for a few seconds to gather several.
    let mut rtt = Vec::new();
    let mut net = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let end = Instant::now() + Duration::from_secs(8);
    while Instant::now() < end {
        let l = b.eval("window.macemu.stats.latency")?;
        if let Some(seq) = l["sequence"].as_u64() {
            if seen.insert(seq) {
                rtt.extend(l["rttMs"].as_f64());
                net.extend(l["networkMs"].as_f64());
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(format!(
        "ping echo through the emulator: {}\n  DataChannel round trip (network share): {}",
        summary(rtt),
        summary(net)
    ))
}

/// In the page: on each presented frame, compare a field of the picture with the frame before the
/// input event (a key or a mouse move); the first frame presented after the event in which the field
/// differs gives the latency, to `presentationTime` (the frame handed to the compositor) and to
/// `expectedDisplayTime`. Every frame after the event is kept (`trace`) to show where a slow one waited.
const PHOTON_PROBE: &str = r#"(() => {
  const v = document.querySelector('video');
  const c = document.createElement('canvas'); c.width = v.videoWidth; c.height = v.videoHeight;
  const g = c.getContext('2d', { willReadFrequently: true });
  const probe = { field: [0, 0, 1, 1], t0: null, base: null, result: null, trace: [] };
  const grab = () => { const [x, y, w, h] = probe.field; g.drawImage(v, 0, 0); return g.getImageData(x, y, w, h).data; };
  window.__photon = probe;
  let captureToPresentMs = null;
  import('/protocol.js').then((m) => { captureToPresentMs = m.captureToPresentMs; });
  const start = (e) => { if (probe.t0 === null && probe.base) probe.t0 = e.timeStamp; };
  window.addEventListener('keydown', start, true);
  window.addEventListener('mousemove', start, true);
  const cb = (now, m) => {
    const px = grab();
    if (probe.t0 === null) probe.base = px;
    else if (probe.result === null) {
      let changed = 0;
      for (let i = 0; i < px.length; i += 4) if (Math.abs(px[i + 1] - probe.base[i + 1]) > 96) changed++;
      const age = captureToPresentMs && m.rtpTimestamp !== undefined
        ? captureToPresentMs(m.rtpTimestamp, performance.timeOrigin + m.presentationTime) : null;
      const at = m.presentationTime - probe.t0;
      // [captured, presented, expected display] ms after the event, and the changed pixels.
      probe.trace.push([Math.round(age === null ? NaN : at - age), Math.round(at),
        Math.round(m.expectedDisplayTime - probe.t0), changed]);
      if (changed >= 6 && m.presentationTime > probe.t0)
        probe.result = [m.presentationTime - probe.t0, m.expectedDisplayTime - probe.t0];
    }
    v.requestVideoFrameCallback(cb);
  };
  v.requestVideoFrameCallback(cb);
  window.__photonArm = (field) => {
    probe.field = field; probe.t0 = null; probe.base = null; probe.result = null; probe.trace = [];
  };
  return [c.width, c.height];
})()"#;

/// Latencies of one kind of input, to presentation and to expected display, and the slow ones' traces.
#[derive(Default)]
struct Photons {
    present: Vec<f64>,
    display: Vec<f64>,
    missed: usize,
    slow: Vec<String>,
}

impl Photons {
    /// Arms the probe on `field`, lets a baseline build up, runs `input` and waits for the change.
    fn trial(
        &mut self,
        b: &mut Browser,
        field: (u32, u32, u32, u32),
        settle: Duration,
        input: impl FnOnce(&mut Browser) -> Result<()>,
    ) -> Result<()> {
        let (x, y, w, h) = field;
        b.eval(&format!("window.__photonArm([{x}, {y}, {w}, {h}])"))?;
        std::thread::sleep(settle);
        input(b)?;
        let res = wait_for(Duration::from_secs(2), || {
            let r = b.eval("window.__photon.result").ok()?;
            Some((r[0].as_f64()?, r[1].as_f64()?))
        });
        if res.is_none_or(|(present, _)| present > 60.0) {
            let trace = b.eval("window.__photon.trace")?;
            self.slow
                .push(format!("{:?} ms: {trace}", res.map(|r| r.0.round())));
        }
        match res {
            Some((present, display)) => {
                self.present.push(present);
                self.display.push(display);
            }
            None => self.missed += 1,
        }
        Ok(())
    }

    fn report(self, what: &str, trials: usize) -> Result<String> {
        if self.present.len() < trials / 2 {
            return Err(format!(
                "{what}: only {} of {trials} were seen on screen",
                self.present.len()
            ));
        }
        let mut out = format!(
            "{what} presented (rVFC presentationTime): {}  ({} not seen within 2 s)\n  \
             {what}, expected display: {}",
            summary(self.present),
            self.missed,
            summary(self.display),
        );
        for s in self.slow {
            out += &format!(
                "\n  slow (frames after the event: [captured, presented, expected display, changed pixels]) {s}"
            );
        }
        Ok(out)
    }
}

/// Where the mouse trials move the cursor: two points on the desktop strip between the menu bar and
/// the window (frame pixels), and the field that covers the arrow at both.
const MOUSE_POINTS: [(u32, u32); 2] = [(200, 28), (232, 28)];
const MOUSE_FIELD: (u32, u32, u32, u32) = (196, 26, 56, 20);

fn input_to_photon(cli: &Path, trials: usize, secs: u64, logs: Option<&Path>) -> Result<String> {
    let tmp = TempDir::new("latency-emu")?;
    let emu = Launch::emulate(cli)
        .env("RUST_LOG", "warn")
        .start(tmp.0.join("emulate.log"))?;
    let mut r = rig(cli, emu.pid(), 2, logs, "photon")?;
    let b = &mut r.browser;
    let rect = b.eval(
        "(() => { const r = document.querySelector('video').getBoundingClientRect(); \
         return [r.left, r.top, r.width, r.height]; })()",
    )?;
    let f = |i: usize| rect[i].as_f64().unwrap_or(0.0);
    // Frame pixel → page point (the video is scaled to fit).
    let at = |x: u32, y: u32| {
        (
            f(0) + (f64::from(x) + 0.5) * f(2) / 512.0,
            f(1) + (f64::from(y) + 0.5) * f(3) / 342.0,
        )
    };
    // Focus the screen (a click on the desktop pattern, where it does nothing in the ROM).
    let (x, y) = at(5, 332);
    b.click(x, y)?;
    let size = b.eval(PHOTON_PROBE)?;
    if size[0].as_u64() != Some(512) {
        return Err(format!("unexpected video size {size}"));
    }
    let deadline = Instant::now() + Duration::from_secs(secs.max(10) * 4);
    // Keys: letters whose key codes differ from the previous one, so the field changes on every press.
    let keys = [
        (65, "a"),
        (83, "s"),
        (68, "d"),
        (70, "f"),
        (74, "j"),
        (75, "k"),
    ];
    let mut key = Photons::default();
    for i in 0..trials {
        if Instant::now() > deadline {
            break;
        }
        let (code, k) = keys[i % keys.len()];
        // A stretch of frames (including the periodic refresh) to take the baseline from, at a
        // phase that drifts against the 60 Hz frame clock.
        let settle = Duration::from_millis(400 + (i as u64 * 37) % 100);
        key.trial(b, KEY_FIELD, settle, |b| {
            b.call(
                "Input.dispatchKeyEvent",
                serde_json::json!({"type": "keyDown", "windowsVirtualKeyCode": code, "key": k, "text": k}),
            )
            .map(|_| ())
        })?;
        b.call(
            "Input.dispatchKeyEvent",
            serde_json::json!({"type": "keyUp", "windowsVirtualKeyCode": code, "key": k}),
        )?;
    }
    // Mouse: the cursor hops between two points (absolute mode, the page's default).
    let mv = |b: &mut Browser, (x, y): (f64, f64)| {
        b.call(
            "Input.dispatchMouseEvent",
            serde_json::json!({"type": "mouseMoved", "x": x, "y": y}),
        )
        .map(|_| ())
    };
    let (x0, y0) = MOUSE_POINTS[0];
    mv(b, at(x0, y0))?;
    std::thread::sleep(Duration::from_millis(500));
    let mut mouse = Photons::default();
    let deadline = Instant::now() + Duration::from_secs(secs.max(10) * 4);
    for i in 0..trials {
        if Instant::now() > deadline {
            break;
        }
        let (x, y) = MOUSE_POINTS[(i + 1) % 2];
        let settle = Duration::from_millis(400 + (i as u64 * 37) % 100);
        mouse.trial(b, MOUSE_FIELD, settle, |b| mv(b, at(x, y)))?;
    }
    let pings = ping_figures(b)?;
    let tail = |e: String| format!("{e}:\n{}", r.server.serve.tail());
    let key = key.report("key press → glyph", trials).map_err(tail)?;
    let mouse = mouse.report("mouse move → cursor", trials).map_err(tail)?;
    Ok(format!(
        "input → photon 512x342 (demo ROM):\n  {key}\n  {mouse}\n  {pings}"
    ))
}

/// The page's connection stages (`web/timeline.js`), in order, with the names the report gives them.
const STAGES: [(&str, &str); 12] = [
    ("navigationStart", "navigation start"),
    ("documentReceived", "page received"),
    ("script", "script start"),
    ("wsOpen", "WebSocket open"),
    ("offer", "offer received"),
    ("answer", "answer sent"),
    ("iceConnected", "ICE connected"),
    ("peerConnected", "DTLS / peer connected"),
    ("firstPacket", "first RTP packet"),
    ("firstDecoded", "first frame decoded"),
    ("firstPresented", "first frame presented"),
    // Not on the first picture's path (input and metadata need it).
    ("channelOpen", "DataChannel open"),
];

/// One load's marks, ms after navigation start, once the first frame was presented.
const TIMELINE: &str = r#"(() => {
  const t = window.macemu && window.macemu.timeline;
  if (!t || !('firstPresented' in t.marks)) return null;
  const nav = performance.getEntriesByType('navigation')[0];
  return Object.assign({ navigationStart: 0, documentReceived: nav && nav.responseEnd }, t.marks);
})()"#;

/// `loads` fresh loads of the page against a 512×342 source; each split into the page's stages.
fn load_to_first_frame(
    cli: &Path,
    loads: usize,
    demo: bool,
    logs: Option<&Path>,
) -> Result<String> {
    // This process's 60.15 Hz picture, or `macemu-cli emulate` with the demo ROM.
    let (source, emu, _emu_tmp) = if demo {
        let tmp = TempDir::new("latency-emu")?;
        let emu = Launch::emulate(cli)
            .env("RUST_LOG", "warn")
            .start(tmp.0.join("emulate.log"))?;
        (None, Some(emu), Some(tmp))
    } else {
        (Some(Source::start(512, 342)?), None, None)
    };
    let pid = emu.as_ref().map_or(std::process::id(), Proc::pid);
    let server = Server::start(cli, pid, 3, logs, "connect")?;
    let mut b = Browser::launch(Some(&server.ns), server.tmp.0.join("chromium.log"))?;
    // Every load fetches the page and its scripts as a first visit would.
    b.call("Network.enable", serde_json::json!({}))?;
    b.call(
        "Network.setCacheDisabled",
        serde_json::json!({"cacheDisabled": true}),
    )?;
    let mut per_stage: Vec<Vec<f64>> = vec![Vec::new(); STAGES.len()];
    let mut steps: Vec<Vec<f64>> = vec![Vec::new(); STAGES.len()];
    let mut lines = Vec::new();
    for load in 0..=loads {
        // No viewer left from the previous load: each load starts as a first visit does.
        b.navigate("about:blank")?;
        wait_for(Duration::from_secs(10), || {
            let st = server.status()?;
            (st["peers"].as_u64() == Some(0) && st["peers_negotiating"].as_u64() == Some(0))
                .then_some(())
        })
        .ok_or("the previous load's viewer did not leave")?;
        std::thread::sleep(Duration::from_secs(1));
        b.navigate(&format!("http://127.0.0.1:{HTTP_PORT}/?load={load}"))?;
        let marks = wait_for(Duration::from_secs(20), || {
            b.eval(TIMELINE).ok().filter(|v| !v.is_null())
        })
        .ok_or_else(|| {
            let seen = b.eval("window.macemu && window.macemu.timeline.marks");
            format!(
                "load {load}: no frame presented in 20 s (marks: {seen:?}):\n{}",
                server.serve.tail()
            )
        })?;
        if load == 0 {
            continue; // the warm-up
        }
        let mut line = format!("  load {load:>2}:");
        let mut prev = 0.0;
        for (i, (key, _)) in STAGES.iter().enumerate() {
            let Some(t) = marks[*key].as_f64() else {
                line += &format!(" {key} –");
                continue;
            };
            per_stage[i].push(t);
            steps[i].push(t - prev);
            prev = t;
            if i > 0 {
                line += &format!(" {key} {t:.0}");
            }
        }
        lines.push(line);
    }
    let source = match source {
        Some(s) => format!("source {} frames at 60.15 Hz", s.finish()?),
        None => "source: emulate, demo ROM".into(),
    };
    let mut out = format!(
        "page load → first frame 512x342, {loads} loads (ms after navigation start; step: since the \
         stage before; {source})\n"
    );
    for (i, (_, name)) in STAGES.iter().enumerate().skip(1) {
        out += &format!(
            "  {name:<22} at {}\n  {:<22} step {}\n",
            summary(per_stage[i].clone()),
            "",
            summary(steps[i].clone())
        );
    }
    out += &lines.join("\n");
    drop(b);
    drop(server);
    drop(emu);
    Ok(out)
}
