//! The browser client's wire code (`web/protocol.js`, run in real Chromium) against the server's
//! (`macemu_stream::datachannel`, `keymap`): what the page encodes the server decodes to the same
//! events, and what the server encodes the page reads field for field. Needs only Chromium.

use macemu_stream::datachannel::{
    encode_h264_meta, parse_client_message, ClientEvent, Cursor, PingEcho, PngHeader,
    PNG_HEADER_LEN,
};
use macemu_stream::keymap::browser_to_mac;
use macemu_viewer::e2e::*;
use serde_json::{json, Value};

const PROTOCOL_JS: &str = include_str!("../web/protocol.js");

/// A blank page with `window.P` = the page's protocol module.
fn page() -> Option<(Browser, TempDir)> {
    if let Some(why) = no_chromium() {
        skip(&why);
        return None;
    }
    let tmp = TempDir::new("e2e-protocol").expect("temp dir");
    let mut b = Browser::launch(None, tmp.0.join("chromium.log")).expect("chromium starts");
    let src = serde_json::to_string(PROTOCOL_JS).unwrap();
    b.eval(&format!(
        "(async () => {{ const u = URL.createObjectURL(new Blob([{src}], {{type: 'text/javascript'}})); \
         window.P = await import(u); return Object.keys(window.P).length; }})()"
    ))
    .expect("protocol.js loads as a module");
    Some((b, tmp))
}

/// Bytes the page's encoder produced for `call` (e.g. `encodeKey(65, true, 12.5)`).
fn page_bytes(b: &mut Browser, call: &str) -> Vec<u8> {
    let v = b
        .eval(&format!("Array.from(new Uint8Array(P.{call}))"))
        .expect(call);
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("byte") as u8)
        .collect()
}

#[test]
fn server_decodes_what_the_page_encodes() {
    let Some((mut b, _tmp)) = page() else { return };
    let t = 12345.678_f64;
    let cases: Vec<(String, ClientEvent)> = vec![
        (
            format!("encodeMouseRel(-5, 7, {t})"),
            ClientEvent::MouseMove { dx: -5, dy: 7, t },
        ),
        // Deltas beyond i16 are clamped, not wrapped.
        (
            format!("encodeMouseRel(40000, -40000, {t})"),
            ClientEvent::MouseMove {
                dx: 32767,
                dy: -32768,
                t,
            },
        ),
        (
            format!("encodeMouseButton(2, true, {t})"),
            ClientEvent::MouseButton {
                button: 2,
                down: true,
                t,
            },
        ),
        (
            format!("encodeMouseButton(0, false, {t})"),
            ClientEvent::MouseButton {
                button: 0,
                down: false,
                t,
            },
        ),
        (
            format!("encodeKey(65, true, {t})"),
            ClientEvent::Key {
                key_code: 65,
                down: true,
                t,
            },
        ),
        (
            format!("encodeKey(222, false, {t})"),
            ClientEvent::Key {
                key_code: 222,
                down: false,
                t,
            },
        ),
        (
            format!("encodePing(4000000000, {t})"),
            ClientEvent::Ping {
                sequence: 4_000_000_000,
                t1: t,
            },
        ),
        (
            format!("encodeMouseAbs(511, 341, {t})"),
            ClientEvent::MouseAbs { x: 511, y: 341, t },
        ),
        (
            format!("encodeMouseAbs(-3, 70000, {t})"),
            ClientEvent::MouseAbs { x: 0, y: 65535, t },
        ),
        (
            "encodeMouseMode(true)".into(),
            ClientEvent::MouseMode { relative: true },
        ),
        (
            "encodeMouseMode(false)".into(),
            ClientEvent::MouseMode { relative: false },
        ),
    ];
    for (call, want) in cases {
        let bytes = page_bytes(&mut b, &call);
        assert_eq!(parse_client_message(&bytes), Ok(want), "{call} → {bytes:?}");
    }
    b.close();
}

/// A real PNG of `w`×`h` grey pixels.
fn tiny_png(w: u32, h: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc.write_header().unwrap();
    wr.write_image_data(&vec![0x80; (w * h) as usize]).unwrap();
    wr.finish().unwrap();
    out
}

fn to_js_bytes(b: &[u8]) -> String {
    format!(
        "new Uint8Array({}).buffer",
        serde_json::to_string(b).unwrap()
    )
}

#[test]
fn page_reads_what_the_server_encodes() {
    let Some((mut b, _tmp)) = page() else { return };
    // Distinct values everywhere, including u64s above 2^32 and a ping echo.
    let ping = PingEcho::from_stamps(
        77,
        [
            98_765,
            1_764_000_000_000_001,
            1_764_000_000_000_250,
            1_764_000_000_004_000,
            1_764_000_000_004_300,
            1_764_000_000_006_300,
            1_764_000_000_006_700,
        ],
    );
    let cursor = Cursor {
        x: 300,
        y: 201,
        visible: true,
    };
    let png = tiny_png(3, 2);
    let h = PngHeader {
        frame_ready_ms: 1_764_000_000_123,
        dirty_x: 10,
        dirty_y: 20,
        dirty_width: 3,
        dirty_height: 2,
        frame_width: 512,
        frame_height: 342,
        send_ms: 1_764_000_000_130,
        cursor,
        ping,
    };
    let msg = h.encode_with(&png);
    assert_eq!(msg.len(), PNG_HEADER_LEN + png.len());
    let f = b
        .eval(&format!(
            "(() => {{ const f = P.parsePngFrame({}); return f && {{...f, png: Array.from(f.png)}}; }})()",
            to_js_bytes(&msg)
        ))
        .unwrap();
    let expect = json!({
        "readyMs": 1_764_000_000_123u64, "x": 10, "y": 20, "width": 3, "height": 2,
        "frameWidth": 512, "frameHeight": 342, "sendMs": 1_764_000_000_130u64,
        "cursorX": 300, "cursorY": 201, "cursorVisible": true,
        "ping": {"sequence": 77, "t": ping.stamps()},
        "png": png,
    });
    assert_eq!(f, expect);
    // The page decodes the PNG it extracted.
    let size = b
        .eval(&format!(
            "(async () => {{ const f = P.parsePngFrame({}); \
             const im = await createImageBitmap(new Blob([f.png], {{type: 'image/png'}})); return [im.width, im.height]; }})()",
            to_js_bytes(&msg)
        ))
        .unwrap();
    assert_eq!(size, json!([3, 2]));

    // A rectangle reaching outside the frame, or a truncated message, is refused.
    let outside = PngHeader { dirty_x: 510, ..h }.encode_with(&png);
    assert_eq!(
        b.eval(&format!("P.parsePngFrame({})", to_js_bytes(&outside)))
            .unwrap(),
        Value::Null
    );
    assert_eq!(
        b.eval(&format!("P.parsePngFrame({})", to_js_bytes(&msg[..100])))
            .unwrap(),
        Value::Null
    );

    // The 65-byte H.264 metadata.
    let meta = encode_h264_meta(&cursor, &ping);
    let m = b
        .eval(&format!("P.parseH264Meta({})", to_js_bytes(&meta)))
        .unwrap();
    assert_eq!(
        m,
        json!({"cursorX": 300, "cursorY": 201, "cursorVisible": true, "ping": {"sequence": 77, "t": ping.stamps()}})
    );

    // The latency breakdown of that echo: hops from the server clock, the rest is network.
    let l = b
        .eval(&format!(
            "P.pingBreakdown(P.parseH264Meta({}).ping, 98765, 98785)",
            to_js_bytes(&meta)
        ))
        .unwrap();
    let ms = |k: &str| l[k].as_f64().unwrap_or(f64::NAN);
    assert_eq!(ms("rttMs"), 20.0);
    assert_eq!(ms("ipcMs"), 0.249);
    assert_eq!(ms("emulatorMs"), 3.75);
    assert_eq!(ms("wakeMs"), 0.3);
    assert_eq!(ms("encodeMs"), 2.0);
    assert_eq!(ms("sendMs"), 0.4);
    assert!((ms("networkMs") - (20.0 - 6.699)).abs() < 1e-9, "{l}");
    b.close();
}

#[test]
fn every_key_the_page_sends_has_a_mac_key() {
    let Some((mut b, _tmp)) = page() else { return };
    // The keyCodes of a US keyboard in Chromium and Firefox (59, 61, 173, 224 are Firefox's).
    let mut codes: Vec<u16> = vec![
        8, 9, 13, 16, 17, 18, 20, 27, 32, 37, 38, 39, 40, 59, 61, 91, 173, 224,
    ];
    codes.extend(48..=57); // digits
    codes.extend(65..=90); // letters
    codes.extend(96..=111); // keypad
    codes.extend(112..=123); // F1–F12
    codes.extend([186, 187, 188, 189, 190, 191, 192, 219, 220, 221, 222]); // punctuation
    let list = serde_json::to_string(&codes).unwrap();
    let sent = b.eval(&format!("{list}.map(P.normalizeKeyCode)")).unwrap();
    for (browser, page) in codes.iter().zip(sent.as_array().unwrap()) {
        let page = page.as_u64().unwrap() as u16;
        assert!(
            browser_to_mac(page).is_some(),
            "keyCode {browser} (sent as {page}) has no Mac key"
        );
    }
    // Firefox's codes arrive as Chromium's.
    assert_eq!(
        sent.as_array().unwrap()[codes.iter().position(|&c| c == 173).unwrap()],
        189
    );
    b.close();
}

#[test]
fn page_turns_the_servers_rtp_stamp_back_into_frame_age() {
    use macemu_stream::video::rtp::rtp_time;
    let Some((mut b, _tmp)) = page() else { return };
    // Capture times around the present and just after a 32-bit wrap of the 90 kHz clock.
    let wrap_us = ((1u64 << 32) * 1_000_000).div_ceil(90_000);
    for capture_us in [1_764_000_000_004_000u64, wrap_us * 401 + 2_000] {
        for age_ms in [0.0, 7.5, 16.7, 250.0, 4_000.0] {
            let present_ms = capture_us as f64 / 1000.0 + age_ms;
            let got = b
                .eval(&format!(
                    "P.captureToPresentMs({}, {present_ms})",
                    rtp_time(capture_us)
                ))
                .unwrap()
                .as_f64()
                .expect("a number");
            assert!((got - age_ms).abs() < 0.05, "age {age_ms} ms read as {got}");
        }
        // A presentation time before the capture (unsynchronised clocks) is no figure.
        let v = b
            .eval(&format!(
                "P.captureToPresentMs({}, {})",
                rtp_time(capture_us),
                capture_us as f64 / 1000.0 - 30.0
            ))
            .unwrap();
        assert!(v.is_null(), "{v}");
    }
    b.close();
}
