//! A hostile emulator: while the server streams PNG or H.264 frames to a webrtc-rs viewer, the
//! publisher's side scribbles random values into the v4 header of its own shared memory (geometry,
//! pixel format, dirty rectangle, buffer indices, frame counter, audio rate/channels/format/counts
//! and ring indices, the audio ring's per-frame fields). The server must keep serving
//! (`/api/status` answers throughout), never panic, only ever send PNG messages whose header is
//! self-consistent and whose PNG decodes to its dirty rectangle, log what it rejected at warn/error
//! level, and stream again once the header is sane. An emulator that shrinks its shared memory
//! must not kill the server with SIGBUS: the server detaches and keeps answering.

use macemu_ipc::abi::{MacEmuAudioFrame, MacEmuIPCBuffer, MACEMU_AUDIO_FRAME_RING_SIZE};
use macemu_ipc::{shm_name, FrameMeta, PixelFormat, Publisher, Rect};
use macemu_stream::datachannel::PNG_HEADER_LEN;
use macemu_stream::server::Codec;
use macemu_viewer::harness as common;
use macemu_viewer::viewer::{fetch_status, VideoDecode, Viewer, ViewerOptions};
use rand::Rng;
use serde_json::Value;
use std::mem::offset_of;
use std::os::unix::fs::FileExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const W: u32 = 320;
const H: u32 = 240;

/// Header fields the scribbler attacks: (name, offset, size in bytes).
fn fields() -> Vec<(String, usize, usize)> {
    macro_rules! f {
        ($($n:ident: $s:expr),* $(,)?) => {
            vec![$((stringify!($n).to_owned(), offset_of!(MacEmuIPCBuffer, $n), $s)),*]
        };
    }
    let mut v = f!(
        magic: 4, version: 4, pid: 4, state: 4, width: 4, height: 4, pixel_format: 4,
        dirty_x: 4, dirty_y: 4, dirty_width: 4, dirty_height: 4, cursor_x: 2, cursor_y: 2,
        cursor_visible: 1, write_index: 4, ready_index: 4, frame_count: 8, timestamp_us: 8,
        mouse_latency_avg_ms: 4, mouse_latency_samples: 4, ping_sequence: 4,
        audio_sample_rate: 4, audio_channels: 4, audio_format: 4, audio_samples_in_frame: 4,
        audio_write_index: 4, audio_ready_index: 4, audio_frame_count: 8,
        audio_frame_write_idx: 4, audio_frame_read_idx: 4,
    );
    let ring = offset_of!(MacEmuIPCBuffer, audio_frame_ring);
    let size = std::mem::size_of::<MacEmuAudioFrame>();
    for i in 0..=MACEMU_AUDIO_FRAME_RING_SIZE {
        // The silence frame follows the ring directly.
        let base = ring + i * size;
        for (n, o) in [
            ("sample_rate", offset_of!(MacEmuAudioFrame, sample_rate)),
            ("channels", offset_of!(MacEmuAudioFrame, channels)),
            ("samples", offset_of!(MacEmuAudioFrame, samples)),
            ("format", offset_of!(MacEmuAudioFrame, format)),
        ] {
            v.push((format!("audio_frame[{i}].{n}"), base + o, 4));
        }
    }
    v
}

/// A value a hostile or buggy emulator might write: edges, off-by-ones, small and huge numbers.
fn hostile_value(rng: &mut impl Rng) -> u64 {
    match rng.random_range(0..8) {
        0 => 0,
        1 => u64::MAX,
        2 => rng.random_range(0..4),
        3 => rng.random_range(0..2048),
        4 => 1920 + rng.random_range(0..8),
        5 => u64::from(u32::MAX) - rng.random_range(0..4),
        6 => 1u64 << rng.random_range(0..64u32),
        _ => rng.random(),
    }
}

/// Collects warn and error events, the way an operator would read them.
struct LogCapture(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
        if field.name() == "message" {
            self.0.push_str(&format!("{value:?}"));
        } else {
            self.0.push_str(&format!("{}={value:?}", field.name()));
        }
    }
}

impl tracing::Subscriber for LogCapture {
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        *m.level() <= tracing::Level::WARN
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, e: &tracing::Event<'_>) {
        let mut f = Fields(String::new());
        e.record(&mut f);
        let line = format!(
            "{} {}: {}",
            e.metadata().level(),
            e.metadata().target(),
            f.0
        );
        self.0.lock().unwrap().push(line);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

async fn status(addr: std::net::SocketAddr) -> Result<Value, String> {
    fetch_status(addr, None, Duration::from_secs(2))
        .await
        .map_err(|e| e.to_string())
}

/// Checks one PNG message from the server: a consistent header and a PNG of the dirty rectangle.
fn check_png_message(m: &[u8]) -> Result<(), String> {
    let u32_at = |o: usize| u32::from_le_bytes(m[o..o + 4].try_into().unwrap());
    let (x, y, w, h, fw, fh) = (
        u32_at(8),
        u32_at(12),
        u32_at(16),
        u32_at(20),
        u32_at(24),
        u32_at(28),
    );
    if !(1..=1920).contains(&fw) || !(1..=1080).contains(&fh) {
        return Err(format!("frame {fw}x{fh}"));
    }
    if w == 0
        || h == 0
        || u64::from(x) + u64::from(w) > u64::from(fw)
        || u64::from(y) + u64::from(h) > u64::from(fh)
    {
        return Err(format!("rect {x},{y} {w}x{h} in {fw}x{fh}"));
    }
    let dec = png::Decoder::new(std::io::Cursor::new(&m[PNG_HEADER_LEN..]));
    let mut r = dec.read_info().map_err(|e| e.to_string())?;
    let mut buf = vec![0; r.output_buffer_size().ok_or("PNG size")?];
    let info = r.next_frame(&mut buf).map_err(|e| e.to_string())?;
    if (info.width, info.height) != (w, h) {
        return Err(format!(
            "PNG {}x{} for rect {w}x{h}",
            info.width, info.height
        ));
    }
    Ok(())
}

/// Warnings and errors of every test in this binary, and the number of panics on any thread.
fn observed() -> &'static (Arc<Mutex<Vec<String>>>, Arc<AtomicUsize>) {
    type Observed = (Arc<Mutex<Vec<String>>>, Arc<AtomicUsize>);
    static OBSERVED: OnceLock<Observed> = OnceLock::new();
    OBSERVED.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        tracing::subscriber::set_global_default(LogCapture(logs.clone())).expect("one subscriber");
        let panics = Arc::new(AtomicUsize::new(0));
        let p = panics.clone();
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            p.fetch_add(1, Ordering::SeqCst);
            default_hook(info);
        }));
        (logs, panics)
    })
}

/// The parts of the test emulator's publisher, returned when it stops drawing.
type Parts = (
    macemu_ipc::FramePublisher,
    macemu_ipc::AudioPublisher,
    macemu_ipc::InputListener,
);

/// The emulator: a publisher under the pid of a `sleep` child, a moving bar at ~60 Hz, until `stop`;
/// it then hands back its (still published) parts.
fn spawn_emulator(
    pid: u32,
    stop: Arc<AtomicBool>,
    publish_errors: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<Parts> {
    let (s, pe) = (stop, publish_errors);
    std::thread::spawn(move || {
        let publisher = Publisher::create_with_size(pid, W, H).expect("publisher");
        let (mut frames, audio, mut input) = publisher.split();
        frames.set_state(macemu_ipc::EmulatorState::Running);
        let mut n = 0u32;
        while !s.load(Ordering::Relaxed) {
            while let Ok(Some(_)) = input.poll() {}
            match frames.frame_mut(W, H, PixelFormat::Bgra) {
                Ok(mut fm) => {
                    for y in 0..H {
                        for (x, px) in fm.row_mut(y).chunks_exact_mut(4).enumerate() {
                            let on = (x as u32 + n * 4) % W < 32;
                            px.copy_from_slice(&[if on { 0 } else { y as u8 }, x as u8, 200, 255]);
                        }
                    }
                    let meta = FrameMeta {
                        dirty: Rect {
                            x: 0,
                            y: 0,
                            width: W,
                            height: H,
                        },
                        ..Default::default()
                    };
                    if frames.publish(&meta).is_err() {
                        pe.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(_) => {
                    pe.fetch_add(1, Ordering::Relaxed);
                }
            }
            n += 1;
            std::thread::sleep(Duration::from_millis(16));
        }
        (frames, audio, input)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_survives_an_emulator_scribbling_its_header() {
    scribbling_emulator(Codec::Png).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_survives_an_emulator_scribbling_its_header_h264() {
    scribbling_emulator(Codec::H264).await;
}

/// The viewer of these tests: every PNG message kept; H.264 decoded to luma to prove it plays.
async fn viewer(srv: &macemu_stream::server::ServerHandle, codec: Codec) -> Viewer {
    let mut opts = ViewerOptions::new(srv.signaling_addr).keep_everything();
    opts.video = match codec {
        Codec::Png => VideoDecode::Off,
        Codec::H264 => VideoDecode::Luma,
    };
    Viewer::connect(opts).await.expect("signaling connects")
}

/// Frames the viewer has received: PNG messages, or complete H.264 access units.
fn frames(v: &Viewer, codec: Codec) -> usize {
    v.with_received(|r| match codec {
        Codec::Png => r.png.len(),
        Codec::H264 => r.stats.frames as usize,
    })
}

async fn wait_frames(v: &Viewer, codec: Codec, min: usize, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while frames(v, codec) < min {
        assert!(
            Instant::now() < deadline,
            "fewer than {min} {codec:?} frames after {secs} s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn scribbling_emulator(codec: Codec) {
    let _turn = common::SERIAL.lock().await;
    let (logs, panics) = observed();
    let logs_before = logs.lock().unwrap().len();
    let panics_before = panics.load(Ordering::SeqCst);
    let mut sleeper = Command::new("sleep")
        .arg("120")
        .spawn()
        .expect("spawn sleep");
    let pid = sleeper.id();
    let stop = Arc::new(AtomicBool::new(false));
    let publish_errors = Arc::new(AtomicUsize::new(0));
    let emulator = spawn_emulator(pid, stop.clone(), publish_errors.clone());

    let srv = common::start_server(pid, codec, None).await;
    let v = viewer(&srv, codec).await;
    let png_count = || frames(&v, codec);
    wait_frames(&v, codec, 10, 30).await;
    assert!(status(srv.http_addr).await.is_ok());

    // Hostile phase: scribble while the server keeps streaming.
    let path = format!("/dev/shm{}", shm_name(pid));
    let shm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .expect("open own shm");
    let fields = fields();
    let header_len = fields.iter().map(|(_, o, s)| o + s).max().unwrap();
    let mut saved = vec![0u8; header_len];
    shm.read_exact_at(&mut saved, 0).unwrap();
    let writes = Arc::new(AtomicUsize::new(0));
    let scribbling = Arc::new(AtomicBool::new(true));
    let (sc, wr, fs) = (scribbling.clone(), writes.clone(), fields.clone());
    let scribbler = std::thread::spawn(move || {
        let mut rng = rand::rng();
        while sc.load(Ordering::Relaxed) {
            // A burst of a few fields at once, as a corrupt header would look.
            for _ in 0..rng.random_range(1..6) {
                let (_, off, size) = &fs[rng.random_range(0..fs.len())];
                let v = hostile_value(&mut rng).to_le_bytes();
                shm.write_all_at(&v[..*size], *off as u64).unwrap();
                wr.fetch_add(1, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_micros(rng.random_range(100..3000)));
        }
        // Sane again: the fields the publisher does not rewrite every frame go back to their values.
        shm.write_all_at(&saved, 0).unwrap();
    });
    let hostile_start = Instant::now();
    let before = png_count();
    let mut status_failures = Vec::new();
    let mut status_ok = 0;
    while hostile_start.elapsed() < Duration::from_secs(6) {
        match status(srv.http_addr).await {
            Ok(_) => status_ok += 1,
            Err(e) => status_failures.push(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    scribbling.store(false, Ordering::Relaxed);
    scribbler.join().unwrap();
    let during = png_count() - before;

    // Sane phase: the viewer gets fresh frames again, and the server reports the emulator.
    let after = png_count();
    wait_frames(&v, codec, after + 20, 20).await;
    let decoded = v.with_received(|r| r.stats.decoded);
    let st = status(srv.http_addr)
        .await
        .expect("status after the hostile phase");

    let msgs: Vec<_> = v.with_received(|r| r.png.iter().cloned().collect());
    let bad: Vec<String> = msgs
        .iter()
        .enumerate()
        .filter_map(|(i, m)| check_png_message(m).err().map(|e| format!("#{i}: {e}")))
        .collect();
    let logged = logs.lock().unwrap()[logs_before..].to_vec();
    eprintln!(
        "{codec:?}: {} scribbles in 6 s; {during} frames during, {} PNG messages in all; \
         {decoded} H.264 pictures decoded; {status_ok} status answers; \
         {} publish errors; {} warnings/errors logged, e.g.:",
        writes.load(Ordering::Relaxed),
        msgs.len(),
        publish_errors.load(Ordering::Relaxed),
        logged.len()
    );
    let mut distinct: Vec<&String> = Vec::new();
    for l in &logged {
        let head: String = l.chars().take(40).collect();
        if !distinct.iter().any(|d| d.starts_with(&head)) {
            distinct.push(l);
        }
    }
    for l in distinct.iter().take(15) {
        eprintln!("  {l}");
    }
    eprintln!("status after: {st}");

    stop.store(true, Ordering::Relaxed);
    emulator.join().unwrap();
    v.close().await;
    srv.shutdown().await;
    let _ = sleeper.kill();
    let _ = sleeper.wait();

    assert_eq!(
        panics.load(Ordering::SeqCst),
        panics_before,
        "a thread panicked"
    );
    if codec == Codec::H264 {
        assert!(decoded > 0, "the H.264 stream never decoded");
    }
    assert!(
        status_failures.is_empty(),
        "status failed: {status_failures:?}"
    );
    assert!(status_ok >= 10, "{status_ok} status answers in 6 s");
    assert!(bad.is_empty(), "inconsistent PNG messages: {bad:?}");
    assert!(
        !logged.is_empty(),
        "the hostile header was not reported at warn/error level"
    );
    assert!(
        logged
            .iter()
            .all(|l| l.split_once(": ").is_some_and(|(_, m)| m.len() > 8)),
        "{logged:?}"
    );
}

/// The emulator cuts its shared memory down to nothing (ftruncate) while the server is attached and
/// a viewer watches: the server must not die of SIGBUS; it detaches, keeps answering and attaches
/// again once the object is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_survives_an_emulator_shrinking_its_shared_memory() {
    let _turn = common::SERIAL.lock().await;
    let (_, panics) = observed();
    let panics_before = panics.load(Ordering::SeqCst);
    let codec = Codec::H264;
    let mut sleeper = Command::new("sleep")
        .arg("120")
        .spawn()
        .expect("spawn sleep");
    let pid = sleeper.id();
    let stop = Arc::new(AtomicBool::new(false));
    let publish_errors = Arc::new(AtomicUsize::new(0));
    let emulator = spawn_emulator(pid, stop.clone(), publish_errors.clone());
    let srv = common::start_server(pid, codec, None).await;
    let v = viewer(&srv, codec).await;
    wait_frames(&v, codec, 10, 30).await;

    // This test's emulator shares our address space: it stops drawing before the object shrinks
    // (it would fault on its own mapping), while the server's threads keep polling theirs.
    stop.store(true, Ordering::Relaxed);
    let still_published = emulator.join().unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shm = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/dev/shm{}", shm_name(pid)))
        .expect("open own shm");
    let full = shm.metadata().unwrap().len();
    shm.set_len(0).unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let mut detached = false;
    while Instant::now() < deadline {
        let st = status(srv.http_addr).await.expect("status while shrunk");
        if st["emulator"]["connected"] == false {
            detached = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        detached,
        "the server stayed attached to a shrunk shared memory (its process and socket are still there)"
    );
    // Still shrunk: the server keeps answering, and does not attach to it again.
    for _ in 0..10 {
        let st = status(srv.http_addr).await.expect("status while shrunk");
        assert_eq!(st["emulator"]["connected"], false, "{st}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Whole again (our publisher's own drop writes its header): the server may attach again.
    shm.set_len(full).unwrap();
    drop(still_published);
    v.close().await;
    srv.shutdown().await;
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_eq!(
        panics.load(Ordering::SeqCst),
        panics_before,
        "a thread panicked"
    );
}
