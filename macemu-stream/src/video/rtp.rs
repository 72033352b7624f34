//! RTP for the video track: each access unit is stamped with the 90 kHz time of the frame it shows
//! (the emulator's frame-ready time, CLOCK_REALTIME), not with the time it happened to be sent.
//!
//! A receiver's jitter buffer sizes itself from how RTP timestamps advance against arrival times. With
//! capture times the spacing it sees is the emulator's real cadence, and a frame that waited in a queue
//! shows up as late rather than as a shorter gap. Because the clock is the wall clock in 90 kHz ticks,
//! a viewer on the same host (tests, the latency bench, the page's stats overlay) can turn
//! `requestVideoFrameCallback`'s `rtpTimestamp` back into the capture time and measure capture → present
//! without any side channel.

use bytes::Bytes;
use webrtc::rtp::codecs::h264::H264Payloader;
use webrtc::rtp::header::Header;
use webrtc::rtp::packet::Packet;
use webrtc::rtp::packetizer::Payloader;

/// The H.264 RTP clock rate (RFC 6184).
pub const CLOCK_HZ: u64 = 90_000;
/// Packet payload bytes: webrtc-rs's 1200-byte outbound MTU less the 12-byte RTP header.
pub const MAX_PAYLOAD: usize = 1200 - 12;
/// How far the emulator's frame time may lag the server's clock and still be used (older frames, or a
/// clock that disagrees, are stamped with the server's time instead).
const MAX_CAPTURE_AGE_US: u64 = 1_000_000;
/// A frame time may run this far ahead of the server's clock (clock granularity between processes).
const MAX_CAPTURE_LEAD_US: u64 = 5_000;
/// One 90 kHz tick, rounded up: consecutive frames never share a timestamp.
const TICK_US: u64 = 12;

/// Wall-clock microseconds → 90 kHz RTP time (wrapping every 13.25 h, as RTP timestamps do).
pub fn rtp_time(us: u64) -> u32 {
    rtp_time_at(us, CLOCK_HZ)
}

/// Wall-clock microseconds → RTP time at `clock_hz` (wrapping as RTP timestamps do).
pub fn rtp_time_at(us: u64, clock_hz: u64) -> u32 {
    (u128::from(us) * u128::from(clock_hz) / 1_000_000) as u32
}

/// How long a browser may hold video frames before showing them, sent on every video packet as the
/// `playout-delay` RTP header extension (10 ms units, 0–40.95 s).
///
/// Zero (the default) is for interactive viewing: the receiver shows each frame as soon as it is
/// decoded instead of smoothing arrivals through a jitter buffer, the way cloud gaming and remote
/// desktops do. A viewer on a lossy or jittery network is better served by a buffer:
/// [`PlayoutDelay::Adaptive`] leaves the choice to the browser, a range bounds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayoutDelay {
    /// No extension: the browser's adaptive jitter buffer.
    Adaptive,
    /// At least `min_ms`, at most `max_ms` (multiples of 10 ms).
    Range { min_ms: u16, max_ms: u16 },
}

impl Default for PlayoutDelay {
    fn default() -> Self {
        PlayoutDelay::Range {
            min_ms: 0,
            max_ms: 0,
        }
    }
}

/// The extension's URI (as webrtc-rs and Chromium name it).
pub const PLAYOUT_DELAY_URI: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";
/// The largest delay the extension's 12-bit fields hold, in ms.
pub const PLAYOUT_DELAY_MAX_MS: u16 = 40_950;

impl PlayoutDelay {
    /// The header extension to put on video packets (none when adaptive).
    pub fn extension(self) -> Option<webrtc::rtp::extension::HeaderExtension> {
        use webrtc::rtp::extension::playout_delay_extension::PlayoutDelayExtension;
        match self {
            PlayoutDelay::Adaptive => None,
            PlayoutDelay::Range { min_ms, max_ms } => Some(
                webrtc::rtp::extension::HeaderExtension::PlayoutDelay(PlayoutDelayExtension {
                    min_delay: min_ms / 10,
                    max_delay: max_ms / 10,
                }),
            ),
        }
    }
}

impl std::str::FromStr for PlayoutDelay {
    type Err = String;

    /// `auto`, `MS` (min = max) or `MIN-MAX`, in milliseconds, multiples of 10 up to 40950.
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("auto") {
            return Ok(PlayoutDelay::Adaptive);
        }
        let ms = |v: &str| -> Result<u16, String> {
            let n: u16 = v
                .trim()
                .parse()
                .map_err(|_| format!("{v:?} is not a whole number of milliseconds"))?;
            if !n.is_multiple_of(10) || n > PLAYOUT_DELAY_MAX_MS {
                return Err(format!(
                    "{n} ms: the delay goes in 10 ms steps up to {PLAYOUT_DELAY_MAX_MS} ms"
                ));
            }
            Ok(n)
        };
        let (min_ms, max_ms) = match s.split_once('-') {
            Some((a, b)) => (ms(a)?, ms(b)?),
            None => (ms(s)?, ms(s)?),
        };
        if min_ms > max_ms {
            return Err(format!(
                "{min_ms}-{max_ms}: the minimum exceeds the maximum"
            ));
        }
        Ok(PlayoutDelay::Range { min_ms, max_ms })
    }
}

/// Chooses each access unit's timestamp: the capture time when it is plausible, always increasing.
#[derive(Debug, Clone)]
pub struct MediaClock {
    last_us: Option<u64>,
    clock_hz: u64,
}

impl Default for MediaClock {
    fn default() -> Self {
        Self::with_rate(CLOCK_HZ as u32)
    }
}

impl MediaClock {
    /// A 90 kHz clock (H.264, and every video codec so far).
    pub fn new() -> Self {
        Self::default()
    }

    /// A clock of the codec's RTP clock rate.
    pub fn with_rate(clock_hz: u32) -> Self {
        Self {
            last_us: None,
            clock_hz: u64::from(clock_hz),
        }
    }

    /// `capture_us`: when the emulator finished the frame (untrusted: read from shared memory), or
    /// `None` for a re-encode of an unchanged picture; `now_us`: the server's CLOCK_REALTIME.
    /// Returns the microsecond time used, which is strictly after the previous one.
    pub fn stamp_us(&mut self, capture_us: Option<u64>, now_us: u64) -> u64 {
        let plausible = |c: u64| {
            c <= now_us.saturating_add(MAX_CAPTURE_LEAD_US)
                && c >= now_us.saturating_sub(MAX_CAPTURE_AGE_US)
        };
        let t = capture_us.filter(|&c| plausible(c)).unwrap_or(now_us);
        let t = match self.last_us {
            Some(last) => t.max(last.saturating_add(TICK_US)),
            None => t,
        };
        self.last_us = Some(t);
        t
    }

    /// [`Self::stamp_us`] as an RTP timestamp of the clock's rate.
    pub fn stamp(&mut self, capture_us: Option<u64>, now_us: u64) -> u32 {
        let us = self.stamp_us(capture_us, now_us);
        rtp_time_at(us, self.clock_hz)
    }
}

/// Splits access units into RTP packets with the codec's payloader (for H.264: FU-A / STAP-A, RFC 6184
/// packetization-mode 1), with one timestamp per access unit, the marker bit on its last packet and a
/// running sequence number. SSRC and payload type are filled in per viewer by the track.
pub struct Packetizer {
    payloader: Box<dyn Payloader + Send + Sync>,
    sequence: u16,
}

impl Packetizer {
    /// An H.264 packetizer; `first_sequence` should be random (RFC 3550 §5.1).
    pub fn new(first_sequence: u16) -> Self {
        Self::with_payloader(Box::new(H264Payloader::default()), first_sequence)
    }

    /// A packetizer of another codec's payloads.
    pub fn with_payloader(
        payloader: Box<dyn Payloader + Send + Sync>,
        first_sequence: u16,
    ) -> Self {
        Self {
            payloader,
            sequence: first_sequence,
        }
    }

    /// The packets of one access unit (Annex B byte stream). An access unit with no NAL units gives
    /// no packets.
    pub fn packetize(&mut self, access_unit: &Bytes, timestamp: u32) -> Vec<Packet> {
        let payloads = match self.payloader.payload(MAX_PAYLOAD, access_unit) {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!("RTP payloader: {e}");
                return Vec::new();
            }
        };
        let last = payloads.len().saturating_sub(1);
        payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                let sequence_number = self.sequence;
                self.sequence = self.sequence.wrapping_add(1);
                Packet {
                    header: Header {
                        version: 2,
                        marker: i == last,
                        sequence_number,
                        timestamp,
                        ..Default::default()
                    },
                    payload,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use webrtc::rtp::codecs::h264::H264Packet;
    use webrtc::rtp::packetizer::Depacketizer;

    #[test]
    fn rtp_time_is_the_wall_clock_in_90khz_ticks() {
        assert_eq!(rtp_time(0), 0);
        assert_eq!(rtp_time(1_000_000), 90_000);
        assert_eq!(rtp_time(16_667), 1_500);
        // Wraps like the 32-bit field, with no overflow for any input.
        let wrap_us = (1u128 << 32) * 1_000_000 / 90_000 + 1;
        assert_eq!(rtp_time(wrap_us as u64), 0);
        let _ = rtp_time(u64::MAX);
    }

    #[test]
    fn capture_times_are_used_when_plausible_and_always_increase() {
        let now = 1_800_000_000_000_000u64;
        let mut c = MediaClock::new();
        // A frame finished 3 ms ago keeps its own time.
        assert_eq!(c.stamp_us(Some(now - 3_000), now), now - 3_000);
        // The next frame 16.7 ms later.
        assert_eq!(c.stamp_us(Some(now + 13_667), now + 14_000), now + 13_667);
        // A refresh of the same picture has no capture time: the server's clock.
        assert_eq!(c.stamp_us(None, now + 20_000), now + 20_000);
        // A capture time older than the last stamp cannot go backwards.
        assert_eq!(c.stamp_us(Some(now + 19_000), now + 21_000), now + 20_012);
        // Hostile values: far future, far past, zero: the server's clock, still increasing.
        assert_eq!(c.stamp_us(Some(u64::MAX), now + 40_000), now + 40_000);
        assert_eq!(c.stamp_us(Some(0), now + 50_000), now + 50_000);
        assert_eq!(
            c.stamp_us(Some(now - 5_000_000), now + 60_000),
            now + 60_000
        );
        // A wall clock stepped back: timestamps keep increasing by a tick.
        assert_eq!(c.stamp_us(None, now), now + 60_012);
    }

    /// An IDR access unit: SPS, PPS, and a slice large enough to need FU-A fragments.
    fn access_unit(slice_len: usize) -> Bytes {
        let mut au = vec![
            0, 0, 0, 1, 0x67, 0x42, 0xe0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80,
        ];
        au.extend_from_slice(&[0, 0, 0, 1, 0x65]);
        au.extend((0..slice_len).map(|i| (i % 251) as u8 | 1));
        Bytes::from(au)
    }

    #[test]
    fn packets_share_the_timestamp_mark_the_end_and_rebuild_the_access_unit() {
        let mut p = Packetizer::new(65_534);
        let au = access_unit(5_000);
        let pkts = p.packetize(&au, 123_456);
        assert!(pkts.len() >= 5, "{} packets", pkts.len());
        for (i, pkt) in pkts.iter().enumerate() {
            assert_eq!(pkt.header.timestamp, 123_456);
            assert_eq!(pkt.header.version, 2);
            assert_eq!(pkt.header.marker, i == pkts.len() - 1);
            assert_eq!(pkt.header.sequence_number, 65_534u16.wrapping_add(i as u16));
            assert!(pkt.payload.len() <= MAX_PAYLOAD);
        }
        // Depacketized in order, the packets give back the three NAL units.
        let mut d = H264Packet::default();
        let mut out = Vec::new();
        for pkt in &pkts {
            out.extend_from_slice(&d.depacketize(&pkt.payload).unwrap());
        }
        let nal_start = |b: &[u8]| b.windows(4).filter(|w| w == &[0, 0, 0, 1]).count();
        assert_eq!(nal_start(&out), 3);
        assert!(out.ends_with(&au[au.len() - 100..]));
        // Sequence numbers continue across access units.
        let next = p.packetize(&access_unit(100), 130_000);
        assert_eq!(
            next[0].header.sequence_number,
            pkts.last().unwrap().header.sequence_number.wrapping_add(1)
        );
        assert!(next.last().unwrap().header.marker);
        assert!(p.packetize(&Bytes::new(), 1).is_empty());
    }

    #[test]
    fn playout_delay_parses_and_marshals() {
        use webrtc::util::marshal::Marshal;
        assert_eq!("auto".parse(), Ok(PlayoutDelay::Adaptive));
        assert_eq!("0".parse(), Ok(PlayoutDelay::default()));
        assert_eq!(
            "20-200".parse(),
            Ok(PlayoutDelay::Range {
                min_ms: 20,
                max_ms: 200
            })
        );
        for bad in ["5", "200-20", "-1", "50000", "x", ""] {
            assert!(bad.parse::<PlayoutDelay>().is_err(), "{bad:?}");
        }
        assert!(PlayoutDelay::Adaptive.extension().is_none());
        // On the wire: 12-bit min and max in 10 ms units (min 2, max 20 → 0x002 0x014).
        let ext = PlayoutDelay::Range {
            min_ms: 20,
            max_ms: 200,
        }
        .extension()
        .unwrap();
        assert_eq!(ext.uri(), PLAYOUT_DELAY_URI);
        let mut buf = vec![0u8; 3];
        ext.marshal_to(&mut buf).unwrap();
        assert_eq!(buf, [0x00, 0x20, 0x14]);
    }
}
