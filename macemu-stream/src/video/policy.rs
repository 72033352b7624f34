//! When to encode, sans-IO. Nothing is encoded while the screen does not change; a refresh goes out
//! periodically anyway (so lost packets heal and ping echoes keep flowing), and a keyframe goes out as soon
//! as a viewer joins or reports picture loss.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Skip,
    Encode { keyframe: bool },
}

#[derive(Debug)]
pub struct EncodePolicy {
    refresh: Duration,
    last: Option<Instant>,
    key_pending: bool,
}

impl EncodePolicy {
    pub fn new(refresh: Duration) -> Self {
        Self {
            refresh,
            last: None,
            key_pending: true,
        }
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

    fn refresh_due(&self, now: Instant) -> bool {
        self.last
            .is_none_or(|t| now.duration_since(t) >= self.refresh)
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
}
