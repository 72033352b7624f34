//! Nothing read from shared memory is trusted: a hostile writer scribbles random bytes over the
//! header (through the file, as another process would) while our reader runs. The reader must
//! only ever return frames within bounds or typed errors, never panic or hang.

mod common;

use common::LivePid;
use macemu_ipc::*;
use rand::{Rng, SeedableRng};
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn scribbled_header_gives_typed_errors_never_panics() {
    let live = LivePid::new();
    let pid = live.pid();
    let (mut frames, mut audio, mut input) = Publisher::create(pid).unwrap().split();
    let stop = Arc::new(AtomicBool::new(false));

    // An honest emulator keeps publishing.
    let emu = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let _ = input.poll();
                n = n.wrapping_add(1);
                let mut f = frames.frame_mut(320, 200, PixelFormat::Bgra).unwrap();
                f.row_mut(n % 200).fill(n as u8);
                frames.publish(&FrameMeta::default()).unwrap();
                // The audio producer reads the consumer's index from shm: garbage there must be
                // a typed error too.
                match audio.push(48_000, 2, &[1; 960]) {
                    Ok(_) | Err(IpcError::CorruptShm { .. }) => {}
                    Err(e) => panic!("audio push: {e}"),
                }
                thread::sleep(Duration::from_micros(200));
            }
        })
    };
    let mut sub = Subscriber::connect(pid).unwrap();

    let scribbler = {
        let stop = stop.clone();
        thread::spawn(move || {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(format!("/dev/shm/macemu-video-{pid}"))
                .unwrap();
            let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EED);
            let header = abi::MACEMU_HEADER_SIZE as u64;
            while !stop.load(Ordering::Relaxed) {
                // Mostly the hot metadata words, sometimes anywhere in the header/audio ring.
                let offset = if rng.random_bool(0.7) {
                    rng.random_range(0..192)
                } else {
                    rng.random_range(0..header - 8)
                };
                let len = rng.random_range(1..=8);
                let mut bytes = [0u8; 8];
                rng.fill(&mut bytes[..len]);
                file.write_at(&bytes[..len], offset).unwrap();
                if rng.random_bool(0.01) {
                    thread::sleep(Duration::from_micros(50));
                }
            }
        })
    };

    let (mut ok, mut corrupt) = (0u64, 0u64);
    let mut audio_errors = 0u64;
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        match sub.wait_frame(Duration::from_millis(20)) {
            Ok(Some(v)) => {
                // Every byte the view claims must be readable, and the geometry consistent.
                assert!(v.width >= 1 && v.width <= 1920 && v.height >= 1 && v.height <= 1080);
                assert_eq!(v.data.len(), v.stride * v.height as usize);
                assert!(v.dirty.width == 0 || v.dirty.fits(v.width, v.height));
                let sum: u64 = v.data.iter().step_by(61).map(|&b| b as u64).sum();
                std::hint::black_box(sum);
                let _ = v.row(v.height - 1);
                ok += 1;
            }
            Ok(None) => {}
            Err(IpcError::CorruptShm { .. }) | Err(IpcError::Unstable) => corrupt += 1,
            Err(e) => panic!("unexpected error kind: {e}"),
        }
        match sub.read_audio() {
            Ok(a) => {
                assert!([11_025, 22_050, 44_100, 48_000].contains(&a.rate));
                assert!(a.channels == 1 || a.channels == 2);
                assert!(a.samples.len() <= 960 * 2);
            }
            Err(IpcError::CorruptShm { .. }) => audio_errors += 1,
            Err(e) => panic!("unexpected audio error kind: {e}"),
        }
        let _ = sub.state();
    }
    stop.store(true, Ordering::Relaxed);
    scribbler.join().unwrap();
    emu.join().unwrap();
    println!("frames ok {ok}, corrupt-header errors {corrupt}, audio errors {audio_errors}");
    assert!(corrupt > 0, "the scribbler must have been noticed");
    assert!(ok > 0, "valid frames still get through between scribbles");
}
