//! The media threads: attach to the emulator, encode its frames once for every viewer, pull and
//! encode its sound; and re-attach when it comes back.

use super::config::ServeConfig;
use super::hub::{EmuLink, Hub};
use crate::audio::{AudioEncoder, AudioPacket, PACKET_FRAMES};
use crate::datachannel::{self, Cursor, PingEcho, PngHeader};
use crate::peer::VideoOut;
use crate::supervisor;
use crate::video::pipeline::{Frame, VideoOutput};
use crate::video::FrameRef;
use bytes::Bytes;
use macemu_ipc::drive::{DriveCommand, DriveReport};
use macemu_ipc::{realtime_us, InputMessage, IpcError, Subscriber};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Input messages waiting for a stuck emulator, at most; further ones are dropped.
const INPUT_QUEUE: usize = 256;
/// How long the video thread waits for a frame before it looks at refreshes and keyframes due.
const FRAME_WAIT: Duration = Duration::from_millis(100);
/// The same while a viewer is joining or a keyframe was just asked for: without a new frame the
/// keyframe is made of the current picture, so an emulator that publishes only on change does not
/// hold it back for [`FRAME_WAIT`].
const JOIN_FRAME_WAIT: Duration = Duration::from_millis(10);

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

/// The video driver: waits for the emulator's frames, hands them to the pipeline with the time, and
/// fans out what it returns.
pub(super) fn media_thread(hub: Arc<Hub>, cfg: ServeConfig) {
    let mut sub: Option<Subscriber> = None;
    let mut codec = hub.codec();
    let mut pipeline = codec.pipeline(&cfg, hub.keyframe_interval);
    // Encoded frames and bytes as of the start of the rate window.
    let mut fps_window = (Instant::now(), 0, 0);
    let mut next_scan = Instant::now();
    while !hub.shutdown.load(Relaxed) {
        let Some(s) = sub.as_mut() else {
            if Instant::now() >= next_scan {
                sub = attach(&hub, &cfg);
                if sub.is_some() {
                    pipeline.restart(codec.pipeline(&cfg, hub.keyframe_interval));
                    fps_window = (Instant::now(), 0, 0);
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
        if hub.codec() != codec {
            codec = hub.codec();
            pipeline.restart(codec.pipeline(&cfg, hub.keyframe_interval));
            fps_window = (Instant::now(), 0, 0);
        }
        let key = hub.keyframe.swap(false, Relaxed);
        if key {
            pipeline.request_keyframe();
        }
        let png = codec.rtp().is_none();
        let mut idle = false;
        let mut gone = None;
        let wait = if key || hub.joining() {
            JOIN_FRAME_WAIT
        } else {
            FRAME_WAIT
        };
        // Wake for a refresh when it is due, not at the next poll: the refresh period is what the
        // viewers get.
        let wait = pipeline
            .until_refresh(Instant::now(), hub.connected_viewers(png))
            .map_or(wait, |due| wait.min(due.max(Duration::from_millis(1))));
        match s.wait_frame(wait) {
            Ok(Some(view)) => {
                let now = Instant::now();
                let t5 = realtime_us();
                hub.stats.frames_in.fetch_add(1, Relaxed);
                let ping = view.ping.map(|p| {
                    // Server → emulator → frame → server, on the server's clock.
                    if p.t2_server_us > 0 && t5 >= p.t2_server_us {
                        hub.stats
                            .ping_rtt_hint_us
                            .store(t5 - p.t2_server_us, Relaxed);
                    }
                    PingEcho {
                        sequence: p.sequence,
                        t1_browser_ms: p.t1_browser_ms,
                        t2_server_us: p.t2_server_us,
                        t3_emulator_us: p.t3_emulator_us,
                        t4_frame_us: p.t4_frame_us,
                        t5_server_read_us: t5,
                        ..PingEcho::default()
                    }
                });
                let frame = Frame {
                    frame: FrameRef {
                        data: view.data,
                        width: view.width,
                        height: view.height,
                        stride: view.stride,
                        format: view.pixel_format,
                    },
                    dirty: view.dirty,
                    capture_us: view.timestamp_us,
                    cursor: Cursor {
                        x: view.cursor_x,
                        y: view.cursor_y,
                        visible: view.cursor_visible,
                    },
                    ping,
                };
                if let Some(e) = Hub::lock(&hub.emulator).as_mut() {
                    e.width = view.width;
                    e.height = view.height;
                    e.frame_count = view.frame_count;
                }
                let viewers = hub.connected_viewers(png);
                match pipeline.on_frame(&frame, now, t5, viewers) {
                    Ok(Some(out)) => send(&hub, out, t5),
                    Ok(None) => {}
                    Err(e) => tracing::warn!("frame dropped: {e}"),
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
            let t5 = realtime_us();
            let viewers = hub.connected_viewers(png);
            match pipeline.on_idle(Instant::now(), t5, viewers) {
                Ok(Some(out)) => send(&hub, out, t5),
                Ok(None) => {}
                Err(e) => tracing::warn!("refresh failed: {e}"),
            }
            if let Ok(st) = s.state() {
                if let Some(e) = Hub::lock(&hub.emulator).as_mut() {
                    e.state = Some(st);
                    e.mouse_latency = s.mouse_latency();
                }
            }
        }
        update_rates(&hub, &mut fps_window);
    }
}

fn update_rates(hub: &Hub, fps_window: &mut (Instant, u64, u64)) {
    let (t0, f0, b0) = *fps_window;
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
        *fps_window = (Instant::now(), f, b);
    }
}

/// Stamps a pipeline output with the send-side times, counts it and hands it to the viewers; `t5` is
/// when its frame arrived (or the refresh began).
fn send(hub: &Hub, out: VideoOutput, t5: u64) {
    match out {
        VideoOutput::Picture(p) => {
            let t6 = realtime_us();
            hub.stats
                .encode_us_last
                .store(t6.saturating_sub(t5), Relaxed);
            hub.stats.frames_encoded.fetch_add(1, Relaxed);
            hub.stats.bytes_out.fetch_add(p.data.len() as u64, Relaxed);
            if p.keyframe {
                hub.stats.keyframes.fetch_add(1, Relaxed);
            }
            if p.repeat {
                hub.stats.repeats.fetch_add(1, Relaxed);
            }
            let mut ping = p.ping;
            if ping.sequence != 0 {
                ping.t6_encoded_us = t6;
                ping.t7_sent_us = realtime_us();
            }
            let meta = Bytes::copy_from_slice(&datachannel::encode_h264_meta(&p.cursor, &ping));
            hub.broadcast_video(&VideoOut::Rtp {
                data: p.data,
                rtp_timestamp: p.rtp_timestamp,
                keyframe: p.keyframe,
                meta,
                news: p.meta,
            });
        }
        VideoOutput::Echo { cursor, mut ping } => {
            let t = realtime_us();
            ping.t6_encoded_us = t;
            ping.t7_sent_us = t;
            let meta = datachannel::encode_h264_meta(&cursor, &ping);
            hub.broadcast_video(&VideoOut::Meta(Bytes::copy_from_slice(&meta)));
        }
        VideoOutput::Png(f) => {
            let t6 = realtime_us();
            hub.stats
                .encode_us_last
                .store(t6.saturating_sub(t5), Relaxed);
            hub.stats.frames_encoded.fetch_add(1, Relaxed);
            let mut msgs = Vec::with_capacity(f.bands.len());
            for (b, png) in f.bands {
                let t7 = realtime_us();
                let mut ping = f.ping;
                if ping.sequence != 0 {
                    ping.t6_encoded_us = t6;
                    ping.t7_sent_us = t7;
                }
                let hdr = PngHeader {
                    frame_ready_ms: t5 / 1000,
                    dirty_x: b.x,
                    dirty_y: b.y,
                    dirty_width: b.width,
                    dirty_height: b.height,
                    frame_width: f.width,
                    frame_height: f.height,
                    send_ms: t7 / 1000,
                    cursor: f.cursor,
                    ping,
                };
                let msg = Bytes::from(hdr.encode_with(&png));
                hub.stats.bytes_out.fetch_add(msg.len() as u64, Relaxed);
                msgs.push(msg);
            }
            hub.broadcast_video(&VideoOut::Png(Arc::new(msgs)));
        }
    }
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
