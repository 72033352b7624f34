//! A headless viewer: connects to a macemu server exactly as the browser client does (WebSocket
//! signaling, the server's offer, trickle ICE, one WebRTC peer) and consumes what a browser would:
//! the H.264 track (reassembled into access units, optionally decoded with openh264), the Opus track
//! (optionally decoded with libopus) and the `input` DataChannel (per-frame metadata or PNG frames). It
//! can send input like the browser, and keeps counters for monitoring, tests and benches.
//!
//! It behaves like a browser on loss too: a gap in the video's RTP sequence numbers (or a frame the
//! decoder rejects) means the following pictures cannot be decoded, so it skips them, sends a picture
//! loss indication (PLI) and waits for the keyframe the server sends in answer.
//!
//! [`Viewer::pause`] stops reading the media tracks, as a frozen tab or a viewer on a congested link
//! would: its receive buffers fill and overflow, packets are lost, and on [`Viewer::resume`] it has to
//! recover as above. The DataChannel keeps being read (a paused SCTP reader would only throttle the
//! server's sends for this one viewer after megabytes of backlog).

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use macemu_stream::datachannel::{encode_client_event, ClientEvent, H264_META_LEN, PNG_HEADER_LEN};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::APIBuilder;
use webrtc::data_channel::data_channel_state::RTCDataChannelState;
use webrtc::data_channel::RTCDataChannel;
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice_transport::ice_candidate::RTCIceCandidateInit;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp::codecs::h264::H264Packet;
use webrtc::rtp::packetizer::Depacketizer;
use webrtc::track::track_remote::TrackRemote;

#[derive(Debug, Error)]
pub enum ViewerError {
    #[error("cannot open the signaling WebSocket {url}: {source}")]
    Signaling {
        url: String,
        source: Box<tokio_tungstenite::tungstenite::Error>,
    },
    #[error("no answer from {what} within {after:?}")]
    Timeout { what: String, after: Duration },
    #[error("WebRTC: {0}")]
    WebRtc(#[from] webrtc::Error),
    #[error("the input DataChannel is not open")]
    DataChannelNotOpen,
    #[error("HTTP {addr}: {source}")]
    HttpIo {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP {addr}: {message}")]
    Http { addr: SocketAddr, message: String },
}

/// How much of the video to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoDecode {
    /// Count and reassemble access units only (cheapest: benches, monitoring).
    Off,
    /// Decode and keep the luma plane (enough to compare pictures).
    Luma,
    /// Decode and keep luma and RGB (BT.601 limited range, as the encoder writes).
    Rgb,
}

/// What to connect to and what to keep.
#[derive(Debug, Clone)]
pub struct ViewerOptions {
    /// The server's signaling address (`ServerHandle::signaling_addr`, port 8090 by default).
    pub signaling_addr: SocketAddr,
    pub token: Option<String>,
    pub video: VideoDecode,
    /// Decode the Opus track to 48 kHz stereo samples.
    pub audio: bool,
    /// Decoded pictures kept (the newest).
    pub keep_pictures: usize,
    /// Decoded audio frames kept (48 000 a second).
    pub keep_audio_frames: usize,
    /// DataChannel messages kept per kind (metadata, PNG).
    pub keep_messages: usize,
    /// Signaling messages kept.
    pub keep_signals: usize,
    /// Use loopback ICE candidates only (tests and benches on one host).
    pub loopback_only: bool,
    /// Limit for connecting the WebSocket.
    pub connect_timeout: Duration,
    /// While pictures cannot be decoded, a PLI is sent at most this often.
    pub keyframe_request_interval: Duration,
    /// A hostile viewer: a PLI this often whatever it receives (counted in `keyframe_requests`).
    pub pli_flood: Option<Duration>,
}

impl ViewerOptions {
    /// Defaults: decode luma, no audio decoding, keep the newest picture, 1 s of audio and 256 of
    /// each message kind, loopback only.
    pub fn new(signaling_addr: SocketAddr) -> Self {
        Self {
            signaling_addr,
            token: None,
            video: VideoDecode::Luma,
            audio: false,
            keep_pictures: 1,
            keep_audio_frames: 48_000,
            keep_messages: 256,
            keep_signals: 256,
            loopback_only: true,
            connect_timeout: Duration::from_secs(10),
            keyframe_request_interval: Duration::from_millis(500),
            pli_flood: None,
        }
    }

    /// Keeps every picture, audio sample and message (bounded tests only: memory grows).
    pub fn keep_everything(mut self) -> Self {
        self.keep_pictures = usize::MAX;
        self.keep_audio_frames = usize::MAX;
        self.keep_messages = usize::MAX;
        self.keep_signals = usize::MAX;
        self
    }

    fn url(&self) -> String {
        match &self.token {
            Some(t) => format!("ws://{}/?token={}", self.signaling_addr, url_encode(t)),
            None => format!("ws://{}/", self.signaling_addr),
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One decoded picture.
#[derive(Debug, Clone)]
pub struct Picture {
    pub width: usize,
    pub height: usize,
    /// Y plane, `width × height`, no padding.
    pub luma: Vec<u8>,
    /// RGB, 3 bytes a pixel, with [`VideoDecode::Rgb`].
    pub rgb: Option<Vec<u8>>,
    pub received: Instant,
}

/// Counters. Video "frames" are complete access units (all their RTP packets arrived).
#[derive(Debug, Clone, Default)]
pub struct ViewerStats {
    /// The peer connection is in the connected state.
    pub connected: bool,
    /// The last peer connection state, as webrtc names it.
    pub peer_state: String,
    pub video_packets: u64,
    /// RTP payload bytes of the video track.
    pub video_bytes: u64,
    pub frames: u64,
    pub keyframes: u64,
    /// When the newest complete access unit arrived.
    pub last_frame: Option<Instant>,
    /// When the newest complete keyframe arrived.
    pub last_keyframe: Option<Instant>,
    pub decoded: u64,
    pub decode_errors: u64,
    /// Access units not decoded: damaged by loss, or waiting for a keyframe after one.
    pub frames_skipped: u64,
    /// RTP packets missing from the sequence (including those lost to a paused viewer's full buffer).
    pub packets_lost: u64,
    /// Packets that arrived after a later one (reordered or retransmitted too late); ignored.
    pub packets_late: u64,
    /// RTP payloads that are not valid H.264 packetization.
    pub packets_malformed: u64,
    /// PLIs sent.
    pub keyframe_requests: u64,
    pub audio_packets: u64,
    pub audio_bytes: u64,
    pub audio_decode_errors: u64,
    /// 65-byte H.264 metadata messages.
    pub meta_messages: u64,
    /// PNG-mode frame messages.
    pub png_messages: u64,
    /// DataChannel messages of neither kind (text, or binary of another size).
    pub other_messages: u64,
    pub dc_bytes: u64,
    /// Label of the DataChannel the server opened.
    pub data_channel: Option<String>,
    /// Signaling messages that were not valid JSON of a known type, or could not be applied.
    pub signaling_errors: u64,
    /// `{"type":"error"}` messages from the server.
    pub server_errors: u64,
    /// The server asked for a reconnect (codec switch); a browser would connect again.
    pub reconnect_requested: bool,
    /// The signaling WebSocket has closed.
    pub signaling_closed: bool,
}

/// What the viewer collected, bounded by [`ViewerOptions`].
#[derive(Debug, Default)]
pub struct Received {
    pub stats: ViewerStats,
    pub pictures: VecDeque<Picture>,
    /// Decoded audio, 48 kHz stereo frames.
    pub audio: Vec<[f32; 2]>,
    /// H.264 metadata messages (see `datachannel::decode_h264_meta`).
    pub meta: VecDeque<Bytes>,
    /// PNG-mode messages, header and PNG (see `datachannel::PngHeader::decode`).
    pub png: VecDeque<Bytes>,
    /// Signaling messages from the server, in order.
    pub signals: VecDeque<Value>,
}

fn push_bounded<T>(q: &mut VecDeque<T>, v: T, keep: usize) {
    if keep == 0 {
        return;
    }
    if q.len() >= keep {
        q.pop_front();
    }
    q.push_back(v);
}

struct Shared {
    opts: ViewerOptions,
    state: Mutex<Received>,
    dc: Mutex<Option<Arc<RTCDataChannel>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    paused: watch::Sender<bool>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, Received> {
        // A panicking reader cannot leave the counters inconsistent in a way that matters.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn spawn(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = Self::lock(&self.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(tokio::spawn(f));
    }
}

/// A connected (or connecting) headless viewer. Dropping it tears the connection down.
pub struct Viewer {
    pc: Arc<RTCPeerConnection>,
    shared: Arc<Shared>,
    ws_task: JoinHandle<()>,
    closed: bool,
}

impl Viewer {
    /// Opens the signaling WebSocket, sends `connect` and answers the server's offer in the
    /// background. Returns once the WebSocket is open; media follows (see [`Viewer::wait_for`]).
    pub async fn connect(opts: ViewerOptions) -> Result<Viewer, ViewerError> {
        let url = opts.url();
        let ws = tokio::time::timeout(opts.connect_timeout, tokio_tungstenite::connect_async(&url))
            .await
            .map_err(|_| ViewerError::Timeout {
                what: format!("signaling WebSocket {url}"),
                after: opts.connect_timeout,
            })?
            .map_err(|e| ViewerError::Signaling {
                url: url.clone(),
                source: Box::new(e),
            })?
            .0;
        let (mut ws_tx, ws_rx) = ws.split();

        let mut m = MediaEngine::default();
        m.register_default_codecs()?;
        // NACK generation and receiver reports, as a browser sends them.
        let registry = register_default_interceptors(Registry::new(), &mut m)?;
        let mut s = SettingEngine::default();
        s.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
        s.set_include_loopback_candidate(true);
        if opts.loopback_only {
            s.set_ip_filter(Box::new(|ip| ip.is_loopback()));
        }
        let api = APIBuilder::new()
            .with_media_engine(m)
            .with_interceptor_registry(registry)
            .with_setting_engine(s)
            .build();
        let pc = Arc::new(api.new_peer_connection(RTCConfiguration::default()).await?);
        let shared = Arc::new(Shared {
            opts,
            state: Mutex::new(Received::default()),
            dc: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
            paused: watch::channel(false).0,
        });
        install_handlers(&pc, &shared);

        let (cand_tx, cand_rx) = mpsc::unbounded_channel::<String>();
        pc.on_ice_candidate(Box::new(move |c| {
            if let Some(j) = c.and_then(|c| c.to_json().ok()) {
                let _ = cand_tx.send(
                    json!({"type": "candidate", "candidate": j.candidate, "mid": j.sdp_mid})
                        .to_string(),
                );
            }
            Box::pin(async {})
        }));
        ws_tx
            .send(Message::Text(r#"{"type":"connect"}"#.into()))
            .await
            .map_err(|e| ViewerError::Signaling {
                url,
                source: Box::new(e),
            })?;
        let ws_task = tokio::spawn(signaling_loop(
            Arc::downgrade(&pc),
            shared.clone(),
            ws_tx,
            ws_rx,
            cand_rx,
        ));
        Ok(Viewer {
            pc,
            shared,
            ws_task,
            closed: false,
        })
    }

    /// A copy of the counters.
    pub fn stats(&self) -> ViewerStats {
        self.shared.state().stats.clone()
    }

    /// Runs `f` on what has been collected so far (the media tasks wait meanwhile: keep it short).
    pub fn with_received<R>(&self, f: impl FnOnce(&Received) -> R) -> R {
        f(&self.shared.state())
    }

    /// The newest decoded picture.
    pub fn last_picture(&self) -> Option<Picture> {
        self.shared.state().pictures.back().cloned()
    }

    /// Signaling messages received so far.
    pub fn signals(&self) -> Vec<Value> {
        self.shared.state().signals.iter().cloned().collect()
    }

    /// Polls until `pred` holds, for at most `timeout`.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Received) -> bool,
    ) -> Result<(), ViewerError> {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.shared.state()) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(ViewerError::Timeout {
                    what: what.to_owned(),
                    after: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the `input` DataChannel is open (input can be sent).
    pub async fn wait_data_channel(&self, timeout: Duration) -> Result<(), ViewerError> {
        let deadline = Instant::now() + timeout;
        while !self.data_channel_open() {
            if Instant::now() >= deadline {
                return Err(ViewerError::Timeout {
                    what: "the input DataChannel".into(),
                    after: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    pub fn data_channel_open(&self) -> bool {
        Shared::lock(&self.shared.dc)
            .as_ref()
            .is_some_and(|d| d.ready_state() == RTCDataChannelState::Open)
    }

    /// Sends one input event on the DataChannel, encoded as the browser client does.
    pub async fn send(&self, e: &ClientEvent) -> Result<(), ViewerError> {
        self.send_raw(Bytes::from(encode_client_event(e))).await
    }

    /// Sends a raw binary DataChannel message (e.g. deliberately malformed input).
    pub async fn send_raw(&self, msg: Bytes) -> Result<(), ViewerError> {
        let dc = Shared::lock(&self.shared.dc)
            .clone()
            .filter(|d| d.ready_state() == RTCDataChannelState::Open)
            .ok_or(ViewerError::DataChannelNotOpen)?;
        dc.send(&msg).await?;
        Ok(())
    }

    /// Stops reading the media tracks: packets pile up in the receive buffers and overflow.
    pub fn pause(&self) {
        tracing::debug!("viewer paused");
        self.shared.paused.send_replace(true);
    }

    /// Reads the media tracks again (the backlog first; after a loss, the next keyframe).
    pub fn resume(&self) {
        tracing::debug!("viewer resumed");
        self.shared.paused.send_replace(false);
    }

    pub fn is_paused(&self) -> bool {
        *self.shared.paused.borrow()
    }

    /// Closes the peer connection and the signaling WebSocket.
    pub async fn close(mut self) {
        self.closed = true;
        self.ws_task.abort();
        if let Err(e) = self.pc.close().await {
            tracing::debug!("closing the viewer's peer connection: {e}");
        }
        for t in Shared::lock(&self.shared.tasks).drain(..) {
            t.abort();
        }
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        self.ws_task.abort();
        for t in Shared::lock(&self.shared.tasks).drain(..) {
            t.abort();
        }
        // Closing is async; without a runtime the process is ending anyway.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let pc = self.pc.clone();
            rt.spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}

fn install_handlers(pc: &Arc<RTCPeerConnection>, shared: &Arc<Shared>) {
    let (sh, weak_pc) = (Arc::downgrade(shared), Arc::downgrade(pc));
    pc.on_track(Box::new(move |track, _, _| {
        if let Some(sh) = sh.upgrade() {
            let mime = track.codec().capability.mime_type.to_ascii_lowercase();
            tracing::info!(%mime, ssrc = track.ssrc(), "viewer: track");
            if mime.contains("h264") {
                sh.spawn(video_loop(track, weak_pc.clone(), Arc::downgrade(&sh)));
            } else if mime.contains("opus") {
                sh.spawn(audio_loop(track, Arc::downgrade(&sh)));
            } else {
                tracing::warn!(%mime, "viewer: track of an unexpected codec is not read");
            }
        }
        Box::pin(async {})
    }));

    let sh = Arc::downgrade(shared);
    pc.on_data_channel(Box::new(move |dc| {
        let Some(sh) = sh.upgrade() else {
            return Box::pin(async {});
        };
        if dc.label() != "input" {
            tracing::warn!(
                label = dc.label(),
                "viewer: the server's DataChannel is not labelled \"input\""
            );
        }
        sh.state().stats.data_channel = Some(dc.label().to_owned());
        let sh2 = Arc::downgrade(&sh);
        dc.on_message(Box::new(move |msg| {
            if let Some(sh) = sh2.upgrade() {
                let keep = sh.opts.keep_messages;
                let mut r = sh.state();
                r.stats.dc_bytes += msg.data.len() as u64;
                if msg.is_string {
                    r.stats.other_messages += 1;
                } else if msg.data.len() == H264_META_LEN {
                    r.stats.meta_messages += 1;
                    push_bounded(&mut r.meta, msg.data, keep);
                } else if msg.data.len() > PNG_HEADER_LEN {
                    r.stats.png_messages += 1;
                    push_bounded(&mut r.png, msg.data, keep);
                } else {
                    r.stats.other_messages += 1;
                }
            }
            Box::pin(async {})
        }));
        *Shared::lock(&sh.dc) = Some(dc);
        Box::pin(async {})
    }));

    let sh = Arc::downgrade(shared);
    pc.on_peer_connection_state_change(Box::new(move |s| {
        if let Some(sh) = sh.upgrade() {
            match s {
                RTCPeerConnectionState::Connected => tracing::info!("viewer: connected"),
                RTCPeerConnectionState::Failed => tracing::warn!("viewer: peer connection failed"),
                _ => tracing::debug!(state = %s, "viewer: peer connection state"),
            }
            let mut r = sh.state();
            r.stats.connected = s == RTCPeerConnectionState::Connected;
            r.stats.peer_state = s.to_string();
        }
        Box::pin(async {})
    }));
}

type WsSink = futures_util::stream::SplitSink<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    Message,
>;
type WsSource = futures_util::stream::SplitStream<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
>;

/// The browser's side of signaling: answer offers, exchange candidates, note the rest.
async fn signaling_loop(
    pc: Weak<RTCPeerConnection>,
    shared: Arc<Shared>,
    mut ws_tx: WsSink,
    mut ws_rx: WsSource,
    mut cand_rx: mpsc::UnboundedReceiver<String>,
) {
    loop {
        tokio::select! {
            m = ws_rx.next() => {
                let text = match m {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None => break,
                    Some(Err(e)) => {
                        tracing::info!("viewer: signaling connection lost: {e}");
                        break;
                    }
                    Some(Ok(_)) => continue,
                };
                let Some(pc) = pc.upgrade() else { break };
                match handle_signal(&pc, &shared, text.as_str()).await {
                    Ok(Some(reply)) => {
                        if let Err(e) = ws_tx.send(Message::Text(reply.into())).await {
                            tracing::info!("viewer: cannot send on the signaling connection: {e}");
                            break;
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!("viewer: signaling message not applied: {e}");
                        shared.state().stats.signaling_errors += 1;
                    }
                }
            }
            c = cand_rx.recv() => {
                let Some(c) = c else { break };
                if ws_tx.send(Message::Text(c.into())).await.is_err() {
                    break;
                }
            }
        }
    }
    shared.state().stats.signaling_closed = true;
}

/// Applies one server message; returns the reply to send, if any.
async fn handle_signal(
    pc: &RTCPeerConnection,
    shared: &Shared,
    text: &str,
) -> Result<Option<String>, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON ({e})"))?;
    {
        let keep = shared.opts.keep_signals;
        push_bounded(&mut shared.state().signals, v.clone(), keep);
    }
    let kind = v["type"].as_str().ok_or("no \"type\"")?;
    match kind {
        "connected" => {
            tracing::info!(peer = %v["peer_id"], codec = %v["codec"], "viewer: signaling session");
            Ok(None)
        }
        "offer" => {
            let sdp = v["sdp"].as_str().ok_or("offer without \"sdp\"")?;
            let offer = RTCSessionDescription::offer(sdp.to_owned()).map_err(|e| e.to_string())?;
            pc.set_remote_description(offer)
                .await
                .map_err(|e| format!("offer: {e}"))?;
            let answer = pc
                .create_answer(None)
                .await
                .map_err(|e| format!("answer: {e}"))?;
            pc.set_local_description(answer.clone())
                .await
                .map_err(|e| format!("answer: {e}"))?;
            Ok(Some(
                json!({"type": "answer", "sdp": answer.sdp}).to_string(),
            ))
        }
        "candidate" => {
            let candidate = v["candidate"]
                .as_str()
                .ok_or("candidate without \"candidate\"")?;
            if !candidate.is_empty() {
                let init = RTCIceCandidateInit {
                    candidate: candidate.to_owned(),
                    sdp_mid: v["mid"].as_str().map(str::to_owned),
                    ..Default::default()
                };
                if let Err(e) = pc.add_ice_candidate(init).await {
                    tracing::debug!("viewer: remote candidate ignored: {e}");
                }
            }
            Ok(None)
        }
        "reconnect" => {
            tracing::info!("viewer: the server asks for a reconnect (codec switch)");
            shared.state().stats.reconnect_requested = true;
            Ok(None)
        }
        "error" => {
            tracing::warn!(message = %v["message"], "viewer: the server reports an error");
            shared.state().stats.server_errors += 1;
            Ok(None)
        }
        other => Err(format!("unknown message type {other:?}")),
    }
}

/// The track's next RTP packet once the viewer is not paused; `None` when the viewer or the track
/// is gone.
async fn next_packet(
    track: &TrackRemote,
    paused: &mut watch::Receiver<bool>,
    kind: &str,
) -> Option<webrtc::rtp::packet::Packet> {
    paused.wait_for(|p| !p).await.ok()?;
    match track.read_rtp().await {
        Ok((p, _)) => Some(p),
        Err(e) => {
            tracing::debug!("viewer: {kind} track ended: {e}");
            None
        }
    }
}

async fn video_loop(track: Arc<TrackRemote>, pc: Weak<RTCPeerConnection>, shared: Weak<Shared>) {
    let Some((mode, pli_every, flood, mut paused)) = shared.upgrade().map(|s| {
        (
            s.opts.video,
            s.opts.keyframe_request_interval,
            s.opts.pli_flood,
            s.paused.subscribe(),
        )
    }) else {
        return;
    };
    if let Some(period) = flood {
        tokio::spawn(pli_flood(track.ssrc(), period, pc.clone(), shared.clone()));
    }
    let mut decoder = match mode {
        VideoDecode::Off => None,
        _ => match openh264::decoder::Decoder::new() {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::error!("viewer: no H.264 decoder ({e}); counting frames only");
                None
            }
        },
    };
    let mut asm = H264Assembler::new();
    // The server sends a keyframe to every new viewer: no PLI until it had time to.
    let mut last_pli = Instant::now();
    let mut units = Vec::new();
    while let Some(pkt) = next_packet(&track, &mut paused, "video").await {
        let Some(sh) = shared.upgrade() else { return };
        let now = Instant::now();
        let out = asm.push(
            pkt.header.sequence_number,
            pkt.header.timestamp,
            pkt.header.marker,
            &pkt.payload,
            &mut units,
        );
        {
            let mut r = sh.state();
            let s = &mut r.stats;
            s.video_packets += 1;
            s.video_bytes += pkt.payload.len() as u64;
            s.packets_lost += u64::from(out.lost);
            s.packets_late += u64::from(out.late);
            s.packets_malformed += u64::from(out.malformed);
        }
        for unit in units.drain(..) {
            {
                let mut r = sh.state();
                let s = &mut r.stats;
                if unit.intact {
                    s.frames += 1;
                    s.last_frame = Some(now);
                    if unit.keyframe {
                        s.keyframes += 1;
                        s.last_keyframe = Some(now);
                    }
                }
                if !unit.decodable {
                    s.frames_skipped += 1;
                }
            }
            if !unit.decodable {
                continue;
            }
            let Some(dec) = decoder.as_mut() else {
                continue;
            };
            match decode_picture(dec, &unit.data, mode == VideoDecode::Rgb, now) {
                Ok(Some(p)) => {
                    let keep = sh.opts.keep_pictures;
                    let mut r = sh.state();
                    r.stats.decoded += 1;
                    push_bounded(&mut r.pictures, p, keep);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!("viewer: H.264 frame not decoded: {e}");
                    sh.state().stats.decode_errors += 1;
                    asm.request_keyframe();
                }
            }
        }
        if asm.needs_keyframe() && now.duration_since(last_pli) >= pli_every {
            last_pli = now;
            if let Some(pc) = pc.upgrade() {
                let pli = PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc: track.ssrc(),
                };
                match pc.write_rtcp(&[Box::new(pli)]).await {
                    Ok(_) => sh.state().stats.keyframe_requests += 1,
                    Err(e) => tracing::debug!("viewer: PLI not sent: {e}"),
                }
            }
        }
    }
}

/// Sends a PLI for `ssrc` every `period` until the viewer or its peer connection is gone.
async fn pli_flood(ssrc: u32, period: Duration, pc: Weak<RTCPeerConnection>, shared: Weak<Shared>) {
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (Some(pc), Some(sh)) = (pc.upgrade(), shared.upgrade()) else {
            return;
        };
        let pli = PictureLossIndication {
            sender_ssrc: 0,
            media_ssrc: ssrc,
        };
        match pc.write_rtcp(&[Box::new(pli)]).await {
            Ok(_) => sh.state().stats.keyframe_requests += 1,
            Err(e) => {
                tracing::debug!("viewer: flood PLI not sent: {e}");
                return;
            }
        }
    }
}

/// Decodes one access unit; `Ok(None)` when the decoder has no picture for it yet.
fn decode_picture(
    dec: &mut openh264::decoder::Decoder,
    au: &[u8],
    rgb: bool,
    now: Instant,
) -> Result<Option<Picture>, String> {
    use openh264::formats::YUVSource;
    let Some(yuv) = dec.decode(au).map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let (w, h) = yuv.dimensions();
    let (ys, us, vs) = yuv.strides();
    let plane = |p: &[u8], stride: usize, w: usize, h: usize| -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(w * h);
        for r in 0..h {
            let row = p
                .get(r * stride..r * stride + w)
                .ok_or_else(|| format!("decoder plane too small for {w}×{h}"))?;
            out.extend_from_slice(row);
        }
        Ok(out)
    };
    let luma = plane(yuv.y(), ys, w, h)?;
    let rgb = if rgb {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let (u, v) = (plane(yuv.u(), us, cw, ch)?, plane(yuv.v(), vs, cw, ch)?);
        Some(yuv420_to_rgb(&luma, &u, &v, w, h))
    } else {
        None
    };
    Ok(Some(Picture {
        width: w,
        height: h,
        luma,
        rgb,
        received: now,
    }))
}

/// BT.601 limited-range 4:2:0 → RGB (the server's converter writes this matrix and range).
fn yuv420_to_rgb(y: &[u8], u: &[u8], v: &[u8], w: usize, h: usize) -> Vec<u8> {
    let cw = w.div_ceil(2);
    let mut out = Vec::with_capacity(w * h * 3);
    for row in 0..h {
        for col in 0..w {
            let c = (row / 2) * cw + col / 2;
            let yy = 1.164_383 * (f32::from(y[row * w + col]) - 16.0);
            let (cb, cr) = (f32::from(u[c]) - 128.0, f32::from(v[c]) - 128.0);
            let px = [
                yy + 1.596_027 * cr,
                yy - 0.391_762 * cb - 0.812_968 * cr,
                yy + 2.017_232 * cb,
            ];
            out.extend(px.map(|x| x.round().clamp(0.0, 255.0) as u8));
        }
    }
    out
}

async fn audio_loop(track: Arc<TrackRemote>, shared: Weak<Shared>) {
    let Some((decode, mut paused)) = shared
        .upgrade()
        .map(|s| (s.opts.audio, s.paused.subscribe()))
    else {
        return;
    };
    let mut decoder = if decode {
        match opus::Decoder::new(48_000, opus::Channels::Stereo) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::error!("viewer: no Opus decoder ({e}); counting packets only");
                None
            }
        }
    } else {
        None
    };
    // 120 ms of stereo, the longest Opus packet.
    let mut pcm = vec![0f32; 5760 * 2];
    while let Some(pkt) = next_packet(&track, &mut paused, "audio").await {
        let Some(sh) = shared.upgrade() else { return };
        let decoded = decoder
            .as_mut()
            .map(|d| d.decode_float(&pkt.payload, &mut pcm, false));
        let keep = sh.opts.keep_audio_frames;
        let mut r = sh.state();
        r.stats.audio_packets += 1;
        r.stats.audio_bytes += pkt.payload.len() as u64;
        match decoded {
            Some(Ok(n)) => {
                let n = n.min(pcm.len() / 2);
                r.audio
                    .extend(pcm[..n * 2].chunks_exact(2).map(|c| [c[0], c[1]]));
                // Trim in batches so keeping a window stays amortised O(1) a sample.
                if r.audio.len() > keep.saturating_add(keep / 2) {
                    let excess = r.audio.len() - keep;
                    r.audio.drain(..excess);
                }
            }
            Some(Err(e)) => {
                tracing::debug!("viewer: Opus packet not decoded: {e}");
                r.stats.audio_decode_errors += 1;
            }
            None => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// RTP → H.264 access units, sans-IO.

/// One access unit (Annex-B NAL units of one picture).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    pub data: Vec<u8>,
    pub rtp_timestamp: u32,
    /// It holds an IDR slice.
    pub keyframe: bool,
    /// All its packets arrived and depacketized.
    pub intact: bool,
    /// Intact, and the decoder has what it references (no loss since the last keyframe).
    pub decodable: bool,
}

/// What one packet did, besides completing access units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushOutcome {
    /// Packets missing before this one.
    pub lost: u16,
    /// The packet was older than one already seen, and ignored.
    pub late: bool,
    /// The payload was not valid H.264 RTP packetization.
    pub malformed: bool,
}

/// Reassembles RTP packets of an H.264 stream (RFC 6184, packetization mode 1) into access units
/// with webrtc's depacketizer, tracking loss by sequence number.
pub struct H264Assembler {
    depack: H264Packet,
    au: Vec<u8>,
    au_ts: Option<u32>,
    au_broken: bool,
    /// Bytes fed to an unfinished FU-A (held inside the depacketizer).
    fu_pending: usize,
    next_seq: Option<u16>,
    need_keyframe: bool,
}

impl Default for H264Assembler {
    fn default() -> Self {
        Self::new()
    }
}

impl H264Assembler {
    /// Largest access unit accepted (a 1080p IDR at a high bitrate is a few hundred KiB).
    pub const MAX_UNIT: usize = 8 << 20;
    /// A packet this far behind the expected sequence number is a restarted stream, not a late one.
    const REORDER_WINDOW: i16 = 512;

    pub fn new() -> Self {
        Self {
            depack: H264Packet::default(),
            au: Vec::new(),
            au_ts: None,
            au_broken: false,
            fu_pending: 0,
            next_seq: None,
            need_keyframe: true,
        }
    }

    /// No keyframe since the start or the last loss: pictures cannot be decoded.
    pub fn needs_keyframe(&self) -> bool {
        self.need_keyframe
    }

    /// The decoder failed: skip to the next keyframe.
    pub fn request_keyframe(&mut self) {
        self.need_keyframe = true;
    }

    /// Feeds one RTP packet; completed access units are appended to `out`.
    pub fn push(
        &mut self,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload: &Bytes,
        out: &mut Vec<AccessUnit>,
    ) -> PushOutcome {
        let mut outcome = PushOutcome::default();
        if let Some(want) = self.next_seq {
            let d = seq.wrapping_sub(want) as i16;
            if (-Self::REORDER_WINDOW..0).contains(&d) {
                outcome.late = true;
                return outcome;
            }
            if d != 0 {
                outcome.lost = if d > 0 { d as u16 } else { 1 };
                self.lose();
            }
        }
        self.next_seq = Some(seq.wrapping_add(1));

        // A new timestamp starts a new picture even if the previous one's marker never came.
        if self.au_ts.is_some_and(|t| t != timestamp) {
            self.finish(out);
        }
        self.au_ts = Some(timestamp);
        // A middle fragment with no start before it (joined mid-NAL), or a start while a fragmented
        // NAL is unfinished: the NAL is incomplete, though no sequence number is missing.
        if payload.len() >= 2 && payload[0] & 0x1F == 28 {
            let start = payload[1] & 0x80 != 0;
            if start == (self.fu_pending > 0) {
                self.lose();
                if !start {
                    if marker {
                        self.finish(out);
                    }
                    return outcome;
                }
            }
        }
        match stap_a_is_well_formed(payload).then(|| self.depack.depacketize(payload)) {
            Some(Ok(nals)) if nals.is_empty() => {
                self.fu_pending += payload.len();
                if self.fu_pending > Self::MAX_UNIT {
                    outcome.malformed = true;
                    self.lose();
                }
            }
            Some(Ok(nals)) => {
                self.fu_pending = 0;
                if self.au.len() + nals.len() > Self::MAX_UNIT {
                    outcome.malformed = true;
                    self.lose();
                } else if !self.au_broken {
                    self.au.extend_from_slice(&nals);
                }
            }
            Some(Err(_)) | None => {
                outcome.malformed = true;
                self.lose();
            }
        }
        if marker {
            self.finish(out);
        }
        outcome
    }

    /// Loss: the picture being assembled is damaged and later ones lack their reference.
    fn lose(&mut self) {
        self.au_broken = true;
        self.need_keyframe = true;
        self.depack = H264Packet::default();
        self.fu_pending = 0;
        self.au.clear();
    }

    fn finish(&mut self, out: &mut Vec<AccessUnit>) {
        let Some(ts) = self.au_ts.take() else { return };
        // An FU-A without its end fragment leaves the picture incomplete.
        let intact = !self.au_broken && self.fu_pending == 0 && !self.au.is_empty();
        if self.fu_pending != 0 {
            self.depack = H264Packet::default();
            self.fu_pending = 0;
        }
        let data = std::mem::take(&mut self.au);
        let keyframe = intact && has_idr(&data);
        if keyframe {
            self.need_keyframe = false;
        } else if !intact {
            self.need_keyframe = true;
        }
        out.push(AccessUnit {
            decodable: intact && !self.need_keyframe,
            data,
            rtp_timestamp: ts,
            keyframe,
            intact,
        });
        self.au_broken = false;
    }
}

/// The depacketizer indexes STAP-A length fields without bounds checks; check them first.
fn stap_a_is_well_formed(p: &[u8]) -> bool {
    if p.first().map(|b| b & 0x1F) != Some(24) {
        return true;
    }
    let mut o = 1;
    while o < p.len() {
        let Some(len) = p
            .get(o..o + 2)
            .map(|l| usize::from(u16::from_be_bytes([l[0], l[1]])))
        else {
            return false;
        };
        o += 2 + len;
        if len == 0 || o > p.len() {
            return false;
        }
    }
    true
}

/// Whether Annex-B data holds an IDR slice (NAL unit type 5).
pub fn has_idr(annex_b: &[u8]) -> bool {
    annex_b
        .windows(4)
        .any(|w| w[0] == 0 && w[1] == 0 && w[2] == 1 && w[3] & 0x1F == 5)
}

// ---------------------------------------------------------------------------------------------------
// Monitoring over HTTP.

/// `GET /api/status` of a server, parsed (a bounded wait, one connection, no client library).
pub async fn fetch_status(
    http_addr: SocketAddr,
    token: Option<&str>,
    timeout: Duration,
) -> Result<Value, ViewerError> {
    let path = match token {
        Some(t) => format!("/api/status?token={}", url_encode(t)),
        None => "/api/status".to_owned(),
    };
    let io = async {
        let mut s = tokio::net::TcpStream::connect(http_addr).await?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: {http_addr}\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut buf = Vec::new();
        // Status answers are a few KiB; refuse to buffer a runaway response.
        (&mut s).take(4 << 20).read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let raw = tokio::time::timeout(timeout, io)
        .await
        .map_err(|_| ViewerError::Timeout {
            what: format!("GET {path} on {http_addr}"),
            after: timeout,
        })?
        .map_err(|source| ViewerError::HttpIo {
            addr: http_addr,
            source,
        })?;
    let http = |message: String| ViewerError::Http {
        addr: http_addr,
        message,
    };
    let (status, body) = parse_http_response(&raw).map_err(http)?;
    if status != 200 {
        return Err(http(format!(
            "status {status}: {}",
            String::from_utf8_lossy(&body)
                .chars()
                .take(200)
                .collect::<String>()
        )));
    }
    serde_json::from_slice(&body).map_err(|e| http(format!("status body is not JSON: {e}")))
}

/// Splits an HTTP/1.x response read to the end of the connection into status and body, undoing
/// chunked transfer coding.
pub fn parse_http_response(raw: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of headers")?;
    let head = std::str::from_utf8(&raw[..head_end]).map_err(|_| "headers are not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    };
    let body = &raw[head_end + 4..];
    if header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        let mut out = Vec::new();
        let mut rest = body;
        loop {
            let line_end = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("truncated chunk size")?;
            let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| "bad chunk size")?;
            let size_text = size_text.split(';').next().unwrap_or("").trim();
            let size = usize::from_str_radix(size_text, 16)
                .map_err(|_| format!("bad chunk size {size_text:?}"))?;
            rest = &rest[line_end + 2..];
            if size == 0 {
                return Ok((status, out));
            }
            let chunk = rest.get(..size).ok_or("truncated chunk")?;
            out.extend_from_slice(chunk);
            rest = rest.get(size + 2..).ok_or("truncated chunk")?;
        }
    }
    match header("content-length") {
        Some(n) => {
            let n: usize = n.parse().map_err(|_| format!("bad Content-Length {n:?}"))?;
            let b = body.get(..n).ok_or("body shorter than Content-Length")?;
            Ok((status, b.to_vec()))
        }
        None => Ok((status, body.to_vec())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nal(kind: u8, len: usize) -> Vec<u8> {
        let mut v = vec![0x60 | kind];
        v.extend((0..len).map(|i| (i % 200 + 1) as u8));
        v
    }

    fn annex_b(nals: &[Vec<u8>]) -> Vec<u8> {
        nals.iter()
            .flat_map(|n| [&[0, 0, 0, 1][..], n].concat())
            .collect()
    }

    /// FU-A fragments of one NAL unit.
    fn fu_a(n: &[u8], size: usize) -> Vec<Bytes> {
        let body = &n[1..];
        let parts: Vec<&[u8]> = body.chunks(size).collect();
        parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let mut h = vec![(n[0] & 0xE0) | 28, n[0] & 0x1F];
                if i == 0 {
                    h[1] |= 0x80;
                }
                if i == parts.len() - 1 {
                    h[1] |= 0x40;
                }
                Bytes::from([h, p.to_vec()].concat())
            })
            .collect()
    }

    fn stap_a(nals: &[Vec<u8>]) -> Bytes {
        let mut v = vec![24];
        for n in nals {
            v.extend_from_slice(&(n.len() as u16).to_be_bytes());
            v.extend_from_slice(n);
        }
        Bytes::from(v)
    }

    /// Packets of one picture: SPS+PPS aggregated, then the slice in fragments.
    fn picture(idr: bool) -> (Vec<Bytes>, Vec<u8>) {
        let (sps, pps, slice) = (nal(7, 10), nal(8, 4), nal(if idr { 5 } else { 1 }, 3000));
        let mut pkts = vec![stap_a(&[sps.clone(), pps.clone()])];
        pkts.extend(fu_a(&slice, 1000));
        (pkts, annex_b(&[sps, pps, slice]))
    }

    fn feed(a: &mut H264Assembler, seq: &mut u16, ts: u32, pkts: &[Bytes]) -> Vec<AccessUnit> {
        let mut out = Vec::new();
        for (i, p) in pkts.iter().enumerate() {
            let o = a.push(*seq, ts, i == pkts.len() - 1, p, &mut out);
            assert_eq!(o, PushOutcome::default());
            *seq = seq.wrapping_add(1);
        }
        out
    }

    #[test]
    fn packets_in_order_make_whole_access_units() {
        let mut a = H264Assembler::new();
        let mut seq = 65_530; // wraps inside the stream
        let (key, key_data) = picture(true);
        let (p, p_data) = picture(false);
        let out = feed(&mut a, &mut seq, 1000, &key);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].data, key_data);
        assert!(out[0].keyframe && out[0].intact && out[0].decodable);
        for ts in [4000, 7000] {
            let out = feed(&mut a, &mut seq, ts, &p);
            assert_eq!(out.len(), 1);
            assert_eq!((&out[0].data, out[0].rtp_timestamp), (&p_data, ts));
            assert!(!out[0].keyframe && out[0].decodable);
        }
        assert!(!a.needs_keyframe());
    }

    #[test]
    fn a_stream_joined_mid_gop_waits_for_its_keyframe() {
        let mut a = H264Assembler::new();
        let mut seq = 7;
        let (p, _) = picture(false);
        let out = feed(&mut a, &mut seq, 1, &p);
        assert!(out[0].intact && !out[0].decodable);
        assert!(a.needs_keyframe());
        let (k, _) = picture(true);
        assert!(feed(&mut a, &mut seq, 2, &k)[0].decodable);
    }

    #[test]
    fn loss_skips_pictures_until_the_next_keyframe() {
        let mut a = H264Assembler::new();
        let mut seq = 100;
        let (k, _) = picture(true);
        let (p, _) = picture(false);
        feed(&mut a, &mut seq, 1, &k);
        // The third fragment of the next picture is lost.
        let mut out = Vec::new();
        for (i, pkt) in p.iter().enumerate() {
            if i == 2 {
                continue;
            }
            let o = a.push(seq + i as u16, 2, i == p.len() - 1, pkt, &mut out);
            assert_eq!(o.lost, u16::from(i == 3));
        }
        seq += p.len() as u16;
        assert_eq!(out.len(), 1);
        assert!(!out[0].intact && !out[0].decodable);
        assert!(a.needs_keyframe());
        // Whole P pictures after the loss are received but not decodable.
        let out = feed(&mut a, &mut seq, 3, &p);
        assert!(out[0].intact && !out[0].decodable);
        let out = feed(&mut a, &mut seq, 4, &k);
        assert!(out[0].keyframe && out[0].decodable);
        assert!(feed(&mut a, &mut seq, 5, &p)[0].decodable);
    }

    #[test]
    fn a_lost_marker_is_healed_by_the_next_timestamp() {
        let mut a = H264Assembler::new();
        let (k, _) = picture(true);
        let mut out = Vec::new();
        // The last packet (with the marker) of picture 1 is lost; picture 2 follows.
        for (i, pkt) in k[..k.len() - 1].iter().enumerate() {
            a.push(i as u16, 1, false, pkt, &mut out);
        }
        assert!(out.is_empty());
        let base = k.len() as u16;
        for (i, pkt) in k.iter().enumerate() {
            let o = a.push(base + i as u16, 2, i == k.len() - 1, pkt, &mut out);
            assert_eq!(o.lost, u16::from(i == 0));
        }
        assert_eq!(out.len(), 2, "the damaged picture, then the whole one");
        assert!(!out[0].intact && out[0].rtp_timestamp == 1);
        assert!(out[1].intact && out[1].keyframe && out[1].decodable);
    }

    #[test]
    fn joining_inside_a_fragmented_nal_is_not_a_picture() {
        let mut a = H264Assembler::new();
        let (k, _) = picture(true);
        let mut out = Vec::new();
        // The stream is joined at the second fragment of the IDR slice: no loss is visible.
        for (i, pkt) in k.iter().enumerate().skip(2) {
            let o = a.push(i as u16, 1, i == k.len() - 1, pkt, &mut out);
            assert_eq!(o, PushOutcome::default());
        }
        assert_eq!(out.len(), 1);
        assert!(!out[0].intact && !out[0].decodable);
        let mut seq = k.len() as u16;
        assert!(feed(&mut a, &mut seq, 2, &k)[0].decodable);
    }

    #[test]
    fn late_duplicate_and_restarted_sequences() {
        let mut a = H264Assembler::new();
        let (k, _) = picture(true);
        let mut seq = 1000;
        feed(&mut a, &mut seq, 1, &k);
        let mut out = Vec::new();
        let late = a.push(seq - 2, 1, true, &k[0], &mut out);
        assert!(late.late && out.is_empty());
        // Far behind: the sender restarted its sequence; counted as loss, then it goes on from there.
        let restart = a.push(seq.wrapping_sub(20_000), 9, false, &k[0], &mut out);
        assert!(!restart.late && restart.lost > 0);
        assert!(a.needs_keyframe());
    }

    #[test]
    fn hostile_payloads_are_rejected_without_panicking() {
        let mut a = H264Assembler::new();
        let mut out = Vec::new();
        let bad: [&[u8]; 7] = [
            &[],
            &[0x7C],
            &[24, 0, 5, 1],       // STAP-A longer than the packet
            &[24, 0, 1, 0x65, 0], // STAP-A, odd trailing byte
            &[24, 0, 0, 0, 0],    // STAP-A with an empty NAL
            &[29, 0x85, 1, 2],    // FU-B: not handled
            &[31, 0, 0, 0, 0],    // reserved type
        ];
        for (i, p) in bad.iter().enumerate() {
            let o = a.push(i as u16, 1, true, &Bytes::copy_from_slice(p), &mut out);
            assert!(o.malformed, "payload {p:?}");
        }
        assert!(out.iter().all(|u| !u.intact && !u.decodable));
        // A fragment start that never ends is bounded.
        let start = Bytes::from([vec![28, 0x85], vec![1; 1400]].concat());
        let middle = Bytes::from([vec![28, 0x05], vec![1; 1400]].concat());
        let mut malformed = false;
        for i in 0..(H264Assembler::MAX_UNIT / 1400 + 2) {
            let p = if i == 0 { &start } else { &middle };
            malformed |= a.push(100 + i as u16, 2, false, p, &mut out).malformed;
        }
        assert!(malformed);
    }

    #[test]
    fn idr_detection() {
        assert!(has_idr(&annex_b(&[nal(7, 3), nal(8, 2), nal(5, 9)])));
        assert!(!has_idr(&annex_b(&[nal(1, 9)])));
        assert!(!has_idr(&[]));
    }

    #[test]
    fn http_responses_plain_and_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 7\r\n\r\n{\"a\":1}";
        assert_eq!(parse_http_response(plain), Ok((200, b"{\"a\":1}".to_vec())));
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;x=y\r\n:1}\r\n0\r\n\r\n";
        assert_eq!(
            parse_http_response(chunked),
            Ok((200, b"{\"a\":1}".to_vec()))
        );
        let closed = b"HTTP/1.0 401 Unauthorized\r\n\r\nmissing token";
        assert_eq!(
            parse_http_response(closed),
            Ok((401, b"missing token".to_vec()))
        );
        for bad in [
            &b"HTTP/1.1 200 OK\r\n"[..],
            b"garbage\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nff\r\nabc",
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
        ] {
            assert!(parse_http_response(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tokens_are_percent_encoded() {
        assert_eq!(url_encode("aZ09-._~"), "aZ09-._~");
        assert_eq!(url_encode("a b&c=d"), "a%20b%26c%3Dd");
    }

    #[test]
    fn yuv_to_rgb_inverts_the_encoders_matrix() {
        // BT.601 limited range of pure red, green, blue, white, black.
        for (rgb, yuv) in [
            ([255, 0, 0], [81, 90, 240]),
            ([0, 255, 0], [145, 54, 34]),
            ([0, 0, 255], [41, 240, 110]),
            ([255, 255, 255], [235, 128, 128]),
            ([0, 0, 0], [16, 128, 128]),
        ] {
            let got = yuv420_to_rgb(&[yuv[0]], &[yuv[1]], &[yuv[2]], 1, 1);
            for (g, w) in got.iter().zip(rgb) {
                assert!(
                    (i32::from(*g) - w).abs() <= 2,
                    "{yuv:?} → {got:?}, want {rgb:?}"
                );
            }
        }
    }
}
