//! What the in-process streaming tests share: a test emulator that publishes a known, moving picture
//! (and a tone) through the real v4 IPC, a server started on free loopback ports, the headless viewer
//! set up as those tests use it, and the picture-quality check against the published frames.

use crate::viewer::{Received, VideoDecode, Viewer, ViewerOptions};
use macemu_ipc::{FrameMeta, InputMessage, PixelFormat, Publisher, Rect};
use macemu_stream::peer::PeerOptions;
use macemu_stream::server::{self, Codec, ServeConfig, ServerHandle};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Tests that run an emulator share the machine's pid-keyed IPC names: one at a time.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub const W: u32 = 512;
pub const H: u32 = 342;
pub const TONE_HZ: f32 = 440.0;

/// The picture the test emulator shows: a Mac-like desktop whose colours depend on `variant`, plus
/// a block that moves with the frame number (so frames keep changing).
pub fn block_x(n: u64) -> u32 {
    (n.wrapping_mul(3) % (W as u64 - 40)) as u32
}

/// `n == u64::MAX`: the picture without the block.
pub fn pixel(x: u32, y: u32, n: u64, variant: u8) -> (u8, u8, u8) {
    let bx = block_x(n);
    if n != u64::MAX && (bx..bx + 32).contains(&x) && (200..232).contains(&y) {
        return (0, 0, 0);
    }
    if y < 20 {
        return (255, 255, 255);
    }
    if (y / 24 + x / 64).is_multiple_of(2) {
        match variant {
            0 => (200, 60, 40),
            _ => (40, 90, 220),
        }
    } else {
        ((x / 2) as u8, (y / 2) as u8, 128)
    }
}

pub struct TestEmulator {
    pub pid: u32,
    pub sleeper: Child,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    inputs: Arc<Mutex<Vec<InputMessage>>>,
    pub frame_no: Arc<std::sync::atomic::AtomicU64>,
    /// While set, the picture stops changing (frames still come, with an empty dirty rectangle).
    pub frozen: Arc<AtomicBool>,
}

impl TestEmulator {
    /// Publishes under the pid of a `sleep` child, so every test emulator has a live pid of its own.
    pub fn start(variant: u8, format: PixelFormat) -> TestEmulator {
        let sleeper = Command::new("sleep")
            .arg("120")
            .spawn()
            .expect("spawn sleep");
        Self::start_as(sleeper, variant, format)
    }

    pub fn start_as(sleeper: Child, variant: u8, format: PixelFormat) -> TestEmulator {
        let pid = sleeper.id();
        let stop = Arc::new(AtomicBool::new(false));
        let inputs = Arc::new(Mutex::new(Vec::new()));
        let frame_no = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let frozen = Arc::new(AtomicBool::new(false));
        let (s, i, f, fz) = (
            stop.clone(),
            inputs.clone(),
            frame_no.clone(),
            frozen.clone(),
        );
        let thread = std::thread::spawn(move || {
            let publisher = Publisher::create_with_size(pid, W, H).expect("publisher");
            let (mut frames, mut audio, mut input) = publisher.split();
            frames.set_state(macemu_ipc::EmulatorState::Running);
            let mut last: Option<u64> = None;
            let mut phase = 0usize;
            // The static part of the picture, in the publisher's byte order.
            let base: Vec<[u8; 4]> = (0..H)
                .flat_map(|y| (0..W).map(move |x| (x, y)))
                .map(|(x, y)| {
                    let (r, g, b) = pixel(x, y, u64::MAX, variant);
                    match format {
                        PixelFormat::Bgra => [b, g, r, 255],
                        PixelFormat::Argb => [255, r, g, b],
                    }
                })
                .collect();
            let mut next = Instant::now();
            while !s.load(Ordering::Relaxed) {
                while let Ok(Some(m)) = input.poll() {
                    if let InputMessage::AudioRequest { .. } = m {
                        // 20 ms of a 440 Hz tone at 44.1 kHz stereo.
                        let mut buf = Vec::with_capacity(882 * 2);
                        for k in 0..882 {
                            let v = ((phase + k) as f32 * TONE_HZ * 2.0 * std::f32::consts::PI
                                / 44_100.0)
                                .sin();
                            let v = (v * 10_000.0) as i16;
                            buf.extend_from_slice(&[v, v]);
                        }
                        phase += 882;
                        let _ = audio.push(44_100, 2, &buf);
                    } else {
                        i.lock().unwrap().push(m);
                    }
                }
                if Instant::now() >= next {
                    next += Duration::from_millis(16);
                    let frozen = fz.load(Ordering::Relaxed);
                    let n = match last {
                        None => 0,
                        Some(l) if frozen => l,
                        Some(l) => l + 1,
                    };
                    let mut fm = frames.frame_mut(W, H, format).expect("frame");
                    let bx = block_x(n);
                    for y in 0..H {
                        let row = fm.row_mut(y);
                        for (x, px) in base[(y * W) as usize..((y + 1) * W) as usize]
                            .iter()
                            .enumerate()
                        {
                            row[x * 4..x * 4 + 4].copy_from_slice(px);
                        }
                        if (200..232).contains(&y) {
                            for x in bx..bx + 32 {
                                let px = if format == PixelFormat::Bgra {
                                    [0, 0, 0, 255]
                                } else {
                                    [255, 0, 0, 0]
                                };
                                row[x as usize * 4..x as usize * 4 + 4].copy_from_slice(&px);
                            }
                        }
                    }
                    // Frame buffers rotate, so every frame is fully redrawn; what changed is the block.
                    let dirty = match last {
                        None => Rect {
                            x: 0,
                            y: 0,
                            width: W,
                            height: H,
                        },
                        Some(l) if l == n => Rect::default(),
                        Some(l) => {
                            let (px, nx) = (block_x(l), bx);
                            let x0 = px.min(nx);
                            Rect {
                                x: x0,
                                y: 200,
                                width: px.max(nx) + 32 - x0,
                                height: 32,
                            }
                        }
                    };
                    let meta = FrameMeta {
                        dirty,
                        cursor_x: 100,
                        cursor_y: 50,
                        cursor_visible: true,
                    };
                    frames.publish(&meta).expect("publish");
                    f.store(n, Ordering::Relaxed);
                    last = Some(n);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        TestEmulator {
            pid,
            sleeper,
            stop,
            thread: Some(thread),
            inputs,
            frame_no,
            frozen,
        }
    }

    /// Drops the publisher (shm and socket go away) but keeps the pid's process.
    pub fn stop_publishing(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    pub fn inputs(&self) -> Vec<InputMessage> {
        self.inputs.lock().unwrap().clone()
    }
}

impl Drop for TestEmulator {
    fn drop(&mut self) {
        self.stop_publishing();
        let _ = self.sleeper.kill();
        let _ = self.sleeper.wait();
    }
}

pub async fn start_server(pid: u32, codec: Codec, token: Option<&str>) -> ServerHandle {
    let cfg = ServeConfig {
        http_port: 0,
        signaling_port: 0,
        target_pid: Some(pid),
        codec,
        token: token.map(str::to_owned),
        peer: PeerOptions {
            stun: None,
            include_loopback: true,
            loopback_only: true,
            ..PeerOptions::default()
        },
        refresh: Duration::from_millis(500),
        ..ServeConfig::default()
    };
    server::start(cfg).await.expect("server starts")
}

/// The headless viewer as these tests use it: luma pictures and audio decoded, everything kept.
pub async fn connect_viewer(sig_port: u16, token: Option<&str>) -> Viewer {
    let mut o = ViewerOptions::new(std::net::SocketAddr::from(([127, 0, 0, 1], sig_port)))
        .keep_everything();
    o.token = token.map(str::to_owned);
    o.video = VideoDecode::Luma;
    o.audio = true;
    // The tests keep decoded pictures only to look at the newest ones.
    o.keep_pictures = 64;
    Viewer::connect(o).await.expect("signaling connects")
}

/// Waits for `f`, at most `secs`; fails the test with the signaling seen so far.
pub async fn wait_for<F: Fn(&Received) -> bool>(v: &Viewer, what: &str, secs: u64, f: F) {
    if let Err(e) = v.wait_for(what, Duration::from_secs(secs), f).await {
        panic!("{e}; signaling: {:?}", v.signals());
    }
}

/// BT.601 limited-range luma of the published picture, from the standard's coefficients.
pub fn expected_luma(n: u64, variant: u8) -> Vec<u8> {
    let mut y = Vec::with_capacity((W * H) as usize);
    for yy in 0..H {
        for x in 0..W {
            let (r, g, b) = pixel(x, yy, n, variant);
            y.push(
                (16.0 + (65.481 * r as f64 + 128.553 * g as f64 + 24.966 * b as f64) / 255.0)
                    .round() as u8,
            );
        }
    }
    y
}

/// PSNR of `got` against the best-matching recent frame number (the stream lags a few frames).
pub fn best_psnr(got: &[u8], around: u64, variant: u8) -> f64 {
    let mut best = 0f64;
    for n in around.saturating_sub(40)..=around + 2 {
        let want = expected_luma(n, variant);
        let mse = got
            .iter()
            .zip(&want)
            .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
            .sum::<f64>()
            / got.len() as f64;
        let p = if mse == 0.0 {
            99.0
        } else {
            10.0 * (255.0f64.powi(2) / mse).log10()
        };
        best = best.max(p);
    }
    best
}
