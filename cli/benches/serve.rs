//! `serve` figures from the outside, as an operator would see them: `macemu-cli emulate` (demo ROM,
//! default settings) and `macemu-cli serve --target-pid` run as separate processes on free loopback
//! ports, and the headless viewer (`macemu_viewer::viewer`) watches like a browser.
//!
//! * `static` (default, 30 s): nobody types, the screen stays still. CPU use of the serve and
//!   emulator processes (utime + stime from /proc over the window ÷ wall time, in % of one core) and
//!   the frames sent. Goal: serve under 2 % of a core.
//! * `soak` (default 30 min): the viewer types a key every frame over the DataChannel, so the screen
//!   keeps changing. Resident memory and open file descriptors of both processes are sampled every
//!   10 s; after a warm-up (`--warmup`, 60 s by default, at most half the run) they must not grow:
//!   the run fails if either process's RSS grows by 5 % or more, or its descriptor count grows at all.
//!   The RSS slope over the last half tells a leak (still growing) from buffers that filled up.
//!
//! Run: `cargo bench -p macemu-cli --bench serve -- [static|soak] [--secs N] [--warmup N]
//! [--serve-arg ARG]...` (each ARG passed on to `serve`). The
//! children's logs go to a temporary directory (printed, kept when the run fails); the children are
//! stopped on every way out, Ctrl-C included.

use macemu_stream::datachannel::ClientEvent;
use macemu_viewer::viewer::{fetch_status, VideoDecode, Viewer, ViewerOptions, ViewerStats};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const EXE: &str = env!("CARGO_BIN_EXE_macemu-cli");
/// Linux reports utime and stime in USER_HZ ticks, 100 a second on every architecture it supports.
const TICKS_PER_S: f64 = 100.0;
const STATIC_GOAL_PCT: f64 = 2.0;
const SOAK_RSS_LIMIT_PCT: f64 = 5.0;
const SAMPLE_EVERY: Duration = Duration::from_secs(10);
const PROGRESS_EVERY: Duration = Duration::from_secs(30);

type Result<T> = std::result::Result<T, String>;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Static,
    Soak,
}

struct Args {
    mode: Mode,
    secs: u64,
    warmup: u64,
    /// More arguments for `serve` (`--serve-arg ARG`, repeated), e.g. `--refresh-ms=50` for an A/B.
    serve_args: Vec<String>,
}

fn parse_args() -> Result<Args> {
    let mut mode = Mode::Static;
    let mut secs = None;
    let mut warmup = 60;
    let mut serve_args = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "static" => mode = Mode::Static,
            "soak" => mode = Mode::Soak,
            "--secs" => {
                let v = it.next().ok_or("--secs needs a number of seconds")?;
                secs = Some(
                    v.parse::<u64>()
                        .ok()
                        .filter(|&s| s > 0)
                        .ok_or(format!("--secs {v:?}: not a positive number"))?,
                );
            }
            "--warmup" => {
                let v = it.next().ok_or("--warmup needs a number of seconds")?;
                warmup = v
                    .parse()
                    .map_err(|_| format!("--warmup {v:?}: not a number of seconds"))?;
            }
            "--serve-arg" => serve_args.push(it.next().ok_or("--serve-arg needs an argument")?),
            // `cargo bench` passes --bench to every bench binary.
            "--bench" => {}
            "-h" | "--help" => return Err(
                "usage: serve [static|soak] [--secs N] [--warmup N] [--serve-arg ARG]...\n  static: 30 s by default\n  \
                     soak: 1800 s by default; RSS and descriptors compared from the end of the \
                     warm-up (60 s by default, at most half the run)"
                    .into(),
            ),
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    let secs = secs.unwrap_or(match mode {
        Mode::Static => 30,
        Mode::Soak => 1800,
    });
    Ok(Args {
        mode,
        secs,
        warmup,
        serve_args,
    })
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // webrtc-rs warns about every candidate it closes on teardown; that is not news.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new(
                        "warn,webrtc=error,webrtc_ice=error,webrtc_sctp=error",
                    )
                }),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(args)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("serve bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The emulator and server processes; stopped (SIGTERM, then SIGKILL) when dropped.
struct Children {
    list: std::sync::Mutex<Vec<(&'static str, Child)>>,
}

impl Children {
    fn spawn(&self, name: &'static str, args: &[String], log: &Path) -> Result<u32> {
        let file = std::fs::File::create(log).map_err(|e| format!("{}: {e}", log.display()))?;
        let child = Command::new(EXE)
            .args(args)
            .stdin(Stdio::null())
            .stdout(file.try_clone().map_err(|e| e.to_string())?)
            .stderr(file)
            .spawn()
            .map_err(|e| format!("starting {EXE} {}: {e}", args.join(" ")))?;
        let pid = child.id();
        self.lock().push((name, child));
        Ok(pid)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(&'static str, Child)>> {
        self.list.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Fails if a child has exited.
    fn check(&self) -> Result<()> {
        for (name, c) in self.lock().iter_mut() {
            if let Ok(Some(st)) = c.try_wait() {
                return Err(format!("{name} exited: {st}"));
            }
        }
        Ok(())
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        // The server first (it would otherwise log the emulator going away), then the emulator.
        for (name, c) in self.lock().iter_mut().rev() {
            if matches!(c.try_wait(), Ok(Some(_))) {
                continue;
            }
            // SIGTERM lets the emulator remove its shared memory and socket.
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(50));
            }
            if matches!(c.try_wait(), Ok(None)) {
                eprintln!("{name} did not stop on SIGTERM; killing it");
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

fn free_port() -> Result<u16> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free loopback port: {e}"))
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // The command name is parenthesised and may hold spaces: count fields after the last ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or("bad /proc stat")?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> Result<f64> {
        f.get(i)
            .and_then(|v| v.parse().ok())
            .ok_or(format!("/proc/{pid}/stat field {}", i + 3))
    };
    // Fields 14 and 15 of the whole line; the first after ')' is field 3.
    Ok((field(11)? + field(12)?) / TICKS_PER_S)
}

/// Resident set size in KiB.
fn rss_kib(pid: u32) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("/proc/{pid}/status: {e}"))?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or(format!("no VmRSS in /proc/{pid}/status"))
}

/// CPU seconds of each thread of a process, summed by thread name (tokio workers share one).
fn thread_cpu(pid: u32) -> Vec<(String, f64)> {
    let mut by_name: Vec<(String, f64)> = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return by_name;
    };
    for t in tasks.flatten() {
        let Ok(tid) = t.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let name = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm"))
            .map(|n| n.trim().to_owned())
            .unwrap_or_default();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"));
        let Some(secs) = stat.ok().and_then(|s| {
            let f: Vec<f64> = s
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .skip(11)
                .take(2)
                .filter_map(|v| v.parse().ok())
                .collect();
            (f.len() == 2).then(|| (f[0] + f[1]) / TICKS_PER_S)
        }) else {
            continue;
        };
        match by_name.iter_mut().find(|(n, _)| *n == name) {
            Some(e) => e.1 += secs,
            None => by_name.push((name, secs)),
        }
    }
    by_name
}

fn fd_count(pid: u32) -> Result<usize> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .map_err(|e| format!("/proc/{pid}/fd: {e}"))
}

struct Setup {
    children: Children,
    serve_pid: u32,
    emu_pid: u32,
    http: SocketAddr,
    viewer: Viewer,
    logs: PathBuf,
}

async fn start(serve_args: &[String]) -> Result<Setup> {
    let logs = std::env::temp_dir().join(format!("macemu-serve-bench-{}", std::process::id()));
    std::fs::create_dir_all(&logs).map_err(|e| format!("{}: {e}", logs.display()))?;
    let children = Children {
        list: Default::default(),
    };
    let emu_pid = children.spawn("emulate", &["emulate".into()], &logs.join("emulate.log"))?;
    let (http_port, sig_port) = (free_port()?, free_port()?);
    let serve_pid = children.spawn(
        "serve",
        &[
            "serve".into(),
            "--target-pid".into(),
            emu_pid.to_string(),
            "--http-port".into(),
            http_port.to_string(),
            "--signaling-port".into(),
            sig_port.to_string(),
        ]
        .into_iter()
        .chain(serve_args.iter().cloned())
        .collect::<Vec<_>>(),
        &logs.join("serve.log"),
    )?;
    let http = SocketAddr::from((Ipv4Addr::LOCALHOST, http_port));
    let sig = SocketAddr::from((Ipv4Addr::LOCALHOST, sig_port));
    println!(
        "emulate pid {emu_pid}, serve pid {serve_pid} (http {http}, signaling {sig}); logs in {}",
        logs.display()
    );

    // The server is up and attached to the emulator.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        children.check()?;
        if let Ok(s) = fetch_status(http, None, Duration::from_secs(2)).await {
            if s["emulator"]["connected"] == true {
                break;
            }
        }
        if Instant::now() > deadline {
            return Err("serve did not attach to the emulator within 30 s".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut o = ViewerOptions::new(sig);
    // Counting is enough; decoding would only add this process's load to the machine.
    o.video = VideoDecode::Off;
    o.keep_pictures = 0;
    o.keep_audio_frames = 0;
    o.keep_messages = 0;
    let viewer = Viewer::connect(o).await.map_err(|e| e.to_string())?;
    viewer
        .wait_for("the first frame", Duration::from_secs(30), |r| {
            r.stats.frames > 0
        })
        .await
        .map_err(|e| e.to_string())?;
    viewer
        .wait_data_channel(Duration::from_secs(10))
        .await
        .map_err(|e| e.to_string())?;
    Ok(Setup {
        children,
        serve_pid,
        emu_pid,
        http,
        viewer,
        logs,
    })
}

async fn run(args: Args) -> Result<bool> {
    let setup = start(&args.serve_args).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| e.to_string())?;
    let outcome = tokio::select! {
        r = async {
            match args.mode {
                Mode::Static => static_screen(&setup, args.secs).await,
                Mode::Soak => soak(&setup, args.secs, args.warmup).await,
            }
        } => r,
        _ = tokio::signal::ctrl_c() => Err("interrupted".into()),
        _ = term.recv() => Err("terminated".into()),
    };
    let Setup {
        children,
        viewer,
        logs,
        ..
    } = setup;
    viewer.close().await;
    drop(children);
    if matches!(outcome, Ok(true)) {
        let _ = std::fs::remove_dir_all(&logs);
    }
    outcome
}

struct Counters {
    at: Instant,
    serve_cpu: f64,
    emu_cpu: f64,
    viewer: ViewerStats,
    encoded: u64,
    keyframes: u64,
    repeats: u64,
    audio_sent: u64,
    audio_skipped: u64,
    serve_threads: Vec<(String, f64)>,
    rss: [u64; 2],
}

async fn counters(s: &Setup) -> Result<Counters> {
    let st = fetch_status(s.http, None, Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())?;
    let n = |k: &str| st[k].as_u64().ok_or(format!("no {k} in {st}"));
    Ok(Counters {
        at: Instant::now(),
        serve_cpu: cpu_seconds(s.serve_pid)?,
        emu_cpu: cpu_seconds(s.emu_pid)?,
        viewer: s.viewer.stats(),
        encoded: n("frames_encoded")?,
        keyframes: n("keyframes")?,
        repeats: st["repeats"].as_u64().unwrap_or(0),
        audio_sent: st["audio"]["packets"].as_u64().unwrap_or(0),
        audio_skipped: st["audio"]["silent_skipped"].as_u64().unwrap_or(0),
        serve_threads: thread_cpu(s.serve_pid),
        rss: [rss_kib(s.serve_pid)?, rss_kib(s.emu_pid)?],
    })
}

async fn static_screen(s: &Setup, secs: u64) -> Result<bool> {
    // The demo ROM draws its desktop at boot; let that and the first keyframe settle.
    tokio::time::sleep(Duration::from_secs(5)).await;
    s.children.check()?;
    println!("measuring {secs} s of a static screen...");
    let a = counters(s).await?;
    tokio::time::sleep(Duration::from_secs(secs)).await;
    s.children.check()?;
    let b = counters(s).await?;
    let wall = b.at.duration_since(a.at).as_secs_f64();
    let pct = |x: f64| x / wall * 100.0;
    let (serve, emu) = (pct(b.serve_cpu - a.serve_cpu), pct(b.emu_cpu - a.emu_cpu));
    let received = b.viewer.frames - a.viewer.frames;
    let encoded = b.encoded - a.encoded;
    let bytes = b.viewer.video_bytes - a.viewer.video_bytes;
    println!();
    println!("static screen, {wall:.1} s, demo ROM, default settings, one headless viewer");
    println!(
        "  {:<26} {:>16} {:>12} {:>12}",
        "process", "CPU, % of a core", "RSS start", "RSS end"
    );
    for (i, (name, pid, cpu)) in [("serve", s.serve_pid, serve), ("emulate", s.emu_pid, emu)]
        .into_iter()
        .enumerate()
    {
        println!(
            "  {:<26} {cpu:>16.2} {:>8} KiB {:>8} KiB",
            format!("{name} (pid {pid})"),
            a.rss[i],
            b.rss[i]
        );
    }
    println!(
        "  frames sent {encoded} ({:.1}/s, {} keyframes, {} repeats built without the encoder), \
         received by the viewer {received} ({:.1} kbit/s of video)",
        encoded as f64 / wall,
        b.keyframes - a.keyframes,
        b.repeats - a.repeats,
        bytes as f64 * 8.0 / 1000.0 / wall
    );
    println!(
        "  audio packets sent {:.1}/s, silent slots skipped {:.1}/s, received by the viewer {:.1}/s",
        (b.audio_sent - a.audio_sent) as f64 / wall,
        (b.audio_skipped - a.audio_skipped) as f64 / wall,
        (b.viewer.audio_packets - a.viewer.audio_packets) as f64 / wall
    );
    // Where serve's time goes (threads that exited in between are not counted).
    let mut threads: Vec<(String, f64)> = b
        .serve_threads
        .iter()
        .map(|(n, t1)| {
            let t0 = a
                .serve_threads
                .iter()
                .find(|(m, _)| m == n)
                .map_or(0.0, |e| e.1);
            (n.clone(), pct(t1 - t0))
        })
        .filter(|(_, p)| *p > 0.0)
        .collect();
    threads.sort_by(|x, y| y.1.total_cmp(&x.1));
    let list: Vec<String> = threads.iter().map(|(n, p)| format!("{n} {p:.2}")).collect();
    println!("  serve by thread, % of a core: {}", list.join(", "));
    let met = serve < STATIC_GOAL_PCT;
    println!(
        "  goal: serve under {STATIC_GOAL_PCT} % of a core on a static screen: {}",
        if met { "met" } else { "NOT met" }
    );
    Ok(true)
}

#[derive(Clone)]
struct Sample {
    at: Duration,
    rss: [u64; 2],
    fds: [usize; 2],
}

fn sample(s: &Setup, t0: Instant) -> Result<Sample> {
    Ok(Sample {
        at: t0.elapsed(),
        rss: [rss_kib(s.serve_pid)?, rss_kib(s.emu_pid)?],
        fds: [fd_count(s.serve_pid)?, fd_count(s.emu_pid)?],
    })
}

/// Least-squares slope of RSS over time, KiB a minute.
fn slope_per_min(samples: &[&Sample], i: usize) -> f64 {
    let n = samples.len() as f64;
    if samples.len() < 2 {
        return 0.0;
    }
    let xs: Vec<f64> = samples.iter().map(|s| s.at.as_secs_f64() / 60.0).collect();
    let ys: Vec<f64> = samples.iter().map(|s| s.rss[i] as f64).collect();
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx).powi(2)).sum();
    if sxx == 0.0 {
        0.0
    } else {
        sxy / sxx
    }
}

async fn soak(s: &Setup, secs: u64, warmup: u64) -> Result<bool> {
    let total = Duration::from_secs(secs);
    let warmup = Duration::from_secs(warmup).min(total / 2);
    println!(
        "soak: typing a key every frame for {secs} s; memory and descriptors compared after a {} s \
         warm-up",
        warmup.as_secs()
    );
    // The typist: a key down and up every 1/60 s, cycling A..Z (browser keyCodes).
    let sent = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let typist = {
        let (sent, failed) = (sent.clone(), failed.clone());
        let v = &s.viewer;
        async move {
            let mut tick = tokio::time::interval(Duration::from_micros(16_667));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            let t0 = Instant::now();
            for n in 0u64.. {
                tick.tick().await;
                let key_code = 65 + (n % 26) as u16;
                let t = t0.elapsed().as_secs_f64() * 1000.0;
                for down in [true, false] {
                    let e = ClientEvent::Key { key_code, down, t };
                    match v.send(&e).await {
                        Ok(()) => sent.fetch_add(1, Ordering::Relaxed),
                        Err(_) => failed.fetch_add(1, Ordering::Relaxed),
                    };
                }
            }
        }
    };
    let watch = async {
        let t0 = Instant::now();
        let mut samples = Vec::new();
        let mut base: Option<(Sample, Counters)> = None;
        let mut next_sample = Duration::ZERO;
        let mut next_progress = PROGRESS_EVERY;
        let v0 = s.viewer.stats();
        loop {
            s.children.check()?;
            let el = t0.elapsed();
            if el >= next_sample {
                let smp = sample(s, t0)?;
                if base.is_none() && el >= warmup {
                    println!(
                        "  {:>5.0} s  baseline: serve {} KiB, {} fds; emulate {} KiB, {} fds",
                        el.as_secs_f64(),
                        smp.rss[0],
                        smp.fds[0],
                        smp.rss[1],
                        smp.fds[1]
                    );
                    base = Some((smp.clone(), counters(s).await?));
                }
                samples.push(smp);
                next_sample += SAMPLE_EVERY;
            }
            if el >= next_progress {
                let v = s.viewer.stats();
                let last = samples.last().expect("sampled at 0 s");
                println!(
                    "  {:>5.0} s  {} frames received ({:.1}/s), {} keys sent; serve {} KiB {} fds, \
                     emulate {} KiB {} fds",
                    el.as_secs_f64(),
                    v.frames - v0.frames,
                    (v.frames - v0.frames) as f64 / el.as_secs_f64(),
                    sent.load(Ordering::Relaxed) / 2,
                    last.rss[0],
                    last.fds[0],
                    last.rss[1],
                    last.fds[1]
                );
                next_progress += PROGRESS_EVERY;
            }
            if el >= total {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let end = sample(s, t0)?;
        let end_counters = counters(s).await?;
        let (start, start_c) = base.ok_or("no baseline sample")?;
        Ok::<_, String>((start, start_c, end, end_counters, samples))
    };
    let (start, start_c, end, end_c, samples) = tokio::select! {
        r = watch => r?,
        _ = typist => return Err("the typist stopped".into()),
    };

    let window = end.at.saturating_sub(start.at).as_secs_f64().max(1e-3);
    let frames = end_c.viewer.frames - start_c.viewer.frames;
    let encoded = end_c.encoded - start_c.encoded;
    let growth = |a: u64, b: u64| (b as f64 - a as f64) / a.max(1) as f64 * 100.0;
    println!();
    println!(
        "soak, {secs} s (measured over the last {window:.0} s), a key typed every frame, one \
         headless viewer"
    );
    println!(
        "  {:<20} {:>12} {:>12} {:>8} {:>9} {:>9}",
        "process", "RSS start", "RSS end", "growth", "fds start", "fds end"
    );
    let mut ok = true;
    for (i, (name, pid)) in [("serve", s.serve_pid), ("emulate", s.emu_pid)]
        .into_iter()
        .enumerate()
    {
        let g = growth(start.rss[i], end.rss[i]);
        let bad = g >= SOAK_RSS_LIMIT_PCT || end.fds[i] > start.fds[i];
        ok &= !bad;
        println!(
            "  {:<20} {:>8} KiB {:>8} KiB {:>7.2}% {:>9} {:>9}{}",
            format!("{name} (pid {pid})"),
            start.rss[i],
            end.rss[i],
            g,
            start.fds[i],
            end.fds[i],
            if bad { "  <- grew" } else { "" }
        );
    }
    let peak = |i: usize| samples.iter().map(|s| s.rss[i]).max().unwrap_or(0);
    // A leak keeps growing; buffers filling up and allocator warm-up level off. The slope over the
    // second half of the measured window tells which.
    let measured: Vec<&Sample> = samples.iter().filter(|x| x.at >= start.at).collect();
    let late = &measured[measured.len() / 2..];
    println!(
        "  peak RSS: serve {} KiB, emulate {} KiB ({} samples, every {} s)",
        peak(0),
        peak(1),
        samples.len(),
        SAMPLE_EVERY.as_secs()
    );
    println!(
        "  RSS slope after the warm-up: serve {:+.0} KiB/min, emulate {:+.0} KiB/min; over the \
         second half: serve {:+.0} KiB/min, emulate {:+.0} KiB/min",
        slope_per_min(&measured, 0),
        slope_per_min(&measured, 1),
        slope_per_min(late, 0),
        slope_per_min(late, 1)
    );
    println!(
        "  frames: encoded {encoded} ({:.1}/s), received {frames} ({:.1}/s), {} packets lost; keys \
         sent {}, {} sends failed",
        encoded as f64 / window,
        frames as f64 / window,
        end_c.viewer.packets_lost,
        sent.load(Ordering::Relaxed) / 2,
        failed.load(Ordering::Relaxed)
    );
    if frames == 0 {
        println!("  the viewer received no frames while measuring");
        ok = false;
    }
    println!(
        "  verdict: {}",
        if ok {
            format!("no growth (RSS under {SOAK_RSS_LIMIT_PCT} %, descriptors steady)")
        } else {
            "FAILED".into()
        }
    );
    Ok(ok)
}
