//! Cross-process frame handoff: from the publisher starting `publish()` to the subscriber in
//! another process holding a valid, claimed `FrameView` of that frame.
//!
//! `cargo bench -p macemu-ipc --bench handoff` (add `-- --quick` for 1,000 frames per mode).
//! The bench re-executes itself as the publisher process. The publisher writes its
//! CLOCK_MONOTONIC time into the first 8 bytes of each frame just before `publish()`; the reader
//! subtracts it from its own clock once `wait_frame` returns. Two modes: paced at 60 Hz, and
//! unpaced (the publisher publishes back to back; the reader takes the newest frame each time).
//! Reference measured in the same run: the latency of a bare cross-process wakeup (a pipe write
//! to a blocked reader), i.e. what any eventfd/pipe-based handoff costs at minimum.

use macemu_ipc::{
    Command as Cmd, FrameMeta, InputMessage, PixelFormat, Publisher, Rect, Subscriber,
};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROLE: &str = "MACEMU_BENCH_ROLE";
const WIDTH: u32 = 512;
const HEIGHT: u32 = 342;

fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

fn sleep_until(deadline: Instant) {
    let now = Instant::now();
    if deadline > now {
        std::thread::sleep(deadline - now);
    }
}

/// Child: the emulator side.
fn publisher(mode: &str, frames: u64) {
    let (mut fp, _audio, mut input) = Publisher::create(std::process::id())
        .expect("publisher")
        .split();
    println!("READY");
    std::io::stdout().flush().unwrap();
    // Wait for the subscriber's Start.
    loop {
        if let Ok(Some(InputMessage::Command(Cmd::Start))) =
            input.recv_timeout(Duration::from_secs(30))
        {
            break;
        }
    }
    let period = Duration::from_nanos(1_000_000_000 / 60);
    let start = Instant::now();
    for n in 1..=frames {
        if mode == "60hz" {
            sleep_until(start + period * n as u32);
        }
        let f = fp.frame_mut(WIDTH, HEIGHT, PixelFormat::Bgra).unwrap();
        f.data[8..16].copy_from_slice(&n.to_ne_bytes());
        f.data[..8].copy_from_slice(&now_ns().to_ne_bytes());
        fp.publish(&FrameMeta {
            dirty: Rect::full(WIDTH, HEIGHT),
            ..Default::default()
        })
        .unwrap();
        let _ = input.poll();
    }
    // Stay until told to stop so the reader can finish.
    loop {
        match input.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(InputMessage::Command(Cmd::Stop))) | Err(_) | Ok(None) => break,
            _ => {}
        }
    }
}

/// Child: writes `n` timestamps into a pipe, one every `period_us` (the reference wakeup).
fn pipe_writer(n: u64, period_us: u64) {
    let mut out = std::io::stdout().lock();
    for _ in 0..n {
        std::thread::sleep(Duration::from_micros(period_us));
        out.write_all(&now_ns().to_ne_bytes()).unwrap();
        out.flush().unwrap();
    }
}

struct Stats {
    p50: f64,
    p99: f64,
    max: f64,
    n: usize,
}

fn stats(mut v: Vec<u64>) -> Stats {
    v.sort_unstable();
    let us = |x: u64| x as f64 / 1000.0;
    Stats {
        p50: us(v[v.len() / 2]),
        p99: us(v[(v.len() * 99 / 100).min(v.len() - 1)]),
        max: us(*v.last().unwrap()),
        n: v.len(),
    }
}

fn run_handoff(mode: &str, frames: u64) -> (Stats, u64) {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .env(ROLE, "publisher")
        .args([mode, &frames.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "READY");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sub = loop {
        match Subscriber::connect(pid) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => panic!("connect: {e}"),
        }
    };
    sub.sender()
        .send(&InputMessage::Command(Cmd::Start))
        .unwrap();
    let mut lat = Vec::with_capacity(frames as usize);
    let mut last_n = 0;
    while last_n < frames {
        let v = sub
            .wait_frame(Duration::from_secs(5))
            .unwrap()
            .expect("frame");
        let t = now_ns();
        assert_eq!((v.width, v.height), (WIDTH, HEIGHT));
        let sent = u64::from_ne_bytes(v.data[..8].try_into().unwrap());
        last_n = u64::from_ne_bytes(v.data[8..16].try_into().unwrap());
        lat.push(t.saturating_sub(sent));
    }
    sub.sender()
        .send(&InputMessage::Command(Cmd::Stop))
        .unwrap();
    child.wait().unwrap();
    (stats(lat), frames)
}

fn run_pipe(n: u64, period_us: u64) -> Stats {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .env(ROLE, "pipe")
        .args([n.to_string(), period_us.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut lat = Vec::new();
    let mut buf = [0u8; 8];
    for _ in 0..n {
        out.read_exact(&mut buf).unwrap();
        lat.push(now_ns().saturating_sub(u64::from_ne_bytes(buf)));
    }
    child.wait().unwrap();
    stats(lat)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match std::env::var(ROLE).as_deref() {
        Ok("publisher") => return publisher(&args[1], args[2].parse().unwrap()),
        Ok("pipe") => return pipe_writer(args[1].parse().unwrap(), args[2].parse().unwrap()),
        _ => {}
    }
    let quick = args.iter().any(|a| a == "--quick");
    let frames = if quick { 1_000 } else { 10_000 };
    // The wakeup floor depends on how long the reader slept (CPU idle states, a virtual
    // machine's halt), so each mode is compared with a pipe paced like it.
    let fast_ref = run_pipe(if quick { 500 } else { 2_000 }, 1_000);
    let paced_ref = run_pipe(if quick { 120 } else { 600 }, 16_667);
    for (name, r) in [("1 kHz", &fast_ref), ("60 Hz", &paced_ref)] {
        println!(
            "reference: pipe wakeup at {name}       p50 {:7.1} µs  p99 {:7.1} µs  max {:8.1} µs  (n={})",
            r.p50, r.p99, r.max, r.n
        );
    }
    for mode in ["60hz", "full"] {
        let (s, published) = run_handoff(mode, frames);
        let reference = if mode == "60hz" {
            &paced_ref
        } else {
            &fast_ref
        };
        println!(
            "handoff {mode:>4}: publish -> valid view     p50 {:7.1} µs  p99 {:7.1} µs  max {:8.1} µs  \
             (frames seen {} of {published}; p50 {:.2}x, p99 {:.2}x its reference)",
            s.p50,
            s.p99,
            s.max,
            s.n,
            s.p50 / reference.p50,
            s.p99 / reference.p99
        );
    }
}
