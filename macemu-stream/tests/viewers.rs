//! Several viewers on one server, with the headless viewer (`macemu_viewer::viewer`): every viewer
//! gets the stream at the source's frame rate from a single encode, and a viewer that stops reading
//! neither slows the others nor the server, and recovers when it reads again. Loopback only.

use macemu_ipc::PixelFormat;
use macemu_stream::server::Codec;
use macemu_viewer::harness::{best_psnr, start_server, wait_for, TestEmulator, SERIAL};
use macemu_viewer::viewer::{fetch_status, VideoDecode, Viewer, ViewerOptions, ViewerStats};
use serde_json::Value;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

async fn viewer(sig: SocketAddr) -> Viewer {
    let mut o = ViewerOptions::new(sig);
    o.video = VideoDecode::Luma;
    Viewer::connect(o).await.expect("signaling connects")
}

async fn status(http: SocketAddr) -> Value {
    fetch_status(http, None, Duration::from_secs(5))
        .await
        .expect("GET /api/status")
}

fn counter(s: &Value, name: &str) -> u64 {
    s[name].as_u64().unwrap_or_else(|| panic!("{name} in {s}"))
}

/// PSNR of the viewer's newest picture against the frames the emulator published lately.
fn live_psnr(v: &Viewer, emu: &TestEmulator) -> f64 {
    let n = emu.frame_no.load(Ordering::Relaxed);
    v.last_picture().map_or(0.0, |p| best_psnr(&p.luma, n, 0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_viewers_each_get_the_stream_encoded_once() {
    let _g = SERIAL.lock().await;
    let emu = TestEmulator::start(0, PixelFormat::Bgra);
    let srv = start_server(emu.pid, Codec::H264, None).await;
    let mut vs = Vec::new();
    for _ in 0..4 {
        vs.push(viewer(srv.signaling_addr).await);
    }
    for v in &vs {
        wait_for(v, "pictures", 30, |r| r.stats.decoded >= 10).await;
    }
    assert_eq!(status(srv.http_addr).await["peers"], 4);

    // A window of steady streaming: what the source published, what the server encoded, what each
    // viewer received whole.
    let window = Duration::from_secs(5);
    let src0 = emu.frame_no.load(Ordering::Relaxed);
    let enc0 = counter(&status(srv.http_addr).await, "frames_encoded");
    let got0: Vec<u64> = vs.iter().map(|v| v.stats().frames).collect();
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let src1 = emu.frame_no.load(Ordering::Relaxed);
    let st = status(srv.http_addr).await;
    let enc1 = counter(&st, "frames_encoded");
    let secs = t0.elapsed().as_secs_f64();
    let (src, enc) = (src1 - src0, enc1 - enc0);
    let got: Vec<u64> = vs
        .iter()
        .zip(&got0)
        .map(|(v, g0)| v.stats().frames - g0)
        .collect();
    eprintln!(
        "{secs:.1} s: source {src} frames ({:.1}/s), server encoded {enc}, viewers received {got:?} \
         ({:.1}/s each on average); dropped by the server: {}",
        src as f64 / secs,
        got.iter().sum::<u64>() as f64 / 4.0 / secs,
        st["frames_dropped"]
    );
    assert!(
        src >= 100,
        "the source published {src} frames in {secs:.1} s"
    );
    // The v4 server's status fields.
    assert_eq!(st["emulator_connected"], true);
    assert_eq!(st["emulator_running"], true);
    assert_eq!(st["emulator_pid"], emu.pid);
    assert_eq!(st["video"]["width"], st["emulator"]["width"]);
    assert_eq!(st["video"]["state"], 1, "v4 state 1: running");
    // The emulator's own counter, read by the server between our two readings of the source's
    // (which counts a frame once it is published: one behind at most).
    let fc = st["video"]["frame_count"].as_u64().unwrap();
    let src2 = emu.frame_no.load(Ordering::Relaxed);
    assert!(
        fc >= src0 && fc <= src2 + 1,
        "frame_count {fc} outside {src0}..={src2}+1"
    );
    assert!(st["mouse_latency_ms"].is_number() && st["mouse_latency_samples"].is_number());
    // One encode per source frame, however many viewers: not four.
    assert!(
        enc * 10 >= src * 8 && enc * 10 <= src * 12,
        "encoded {enc} frames for {src} source frames"
    );
    for (i, g) in got.iter().enumerate() {
        assert!(
            g * 10 >= enc * 8,
            "viewer {i} received {g} of {enc} frames; {:?}",
            vs[i].stats()
        );
    }
    // Each viewer shows the source's picture.
    for (i, v) in vs.iter().enumerate() {
        let q = live_psnr(v, &emu);
        assert!(q > 35.0, "viewer {i}: PSNR {q:.1} dB");
        assert_eq!(v.stats().signaling_errors, 0);
    }
    for v in vs {
        v.close().await;
    }
    srv.shutdown().await;
}

/// webrtc-rs buffers 1 MB of RTP per track for a reader that does not read; past that it drops.
const RECEIVE_BUFFER: u64 = 1 << 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_viewer_that_stops_reading_slows_nobody_and_recovers() {
    let _g = SERIAL.lock().await;
    let emu = TestEmulator::start(0, PixelFormat::Bgra);
    let srv = start_server(emu.pid, Codec::H264, None).await;
    let a = viewer(srv.signaling_addr).await;
    let b = viewer(srv.signaling_addr).await;
    for v in [&a, &b] {
        wait_for(v, "pictures", 30, |r| r.stats.decoded >= 10).await;
    }

    // B's rate with both viewers reading.
    let rate = |frames: u64, since: Instant| frames as f64 / since.elapsed().as_secs_f64();
    let (t, b0) = (Instant::now(), b.stats().frames);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = rate(b.stats().frames - b0, t);

    // A stops reading. Stay paused at least 4 s, and until more has been sent to it than its receive
    // buffer holds (so packets are really lost), within a bound.
    a.pause();
    tokio::time::sleep(Duration::from_millis(300)).await; // what was being read when it paused
    let a_paused = a.stats();
    let (t, b_mid) = (Instant::now(), b.stats());
    let mut status_ok = 0;
    while t.elapsed() < Duration::from_secs(4)
        || (b.stats().video_bytes - b_mid.video_bytes < RECEIVE_BUFFER * 5 / 4
            && t.elapsed() < Duration::from_secs(40))
    {
        // The server keeps answering while one of its viewers is stuck.
        fetch_status(srv.http_addr, None, Duration::from_secs(2))
            .await
            .expect("status while a viewer is paused");
        status_ok += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let b_end = b.stats();
    let during = rate(b_end.frames - b_mid.frames, t);
    let paused_for = t.elapsed().as_secs_f64();
    let sent_while_paused = b_end.video_bytes - b_mid.video_bytes;
    let st = status(srv.http_addr).await;
    eprintln!(
        "B: {before:.1} frames/s before, {during:.1} frames/s while A was paused {paused_for:.1} s \
         ({} KiB of video sent to each viewer meanwhile); {status_ok} status answers; server: {} \
         peers, {} frames dropped",
        sent_while_paused / 1024,
        st["peers"],
        st["frames_dropped"]
    );
    assert_eq!(
        a.stats().frames,
        a_paused.frames,
        "A received frames while paused"
    );
    assert!(
        during >= before * 0.9,
        "B slowed from {before:.1} to {during:.1} frames/s while A was paused"
    );
    // The server keeps A (a stalled reader is not a dead peer).
    assert_eq!(st["peers"], 2);

    // A reads again: first what its buffer kept, then (if more was sent than it holds) the keyframe it
    // asks for after the loss. Until then its pictures are old ones, so "live" is judged by that: the
    // test picture repeats every 472 frames, and an old picture can look like a recent one.
    a.resume();
    let b_during = b_end.frames - b_mid.frames;
    let overflowed = sent_while_paused > RECEIVE_BUFFER * 5 / 4;
    let caught_up = |s: &ViewerStats| {
        let newest_after_key = s.last_keyframe.is_some_and(|k| {
            a_paused.last_keyframe.is_none_or(|k0| k > k0)
                && a.last_picture().is_some_and(|p| p.received >= k)
        });
        s.frames >= a_paused.frames + 30
            && if overflowed {
                newest_after_key
            } else {
                s.frames >= a_paused.frames + b_during * 9 / 10
            }
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut q = 0.0;
    while Instant::now() < deadline {
        if caught_up(&a.stats()) {
            q = live_psnr(&a, &emu);
            if q > 35.0 {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let a_end = a.stats();
    eprintln!(
        "A after resuming: {} frames, {} packets lost, {} skipped, {} PLIs sent, {} keyframes \
         (was {}), live PSNR {q:.1} dB",
        a_end.frames - a_paused.frames,
        a_end.packets_lost - a_paused.packets_lost,
        a_end.frames_skipped - a_paused.frames_skipped,
        a_end.keyframe_requests - a_paused.keyframe_requests,
        a_end.keyframes,
        a_paused.keyframes
    );
    assert!(
        caught_up(&a_end) && q > 35.0,
        "A did not recover: PSNR {q:.1} dB, {a_end:?}"
    );
    if overflowed {
        // More than the buffer holds was sent: A lost packets, asked for a keyframe, and got one.
        assert!(a_end.packets_lost > a_paused.packets_lost, "{a_end:?}");
        assert!(
            a_end.keyframe_requests > a_paused.keyframe_requests,
            "{a_end:?}"
        );
        assert!(a_end.keyframes > a_paused.keyframes, "{a_end:?}");
    } else {
        // All of it fitted: A caught up from its backlog, missing nothing.
        assert_eq!(a_end.packets_lost, a_paused.packets_lost, "{a_end:?}");
    }
    eprintln!("B meanwhile: {:?}", b.stats());
    a.close().await;
    b.close().await;
    srv.shutdown().await;
}

/// Over `window`: keyframes the server made, frames viewer `v` received whole, frames the source
/// published, and the seconds it took.
async fn measure(srv: SocketAddr, emu: &TestEmulator, v: &Viewer, window: Duration) -> [f64; 4] {
    let (k0, f0) = (counter(&status(srv).await, "keyframes"), v.stats().frames);
    let s0 = emu.frame_no.load(Ordering::Relaxed);
    let t = Instant::now();
    tokio::time::sleep(window).await;
    let k1 = counter(&status(srv).await, "keyframes");
    [
        (k1 - k0) as f64,
        (v.stats().frames - f0) as f64,
        (emu.frame_no.load(Ordering::Relaxed) - s0) as f64,
        t.elapsed().as_secs_f64(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_pli_flood_gets_one_keyframe_per_interval_and_slows_nobody() {
    let _g = SERIAL.lock().await;
    let emu = TestEmulator::start(0, PixelFormat::Bgra);
    let srv = start_server(emu.pid, Codec::H264, None).await;
    let b = viewer(srv.signaling_addr).await;
    wait_for(&b, "pictures", 30, |r| r.stats.decoded >= 10).await;
    let window = Duration::from_secs(5);
    let [k_calm, b_calm, src_calm, secs_calm] = measure(srv.http_addr, &emu, &b, window).await;

    // A asks for a keyframe every 10 ms.
    let mut o = ViewerOptions::new(srv.signaling_addr);
    o.video = VideoDecode::Off;
    o.pli_flood = Some(Duration::from_millis(10));
    let a = Viewer::connect(o).await.expect("signaling connects");
    wait_for(&a, "frames", 30, |r| r.stats.frames >= 10).await;
    let plis0 = a.stats().keyframe_requests;
    let [k, b_frames, src, secs] = measure(srv.http_addr, &emu, &b, window).await;
    let plis = a.stats().keyframe_requests - plis0;
    let b_key = b.stats().keyframes;
    eprintln!(
        "calm {secs_calm:.1} s: {k_calm} keyframes, B {:.1} frames/s (source {:.1}/s); \
         PLI flood {secs:.1} s: A sent {plis} PLIs ({:.0}/s), server made {k} keyframes ({:.2}/s), \
         B {:.1} frames/s (source {:.1}/s, {:.0} % of calm), B saw {b_key} keyframes in all",
        b_calm / secs_calm,
        src_calm / secs_calm,
        plis as f64 / secs,
        k / secs,
        b_frames / secs,
        src / secs,
        100.0 * (b_frames / secs) / (b_calm / secs_calm),
    );
    assert!(
        plis as f64 >= secs * 50.0,
        "the flood ran: {plis} PLIs in {secs:.1} s"
    );
    // The gate: one forced keyframe per 500 ms interval at most, whatever A asks.
    assert!(
        k <= (secs / 0.5).ceil() + 1.0,
        "{k} keyframes in {secs:.1} s"
    );
    assert!(
        b_frames / secs >= 0.9 * b_calm / secs_calm,
        "B slowed from {:.1} to {:.1} frames/s",
        b_calm / secs_calm,
        b_frames / secs
    );
    assert!(
        b_frames >= 0.8 * src,
        "B received {b_frames} of {src} source frames"
    );
    assert!(live_psnr(&b, &emu) > 35.0);
    a.close().await;
    b.close().await;
    srv.shutdown().await;
}
