//! WebSocket signaling, sans-IO: the JSON messages of the protocol and the per-peer state machine.
//!
//! The session never touches a socket or a peer connection: it turns [`SignalInput`]s (client messages
//! and what the peer connection reports) into [`SignalAction`]s for the caller to carry out. It enforces
//! the order connect → offer → answer, and queues ICE candidates that arrive before they can be used.

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Client → server messages.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ClientMessage {
    Connect,
    Answer {
        sdp: String,
    },
    Candidate {
        candidate: String,
        #[serde(default, alias = "sdpMid")]
        mid: Option<String>,
    },
}

/// Server → client messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerMessage {
    Connected {
        peer_id: String,
        codec: String,
    },
    Offer {
        sdp: String,
    },
    Candidate {
        candidate: String,
        mid: String,
    },
    /// Tear down and connect again; `reason` is `codec_change`, `codec` the new one (as v4 sends).
    Reconnect {
        reason: String,
        codec: String,
    },
    Error {
        message: String,
    },
}

impl ServerMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialize")
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignalingError {
    #[error("signaling message is not valid JSON of a known type: {0}")]
    BadMessage(String),
    #[error("signaling message too large ({0} bytes)")]
    TooLarge(usize),
}

/// Largest signaling message accepted (an SDP answer is a few KiB).
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;

pub fn parse_client_message(text: &str) -> Result<ClientMessage, SignalingError> {
    if text.len() > MAX_MESSAGE_LEN {
        return Err(SignalingError::TooLarge(text.len()));
    }
    serde_json::from_str(text).map_err(|e| SignalingError::BadMessage(e.to_string()))
}

/// What the session is fed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalInput {
    Client(ClientMessage),
    /// The peer connection produced its offer (local description set).
    OfferReady(String),
    /// A local ICE candidate was gathered.
    LocalCandidate {
        candidate: String,
        mid: String,
    },
    /// The codec was switched: the client must reconnect.
    CodecChanged,
    /// Creating or driving the peer failed.
    PeerFailed(String),
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalAction {
    Send(ServerMessage),
    /// Create the peer connection (tracks, DataChannel) and its offer; report [`SignalInput::OfferReady`].
    CreatePeer {
        peer_id: String,
        codec: String,
    },
    ApplyAnswer(String),
    AddRemoteCandidate {
        candidate: String,
        mid: Option<String>,
    },
    /// Tear down the current peer connection (a new one may follow).
    ClosePeer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Waiting for `connect`.
    Idle,
    /// The peer is being created; the offer is not out yet.
    Offering,
    /// Offer sent, waiting for the answer.
    AwaitingAnswer,
    /// Answer applied; ICE/DTLS proceed on their own.
    Established,
}

/// One WebSocket client's signaling state.
#[derive(Debug)]
pub struct SignalingSession {
    state: SessionState,
    codec: String,
    next_peer: u64,
    session_tag: String,
    local_queue: Vec<(String, String)>,
    remote_queue: Vec<(String, Option<String>)>,
    queue_limit: usize,
}

/// ICE candidates held before they can be used, by default (a browser sends a handful).
pub const DEFAULT_QUEUE_LIMIT: usize = 256;

impl SignalingSession {
    /// `session_tag` makes peer ids unique across sessions (e.g. a random or counter value).
    pub fn new(codec: &str, session_tag: &str) -> Self {
        Self::with_queue_limit(codec, session_tag, DEFAULT_QUEUE_LIMIT)
    }

    /// Like [`new`](Self::new), holding at most `queue_limit` candidates each way before the answer;
    /// more are refused (remote) or dropped (local).
    pub fn with_queue_limit(codec: &str, session_tag: &str, queue_limit: usize) -> Self {
        Self {
            state: SessionState::Idle,
            codec: codec.to_owned(),
            next_peer: 0,
            session_tag: session_tag.to_owned(),
            local_queue: Vec::new(),
            remote_queue: Vec::new(),
            queue_limit,
        }
    }

    pub fn state(&self) -> SessionState {
        self.state
    }

    pub fn set_codec(&mut self, codec: &str) {
        self.codec = codec.to_owned();
    }

    fn error(message: impl Into<String>) -> SignalAction {
        SignalAction::Send(ServerMessage::Error {
            message: message.into(),
        })
    }

    pub fn handle(&mut self, input: SignalInput) -> Vec<SignalAction> {
        use SessionState::*;
        let mut out = Vec::new();
        match input {
            SignalInput::Client(ClientMessage::Connect) => {
                if self.state != Idle {
                    // A second connect restarts negotiation with a fresh peer.
                    out.push(SignalAction::ClosePeer);
                }
                self.local_queue.clear();
                self.remote_queue.clear();
                self.next_peer += 1;
                let peer_id = format!("{}-{}", self.session_tag, self.next_peer);
                out.push(SignalAction::Send(ServerMessage::Connected {
                    peer_id: peer_id.clone(),
                    codec: self.codec.clone(),
                }));
                out.push(SignalAction::CreatePeer {
                    peer_id,
                    codec: self.codec.clone(),
                });
                self.state = Offering;
            }
            SignalInput::OfferReady(sdp) => {
                if self.state != Offering {
                    return out; // a stale offer of a peer already replaced
                }
                out.push(SignalAction::Send(ServerMessage::Offer { sdp }));
                for (candidate, mid) in self.local_queue.drain(..) {
                    out.push(SignalAction::Send(ServerMessage::Candidate {
                        candidate,
                        mid,
                    }));
                }
                self.state = AwaitingAnswer;
            }
            SignalInput::LocalCandidate { candidate, mid } => match self.state {
                Offering if self.local_queue.len() < self.queue_limit => {
                    self.local_queue.push((candidate, mid))
                }
                Offering => tracing::debug!("local ICE candidate dropped: queue full"),
                AwaitingAnswer | Established => {
                    out.push(SignalAction::Send(ServerMessage::Candidate {
                        candidate,
                        mid,
                    }))
                }
                Idle => {}
            },
            SignalInput::Client(ClientMessage::Answer { sdp }) => {
                if self.state != AwaitingAnswer {
                    out.push(Self::error("answer without a pending offer"));
                    return out;
                }
                out.push(SignalAction::ApplyAnswer(sdp));
                for (candidate, mid) in self.remote_queue.drain(..) {
                    out.push(SignalAction::AddRemoteCandidate { candidate, mid });
                }
                self.state = Established;
            }
            SignalInput::Client(ClientMessage::Candidate { candidate, mid }) => match self.state {
                Idle => out.push(Self::error("candidate before connect")),
                Offering | AwaitingAnswer if self.remote_queue.len() < self.queue_limit => {
                    self.remote_queue.push((candidate, mid))
                }
                Offering | AwaitingAnswer => {
                    out.push(Self::error("too many candidates before the answer"))
                }
                Established => out.push(SignalAction::AddRemoteCandidate { candidate, mid }),
            },
            SignalInput::CodecChanged => {
                if self.state != Idle {
                    out.push(SignalAction::Send(ServerMessage::Reconnect {
                        reason: "codec_change".into(),
                        codec: self.codec.clone(),
                    }));
                    out.push(SignalAction::ClosePeer);
                    self.state = Idle;
                }
            }
            SignalInput::PeerFailed(message) => {
                out.push(Self::error(message));
                if self.state != Idle {
                    out.push(SignalAction::ClosePeer);
                }
                self.state = Idle;
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(text: &str) -> SignalInput {
        SignalInput::Client(parse_client_message(text).unwrap())
    }

    #[test]
    fn parses_protocol_messages() {
        assert_eq!(
            parse_client_message(r#"{"type":"connect"}"#),
            Ok(ClientMessage::Connect)
        );
        assert_eq!(
            parse_client_message(r#"{"type":"answer","sdp":"v=0"}"#),
            Ok(ClientMessage::Answer { sdp: "v=0".into() })
        );
        assert_eq!(
            parse_client_message(r#"{"type":"candidate","candidate":"c","sdpMid":"0"}"#),
            Ok(ClientMessage::Candidate {
                candidate: "c".into(),
                mid: Some("0".into())
            })
        );
        assert!(matches!(
            parse_client_message("{"),
            Err(SignalingError::BadMessage(_))
        ));
        assert!(matches!(
            parse_client_message(r#"{"type":"bogus"}"#),
            Err(SignalingError::BadMessage(_))
        ));
        let big = format!(
            r#"{{"type":"answer","sdp":"{}"}}"#,
            "x".repeat(MAX_MESSAGE_LEN)
        );
        assert!(matches!(
            parse_client_message(&big),
            Err(SignalingError::TooLarge(_))
        ));
    }

    #[test]
    fn server_messages_serialize_as_the_protocol_says() {
        let v: serde_json::Value = serde_json::from_str(
            &ServerMessage::Connected {
                peer_id: "p".into(),
                codec: "h264".into(),
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"connected","peer_id":"p","codec":"h264"})
        );
        let v: serde_json::Value = serde_json::from_str(
            &ServerMessage::Candidate {
                candidate: "c".into(),
                mid: "0".into(),
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"candidate","candidate":"c","mid":"0"})
        );
        let v: serde_json::Value = serde_json::from_str(
            &ServerMessage::Reconnect {
                reason: "codec_change".into(),
                codec: "png".into(),
            }
            .to_json(),
        )
        .unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type":"reconnect","reason":"codec_change","codec":"png"})
        );
    }

    #[test]
    fn full_negotiation_with_early_candidates_queued() {
        let mut s = SignalingSession::new("h264", "s1");
        let a = s.handle(client(r#"{"type":"connect"}"#));
        assert_eq!(
            a,
            vec![
                SignalAction::Send(ServerMessage::Connected {
                    peer_id: "s1-1".into(),
                    codec: "h264".into()
                }),
                SignalAction::CreatePeer {
                    peer_id: "s1-1".into(),
                    codec: "h264".into()
                },
            ]
        );
        // A local candidate gathered before the offer went out waits for it.
        assert!(s
            .handle(SignalInput::LocalCandidate {
                candidate: "L1".into(),
                mid: "0".into()
            })
            .is_empty());
        // A remote candidate before the answer waits too.
        assert!(s
            .handle(client(r#"{"type":"candidate","candidate":"R1","mid":"0"}"#))
            .is_empty());
        let a = s.handle(SignalInput::OfferReady("OFFER".into()));
        assert_eq!(
            a,
            vec![
                SignalAction::Send(ServerMessage::Offer {
                    sdp: "OFFER".into()
                }),
                SignalAction::Send(ServerMessage::Candidate {
                    candidate: "L1".into(),
                    mid: "0".into()
                }),
            ]
        );
        assert_eq!(s.state(), SessionState::AwaitingAnswer);
        let a = s.handle(client(r#"{"type":"answer","sdp":"ANSWER"}"#));
        assert_eq!(
            a,
            vec![
                SignalAction::ApplyAnswer("ANSWER".into()),
                SignalAction::AddRemoteCandidate {
                    candidate: "R1".into(),
                    mid: Some("0".into())
                },
            ]
        );
        assert_eq!(s.state(), SessionState::Established);
        let a = s.handle(client(r#"{"type":"candidate","candidate":"R2","mid":"1"}"#));
        assert_eq!(
            a,
            vec![SignalAction::AddRemoteCandidate {
                candidate: "R2".into(),
                mid: Some("1".into())
            }]
        );
    }

    #[test]
    fn out_of_order_messages_get_errors_not_panics() {
        let mut s = SignalingSession::new("png", "x");
        assert!(matches!(
            s.handle(client(r#"{"type":"answer","sdp":"A"}"#))[..],
            [SignalAction::Send(ServerMessage::Error { .. })]
        ));
        assert!(matches!(
            s.handle(client(r#"{"type":"candidate","candidate":"c"}"#))[..],
            [SignalAction::Send(ServerMessage::Error { .. })]
        ));
        // An offer nobody asked for is ignored.
        assert!(s.handle(SignalInput::OfferReady("O".into())).is_empty());
    }

    #[test]
    fn candidates_before_the_answer_are_bounded() {
        let mut s = SignalingSession::with_queue_limit("h264", "q", 3);
        s.handle(client(r#"{"type":"connect"}"#));
        for i in 0..10 {
            s.handle(SignalInput::LocalCandidate {
                candidate: format!("L{i}"),
                mid: "0".into(),
            });
        }
        let refused = (0..10)
            .map(|i| {
                s.handle(client(&format!(
                    r#"{{"type":"candidate","candidate":"R{i}","mid":"0"}}"#
                )))
            })
            .filter(|a| matches!(a[..], [SignalAction::Send(ServerMessage::Error { .. })]))
            .count();
        assert_eq!(refused, 7);
        let a = s.handle(SignalInput::OfferReady("O".into()));
        assert_eq!(
            a.len(),
            1 + 3,
            "the offer and the first three local candidates"
        );
        let a = s.handle(client(r#"{"type":"answer","sdp":"A"}"#));
        let remote: Vec<_> = a
            .iter()
            .filter_map(|x| match x {
                SignalAction::AddRemoteCandidate { candidate, .. } => Some(candidate.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(remote, ["R0", "R1", "R2"]);
    }

    #[test]
    fn codec_change_and_reconnect() {
        let mut s = SignalingSession::new("h264", "x");
        s.handle(client(r#"{"type":"connect"}"#));
        s.handle(SignalInput::OfferReady("O".into()));
        s.set_codec("png");
        let a = s.handle(SignalInput::CodecChanged);
        assert_eq!(
            a,
            vec![
                SignalAction::Send(ServerMessage::Reconnect {
                    reason: "codec_change".into(),
                    codec: "png".into()
                }),
                SignalAction::ClosePeer
            ]
        );
        assert_eq!(s.state(), SessionState::Idle);
        let a = s.handle(client(r#"{"type":"connect"}"#));
        assert!(a.contains(&SignalAction::CreatePeer {
            peer_id: "x-2".into(),
            codec: "png".into()
        }));
        // A second connect while negotiating replaces the peer.
        let a = s.handle(client(r#"{"type":"connect"}"#));
        assert_eq!(a[0], SignalAction::ClosePeer);
    }
}
