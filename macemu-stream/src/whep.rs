//! WHEP: standard players watch without our signaling. WHEP (the egress counterpart of WHIP, RFC 9725,
//! with the same HTTP mechanics) is: `POST /whep` with the player's SDP offer → `201 Created`, the answer
//! and the session's `Location`; `PATCH` on that resource with trickle candidates
//! (`application/trickle-ice-sdpfrag`, RFC 8840); `DELETE` ends the session.
//!
//! The offer and fragment parsing here is sans-IO and treats its input as hostile text (bounded sizes,
//! no panics). The WebRTC side is reached through [`WhepBackend`], so the routes are tested with a fake.

use crate::codec::{RtpCodec, RTP_VIDEO};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Offers and fragments above this are refused (413); a browser's offer is a few kB.
pub const MAX_BODY: usize = 64 * 1024;
/// Longest SDP line accepted.
const MAX_LINE: usize = 4096;
/// Most candidates one fragment may carry.
const MAX_CANDIDATES: usize = 64;
/// Most WHEP sessions at once; each is a peer connection fed by the encoder.
pub const MAX_SESSIONS: usize = 16;

pub const SDP: &str = "application/sdp";
pub const SDPFRAG: &str = "application/trickle-ice-sdpfrag";

/// Why an offer, a fragment or a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhepError {
    #[error("malformed SDP: {0}")]
    Malformed(String),
    #[error("{0}")]
    Unacceptable(String),
}

/// What the server needs to know about a player's offer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub sdp: String,
    /// A video section offering a codec we send ([`crate::codec::RTP_VIDEO`]) in a form we can send.
    pub video: bool,
    /// An audio section offering Opus that we may send on.
    pub audio: bool,
    /// The player opens a DataChannel (an `m=application` section).
    pub data_channel: bool,
    /// The player's ICE credentials (session level, or the first media section's).
    pub ice_ufrag: String,
    pub ice_pwd: String,
}

#[derive(Default)]
struct Section {
    kind: String,
    direction: Option<String>,
    codecs: Vec<String>,
    ufrag: Option<String>,
    pwd: Option<String>,
    port_zero: bool,
    /// Payload types with their encoding names (upper case), and fmtp parameters.
    rtpmap: Vec<(String, String)>,
    fmtp: Vec<(String, String)>,
}

impl Section {
    /// Whether it offers `c` at all, and whether in a form we can send.
    fn offers(&self, c: &RtpCodec) -> (bool, bool) {
        let pts = self
            .rtpmap
            .iter()
            .filter(|(_, name)| name.eq_ignore_ascii_case(c.encoding()));
        let mut any = false;
        for (pt, _) in pts {
            any = true;
            let mut fmtp = self.fmtp.iter().filter(|(p, _)| p == pt).peekable();
            let ok = if fmtp.peek().is_none() {
                (c.accepts_fmtp)(None)
            } else {
                fmtp.any(|(_, params)| (c.accepts_fmtp)(Some(params)))
            };
            if ok {
                return (true, true);
            }
        }
        (any, false)
    }
}

/// SDP lines (CRLF or LF) as `(type, value)`; every line must be `x=…` and of bounded length.
fn sdp_lines(text: &str) -> Result<Vec<(u8, &str)>, WhepError> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        if line.len() > MAX_LINE {
            return Err(WhepError::Malformed(format!("line {} is too long", n + 1)));
        }
        let b = line.as_bytes();
        if b.len() < 2 || b[1] != b'=' || !b[0].is_ascii_lowercase() {
            return Err(WhepError::Malformed(format!(
                "line {} is not of the form x=…",
                n + 1
            )));
        }
        if line.chars().any(|c| c.is_control() && c != '\t') {
            return Err(WhepError::Malformed(format!(
                "line {} has control characters",
                n + 1
            )));
        }
        out.push((b[0], &line[2..]));
    }
    Ok(out)
}

/// An `ice-ufrag`/`ice-pwd` value: ICE characters only (RFC 8839: ALPHA / DIGIT / "+" / "/").
fn ice_chars(v: &str) -> Option<String> {
    let ok = !v.is_empty()
        && v.len() <= 256
        && v.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'+' || c == b'/');
    ok.then(|| v.to_owned())
}

/// Parses and checks a WHEP offer.
pub fn parse_offer(text: &str) -> Result<Offer, WhepError> {
    let lines = sdp_lines(text)?;
    if lines.first() != Some(&(b'v', "0")) {
        return Err(WhepError::Malformed("it does not start with v=0".into()));
    }
    let mut session = Section::default();
    let mut sections: Vec<Section> = Vec::new();
    for (t, v) in lines {
        if t == b'm' {
            let mut f = v.split(' ');
            let kind = f.next().unwrap_or("").to_owned();
            let port_zero = f.next() == Some("0");
            sections.push(Section {
                kind,
                port_zero,
                ..Default::default()
            });
            continue;
        }
        if t != b'a' {
            continue;
        }
        let cur = sections.last_mut().unwrap_or(&mut session);
        let (name, value) = v.split_once(':').unwrap_or((v, ""));
        match name {
            "sendrecv" | "sendonly" | "recvonly" | "inactive" => {
                cur.direction = Some(name.to_owned())
            }
            "rtpmap" => {
                // a=rtpmap:<pt> <encoding>/<clock>[/<channels>]
                let mut f = value.split(' ');
                let pt = f.next().unwrap_or("");
                if let Some(name) = f.next().and_then(|enc| enc.split('/').next()) {
                    let name = name.to_ascii_uppercase();
                    cur.rtpmap.push((pt.to_owned(), name.clone()));
                    cur.codecs.push(name);
                }
            }
            "fmtp" => {
                // a=fmtp:<pt> k=v;k=v (the codec judges them)
                if let Some((pt, params)) = value.split_once(' ') {
                    cur.fmtp.push((pt.to_owned(), params.to_owned()));
                }
            }
            "ice-ufrag" => cur.ufrag = ice_chars(value),
            "ice-pwd" => cur.pwd = ice_chars(value),
            _ => {}
        }
    }
    if sections.is_empty() {
        return Err(WhepError::Malformed("no media sections".into()));
    }
    // A section we may send on: not rejected, and the player receives on it.
    let receives = |s: &Section| {
        !s.port_zero
            && matches!(
                s.direction.as_deref().or(session.direction.as_deref()),
                None | Some("sendrecv") | Some("recvonly")
            )
    };
    let offered: Vec<(&RtpCodec, bool, bool)> = RTP_VIDEO
        .iter()
        .map(|c| {
            let video = sections.iter().filter(|s| s.kind == "video" && receives(s));
            video.fold((*c, false, false), |(c, any, ok), s| {
                let (a, o) = s.offers(c);
                (c, any || a, ok || o)
            })
        })
        .collect();
    let video = offered.iter().any(|(_, _, ok)| *ok);
    if let Some((c, _, _)) = offered.iter().find(|(_, any, _)| *any).filter(|_| !video) {
        return Err(WhepError::Unacceptable(c.refusal.into()));
    }
    let audio = sections
        .iter()
        .any(|s| s.kind == "audio" && receives(s) && s.codecs.iter().any(|c| c == "OPUS"));
    let data_channel = sections
        .iter()
        .any(|s| s.kind == "application" && !s.port_zero);
    if !video && !audio {
        let names: Vec<&str> = RTP_VIDEO.iter().map(|c| c.display).collect();
        return Err(WhepError::Unacceptable(format!(
            "the offer receives neither {} video nor Opus audio",
            names.join(" or ")
        )));
    }
    let first = &sections[0];
    let ice_ufrag = first.ufrag.clone().or_else(|| session.ufrag.clone());
    let ice_pwd = first.pwd.clone().or_else(|| session.pwd.clone());
    let (Some(ice_ufrag), Some(ice_pwd)) = (ice_ufrag, ice_pwd) else {
        return Err(WhepError::Malformed("no valid ice-ufrag/ice-pwd".into()));
    };
    Ok(Offer {
        sdp: text.to_owned(),
        video,
        audio,
        data_channel,
        ice_ufrag,
        ice_pwd,
    })
}

/// One remote candidate of a trickle fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The `candidate:…` attribute value, without `a=`.
    pub candidate: String,
    pub mid: Option<String>,
    /// Index of the fragment's media section it belongs to.
    pub m_line_index: u16,
}

/// A trickle-ICE SDP fragment (RFC 8840).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SdpFrag {
    pub ice_ufrag: Option<String>,
    pub ice_pwd: Option<String>,
    pub candidates: Vec<Candidate>,
    pub end_of_candidates: bool,
}

/// Checks the shape of a candidate attribute (RFC 8839): foundation, component, transport, priority,
/// address, port, `typ`, type.
fn candidate_ok(v: &str) -> bool {
    let f: Vec<&str> = v.split(' ').collect();
    f.len() >= 8
        && !f[0].is_empty()
        && f[1].parse::<u16>().is_ok()
        && !f[2].is_empty()
        && f[3].parse::<u32>().is_ok()
        && !f[4].is_empty()
        && f[5].parse::<u16>().is_ok()
        && f[6] == "typ"
        && matches!(f[7], "host" | "srflx" | "prflx" | "relay")
}

/// Parses a trickle-ICE fragment.
pub fn parse_sdpfrag(text: &str) -> Result<SdpFrag, WhepError> {
    let mut frag = SdpFrag::default();
    let mut section: Option<(u16, Option<String>)> = None;
    let mut sections = 0u16;
    let mut pending: Vec<(u16, String)> = Vec::new();
    let mut mids: HashMap<u16, String> = HashMap::new();
    for (t, v) in sdp_lines(text)? {
        match t {
            b'm' => {
                section = Some((sections, None));
                sections = sections.saturating_add(1);
            }
            b'a' => {
                let (name, value) = v.split_once(':').unwrap_or((v, ""));
                match name {
                    "ice-ufrag" => {
                        frag.ice_ufrag = Some(
                            ice_chars(value)
                                .ok_or_else(|| WhepError::Malformed("bad ice-ufrag".into()))?,
                        )
                    }
                    "ice-pwd" => {
                        frag.ice_pwd = Some(
                            ice_chars(value)
                                .ok_or_else(|| WhepError::Malformed("bad ice-pwd".into()))?,
                        )
                    }
                    "mid" => {
                        if let Some((i, mid)) = section.as_mut() {
                            if value.is_empty() || value.len() > 32 {
                                return Err(WhepError::Malformed("bad mid".into()));
                            }
                            *mid = Some(value.to_owned());
                            mids.insert(*i, value.to_owned());
                        }
                    }
                    "candidate" => {
                        let Some((i, _)) = section else {
                            return Err(WhepError::Malformed(
                                "a candidate outside a media section".into(),
                            ));
                        };
                        if !candidate_ok(value) {
                            return Err(WhepError::Malformed(format!(
                                "bad candidate {:?}",
                                value.chars().take(80).collect::<String>()
                            )));
                        }
                        if pending.len() == MAX_CANDIDATES {
                            return Err(WhepError::Malformed("too many candidates".into()));
                        }
                        pending.push((i, format!("candidate:{value}")));
                    }
                    "end-of-candidates" => frag.end_of_candidates = true,
                    _ => {}
                }
            }
            _ => {}
        }
    }
    frag.candidates = pending
        .into_iter()
        .map(|(i, candidate)| Candidate {
            candidate,
            mid: mids.get(&i).cloned(),
            m_line_index: i,
        })
        .collect();
    Ok(frag)
}

/// What a PATCH asks for, given the session's current remote ICE credentials (RFC 9725 §4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchAction {
    /// Add these candidates (may be none: an end-of-candidates alone).
    Trickle(Vec<Candidate>),
    /// New credentials or `If-Match: *`: an ICE restart, which this server does not do (422).
    Restart,
}

/// Decides what a PATCH fragment means for a session whose remote ufrag is `ufrag`.
pub fn patch_action(frag: SdpFrag, ufrag: &str, if_match: Option<&str>) -> PatchAction {
    let restart = if_match.map(str::trim) == Some("*")
        || frag.ice_ufrag.as_deref().is_some_and(|u| u != ufrag);
    if restart {
        PatchAction::Restart
    } else {
        PatchAction::Trickle(frag.candidates)
    }
}

/// A fresh, unguessable session id (128 random bits, hex).
pub fn new_session_id() -> String {
    let v: u128 = rand::random();
    format!("{v:032x}")
}

// ---------------------------------------------------------------------------------------------------
// HTTP side.

/// One live WHEP session as the routes see it.
pub trait WhepSession: Send + Sync {
    /// The answer SDP (with the server's candidates).
    fn answer(&self) -> String;
    /// Adds remote candidates; errors are user-facing messages.
    fn add_candidates(&self, c: Vec<Candidate>) -> BoxFuture<'_, Result<(), String>>;
    /// Ends the session (idempotent).
    fn close(&self) -> BoxFuture<'_, ()>;
    /// The session ended by itself (the peer connection failed or closed).
    fn ended(&self) -> bool;
}

/// Why a session could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// Not now (e.g. the server streams PNG, which WHEP players cannot show): 503.
    Unavailable(String),
    /// The offer could not be answered: 422.
    Rejected(String),
}

/// Opens WHEP sessions on the running server.
pub trait WhepBackend: Send + Sync + 'static {
    fn open(&self, offer: Offer) -> BoxFuture<'static, Result<Arc<dyn WhepSession>, OpenError>>;
}

struct Entry {
    session: Arc<dyn WhepSession>,
    ufrag: String,
    etag: String,
}

struct WhepState {
    token: Option<String>,
    backend: Arc<dyn WhepBackend>,
    sessions: Mutex<HashMap<String, Entry>>,
}

type Shared = Arc<WhepState>;

impl WhepState {
    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Forgets sessions that ended by themselves.
    fn sweep(&self) {
        self.sessions().retain(|_, e| !e.session.ended());
    }
}

/// The WHEP routes: `/whep` and `/whep/{id}`.
pub fn router(token: Option<String>, backend: Arc<dyn WhepBackend>) -> Router {
    let st: Shared = Arc::new(WhepState {
        token,
        backend,
        sessions: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/whep", post(create).options(options_endpoint))
        .route(
            "/whep/{id}",
            axum::routing::delete(end)
                .patch(trickle)
                .options(options_session),
        )
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(st)
}

fn plain(code: StatusCode, msg: impl Into<String>) -> Response {
    (
        code,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg.into(),
    )
        .into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "missing or wrong token",
    )
        .into_response()
}

fn content_type_is(headers: &HeaderMap, want: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(want))
}

fn allowed(st: &WhepState, q: Option<&str>, headers: &HeaderMap) -> bool {
    crate::http::authorized(st.token.as_deref(), q, headers)
}

async fn options_endpoint() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ALLOW, "OPTIONS, POST"),
            (header::HeaderName::from_static("accept-post"), SDP),
        ],
    )
        .into_response()
}

async fn options_session() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ALLOW, "OPTIONS, PATCH, DELETE"),
            (header::HeaderName::from_static("accept-patch"), SDPFRAG),
        ],
    )
        .into_response()
}

async fn create(
    State(st): State<Shared>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !allowed(&st, q.as_deref(), &headers) {
        return unauthorized();
    }
    if !content_type_is(&headers, SDP) {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the offer must be application/sdp",
        );
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return plain(StatusCode::BAD_REQUEST, "the offer is not UTF-8");
    };
    let offer = match parse_offer(text) {
        Ok(o) => o,
        Err(e @ WhepError::Malformed(_)) => return plain(StatusCode::BAD_REQUEST, e.to_string()),
        Err(e) => return plain(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    st.sweep();
    if st.sessions().len() >= MAX_SESSIONS {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "too many WHEP sessions");
    }
    let ufrag = offer.ice_ufrag.clone();
    let session = match st.backend.open(offer).await {
        Ok(s) => s,
        Err(OpenError::Unavailable(m)) => return plain(StatusCode::SERVICE_UNAVAILABLE, m),
        Err(OpenError::Rejected(m)) => return plain(StatusCode::UNPROCESSABLE_ENTITY, m),
    };
    let id = new_session_id();
    let etag = format!("\"{}\"", new_session_id());
    let answer = session.answer();
    let full = {
        let mut sessions = st.sessions();
        let full = sessions.len() >= MAX_SESSIONS;
        if !full {
            sessions.insert(
                id.clone(),
                Entry {
                    session: session.clone(),
                    ufrag,
                    etag: etag.clone(),
                },
            );
        }
        full
    };
    if full {
        session.close().await;
        return plain(StatusCode::SERVICE_UNAVAILABLE, "too many WHEP sessions");
    }
    tracing::info!(session = %id, "WHEP session opened");
    let location = format!("/whep/{id}");
    let mut resp = (StatusCode::CREATED, answer).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(SDP));
    for (name, value) in [(header::LOCATION, location), (header::ETAG, etag)] {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Location, ETag"),
    );
    resp
}

async fn end(
    State(st): State<Shared>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !allowed(&st, q.as_deref(), &headers) {
        return unauthorized();
    }
    let entry = st.sessions().remove(&id);
    match entry {
        Some(e) => {
            e.session.close().await;
            tracing::info!(session = %id, "WHEP session ended by the player");
            StatusCode::OK.into_response()
        }
        None => plain(StatusCode::NOT_FOUND, "no such WHEP session"),
    }
}

async fn trickle(
    State(st): State<Shared>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !allowed(&st, q.as_deref(), &headers) {
        return unauthorized();
    }
    st.sweep();
    let Some((session, ufrag, etag)) = st
        .sessions()
        .get(&id)
        .map(|e| (e.session.clone(), e.ufrag.clone(), e.etag.clone()))
    else {
        return plain(StatusCode::NOT_FOUND, "no such WHEP session");
    };
    if !content_type_is(&headers, SDPFRAG) {
        return plain(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "the fragment must be application/trickle-ice-sdpfrag",
        );
    }
    let if_match = headers.get(header::IF_MATCH).and_then(|v| v.to_str().ok());
    if let Some(m) = if_match {
        if m.trim() != "*" && m.trim() != etag {
            return plain(StatusCode::PRECONDITION_FAILED, "the ETag does not match");
        }
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return plain(StatusCode::BAD_REQUEST, "the fragment is not UTF-8");
    };
    let frag = match parse_sdpfrag(text) {
        Ok(f) => f,
        Err(e) => return plain(StatusCode::BAD_REQUEST, e.to_string()),
    };
    match patch_action(frag, &ufrag, if_match) {
        PatchAction::Restart => plain(
            StatusCode::UNPROCESSABLE_ENTITY,
            "ICE restarts are not supported; start a new session",
        ),
        PatchAction::Trickle(c) => match session.add_candidates(c).await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => plain(StatusCode::UNPROCESSABLE_ENTITY, e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicBool, Ordering};
    use tower::ServiceExt;

    const CHROMIUM_OFFER: &str = "v=0\r\no=- 4611731400430051336 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97 102 103\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\n\
a=candidate:1 1 udp 2122260223 10.0.0.1 50000 typ host generation 0\r\n\
a=ice-ufrag:Abc1\r\na=ice-pwd:p4ssw0rdp4ssw0rdp4ssw0rd\r\na=ice-options:trickle\r\n\
a=fingerprint:sha-256 00:11:22\r\na=setup:actpass\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n\
a=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=rtpmap:102 H264/90000\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\na=rtpmap:103 rtx/90000\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:Abc1\r\na=ice-pwd:p4ssw0rdp4ssw0rdp4ssw0rd\r\n\
a=mid:1\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\n";

    #[test]
    fn a_browser_offer_is_understood() {
        let o = parse_offer(CHROMIUM_OFFER).unwrap();
        assert!(o.video && o.audio && !o.data_channel);
        assert_eq!(
            (o.ice_ufrag.as_str(), o.ice_pwd.as_str()),
            ("Abc1", "p4ssw0rdp4ssw0rdp4ssw0rd")
        );
        let with_dc = format!(
            "{CHROMIUM_OFFER}m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n"
        );
        assert!(parse_offer(&with_dc).unwrap().data_channel);
        // LF-only line ends are accepted too.
        assert!(
            parse_offer(&CHROMIUM_OFFER.replace("\r\n", "\n"))
                .unwrap()
                .video
        );
    }

    #[test]
    fn offers_we_cannot_serve_are_refused() {
        // Video without H.264, no audio section.
        let vp8_only = CHROMIUM_OFFER
            .replace("a=rtpmap:102 H264/90000", "a=rtpmap:102 VP9/90000")
            .replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 PCMU/8000");
        assert!(matches!(
            parse_offer(&vp8_only),
            Err(WhepError::Unacceptable(_))
        ));
        // H.264 only in packetization mode 0 (no fmtp, or mode 0): our FU-A fragments would break it.
        for fmtp in [
            "",
            "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n",
            "a=fmtp:103 packetization-mode=1\r\n",
        ] {
            let mode0 = CHROMIUM_OFFER.replace(
                "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n",
                fmtp,
            );
            assert!(
                matches!(parse_offer(&mode0), Err(WhepError::Unacceptable(ref m)) if m.contains("packetization-mode")),
                "{fmtp:?}"
            );
        }
        // A player that only sends is not a viewer.
        let sendonly = CHROMIUM_OFFER.replace("a=recvonly", "a=sendonly");
        assert!(matches!(
            parse_offer(&sendonly),
            Err(WhepError::Unacceptable(_))
        ));
        // Rejected sections (port 0) do not count.
        let rejected = CHROMIUM_OFFER
            .replace("m=video 9", "m=video 0")
            .replace("m=audio 9", "m=audio 0");
        assert!(matches!(
            parse_offer(&rejected),
            Err(WhepError::Unacceptable(_))
        ));
        let no_ice = CHROMIUM_OFFER.replace("a=ice-ufrag:Abc1\r\n", "");
        assert!(matches!(parse_offer(&no_ice), Err(WhepError::Malformed(_))));
    }

    #[test]
    fn hostile_offers_are_errors_not_panics() {
        let long = format!("v=0\r\na={}\r\n", "x".repeat(MAX_LINE + 1));
        let cases = [
            "",
            "\r\n\r\n",
            "hello",
            "v=1\r\nm=video 9 X 96\r\n",
            "v=0\r\n",
            "v=0\r\nm=\r\n",
            "v=0\r\nm=video\r\na=rtpmap:\r\na=rtpmap:96\r\na=ice-ufrag:\r\n",
            "v=0\r\n=x\r\n",
            "v=0\r\nx\r\n",
            "v=0\r\nm=video 9 X 96\r\na=ice-ufrag:a\u{1}b\r\n",
            "v=0\r\nm=vidéo 9 X 96\r\na=rtpmap:96 H264/90000\r\n",
            long.as_str(),
        ];
        for c in cases {
            assert!(parse_offer(c).is_err(), "{c:?} was accepted");
        }
        // Every prefix of a real offer parses or fails cleanly (no slicing in the middle of anything).
        for i in 0..CHROMIUM_OFFER.len() {
            let _ = parse_offer(&CHROMIUM_OFFER[..i]);
        }
    }

    const FRAG: &str = "a=ice-ufrag:Abc1\r\na=ice-pwd:p4ssw0rdp4ssw0rdp4ssw0rd\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n\
a=candidate:1387637174 1 udp 2122260223 192.0.2.1 61764 typ host generation 0 ufrag Abc1 network-id 1\r\n\
a=candidate:3471623853 1 udp 2122194687 198.51.100.2 61765 typ srflx raddr 0.0.0.0 rport 0\r\n\
m=audio 9 RTP/AVP 0\r\na=mid:1\r\na=candidate:1 1 UDP 1 10.0.0.2 9 typ relay\r\na=end-of-candidates\r\n";

    #[test]
    fn trickle_fragments_are_parsed() {
        let f = parse_sdpfrag(FRAG).unwrap();
        assert_eq!(f.ice_ufrag.as_deref(), Some("Abc1"));
        assert!(f.end_of_candidates);
        assert_eq!(f.candidates.len(), 3);
        assert_eq!(f.candidates[0].mid.as_deref(), Some("0"));
        assert_eq!(f.candidates[0].m_line_index, 0);
        assert!(f.candidates[0]
            .candidate
            .starts_with("candidate:1387637174 1 udp"));
        assert_eq!(
            (f.candidates[2].mid.as_deref(), f.candidates[2].m_line_index),
            (Some("1"), 1)
        );
        assert_eq!(
            patch_action(f.clone(), "Abc1", None),
            PatchAction::Trickle(f.candidates.clone())
        );
        // New credentials or If-Match: * ask for an ICE restart.
        assert_eq!(patch_action(f.clone(), "Other", None), PatchAction::Restart);
        assert_eq!(patch_action(f, "Abc1", Some("*")), PatchAction::Restart);
        // End of candidates alone is a valid, empty trickle.
        let eoc = parse_sdpfrag("a=end-of-candidates\r\n").unwrap();
        assert_eq!(
            patch_action(eoc, "Abc1", None),
            PatchAction::Trickle(vec![])
        );
    }

    #[test]
    fn hostile_fragments_are_errors_not_panics() {
        let many = format!(
            "m=audio 9 X 0\r\n{}",
            "a=candidate:1 1 udp 1 10.0.0.1 9 typ host\r\n".repeat(MAX_CANDIDATES + 1)
        );
        let cases = [
            "a=candidate:1 1 udp 1 10.0.0.1 9 typ host\r\n", // outside a media section
            "m=audio 9 X 0\r\na=candidate:1 1 udp\r\n",
            "m=audio 9 X 0\r\na=candidate:1 99999 udp 1 10.0.0.1 9 typ host\r\n",
            "m=audio 9 X 0\r\na=candidate:1 1 udp 1 10.0.0.1 port typ host\r\n",
            "m=audio 9 X 0\r\na=candidate:1 1 udp 1 10.0.0.1 9 kind host\r\n",
            "m=audio 9 X 0\r\na=candidate:1 1 udp 1 10.0.0.1 9 typ evil\r\n",
            "a=ice-ufrag:bad ufrag\r\n",
            "a=ice-pwd:\r\n",
            "m=audio 9 X 0\r\na=mid:\r\n",
            "garbage",
            many.as_str(),
        ];
        for c in cases {
            assert!(parse_sdpfrag(c).is_err(), "{c:?} was accepted");
        }
        for i in 0..FRAG.len() {
            let _ = parse_sdpfrag(&FRAG[..i]);
        }
    }

    #[test]
    fn session_ids_are_long_and_distinct() {
        let a = new_session_id();
        assert_eq!(a.len(), 32);
        assert_ne!(a, new_session_id());
    }

    // --- routes, against a fake backend ---

    #[derive(Default)]
    struct FakeSession {
        closed: AtomicBool,
        candidates: Mutex<Vec<Candidate>>,
    }

    impl WhepSession for FakeSession {
        fn answer(&self) -> String {
            "v=0\r\nanswer\r\n".into()
        }
        fn add_candidates(&self, c: Vec<Candidate>) -> BoxFuture<'_, Result<(), String>> {
            self.candidates.lock().unwrap().extend(c);
            Box::pin(async { Ok(()) })
        }
        fn close(&self) -> BoxFuture<'_, ()> {
            self.closed.store(true, Ordering::SeqCst);
            Box::pin(async {})
        }
        fn ended(&self) -> bool {
            self.closed.load(Ordering::SeqCst)
        }
    }

    #[derive(Default)]
    struct Fake {
        opened: Mutex<Vec<(Offer, Arc<FakeSession>)>>,
        unavailable: AtomicBool,
    }

    impl WhepBackend for Fake {
        fn open(
            &self,
            offer: Offer,
        ) -> BoxFuture<'static, Result<Arc<dyn WhepSession>, OpenError>> {
            if self.unavailable.load(Ordering::SeqCst) {
                return Box::pin(async { Err(OpenError::Unavailable("streaming PNG".into())) });
            }
            let s = Arc::new(FakeSession::default());
            self.opened.lock().unwrap().push((offer, s.clone()));
            Box::pin(async move { Ok(s as Arc<dyn WhepSession>) })
        }
    }

    async fn call(
        app: &Router,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (StatusCode, HeaderMap, String) {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = app
            .clone()
            .oneshot(b.body(Body::from(body.to_owned())).unwrap())
            .await
            .unwrap();
        let (status, h) = (resp.status(), resp.headers().clone());
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (status, h, String::from_utf8_lossy(&bytes).into_owned())
    }

    const CT_SDP: (&str, &str) = ("content-type", SDP);
    const CT_FRAG: (&str, &str) = ("content-type", SDPFRAG);

    #[tokio::test]
    async fn post_patch_delete() {
        let fake = Arc::new(Fake::default());
        let app = router(None, fake.clone());
        let (s, h, body) = call(&app, "POST", "/whep", &[CT_SDP], CHROMIUM_OFFER).await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(body, "v=0\r\nanswer\r\n");
        assert_eq!(h[header::CONTENT_TYPE], SDP);
        let loc = h[header::LOCATION].to_str().unwrap().to_owned();
        assert!(
            loc.starts_with("/whep/") && loc.len() == "/whep/".len() + 32,
            "{loc}"
        );
        let etag = h[header::ETAG].to_str().unwrap().to_owned();
        let session = fake.opened.lock().unwrap()[0].1.clone();
        assert!(fake.opened.lock().unwrap()[0].0.video);

        // Trickle: candidates reach the session; 204.
        let (s, _, _) = call(&app, "PATCH", &loc, &[CT_FRAG, ("if-match", &etag)], FRAG).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(session.candidates.lock().unwrap().len(), 3);
        // A stale ETag, an ICE restart, a wrong type, a bad fragment.
        let (s, _, _) = call(&app, "PATCH", &loc, &[CT_FRAG, ("if-match", "\"x\"")], FRAG).await;
        assert_eq!(s, StatusCode::PRECONDITION_FAILED);
        let (s, _, _) = call(&app, "PATCH", &loc, &[CT_FRAG, ("if-match", "*")], FRAG).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let restart = FRAG.replace("ice-ufrag:Abc1", "ice-ufrag:New1");
        let (s, _, _) = call(&app, "PATCH", &loc, &[CT_FRAG], &restart).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let (s, _, _) = call(&app, "PATCH", &loc, &[CT_SDP], FRAG).await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let (s, _, _) = call(&app, "PATCH", &loc, &[CT_FRAG], "a=candidate:x\r\n").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        assert_eq!(session.candidates.lock().unwrap().len(), 3);

        // DELETE ends it; then it is gone.
        let (s, _, _) = call(&app, "DELETE", &loc, &[], "").await;
        assert_eq!(s, StatusCode::OK);
        assert!(session.closed.load(Ordering::SeqCst));
        let (s, _, _) = call(&app, "DELETE", &loc, &[], "").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _, _) = call(&app, "PATCH", &loc, &[CT_FRAG], FRAG).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn bad_requests() {
        let fake = Arc::new(Fake::default());
        let app = router(None, fake.clone());
        let (s, _, _) = call(
            &app,
            "POST",
            "/whep",
            &[("content-type", "text/plain")],
            CHROMIUM_OFFER,
        )
        .await;
        assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let (s, _, _) = call(&app, "POST", "/whep", &[CT_SDP], "not sdp").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let sendonly = CHROMIUM_OFFER.replace("a=recvonly", "a=sendonly");
        let (s, _, _) = call(&app, "POST", "/whep", &[CT_SDP], &sendonly).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        let huge = format!("{CHROMIUM_OFFER}{}", "a=x\r\n".repeat(MAX_BODY / 5));
        let (s, _, _) = call(&app, "POST", "/whep", &[CT_SDP], &huge).await;
        assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(fake.opened.lock().unwrap().is_empty());
        fake.unavailable.store(true, Ordering::SeqCst);
        let (s, _, body) = call(&app, "POST", "/whep", &[CT_SDP], CHROMIUM_OFFER).await;
        assert_eq!(
            (s, body.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "streaming PNG")
        );
        let (s, h, _) = call(&app, "OPTIONS", "/whep", &[], "").await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        assert_eq!(h["accept-post"], SDP);
        let (s, _, _) = call(&app, "DELETE", "/whep/0123", &[], "").await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn sessions_are_limited_and_ended_ones_forgotten() {
        let fake = Arc::new(Fake::default());
        let app = router(None, fake.clone());
        for _ in 0..MAX_SESSIONS {
            let (s, _, _) = call(&app, "POST", "/whep", &[CT_SDP], CHROMIUM_OFFER).await;
            assert_eq!(s, StatusCode::CREATED);
        }
        let (s, _, _) = call(&app, "POST", "/whep", &[CT_SDP], CHROMIUM_OFFER).await;
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
        // One peer connection ends by itself: its slot is free again.
        fake.opened.lock().unwrap()[3]
            .1
            .closed
            .store(true, Ordering::SeqCst);
        let (s, _, _) = call(&app, "POST", "/whep", &[CT_SDP], CHROMIUM_OFFER).await;
        assert_eq!(s, StatusCode::CREATED);
    }

    #[tokio::test]
    async fn a_token_is_required_when_set() {
        let fake = Arc::new(Fake::default());
        let app = router(Some("s3cret".into()), fake.clone());
        let (s, h, _) = call(&app, "POST", "/whep", &[CT_SDP], CHROMIUM_OFFER).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert_eq!(h[header::WWW_AUTHENTICATE], "Bearer");
        let (s, _, _) = call(
            &app,
            "POST",
            "/whep",
            &[CT_SDP, ("authorization", "Bearer wrong")],
            CHROMIUM_OFFER,
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(fake.opened.lock().unwrap().is_empty());
        let auth = ("authorization", "Bearer s3cret");
        let (s, h, _) = call(&app, "POST", "/whep", &[CT_SDP, auth], CHROMIUM_OFFER).await;
        assert_eq!(s, StatusCode::CREATED);
        let loc = h[header::LOCATION].to_str().unwrap().to_owned();
        let (s, _, _) = call(&app, "PATCH", &loc, &[CT_FRAG], FRAG).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _, _) = call(&app, "DELETE", &loc, &[], "").await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _, _) = call(&app, "DELETE", &loc, &[auth], "").await;
        assert_eq!(s, StatusCode::OK);
    }
}
