//! Resource limits of the server (each a `serve` flag) and the keyframe-request gate.

use std::time::{Duration, Instant};

/// Bounds that keep a hostile or broken client from exhausting the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Peer connections (viewers, negotiating or connected) at once.
    pub max_viewers: usize,
    /// Signaling WebSocket sessions at once.
    pub max_sessions: usize,
    /// A signaling session must have its answer applied this long after it opened or last asked to
    /// connect; otherwise it is closed.
    pub negotiation_timeout: Duration,
    /// Largest signaling WebSocket message (and frame), in bytes.
    pub ws_max_message: usize,
    /// Length of each bounded queue: a peer's events, and the ICE candidates held before the answer.
    pub queue_len: usize,
    /// Open TCP connections per listener (HTTP, signaling); more are closed at once.
    pub max_connections: usize,
    /// A request's header must arrive within this time (slowloris), also on idle keep-alive links.
    pub header_timeout: Duration,
    /// At most one forced keyframe per this interval, however many viewers ask (PLI/FIR, joins).
    pub keyframe_interval: Duration,
    /// Largest disk image a browser may upload into the disk folder, in bytes (0: uploads refused).
    pub max_upload: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_viewers: 16,
            max_sessions: 32,
            negotiation_timeout: Duration::from_secs(15),
            ws_max_message: 64 * 1024,
            queue_len: 256,
            max_connections: 1024,
            header_timeout: Duration::from_secs(10),
            keyframe_interval: Duration::from_millis(500),
            // A 2 GB SCSI volume, the largest HFS the classic Mac OS of this era formats.
            max_upload: 2 << 30,
        }
    }
}

/// Lets a pending keyframe request through at most once per interval: requests arriving in between
/// are merged into the next one, so every viewer still gets its keyframe, only not one each.
#[derive(Debug, Clone)]
pub struct KeyframeGate {
    interval: Duration,
    last: Option<Instant>,
}

impl KeyframeGate {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
        }
    }

    /// Whether a forced keyframe may be made now; if so, the interval starts again.
    pub fn try_pass(&mut self, now: Instant) -> bool {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < self.interval => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_flood_gets_one_keyframe_per_interval() {
        let mut g = KeyframeGate::new(Duration::from_millis(500));
        let t0 = Instant::now();
        // A PLI every 10 ms for 2 s: four keyframes (0, 500, 1000, 1500 ms).
        let passed: Vec<u64> = (0..200)
            .map(|i| t0 + Duration::from_millis(i * 10))
            .filter(|&t| g.try_pass(t))
            .map(|t| (t - t0).as_millis() as u64)
            .collect();
        assert_eq!(passed, [0, 500, 1000, 1500]);
    }

    #[test]
    fn first_request_passes_at_once_and_zero_interval_never_holds_back() {
        let t0 = Instant::now();
        let mut g = KeyframeGate::new(Duration::from_secs(3600));
        assert!(g.try_pass(t0));
        assert!(!g.try_pass(t0 + Duration::from_secs(1)));
        let mut g = KeyframeGate::new(Duration::ZERO);
        assert!((0..5).all(|_| g.try_pass(t0)));
    }
}
