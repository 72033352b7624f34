//! The video pipeline, sans-IO: frames and the current time go in, what to send comes out.
//!
//! It holds everything that decides what a viewer sees: the converter, the encoder behind
//! [`PictureEncoder`], the encode policy, the keyframe gate, the repeater and the RTP clock (or, in PNG
//! mode, the rectangle planner and the PNG bander), and the cursor and ping echo that ride along. It
//! has no threads, sockets, clocks or sleeps: the driver waits for frames, reads its clocks, passes the
//! times in and sends the outputs, so the tests below run it on simulated time.

use super::convert::{Converter, I420};
use super::h264::PictureEncoder;
use super::png::{PngBander, PngPlanner};
use super::policy::{Decision, EncodePolicy};
use super::repeat::Repeater;
use super::rtp::MediaClock;
use super::{FrameRef, Rect, VideoError};
use crate::datachannel::{Cursor, PingEcho};
use crate::limits::KeyframeGate;
use bytes::Bytes;
use std::time::{Duration, Instant};

/// Encoder refreshes of an unchanged picture before repeats take over: rate control may have coded a
/// change coarsely, and one more pass lets the encoder sharpen it.
pub const ENCODED_REFRESHES: u32 = 1;

/// One frame from the emulator, with what rides along with it.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub frame: FrameRef<'a>,
    /// What changed since the previous frame (untrusted: clamped here).
    pub dirty: Rect,
    /// When the emulator finished the frame, CLOCK_REALTIME µs (untrusted).
    pub capture_us: u64,
    pub cursor: Cursor,
    /// A ping on its way back to the browser, if the frame carries a new one.
    pub ping: Option<PingEcho>,
}

/// What the pipeline asks the driver to send.
#[derive(Debug, Clone)]
pub enum VideoOutput {
    /// An encoded picture for the RTP video track, with its metadata.
    Picture(Picture),
    /// The metadata alone: a new ping echo while the screen is static.
    Echo { cursor: Cursor, ping: PingEcho },
    /// The PNG pieces of one frame, for the DataChannel.
    Png(PngFrame),
}

#[derive(Debug, Clone)]
pub struct Picture {
    /// One access unit, as it goes on the wire.
    pub data: Bytes,
    pub keyframe: bool,
    /// Built without the encoder ([`Repeater`]).
    pub repeat: bool,
    /// The metadata (cursor, ping echo) has news since the previous picture, or this is a keyframe
    /// (a viewer may have just joined): send it. A refresh of a still screen usually has none, and
    /// its metadata message would cost the DataChannel more than the picture costs the track.
    pub meta: bool,
    pub rtp_timestamp: u32,
    pub cursor: Cursor,
    /// The echo to send with it; the driver fills in the encode and send times.
    pub ping: PingEcho,
}

#[derive(Debug, Clone)]
pub struct PngFrame {
    /// Pieces of the planned rectangle, each with its PNG.
    pub bands: Vec<(Rect, Vec<u8>)>,
    pub width: u32,
    pub height: u32,
    pub cursor: Cursor,
    pub ping: PingEcho,
}

/// An encoded stream: H.264 today, any [`PictureEncoder`] with an RTP payloader tomorrow.
struct Encoded {
    conv: Converter,
    encoder: Box<dyn PictureEncoder>,
    policy: EncodePolicy,
    /// Refreshes of an unchanged picture without the encoder, for codecs that have one.
    repeat: Option<Repeater>,
    clock: MediaClock,
    /// Encoder pictures of the current content (1 = just the change itself).
    encodes_of_picture: u32,
    /// Dirty area not yet converted (frames skipped while nobody watched).
    pending: Rect,
}

struct Png {
    planner: PngPlanner,
    bander: PngBander,
}

enum Path {
    Encoded(Box<Encoded>),
    Png(Png),
}

/// See the module documentation.
pub struct VideoPipeline {
    path: Path,
    /// Keyframe requests (new viewer, PLI/FIR) wait here for the gate.
    gate: KeyframeGate,
    key_requested: bool,
    cursor: Cursor,
    ping: PingEcho,
    last_ping_sent: u32,
    /// The cursor of the last picture sent.
    cursor_sent: Option<Cursor>,
}

impl VideoPipeline {
    /// An encoded stream: a static screen is refreshed every `refresh` (stretched when encodes are
    /// expensive), forced keyframes are at least `keyframe_interval` apart.
    pub fn encoded(
        encoder: Box<dyn PictureEncoder>,
        repeat: Option<Repeater>,
        clock: MediaClock,
        refresh: Duration,
        keyframe_interval: Duration,
    ) -> Self {
        Self::with_path(
            Path::Encoded(Box::new(Encoded {
                conv: Converter::new(),
                encoder,
                policy: EncodePolicy::new(refresh),
                repeat,
                clock,
                encodes_of_picture: 0,
                pending: Rect::default(),
            })),
            keyframe_interval,
        )
    }

    /// PNG rectangles: a static screen's full frame is re-sent every `full_every`.
    pub fn png(full_every: Duration, keyframe_interval: Duration) -> Self {
        Self::with_path(
            Path::Png(Png {
                planner: PngPlanner::new(4, full_every),
                bander: PngBander::new(super::png::MAX_PNG_MESSAGE),
            }),
            keyframe_interval,
        )
    }

    fn with_path(path: Path, keyframe_interval: Duration) -> Self {
        Self {
            path,
            gate: KeyframeGate::new(keyframe_interval),
            key_requested: false,
            cursor: Cursor::default(),
            ping: PingEcho::default(),
            last_ping_sent: 0,
            cursor_sent: None,
        }
    }

    /// Starts over with `fresh`'s stream (a new codec, a new emulator), keeping the keyframe gate
    /// and a request waiting for it: a restart must not open the gate to a PLI flood.
    pub fn restart(&mut self, fresh: VideoPipeline) {
        let gate = self.gate.clone();
        let key_requested = self.key_requested;
        *self = fresh;
        self.gate = gate;
        self.key_requested = key_requested;
    }

    /// A viewer joined, lost a picture, or missed a frame: the next keyframe the gate lets through.
    pub fn request_keyframe(&mut self) {
        self.key_requested = true;
    }

    /// The current picture, once a frame has been converted (encoded streams only).
    pub fn picture(&self) -> Option<&I420> {
        match &self.path {
            Path::Encoded(e) => e.conv.picture(),
            Path::Png(_) => None,
        }
    }

    /// Requests wait for the gate, so a PLI flood from one viewer cannot make every picture a
    /// keyframe; those made meanwhile are served by the next one.
    fn pass_gate(&mut self, now: Instant) {
        if self.key_requested && self.gate.try_pass(now) {
            self.key_requested = false;
            match &mut self.path {
                Path::Encoded(e) => e.policy.request_keyframe(),
                Path::Png(p) => p.planner.force_full(),
            }
        }
    }

    /// A frame arrived at `now` (`now_us`: the same instant on CLOCK_REALTIME); `viewers`: somebody
    /// is connected to receive this kind of stream.
    pub fn on_frame(
        &mut self,
        f: &Frame<'_>,
        now: Instant,
        now_us: u64,
        viewers: bool,
    ) -> Result<Option<VideoOutput>, VideoError> {
        self.pass_gate(now);
        self.cursor = f.cursor;
        if let Some(p) = f.ping {
            self.ping = p;
        }
        let frame = &f.frame;
        frame.validate()?;
        match &mut self.path {
            Path::Encoded(e) => {
                e.pending = e
                    .pending
                    .union(&f.dirty.clamp_to(frame.width, frame.height));
                match e.policy.on_frame(now, !f.dirty.is_empty(), viewers) {
                    Decision::Encode { keyframe } => {
                        let changed = !e.pending.is_empty();
                        e.conv.update(frame, e.pending, false)?;
                        e.pending = Rect::default();
                        self.encode(keyframe, changed, Some(f.capture_us), now_us)
                    }
                    Decision::Skip if viewers && self.ping.sequence != self.last_ping_sent => {
                        // A static screen sends no picture to carry the echo: it goes alone.
                        self.last_ping_sent = self.ping.sequence;
                        Ok(Some(VideoOutput::Echo {
                            cursor: self.cursor,
                            ping: self.ping,
                        }))
                    }
                    Decision::Skip => Ok(None),
                }
            }
            Path::Png(p) => {
                if !viewers {
                    return Ok(None);
                }
                let planned = p.planner.plan(now, f.dirty, frame.width, frame.height);
                // A new ping echo goes out even on a static screen, on a 1×1 rectangle.
                let rect = planned.or_else(|| {
                    (self.ping.sequence != self.last_ping_sent).then(|| Rect::new(0, 0, 1, 1))
                });
                let Some(r) = rect else { return Ok(None) };
                let bands = p.bander.encode(frame, r)?;
                self.last_ping_sent = self.ping.sequence;
                Ok(Some(VideoOutput::Png(PngFrame {
                    bands,
                    width: frame.width,
                    height: frame.height,
                    cursor: self.cursor,
                    ping: self.ping,
                })))
            }
        }
    }

    /// How long from `now` until [`Self::on_idle`] has a refresh to send; `None` when it will have
    /// none: no viewers, no picture yet, or PNG mode (whose full-frame resend rides on frames).
    pub fn until_refresh(&self, now: Instant, viewers: bool) -> Option<Duration> {
        match &self.path {
            Path::Encoded(e) if viewers && e.conv.picture().is_some() => {
                Some(e.policy.until_refresh(now))
            }
            _ => None,
        }
    }

    /// No frame arrived for a while (the emulator may publish only on change): a refresh or a
    /// keyframe of the current picture may be due.
    pub fn on_idle(
        &mut self,
        now: Instant,
        now_us: u64,
        viewers: bool,
    ) -> Result<Option<VideoOutput>, VideoError> {
        self.pass_gate(now);
        let Path::Encoded(e) = &mut self.path else {
            return Ok(None);
        };
        let have = e.conv.picture().is_some();
        match e.policy.on_idle(now, viewers, have) {
            Decision::Encode { keyframe } => self.encode(keyframe, false, None, now_us),
            Decision::Skip => Ok(None),
        }
    }

    /// The current picture: the encoder's rendering of it, or, when it is a refresh of a picture the
    /// encoder has already refined once, a repeat built without the encoder.
    fn encode(
        &mut self,
        keyframe: bool,
        changed: bool,
        capture_us: Option<u64>,
        now_us: u64,
    ) -> Result<Option<VideoOutput>, VideoError> {
        let Path::Encoded(e) = &mut self.path else {
            return Ok(None);
        };
        let Some(pic) = e.conv.picture() else {
            return Ok(None);
        };
        let repeat = (!keyframe && !changed && e.encodes_of_picture > ENCODED_REFRESHES)
            .then(|| e.repeat.as_mut().and_then(Repeater::repeat))
            .flatten();
        let (data, keyframe, repeated) = match repeat {
            Some(data) => {
                // Microseconds: it pulls the cost estimate down as a cheap refresh should.
                e.policy.record_encode_time(Duration::ZERO);
                (data, false, true)
            }
            None => {
                let encoded = e.encoder.encode(pic, keyframe, now_us / 1000)?;
                let Some(f) = encoded else {
                    e.policy.record_encode_time(e.encoder.last_encode_time());
                    return Ok(None);
                };
                e.encodes_of_picture = if changed {
                    1
                } else {
                    e.encodes_of_picture.saturating_add(1)
                };
                let data = match e.repeat.as_mut().map(|r| r.pass(&f.data)) {
                    None => f.data,
                    Some(Ok(data)) => data,
                    Some(Err(err)) => {
                        // Cannot happen with the encoder's own stream; an IDR puts everything right.
                        tracing::warn!("{err}; sending a keyframe instead");
                        e.policy.request_keyframe();
                        return Ok(None);
                    }
                };
                e.policy.record_encode_time(e.encoder.last_encode_time());
                (data, f.keyframe, false)
            }
        };
        let rtp_timestamp = e.clock.stamp(capture_us, now_us);
        let meta = keyframe
            || self.ping.sequence != self.last_ping_sent
            || self.cursor_sent != Some(self.cursor);
        self.last_ping_sent = self.ping.sequence;
        self.cursor_sent = Some(self.cursor);
        Ok(Some(VideoOutput::Picture(Picture {
            data,
            keyframe,
            repeat: repeated,
            meta,
            rtp_timestamp,
            cursor: self.cursor,
            ping: self.ping,
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::video::h264::{EncodedFrame, H264Config, H264Encoder};
    use crate::video::rtp::rtp_time;
    use crate::video::PixelFormat;
    use std::sync::{Arc, Mutex};

    const MS: Duration = Duration::from_millis(1);
    /// A wall-clock start far from zero, as CLOCK_REALTIME is.
    const T0_US: u64 = 1_800_000_000_000_000;

    /// What the fake encoder was asked: picture size, keyframe asked, its luma at the last pixel.
    type Calls = Arc<Mutex<Vec<(usize, usize, bool, u8)>>>;

    /// Encodes every picture into 8 bytes, a keyframe when asked or at a new size (as openh264
    /// does), and says each encode took `cost`.
    struct FakeEncoder {
        calls: Calls,
        size: Option<(usize, usize)>,
        cost: Duration,
    }

    impl PictureEncoder for FakeEncoder {
        fn encode(
            &mut self,
            pic: &I420,
            keyframe: bool,
            _timestamp_ms: u64,
        ) -> Result<Option<EncodedFrame>, VideoError> {
            let fresh = self.size != Some((pic.width, pic.height));
            self.size = Some((pic.width, pic.height));
            let last = *pic.y.last().expect("a picture has pixels");
            self.calls
                .lock()
                .unwrap()
                .push((pic.width, pic.height, keyframe, last));
            Ok(Some(EncodedFrame {
                data: Bytes::from_static(&[0, 0, 0, 1, 0x41, 1, 2, 3]),
                keyframe: keyframe || fresh,
            }))
        }

        fn last_encode_time(&self) -> Duration {
            self.cost
        }
    }

    fn fake(refresh: Duration, gate: Duration, cost: Duration) -> (VideoPipeline, Calls) {
        let calls = Calls::default();
        let enc = FakeEncoder {
            calls: calls.clone(),
            size: None,
            cost,
        };
        let p = VideoPipeline::encoded(Box::new(enc), None, MediaClock::new(), refresh, gate);
        (p, calls)
    }

    /// A BGRA screen of one gray level.
    fn screen(w: u32, h: u32, gray: u8) -> Vec<u8> {
        vec![gray; (w * h * 4) as usize]
    }

    fn frame(buf: &[u8], w: u32, h: u32, dirty: Rect) -> Frame<'_> {
        Frame {
            frame: FrameRef {
                data: buf,
                width: w,
                height: h,
                stride: w as usize * 4,
                format: PixelFormat::Bgra,
            },
            dirty,
            capture_us: 0,
            cursor: Cursor::default(),
            ping: None,
        }
    }

    /// Simulated time: `ms` after the start, on both clocks.
    fn at(t0: Instant, ms: u64) -> (Instant, u64) {
        (t0 + MS * ms as u32, T0_US + ms * 1000)
    }

    fn picture(out: Option<VideoOutput>) -> Option<Picture> {
        match out {
            Some(VideoOutput::Picture(p)) => Some(p),
            _ => None,
        }
    }

    /// An emulator that publishes only on change: the driver sleeps exactly until each refresh is
    /// due (as the video thread does), and every wake has a picture to send.
    #[test]
    fn a_driver_waking_when_told_refreshes_on_time() {
        let (mut p, _) = fake(60 * MS, 500 * MS, Duration::ZERO);
        let t0 = Instant::now();
        assert_eq!(p.until_refresh(t0, true), None, "no picture yet");
        let buf = screen(64, 48, 200);
        let (now, us) = at(t0, 0);
        let full = Rect::new(0, 0, 64, 48);
        assert!(picture(
            p.on_frame(&frame(&buf, 64, 48, full), now, us, true)
                .unwrap()
        )
        .is_some());
        assert_eq!(p.until_refresh(now, false), None, "nobody to refresh for");
        let mut ms = 0;
        let mut sent = Vec::new();
        while ms < 300 {
            let wait = p
                .until_refresh(at(t0, ms).0, true)
                .expect("a picture and a viewer");
            ms += wait.as_millis() as u64;
            let (now, us) = at(t0, ms);
            if picture(p.on_idle(now, us, true).unwrap()).is_some() {
                sent.push(ms);
            }
        }
        assert_eq!(sent, [60, 120, 180, 240, 300]);
    }

    #[test]
    fn a_static_screen_is_refreshed_at_the_refresh_period() {
        let (mut p, calls) = fake(150 * MS, 500 * MS, Duration::ZERO);
        let t0 = Instant::now();
        let buf = screen(64, 48, 200);
        let full = Rect::new(0, 0, 64, 48);
        let mut sent = Vec::new();
        // One second of a static screen, a frame every 10 ms.
        for ms in (0..1000).step_by(10) {
            let (now, us) = at(t0, ms);
            let dirty = if ms == 0 { full } else { Rect::default() };
            if let Some(pic) = picture(
                p.on_frame(&frame(&buf, 64, 48, dirty), now, us, true)
                    .unwrap(),
            ) {
                sent.push((ms, pic.keyframe));
            }
        }
        assert_eq!(
            sent,
            [
                (0, true),
                (150, false),
                (300, false),
                (450, false),
                (600, false),
                (750, false),
                (900, false)
            ]
        );
        assert_eq!(
            calls.lock().unwrap().len(),
            7,
            "no repeater: the encoder refreshes"
        );
    }

    /// The real encoder, saying its encodes cost nothing: its true cost would make the refresh
    /// period depend on the machine.
    struct Untimed(H264Encoder);

    impl PictureEncoder for Untimed {
        fn encode(
            &mut self,
            pic: &I420,
            keyframe: bool,
            timestamp_ms: u64,
        ) -> Result<Option<EncodedFrame>, VideoError> {
            self.0.encode(pic, keyframe, timestamp_ms)
        }
    }

    #[test]
    fn repeats_take_over_after_one_encoder_refresh() {
        let mut p = VideoPipeline::encoded(
            Box::new(Untimed(H264Encoder::new(H264Config::default()))),
            Some(Repeater::new()),
            MediaClock::new(),
            100 * MS,
            500 * MS,
        );
        let t0 = Instant::now();
        let buf = screen(64, 48, 90);
        let mut kinds = Vec::new();
        for ms in (0..500).step_by(50) {
            let (now, us) = at(t0, ms);
            let dirty = if ms == 0 {
                Rect::new(0, 0, 64, 48)
            } else {
                Rect::default()
            };
            let f = frame(&buf, 64, 48, dirty);
            if let Some(pic) = picture(p.on_frame(&f, now, us, true).unwrap()) {
                kinds.push((ms, pic.keyframe, pic.repeat));
            }
        }
        // The change (an IDR), one encoder refresh, then repeats every 100 ms.
        assert_eq!(
            kinds,
            [
                (0, true, false),
                (100, false, false),
                (200, false, true),
                (300, false, true),
                (400, false, true)
            ]
        );
        // A change goes to the encoder again, at once.
        let (now, us) = at(t0, 410);
        let buf = screen(64, 48, 30);
        let f = frame(&buf, 64, 48, Rect::new(0, 0, 8, 8));
        let pic = picture(p.on_frame(&f, now, us, true).unwrap()).expect("a change is encoded");
        assert!(!pic.keyframe && !pic.repeat);
    }

    #[test]
    fn a_pli_storm_gets_one_keyframe_per_gate_interval() {
        let (mut p, _) = fake(150 * MS, 500 * MS, Duration::ZERO);
        let t0 = Instant::now();
        let buf = screen(64, 48, 200);
        let mut keys = Vec::new();
        // Two seconds of typing (a change every 10 ms) while a viewer sends a PLI every 10 ms.
        for ms in (0..2000).step_by(10) {
            p.request_keyframe();
            let (now, us) = at(t0, ms);
            let f = frame(&buf, 64, 48, Rect::new(0, 0, 6, 12));
            let pic = picture(p.on_frame(&f, now, us, true).unwrap()).expect("a change");
            if pic.keyframe {
                keys.push(ms);
            }
        }
        assert_eq!(keys, [0, 500, 1000, 1500]);
    }

    #[test]
    fn a_request_waits_for_the_gate_and_survives_a_restart() {
        let (mut p, _) = fake(150 * MS, 500 * MS, Duration::ZERO);
        let t0 = Instant::now();
        let buf = screen(64, 48, 200);
        let f = frame(&buf, 64, 48, Rect::new(0, 0, 64, 48));
        p.request_keyframe();
        let (now, us) = at(t0, 0);
        assert!(
            picture(p.on_frame(&f, now, us, true).unwrap())
                .unwrap()
                .keyframe
        );
        p.request_keyframe();
        let (fresh, calls) = fake(150 * MS, 500 * MS, Duration::ZERO);
        p.restart(fresh);
        // The new stream starts with its keyframe; the request still waits for the gate.
        let (now, us) = at(t0, 100);
        assert!(
            picture(p.on_frame(&f, now, us, true).unwrap())
                .unwrap()
                .keyframe
        );
        let (now, us) = at(t0, 200);
        assert!(
            !picture(p.on_frame(&f, now, us, true).unwrap())
                .unwrap()
                .keyframe
        );
        let (now, us) = at(t0, 500);
        assert!(
            picture(p.on_frame(&f, now, us, true).unwrap())
                .unwrap()
                .keyframe
        );
        assert_eq!(calls.lock().unwrap().len(), 3);
    }

    #[test]
    fn a_new_frame_is_encoded_at_once_with_its_capture_time() {
        let (mut p, _) = fake(Duration::from_secs(1), 500 * MS, Duration::ZERO);
        let t0 = Instant::now();
        let buf = screen(64, 48, 200);
        let (now, us) = at(t0, 0);
        let first = frame(&buf, 64, 48, Rect::new(0, 0, 64, 48));
        assert!(picture(p.on_frame(&first, now, us, true).unwrap()).is_some());
        for ms in [10, 20, 230] {
            let (now, us) = at(t0, ms);
            let f = frame(&buf, 64, 48, Rect::default());
            assert!(p.on_frame(&f, now, us, true).unwrap().is_none(), "{ms} ms");
        }
        // The caret blinks at 237 ms; the frame was finished 2 ms before it arrived.
        let (now, us) = at(t0, 237);
        let f = Frame {
            capture_us: us - 2_000,
            ..frame(&buf, 64, 48, Rect::new(10, 10, 1, 12))
        };
        let pic = picture(p.on_frame(&f, now, us, true).unwrap()).expect("encoded at once");
        assert!(!pic.keyframe && !pic.repeat);
        assert_eq!(pic.rtp_timestamp, rtp_time(us - 2_000));
        // Refreshes of an unchanged picture have no capture time: the server's clock.
        let (now, us) = at(t0, 2000);
        let pic = picture(p.on_idle(now, us, true).unwrap()).expect("a refresh");
        assert_eq!(pic.rtp_timestamp, rtp_time(us));
    }

    #[test]
    fn a_new_size_is_converted_whole_and_starts_with_a_keyframe() {
        let (mut p, calls) = fake(150 * MS, 500 * MS, Duration::ZERO);
        let t0 = Instant::now();
        let small = screen(64, 48, 0);
        let (now, us) = at(t0, 0);
        let f = frame(&small, 64, 48, Rect::new(0, 0, 64, 48));
        assert!(
            picture(p.on_frame(&f, now, us, true).unwrap())
                .unwrap()
                .keyframe
        );
        // The Mac switches resolution; the frame says only a corner changed.
        let big = screen(96, 64, 255);
        let (now, us) = at(t0, 20);
        let f = frame(&big, 96, 64, Rect::new(0, 0, 4, 4));
        let pic = picture(p.on_frame(&f, now, us, true).unwrap()).unwrap();
        assert!(pic.keyframe, "the encoder restarts at the new size");
        let calls = calls.lock().unwrap();
        let (w, h, _, last) = calls[1];
        assert_eq!((w, h), (96, 64));
        assert_eq!(
            last, 235,
            "the whole new picture was converted (white is Y 235)"
        );
        assert_eq!(calls[0].3, 16, "black is Y 16");
    }

    #[test]
    fn nobody_watching_means_no_work_and_no_echo() {
        let (mut p, calls) = fake(150 * MS, 500 * MS, Duration::ZERO);
        let t0 = Instant::now();
        let buf = screen(64, 48, 200);
        for ms in (0..1000).step_by(10) {
            let (now, us) = at(t0, ms);
            let f = Frame {
                ping: Some(PingEcho::from_stamps(ms as u32 + 1, [0; 7])),
                ..frame(&buf, 64, 48, Rect::new(0, 0, 64, 48))
            };
            assert!(p.on_frame(&f, now, us, false).unwrap().is_none());
            assert!(p.on_idle(now, us, false).unwrap().is_none());
        }
        assert!(calls.lock().unwrap().is_empty());
        // The first viewer gets the whole picture as a keyframe, though no frame says what changed.
        let (now, us) = at(t0, 1000);
        let f = frame(&buf, 64, 48, Rect::default());
        let pic = picture(p.on_frame(&f, now, us, true).unwrap()).unwrap();
        assert!(pic.keyframe);
        assert_eq!(calls.lock().unwrap()[0].3, y_of(200));
    }

    /// BT.601 limited-range luma of a gray level.
    fn y_of(gray: u8) -> u8 {
        (16.0 + f64::from(gray) * 219.0 / 255.0).round() as u8
    }

    #[test]
    fn a_ping_on_a_static_screen_is_echoed_alone_once() {
        let (mut p, _) = fake(Duration::from_secs(1), 500 * MS, Duration::ZERO);
        let t0 = Instant::now();
        let buf = screen(64, 48, 200);
        let (now, us) = at(t0, 0);
        let f = frame(&buf, 64, 48, Rect::new(0, 0, 64, 48));
        assert!(picture(p.on_frame(&f, now, us, true).unwrap()).is_some());
        let ping = PingEcho::from_stamps(7, [1, 2, 3, 4, 5, 0, 0]);
        let cursor = Cursor {
            x: 3,
            y: 4,
            visible: true,
        };
        let (now, us) = at(t0, 20);
        let f = Frame {
            ping: Some(ping),
            cursor,
            ..frame(&buf, 64, 48, Rect::default())
        };
        match p.on_frame(&f, now, us, true).unwrap() {
            Some(VideoOutput::Echo { cursor: c, ping: e }) => assert_eq!((c, e), (cursor, ping)),
            o => panic!("expected the echo alone, got {o:?}"),
        }
        // Later frames without a new ping send nothing; the echo rides on the next picture too.
        let (now, us) = at(t0, 40);
        assert!(p.on_frame(&f, now, us, true).unwrap().is_none());
        let f = Frame {
            dirty: Rect::new(0, 0, 2, 2),
            ..f
        };
        let (now, us) = at(t0, 60);
        let pic = picture(p.on_frame(&f, now, us, true).unwrap()).unwrap();
        assert_eq!(pic.ping, ping);
    }

    /// Refreshes of a still screen carry no metadata message; a moved cursor, a new ping echo or a
    /// keyframe do.
    #[test]
    fn only_pictures_with_news_carry_metadata() {
        let mut p = VideoPipeline::encoded(
            Box::new(Untimed(H264Encoder::new(H264Config::default()))),
            Some(Repeater::new()),
            MediaClock::new(),
            100 * MS,
            MS,
        );
        let t0 = Instant::now();
        let buf = screen(64, 48, 90);
        let still = frame(&buf, 64, 48, Rect::default());
        let mut sent = Vec::new();
        let mut send = |p: &mut VideoPipeline, ms: u64, f: &Frame| {
            let (now, us) = at(t0, ms);
            if let Some(pic) = picture(p.on_frame(f, now, us, true).unwrap()) {
                sent.push((ms, pic.keyframe, pic.meta));
            }
        };
        send(&mut p, 0, &frame(&buf, 64, 48, Rect::new(0, 0, 64, 48)));
        for ms in (50..400).step_by(50) {
            send(&mut p, ms, &still);
        }
        let moved = Frame {
            cursor: Cursor {
                x: 9,
                y: 9,
                visible: true,
            },
            ..still
        };
        send(&mut p, 400, &moved);
        send(&mut p, 500, &moved);
        let pinged = Frame {
            ping: Some(PingEcho::from_stamps(3, [1, 2, 3, 4, 5, 0, 0])),
            ..moved
        };
        send(&mut p, 550, &frame(&buf, 64, 48, Rect::new(0, 0, 2, 2)));
        send(
            &mut p,
            600,
            &Frame {
                dirty: Rect::new(0, 0, 2, 2),
                ..pinged
            },
        );
        send(&mut p, 700, &moved);
        p.request_keyframe();
        send(&mut p, 800, &moved);
        assert_eq!(
            sent,
            [
                (0, true, true),
                (100, false, false),
                (200, false, false),
                (300, false, false),
                (400, false, true),
                (500, false, false),
                (550, false, true),
                (600, false, true),
                (700, false, false),
                (800, true, true),
            ],
            "(ms, keyframe, metadata)"
        );
    }

    #[test]
    fn expensive_encodes_stretch_the_refresh_period() {
        // 17 ms an encode (openh264 at 1080p) allows a refresh every 1.7 s within 1 % of a core.
        let (mut p, calls) = fake(200 * MS, 500 * MS, 17 * MS);
        let t0 = Instant::now();
        let buf = screen(64, 48, 200);
        let (now, us) = at(t0, 0);
        let f = frame(&buf, 64, 48, Rect::new(0, 0, 64, 48));
        assert!(picture(p.on_frame(&f, now, us, true).unwrap()).is_some());
        let mut refreshes = Vec::new();
        for ms in (100..5000).step_by(100) {
            let (now, us) = at(t0, ms);
            if picture(p.on_idle(now, us, true).unwrap()).is_some() {
                refreshes.push(ms);
            }
        }
        assert_eq!(refreshes, [1700, 3400]);
        assert_eq!(calls.lock().unwrap().len(), 3);
    }

    #[test]
    fn png_sends_whole_frames_changes_and_echoes() {
        let mut p = VideoPipeline::png(Duration::from_secs(2), 500 * MS);
        let t0 = Instant::now();
        let buf = screen(64, 48, 200);
        let rects = |o: Option<VideoOutput>| match o {
            Some(VideoOutput::Png(f)) => {
                assert_eq!((f.width, f.height), (64, 48));
                Some(f.bands.iter().fold(Rect::default(), |a, (r, _)| a.union(r)))
            }
            None => None,
            o => panic!("{o:?}"),
        };
        let (now, us) = at(t0, 0);
        let f = frame(&buf, 64, 48, Rect::new(4, 4, 2, 2));
        assert_eq!(rects(p.on_frame(&f, now, us, false).unwrap()), None);
        assert_eq!(
            rects(p.on_frame(&f, now, us, true).unwrap()),
            Some(Rect::new(0, 0, 64, 48)),
            "a viewer starts with the whole frame"
        );
        let (now, us) = at(t0, 20);
        assert_eq!(
            rects(p.on_frame(&f, now, us, true).unwrap()),
            Some(Rect::new(4, 4, 2, 2))
        );
        let still = frame(&buf, 64, 48, Rect::default());
        // The change is re-sent for the planner's window (4 frames), then nothing.
        let mut sent = 0;
        for ms in (40..400).step_by(20) {
            let (now, us) = at(t0, ms);
            sent += usize::from(rects(p.on_frame(&still, now, us, true).unwrap()).is_some());
        }
        assert_eq!(sent, 3);
        // A ping on a static screen goes on a 1×1 piece.
        let (now, us) = at(t0, 420);
        let f = Frame {
            ping: Some(PingEcho::from_stamps(1, [0; 7])),
            ..still
        };
        assert_eq!(
            rects(p.on_frame(&f, now, us, true).unwrap()),
            Some(Rect::new(0, 0, 1, 1))
        );
        // A keyframe request (a new viewer) makes the next frame whole, as does the period.
        p.request_keyframe();
        let (now, us) = at(t0, 440);
        assert_eq!(
            rects(p.on_frame(&still, now, us, true).unwrap()),
            Some(Rect::new(0, 0, 64, 48))
        );
        let (now, us) = at(t0, 2440);
        assert_eq!(
            rects(p.on_frame(&still, now, us, true).unwrap()),
            Some(Rect::new(0, 0, 64, 48))
        );
        assert!(
            p.on_idle(now, us, true).unwrap().is_none(),
            "PNG has no refresh when idle"
        );
    }
}
