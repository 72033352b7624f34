//! The media threads: attach to the emulator, encode its frames once for every viewer, pull and
//! encode its sound; and re-attach when it comes back.

use super::config::{Codec, ServeConfig};
use super::hub::{EmuLink, Hub};
use crate::audio::{AudioEncoder, AudioPacket, PACKET_FRAMES};
use crate::datachannel::{self, Cursor, PingEcho, PngHeader};
use crate::limits::KeyframeGate;
use crate::peer::VideoOut;
use crate::supervisor;
use crate::video::convert::Converter;
use crate::video::h264::{EncodedFrame, H264Encoder, PictureEncoder};
use crate::video::png::{PngBander, PngPlanner, MAX_PNG_MESSAGE};
use crate::video::policy::{Decision, EncodePolicy};
use crate::video::repeat::Repeater;
use crate::video::rtp::MediaClock;
use crate::video::{FrameRef, PixelFormat, Rect};
use bytes::Bytes;
use macemu_ipc::drive::{DriveCommand, DriveReport};
use macemu_ipc::{realtime_us, InputMessage, IpcError, Subscriber};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Encoder refreshes of an unchanged picture before repeats take over: rate control may have coded a
/// change coarsely, and one more pass lets the encoder sharpen it.
const ENCODED_REFRESHES: u32 = 1;

/// Input messages waiting for a stuck emulator, at most; further ones are dropped.
const INPUT_QUEUE: usize = 256;

fn pixel_format(p: macemu_ipc::PixelFormat) -> PixelFormat {
    match p {
        macemu_ipc::PixelFormat::Argb => PixelFormat::Argb,
        macemu_ipc::PixelFormat::Bgra => PixelFormat::Bgra,
    }
}

fn rect(r: macemu_ipc::Rect) -> Rect {
    Rect::new(r.x, r.y, r.width, r.height)
}

fn attach(hub: &Hub, cfg: &ServeConfig) -> Option<Subscriber> {
    let found = macemu_ipc::list_emulators();
    let pid = supervisor::choose_pid(cfg.target_pid, hub.process.pid(), &found)?;
    match Subscriber::connect(pid) {
        Ok(sub) => {
            let info = found.iter().find(|e| e.pid == pid);
            tracing::info!(pid, "attached to the emulator");
            let sender = match sub.sender().queued(INPUT_QUEUE) {
                Ok(q) => q,
                Err(e) => {
                    tracing::error!(pid, "cannot start the input writer: {e}");
                    return None;
                }
            };
            // The mouse mode chosen by viewers outlives emulator restarts.
            let _ = sender.send(&InputMessage::MouseMode(*Hub::lock(&hub.mouse_mode)));
            // Our emulator answers with its drives and reports each change; a v4 one skips it.
            Hub::lock(&hub.drives).clear();
            let _ = sender.send_drive(&DriveCommand::Query);
            *Hub::lock(&hub.audio_source) = Some(sub.audio());
            *Hub::lock(&hub.emulator) = Some(EmuLink {
                pid,
                sender,
                width: info.map_or(0, |i| i.width),
                height: info.map_or(0, |i| i.height),
                state: sub.state().ok(),
                frame_count: 0,
                mouse_latency: sub.mouse_latency(),
            });
            hub.stats.reconnects.fetch_add(1, Relaxed);
            hub.request_keyframe();
            Some(sub)
        }
        Err(e) => {
            tracing::debug!(pid, "cannot attach: {e}");
            None
        }
    }
}

fn detach(hub: &Hub, why: &IpcError) {
    tracing::warn!("emulator detached: {why}");
    *Hub::lock(&hub.emulator) = None;
    *Hub::lock(&hub.audio_source) = None;
    Hub::lock(&hub.drives).clear();
}

/// Keeps the newest report of each drive; a report about no drive (a command that failed before
/// it reached one) is only logged.
fn note_drive_reports(hub: &Hub, reports: Vec<DriveReport>) {
    let mut drives = Hub::lock(&hub.drives);
    for r in reports {
        if let Some(e) = &r.error {
            tracing::warn!(drive = ?r.slot.map(|s| s.to_string()), "drive: {e}");
        }
        if r.ejected_by_mac {
            tracing::info!(drive = ?r.slot.map(|s| s.to_string()), "the Mac ejected its disk");
        }
        if let Some(slot) = r.slot {
            drives.insert(slot, r);
        }
    }
}

/// Per-codec encoder state kept across frames.
struct Encoders {
    conv: Converter,
    h264: H264Encoder,
    policy: EncodePolicy,
    png: PngPlanner,
    bander: PngBander,
    /// RTP timestamps of the H.264 track.
    clock: MediaClock,
    /// Refreshes of an unchanged picture without the encoder.
    repeat: Repeater,
    /// Encoder pictures of the current content (1 = just the change itself).
    encodes_of_picture: u32,
    /// Dirty area not yet converted (frames skipped while nobody watched).
    pending: Rect,
    last_ping_sent: u32,
    cursor: Cursor,
    ping: PingEcho,
    codec: Codec,
    fps_window: (Instant, u64, u64),
}

impl Encoders {
    fn new(cfg: &ServeConfig, codec: Codec) -> Self {
        Self {
            conv: Converter::new(),
            h264: H264Encoder::new(cfg.h264),
            policy: EncodePolicy::new(cfg.refresh),
            png: PngPlanner::new(4, cfg.png_refresh),
            bander: PngBander::new(MAX_PNG_MESSAGE),
            clock: MediaClock::new(),
            repeat: Repeater::new(),
            encodes_of_picture: 0,
            pending: Rect::default(),
            last_ping_sent: 0,
            cursor: Cursor::default(),
            ping: PingEcho::default(),
            codec,
            fps_window: (Instant::now(), 0, 0),
        }
    }
}

pub(super) fn media_thread(hub: Arc<Hub>, cfg: ServeConfig) {
    let mut sub: Option<Subscriber> = None;
    let mut enc = Encoders::new(&cfg, hub.codec());
    let mut keyframe_gate = KeyframeGate::new(hub.keyframe_interval);
    let mut next_scan = Instant::now();
    while !hub.shutdown.load(Relaxed) {
        let Some(s) = sub.as_mut() else {
            if Instant::now() >= next_scan {
                sub = attach(&hub, &cfg);
                if sub.is_some() {
                    enc = Encoders::new(&cfg, hub.codec());
                }
                next_scan = Instant::now() + supervisor::SCAN_PERIOD;
            } else {
                std::thread::sleep(Duration::from_millis(50));
            }
            // Relaunch an auto-started emulator that died.
            if cfg.auto_start
                && sub.is_none()
                && hub.process.pid().is_none()
                && cfg.target_pid.is_none()
            {
                let _ = hub.process.start();
            }
            continue;
        };
        let codec = hub.codec();
        if codec != enc.codec {
            enc = Encoders::new(&cfg, codec);
        }
        // Requests wait for the gate, so a PLI flood from one viewer cannot make every picture a
        // keyframe; those made meanwhile are served by the next one.
        if hub.keyframe.load(Relaxed) && keyframe_gate.try_pass(Instant::now()) {
            hub.keyframe.store(false, Relaxed);
            enc.policy.request_keyframe();
            enc.png.force_full();
        }
        let mut idle = false;
        let mut gone = None;
        match s.wait_frame(Duration::from_millis(100)) {
            Ok(Some(view)) => {
                let now = Instant::now();
                let t5 = realtime_us();
                hub.stats.frames_in.fetch_add(1, Relaxed);
                enc.cursor = Cursor {
                    x: view.cursor_x,
                    y: view.cursor_y,
                    visible: view.cursor_visible,
                };
                if let Some(p) = view.ping {
                    // Server → emulator → frame → server, on the server's clock.
                    if p.t2_server_us > 0 && t5 >= p.t2_server_us {
                        hub.stats
                            .ping_rtt_hint_us
                            .store(t5 - p.t2_server_us, Relaxed);
                    }
                    enc.ping = PingEcho {
                        sequence: p.sequence,
                        t: [
                            p.t1_browser_ms,
                            p.t2_server_us,
                            p.t3_emulator_us,
                            p.t4_frame_us,
                            t5,
                            0,
                            0,
                        ],
                    };
                }
                let frame = FrameRef {
                    data: view.data,
                    width: view.width,
                    height: view.height,
                    stride: view.stride,
                    format: pixel_format(view.pixel_format),
                };
                let dirty = rect(view.dirty);
                if let Some(e) = Hub::lock(&hub.emulator).as_mut() {
                    e.width = view.width;
                    e.height = view.height;
                    e.frame_count = view.frame_count;
                }
                if let Err(e) =
                    process_frame(&hub, &mut enc, &frame, dirty, now, (view.timestamp_us, t5))
                {
                    tracing::warn!("frame dropped: {e}");
                }
            }
            Ok(None) => idle = true,
            Err(e) => gone = Some(e),
        }
        let reports = s.take_drive_reports();
        if !reports.is_empty() {
            note_drive_reports(&hub, reports);
        }
        if let Some(e) = gone {
            detach(&hub, &e);
            sub = None;
            next_scan = Instant::now();
            continue;
        }
        if idle {
            let now = Instant::now();
            if enc.codec == Codec::H264 {
                let viewers = hub.connected_viewers(false);
                let have = enc.conv.picture().is_some();
                if let Decision::Encode { keyframe } = enc.policy.on_idle(now, viewers, have) {
                    let t5 = realtime_us();
                    if let Err(e) = encode_h264(&hub, &mut enc, keyframe, false, (None, t5)) {
                        tracing::warn!("refresh failed: {e}");
                    }
                }
            }
            if let Ok(st) = s.state() {
                if let Some(e) = Hub::lock(&hub.emulator).as_mut() {
                    e.state = Some(st);
                    e.mouse_latency = s.mouse_latency();
                }
            }
        }
        update_rates(&hub, &mut enc);
    }
}

fn update_rates(hub: &Hub, enc: &mut Encoders) {
    let (t0, f0, b0) = enc.fps_window;
    let el = t0.elapsed();
    if el >= Duration::from_secs(1) {
        let f = hub.stats.frames_encoded.load(Relaxed);
        let b = hub.stats.bytes_out.load(Relaxed);
        hub.stats.fps_milli.store(
            ((f - f0) as f64 * 1000.0 / el.as_secs_f64()) as u64,
            Relaxed,
        );
        hub.stats.kbps.store(
            ((b - b0) as f64 * 8.0 / 1000.0 / el.as_secs_f64()) as u64,
            Relaxed,
        );
        enc.fps_window = (Instant::now(), f, b);
    }
}

fn process_frame(
    hub: &Hub,
    enc: &mut Encoders,
    frame: &FrameRef<'_>,
    dirty: Rect,
    now: Instant,
    (capture_us, t5): (u64, u64),
) -> Result<(), crate::video::VideoError> {
    frame.validate()?;
    match enc.codec {
        Codec::H264 => {
            let viewers = hub.connected_viewers(false);
            enc.pending = enc
                .pending
                .union(&dirty.clamp_to(frame.width, frame.height));
            let decision = enc.policy.on_frame(now, !dirty.is_empty(), viewers);
            if let Decision::Encode { keyframe } = decision {
                let changed = !enc.pending.is_empty();
                enc.conv.update(frame, enc.pending, false)?;
                enc.pending = Rect::default();
                encode_h264(hub, enc, keyframe, changed, (Some(capture_us), t5))?;
            } else if viewers && enc.ping.sequence != enc.last_ping_sent {
                // A static screen sends no frame to carry the echo: it goes alone.
                enc.last_ping_sent = enc.ping.sequence;
                let mut ping = enc.ping;
                let t = realtime_us();
                ping.t[5] = t;
                ping.t[6] = t;
                let meta = datachannel::encode_h264_meta(&enc.cursor, &ping);
                hub.broadcast_video(&VideoOut::Meta(Bytes::copy_from_slice(&meta)));
            }
        }
        Codec::Png => {
            if !hub.connected_viewers(true) {
                return Ok(());
            }
            let planned = enc.png.plan(now, dirty, frame.width, frame.height);
            // A new ping echo goes out even on a static screen, on a 1×1 rectangle.
            let rect = planned.or_else(|| {
                (enc.ping.sequence != enc.last_ping_sent).then(|| Rect::new(0, 0, 1, 1))
            });
            let Some(r) = rect else { return Ok(()) };
            let bands = enc.bander.encode(frame, r)?;
            let t6 = realtime_us();
            hub.stats
                .encode_us_last
                .store(t6.saturating_sub(t5), Relaxed);
            hub.stats.frames_encoded.fetch_add(1, Relaxed);
            enc.last_ping_sent = enc.ping.sequence;
            let mut msgs = Vec::with_capacity(bands.len());
            for (b, png) in bands {
                let t7 = realtime_us();
                let mut ping = enc.ping;
                if ping.sequence != 0 {
                    ping.t[5] = t6;
                    ping.t[6] = t7;
                }
                let hdr = PngHeader {
                    frame_ready_ms: t5 / 1000,
                    dirty_x: b.x,
                    dirty_y: b.y,
                    dirty_width: b.width,
                    dirty_height: b.height,
                    frame_width: frame.width,
                    frame_height: frame.height,
                    send_ms: t7 / 1000,
                    cursor: enc.cursor,
                    ping,
                };
                let msg = Bytes::from(hdr.encode_with(&png));
                hub.stats.bytes_out.fetch_add(msg.len() as u64, Relaxed);
                msgs.push(msg);
            }
            hub.broadcast_video(&VideoOut::Png(Arc::new(msgs)));
        }
    }
    Ok(())
}

/// Sends the current picture: the encoder's rendering of it, or, when it is a refresh of a picture
/// the encoder has already refined once, a repeat built without the encoder.
fn encode_h264(
    hub: &Hub,
    enc: &mut Encoders,
    keyframe: bool,
    changed: bool,
    (capture_us, t5): (Option<u64>, u64),
) -> Result<(), crate::video::VideoError> {
    let Some(pic) = enc.conv.picture() else {
        return Ok(());
    };
    let ts_ms = realtime_us() / 1000;
    let started = Instant::now();
    let repeat = (!keyframe && !changed && enc.encodes_of_picture > ENCODED_REFRESHES)
        .then(|| enc.repeat.repeat())
        .flatten();
    let f = match repeat {
        Some(data) => {
            hub.stats.repeats.fetch_add(1, Relaxed);
            EncodedFrame {
                data,
                keyframe: false,
            }
        }
        None => {
            let encoded = enc.h264.encode(pic, keyframe, ts_ms)?;
            let Some(f) = encoded else {
                enc.policy.record_encode_time(started.elapsed());
                return Ok(());
            };
            enc.encodes_of_picture = if changed {
                1
            } else {
                enc.encodes_of_picture.saturating_add(1)
            };
            match enc.repeat.pass(&f.data) {
                Ok(data) => EncodedFrame {
                    data,
                    keyframe: f.keyframe,
                },
                Err(e) => {
                    // Cannot happen with the encoder's own stream; an IDR puts everything right.
                    tracing::warn!("{e}; sending a keyframe instead");
                    enc.policy.request_keyframe();
                    return Ok(());
                }
            }
        }
    };
    enc.policy.record_encode_time(started.elapsed());
    let t6 = realtime_us();
    let rtp_timestamp = enc.clock.stamp(capture_us, t5);
    hub.stats
        .encode_us_last
        .store(t6.saturating_sub(t5), Relaxed);
    hub.stats.frames_encoded.fetch_add(1, Relaxed);
    hub.stats.bytes_out.fetch_add(f.data.len() as u64, Relaxed);
    if f.keyframe {
        hub.stats.keyframes.fetch_add(1, Relaxed);
    }
    let mut ping = enc.ping;
    if ping.sequence != 0 {
        ping.t[5] = t6;
        ping.t[6] = realtime_us();
    }
    enc.last_ping_sent = ping.sequence;
    let meta = Bytes::copy_from_slice(&datachannel::encode_h264_meta(&enc.cursor, &ping));
    hub.broadcast_video(&VideoOut::H264 {
        data: f.data,
        rtp_timestamp,
        keyframe: f.keyframe,
        meta,
    });
    Ok(())
}

pub(super) fn audio_thread(hub: Arc<Hub>, _rt: tokio::runtime::Handle) {
    let mut enc = match AudioEncoder::new(96_000) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("audio disabled: {e}");
            return;
        }
    };
    let period = Duration::from_millis(20);
    let mut next = Instant::now() + period;
    // The 20 ms slot number: the RTP timestamp follows it, so skipped silence still takes its time.
    let mut slot: u64 = 0;
    while !hub.shutdown.load(Relaxed) {
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next += period;
        slot += 1;
        // After a long stall (suspend, debugger) do not try to catch up with a burst.
        if Instant::now() > next + period * 5 {
            next = Instant::now() + period;
        }
        if !hub.listening() {
            // Nobody to hear it: neither ask the emulator for sound nor encode. Old sound is dropped so
            // the next viewer starts with what plays then.
            enc.clear();
            continue;
        }
        let sender = Hub::lock(&hub.emulator).as_ref().map(|e| e.sender.clone());
        {
            let mut src = Hub::lock(&hub.audio_source);
            if let (Some(a), Some(s)) = (src.as_mut(), sender) {
                // Pull model: ask for the next 20 ms, take what the ring holds now.
                let _ = s.send(&InputMessage::AudioRequest {
                    samples: PACKET_FRAMES as u32,
                });
                // Take everything the ring holds (at most its 3 frames), so a late frame is not left
                // behind to lag the stream by a packet forever.
                for _ in 0..3 {
                    match a.read_audio() {
                        Ok(f) if !f.silence => {
                            if let Err(e) = enc.push(f.rate, f.channels, &f.samples) {
                                tracing::debug!("audio frame skipped: {e}");
                            }
                        }
                        Ok(_) => break,
                        Err(e) => {
                            tracing::debug!("audio: {e}");
                            *src = None;
                            break;
                        }
                    }
                }
            }
        }
        match enc.next_packet() {
            Ok(Some(data)) => {
                hub.stats.audio_packets.fetch_add(1, Relaxed);
                hub.broadcast_audio(&AudioPacket { data, slot });
            }
            Ok(None) => {}
            Err(e) => tracing::warn!("Opus: {e}"),
        }
        hub.stats.audio_skipped.store(enc.skipped, Relaxed);
        hub.stats.audio_underruns.store(enc.underruns, Relaxed);
    }
}
