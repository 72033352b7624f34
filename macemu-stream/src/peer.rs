//! One WebRTC peer connection per viewer (webrtc-rs): the server makes the offer with a video track of
//! the codec it streams ([`crate::codec`]), an Opus track (separate stream ids) and the `input`
//! DataChannel. Each viewer is fed by its own task through bounded queues, so a slow viewer drops
//! frames instead of stalling the encoder or the others. RTCP from the viewer is read on the video
//! sender; PLI/FIR become keyframe requests.

use bytes::Bytes;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::mpsc;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MediaEngine, MIME_TYPE_OPUS};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::{APIBuilder, API};
use webrtc::data_channel::data_channel_init::RTCDataChannelInit;
use webrtc::data_channel::RTCDataChannel;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice_transport::ice_candidate::RTCIceCandidateInit;
use webrtc::ice_transport::ice_server::RTCIceServer;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RTPCodecType,
};
use webrtc::rtp_transceiver::RTCPFeedback;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_local::{TrackLocal, TrackLocalWriter};

use crate::audio::{AudioPacket, OpusPacketizer};
use crate::codec::{RtpCodec, RTP_VIDEO};
use crate::video::rtp::{PlayoutDelay, PLAYOUT_DELAY_URI};
use webrtc::rtp::extension::HeaderExtension;

/// Video frames queued per viewer before frames are dropped for it.
pub const VIDEO_QUEUE: usize = 4;
/// Audio packets queued per viewer (200 ms).
pub const AUDIO_QUEUE: usize = 10;
/// A DataChannel holding more than this unsent is too slow for PNG frames: drop until it drains.
pub const DC_HIGH_WATER: usize = 1 << 20;

#[derive(Debug, Error)]
pub enum PeerError {
    #[error("WebRTC: {0}")]
    WebRtc(#[from] webrtc::Error),
    #[error("peer has no local description after creating the offer or answer")]
    NoOffer,
}

/// Options for the WebRTC stack.
#[derive(Debug, Clone, Default)]
pub struct PeerOptions {
    /// STUN server URL (e.g. `stun:stun.example.org:3478`); none by default: LAN / same-host use.
    pub stun: Option<String>,
    /// Offer loopback host candidates too (same-host viewers, tests).
    pub include_loopback: bool,
    /// Gather loopback candidates only (tests: traffic never leaves the host's loopback).
    pub loopback_only: bool,
    /// How long the browser may hold video frames (zero by default: interactive viewing).
    pub playout_delay: PlayoutDelay,
}

/// What the SDP says about a video codec's track.
fn capability(c: &RtpCodec) -> RTCRtpCodecCapability {
    RTCRtpCodecCapability {
        mime_type: c.mime_type.to_owned(),
        clock_rate: c.clock_rate,
        channels: 0,
        sdp_fmtp_line: c.fmtp.to_owned(),
        rtcp_feedback: vec![],
    }
}

/// Builds the WebRTC API object shared by all peers.
pub fn build_api(opts: &PeerOptions) -> Result<API, PeerError> {
    let mut m = MediaEngine::default();
    for c in RTP_VIDEO {
        m.register_codec(
            RTCRtpCodecParameters {
                capability: RTCRtpCodecCapability {
                    rtcp_feedback: c
                        .rtcp_feedback
                        .iter()
                        .map(|(t, p)| RTCPFeedback {
                            typ: (*t).into(),
                            parameter: (*p).into(),
                        })
                        .collect(),
                    ..capability(c)
                },
                payload_type: c.payload_type,
                ..Default::default()
            },
            RTPCodecType::Video,
        )?;
    }
    m.register_codec(
        RTCRtpCodecParameters {
            capability: RTCRtpCodecCapability {
                mime_type: MIME_TYPE_OPUS.to_owned(),
                clock_rate: 48_000,
                channels: 2,
                sdp_fmtp_line: "minptime=10;useinbandfec=1;stereo=1;sprop-stereo=1".to_owned(),
                rtcp_feedback: vec![],
            },
            payload_type: 111,
            ..Default::default()
        },
        RTPCodecType::Audio,
    )?;
    if opts.playout_delay != PlayoutDelay::Adaptive {
        m.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: PLAYOUT_DELAY_URI.to_owned(),
            },
            RTPCodecType::Video,
            None,
        )?;
    }
    let registry = register_default_interceptors(Registry::new(), &mut m)?;
    let mut s = SettingEngine::default();
    // mDNS candidates are useless to a server and leak multicast traffic onto the LAN.
    s.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    // A browser hides its host addresses behind mDNS names, which the server does not resolve: the
    // server learns the browser's address from its connectivity checks, as a peer-reflexive
    // candidate. That pair is the one that works, so it is nominated at once; webrtc-rs would hold a
    // peer-reflexive pair back for 1 s in case a better one turned up.
    s.set_prflx_acceptance_min_wait(Some(Duration::ZERO));
    s.set_include_loopback_candidate(opts.include_loopback || opts.loopback_only);
    if opts.loopback_only {
        s.set_ip_filter(Box::new(|ip| ip.is_loopback()));
    }
    Ok(APIBuilder::new()
        .with_media_engine(m)
        .with_interceptor_registry(registry)
        .with_setting_engine(s)
        .build())
}

/// What a peer reports to the server.
#[derive(Debug)]
pub enum PeerEvent {
    LocalCandidate {
        candidate: String,
        mid: String,
    },
    /// A binary DataChannel message from the browser.
    Input(Bytes),
    /// A text DataChannel message (legacy JSON commands).
    Text(String),
    KeyframeRequest,
    Connected,
    Closed,
}

/// Media handed to one viewer's sender task.
#[derive(Debug, Clone)]
pub enum VideoOut {
    /// An access unit of the video track's codec, its RTP timestamp (see [`crate::video::rtp`]) and
    /// its 65-byte metadata message, sent when `news` (a cursor move, a ping echo not yet sent, a
    /// keyframe) or when the viewer's DataChannel has had none yet.
    Rtp {
        data: Bytes,
        rtp_timestamp: u32,
        keyframe: bool,
        meta: Bytes,
        news: bool,
    },
    /// The PNG-mode DataChannel messages (header + PNG) of one frame.
    Png(Arc<Vec<Bytes>>),
    /// A 65-byte metadata message without a frame: a ping echo while the screen is static.
    Meta(Bytes),
}

/// The send side of one viewer, kept by the server.
pub struct PeerHandle {
    pub video: mpsc::Sender<VideoOut>,
    pub audio: mpsc::Sender<AudioPacket>,
    pub pc: Arc<RTCPeerConnection>,
}

/// A new peer connection with the configured ICE servers.
async fn new_pc(api: &API, opts: &PeerOptions) -> Result<Arc<RTCPeerConnection>, PeerError> {
    let mut config = RTCConfiguration::default();
    if let Some(url) = &opts.stun {
        config.ice_servers = vec![RTCIceServer {
            urls: vec![url.clone()],
            ..Default::default()
        }];
    }
    Ok(Arc::new(api.new_peer_connection(config).await?))
}

/// A video track and the codec it sends.
type VideoTrack = (Arc<TrackLocalStaticRTP>, &'static RtpCodec);

/// Adds the video track of `video` (none in PNG mode) and the Opus track, with their RTCP readers.
async fn add_media(
    pc: &RTCPeerConnection,
    video: Option<&'static RtpCodec>,
    events: &mpsc::Sender<PeerEvent>,
) -> Result<(Option<VideoTrack>, Arc<TrackLocalStaticRTP>), PeerError> {
    let video = if let Some(codec) = video {
        let t = Arc::new(TrackLocalStaticRTP::new(
            capability(codec),
            "video".to_owned(),
            "macemu-video".to_owned(),
        ));
        let sender = pc
            .add_track(Arc::clone(&t) as Arc<dyn TrackLocal + Send + Sync>)
            .await?;
        // Reading RTCP drives the interceptors (NACK responder, reports) and yields PLI/FIR.
        let ev = events.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 1500];
            while let Ok((pkts, _)) = sender.read(&mut buf).await {
                for p in pkts {
                    let any = p.as_any();
                    if any.downcast_ref::<PictureLossIndication>().is_some()
                        || any.downcast_ref::<FullIntraRequest>().is_some()
                    {
                        // A full queue already holds a request that stands for this one.
                        let _ = ev.try_send(PeerEvent::KeyframeRequest);
                    }
                }
            }
        });
        Some((t, codec))
    } else {
        None
    };
    let audio = Arc::new(TrackLocalStaticRTP::new(
        RTCRtpCodecCapability {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: 48_000,
            channels: 2,
            ..Default::default()
        },
        "audio".to_owned(),
        "macemu-audio".to_owned(),
    ));
    let audio_sender = pc
        .add_track(Arc::clone(&audio) as Arc<dyn TrackLocal + Send + Sync>)
        .await?;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1500];
        while audio_sender.read(&mut buf).await.is_ok() {}
    });
    Ok((video, audio))
}

/// Forwards a DataChannel's messages as input events.
fn forward_messages(dc: &RTCDataChannel, events: &mpsc::Sender<PeerEvent>) {
    // The queue is bounded: a flood of input waits for room and backs up into SCTP flow control
    // instead of memory.
    let ev = events.clone();
    dc.on_message(Box::new(move |m| {
        let ev = ev.clone();
        Box::pin(async move {
            let e = if m.is_string {
                PeerEvent::Text(String::from_utf8_lossy(&m.data).into_owned())
            } else {
                PeerEvent::Input(m.data)
            };
            let _ = ev.send(e).await;
        })
    }));
}

/// Reports local candidates and connection state changes.
fn watch_peer(pc: &RTCPeerConnection, events: &mpsc::Sender<PeerEvent>) {
    {
        let ev = events.clone();
        pc.on_ice_candidate(Box::new(move |c| {
            let ev = ev.clone();
            Box::pin(async move {
                if let Some(init) = c.and_then(|c| c.to_json().ok()) {
                    let _ = ev
                        .send(PeerEvent::LocalCandidate {
                            candidate: init.candidate,
                            mid: init.sdp_mid.unwrap_or_else(|| "0".into()),
                        })
                        .await;
                }
            })
        }));
    }
    pc.on_ice_connection_state_change(Box::new(|s| {
        tracing::debug!(state = %s, "ICE connection state");
        Box::pin(async {})
    }));
    let ev = events.clone();
    pc.on_peer_connection_state_change(Box::new(move |s| {
        tracing::debug!(state = %s, "peer connection state");
        let e = match s {
            RTCPeerConnectionState::Connected => Some(PeerEvent::Connected),
            RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => {
                Some(PeerEvent::Closed)
            }
            _ => None,
        };
        let ev = ev.clone();
        Box::pin(async move {
            if let Some(e) = e {
                let _ = ev.send(e).await;
            }
        })
    }));
}

/// The `input` DataChannel of a peer, once there is one (ours from the start; a WHEP player's when it
/// opens it).
type InputChannel = Arc<OnceLock<Arc<RTCDataChannel>>>;

fn start_sender(
    pc: Arc<RTCPeerConnection>,
    video: Option<VideoTrack>,
    audio: Arc<TrackLocalStaticRTP>,
    dc: InputChannel,
    playout_delay: PlayoutDelay,
) -> PeerHandle {
    let (vtx, vrx) = mpsc::channel(VIDEO_QUEUE);
    let (atx, arx) = mpsc::channel(AUDIO_QUEUE);
    let ext = playout_delay.extension();
    tokio::spawn(sender_task(video, audio, dc, (vrx, ext), arx));
    PeerHandle {
        video: vtx,
        audio: atx,
        pc,
    }
}

/// Creates the peer connection with its tracks and DataChannel, starts its sender task, and returns the
/// handle and the offer SDP. `video` is the codec of the video track; none is PNG mode, with its
/// unreliable, unordered DataChannel.
pub async fn create_peer(
    api: &API,
    opts: &PeerOptions,
    video: Option<&'static RtpCodec>,
    events: mpsc::Sender<PeerEvent>,
) -> Result<(PeerHandle, String), PeerError> {
    let pc = new_pc(api, opts).await?;
    let png = video.is_none();
    let (video, audio) = add_media(&pc, video, &events).await?;
    let init = if png {
        RTCDataChannelInit {
            ordered: Some(false),
            max_retransmits: Some(0),
            ..Default::default()
        }
    } else {
        RTCDataChannelInit::default()
    };
    let dc = pc.create_data_channel("input", Some(init)).await?;
    forward_messages(&dc, &events);
    watch_peer(&pc, &events);

    let offer = pc.create_offer(None).await?;
    pc.set_local_description(offer).await?;
    let sdp = pc.local_description().await.ok_or(PeerError::NoOffer)?.sdp;
    let handle = start_sender(
        pc,
        video,
        audio,
        Arc::new(OnceLock::from(dc)),
        opts.playout_delay,
    );
    Ok((handle, sdp))
}

/// How long an answer waits for the server's ICE candidates (host candidates take milliseconds).
const GATHER_TIMEOUT: Duration = Duration::from_secs(2);

/// Answers a player's offer (WHEP): the `video` and Opus tracks take the offer's receiving sections, a
/// DataChannel the player opens becomes its input channel. The answer carries all server candidates,
/// since a WHEP server does not trickle. Returns the handle and the answer SDP.
pub async fn answer_peer(
    api: &API,
    opts: &PeerOptions,
    video: &'static RtpCodec,
    offer: String,
    events: mpsc::Sender<PeerEvent>,
) -> Result<(PeerHandle, String), PeerError> {
    let pc = new_pc(api, opts).await?;
    // Tracks first: applying the offer then pairs its receive-only sections with them.
    let (video, audio) = add_media(&pc, Some(video), &events).await?;
    let input: InputChannel = Arc::new(OnceLock::new());
    {
        let ev = events.clone();
        let input = input.clone();
        pc.on_data_channel(Box::new(move |dc| {
            tracing::debug!(label = dc.label(), "the player opened a DataChannel");
            forward_messages(&dc, &ev);
            // Frame metadata goes only to a channel that speaks our protocol.
            if dc.label() == "input" {
                let _ = input.set(dc);
            }
            Box::pin(async {})
        }));
    }
    watch_peer(&pc, &events);
    let result = async {
        pc.set_remote_description(RTCSessionDescription::offer(offer)?)
            .await?;
        let answer = pc.create_answer(None).await?;
        let mut gathered = pc.gathering_complete_promise().await;
        let t0 = std::time::Instant::now();
        pc.set_local_description(answer).await?;
        let complete = tokio::time::timeout(GATHER_TIMEOUT, gathered.recv())
            .await
            .is_ok();
        tracing::debug!(took = ?t0.elapsed(), complete, "WHEP answer: candidates gathered");
        pc.local_description().await.ok_or(PeerError::NoOffer)
    }
    .await;
    match result {
        Ok(answer) => Ok((
            start_sender(pc, video, audio, input, opts.playout_delay),
            answer.sdp,
        )),
        Err(e) => {
            let _ = pc.close().await;
            Err(e)
        }
    }
}

/// Writes one viewer's media. Ends when the server drops the queues.
async fn sender_task(
    video: Option<VideoTrack>,
    audio: Arc<TrackLocalStaticRTP>,
    dc: InputChannel,
    (mut vrx, playout): (mpsc::Receiver<VideoOut>, Option<HeaderExtension>),
    mut arx: mpsc::Receiver<AudioPacket>,
) {
    let extensions: Vec<HeaderExtension> = playout.into_iter().collect();
    use webrtc::data_channel::data_channel_state::RTCDataChannelState;
    // Packetized per viewer: each has its own sequence numbers (and the track its own SSRC).
    let mut packetizer = video.as_ref().map(|(_, c)| c.packetizer(rand::random()));
    let mut opus_rtp = OpusPacketizer::new(rand::random(), rand::random());
    let mut first_picture = true;
    // Whether this viewer has had a metadata message: its DataChannel may open after the pictures
    // with news went out.
    let mut meta_sent = false;
    loop {
        tokio::select! {
            v = vrx.recv() => match v {
                Some(VideoOut::Rtp { data, rtp_timestamp, meta, keyframe, news }) => {
                    if std::mem::take(&mut first_picture) {
                        tracing::debug!(keyframe, bytes = data.len(), "first picture to the viewer");
                    }
                    if let (Some((t, _)), Some(packetizer)) = (&video, packetizer.as_mut()) {
                        for p in packetizer.packetize(&data, rtp_timestamp) {
                            if let Err(e) = t.write_rtp_with_extensions(&p, &extensions).await {
                                tracing::debug!("video write: {e}");
                                break;
                            }
                        }
                    }
                    if news || !meta_sent {
                        if let Some(dc) = dc.get().filter(|d| d.ready_state() == RTCDataChannelState::Open) {
                            meta_sent |= dc.send(&meta).await.is_ok();
                        }
                    }
                }
                Some(VideoOut::Meta(meta)) => {
                    if let Some(dc) = dc.get().filter(|d| d.ready_state() == RTCDataChannelState::Open) {
                        meta_sent |= dc.send(&meta).await.is_ok();
                    }
                }
                Some(VideoOut::Png(msgs)) => {
                    let Some(dc) = dc.get().filter(|d| d.ready_state() == RTCDataChannelState::Open) else { continue };
                    if dc.buffered_amount().await < DC_HIGH_WATER {
                        for m in msgs.iter() {
                            let _ = dc.send(m).await;
                        }
                    }
                }
                None => break,
            },
            a = arx.recv() => match a {
                Some(pkt) => {
                    if let Err(e) = audio.write_rtp(&opus_rtp.packetize(&pkt)).await {
                        tracing::debug!("audio write: {e}");
                    }
                }
                None => break,
            },
        }
    }
}

/// Applies the browser's answer.
pub async fn apply_answer(pc: &RTCPeerConnection, sdp: String) -> Result<(), PeerError> {
    pc.set_remote_description(RTCSessionDescription::answer(sdp)?)
        .await?;
    Ok(())
}

/// Adds a remote ICE candidate (empty candidates mark the end of gathering and are ignored).
pub async fn add_candidate(
    pc: &RTCPeerConnection,
    candidate: String,
    mid: Option<String>,
) -> Result<(), PeerError> {
    if candidate.is_empty() {
        return Ok(());
    }
    pc.add_ice_candidate(RTCIceCandidateInit {
        candidate,
        sdp_mid: mid,
        ..Default::default()
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use webrtc::rtp_transceiver::rtp_transceiver_direction::RTCRtpTransceiverDirection;
    use webrtc::rtp_transceiver::RTCRtpTransceiverInit;

    fn loopback() -> PeerOptions {
        PeerOptions {
            stun: None,
            include_loopback: true,
            loopback_only: true,
            playout_delay: PlayoutDelay::default(),
        }
    }

    /// A WHEP player's offer: receive-only video and audio, from another webrtc-rs peer.
    async fn player_offer(api: &API) -> (Arc<RTCPeerConnection>, String) {
        let pc = Arc::new(
            api.new_peer_connection(RTCConfiguration::default())
                .await
                .unwrap(),
        );
        for kind in [RTPCodecType::Video, RTPCodecType::Audio] {
            pc.add_transceiver_from_kind(
                kind,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    send_encodings: vec![],
                }),
            )
            .await
            .unwrap();
        }
        let offer = pc.create_offer(None).await.unwrap();
        let mut gathered = pc.gathering_complete_promise().await;
        pc.set_local_description(offer).await.unwrap();
        let _ = gathered.recv().await;
        let sdp = pc.local_description().await.unwrap().sdp;
        (pc, sdp)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_whep_answer_has_its_host_candidates_without_waiting() {
        let api = build_api(&loopback()).unwrap();
        let (player, offer) = player_offer(&api).await;
        let (tx, _rx) = mpsc::channel(16);
        let t0 = std::time::Instant::now();
        let (h, answer) = answer_peer(&api, &loopback(), RTP_VIDEO[0], offer, tx)
            .await
            .unwrap();
        let took = t0.elapsed();
        assert!(
            answer.contains("a=candidate:") && answer.contains("typ host"),
            "{answer}"
        );
        // Gathering host candidates is a few socket binds; the timeout is only a backstop.
        assert!(took < GATHER_TIMEOUT / 4, "answering took {took:?}");
        let _ = h.pc.close().await;
        let _ = player.close().await;
    }

    /// A viewer that tells the server none of its candidates, as a browser whose host addresses are
    /// mDNS names: the server learns its address from its checks (peer-reflexive) and must not hold
    /// that pair back (webrtc-rs's default wait for one is 1 s).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_viewer_known_only_by_its_checks_connects_without_waiting() {
        let api = build_api(&loopback()).unwrap();
        let (tx, mut events) = mpsc::channel(64);
        let (h, _) = create_peer(&api, &loopback(), Some(RTP_VIDEO[0]), tx)
            .await
            .unwrap();
        // The offer with the server's candidates (they trickle in our protocol).
        let t = std::time::Instant::now();
        while h.pc.ice_gathering_state()
            != webrtc::ice_transport::ice_gathering_state::RTCIceGatheringState::Complete
        {
            assert!(t.elapsed() < GATHER_TIMEOUT, "the server gathers nothing");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let offer = h.pc.local_description().await.unwrap().sdp;
        let viewer = Arc::new(
            api.new_peer_connection(RTCConfiguration::default())
                .await
                .unwrap(),
        );
        viewer
            .set_remote_description(RTCSessionDescription::offer(offer).unwrap())
            .await
            .unwrap();
        let answer = viewer.create_answer(None).await.unwrap();
        viewer.set_local_description(answer.clone()).await.unwrap();
        let answer: String = answer
            .sdp
            .lines()
            .filter(|l| !l.starts_with("a=candidate"))
            .map(|l| format!("{l}\r\n"))
            .collect();
        let t0 = std::time::Instant::now();
        apply_answer(&h.pc, answer).await.unwrap();
        let connected = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(e) = events.recv().await {
                if matches!(e, PeerEvent::Connected) {
                    return true;
                }
            }
            false
        })
        .await;
        let took = t0.elapsed();
        assert_eq!(connected, Ok(true), "not connected after {took:?}");
        assert!(
            took < Duration::from_millis(700),
            "ICE and DTLS took {took:?}"
        );
        let _ = h.pc.close().await;
        let _ = viewer.close().await;
    }
}
