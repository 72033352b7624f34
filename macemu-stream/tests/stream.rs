//! End to end without a browser: a test emulator publishes frames, audio and records input through
//! the real v4 IPC; `serve` attaches to it; the headless viewer (`macemu_viewer::viewer`, webrtc-rs)
//! connects through our signaling like a browser, decodes the H.264 with openh264 and the Opus with
//! libopus, and sends input on the DataChannel. Everything stays on 127.0.0.1.

use futures_util::{SinkExt, StreamExt};
use macemu_ipc::{InputMessage, PixelFormat};
use macemu_stream::datachannel::{ClientEvent, PNG_HEADER_LEN};
use macemu_stream::peer::PeerOptions;
use macemu_stream::server::{self, Codec, ServeConfig};
use macemu_viewer::harness::{
    best_psnr, connect_viewer, pixel, start_server, wait_for, TestEmulator, H, SERIAL, TONE_HZ, W,
};
use serde_json::Value;
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn h264_opus_and_input_through_webrtc_then_emulator_restart() {
    let _g = SERIAL.lock().await;
    let mut emu = TestEmulator::start(0, PixelFormat::Bgra);
    let srv = start_server(emu.pid, Codec::H264, None).await;
    let v = connect_viewer(srv.signaling_addr.port(), None).await;

    // Offer as the protocol says: server offers H.264 (42e01f, packetization-mode 1), Opus, DataChannel.
    wait_for(&v, "pictures", 30, |r| r.stats.decoded >= 10).await;
    let offer = v
        .signals()
        .into_iter()
        .find(|s| s["type"] == "offer")
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
    let pic = v.last_picture().unwrap();
    let (w, h, y) = (pic.width, pic.height, pic.luma);
    assert_eq!((w, h), (W as usize, H as usize));
    let q = best_psnr(&y, n, 0);
    assert!(q > 35.0, "PSNR {q:.1} dB");

    // Per-frame metadata: cursor as published.
    wait_for(&v, "metadata", 10, |r| !r.meta.is_empty()).await;
    let m = v.with_received(|r| r.meta.back().cloned()).unwrap();
    assert_eq!(u16::from_le_bytes([m[0], m[1]]), 100);
    assert_eq!(u16::from_le_bytes([m[2], m[3]]), 50);
    assert_eq!(m[4], 1);

    // Audio: the tone arrives. 1.5 s received, so the second examined starts after the stream's
    // start-up silence (the viewer may connect before the first sound).
    wait_for(&v, "audio", 20, |r| r.audio.len() >= 72_000).await;
    let audio: Vec<f32> = v.with_received(|r| r.audio.iter().map(|s| s[0]).collect());
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
    v.wait_data_channel(Duration::from_secs(10))
        .await
        .expect("DataChannel open");
    assert_eq!(v.stats().data_channel.as_deref(), Some("input"));
    v.send(&ClientEvent::Key {
        key_code: 65,
        down: true,
        t: 1000.0,
    })
    .await
    .unwrap();
    v.send(&ClientEvent::Key {
        key_code: 65,
        down: false,
        t: 1001.0,
    })
    .await
    .unwrap();
    v.send(&ClientEvent::MouseAbs {
        x: 300,
        y: 200,
        t: 1002.0,
    })
    .await
    .unwrap();
    v.send(&ClientEvent::MouseButton {
        button: 0,
        down: true,
        t: 1003.0,
    })
    .await
    .unwrap();
    v.send(&ClientEvent::Ping {
        sequence: 7,
        t1: 1004.0,
    })
    .await
    .unwrap();
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
        .with_received(|r| {
            r.meta
                .iter()
                .rev()
                .find(|m| u32::from_le_bytes([m[5], m[6], m[7], m[8]]) == 7)
                .cloned()
        })
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
    let offers_before = v.signals().iter().filter(|s| s["type"] == "offer").count();
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(srv.status()["emulator"]["connected"], false);
    let emu2 = TestEmulator::start_as(sleeper, 1, PixelFormat::Argb);
    let before = v.stats().decoded;
    wait_for(&v, "pictures after restart", 20, |r| {
        r.stats.decoded >= before + 10
    })
    .await;
    let n2 = emu2.frame_no.load(Ordering::Relaxed);
    let y2 = v.last_picture().unwrap().luma;
    let q2 = best_psnr(&y2, n2, 1);
    assert!(q2 > 35.0, "after restart: PSNR {q2:.1} dB");
    assert_eq!(
        v.signals().iter().filter(|s| s["type"] == "offer").count(),
        offers_before
    );
    assert_eq!(srv.status()["emulator"]["connected"], true);
    assert_eq!(v.stats().signaling_errors, 0, "{:?}", v.signals());

    v.close().await;
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
        .signals()
        .into_iter()
        .find(|s| s["type"] == "connected")
        .unwrap();
    assert_eq!(offer["codec"], "png");
    // Paint every message like the client does; the canvas must equal one of the recent frames.
    let mut canvas = vec![0u8; (W * H * 3) as usize];
    let msgs: Vec<_> = v.with_received(|r| r.png.iter().cloned().collect());
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
    assert_eq!(v.stats().signaling_errors, 0, "{:?}", v.signals());
    v.close().await;
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
            ..PeerOptions::default()
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
