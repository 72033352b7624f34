//! Over real sockets: other web pages cannot drive the server (foreign Origin on the signaling
//! WebSocket, rebound Host, cross-site text/plain POST), and the resource limits hold (sessions,
//! viewers, negotiation timeout, message size, connections, header timeout). No emulator is needed:
//! the server runs detached.

use futures_util::{SinkExt, StreamExt};
use macemu_stream::limits::Limits;
use macemu_stream::peer::PeerOptions;
use macemu_stream::server::{self, ServeConfig, ServerHandle};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

async fn start(limits: Limits) -> ServerHandle {
    let cfg = ServeConfig {
        http_port: 0,
        signaling_port: 0,
        // Nobody has this pid: the server stays detached.
        target_pid: Some(u32::MAX - 11),
        peer: PeerOptions {
            stun: None,
            include_loopback: true,
            loopback_only: true,
            ..PeerOptions::default()
        },
        limits,
        ..ServeConfig::default()
    };
    server::start(cfg).await.expect("server starts")
}

/// One raw HTTP/1.1 exchange with exactly these headers; returns status and body.
async fn http(addr: SocketAddr, head: &str, body: &str) -> (u16, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{head}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("answer within 5 s")
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the signaling WebSocket with these Host and Origin headers; the refusal's status if refused.
async fn ws(port: u16, host: Option<&str>, origin: Option<&str>) -> Result<Ws, u16> {
    let mut req = format!("ws://127.0.0.1:{port}/")
        .into_client_request()
        .unwrap();
    if let Some(h) = host {
        req.headers_mut().insert("host", h.parse().unwrap());
    }
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((s, _)) => Ok(s),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err(r.status().as_u16()),
        Err(e) => panic!("WebSocket: {e}"),
    }
}

/// The next text message as JSON, within `secs`; `None` when the server closed the socket.
async fn next_json(ws: &mut Ws, secs: u64) -> Option<Value> {
    let until = Instant::now() + Duration::from_secs(secs);
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => panic!("nothing from the server within {secs} s"),
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(t.as_str()).ok(),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) => return None,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// Sends `connect` and returns the first offer (skipping `connected`).
async fn offer(ws: &mut Ws) -> Option<Value> {
    ws.send(Message::Text(r#"{"type":"connect"}"#.into()))
        .await
        .ok()?;
    loop {
        let v = next_json(ws, 10).await?;
        match v["type"].as_str() {
            Some("offer") | Some("error") => return Some(v),
            _ => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_pages_cannot_drive_the_server() {
    let srv = start(Limits::default()).await;
    let (h, sp) = (srv.http_addr, srv.signaling_addr.port());
    let own_origin = format!("http://127.0.0.1:{}", h.port());
    let sig_host = format!("127.0.0.1:{sp}");

    // The server's own page, and a non-browser client without Origin, get offers.
    for origin in [Some(own_origin.as_str()), None] {
        let mut s = ws(sp, Some(&sig_host), origin).await.expect("own page");
        assert_eq!(offer(&mut s).await.unwrap()["type"], "offer", "{origin:?}");
    }
    // A foreign Origin, and a rebound Host, are refused at the upgrade.
    assert_eq!(
        ws(sp, Some(&sig_host), Some("http://evil.example.com"))
            .await
            .err(),
        Some(403)
    );
    assert_eq!(
        ws(
            sp,
            Some(&format!("evil.example.com:{sp}")),
            Some(&format!("http://evil.example.com:{sp}"))
        )
        .await
        .err(),
        Some(403)
    );

    // DNS rebinding on the API.
    let (st, body) = http(
        h,
        "GET /api/config HTTP/1.1\r\nHost: attacker.rebind.example",
        "",
    )
    .await;
    assert_eq!(st, 403, "{body}");
    // The cross-site form POST of the report.
    let (st, _) = http(
        h,
        &format!(
            "POST /api/emulator/restart HTTP/1.1\r\nHost: {h}\r\nOrigin: http://evil.example.com\r\nContent-Type: text/plain"
        ),
        "x",
    )
    .await;
    assert_eq!(st, 403);
    let (st, _) = http(
        h,
        "POST /api/emulator/restart HTTP/1.1\r\nHost: evil.example.com\r\nContent-Type: text/plain",
        "x",
    )
    .await;
    assert_eq!(st, 403);
    // The page's own requests still work.
    let (st, body) = http(h, &format!("GET /api/config HTTP/1.1\r\nHost: {h}"), "").await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = http(
        h,
        &format!(
            "POST /api/codec HTTP/1.1\r\nHost: localhost:{}\r\nOrigin: http://localhost:{}\r\nSec-Fetch-Site: same-origin\r\nContent-Type: application/json",
            h.port(),
            h.port()
        ),
        r#"{"codec":"png"}"#,
    )
    .await;
    assert_eq!(st, 200, "{body}");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signaling_sessions_viewers_and_negotiation_are_bounded() {
    let srv = start(Limits {
        max_sessions: 3,
        max_viewers: 2,
        negotiation_timeout: Duration::from_millis(1500),
        ..Limits::default()
    })
    .await;
    let sp = srv.signaling_addr.port();
    let mut a = ws(sp, None, None).await.unwrap();
    let mut b = ws(sp, None, None).await.unwrap();
    let mut c = ws(sp, None, None).await.unwrap();
    assert_eq!(ws(sp, None, None).await.err(), Some(503), "fourth session");
    assert_eq!(offer(&mut a).await.unwrap()["type"], "offer");
    assert_eq!(offer(&mut b).await.unwrap()["type"], "offer");
    let third = offer(&mut c).await.unwrap();
    assert_eq!(third["type"], "error", "third viewer: {third}");
    assert!(third["message"].as_str().unwrap().contains("maximum of 2"));
    assert_eq!(srv.status()["peers_negotiating"], 2);

    // Nobody answers: every session is closed when its time is up, and the slots come back.
    let t0 = Instant::now();
    for s in [&mut a, &mut b, &mut c] {
        let mut timed_out = false;
        while let Some(v) = next_json(s, 5).await {
            timed_out |= v["message"]
                .as_str()
                .is_some_and(|m| m.contains("timed out"));
        }
        assert!(timed_out, "the session says why it is closed");
    }
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(4), "closed after {took:?}");
    assert_eq!(srv.status()["peers_negotiating"], 0);
    let mut d = ws(sp, None, None).await.expect("a slot is free again");
    assert_eq!(offer(&mut d).await.unwrap()["type"], "offer");
    srv.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_signaling_messages_close_the_session() {
    let srv = start(Limits::default()).await;
    let sp = srv.signaling_addr.port();
    let mut s = ws(sp, None, None).await.unwrap();
    let big = format!(r#"{{"type":"answer","sdp":"{}"}}"#, "x".repeat(100 * 1024));
    let _ = s.send(Message::Text(big.into())).await;
    assert!(
        next_json(&mut s, 5).await.is_none(),
        "a 100 KiB message ends the session"
    );
    // A normal session is unaffected.
    let mut s = ws(sp, None, None).await.unwrap();
    assert_eq!(offer(&mut s).await.unwrap()["type"], "offer");
    srv.shutdown().await;
}

/// Reads until the server closes the connection; how long that took (None: still open at `limit`).
async fn closed_within(s: &mut tokio::net::TcpStream, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(limit.saturating_sub(t0.elapsed()), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t0.elapsed()),
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_headers_time_out_and_connections_are_bounded() {
    let srv = start(Limits {
        max_connections: 4,
        header_timeout: Duration::from_millis(700),
        ..Limits::default()
    })
    .await;
    let h = srv.http_addr;
    // A slowloris client: a partial header, then nothing.
    let mut slow = Vec::new();
    for _ in 0..4 {
        let mut s = tokio::net::TcpStream::connect(h).await.unwrap();
        s.write_all(b"GET /api/status HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await
            .unwrap();
        slow.push(s);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // The fifth connection is over the limit: closed at once, without an answer.
    let mut extra = tokio::net::TcpStream::connect(h).await.unwrap();
    let _ = extra
        .write_all(format!("GET /api/status HTTP/1.1\r\nHost: {h}\r\n\r\n").as_bytes())
        .await;
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(2), extra.read_to_end(&mut got)).await;
    assert!(
        !String::from_utf8_lossy(&got).contains("200 OK"),
        "over the limit: {}",
        String::from_utf8_lossy(&got)
    );
    // The slow ones are cut off after the header timeout.
    for s in &mut slow {
        let t = closed_within(s, Duration::from_secs(5)).await;
        assert!(t.is_some(), "a slow header is not waited for forever");
    }
    // Then the server answers again.
    let (st, _) = http(h, &format!("GET /api/status HTTP/1.1\r\nHost: {h}"), "").await;
    assert_eq!(st, 200);
    srv.shutdown().await;
}
