//! The state shared by the HTTP API, signaling sessions and media threads: the viewers and their
//! fan-out, the attached emulator, statistics, and the HTTP API's controls.

use super::config::ServeConfig;
use crate::audio::AudioPacket;
use crate::codec::Codec;
use crate::http::{self, Control, EmulatorAction};
use crate::peer::VideoOut;
use crate::supervisor::EmulatorProcess;
use macemu_ipc::drive::{DriveCommand, DriveReport, WireSlot};
use macemu_ipc::{Command, EmulatorState, InputMessage, InputQueue, MouseMode};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};

/// One viewer as the media threads see it.
pub(super) struct ViewerSlot {
    pub(super) video: mpsc::Sender<VideoOut>,
    pub(super) audio: mpsc::Sender<AudioPacket>,
    pub(super) png: bool,
    pub(super) connected: bool,
    /// A new viewer, or one after a dropped encoded picture, gets nothing until the next keyframe:
    /// pictures before it could not be decoded.
    pub(super) waiting_key: bool,
}

impl ViewerSlot {
    /// A viewer still negotiating, waiting for its first keyframe.
    pub(super) fn new(
        video: mpsc::Sender<VideoOut>,
        audio: mpsc::Sender<AudioPacket>,
        png: bool,
    ) -> Self {
        Self {
            video,
            audio,
            png,
            connected: false,
            waiting_key: true,
        }
    }
}

pub(super) struct EmuLink {
    pub(super) pid: u32,
    /// Never blocks: a writer thread talks to the emulator (a stuck one must not stall a worker).
    pub(super) sender: InputQueue,
    pub(super) width: u32,
    pub(super) height: u32,
    pub(super) state: Option<EmulatorState>,
    /// The emulator's frame counter, as of the last frame read.
    pub(super) frame_count: u64,
    /// Mouse latency the emulator measured (average in 0.1 ms, samples).
    pub(super) mouse_latency: (u32, u32),
}

#[derive(Default)]
pub(super) struct Stats {
    pub(super) frames_in: AtomicU64,
    pub(super) frames_encoded: AtomicU64,
    pub(super) keyframes: AtomicU64,
    pub(super) repeats: AtomicU64,
    pub(super) bytes_out: AtomicU64,
    pub(super) dropped: AtomicU64,
    pub(super) encode_us_last: AtomicU64,
    pub(super) audio_packets: AtomicU64,
    pub(super) audio_skipped: AtomicU64,
    pub(super) audio_underruns: AtomicU64,
    pub(super) reconnects: AtomicU64,
    pub(super) ping_rtt_hint_us: AtomicU64,
    pub(super) fps_milli: AtomicU64,
    pub(super) kbps: AtomicU64,
}

/// State shared by the HTTP API, signaling sessions and media threads.
pub struct Hub {
    pub(super) codec: Mutex<Codec>,
    pub(super) viewers: Mutex<HashMap<String, ViewerSlot>>,
    pub(super) keyframe: AtomicBool,
    pub(super) emulator: Mutex<Option<EmuLink>>,
    pub(super) audio_source: Mutex<Option<macemu_ipc::AudioSubscriber>>,
    pub(super) mouse_mode: Mutex<MouseMode>,
    pub(super) stats: Stats,
    pub(super) codec_tx: broadcast::Sender<Codec>,
    pub(super) shutdown: AtomicBool,
    pub(super) process: EmulatorProcess,
    pub(super) started: Instant,
    pub(super) keyframe_interval: Duration,
    /// The attached emulator's drives as it last reported them.
    pub(super) drives: Mutex<BTreeMap<WireSlot, DriveReport>>,
}

impl Hub {
    pub(super) fn new(cfg: &ServeConfig) -> Arc<Self> {
        Arc::new(Self {
            codec: Mutex::new(cfg.codec),
            viewers: Mutex::new(HashMap::new()),
            keyframe: AtomicBool::new(true),
            emulator: Mutex::new(None),
            audio_source: Mutex::new(None),
            mouse_mode: Mutex::new(MouseMode::Absolute),
            stats: Stats::default(),
            codec_tx: broadcast::channel(8).0,
            shutdown: AtomicBool::new(false),
            process: EmulatorProcess::new(cfg.emulator_cmd.clone()),
            started: Instant::now(),
            keyframe_interval: cfg.limits.keyframe_interval,
            drives: Mutex::new(BTreeMap::new()),
        })
    }

    pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn codec(&self) -> Codec {
        *Self::lock(&self.codec)
    }

    pub(super) fn request_keyframe(&self) {
        self.keyframe.store(true, Relaxed);
    }

    /// A viewer is negotiating: its keyframe will be asked for as soon as it is connected.
    pub(super) fn joining(&self) -> bool {
        Self::lock(&self.viewers).values().any(|v| !v.connected)
    }

    pub(super) fn connected_viewers(&self, png: bool) -> bool {
        Self::lock(&self.viewers)
            .values()
            .any(|v| v.connected && v.png == png)
    }

    /// Sends input to the emulator, if one is attached. Mouse mode is remembered for later emulators.
    pub(super) fn send_input(&self, msg: &InputMessage) {
        if let InputMessage::MouseMode(m) = msg {
            *Self::lock(&self.mouse_mode) = *m;
        }
        let sender = Self::lock(&self.emulator)
            .as_ref()
            .map(|e| e.sender.clone());
        if let Some(s) = sender {
            if let Err(e) = s.send(msg) {
                tracing::debug!("input not delivered: {e}");
            }
        }
    }

    /// Sends viewer input, never blocking: the emulator link queues it for its writer thread.
    pub(super) fn queue_input(&self, msg: InputMessage) {
        self.send_input(&msg);
    }

    /// Hands an encoded picture or PNG message to every connected viewer of that kind, never blocking.
    pub(super) fn broadcast_video(&self, out: &VideoOut) {
        let (png, key) = match out {
            VideoOut::Rtp { keyframe, .. } => (false, *keyframe),
            VideoOut::Png(_) => (true, false),
            VideoOut::Meta(_) => {
                // Metadata alone (a ping echo on a static screen): best effort, no keyframe logic.
                for v in Self::lock(&self.viewers).values() {
                    if v.connected && !v.png {
                        let _ = v.video.try_send(out.clone());
                    }
                }
                return;
            }
        };
        let mut need_key = false;
        for v in Self::lock(&self.viewers).values_mut() {
            if !v.connected || v.png != png {
                continue;
            }
            if v.waiting_key && !key && !png {
                continue;
            }
            match v.video.try_send(out.clone()) {
                Ok(()) => v.waiting_key = false,
                Err(_) => {
                    self.stats.dropped.fetch_add(1, Relaxed);
                    if !png {
                        v.waiting_key = true;
                        need_key = true;
                    }
                }
            }
        }
        if need_key {
            self.request_keyframe();
        }
    }

    /// Somebody is connected to hear audio.
    pub(super) fn listening(&self) -> bool {
        Self::lock(&self.viewers).values().any(|v| v.connected)
    }

    pub(super) fn broadcast_audio(&self, pkt: &AudioPacket) {
        for v in Self::lock(&self.viewers).values() {
            if v.connected {
                let _ = v.audio.try_send(pkt.clone());
            }
        }
    }

    pub(super) fn status_json(&self) -> Value {
        let emu = Self::lock(&self.emulator);
        let s = &self.stats;
        let viewers = Self::lock(&self.viewers);
        let state_name = |st: EmulatorState| match st {
            EmulatorState::Stopped => "stopped",
            EmulatorState::Running => "running",
            EmulatorState::Paused => "paused",
        };
        let managed = self.process.pid();
        let mut v = json!({
            "emulator": match emu.as_ref() {
                Some(e) => json!({
                    "connected": true, "pid": e.pid, "width": e.width, "height": e.height,
                    "state": e.state.map(state_name),
                }),
                None => json!({"connected": false, "managed_pid": managed}),
            },
            "codec": self.codec().name(),
            "peers": viewers.values().filter(|v| v.connected).count(),
            "peers_negotiating": viewers.values().filter(|v| !v.connected).count(),
            "fps": s.fps_milli.load(Relaxed) as f64 / 1000.0,
            "bitrate_kbps": s.kbps.load(Relaxed),
            "frames_in": s.frames_in.load(Relaxed),
            "frames_encoded": s.frames_encoded.load(Relaxed),
            "keyframes": s.keyframes.load(Relaxed),
            "repeats": s.repeats.load(Relaxed),
            "frames_dropped": s.dropped.load(Relaxed),
            "encode_ms_last": s.encode_us_last.load(Relaxed) as f64 / 1000.0,
            "audio": {
                "packets": s.audio_packets.load(Relaxed),
                "silent_skipped": s.audio_skipped.load(Relaxed),
                "underruns": s.audio_underruns.load(Relaxed),
            },
            "emulator_reconnects": s.reconnects.load(Relaxed),
            "latency": {"emulator_ping_us": s.ping_rtt_hint_us.load(Relaxed)},
            "mouse_mode": http::mouse_mode_name(*Self::lock(&self.mouse_mode)),
            "uptime_s": self.started.elapsed().as_secs(),
            // The v4 server's fields.
            "emulator_connected": emu.is_some(),
            "emulator_running": managed.is_some()
                || emu.as_ref().is_some_and(|e| e.state == Some(EmulatorState::Running)),
            "emulator_pid": emu.as_ref().map_or(0, |e| e.pid),
        });
        if let Some(e) = emu.as_ref() {
            v["video"] = json!({
                "width": e.width, "height": e.height, "frame_count": e.frame_count,
                "state": e.state.map_or(0, |st| st as u32),
            });
            v["mouse_latency_ms"] = json!(f64::from(e.mouse_latency.0) / 10.0);
            v["mouse_latency_samples"] = json!(e.mouse_latency.1);
        }
        v
    }
}

impl Control for Hub {
    fn status(&self) -> Value {
        self.status_json()
    }
    fn codec(&self) -> String {
        Hub::codec(self).name().into()
    }
    fn set_codec(&self, codec: &str) -> Result<(), String> {
        let c: Codec = codec.parse()?;
        let changed = {
            let mut g = Self::lock(&self.codec);
            std::mem::replace(&mut *g, c) != c
        };
        if changed {
            tracing::info!(codec = c.name(), "codec switched; viewers reconnect");
            let _ = self.codec_tx.send(c);
            self.request_keyframe();
        }
        Ok(())
    }
    fn drives(&self) -> Option<Vec<DriveReport>> {
        Self::lock(&self.emulator).as_ref()?;
        Some(Self::lock(&self.drives).values().cloned().collect())
    }
    fn mouse_mode(&self) -> MouseMode {
        *Self::lock(&self.mouse_mode)
    }
    fn set_mouse_mode(&self, mode: MouseMode) {
        self.send_input(&InputMessage::MouseMode(mode));
    }
    fn drive(&self, cmd: DriveCommand) -> Result<(), String> {
        let sender = Self::lock(&self.emulator)
            .as_ref()
            .map(|e| e.sender.clone());
        let Some(s) = sender else {
            return Err("no emulator is attached".into());
        };
        s.send_drive(&cmd).map_err(|e| e.to_string())
    }

    fn emulator(&self, action: EmulatorAction) -> Result<String, String> {
        let attached = Self::lock(&self.emulator).as_ref().map(|e| e.pid);
        match action {
            EmulatorAction::Start => match attached {
                Some(pid) => {
                    self.send_input(&InputMessage::Command(Command::Start));
                    Ok(format!("emulator {pid} told to start"))
                }
                None => self
                    .process
                    .start()
                    .map(|pid| format!("emulator launched (pid {pid})"))
                    .map_err(|e| {
                        format!(
                            "cannot launch {}: {e}",
                            self.process.command_line().join(" ")
                        )
                    }),
            },
            EmulatorAction::Stop => {
                self.send_input(&InputMessage::Command(Command::Stop));
                if self.process.stop() {
                    Ok("emulator process stopped".into())
                } else if attached.is_some() {
                    Ok("emulator told to stop".into())
                } else {
                    Err("no emulator attached".into())
                }
            }
            EmulatorAction::Restart => {
                if self.process.pid().is_some() || attached.is_none() {
                    self.process
                        .restart()
                        .map(|pid| format!("emulator relaunched (pid {pid})"))
                        .map_err(|e| format!("cannot launch: {e}"))
                } else {
                    self.send_input(&InputMessage::Command(Command::Reset));
                    Ok("emulator (not launched by this server) told to reset".into())
                }
            }
            EmulatorAction::Reset => match attached {
                Some(_) => {
                    self.send_input(&InputMessage::Command(Command::Reset));
                    Ok("emulator reset".into())
                }
                None => Err("no emulator attached".into()),
            },
        }
    }
}
