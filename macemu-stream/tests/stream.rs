//! End to end without a browser: a test emulator publishes frames, audio and records input through
//! the real v4 IPC; `serve` attaches to it; a webrtc-rs peer connects through our signaling like a
//! browser, decodes the H.264 with openh264 and the Opus with libopus, and sends input on the
//! DataChannel. Everything stays on 127.0.0.1.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use macemu_ipc::{FrameMeta, InputMessage, PixelFormat, Publisher, Rect};
use macemu_stream::datachannel::{encode_client_event, ClientEvent, H264_META_LEN, PNG_HEADER_LEN};
use macemu_stream::peer::PeerOptions;
use macemu_stream::server::{self, Codec, ServeConfig, ServerHandle};
use serde_json::{json, Value};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::APIBuilder;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice_transport::ice_candidate::RTCIceCandidateInit;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtp::codecs::h264::H264Packet;
use webrtc::rtp::packetizer::Depacketizer;

/// Tests that run an emulator share the machine's pid-keyed IPC names: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const W: u32 = 512;
const H: u32 = 342;
const TONE_HZ: f32 = 440.0;

/// The picture the test emulator shows: a Mac-like desktop whose colours depend on `variant`, plus
/// a block that moves with the frame number (so frames keep changing).
fn block_x(n: u64) -> u32 {
    (n.wrapping_mul(3) % (W as u64 - 40)) as u32
}

/// `n == u64::MAX`: the picture without the block.
fn pixel(x: u32, y: u32, n: u64, variant: u8) -> (u8, u8, u8) {
    let bx = block_x(n);
    if n != u64::MAX && (bx..bx + 32).contains(&x) && (200..232).contains(&y) {
        return (0, 0, 0);
    }
    if y < 20 {
        return (255, 255, 255);
    }
    if (y / 24 + x / 64) % 2 == 0 {
        match variant {
            0 => (200, 60, 40),
            _ => (40, 90, 220),
        }
    } else {
        ((x / 2) as u8, (y / 2) as u8, 128)
    }
}

struct TestEmulator {
    pid: u32,
    sleeper: Child,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    inputs: Arc<Mutex<Vec<InputMessage>>>,
    frame_no: Arc<std::sync::atomic::AtomicU64>,
    /// While set, the picture stops changing (frames still come, with an empty dirty rectangle).
    frozen: Arc<AtomicBool>,
}

impl TestEmulator {
    /// Publishes under the pid of a `sleep` child, so every test emulator has a live pid of its own.
    fn start(variant: u8, format: PixelFormat) -> TestEmulator {
        let sleeper = Command::new("sleep")
            .arg("120")
            .spawn()
            .expect("spawn sleep");
        Self::start_as(sleeper, variant, format)
    }

    fn start_as(sleeper: Child, variant: u8, format: PixelFormat) -> TestEmulator {
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
    fn stop_publishing(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn inputs(&self) -> Vec<InputMessage> {
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

async fn start_server(pid: u32, codec: Codec, token: Option<&str>) -> ServerHandle {
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
        },
        refresh: Duration::from_millis(500),
        ..ServeConfig::default()
    };
    server::start(cfg).await.expect("server starts")
}

/// What the test viewer collected.
#[derive(Default)]
struct Received {
    /// Decoded H.264 pictures: (width, height, Y plane tightly packed).
    pictures: Vec<(usize, usize, Vec<u8>)>,
    /// Decoded audio, left channel, 48 kHz.
    audio: Vec<f32>,
    meta: Vec<Bytes>,
    png: Vec<Bytes>,
}

struct Viewer {
    pc: Arc<RTCPeerConnection>,
    got: Arc<Mutex<Received>>,
    dc: Arc<Mutex<Option<Arc<webrtc::data_channel::RTCDataChannel>>>>,
    ws_task: tokio::task::JoinHandle<()>,
    signals: Arc<Mutex<Vec<Value>>>,
}

/// A webrtc-rs peer that behaves like the browser client.
async fn connect_viewer(sig_port: u16, token: Option<&str>) -> Viewer {
    let url = match token {
        Some(t) => format!("ws://127.0.0.1:{sig_port}/?token={t}"),
        None => format!("ws://127.0.0.1:{sig_port}/"),
    };
    let (ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("signaling connects");
    let (mut ws_tx, mut ws_rx) = ws.split();

    let mut m = MediaEngine::default();
    m.register_default_codecs().unwrap();
    let registry = register_default_interceptors(Registry::new(), &mut m).unwrap();
    let mut s = SettingEngine::default();
    s.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    s.set_include_loopback_candidate(true);
    s.set_ip_filter(Box::new(|ip| ip.is_loopback()));
    let api = APIBuilder::new()
        .with_media_engine(m)
        .with_interceptor_registry(registry)
        .with_setting_engine(s)
        .build();
    let pc = Arc::new(
        api.new_peer_connection(RTCConfiguration::default())
            .await
            .unwrap(),
    );
    let got = Arc::new(Mutex::new(Received::default()));

    let g = got.clone();
    pc.on_track(Box::new(move |track, _, _| {
        let g = g.clone();
        tokio::spawn(async move {
            let mime = track.codec().capability.mime_type.to_lowercase();
            if mime.contains("h264") {
                let mut depack = H264Packet::default();
                let mut au = Vec::new();
                let mut dec = openh264::decoder::Decoder::new().unwrap();
                while let Ok((pkt, _)) = track.read_rtp().await {
                    if let Ok(b) = depack.depacketize(&pkt.payload) {
                        au.extend_from_slice(&b);
                    }
                    if pkt.header.marker {
                        if let Ok(Some(yuv)) = dec.decode(&au) {
                            use openh264::formats::YUVSource;
                            let (w, h) = yuv.dimensions();
                            let (ys, _, _) = yuv.strides();
                            let mut y = Vec::with_capacity(w * h);
                            for r in 0..h {
                                y.extend_from_slice(&yuv.y()[r * ys..r * ys + w]);
                            }
                            g.lock().unwrap().pictures.push((w, h, y));
                        }
                        au.clear();
                    }
                }
            } else if mime.contains("opus") {
                let mut dec = opus::Decoder::new(48_000, opus::Channels::Stereo).unwrap();
                let mut pcm = vec![0f32; 5760 * 2];
                while let Ok((pkt, _)) = track.read_rtp().await {
                    if let Ok(n) = dec.decode_float(&pkt.payload, &mut pcm, false) {
                        let left: Vec<f32> = pcm[..n * 2].chunks_exact(2).map(|c| c[0]).collect();
                        g.lock().unwrap().audio.extend(left);
                    }
                }
            }
        });
        Box::pin(async {})
    }));
    let dc_slot = Arc::new(Mutex::new(None));
    let (d, g) = (dc_slot.clone(), got.clone());
    pc.on_data_channel(Box::new(move |dc| {
        assert_eq!(dc.label(), "input");
        let g = g.clone();
        dc.on_message(Box::new(move |msg| {
            let mut r = g.lock().unwrap();
            if msg.data.len() == H264_META_LEN {
                r.meta.push(msg.data);
            } else if msg.data.len() > PNG_HEADER_LEN {
                r.png.push(msg.data);
            }
            Box::pin(async {})
        }));
        *d.lock().unwrap() = Some(dc);
        Box::pin(async {})
    }));
    let (cand_tx, mut cand_rx) = mpsc::unbounded_channel::<String>();
    pc.on_ice_candidate(Box::new(move |c| {
        if let Some(c) = c {
            let j = c.to_json().unwrap();
            let _ = cand_tx.send(
                json!({"type":"candidate","candidate": j.candidate, "mid": j.sdp_mid}).to_string(),
            );
        }
        Box::pin(async {})
    }));

    ws_tx
        .send(Message::Text(r#"{"type":"connect"}"#.into()))
        .await
        .unwrap();
    let signals = Arc::new(Mutex::new(Vec::new()));
    let (pc2, sig2) = (pc.clone(), signals.clone());
    let ws_task = tokio::spawn(async move {
        loop {
            tokio::select! {
                m = ws_rx.next() => {
                    let Some(Ok(Message::Text(t))) = m else { break };
                    let v: Value = serde_json::from_str(t.as_str()).unwrap();
                    sig2.lock().unwrap().push(v.clone());
                    match v["type"].as_str().unwrap() {
                        "offer" => {
                            let offer = RTCSessionDescription::offer(v["sdp"].as_str().unwrap().to_owned()).unwrap();
                            pc2.set_remote_description(offer).await.unwrap();
                            let answer = pc2.create_answer(None).await.unwrap();
                            pc2.set_local_description(answer.clone()).await.unwrap();
                            let msg = json!({"type":"answer","sdp": answer.sdp}).to_string();
                            ws_tx.send(Message::Text(msg.into())).await.unwrap();
                        }
                        "candidate" => {
                            let init = RTCIceCandidateInit {
                                candidate: v["candidate"].as_str().unwrap().to_owned(),
                                sdp_mid: v["mid"].as_str().map(str::to_owned),
                                ..Default::default()
                            };
                            let _ = pc2.add_ice_candidate(init).await;
                        }
                        _ => {}
                    }
                }
                c = cand_rx.recv() => {
                    let Some(c) = c else { break };
                    let _ = ws_tx.send(Message::Text(c.into())).await;
                }
            }
        }
    });
    Viewer {
        pc,
        got,
        dc: dc_slot,
        ws_task,
        signals,
    }
}

async fn wait_for<F: Fn(&Received) -> bool>(v: &Viewer, what: &str, secs: u64, f: F) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f(&v.got.lock().unwrap()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "timed out waiting for {what}; signaling: {:?}",
        v.signals.lock().unwrap()
    );
}

/// BT.601 limited-range luma of the published picture, from the standard's coefficients.
fn expected_luma(n: u64, variant: u8) -> Vec<u8> {
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
fn best_psnr(got: &[u8], around: u64, variant: u8) -> f64 {
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

fn tone_share(x: &[f32], freq: f32) -> f32 {
    let w = 2.0 * std::f32::consts::PI * freq / 48_000.0;
    let (mut s1, mut s2) = (0f32, 0f32);
    for &v in x {
        let s = v + 2.0 * w.cos() * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    let p = s1 * s1 + s2 * s2 - 2.0 * w.cos() * s1 * s2;
    let e: f32 = x.iter().map(|v| v * v).sum();
    if e == 0.0 {
        0.0
    } else {
        p / (e * x.len() as f32 / 2.0)
    }
}

async fn send_dc(v: &Viewer, e: ClientEvent) {
    let dc = v.dc.lock().unwrap().clone().expect("DataChannel open");
    dc.send(&Bytes::from(encode_client_event(&e)))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn h264_opus_and_input_through_webrtc_then_emulator_restart() {
    let _g = SERIAL.lock().await;
    let mut emu = TestEmulator::start(0, PixelFormat::Bgra);
    let srv = start_server(emu.pid, Codec::H264, None).await;
    let v = connect_viewer(srv.signaling_addr.port(), None).await;

    // Offer as the protocol says: server offers H.264 (42e01f, packetization-mode 1), Opus, DataChannel.
    wait_for(&v, "pictures", 30, |r| r.pictures.len() >= 10).await;
    let offer = v
        .signals
        .lock()
        .unwrap()
        .iter()
        .find(|s| s["type"] == "offer")
        .cloned()
        .unwrap();
    let sdp = offer["sdp"].as_str().unwrap();
    assert!(
        sdp.contains("H264/90000")
            && sdp.contains("profile-level-id=42e01f")
            && sdp.contains("packetization-mode=1")
    );
    assert!(sdp.contains("opus/48000/2") && sdp.contains("webrtc-datachannel"));
    assert!(!sdp.contains(".local"), "no mDNS candidates");
    let streams: Vec<&str> = sdp.lines().filter(|l| l.starts_with("a=msid:")).collect();
    assert_eq!(streams.len(), 2);
    assert_ne!(
        streams[0].split(' ').next(),
        streams[1].split(' ').next(),
        "separate stream ids"
    );

    // Video: the decoded picture is the published one.
    let n = emu.frame_no.load(Ordering::Relaxed);
    let (w, h, y) = v.got.lock().unwrap().pictures.last().cloned().unwrap();
    assert_eq!((w, h), (W as usize, H as usize));
    let q = best_psnr(&y, n, 0);
    assert!(q > 35.0, "PSNR {q:.1} dB");

    // Per-frame metadata: cursor as published.
    wait_for(&v, "metadata", 10, |r| !r.meta.is_empty()).await;
    let m = v.got.lock().unwrap().meta.last().cloned().unwrap();
    assert_eq!(u16::from_le_bytes([m[0], m[1]]), 100);
    assert_eq!(u16::from_le_bytes([m[2], m[3]]), 50);
    assert_eq!(m[4], 1);

    // Audio: the tone arrives.
    wait_for(&v, "audio", 20, |r| r.audio.len() >= 48_000).await;
    let audio = v.got.lock().unwrap().audio.clone();
    // The last second in 20 ms windows: mostly sound, and the sound is the tone.
    let tail = &audio[audio.len() - 48_000..];
    let windows: Vec<&[f32]> = tail.chunks_exact(960).collect();
    let shares: Vec<f32> = windows
        .iter()
        .map(|w| {
            if w.iter().map(|v| v * v).sum::<f32>() / 960.0 > 1e-3 {
                tone_share(w, TONE_HZ)
            } else {
                0.0
            }
        })
        .collect();
    let good = shares.iter().filter(|&&s| s > 0.8).count();
    assert!(
        good * 10 >= windows.len() * 8,
        "{good} of {} windows carry the tone: {shares:.2?}; server: {}",
        windows.len(),
        srv.status()["audio"]
    );

    // Input: DataChannel events arrive at the emulator as v4 messages.
    wait_for(&v, "DataChannel", 10, |_| v.dc.lock().unwrap().is_some()).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // the channel opens
    send_dc(
        &v,
        ClientEvent::Key {
            key_code: 65,
            down: true,
            t: 1000.0,
        },
    )
    .await;
    send_dc(
        &v,
        ClientEvent::Key {
            key_code: 65,
            down: false,
            t: 1001.0,
        },
    )
    .await;
    send_dc(
        &v,
        ClientEvent::MouseAbs {
            x: 300,
            y: 200,
            t: 1002.0,
        },
    )
    .await;
    send_dc(
        &v,
        ClientEvent::MouseButton {
            button: 0,
            down: true,
            t: 1003.0,
        },
    )
    .await;
    send_dc(
        &v,
        ClientEvent::Ping {
            sequence: 7,
            t1: 1004.0,
        },
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    let want_key = InputMessage::Key {
        keycode: 0x00,
        down: true,
        modifiers: 0,
    };
    loop {
        let got = emu.inputs();
        let ok = got.contains(&want_key)
            && got.contains(&InputMessage::Key { keycode: 0x00, down: false, modifiers: 0 })
            && got.contains(&InputMessage::Mouse { x: 300, y: 200, buttons: 0, absolute: true, timestamp_ms: 1002 })
            && got.contains(&InputMessage::Mouse { x: 300, y: 200, buttons: 1, absolute: true, timestamp_ms: 1003 })
            && got.iter().any(|m| matches!(m, InputMessage::Ping { sequence: 7, t1_browser_ms: 1004, t2_server_us, .. } if *t2_server_us > 0));
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "inputs at the emulator: {got:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The ping comes back in the metadata with t1..t7 filled.
    wait_for(&v, "ping echo", 10, |r| {
        r.meta
            .iter()
            .any(|m| u32::from_le_bytes([m[5], m[6], m[7], m[8]]) == 7)
    })
    .await;
    let echo = v
        .got
        .lock()
        .unwrap()
        .meta
        .iter()
        .rev()
        .find(|m| u32::from_le_bytes([m[5], m[6], m[7], m[8]]) == 7)
        .cloned()
        .unwrap();
    let t: Vec<u64> = (0..7)
        .map(|i| u64::from_le_bytes(echo[9 + i * 8..17 + i * 8].try_into().unwrap()))
        .collect();
    assert_eq!(t[0], 1004);
    assert!(
        t[1] > 0 && t[1] <= t[2] && t[2] <= t[3] + 100_000 && t[4] <= t[5] && t[5] <= t[6],
        "{t:?}"
    );

    // Restart: the emulator's IPC goes away and comes back (new shm, socket and eventfds) with another
    // picture; the same peer connection shows it, with no new signaling.
    let sleeper = std::mem::replace(&mut emu.sleeper, Command::new("true").spawn().unwrap());
    emu.stop_publishing();
    let offers_before = v
        .signals
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s["type"] == "offer")
        .count();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(srv.status()["emulator"]["connected"], false);
    let emu2 = TestEmulator::start_as(sleeper, 1, PixelFormat::Argb);
    let before = v.got.lock().unwrap().pictures.len();
    wait_for(&v, "pictures after restart", 20, |r| {
        r.pictures.len() >= before + 10
    })
    .await;
    let n2 = emu2.frame_no.load(Ordering::Relaxed);
    let (_, _, y2) = v.got.lock().unwrap().pictures.last().cloned().unwrap();
    let q2 = best_psnr(&y2, n2, 1);
    assert!(q2 > 35.0, "after restart: PSNR {q2:.1} dB");
    assert_eq!(
        v.signals
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s["type"] == "offer")
            .count(),
        offers_before
    );
    assert_eq!(srv.status()["emulator"]["connected"], true);

    let _ = v.pc.close().await;
    v.ws_task.abort();
    srv.shutdown().await;
    drop(emu2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn png_mode_paints_the_exact_frame() {
    let _g = SERIAL.lock().await;
    let emu = TestEmulator::start(1, PixelFormat::Argb);
    let srv = start_server(emu.pid, Codec::Png, None).await;
    let v = connect_viewer(srv.signaling_addr.port(), None).await;
    wait_for(&v, "PNG frames", 30, |r| r.png.len() >= 20).await;
    // The screen stops changing; however messages were lost or reordered while it moved, the painted
    // canvas must settle on exactly the final picture (recent changes are re-sent, full frames recur).
    emu.frozen.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let offer = v
        .signals
        .lock()
        .unwrap()
        .iter()
        .find(|s| s["type"] == "connected")
        .cloned()
        .unwrap();
    assert_eq!(offer["codec"], "png");
    // Paint every message like the client does; the canvas must equal one of the recent frames.
    let mut canvas = vec![0u8; (W * H * 3) as usize];
    let msgs = v.got.lock().unwrap().png.clone();
    for m in &msgs {
        let u32_at = |o: usize| u32::from_le_bytes(m[o..o + 4].try_into().unwrap());
        let (x, y, w, h) = (u32_at(8), u32_at(12), u32_at(16), u32_at(20));
        assert_eq!((u32_at(24), u32_at(28)), (W, H));
        assert!(x + w <= W && y + h <= H);
        let mut r = png::Decoder::new(std::io::Cursor::new(&m[PNG_HEADER_LEN..]))
            .read_info()
            .unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        assert_eq!((info.width, info.height), (w, h));
        for row in 0..h {
            let dst = (((y + row) * W + x) * 3) as usize;
            let src = (row * w * 3) as usize;
            canvas[dst..dst + (w * 3) as usize].copy_from_slice(&buf[src..src + (w * 3) as usize]);
        }
    }
    let n = emu.frame_no.load(Ordering::Relaxed);
    let mismatched = (0..H)
        .flat_map(|yy| (0..W).map(move |x| (x, yy)))
        .filter(|&(x, yy)| {
            let (r, g, b) = pixel(x, yy, n, 1);
            let o = ((yy * W + x) * 3) as usize;
            canvas[o..o + 3] != [r, g, b]
        })
        .count();
    assert_eq!(
        mismatched,
        0,
        "pixels differing from the final frame; server: {}",
        srv.status()
    );
    let _ = v.pc.close().await;
    v.ws_task.abort();
    srv.shutdown().await;
}

/// One raw HTTP/1.1 exchange (no client library needed): returns status and body.
async fn http(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_enforced_on_http_and_websocket() {
    // No emulator needed: the server starts detached.
    let cfg = ServeConfig {
        http_port: 0,
        signaling_port: 0,
        target_pid: Some(u32::MAX - 7),
        token: Some("s3cret".into()),
        peer: PeerOptions {
            stun: None,
            include_loopback: true,
            loopback_only: true,
        },
        ..ServeConfig::default()
    };
    let srv = server::start(cfg).await.unwrap();
    let a = srv.http_addr;
    assert_eq!(http(a, "GET", "/api/status", &[], "").await.0, 401);
    assert_eq!(http(a, "GET", "/", &[], "").await.0, 401);
    assert_eq!(
        http(a, "GET", "/api/status?token=wrong", &[], "").await.0,
        401
    );
    let (st, body) = http(a, "GET", "/api/status?token=s3cret", &[], "").await;
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["emulator"]["connected"], false);
    assert_eq!(
        http(
            a,
            "GET",
            "/api/config",
            &[("Authorization", "Bearer s3cret")],
            ""
        )
        .await
        .0,
        200
    );
    assert_eq!(
        http(
            a,
            "GET",
            "/api/config",
            &[("Cookie", "macemu_token=s3cret")],
            ""
        )
        .await
        .0,
        200
    );
    let (st, body) = http(a, "GET", "/?token=s3cret", &[], "").await;
    assert_eq!(st, 200);
    assert!(body.contains("<video") || body.contains("<canvas"));
    // WebSocket: refused without the token, accepted with it.
    let port = srv.signaling_addr.port();
    assert!(
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/"))
            .await
            .is_err()
    );
    assert!(
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/?token=nope"))
            .await
            .is_err()
    );
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/?token=s3cret"))
            .await
            .unwrap();
    ws.send(Message::Text(r#"{"type":"connect"}"#.into()))
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let v: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(v["type"], "connected");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_loopback_bind_without_token_is_refused() {
    let cfg = ServeConfig {
        bind: "0.0.0.0".parse().unwrap(),
        http_port: 0,
        signaling_port: 0,
        ..ServeConfig::default()
    };
    assert!(matches!(
        server::start(cfg).await,
        Err(server::ServeError::NoToken)
    ));
}
