//! Signaling: one WebSocket client, one signaling session, at most one peer at a time.

use super::hub::{Hub, ViewerSlot};
use crate::codec::Codec;
use crate::datachannel;
use crate::http;
use crate::input::InputTranslator;
use crate::limits::Limits;
use crate::origin::{OriginPolicy, RequestHeaders};
use crate::peer::{self, PeerEvent, PeerOptions};
use crate::signaling::{self, SignalAction, SignalInput, SignalingSession};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use macemu_ipc::realtime_us;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

pub(super) struct SigState {
    pub(super) hub: Arc<Hub>,
    pub(super) api: Arc<webrtc::api::API>,
    pub(super) opts: PeerOptions,
    pub(super) token: Option<String>,
    pub(super) policy: Arc<OriginPolicy>,
    pub(super) limits: Limits,
    /// One permit per open signaling session.
    pub(super) sessions: Arc<Semaphore>,
    /// One permit per peer connection (viewer).
    pub(super) peers: Arc<Semaphore>,
}

pub(super) async fn ws_handler(
    State(st): State<Arc<SigState>>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // Browsers let any page open a WebSocket to any host: the Origin and Host are what tell ours apart.
    let get = |n: axum::http::HeaderName| headers.get(n).and_then(|v| v.to_str().ok());
    let seen = RequestHeaders {
        host: get(axum::http::header::HOST),
        origin: get(axum::http::header::ORIGIN),
        ..Default::default()
    };
    if let Err(r) = st.policy.check_websocket(&seen) {
        tracing::debug!("signaling upgrade refused: {r}");
        let code = StatusCode::from_u16(r.status()).unwrap_or(StatusCode::FORBIDDEN);
        return (code, r.to_string()).into_response();
    }
    if !http::authorized(st.token.as_deref(), q.as_deref(), &headers) {
        return (StatusCode::UNAUTHORIZED, "missing or wrong token").into_response();
    }
    let Ok(permit) = st.sessions.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "too many signaling sessions (at most {})",
                st.limits.max_sessions
            ),
        )
            .into_response();
    };
    // Signaling messages are a few KiB; the frame limit matters as much as the message limit.
    let max = st.limits.ws_max_message.min(signaling::MAX_MESSAGE_LEN);
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| async move {
            signaling_session(st, socket).await;
            drop(permit);
        })
}

static SESSION_COUNTER: AtomicU64 = AtomicU64::new(0);

struct ActivePeer {
    id: String,
    pc: Arc<webrtc::peer_connection::RTCPeerConnection>,
    events: mpsc::Receiver<PeerEvent>,
    input: InputTranslator,
    _slot: OwnedSemaphorePermit,
}

async fn close_peer(hub: &Hub, p: ActivePeer) {
    let ActivePeer {
        id,
        pc,
        events,
        mut input,
        _slot,
    } = p;
    // Callbacks waiting for room in the event queue give up once it is gone, so close cannot wait on them.
    drop(events);
    for m in input.release_all() {
        hub.queue_input(m);
    }
    Hub::lock(&hub.viewers).remove(&id);
    let _ = pc.close().await;
}

async fn signaling_session(st: Arc<SigState>, mut ws: WebSocket) {
    let hub = st.hub.clone();
    let tag = format!("p{}", SESSION_COUNTER.fetch_add(1, Relaxed) + 1);
    let mut session =
        SignalingSession::with_queue_limit(hub.codec().name(), &tag, st.limits.queue_len);
    let mut codec_rx = hub.codec_tx.subscribe();
    let mut peer: Option<ActivePeer> = None;
    // Until an answer is applied the session holds resources for nothing: it gets this long.
    let timeout = st.limits.negotiation_timeout;
    let mut deadline = Some(tokio::time::Instant::now() + timeout);
    loop {
        let input = tokio::select! {
            _ = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            } => {
                tracing::debug!(session = %tag, "negotiation timed out; closing the session");
                let msg = signaling::ServerMessage::Error {
                    message: format!("negotiation timed out after {} s", timeout.as_secs_f64()),
                };
                let _ = ws.send(Message::Text(msg.to_json().into())).await;
                break;
            },
            m = ws.recv() => match m {
                Some(Ok(Message::Text(t))) => match signaling::parse_client_message(t.as_str()) {
                    Ok(msg) => SignalInput::Client(msg),
                    Err(e) => {
                        let _ = ws.send(Message::Text(signaling::ServerMessage::Error { message: e.to_string() }.to_json().into())).await;
                        continue;
                    }
                },
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => continue,
            },
            ev = async {
                match peer.as_mut() {
                    Some(p) => p.events.recv().await,
                    None => std::future::pending().await,
                }
            } => match ev {
                Some(PeerEvent::LocalCandidate { candidate, mid }) => SignalInput::LocalCandidate { candidate, mid },
                Some(PeerEvent::Input(b)) => {
                    if let Some(p) = peer.as_mut() {
                        match datachannel::parse_client_message(&b) {
                            Ok(ev) => {
                                if let Some(m) = p.input.translate(ev, realtime_us()) {
                                    hub.queue_input(m);
                                }
                            }
                            Err(e) => tracing::debug!("input message ignored: {e}"),
                        }
                    }
                    continue;
                }
                Some(PeerEvent::Text(t)) => {
                    tracing::debug!(text = %t.chars().take(200).collect::<String>(), "DataChannel text message ignored");
                    continue;
                }
                Some(PeerEvent::KeyframeRequest) => {
                    hub.request_keyframe();
                    continue;
                }
                Some(PeerEvent::Connected) => {
                    if let Some(p) = peer.as_ref() {
                        if let Some(v) = Hub::lock(&hub.viewers).get_mut(&p.id) {
                            v.connected = true;
                        }
                        tracing::info!(peer = %p.id, "viewer connected");
                    }
                    hub.request_keyframe();
                    continue;
                }
                Some(PeerEvent::Closed) | None => {
                    if let Some(p) = peer.take() {
                        tracing::info!(peer = %p.id, "viewer's peer connection closed");
                        close_peer(&hub, p).await;
                    }
                    continue;
                }
            },
            c = codec_rx.recv() => match c {
                Ok(c) => {
                    session.set_codec(c.name());
                    SignalInput::CodecChanged
                }
                Err(_) => continue,
            },
        };
        let mut queue = vec![input];
        while let Some(input) = queue.pop() {
            for action in session.handle(input) {
                match action {
                    SignalAction::Send(m) => {
                        if ws.send(Message::Text(m.to_json().into())).await.is_err() {
                            break;
                        }
                    }
                    SignalAction::CreatePeer { peer_id, codec } => {
                        if let Some(p) = peer.take() {
                            close_peer(&hub, p).await;
                        }
                        // The session names the hub's codec, so it always parses.
                        let codec: Codec = codec.parse().unwrap_or(Codec::H264);
                        let png = codec.rtp().is_none();
                        let Ok(slot) = st.peers.clone().try_acquire_owned() else {
                            queue.push(SignalInput::PeerFailed(format!(
                                "the server has its maximum of {} viewers",
                                st.limits.max_viewers
                            )));
                            continue;
                        };
                        let (tx, rx) = mpsc::channel(st.limits.queue_len.max(1));
                        let t0 = std::time::Instant::now();
                        match peer::create_peer(&st.api, &st.opts, codec.rtp(), tx).await {
                            Ok((h, sdp)) => {
                                tracing::debug!(peer = %peer_id, took = ?t0.elapsed(), "offer made");
                                Hub::lock(&hub.viewers).insert(
                                    peer_id.clone(),
                                    ViewerSlot::new(h.video, h.audio, png),
                                );
                                peer = Some(ActivePeer {
                                    id: peer_id,
                                    pc: h.pc,
                                    events: rx,
                                    input: InputTranslator::new(*Hub::lock(&hub.mouse_mode)),
                                    _slot: slot,
                                });
                                queue.push(SignalInput::OfferReady(sdp));
                            }
                            Err(e) => queue.push(SignalInput::PeerFailed(e.to_string())),
                        }
                    }
                    SignalAction::ApplyAnswer(sdp) => {
                        if let Some(p) = peer.as_ref() {
                            if let Err(e) = peer::apply_answer(&p.pc, sdp).await {
                                queue.push(SignalInput::PeerFailed(format!("bad answer: {e}")));
                            } else {
                                tracing::debug!(peer = %p.id, "answer applied");
                            }
                        }
                    }
                    SignalAction::AddRemoteCandidate { candidate, mid } => {
                        if let Some(p) = peer.as_ref() {
                            if let Err(e) = peer::add_candidate(&p.pc, candidate, mid).await {
                                tracing::debug!("remote candidate ignored: {e}");
                            }
                        }
                    }
                    SignalAction::ClosePeer => {
                        if let Some(p) = peer.take() {
                            close_peer(&hub, p).await;
                        }
                    }
                }
            }
        }
        deadline = match (session.state(), deadline) {
            (signaling::SessionState::Established, _) => None,
            (_, Some(d)) => Some(d),
            (_, None) => Some(tokio::time::Instant::now() + timeout),
        };
    }
    if let Some(p) = peer.take() {
        close_peer(&hub, p).await;
    }
}
