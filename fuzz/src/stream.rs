//! Checks run on one fuzz input for `macemu-stream`'s parsers and the PNG path. Shared by the fuzz
//! targets and by `macemu-stream/tests/fuzz_corpus.rs`, which replays every corpus file through them.

use macemu_stream::datachannel::{
    encode_client_event, encode_h264_meta, parse_client_message, ClientEvent, Cursor, PingEcho,
    PngHeader, H264_META_LEN, PNG_HEADER_LEN,
};
use macemu_stream::signaling::{self, SessionState, SignalAction, SignalInput, SignalingSession};
use macemu_stream::video::png::{encode_rect, PngBander, PngPlanner};
use macemu_stream::video::{FrameRef, PixelFormat, Rect};
use std::time::{Duration, Instant};

/// Reads little-endian integers off the front of the input, zero once it runs out.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        let n = N.min(self.0.len());
        a[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        a
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take())
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
}

fn le_u32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
}

fn le_u64(b: &[u8], o: usize) -> u64 {
    u64::from_le_bytes(b[o..o + 8].try_into().unwrap())
}

/// Browser → server DataChannel messages: any bytes give an event or a typed error; an accepted
/// message has exactly its wire size and survives encode → parse unchanged. The same bytes, read as
/// field values, go through the server → browser PNG header and H.264 metadata, which are decoded back
/// at the offsets `docs/browser-protocol.md` gives.
pub fn datachannel(data: &[u8]) {
    match parse_client_message(data) {
        Ok(e) => {
            let wire = encode_client_event(&e);
            assert_eq!(wire.len(), data.len(), "{e:?}");
            assert_eq!(wire[0], data[0]);
            assert_eq!(parse_client_message(&wire), Ok(e));
            if let ClientEvent::MouseMove { t, .. }
            | ClientEvent::MouseButton { t, .. }
            | ClientEvent::Key { t, .. }
            | ClientEvent::MouseAbs { t, .. }
            | ClientEvent::Ping { t1: t, .. } = e
            {
                assert!(t.is_finite());
            }
        }
        Err(err) => assert!(!err.to_string().is_empty()),
    }

    let mut b = Bytes(data);
    let cursor = Cursor {
        x: b.u16(),
        y: b.u16(),
        visible: b.u8() & 1 == 1,
    };
    let sequence = b.u32();
    let ping = PingEcho::from_stamps(sequence, std::array::from_fn(|_| b.u64()));
    let h = PngHeader {
        frame_ready_ms: b.u64(),
        dirty_x: b.u32(),
        dirty_y: b.u32(),
        dirty_width: b.u32(),
        dirty_height: b.u32(),
        frame_width: b.u32(),
        frame_height: b.u32(),
        send_ms: b.u64(),
        cursor,
        ping,
    };
    let msg = h.encode_with(b.0);
    assert_eq!(msg.len(), PNG_HEADER_LEN + b.0.len());
    assert_eq!(&msg[PNG_HEADER_LEN..], b.0);
    assert_eq!(le_u64(&msg, 0), h.frame_ready_ms);
    let rect = [
        h.dirty_x,
        h.dirty_y,
        h.dirty_width,
        h.dirty_height,
        h.frame_width,
        h.frame_height,
    ];
    for (i, v) in rect.into_iter().enumerate() {
        assert_eq!(le_u32(&msg, 8 + 4 * i), v);
    }
    assert_eq!(le_u64(&msg, 32), h.send_ms);
    let meta = encode_h264_meta(&cursor, &ping);
    assert_eq!(meta.len(), H264_META_LEN);
    // The H.264 metadata is the PNG header's cursor + ping block.
    assert_eq!(&meta[..], &msg[40..40 + H264_META_LEN]);
    assert_eq!(u16::from_le_bytes([meta[0], meta[1]]), cursor.x);
    assert_eq!(u16::from_le_bytes([meta[2], meta[3]]), cursor.y);
    assert_eq!(meta[4], cursor.visible as u8);
    assert_eq!(le_u32(&meta, 5), ping.sequence);
    for (i, t) in ping.stamps().into_iter().enumerate() {
        assert_eq!(le_u64(&meta, 9 + 8 * i), t);
    }
    assert!(msg[105..PNG_HEADER_LEN].iter().all(|&z| z == 0));
}

/// Signaling: the input is a sequence of lines. A line starting with `>` is a local event (offer
/// ready, local candidate, codec change, peer failure); any other line is a client text message. The
/// parser never panics and the session keeps its promises: an answer is applied only after an offer
/// went out, a remote candidate is used only after the answer, every reply serializes to JSON with
/// a `type`, and queued candidates are flushed in order.
pub fn signaling(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut s = SignalingSession::new("h264", "fuzz");
    let mut offers_out = 0u32;
    for line in text.split('\n') {
        let before = s.state();
        let input = if let Some(local) = line.strip_prefix('>') {
            let mut chars = local.chars();
            let kind = chars.next();
            let rest = chars.as_str();
            match kind {
                Some('o') => SignalInput::OfferReady(rest.to_owned()),
                Some('c') => SignalInput::LocalCandidate {
                    candidate: rest.to_owned(),
                    mid: "0".into(),
                },
                Some('x') => {
                    s.set_codec(if rest.is_empty() { "png" } else { rest });
                    SignalInput::CodecChanged
                }
                _ => SignalInput::PeerFailed(rest.to_owned()),
            }
        } else {
            match signaling::parse_client_message(line) {
                Ok(m) => SignalInput::Client(m),
                Err(e) => {
                    assert!(!e.to_string().is_empty());
                    continue;
                }
            }
        };
        let is_answer = matches!(
            input,
            SignalInput::Client(signaling::ClientMessage::Answer { .. })
        );
        let actions = s.handle(input);
        let mut applied = false;
        for a in &actions {
            match a {
                SignalAction::Send(m) => {
                    let v: serde_json::Value =
                        serde_json::from_str(&m.to_json()).expect("server message is JSON");
                    assert!(v["type"].is_string());
                    if v["type"] == "offer" {
                        offers_out += 1;
                    }
                }
                SignalAction::ApplyAnswer(_) => {
                    assert!(is_answer && before == SessionState::AwaitingAnswer);
                    assert!(offers_out > 0);
                    applied = true;
                }
                SignalAction::AddRemoteCandidate { .. } => {
                    assert!(applied || before == SessionState::Established);
                }
                _ => {}
            }
        }
        if applied {
            assert_eq!(s.state(), SessionState::Established);
        }
    }
}

fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let mut r = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .expect("PNG header decodes");
    let mut buf = vec![0; r.output_buffer_size().expect("PNG size")];
    let info = r.next_frame(&mut buf).expect("PNG data decodes");
    assert_eq!(info.color_type, png::ColorType::Rgb);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// Checks that `png` decodes to exactly `r` of `frame`.
fn assert_png_matches(frame: &FrameRef<'_>, r: Rect, png: &[u8]) {
    let (w, h, px) = decode_png(png);
    assert_eq!((w, h), (r.width, r.height));
    for y in 0..h {
        for x in 0..w {
            let (cr, cg, cb) = frame.rgb_at(r.x + x, r.y + y);
            let i = ((y * w + x) * 3) as usize;
            assert_eq!(&px[i..i + 3], &[cr, cg, cb], "pixel ({x},{y}) of {r:?}");
        }
    }
}

/// The dirty-rectangle PNG path: random frame geometry (sometimes lying about its size or stride, as a
/// hostile shared-memory header would), a random dirty rectangle with untrusted 32-bit fields, random
/// pixels. Nothing panics; a bad frame is a typed error; every PNG produced decodes to exactly the
/// frame's pixels; the bander's pieces tile the clamped rectangle exactly and respect the size limit
/// unless a piece is a single pixel; the planner only plans rectangles inside the frame.
pub fn png_dirty_rect(data: &[u8]) {
    let mut b = Bytes(data);
    let mode = b.u8();
    // Small frames keep each run fast; mode bit 0 lets the geometry lie instead.
    let (width, height) = if mode & 1 == 0 {
        (u32::from(b.u8() % 96) + 1, u32::from(b.u8() % 64) + 1)
    } else {
        (b.u32(), b.u32())
    };
    let pad = usize::from(b.u8() % 16) * 4 + usize::from(b.u8() % 4);
    let format = if mode & 2 == 0 {
        PixelFormat::Bgra
    } else {
        PixelFormat::Argb
    };
    let rect = if mode & 4 == 0 {
        Rect::new(
            u32::from(b.u8()),
            u32::from(b.u8()),
            u32::from(b.u8()),
            u32::from(b.u8()),
        )
    } else {
        Rect::new(b.u32(), b.u32(), b.u32(), b.u32())
    };
    let max = 200 + usize::from(b.u16() % 2048);
    let short = usize::from(b.u8() % 8);
    let stride = (width.min(200) as usize * 4).saturating_add(pad);
    // The buffer holds at most 200×200 pixels, so a lying height/width meets a short buffer.
    let len = (stride * height.min(200) as usize).saturating_sub(short * (mode as usize >> 7));
    let seed = b.0;
    let pixels: Vec<u8> = (0..len)
        .map(|i| match seed.len() {
            0 => (i * 37) as u8,
            n => seed[i % n].wrapping_add((i / n) as u8),
        })
        .collect();
    let frame = FrameRef {
        data: &pixels,
        width,
        height,
        stride,
        format,
    };
    let valid = frame.validate().is_ok();
    let clamped = rect.clamp_to(width, height);

    let (mut out, mut rgb) = (Vec::new(), Vec::new());
    match encode_rect(&frame, rect, &mut out, &mut rgb) {
        Ok(()) => {
            assert!(valid && !clamped.is_empty());
            assert_png_matches(&frame, clamped, &out);
        }
        Err(e) => {
            assert!(!valid || clamped.is_empty(), "{e}");
            assert!(!e.to_string().is_empty());
        }
    }

    let mut bander = PngBander::new(max);
    match bander.encode(&frame, rect) {
        Ok(pieces) => {
            assert!(valid || clamped.is_empty());
            let mut area = 0u64;
            let mut seen = vec![false; (clamped.width as usize) * (clamped.height as usize)];
            for (p, png) in &pieces {
                assert!(!p.is_empty());
                assert!(
                    p.x >= clamped.x && p.x + p.width <= clamped.x + clamped.width,
                    "{p:?}"
                );
                assert!(
                    p.y >= clamped.y && p.y + p.height <= clamped.y + clamped.height,
                    "{p:?}"
                );
                assert!(
                    png.len() <= max || (p.width == 1 && p.height == 1),
                    "{} > {max}",
                    png.len()
                );
                for y in p.y..p.y + p.height {
                    for x in p.x..p.x + p.width {
                        let i = (y - clamped.y) as usize * clamped.width as usize
                            + (x - clamped.x) as usize;
                        assert!(!seen[i], "pieces overlap at ({x},{y})");
                        seen[i] = true;
                    }
                }
                area += u64::from(p.width) * u64::from(p.height);
                assert_png_matches(&frame, *p, png);
            }
            assert_eq!(area, u64::from(clamped.width) * u64::from(clamped.height));
        }
        Err(e) => assert!(!valid && !clamped.is_empty(), "{e}"),
    }

    // The planner, fed the remaining bytes as a stream of untrusted dirty rectangles.
    let mut planner = PngPlanner::new(usize::from((mode >> 3) & 7), Duration::from_millis(200));
    let t0 = Instant::now();
    let mut rest = Bytes(seed);
    let mut step = 0u64;
    while rest.0.len() >= 17 {
        let dirty = Rect::new(rest.u32(), rest.u32(), rest.u32(), rest.u32());
        step += u64::from(rest.u8());
        if let Some(r) = planner.plan(t0 + Duration::from_millis(step), dirty, width, height) {
            assert!(!r.is_empty() || width == 0 || height == 0);
            assert!(
                u64::from(r.x) + u64::from(r.width) <= u64::from(width),
                "{r:?}"
            );
            assert!(
                u64::from(r.y) + u64::from(r.height) <= u64::from(height),
                "{r:?}"
            );
        }
    }
}

/// The repeat builder fed access units it did not make: records of `[op][len u16][bytes]`, where an
/// even op passes the bytes on as an access unit and an odd op asks for a repeat. Neither may panic;
/// a repeat, when one is made, is a single non-IDR reference slice; what `pass` returns holds as many
/// NAL units as it was given.
pub fn h264_repeat(data: &[u8]) {
    use macemu_stream::video::h264::nal_units;
    use macemu_stream::video::repeat::Repeater;
    let mut input = Bytes(data);
    let mut rep = Repeater::new();
    while !input.0.is_empty() {
        let op = input.u8();
        let len = (input.u16() as usize).min(input.0.len());
        let (au, rest) = input.0.split_at(len);
        input.0 = rest;
        if op % 2 == 0 {
            let au = bytes::Bytes::copy_from_slice(au);
            if let Ok(out) = rep.pass(&au) {
                if nal_units(&out).len() != nal_units(&au).len() {
                    eprintln!("IN {:02x?}\nOUT {:02x?}", &au[..], &out[..]);
                }
                assert_eq!(nal_units(&out).len(), nal_units(&au).len());
            }
        } else if let Some(r) = rep.repeat() {
            let nals = nal_units(&r);
            assert_eq!(nals.len(), 1);
            assert_eq!(nals[0][0], 0x41, "non-IDR slice, nal_ref_idc 2");
        }
    }
}

/// Browser input events through one viewer's translator (first byte: mouse mode; then messages,
/// each one length byte and that many DataChannel bytes): no panic; an absolute position is never
/// negative; every message sent decodes back from the v4 wire unchanged; `release_all` releases
/// exactly the keys still held (by the translator's own messages) and leaves nothing held.
pub fn input_translator(data: &[u8]) {
    use macemu_ipc::{InputDecoder, InputMessage, MouseMode};
    use macemu_stream::input::InputTranslator;
    use std::collections::BTreeSet;
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let mut t = InputTranslator::new(if mode & 1 == 1 {
        MouseMode::Relative
    } else {
        MouseMode::Absolute
    });
    let mut held = BTreeSet::new();
    let (mut wire, mut sent) = (Vec::new(), Vec::new());
    let mut now_us = 1_700_000_000_000_000u64;
    while let Some((&len, tail)) = rest.split_first() {
        let (msg, tail) = tail.split_at(usize::from(len).min(tail.len()));
        rest = tail;
        let Ok(ev) = parse_client_message(msg) else {
            continue;
        };
        now_us += 1000;
        let Some(m) = t.translate(ev, now_us) else {
            continue;
        };
        match m {
            InputMessage::Key { keycode, down, .. } => {
                if down {
                    held.insert(keycode);
                } else {
                    held.remove(&keycode);
                }
            }
            InputMessage::Mouse {
                x,
                y,
                absolute: true,
                ..
            } => assert!(x >= 0 && y >= 0, "absolute position {x},{y}"),
            _ => {}
        }
        wire.extend(m.encode());
        sent.push(m);
    }
    let released = t.release_all();
    let mut released_keys = BTreeSet::new();
    for m in &released {
        match *m {
            InputMessage::Key {
                keycode,
                down: false,
                ..
            } => assert!(released_keys.insert(keycode), "released twice: {keycode}"),
            InputMessage::Mouse { buttons: 0, .. } => {}
            ref other => panic!("release_all sent {other:?}"),
        }
    }
    assert_eq!(released_keys, held, "released keys vs keys held");
    assert!(
        t.release_all().is_empty(),
        "nothing is held after release_all"
    );
    let mut d = InputDecoder::new();
    d.push(&wire);
    let back: Vec<_> = d.by_ref().collect();
    assert_eq!(back.len(), sent.len());
    for (b, s) in back.into_iter().zip(&sent) {
        assert_eq!(b.as_ref().ok(), Some(s));
    }
}
