//! Emulator figures for docs/PERFORMANCE.md (a bench binary, not a timed test):
//!
//! * emulated speed at `--speed max` as a multiple of a real Mac Plus, for the demo ROM idle
//!   (it sleeps in STOP between interrupts, as a real system does) and busy (a key typed every
//!   frame, so it draws glyphs and scrolls continuously);
//! * CPU use of the whole emulator process at real speed with a reader attached, in % of a core;
//! * the video thread's per-refresh cost (convert + dirty rect) as a ratio to `memcpy` of the
//!   same output bytes.
//!
//! Run: `cargo bench -p macemu-emulator --bench emulator`.

use macemu_core::mac::MacPlus;
use macemu_emulator::video::{Converter, Palette, PixelFormat, Scope, Source};
use macemu_emulator::{Emulator, EmulatorConfig, Speed, DEMO_ROM};
use std::hint::black_box;
use std::time::{Duration, Instant};

const FRAME_HZ: f64 = 60.15;

fn booted() -> MacPlus {
    let mut mac = MacPlus::new(DEMO_ROM, 4 << 20).expect("machine");
    mac.set_rtc_seconds(3_000_000_000);
    for _ in 0..60 {
        mac.run_frame();
    }
    mac
}

/// Frames per wall second divided by 60.15.
fn speed_multiple(mut mac: MacPlus, frames: u32, mut input: impl FnMut(&mut MacPlus, u32)) -> f64 {
    let t = Instant::now();
    for n in 0..frames {
        input(&mut mac, n);
        black_box(mac.run_frame());
    }
    f64::from(frames) / t.elapsed().as_secs_f64() / FRAME_HZ
}

/// utime + stime of this process, in seconds.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // /proc reports in USER_HZ, 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    // Speed at --speed max.
    let idle = speed_multiple(booted(), 3_000, |_, _| {});
    // 'a'..'z' as Mac key codes, a key down and up every frame: continuous drawing and scrolling.
    const KEYS: [u8; 8] = [0x00, 0x0B, 0x08, 0x02, 0x0E, 0x03, 0x05, 0x04];
    let busy = speed_multiple(booted(), 3_000, |mac, n| {
        let k = KEYS[(n / 2) as usize % KEYS.len()];
        mac.key(k, n % 2 == 0);
    });
    println!("emulated speed at --speed max: idle desk {idle:.0}x a real Plus, typing/scrolling {busy:.0}x");

    // Per-refresh conversion vs memcpy of the output bytes.
    let mac = booted();
    let screen = mac.screen().to_vec();
    let mut out = vec![0u8; 7680 * 342];
    let mut copy_dst = vec![0u8; 512 * 4 * 342];
    let copy_src = vec![0x5Au8; 512 * 4 * 342];
    let mut conv = Converter::new();
    let reps = 2_000;
    let t = Instant::now();
    for i in 0..reps {
        conv.invalidate(); // worst case: the whole screen changed
        let mut s = screen.clone();
        let n = s.len();
        s[i % n] ^= 1;
        black_box(
            conv.convert(
                &Source::mac_plus(&s),
                &Palette::mono(),
                PixelFormat::Bgra,
                &mut out,
                7680,
                Scope::Full,
            )
            .expect("convert"),
        );
    }
    let convert = t.elapsed() / reps as u32;
    let t = Instant::now();
    for _ in 0..reps {
        copy_dst.copy_from_slice(black_box(&copy_src));
        black_box(&mut copy_dst);
    }
    let memcpy = t.elapsed() / reps as u32;
    println!(
        "per-refresh 512x342 conversion: {:.1} us, {:.2}x memcpy of the {} output bytes ({:.1} us)",
        convert.as_secs_f64() * 1e6,
        convert.as_secs_f64() / memcpy.as_secs_f64(),
        copy_src.len(),
        memcpy.as_secs_f64() * 1e6
    );

    // CPU use at real speed with a reader attached, as with a server.
    let emu = Emulator::start(EmulatorConfig {
        speed: Speed::Real,
        ..EmulatorConfig::demo()
    })
    .expect("emulator");
    let mut sub = macemu_ipc::Subscriber::connect(emu.pid()).expect("subscriber");
    std::thread::sleep(Duration::from_millis(500));
    let (c0, t0) = (cpu_seconds(), Instant::now());
    let mut frames = 0u64;
    while t0.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(v)) = sub.wait_frame(Duration::from_millis(100)) {
            black_box(v.data[0]);
            frames += 1;
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - c0;
    emu.stop();
    println!(
        "real speed: {:.1} frames/s published, process CPU {:.1}% of one core (emulator + reader)",
        frames as f64 / wall,
        cpu / wall * 100.0
    );
}
