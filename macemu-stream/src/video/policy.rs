//! When to encode, sans-IO. Nothing is encoded while the screen does not change; a refresh goes out
//! periodically anyway (so lost packets heal and the browser's jitter buffer keeps seeing frames), and a
//! keyframe goes out as soon as a viewer joins or reports picture loss.
//!
//! A refresh is normally a repeat built without the encoder (`video::repeat`, under a microsecond).
//! When the stream does not allow one it is a whole-picture encode even though nothing changed
//! (openh264's screen-content mode analyses every macroblock: about 1.3 ms at 512×342 but 15–19 ms at
//! 1920×1080 on the 2-core reference machine), so the refresh period stretches until refreshes use at
//! most [`IDLE_CPU_SHARE`] of a core.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Skip,
    Encode { keyframe: bool },
}

/// The share of one core that refreshes of an unchanged screen may use.
pub const IDLE_CPU_SHARE: f64 = 0.01;

#[derive(Debug)]
pub struct EncodePolicy {
    refresh: Duration,
    last: Option<Instant>,
    key_pending: bool,
    /// Smoothed time of one encode at the current size.
    encode_cost: Option<Duration>,
}

impl EncodePolicy {
    pub fn new(refresh: Duration) -> Self {
        Self {
            refresh,
            last: None,
            key_pending: true,
            encode_cost: None,
        }
    }

    /// How long the encode this policy asked for took (any encode: an unchanged picture costs about
    /// as much as a changed one).
    pub fn record_encode_time(&mut self, took: Duration) {
        self.encode_cost = Some(match self.encode_cost {
            // A new size or a one-off stall moves the estimate a quarter of the way.
            Some(c) => (c * 3 + took) / 4,
            None => took,
        });
    }

    /// The period of refreshes of an unchanged screen: the configured one, or longer when encodes
    /// are expensive enough that refreshes would exceed [`IDLE_CPU_SHARE`].
    pub fn refresh_period(&self) -> Duration {
        let budgeted = self
            .encode_cost
            .map_or(Duration::ZERO, |c| c.div_f64(IDLE_CPU_SHARE));
        self.refresh.max(budgeted).min(Duration::from_secs(10))
    }

    /// A viewer joined or sent a PLI/FIR.
    pub fn request_keyframe(&mut self) {
        self.key_pending = true;
    }

    pub fn keyframe_pending(&self) -> bool {
        self.key_pending
    }

    /// A frame arrived with this much change; `has_viewers` false means nobody would receive it.
    pub fn on_frame(&mut self, now: Instant, changed: bool, has_viewers: bool) -> Decision {
        if !has_viewers {
            return Decision::Skip;
        }
        if changed || self.key_pending || self.refresh_due(now) {
            self.encoded(now)
        } else {
            Decision::Skip
        }
    }

    /// No frame arrived for a while (the emulator may publish only on change).
    pub fn on_idle(&mut self, now: Instant, has_viewers: bool, have_picture: bool) -> Decision {
        if has_viewers && have_picture && (self.key_pending || self.refresh_due(now)) {
            self.encoded(now)
        } else {
            Decision::Skip
        }
    }

    /// How long from `now` until a refresh of an unchanged screen is due (zero: due now), so the
    /// driver can wake for it on time instead of at its next poll.
    pub fn until_refresh(&self, now: Instant) -> Duration {
        self.last.map_or(Duration::ZERO, |t| {
            (t + self.refresh_period()).saturating_duration_since(now)
        })
    }

    fn refresh_due(&self, now: Instant) -> bool {
        self.until_refresh(now).is_zero()
    }

    fn encoded(&mut self, now: Instant) -> Decision {
        self.last = Some(now);
        let keyframe = std::mem::take(&mut self.key_pending);
        Decision::Encode { keyframe }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_screen_encodes_only_the_periodic_refresh() {
        let t0 = Instant::now();
        let mut p = EncodePolicy::new(Duration::from_millis(1000));
        assert_eq!(
            p.on_frame(t0, false, true),
            Decision::Encode { keyframe: true }
        );
        let mut encodes = 0;
        for i in 1..180 {
            let now = t0 + Duration::from_micros(16_667 * i);
            if p.on_frame(now, false, true) != Decision::Skip {
                encodes += 1;
            }
        }
        assert_eq!(
            encodes, 2,
            "3 s of a static screen: refreshes at 1 s and 2 s"
        );
    }

    #[test]
    fn the_next_refresh_is_due_one_period_after_the_last_encode() {
        let t0 = Instant::now();
        let mut p = EncodePolicy::new(Duration::from_millis(60));
        assert_eq!(p.until_refresh(t0), Duration::ZERO, "nothing sent yet");
        p.on_frame(t0, true, true);
        assert_eq!(p.until_refresh(t0), Duration::from_millis(60));
        let t = t0 + Duration::from_millis(45);
        assert_eq!(p.until_refresh(t), Duration::from_millis(15));
        assert_eq!(p.on_idle(t, true, true), Decision::Skip);
        let t = t0 + Duration::from_millis(60);
        assert_eq!(p.until_refresh(t), Duration::ZERO);
        assert_eq!(
            p.on_idle(t, true, true),
            Decision::Encode { keyframe: false }
        );
        assert_eq!(p.until_refresh(t), Duration::from_millis(60));
        // A late wake is not made up for: the period counts from the refresh actually sent.
        assert_eq!(
            p.until_refresh(t + Duration::from_millis(100)),
            Duration::ZERO
        );
    }

    #[test]
    fn changes_encode_and_keyframes_are_one_shot() {
        let t0 = Instant::now();
        let mut p = EncodePolicy::new(Duration::from_secs(1));
        p.on_frame(t0, true, true);
        assert_eq!(
            p.on_frame(t0, true, true),
            Decision::Encode { keyframe: false }
        );
        p.request_keyframe();
        assert_eq!(
            p.on_frame(t0, false, true),
            Decision::Encode { keyframe: true }
        );
        assert_eq!(p.on_frame(t0, false, true), Decision::Skip);
        assert_eq!(
            p.on_frame(t0, true, false),
            Decision::Skip,
            "no viewers, no work"
        );
    }

    #[test]
    fn idle_refresh_needs_a_picture() {
        let t0 = Instant::now();
        let mut p = EncodePolicy::new(Duration::from_millis(500));
        assert_eq!(p.on_idle(t0, true, false), Decision::Skip);
        assert_eq!(
            p.on_idle(t0, true, true),
            Decision::Encode { keyframe: true }
        );
        assert_eq!(
            p.on_idle(t0 + Duration::from_millis(100), true, true),
            Decision::Skip
        );
        assert_eq!(
            p.on_idle(t0 + Duration::from_millis(600), true, true),
            Decision::Encode { keyframe: false }
        );
    }

    #[test]
    fn expensive_refreshes_are_spaced_to_the_cpu_budget() {
        let t0 = Instant::now();
        let mut p = EncodePolicy::new(Duration::from_millis(200));
        assert_eq!(p.refresh_period(), Duration::from_millis(200));
        // 1.3 ms encodes (512×342): 1 % of a core allows one every 130 ms, so 200 ms stands.
        p.record_encode_time(Duration::from_micros(1_300));
        assert_eq!(p.refresh_period(), Duration::from_millis(200));
        // 17 ms encodes (1080p): one every 1.7 s.
        for _ in 0..20 {
            p.record_encode_time(Duration::from_millis(17));
        }
        let period = p.refresh_period();
        assert!((1_690..=1_710).contains(&period.as_millis()), "{period:?}");
        // Over 10 s of a static screen at 60 Hz, refreshes use at most 1 % of the time.
        p.on_frame(t0, true, true);
        let mut encodes = 0u32;
        for i in 1..600 {
            if p.on_frame(t0 + Duration::from_micros(16_667 * i), false, true) != Decision::Skip {
                encodes += 1;
            }
        }
        assert_eq!(encodes, 5, "one refresh per 1.7 s");
        assert!(Duration::from_millis(17) * encodes <= Duration::from_millis(100));
        // Absurd encode times never stop refreshes altogether.
        p.record_encode_time(Duration::from_secs(1_000));
        assert_eq!(p.refresh_period(), Duration::from_secs(10));
    }
}
