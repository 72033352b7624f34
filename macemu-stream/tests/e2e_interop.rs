//! Standard WebRTC clients play the stream in a real browser, with no project JavaScript: a minimal page of
//! plain `RTCPeerConnection` calls answers the server's v4 offer, once with the browser's default answer
//! (Chromium takes the DTLS client role) and once as DTLS server; a minimal WHEP page posts its own offer
//! to `/whep`. Each must decode H.264 at 512×342 and receive Opus audio.
//!
//! Needs root (network namespace), `ip`, `curl` and `chromium`; elsewhere it says why and passes.

use macemu_viewer::e2e::*;
use std::time::{Duration, Instant};

const HTTP_PORT: u16 = 18080;
const SIGNALING_PORT: u16 = 18090;

/// A minimal v4 viewer: signaling WebSocket, the browser's answer (optionally turned into the DTLS server
/// role, the other choice RFC 5763 gives the answerer), the server's trickled candidates.
fn plain_client(passive: bool) -> String {
    format!(
        r#"(() => {{
  const ws = new WebSocket('ws://' + location.hostname + ':{SIGNALING_PORT}/');
  const pc = new RTCPeerConnection();
  const v = document.createElement('video'); v.autoplay = true; v.muted = true; document.body.appendChild(v);
  const a = document.createElement('audio'); a.autoplay = true; document.body.appendChild(a);
  pc.ontrack = (e) => {{ (e.track.kind === 'video' ? v : a).srcObject = new MediaStream([e.track]); }};
  pc.onicecandidate = (e) => {{ if (e.candidate) ws.send(JSON.stringify({{ type: 'candidate', candidate: e.candidate.candidate, mid: e.candidate.sdpMid }})); }};
  const early = [];
  ws.onopen = () => ws.send(JSON.stringify({{ type: 'connect' }}));
  ws.onmessage = async (m) => {{
    const msg = JSON.parse(m.data);
    if (msg.type === 'offer') {{
      await pc.setRemoteDescription({{ type: 'offer', sdp: msg.sdp }});
      for (const c of early.splice(0)) await pc.addIceCandidate(c).catch(() => {{}});
      const answer = await pc.createAnswer();
      const sdp = {passive} ? answer.sdp.replace(/a=setup:active/g, 'a=setup:passive') : answer.sdp;
      await pc.setLocalDescription({{ type: 'answer', sdp }});
      ws.send(JSON.stringify({{ type: 'answer', sdp: pc.localDescription.sdp }}));
    }} else if (msg.type === 'candidate' && msg.candidate) {{
      const c = {{ candidate: msg.candidate, sdpMid: msg.mid || undefined, sdpMLineIndex: msg.mid ? undefined : 0 }};
      if (pc.remoteDescription) await pc.addIceCandidate(c).catch(() => {{}}); else early.push(c);
    }}
  }};
  return true;
}})()"#
    )
}

/// A minimal WHEP viewer (receive-only video and audio; the offer carries all its candidates).
const WHEP_CLIENT: &str = r#"(async () => {
  const pc = new RTCPeerConnection();
  const v = document.createElement('video'); v.autoplay = true; v.muted = true; document.body.appendChild(v);
  const a = document.createElement('audio'); a.autoplay = true; document.body.appendChild(a);
  pc.ontrack = (e) => { (e.track.kind === 'video' ? v : a).srcObject = new MediaStream([e.track]); };
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((r) => { if (pc.iceGatheringState === 'complete') r();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && r(); setTimeout(r, 2000); });
  const res = await fetch('/whep', { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  window.__whep = { status: res.status, location: res.headers.get('Location'), type: res.headers.get('Content-Type') };
  await pc.setRemoteDescription({ type: 'answer', sdp: await res.text() });
  return window.__whep;
})()"#;

/// The DTLS role this page's newest peer connection took (`active` = DTLS client).
const LOCAL_SETUP: &str = r#"(() => { const pcs = window.__pcs || []; const pc = pcs[pcs.length - 1];
  const m = pc && pc.localDescription && pc.localDescription.sdp.match(/a=setup:(\w+)/); return m ? m[1] : null; })()"#;

fn start(cli: &std::path::Path) -> Result<Chain> {
    Chain::start(
        cli,
        4,
        "e2e-interop",
        HTTP_PORT,
        SIGNALING_PORT,
        &["--codec", "h264"],
    )
}

/// Opens a page of the server's origin that runs no project script, and runs `client` in it.
fn open_client(b: &mut Browser, client: &str) -> Result<serde_json::Value> {
    b.navigate(&format!("http://127.0.0.1:{HTTP_PORT}/api/status"))?;
    wait_for(Duration::from_secs(10), || {
        b.eval("document.readyState === 'complete' && location.pathname === '/api/status'")
            .ok()
            .filter(|v| v.as_bool() == Some(true))
    })
    .ok_or("the status page did not load")?;
    b.eval(client)
}

/// Waits up to 15 s for ≥ 60 H.264 frames at 512×342 and some audio; returns the stats and the time to
/// the first decoded frame.
fn plays(b: &mut Browser, what: &str) -> Result<(RtpStats, Duration)> {
    let t0 = Instant::now();
    let mut first = None;
    let end = t0 + Duration::from_secs(15);
    let mut last = RtpStats::default();
    while Instant::now() < end {
        last = b.rtp_stats()?;
        if first.is_none() && last.frames_decoded > 0 {
            first = Some(t0.elapsed());
        }
        if last.frames_decoded >= 60 && last.audio_samples > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    if last.frames_decoded < 60
        || !last.codec.to_lowercase().contains("h264")
        || (last.width, last.height) != (512, 342)
        || last.audio_samples == 0
    {
        return Err(format!(
            "{what}: expected ≥ 60 H.264 frames at 512x342 and audio within 15 s, got {last:?}"
        ));
    }
    Ok((last, first.unwrap_or_default()))
}

fn run(s: &mut Chain) -> Result<()> {
    let out = target_dir();
    for (passive, role) in [(false, "active"), (true, "passive")] {
        let b = &mut s.browser;
        open_client(b, &plain_client(passive))?;
        let what = format!("plain page, browser DTLS {role}");
        let (st, first) = plays(b, &what)?;
        let setup = b.eval(LOCAL_SETUP)?;
        if setup.as_str() != Some(role) {
            return Err(format!(
                "{what}: the page's answer has a=setup:{setup}, not {role}"
            ));
        }
        let _ = b.screenshot(&out.join(format!("e2e-interop-plain-{role}.png")));
        eprintln!(
            "{what}: {} frames {}x{} {}, {} audio samples; first frame after {first:?}",
            st.frames_decoded, st.width, st.height, st.codec, st.audio_samples
        );
    }

    let b = &mut s.browser;
    let whep = open_client(b, WHEP_CLIENT)?;
    if whep["status"].as_u64() != Some(201)
        || !whep["location"]
            .as_str()
            .is_some_and(|l| l.contains("/whep/"))
        || whep["type"].as_str() != Some("application/sdp")
    {
        return Err(format!("WHEP POST answered {whep}"));
    }
    let (st, first) = plays(b, "WHEP page")?;
    let _ = b.screenshot(&out.join("e2e-interop-whep.png"));
    eprintln!(
        "WHEP page: {} frames {}x{} {}, {} audio samples; first frame after {first:?}",
        st.frames_decoded, st.width, st.height, st.codec, st.audio_samples
    );
    // DELETE ends the session: the server drops the viewer.
    let location = whep["location"].as_str().unwrap_or_default().to_owned();
    let code = b.eval(&format!(
        "fetch({location:?}, {{ method: 'DELETE' }}).then(r => r.status)"
    ))?;
    if code.as_u64() != Some(200) {
        return Err(format!("DELETE {location} answered {code}"));
    }
    let gone = wait_for(Duration::from_secs(5), || {
        let st = b.eval("fetch('/api/status').then(r => r.json())").ok()?;
        (st["peers"].as_u64() == Some(0)).then_some(())
    });
    if gone.is_none() {
        return Err("the server still counts a viewer after DELETE".into());
    }
    let code = b.eval(&format!(
        "fetch({location:?}, {{ method: 'DELETE' }}).then(r => r.status)"
    ))?;
    if code.as_u64() != Some(404) {
        return Err(format!("a second DELETE {location} answered {code}"));
    }
    Ok(())
}

#[test]
fn standard_clients_play_without_project_javascript() {
    let _g = exclusive();
    let Some(cli) = e2e_cli() else { return };
    let mut s = start(&cli).unwrap_or_else(|e| panic!("{e}"));
    let r = run(&mut s);
    if let Err(e) = r {
        panic!("{e}\n--- serve log:\n{}", s.serve.tail());
    }
}

/// Records, in every page, when its first video frame was decoded (ms since the page's navigation began).
const FIRST_FRAME_PROBE: &str = r#"(() => { const t = setInterval(async () => {
  for (const pc of window.__pcs || []) {
    if (window.__firstFrame) return;
    const st = await pc.getStats().catch(() => null);
    st && st.forEach(r => { if (r.type === 'inbound-rtp' && r.kind === 'video' && r.framesDecoded > 0 && !window.__firstFrame) {
      window.__firstFrame = performance.now(); clearInterval(t); } });
  }
}, 5); })();"#;

fn p50(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Page load to first decoded frame, 10 loads each of our page, the minimal v4 page and the minimal WHEP
/// page, in one run. Prints the medians; fails if a load shows no frame within 10 s.
/// `cargo test -p macemu-stream --release --test e2e_interop -- --ignored --nocapture`
#[test]
#[ignore = "a measurement (about a minute); run it for the figures"]
fn page_load_to_first_frame() {
    let _g = exclusive();
    let Some(cli) = e2e_cli() else { return };
    let mut s = start(&cli).unwrap_or_else(|e| panic!("{e}"));
    let b = &mut s.browser;
    b.call(
        "Page.addScriptToEvaluateOnNewDocument",
        serde_json::json!({"source": FIRST_FRAME_PROBE}),
    )
    .unwrap();
    let mut report = Vec::new();
    for kind in ["our page", "minimal v4 page", "minimal WHEP page"] {
        let mut times = Vec::new();
        for i in 0..10 {
            b.navigate("about:blank").unwrap();
            std::thread::sleep(Duration::from_millis(300));
            match kind {
                "our page" => b
                    .navigate(&format!("http://127.0.0.1:{HTTP_PORT}/"))
                    .unwrap(),
                "minimal v4 page" => {
                    open_client(b, &plain_client(false)).unwrap();
                }
                _ => {
                    open_client(b, WHEP_CLIENT).unwrap();
                }
            }
            let t = wait_for(Duration::from_secs(10), || {
                b.eval("window.__firstFrame || null").ok()?.as_f64()
            })
            .unwrap_or_else(|| panic!("{kind}, load {i}: no frame in 10 s\n{}", s.serve.tail()));
            times.push(t);
            if kind == "minimal WHEP page" {
                let _ = b.eval(
                    "fetch(window.__whep.location, { method: 'DELETE' }).then(r => r.status)",
                );
            }
        }
        report.push(format!(
            "{kind}: p50 {:.0} ms (min {:.0}, max {:.0})",
            p50(times.clone()),
            times.iter().cloned().fold(f64::INFINITY, f64::min),
            times.iter().cloned().fold(0.0, f64::max)
        ));
    }
    eprintln!(
        "page load → first decoded frame, 10 loads each:\n  {}",
        report.join("\n  ")
    );
}
