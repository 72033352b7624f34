//! The video codecs this build can stream, each described once.
//!
//! A codec sent on an RTP track is an [`RtpCodec`]: what the SDP says about it (MIME type, clock rate,
//! payload type, fmtp line, RTCP feedback), which offers it can answer, how its access units become RTP
//! payloads, and how its encoder is made. The peer connections, WHEP and the media pipeline read
//! these, so a new codec is its encoder module plus a descriptor here, a [`Codec`] variant and its
//! entry in [`RTP_VIDEO`]. PNG is not RTP: it goes over the DataChannel.

use crate::server::ServeConfig;
use crate::video::h264::{H264Encoder, PictureEncoder};
use crate::video::pipeline::VideoPipeline;
use crate::video::repeat::Repeater;
use crate::video::rtp::{MediaClock, Packetizer};
use std::str::FromStr;
use std::time::Duration;
use webrtc::rtp::codecs::h264::H264Payloader;
use webrtc::rtp::packetizer::Payloader;

/// The video codecs this build can stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    Png,
}

impl Codec {
    pub fn name(self) -> &'static str {
        match self {
            Codec::H264 => "h264",
            Codec::Png => "png",
        }
    }

    /// How its pictures travel: on an RTP track as this codec, or (`None`) as PNG on the DataChannel.
    pub fn rtp(self) -> Option<&'static RtpCodec> {
        match self {
            Codec::H264 => Some(&H264),
            Codec::Png => None,
        }
    }

    /// The pipeline that turns frames into this codec's stream, as `cfg` configures it.
    pub fn pipeline(self, cfg: &ServeConfig, keyframe_interval: Duration) -> VideoPipeline {
        match self.rtp() {
            Some(c) => VideoPipeline::encoded(
                (c.encoder)(cfg),
                c.repeats.then(Repeater::new),
                MediaClock::with_rate(c.clock_rate),
                cfg.refresh,
                keyframe_interval,
            ),
            None => VideoPipeline::png(cfg.png_refresh, keyframe_interval),
        }
    }
}

impl FromStr for Codec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "h264" | "h.264" | "avc" => Ok(Codec::H264),
            "png" => Ok(Codec::Png),
            "av1" => {
                Err("this server was not built with AV1 (no AV1 encoder); use h264 or png".into())
            }
            "vp9" | "webp" => Err(format!(
                "this server was not built with {s}; use h264 or png"
            )),
            _ => Err(format!("unknown codec {s:?}; use h264 or png")),
        }
    }
}

/// A video codec sent on an RTP track.
pub struct RtpCodec {
    /// The name people read ("H.264").
    pub display: &'static str,
    pub mime_type: &'static str,
    pub clock_rate: u32,
    pub payload_type: u8,
    /// The format we send and offer.
    pub fmtp: &'static str,
    /// RTCP feedback offered, as (type, parameter).
    pub rtcp_feedback: &'static [(&'static str, &'static str)],
    /// Whether a player offering this codec with these fmtp parameters (`None`: no fmtp line) can
    /// receive what we send.
    pub accepts_fmtp: fn(Option<&str>) -> bool,
    /// Why an offer of this codec that `accepts_fmtp` refuses cannot be answered.
    pub refusal: &'static str,
    /// Splits one access unit into RTP payloads.
    pub payloader: fn() -> Box<dyn Payloader + Send + Sync>,
    pub encoder: fn(&ServeConfig) -> Box<dyn PictureEncoder>,
    /// A static picture can be repeated without the encoder ([`Repeater`]).
    pub repeats: bool,
}

impl std::fmt::Debug for RtpCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.display)
    }
}

impl RtpCodec {
    /// The encoding name of SDP's `a=rtpmap` (the MIME subtype).
    pub fn encoding(&self) -> &'static str {
        self.mime_type.split_once('/').map_or("", |(_, e)| e)
    }

    /// A packetizer for one viewer's track; `first_sequence` should be random (RFC 3550 §5.1).
    pub fn packetizer(&self, first_sequence: u16) -> Packetizer {
        Packetizer::with_payloader((self.payloader)(), first_sequence)
    }
}

/// Every RTP video codec this build can send; the WebRTC stack registers them all.
pub static RTP_VIDEO: &[&RtpCodec] = &[&H264];

/// H.264 Constrained Baseline 3.1 in packetization-mode 1 (RFC 6184).
pub static H264: RtpCodec = RtpCodec {
    display: "H.264",
    mime_type: webrtc::api::media_engine::MIME_TYPE_H264,
    clock_rate: 90_000,
    payload_type: 102,
    fmtp: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    rtcp_feedback: &[
        ("goog-remb", ""),
        ("ccm", "fir"),
        ("nack", ""),
        ("nack", "pli"),
    ],
    accepts_fmtp: h264_mode1,
    refusal: "H.264 is sent fragmented (FU-A), which needs packetization-mode=1; the offer's \
              H.264 does not allow it",
    payloader: || Box::new(H264Payloader::default()),
    encoder: |cfg| Box::new(H264Encoder::new(cfg.h264)),
    repeats: true,
};

/// Our packetizer sends FU-A fragments, which only packetization-mode 1 allows (RFC 6184: absent
/// means 0).
fn h264_mode1(fmtp: Option<&str>) -> bool {
    fmtp.is_some_and(|params| {
        params.split(';').any(|p| {
            p.trim()
                .split_once('=')
                .is_some_and(|(k, v)| k.trim() == "packetization-mode" && v.trim() == "1")
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_print() {
        for c in [Codec::H264, Codec::Png] {
            assert_eq!(c.name().parse::<Codec>(), Ok(c));
        }
        assert_eq!("AVC".parse::<Codec>(), Ok(Codec::H264));
        assert!("av1".parse::<Codec>().unwrap_err().contains("AV1"));
        assert!("mjpeg".parse::<Codec>().unwrap_err().contains("unknown"));
    }

    #[test]
    fn every_rtp_codec_is_registered_once_and_describes_itself() {
        for c in [Codec::H264, Codec::Png] {
            if let Some(r) = c.rtp() {
                assert_eq!(
                    RTP_VIDEO.iter().filter(|x| std::ptr::eq(**x, r)).count(),
                    1,
                    "{r:?}"
                );
            }
        }
        let mut pts: Vec<u8> = RTP_VIDEO.iter().map(|c| c.payload_type).collect();
        pts.sort_unstable();
        pts.dedup();
        assert_eq!(pts.len(), RTP_VIDEO.len(), "payload types are distinct");
        for c in RTP_VIDEO {
            assert!(c.mime_type.starts_with("video/") && !c.encoding().is_empty());
            assert!(
                (c.accepts_fmtp)(Some(c.fmtp)),
                "{c:?} accepts its own format"
            );
        }
        assert_eq!(H264.encoding(), "H264");
    }

    #[test]
    fn h264_needs_packetization_mode_1() {
        let ok = |f| (H264.accepts_fmtp)(f);
        assert!(ok(Some("packetization-mode=1")));
        assert!(ok(Some(
            "level-asymmetry-allowed=1; packetization-mode = 1 ;profile-level-id=42e01f"
        )));
        assert!(!ok(None));
        assert!(!ok(Some("packetization-mode=0")));
        assert!(!ok(Some("profile-level-id=42e01f")));
    }
}
