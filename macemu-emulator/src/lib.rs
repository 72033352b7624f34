//! The emulator process of the v4 architecture: a Macintosh model (a [`Machine`] from the
//! core's registry, the Mac Plus by default) published over `macemu-ipc`.
//!
//! Threads, as the architecture describes them, each owning its part and talking by channels:
//!
//! ```text
//!  tick (60.15 Hz) ──tick──▶ 68k ──screen snapshot──▶ video refresh ──▶ FramePublisher (shm + eventfd)
//!                            ▲  └──PCM──▶ resampler ◀── audio ──▶ AudioPublisher (shm ring)
//!  control socket ──events──┘                           ▲
//!       └───────────────────── AUDIO_REQUEST ───────────┘
//!  xpram: saves parameter RAM every 60 s when it changed, and at exit
//! ```
//!
//! Nothing here knows a model: screen geometry, depth and palette, the sound rate and the frame
//! rate all come from the [`Machine`]. The 68k thread alone owns the machine; nothing else locks it. Real-time pacing comes from the
//! tick thread, so a late frame is never "caught up" in a burst.

#![forbid(unsafe_code)]

mod control;
pub mod drives;
pub mod prefs;
pub mod resample;
pub mod video;
pub mod xpram;

use crate::video::{Converter, Scope, Source};
use control::MouseState;
use macemu_core::machine::{Machine, Model, Palette, Screen, SourceFormat};
use macemu_core::rom::{self, RomError, RomKind};
use macemu_ipc::{
    AudioPublisher, EmulatorState, FrameMeta, FramePublisher, InputListener, InputMessage,
    PixelFormat, Publisher,
};
use resample::Resampler;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The demo ROM built from `roms/demo/` (see `scripts/build-demo-rom.sh`).
pub static DEMO_ROM: &[u8] = include_bytes!("../../roms/demo.rom");

/// The Mac Plus's figures (the default model), for callers; the emulator itself asks its
/// [`Machine`] for clock, frame rate and sound rate.
pub const CPU_HZ: f64 = macemu_core::mac::CPU_HZ as f64;
pub const FRAME_HZ: f64 = 60.15;
/// Sound samples the Plus plays per second, and the rate they are published at.
pub const MAC_SOUND_HZ: f64 = macemu_core::mac::sound::SAMPLE_RATE_HZ;
pub const PUBLISHED_SOUND_HZ: u32 = 22_050;
/// One 20 ms audio frame at the Plus's published rate.
pub const AUDIO_FRAME_SAMPLES: usize = PUBLISHED_SOUND_HZ as usize / 50;

/// The rate the v4 audio ring carries that is nearest to a machine's own (22,254.5 Hz -> 22,050).
pub fn published_rate(machine_hz: f64) -> u32 {
    macemu_ipc::AUDIO_RATES
        .into_iter()
        .min_by(|a, b| {
            let d = |r: u32| (f64::from(r) - machine_hz).abs();
            d(*a).total_cmp(&d(*b))
        })
        .unwrap_or(PUBLISHED_SOUND_HZ)
}

/// How fast the 68k runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speed {
    /// 7.8336 MHz and 60.15 frames a second, paced by the tick thread.
    Real,
    /// As fast as the host allows; the screen is still published at 60 Hz.
    Max,
}

/// Everything `emulate` needs to start.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Which machine to build (`--model`), from [`macemu_core::machine::MODELS`].
    pub model: &'static Model,
    /// The ROM image (the demo ROM when none is given).
    pub rom: Vec<u8>,
    /// RAM in bytes: 1, 2, 2.5 or 4 MiB.
    pub ram_size: usize,
    /// Where parameter RAM is kept between runs; `None` keeps it in memory only.
    pub xpram_path: Option<PathBuf>,
    pub speed: Speed,
    /// The pid in the shm and socket names (normally this process's).
    pub pid: u32,
    /// Seconds since 1904-01-01 to set the clock to at power-on.
    pub rtc_seconds: u32,
    /// Disks in the drives at power-on.
    pub disks: Vec<drives::DiskSpec>,
}

impl EmulatorConfig {
    /// The demo ROM, 4 MiB, real speed, this process's pid and the host's clock.
    pub fn demo() -> Self {
        EmulatorConfig {
            model: Model::default_model(),
            rom: DEMO_ROM.to_vec(),
            ram_size: 4 << 20,
            xpram_path: None,
            speed: Speed::Real,
            pid: std::process::id(),
            rtc_seconds: mac_time_now(),
            disks: Vec::new(),
        }
    }
}

/// Why the emulator could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("ROM: {0}")]
    Rom(#[from] RomError),
    #[error("reading ROM {}: {source}", path.display())]
    RomRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "ROM {} is larger than {limit} bytes, the size of the largest Macintosh ROM: \
         not a ROM image",
        path.display()
    )]
    RomTooLarge { path: PathBuf, limit: usize },
    #[error("machine: {0}")]
    Machine(String),
    #[error("disk: {0}")]
    Disk(#[from] drives::InsertError),
    #[error(transparent)]
    Ipc(#[from] macemu_ipc::IpcError),
    #[error(transparent)]
    Xpram(#[from] xpram::XpramError),
    #[error("starting a thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// Reads a ROM image from `path`, at most [`rom::MAX_ROM_SIZE`] bytes: a device such as
/// `/dev/zero` or a huge file is refused after one byte too many instead of read whole.
pub fn read_rom_file(path: &Path) -> Result<Vec<u8>, EmulatorError> {
    let file = std::fs::File::open(path).map_err(|source| EmulatorError::RomRead {
        path: path.to_path_buf(),
        source,
    })?;
    read_rom(file).map_err(|e| match e {
        ReadRomError::Io(source) => EmulatorError::RomRead {
            path: path.to_path_buf(),
            source,
        },
        ReadRomError::TooLarge => EmulatorError::RomTooLarge {
            path: path.to_path_buf(),
            limit: rom::MAX_ROM_SIZE,
        },
    })
}

enum ReadRomError {
    Io(std::io::Error),
    TooLarge,
}

fn read_rom(reader: impl Read) -> Result<Vec<u8>, ReadRomError> {
    let limit = rom::MAX_ROM_SIZE as u64 + 1;
    let mut image = Vec::with_capacity(rom::PLUS_ROM_SIZE);
    reader
        .take(limit)
        .read_to_end(&mut image)
        .map_err(ReadRomError::Io)?;
    if image.len() > rom::MAX_ROM_SIZE {
        return Err(ReadRomError::TooLarge);
    }
    Ok(image)
}

/// Seconds between the Mac epoch (1904-01-01) and the Unix epoch (1970-01-01).
const MAC_TO_UNIX: i64 = 2_082_844_800;

/// The Mac's clock reading for the host's clock now: seconds since 1904-01-01 in local time, as
/// the Mac RTC counts (the Mac knows no time zones; Control Panel sets local time).
pub fn mac_time_now() -> u32 {
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    mac_time(unix, local_utc_offset(unix))
}

/// The Mac RTC value for Unix time `unix` in a zone `utc_offset` seconds east of UTC. The RTC
/// is 32 bits wide and wraps (in 2040), as on the real machine.
pub fn mac_time(unix: i64, utc_offset: i32) -> u32 {
    (unix + i64::from(utc_offset) + MAC_TO_UNIX) as u32
}

/// The host's offset from UTC at `unix` in seconds (east positive): `TZ` when set, as the C
/// library reads it, else `/etc/localtime`. UTC when neither can be read.
pub fn local_utc_offset(unix: i64) -> i32 {
    let zone = match std::env::var("TZ") {
        // An empty TZ means UTC to the C library.
        Ok(tz) if tz.is_empty() => return 0,
        Ok(tz) => tz::TimeZone::from_posix_tz(&tz),
        Err(_) => tz::TimeZone::local(),
    };
    match zone {
        Ok(zone) => utc_offset_in(&zone, unix),
        Err(e) => {
            tracing::warn!("local time zone unknown ({e}); the Mac clock runs on UTC");
            0
        }
    }
}

fn utc_offset_in(zone: &tz::TimeZone, unix: i64) -> i32 {
    zone.find_local_time_type(unix)
        .map(|t| t.ut_offset())
        .unwrap_or(0)
}

/// The latest picture from the 68k thread, waiting for the video thread.
struct Snapshot {
    screen: Vec<u8>,
    geometry: Geometry,
    palette: Box<Palette>,
    frame: u64,
    /// `None` when the machine does not know where the OS draws the cursor.
    cursor: Option<(i16, i16)>,
}

/// A screen's shape, without its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Geometry {
    width: usize,
    height: usize,
    row_bytes: usize,
    format: SourceFormat,
}

impl Snapshot {
    fn new(mac: &dyn Machine) -> Snapshot {
        let mut snap = Snapshot {
            screen: Vec::new(),
            geometry: Geometry {
                width: 0,
                height: 0,
                row_bytes: 0,
                format: SourceFormat::Indexed1,
            },
            palette: Box::new(Palette::MONO),
            frame: 0,
            cursor: None,
        };
        snap.take(mac, 0);
        snap
    }

    /// Copies the machine's picture (its palette only when it changed).
    fn take(&mut self, mac: &dyn Machine, frame: u64) {
        let s: Screen<'_> = mac.screen();
        self.screen.clear();
        self.screen.extend_from_slice(s.data);
        self.geometry = Geometry {
            width: s.width,
            height: s.height,
            row_bytes: s.row_bytes,
            format: s.format,
        };
        if *self.palette != *s.palette {
            *self.palette = s.palette.clone();
        }
        self.frame = frame;
        self.cursor = mac.cursor_position();
    }
}

struct Shared {
    stop: AtomicBool,
    snapshot: Mutex<Snapshot>,
    new_frame: Condvar,
    sound: Mutex<Resampler>,
    xpram: Mutex<Option<Vec<u8>>>,
    /// Mouse input latency (tenths of ms, EWMA) and sample count, from the control thread.
    mouse_latency: (AtomicU32, AtomicU32),
}

/// A running emulator. Dropping it (or [`Emulator::stop`]) stops every thread and unlinks the
/// shared memory and socket.
pub struct Emulator {
    shared: Arc<Shared>,
    threads: Vec<(&'static str, JoinHandle<()>)>,
    pid: u32,
    rom_kind: RomKind,
}

impl Emulator {
    /// Checks the ROM, builds the machine, creates the IPC resources and starts the threads.
    pub fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        let rom_kind = rom::identify(&config.rom)?;
        let mut mac = config
            .model
            .build(&config.rom, config.ram_size)
            .map_err(|e| EmulatorError::Machine(e.to_string()))?;
        // The browser's pointer is absolute: position the cursor through the OS.
        if !mac.enable_os_helpers() {
            tracing::info!(
                model = config.model.name,
                "no OS helpers: absolute mouse positions are ignored"
            );
        }
        mac.set_rtc_seconds(config.rtc_seconds);
        if let Some(path) = &config.xpram_path {
            if let Some(data) = xpram::load(path)? {
                mac.set_nvram(&data)
                    .map_err(|e| EmulatorError::Machine(e.to_string()))?;
            }
        }
        for d in &config.disks {
            let media = drives::open(&d.path, d.read_only)?;
            drives::insert(&mut *mac, d.slot, &d.path, media)?;
            tracing::info!(drive = %d.slot, path = %d.path.display(), "disk inserted");
        }
        let (width, height) = {
            let s = mac.screen();
            (s.width as u32, s.height as u32)
        };
        let audio_format = mac.audio_format();
        let rates = Rates {
            frame_hz: mac.frame_hz(),
            machine_sound_hz: audio_format.rate_hz,
            channels: usize::from(audio_format.channels.max(1)),
            published_sound_hz: published_rate(audio_format.rate_hz),
        };
        tracing::info!(
            model = config.model.name,
            width,
            height,
            frame_hz = rates.frame_hz,
            sound_hz = rates.machine_sound_hz,
            published_hz = rates.published_sound_hz,
            "machine built"
        );
        let publisher = Publisher::create_with_size(config.pid, width, height)?;
        let (frames, audio, input) = publisher.split();
        frames.set_state(EmulatorState::Running);

        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            snapshot: Mutex::new(Snapshot::new(&*mac)),
            new_frame: Condvar::new(),
            sound: Mutex::new(Resampler::new(
                rates.machine_sound_hz,
                f64::from(rates.published_sound_hz),
            )),
            xpram: Mutex::new(None),
            mouse_latency: (AtomicU32::new(0), AtomicU32::new(0)),
        });

        let (event_tx, event_rx) = mpsc::channel::<InputMessage>();
        let (drive_tx, drive_rx) = mpsc::channel::<drives::DriveRequest>();
        let (report_tx, report_rx) = mpsc::channel::<macemu_ipc::drive::DriveReport>();
        let (tick_tx, tick_rx) = mpsc::sync_channel::<()>(2);
        let (audio_tx, audio_rx) = mpsc::sync_channel::<u32>(8);
        let state = Arc::new(AtomicU32::new(EmulatorState::Running as u32));

        let mut threads = Vec::new();
        let spawn = |name: &'static str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(format!("macemu-{name}"))
                .spawn(f)
                .map(|h| (name, h))
        };
        {
            let sh = shared.clone();
            let st = state.clone();
            let speed = config.speed;
            threads.push(spawn(
                "68k",
                Box::new(move || {
                    cpu_thread(
                        mac,
                        sh,
                        st,
                        (event_rx, drive_rx, report_tx),
                        tick_rx,
                        speed,
                        rates,
                    )
                }),
            )?);
        }
        {
            let sh = shared.clone();
            let st = state.clone();
            let speed = config.speed;
            threads.push(spawn(
                "video",
                Box::new(move || video_thread(frames, sh, st, speed)),
            )?);
        }
        {
            let sh = shared.clone();
            threads.push(spawn(
                "control",
                Box::new(move || {
                    control_thread(input, sh, event_tx, (drive_tx, report_rx), audio_tx)
                }),
            )?);
        }
        {
            let sh = shared.clone();
            threads.push(spawn(
                "audio",
                Box::new(move || audio_thread(audio, sh, audio_rx, rates.published_sound_hz)),
            )?);
        }
        if config.speed == Speed::Real {
            let sh = shared.clone();
            threads.push(spawn(
                "tick",
                Box::new(move || tick_thread(sh, tick_tx, rates.frame_hz)),
            )?);
        } else {
            drop(tick_tx);
        }
        {
            let sh = shared.clone();
            let path = config.xpram_path.clone();
            threads.push(spawn("xpram", Box::new(move || xpram_thread(sh, path)))?);
        }
        Ok(Emulator {
            shared,
            threads,
            pid: config.pid,
            rom_kind,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// What the ROM was recognised as.
    pub fn rom_kind(&self) -> RomKind {
        self.rom_kind
    }

    /// The POSIX shared-memory name, e.g. `/macemu-video-1234`.
    pub fn shm_name(&self) -> String {
        macemu_ipc::shm_name(self.pid)
    }

    /// The control socket path, e.g. `/tmp/macemu-1234.sock`.
    pub fn socket_path(&self) -> PathBuf {
        PathBuf::from(macemu_ipc::control_socket_path(self.pid))
    }

    /// Whether every thread is still running (a thread only ends early on a fatal error).
    pub fn is_running(&self) -> bool {
        self.threads.iter().all(|(_, h)| !h.is_finished())
    }

    /// Stops all threads, saves parameter RAM and unlinks the IPC resources.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.new_frame.notify_all();
        for (name, handle) in self.threads.drain(..) {
            if handle.join().is_err() {
                tracing::error!("{name} thread panicked");
            }
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn get_state(state: &AtomicU32) -> EmulatorState {
    EmulatorState::from_u32(state.load(Ordering::SeqCst)).unwrap_or(EmulatorState::Stopped)
}

/// The machine's rates, read once at start.
#[derive(Clone, Copy, Debug)]
struct Rates {
    frame_hz: f64,
    machine_sound_hz: f64,
    channels: usize,
    published_sound_hz: u32,
}

/// The 68k: applies input, runs frames, hands pictures, sound and parameter RAM to the others.
fn cpu_thread(
    mut mac: Box<dyn Machine>,
    shared: Arc<Shared>,
    state: Arc<AtomicU32>,
    (events, drive_requests, reports): (
        Receiver<InputMessage>,
        Receiver<drives::DriveRequest>,
        mpsc::Sender<macemu_ipc::drive::DriveReport>,
    ),
    ticks: Receiver<()>,
    speed: Speed,
    rates: Rates,
) {
    let mut mouse = MouseState::default();
    let mut last_xpram = mac.nvram().to_vec();
    let mut mono = Vec::new();
    while !shared.stop.load(Ordering::Relaxed) {
        let idle = if get_state(&state) != EmulatorState::Running {
            // Stopped or paused: wait for a command.
            match events.recv_timeout(Duration::from_millis(20)) {
                Ok(e) => {
                    control::apply(&e, &mut *mac, &mut mouse, &state);
                    false
                }
                Err(RecvTimeoutError::Timeout) => true,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        } else if speed == Speed::Real {
            match ticks.recv_timeout(Duration::from_millis(100)) {
                Ok(()) => false,
                Err(RecvTimeoutError::Timeout) => true,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        } else {
            false
        };
        // Input is taken after the wait for the tick, right before the frame: what came while
        // waiting (nearly all of it, as a frame takes a fraction of its period to run) lands in
        // this frame, not one frame later.
        for event in events.try_iter() {
            control::apply(&event, &mut *mac, &mut mouse, &state);
        }
        for req in drive_requests.try_iter() {
            for r in drives::apply(&mut *mac, req) {
                let _ = reports.send(r);
            }
        }
        if idle || get_state(&state) != EmulatorState::Running {
            continue;
        }
        let report = mac.run_frame();
        for event in mac.take_drive_events() {
            let _ = reports.send(drives::event_report(event));
        }
        shared
            .snapshot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take(&*mac, report.frame);
        shared.new_frame.notify_one();
        {
            let samples = downmix(mac.audio_frame(), rates.channels, &mut mono);
            let mut sound = shared.sound.lock().unwrap_or_else(|e| e.into_inner());
            sound.push(samples);
            // Keep at most 100 ms queued: a listener that stops asking must not hear old sound.
            sound.trim(rates.machine_sound_hz as usize / 10);
        }
        if mac.take_nvram_changed() || mac.nvram() != last_xpram.as_slice() {
            last_xpram.clear();
            last_xpram.extend_from_slice(mac.nvram());
            *shared.xpram.lock().unwrap_or_else(|e| e.into_inner()) = Some(last_xpram.clone());
        }
    }
    // Hand the final parameter RAM to the xpram thread for its last save.
    *shared.xpram.lock().unwrap_or_else(|e| e.into_inner()) = Some(mac.nvram().to_vec());
}

/// The published stream is mono: interleaved channels are averaged (mono passes through).
fn downmix<'a>(samples: &'a [i16], channels: usize, out: &'a mut Vec<i16>) -> &'a [i16] {
    if channels <= 1 {
        return samples;
    }
    out.clear();
    out.extend(samples.chunks_exact(channels).map(|frame| {
        let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
        (sum / channels as i32) as i16
    }));
    out
}

/// Converts the latest screen to the shm frame and publishes it, about 60 times a second.
fn video_thread(
    mut frames: FramePublisher,
    shared: Arc<Shared>,
    state: Arc<AtomicU32>,
    speed: Speed,
) {
    let period = Duration::from_secs_f64(1.0 / 60.0);
    let mut converter = Converter::new();
    let mut palette = Box::new(Palette::MONO);
    let mut screen = Vec::new();
    let mut last_frame = u64::MAX;
    let mut last_publish = Instant::now() - period;
    let mut published_state = EmulatorState::Running;
    while !shared.stop.load(Ordering::Relaxed) {
        let (frame, cursor, geometry) = {
            let deadline = last_publish + period;
            let mut snap = shared.snapshot.lock().unwrap_or_else(|e| e.into_inner());
            while snap.frame == last_frame && !shared.stop.load(Ordering::Relaxed) {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                snap = shared
                    .new_frame
                    .wait_timeout(snap, left)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            screen.clear();
            screen.extend_from_slice(&snap.screen);
            if *palette != *snap.palette {
                *palette = (*snap.palette).clone();
            }
            (snap.frame, snap.cursor, snap.geometry)
        };
        if speed == Speed::Max {
            // At full speed frames come far faster than any display: publish at 60 Hz.
            let next = last_publish + period;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
        }
        let st = get_state(&state);
        if st != published_state {
            frames.set_state(st);
            published_state = st;
        }
        last_frame = frame;
        last_publish = Instant::now();
        let (width, height) = (geometry.width as u32, geometry.height as u32);
        let source = Source {
            data: &screen,
            width: geometry.width,
            height: geometry.height,
            stride: geometry.row_bytes,
            format: geometry.format,
        };
        let dirty = match frames.frame_mut(width, height, PixelFormat::Bgra) {
            Ok(out) => {
                let stride = out.stride;
                match converter.convert(
                    &source,
                    &palette,
                    PixelFormat::Bgra,
                    out.data,
                    stride,
                    Scope::Full,
                ) {
                    Ok(dirty) => dirty,
                    Err(e) => {
                        tracing::error!("video: cannot convert the screen: {e}");
                        continue;
                    }
                }
            }
            Err(e) => {
                tracing::error!("video: no frame buffer: {e}");
                continue;
            }
        };
        let (lat, samples) = (
            shared.mouse_latency.0.load(Ordering::Relaxed),
            shared.mouse_latency.1.load(Ordering::Relaxed),
        );
        frames.set_mouse_latency(lat, samples);
        let (cx, cy) = cursor.unwrap_or((0, 0));
        let meta = FrameMeta {
            dirty,
            cursor_x: cx.clamp(0, width.saturating_sub(1) as i16) as u16,
            cursor_y: cy.clamp(0, height.saturating_sub(1) as i16) as u16,
            cursor_visible: cursor.is_some(),
        };
        if let Err(e) = frames.publish(&meta) {
            tracing::error!("video: publish failed: {e}");
        }
    }
    frames.set_state(EmulatorState::Stopped);
}

/// Reads input messages from the server and routes them to the 68k and audio threads.
fn control_thread(
    mut input: InputListener,
    shared: Arc<Shared>,
    events: mpsc::Sender<InputMessage>,
    (drive_requests, reports): (
        mpsc::Sender<drives::DriveRequest>,
        Receiver<macemu_ipc::drive::DriveReport>,
    ),
    audio: SyncSender<u32>,
) {
    let mut latency = control::LatencyStats::default();
    while !shared.stop.load(Ordering::Relaxed) {
        // Drive commands: files are opened here, so the 68k thread never waits on the host.
        for cmd in input.take_drive_commands() {
            if drive_requests.send(drives::request(cmd)).is_err() {
                return;
            }
        }
        for r in reports.try_iter() {
            input.send_drive_report(&r);
        }
        match input.recv_timeout(Duration::from_millis(20)) {
            Ok(Some(msg)) => {
                if let Some(ms) = latency.observe(&msg) {
                    shared.mouse_latency.0.store(ms.0, Ordering::Relaxed);
                    shared.mouse_latency.1.store(ms.1, Ordering::Relaxed);
                }
                match control::route(&msg) {
                    control::Route::Machine => {
                        if events.send(msg).is_err() {
                            return;
                        }
                    }
                    control::Route::Audio(samples) => {
                        // A full queue means requests come faster than frames: drop the extra.
                        let _ = audio.try_send(samples);
                    }
                    control::Route::Handled => {}
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!("control: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Answers each AUDIO_REQUEST with one 20 ms mono frame at the published rate.
fn audio_thread(
    mut audio: AudioPublisher,
    shared: Arc<Shared>,
    requests: Receiver<u32>,
    rate: u32,
) {
    let mut buf = vec![0i16; rate as usize / 50];
    while !shared.stop.load(Ordering::Relaxed) {
        match requests.recv_timeout(Duration::from_millis(100)) {
            Ok(_requested) => {
                // The request counts samples at the server's 48 kHz; 20 ms is 20 ms at any rate.
                let n = shared
                    .sound
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .pull(&mut buf);
                // Short of samples (paused, or the 68k is behind): pad with silence.
                buf[n..].fill(0);
                match audio.push(rate, 1, &buf) {
                    Ok(true) => {}
                    Ok(false) => tracing::debug!("audio: ring full, frame dropped"),
                    Err(e) => tracing::error!("audio: {e}"),
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

/// Paces the 68k at the machine's frame rate from a fixed schedule (no drift, no bursts).
fn tick_thread(shared: Arc<Shared>, ticks: SyncSender<()>, frame_hz: f64) {
    let period = Duration::from_secs_f64(1.0 / frame_hz.clamp(1.0, 1000.0));
    let start = Instant::now();
    let mut n: u32 = 0;
    while !shared.stop.load(Ordering::Relaxed) {
        n = n.wrapping_add(1);
        let due = start + period * n;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else if now - due > period * 4 {
            // Far behind (host suspended): skip the missed ticks instead of bursting.
            n += ((now - due).as_secs_f64() / period.as_secs_f64()) as u32;
        }
        // Full means the 68k is late; dropping the tick slows it instead of catching up.
        match ticks.try_send(()) {
            Ok(()) | Err(mpsc::TrySendError::Full(())) => {}
            Err(mpsc::TrySendError::Disconnected(())) => return,
        }
    }
}

/// Saves parameter RAM every 60 s if it changed, and once more when stopping.
fn xpram_thread(shared: Arc<Shared>, path: Option<PathBuf>) {
    let save = |shared: &Shared| {
        let pending = shared
            .xpram
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let (Some(path), Some(data)) = (&path, pending) {
            // The file format holds the RTC's 256 bytes, the parameter RAM of every model here.
            let Ok(data) = <[u8; xpram::XPRAM_SIZE]>::try_from(data.as_slice()) else {
                tracing::error!(
                    "parameter RAM of {} bytes does not fit the {}-byte XPRAM file; not saved",
                    data.len(),
                    xpram::XPRAM_SIZE
                );
                return;
            };
            match xpram::save(path, &data) {
                Ok(()) => tracing::debug!("xpram saved to {}", path.display()),
                Err(e) => tracing::error!("{e}"),
            }
        }
    };
    let mut last = Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() >= Duration::from_secs(60) {
            save(&shared);
            last = Instant::now();
        }
    }
    // The 68k thread leaves its final XPRAM before it ends; give it a moment.
    for _ in 0..50 {
        if shared.xpram.lock().map(|x| x.is_some()).unwrap_or(false) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    save(&shared);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sound_is_published_at_the_nearest_ring_rate() {
        assert_eq!(published_rate(MAC_SOUND_HZ), 22_050);
        assert_eq!(published_rate(44_100.0), 44_100);
        assert_eq!(published_rate(47_000.0), 48_000);
        assert_eq!(published_rate(8_000.0), 11_025);
    }

    #[test]
    fn stereo_is_averaged_to_mono_and_mono_passes_through() {
        let mut buf = Vec::new();
        assert_eq!(downmix(&[1, 2, 3], 1, &mut buf), &[1, 2, 3]);
        assert_eq!(
            downmix(&[100, 300, -32768, -32768, 7], 2, &mut buf),
            &[200, -32768]
        );
    }

    #[test]
    fn snapshots_follow_the_machines_screen_and_cursor() {
        let mut mac = Model::default_model()
            .build(DEMO_ROM, 4 << 20)
            .expect("the demo ROM builds a Plus");
        let snap = Snapshot::new(&*mac);
        assert_eq!(
            snap.geometry,
            Geometry {
                width: 512,
                height: 342,
                row_bytes: 64,
                format: SourceFormat::Indexed1
            }
        );
        assert_eq!(snap.screen.len(), 64 * 342);
        assert_eq!(*snap.palette, Palette::MONO);
        assert_eq!(snap.cursor, None);
        mac.enable_os_helpers();
        let mut snap = snap;
        snap.take(&*mac, 7);
        assert_eq!((snap.frame, snap.cursor.is_some()), (7, true));
    }

    #[test]
    fn mac_time_counts_local_seconds_since_1904() {
        // 2000-02-03 04:05:06 UTC.
        let unix = 949_550_706;
        assert_eq!(mac_time(unix, 0), 3_032_395_506);
        // Central European Time is an hour ahead: the Mac reads 05:05:06.
        assert_eq!(mac_time(unix, 3600), 3_032_395_506 + 3600);
        // US Pacific is eight hours behind.
        assert_eq!(mac_time(unix, -8 * 3600), 3_032_395_506 - 8 * 3600);
        // The Unix epoch is 1970-01-01 00:00 on the Mac too when the zone is UTC.
        assert_eq!(mac_time(0, 0), 2_082_844_800);
        // The 32-bit clock wraps on 2040-02-06 06:28:16 UTC, as the real RTC does.
        assert_eq!(mac_time((1i64 << 32) - MAC_TO_UNIX, 0), 0);
    }

    #[test]
    fn offsets_follow_the_zone_and_its_daylight_saving_rules() {
        let cet = tz::TimeZone::from_posix_tz("CET-1CEST,M3.5.0,M10.5.0/3").expect("TZ rule");
        // 2000-02-03 (winter) and 2000-07-01 12:00 UTC (summer).
        assert_eq!(utc_offset_in(&cet, 949_550_706), 3600);
        assert_eq!(utc_offset_in(&cet, 962_452_800), 7200);
        let pacific = tz::TimeZone::from_posix_tz("PST8PDT,M3.2.0,M11.1.0").expect("TZ rule");
        assert_eq!(utc_offset_in(&pacific, 949_550_706), -8 * 3600);
        assert_eq!(utc_offset_in(&pacific, 962_452_800), -7 * 3600);
    }

    #[test]
    fn rom_files_are_read_up_to_the_largest_rom_size() {
        let image = read_rom(DEMO_ROM).ok().expect("the demo ROM reads");
        assert_eq!(image, DEMO_ROM);
        let largest = vec![0u8; rom::MAX_ROM_SIZE];
        assert_eq!(
            read_rom(&largest[..]).ok().map(|v| v.len()),
            Some(largest.len())
        );
        // An endless stream is cut off one byte past the limit.
        assert!(matches!(
            read_rom(std::io::repeat(0)),
            Err(ReadRomError::TooLarge)
        ));
    }

    #[test]
    fn an_endless_device_is_refused_with_a_clear_error() {
        let dev_zero = Path::new("/dev/zero");
        if !dev_zero.exists() {
            return;
        }
        let err = read_rom_file(dev_zero).expect_err("/dev/zero is no ROM");
        assert!(matches!(err, EmulatorError::RomTooLarge { .. }), "{err}");
        assert!(
            err.to_string().contains("larger than 1048576 bytes"),
            "{err}"
        );
        let missing = read_rom_file(Path::new("/nonexistent/plus.rom")).expect_err("missing");
        assert!(
            matches!(missing, EmulatorError::RomRead { .. }),
            "{missing}"
        );
        assert!(missing.to_string().contains("/nonexistent/plus.rom"));
    }
}
