//! WHEP sessions on the running server: each is an answering peer connection registered as a viewer,
//! with a task that turns its events into hub actions until the player leaves, the connection fails,
//! DELETE arrives, or the codec changes from the one its track sends.

use super::hub::{Hub, ViewerSlot};
use super::Codec;
use crate::datachannel;
use crate::input::InputTranslator;
use crate::peer::{self, PeerEvent, PeerOptions};
use crate::whep::{Candidate, Offer, OpenError, WhepBackend, WhepSession};
use futures_util::future::BoxFuture;
use macemu_ipc::realtime_us;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::{mpsc, Notify};
use webrtc::peer_connection::RTCPeerConnection;

pub(super) struct WhepHost {
    pub hub: Arc<Hub>,
    pub api: Arc<webrtc::api::API>,
    pub opts: PeerOptions,
    /// Bound of each session's peer-event queue (`--queue-len`).
    pub queue_len: usize,
}

struct Session {
    answer: String,
    pc: Arc<RTCPeerConnection>,
    ended: Arc<AtomicBool>,
    stop: Arc<Notify>,
}

static NEXT: AtomicU64 = AtomicU64::new(1);

impl WhepBackend for WhepHost {
    fn open(&self, offer: Offer) -> BoxFuture<'static, Result<Arc<dyn WhepSession>, OpenError>> {
        let (hub, api, opts) = (self.hub.clone(), self.api.clone(), self.opts.clone());
        let queue_len = self.queue_len.max(1);
        Box::pin(async move {
            let codec = hub.codec();
            // PNG, the one codec without an RTP track, goes over our DataChannel protocol.
            let Some(video) = codec.rtp() else {
                return Err(OpenError::Unavailable(
                    "the server streams PNG now, which WHEP players cannot show; switch to h264"
                        .into(),
                ));
            };
            if !offer.video {
                tracing::info!("WHEP offer without {} video: audio only", video.display);
            }
            let (tx, rx) = mpsc::channel(queue_len);
            let (h, answer) = peer::answer_peer(&api, &opts, video, offer.sdp, tx)
                .await
                .map_err(|e| OpenError::Rejected(e.to_string()))?;
            let id = format!("whep{}", NEXT.fetch_add(1, Relaxed));
            Hub::lock(&hub.viewers).insert(id.clone(), ViewerSlot::new(h.video, h.audio, false));
            let s = Arc::new(Session {
                answer,
                pc: h.pc,
                ended: Arc::new(AtomicBool::new(false)),
                stop: Arc::new(Notify::new()),
            });
            tokio::spawn(run(
                hub,
                codec,
                id,
                s.pc.clone(),
                rx,
                s.ended.clone(),
                s.stop.clone(),
            ));
            Ok(s as Arc<dyn WhepSession>)
        })
    }
}

/// One session's events until it ends; then the viewer is removed and its held keys released.
async fn run(
    hub: Arc<Hub>,
    codec: Codec,
    id: String,
    pc: Arc<RTCPeerConnection>,
    mut events: mpsc::Receiver<PeerEvent>,
    ended: Arc<AtomicBool>,
    stop: Arc<Notify>,
) {
    let mut input = InputTranslator::new(*Hub::lock(&hub.mouse_mode));
    let mut codec_rx = hub.codec_tx.subscribe();
    loop {
        tokio::select! {
            ev = events.recv() => match ev {
                Some(PeerEvent::Connected) => {
                    if let Some(v) = Hub::lock(&hub.viewers).get_mut(&id) {
                        v.connected = true;
                    }
                    tracing::info!(peer = %id, "WHEP viewer connected");
                    hub.request_keyframe();
                }
                Some(PeerEvent::KeyframeRequest) => hub.request_keyframe(),
                Some(PeerEvent::Input(b)) => match datachannel::parse_client_message(&b) {
                    Ok(ev) => {
                        if let Some(m) = input.translate(ev, realtime_us()) {
                            hub.send_input(&m);
                        }
                    }
                    Err(e) => tracing::debug!("WHEP input message ignored: {e}"),
                },
                Some(PeerEvent::Text(_)) | Some(PeerEvent::LocalCandidate { .. }) => {}
                Some(PeerEvent::Closed) | None => break,
            },
            c = codec_rx.recv() => {
                // The track's codec was fixed when the offer was answered.
                if matches!(c, Ok(c) if c != codec) {
                    tracing::info!(peer = %id, "codec changed away from {}: WHEP session ends", codec.name());
                    break;
                }
            }
            _ = stop.notified() => break,
        }
    }
    ended.store(true, Relaxed);
    for m in input.release_all() {
        hub.send_input(&m);
    }
    Hub::lock(&hub.viewers).remove(&id);
    let _ = pc.close().await;
    tracing::info!(peer = %id, "WHEP viewer gone");
}

impl WhepSession for Session {
    fn answer(&self) -> String {
        self.answer.clone()
    }

    fn add_candidates(&self, c: Vec<Candidate>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            for c in c {
                peer::add_candidate(&self.pc, c.candidate, c.mid)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            // notify_one keeps the permit if the task is not waiting at this instant.
            self.stop.notify_one();
            self.ended.store(true, Relaxed);
        })
    }

    fn ended(&self) -> bool {
        self.ended.load(Relaxed)
    }
}
