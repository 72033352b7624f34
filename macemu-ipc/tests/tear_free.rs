//! A frame handed to a reader is never written while it is read.
//!
//! The writer fills every frame with one value derived from its frame number, at full speed.
//! The reader takes a frame, sleeps a random 0–40 ms holding it (the writer meanwhile publishes
//! hundreds of frames), then checks every pixel still equals the value of *that* frame number:
//! a partial overwrite (torn) or a complete one (replaced) would both be caught.

mod common;

use common::LivePid;
use macemu_ipc::*;
use rand::Rng;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const WIDTH: u32 = 64;
const HEIGHT: u32 = 48;
const MIN_FRAMES: u64 = 100_000;

fn value_of(frame_count: u64) -> u8 {
    (frame_count % 251) as u8 + 1
}

#[test]
fn no_torn_frames_over_100k_frames() {
    let live = LivePid::new();
    let pid = live.pid();
    let (mut frames, _audio, mut input) = Publisher::create(pid).unwrap().split();
    let published = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));

    let writer = {
        let (published, stop) = (published.clone(), stop.clone());
        thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // Accept the server and drain input now and then, as an emulator's loop would.
                if n.is_multiple_of(256) {
                    while let Ok(Some(_)) = input.poll() {}
                }
                n += 1;
                let v = value_of(n);
                let mut f = frames.frame_mut(WIDTH, HEIGHT, PixelFormat::Bgra).unwrap();
                for y in 0..HEIGHT {
                    f.row_mut(y).fill(v);
                }
                frames
                    .publish(&FrameMeta {
                        dirty: Rect::full(WIDTH, HEIGHT),
                        ..Default::default()
                    })
                    .unwrap();
                published.store(n, Ordering::Relaxed);
            }
        })
    };

    let connect_deadline = Instant::now() + Duration::from_secs(10);
    let mut sub = loop {
        match Subscriber::connect(pid) {
            Ok(s) => break s,
            Err(e) if Instant::now() < connect_deadline => {
                let _ = e;
                thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("connect: {e}"),
        }
    };

    let mut rng = rand::rng();
    let (mut reads, mut torn, mut overlapped) = (0u64, 0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(60);
    while published.load(Ordering::Relaxed) < MIN_FRAMES || reads < 50 {
        assert!(Instant::now() < deadline, "test bound exceeded");
        let v = sub
            .wait_frame(Duration::from_secs(2))
            .unwrap()
            .expect("frame");
        let before = published.load(Ordering::Relaxed);
        thread::sleep(Duration::from_millis(rng.random_range(0..=40)));
        let expect = value_of(v.frame_count);
        let intact = (0..v.height).all(|y| v.row(y).iter().all(|&b| b == expect));
        if !intact {
            torn += 1;
        }
        // The writer completed ≥ 3 frames while we held this one: without the claim, one of
        // them would have landed in our buffer.
        if published.load(Ordering::Relaxed) >= before + 3 {
            overlapped += 1;
        }
        reads += 1;
    }
    // Then a reader that never pauses, to hit the window between taking a frame and the
    // writer choosing its next buffer as often as possible.
    let (mut fast_reads, mut fast_torn) = (0u64, 0u64);
    let fast_deadline = Instant::now() + Duration::from_secs(3);
    while fast_reads < 20_000 && Instant::now() < fast_deadline {
        let v = sub
            .wait_frame(Duration::from_secs(2))
            .unwrap()
            .expect("frame");
        let expect = value_of(v.frame_count);
        if !(0..v.height).all(|y| v.row(y).iter().all(|&b| b == expect)) {
            fast_torn += 1;
        }
        fast_reads += 1;
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let total = published.load(Ordering::Relaxed);
    println!("frames published {total}, reads {reads}, reads overlapped by >= 3 writes {overlapped}, torn {torn}");
    println!("unpaused reads {fast_reads}, torn {fast_torn}");
    assert_eq!(torn, 0, "torn frames");
    assert_eq!(fast_torn, 0, "torn frames (unpaused reader)");
    assert!(fast_reads >= 1_000, "only {fast_reads} unpaused reads");
    assert!(total >= MIN_FRAMES);
    // Most reads must really be raced (the rest had near-zero sleeps or a descheduled writer).
    assert!(
        overlapped * 4 >= reads,
        "the writer must really race the reader ({overlapped}/{reads})"
    );
}
